"""Participants' data: withdrawal (remove a pseudonym's sessions, keep an audit line) and archives for long-term
storage (export with checksums, check, re-import).

The link between a pseudonym and a person is never in the recordings: it is kept by the research team elsewhere
(or not at all). Everything here works on pseudonyms and session folders only.

Withdrawal, crash-safe in three steps per run::

    1. every session folder of the pseudonym is renamed to <recordings>/.withdrawing-<session_id> (atomic rename;
       the folder is no longer a session for the store, and is clearly marked)
    2. one audit line is appended to <recordings>/withdrawals.jsonl and fsynced (what was removed, never the content)
    3. the marked folders are deleted

A crash after 1 leaves marked folders with their content: the next ``withdraw`` of the same pseudonym audits and
deletes them. A crash during 3 leaves marked, already audited folders: the next run deletes them and records that it
finished them (``completed``). Withdrawal must not run while an ingest is still writing one of those sessions.

Archive (``.tar``, or ``.tar.gz``/``.tgz`` compressed)::

    <session_id>/session.json, events.jsonl, manifest.json, scenario.toml, media/...   (as in the recordings)
    ARCHIVE-MANIFEST.json   {"format", "version", "created", "sessions": [...],
                             "files": {"<session_id>/<relpath>": {"sha256", "size"}}}  (last member)

Errors: :class:`PrivacyError` (a ``RecordingsError``) for requests that cannot be honoured (unknown pseudonym or
session, existing output, a damaged archive on import, a session that exists or was withdrawn).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import tarfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable

from workbench.store.recordings import Recordings, RecordingsError, check_id, verify_session

WITHDRAWALS_FILE = "withdrawals.jsonl"
"""The audit log of withdrawals, at the root of the recordings folder (one JSON object per line)."""
WITHDRAWING_PREFIX = ".withdrawing-"
"""Name prefix of a session folder whose withdrawal has started (``.withdrawing-<session_id>``)."""
ARCHIVE_MANIFEST = "ARCHIVE-MANIFEST.json"
"""Name of the archive's own manifest member."""
ARCHIVE_FORMAT = "workbench112-archive"
ARCHIVE_VERSION = 1
_CHUNK = 1 << 20


class PrivacyError(RecordingsError):
    """A withdrawal or archive request that cannot be honoured; the message says what and why."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _participant_of(folder: Path) -> str | None:
    """The ``participant`` of ``folder/session.json``, or None when it is missing or unreadable."""
    try:
        header = json.loads((folder / "session.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = header.get("participant") if isinstance(header, dict) else None
    return value if isinstance(value, str) else None


# --- withdrawal --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRemoval:
    """What withdrawing one session removes: its id, file count, bytes and the SHA-256 of its ``manifest.json``
    (64 hex digits; empty when the session had none)."""

    session_id: str
    files: int
    bytes: int
    manifest_sha256: str


@dataclass(frozen=True)
class WithdrawalPlan:
    """What :func:`withdraw` will do for one pseudonym: the sessions to remove (``sessions``, not yet audited) and
    interrupted withdrawals to finish (``completed``: ids of ``.withdrawing-*`` folders already in the audit log)."""

    participant: str
    sessions: list[SessionRemoval]
    completed: list[str]

    @property
    def files(self) -> int:
        return sum(s.files for s in self.sessions)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.sessions)

    def describe(self) -> str:
        """Human-readable lines: each session with its files and bytes, and the interrupted ones to finish."""
        lines = [f"participant {self.participant!r}:"]
        for s in self.sessions:
            lines.append(f"  remove session {s.session_id} ({s.files} files, {s.bytes} bytes)")
        for sid in self.completed:
            lines.append(f"  finish the interrupted withdrawal of session {sid}")
        return "\n".join(lines)


@dataclass(frozen=True)
class WithdrawResult:
    """Outcome of :func:`withdraw`: the plan carried out and the audit line appended (as written)."""

    plan: WithdrawalPlan
    audit: dict[str, Any]

    @property
    def sessions(self) -> list[str]:
        return [s.session_id for s in self.plan.sessions]


def read_withdrawals(recordings: Path) -> list[dict[str, Any]]:
    """The audit lines of ``<recordings>/withdrawals.jsonl`` (oldest first); [] when there is none. A torn last
    line (a crash while appending) is skipped."""
    path = recordings / WITHDRAWALS_FILE
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict):
            lines.append(item)
    return lines


def _measure(folder: Path, session_id: str) -> SessionRemoval:
    files = size = 0
    for p in folder.rglob("*"):
        if p.is_file():
            files += 1
            size += p.stat().st_size
    manifest = folder / "manifest.json"
    return SessionRemoval(session_id, files, size, _file_sha256(manifest) if manifest.is_file() else "")


def plan_withdrawal(recordings: Path, participant: str) -> WithdrawalPlan:
    """What withdrawing ``participant`` (a pseudonym, matched exactly against ``session.json``'s ``participant``)
    would remove from ``recordings``, changing nothing.

    Raises :class:`PrivacyError` when the recordings folder does not exist or the pseudonym has neither sessions
    nor interrupted withdrawals there."""
    if not participant:
        raise PrivacyError("the participant pseudonym is empty")
    if not recordings.is_dir():
        raise PrivacyError(f"{recordings}: no such recordings folder")
    audited = {
        sid for line in read_withdrawals(recordings) if line.get("participant") == participant
        for sid in [*line.get("sessions", []), *line.get("completed", [])]
    }
    sessions: list[SessionRemoval] = []
    completed: list[str] = []
    for p in sorted(recordings.iterdir()):
        if not p.is_dir():
            continue
        if p.name.startswith(WITHDRAWING_PREFIX):
            sid = p.name[len(WITHDRAWING_PREFIX):]
            if sid in audited:
                completed.append(sid)  # audited, deletion interrupted: the content may be partly gone
            elif _participant_of(p) == participant:
                sessions.append(_measure(p, sid))  # renamed, not yet audited: the content is whole
        elif (p / "session.json").is_file() and _participant_of(p) == participant:
            sessions.append(_measure(p, p.name))
    if not sessions and not completed:
        known = sorted({x for x in (_participant_of(q) for q in recordings.iterdir() if q.is_dir()) if x})
        raise PrivacyError(
            f"no sessions of participant {participant!r} in {recordings} (nothing changed); "
            f"pseudonyms there: {', '.join(known) or 'none'}"
        )
    return WithdrawalPlan(participant, sessions, completed)


def _append_audit(recordings: Path, line: dict[str, Any]) -> None:
    path = recordings / WITHDRAWALS_FILE
    data = (json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(recordings)


def withdraw(
    recordings: Path, participant: str, *, reason: str = "", now: Callable[[], datetime] = _utc_now
) -> WithdrawResult:
    """Remove every session of ``participant`` (pseudonym) from ``recordings`` and append one audit line to
    ``<recordings>/withdrawals.jsonl``::

        {"when": UTC ISO 8601, "participant": pseudonym, "sessions": [ids removed now],
         "completed": [ids of interrupted withdrawals finished now], "files": int, "bytes": int,
         "manifest_sha256": {session_id: 64 hex digits or ""}, "reason": text}

    ``files``/``bytes`` count what the sessions held (every file, log and manifest included). The line never holds
    the removed content. See the module docstring for the crash-safe order (rename, audit, delete); an interrupted
    withdrawal is finished by calling this again. ``now`` gives the time of the audit line (tests pass a fixed one).

    Raises :class:`PrivacyError` for an unknown pseudonym (nothing changed); ``OSError`` if a folder cannot be renamed
    or deleted (what was renamed stays marked for the next run)."""
    plan = plan_withdrawal(recordings, participant)
    for s in plan.sessions:
        check_id(s.session_id, "session id")
        source = recordings / s.session_id
        if source.is_dir():
            os.rename(source, recordings / f"{WITHDRAWING_PREFIX}{s.session_id}")
    _fsync_dir(recordings)
    audit = {
        "when": now().astimezone(timezone.utc).isoformat(timespec="seconds"),
        "participant": participant,
        "sessions": [s.session_id for s in plan.sessions],
        "completed": list(plan.completed),
        "files": plan.files,
        "bytes": plan.bytes,
        "manifest_sha256": {s.session_id: s.manifest_sha256 for s in plan.sessions},
        "reason": reason,
    }
    _append_audit(recordings, audit)
    for sid in [*audit["sessions"], *plan.completed]:
        marked = recordings / f"{WITHDRAWING_PREFIX}{sid}"
        if marked.exists():
            shutil.rmtree(marked)
    _fsync_dir(recordings)
    return WithdrawResult(plan, audit)


# --- archive -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveResult:
    """Outcome of :func:`archive`: the archive written, its sessions, file count and bytes (uncompressed, manifest
    excluded)."""

    path: Path
    sessions: list[str]
    files: int
    bytes: int


@dataclass(frozen=True)
class ImportResult:
    """Outcome of :func:`import_archive`: the sessions restored into ``recordings`` (each verified)."""

    recordings: Path
    sessions: list[str]
    files: int


def _tar_mode(path: Path, write: bool) -> str:
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "w:gz" if write else "r:gz"
    if name.endswith(".tar"):
        return "w" if write else "r"
    raise PrivacyError(f"{path}: an archive is a .tar, .tar.gz or .tgz file")


class _HashingReader:
    """A read-only file wrapper that hashes what is read (for streaming a file into a tar)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


def archive(recordings: Path, out: Path, *, sessions: list[str] | None = None,
            now: Callable[[], datetime] = _utc_now) -> ArchiveResult:
    """Write ``sessions`` (ids; default every session in ``recordings``) with all their files into one archive
    ``out`` (``.tar``, ``.tar.gz`` or ``.tgz``) plus ``ARCHIVE-MANIFEST.json`` (SHA-256 and size of every file).
    Hidden files (``.*``, e.g. leftover temporaries) are left out. Written to a temporary name, fsynced, renamed.

    Raises :class:`PrivacyError` when ``out`` exists, a session is unknown, there are no sessions, or a session fails
    :func:`verify_session` (archive only sound sessions; the problems are in the message)."""
    mode = _tar_mode(out, write=True)
    if out.exists():
        raise PrivacyError(f"{out} exists already; archives are never overwritten")
    store = Recordings(recordings)
    ids = list(sessions) if sessions else store.session_ids()
    if not ids:
        raise PrivacyError(f"no sessions in {recordings}")
    for sid in ids:
        store.open_session(sid)  # raises RecordingsError for an unknown or invalid id
        report = verify_session(recordings / sid)
        if not report.ok:
            raise PrivacyError(f"session {sid} does not verify; not archived: " + "; ".join(report.problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    files: dict[str, dict[str, Any]] = {}
    try:
        with open(tmp, "wb") as raw, tarfile.open(fileobj=raw, mode=mode, format=tarfile.PAX_FORMAT) as tar:
            for sid in ids:
                folder = recordings / sid
                for p in sorted(folder.rglob("*")):
                    rel = p.relative_to(folder)
                    if not p.is_file() or any(part.startswith(".") for part in rel.parts):
                        continue
                    name = f"{sid}/{rel.as_posix()}"
                    info = tarfile.TarInfo(name)
                    info.size = p.stat().st_size
                    info.mtime = int(p.stat().st_mtime)
                    info.mode = 0o644
                    with open(p, "rb") as fh:
                        reader = _HashingReader(fh)
                        tar.addfile(info, reader)  # type: ignore[arg-type]
                    files[name] = {"sha256": reader.digest.hexdigest(), "size": reader.size}
            manifest = {
                "format": ARCHIVE_FORMAT,
                "version": ARCHIVE_VERSION,
                "created": now().astimezone(timezone.utc).isoformat(timespec="seconds"),
                "sessions": ids,
                "files": files,
            }
            data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
            info = tarfile.TarInfo(ARCHIVE_MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(now().timestamp()), 0o644
            tar.addfile(info, io.BytesIO(data))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return ArchiveResult(out, ids, len(files), sum(f["size"] for f in files.values()))


def _safe_member_name(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and name == path.as_posix() and bool(path.parts)


def _scan(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, bytes], list[str]]:
    """Read every member of the archive: ({name: {"sha256", "size"}}, {small JSON member name: bytes}, problems)."""
    found: dict[str, dict[str, Any]] = {}
    kept: dict[str, bytes] = {}
    problems: list[str] = []
    with tarfile.open(path, _tar_mode(path, write=False)) as tar:
        for member in tar:
            if not _safe_member_name(member.name):
                problems.append(f"{member.name}: unsafe path in the archive (absolute or with '..')")
                continue
            if member.isdir():
                continue
            if not member.isfile():
                problems.append(f"{member.name}: not a regular file (links and devices are not archived)")
                continue
            if member.name in found:
                problems.append(f"{member.name}: appears twice in the archive")
            fh = tar.extractfile(member)
            assert fh is not None  # a regular file always has content
            digest, size, keep = hashlib.sha256(), 0, member.name.endswith(".json")
            chunks = []
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                if keep:
                    chunks.append(chunk)
            found[member.name] = {"sha256": digest.hexdigest(), "size": size}
            if keep:
                kept[member.name] = b"".join(chunks)
    return found, kept, problems


def check_archive(path: Path) -> list[str]:
    """Re-read the archive at ``path`` and check every file against ``ARCHIVE-MANIFEST.json`` (present, size,
    SHA-256, nothing unlisted) and against its session's own ``manifest.json``. Returns the problems, each naming the
    file (``<session_id>/<relpath>: ...``); [] when the archive is sound. Never raises for a damaged archive (an
    unreadable one is one problem), only :class:`PrivacyError` for a name that is not an archive's."""
    _tar_mode(path, write=False)
    if not path.is_file():
        return [f"{path}: no such file"]
    try:
        found, kept, problems = _scan(path)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        return [f"{path}: not a readable archive ({type(exc).__name__}: {exc})"]
    raw = kept.get(ARCHIVE_MANIFEST)
    if raw is None:
        return [*problems, f"{ARCHIVE_MANIFEST} is missing from the archive"]
    try:
        manifest = json.loads(raw)
        listed: dict[str, dict[str, Any]] = manifest["files"]
        sessions: list[str] = manifest["sessions"]
    except (ValueError, KeyError, TypeError) as exc:
        return [*problems, f"{ARCHIVE_MANIFEST} is not a valid archive manifest ({exc})"]
    if manifest.get("format") != ARCHIVE_FORMAT:
        problems.append(f"{ARCHIVE_MANIFEST}: format {manifest.get('format')!r} is not {ARCHIVE_FORMAT!r}")
    for name, entry in sorted(listed.items()):
        got = found.get(name)
        if got is None:
            problems.append(f"{name}: listed in {ARCHIVE_MANIFEST} but missing from the archive")
            continue
        if got["size"] != entry.get("size"):
            problems.append(f"{name}: size {got['size']} != {ARCHIVE_MANIFEST} {entry.get('size')}")
        if got["sha256"] != entry.get("sha256"):
            problems.append(f"{name}: SHA-256 does not match {ARCHIVE_MANIFEST} (changed or damaged)")
    for name in sorted(set(found) - set(listed) - {ARCHIVE_MANIFEST}):
        problems.append(f"{name}: in the archive but not listed in {ARCHIVE_MANIFEST}")
    for sid in sessions:
        if f"{sid}/session.json" not in found:
            problems.append(f"{sid}/session.json: missing (session {sid} is listed in {ARCHIVE_MANIFEST})")
        own = kept.get(f"{sid}/manifest.json")
        if own is None:
            continue  # a session that stored no file has no manifest.json
        try:
            entries: dict[str, dict[str, Any]] = json.loads(own)["files"]
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{sid}/manifest.json: not a valid session manifest ({exc})")
            continue
        for rel, entry in sorted(entries.items()):
            name = f"{sid}/{rel}"
            got = found.get(name)
            if got is None:
                problems.append(f"{name}: listed in {sid}/manifest.json but missing from the archive")
            elif got["sha256"] != entry.get("sha256") or got["size"] != entry.get("size"):
                problems.append(f"{name}: does not match {sid}/manifest.json (SHA-256 or size)")
    return problems


def import_archive(path: Path, recordings: Path) -> ImportResult:
    """Restore the sessions of the archive at ``path`` into ``recordings`` after :func:`check_archive` passes; each
    session is written to a hidden temporary folder, checked with :func:`verify_session`, then renamed into place.

    Raises :class:`PrivacyError` (nothing imported) when the archive has problems, or when a session exists already in
    ``recordings`` (never overwritten) or was withdrawn there (listed in ``withdrawals.jsonl``); and when a restored
    session fails verification (that session's temporary folder is removed; sessions restored before it stay)."""
    problems = check_archive(path)
    if problems:
        raise PrivacyError(f"{path}: archive has {len(problems)} problem(s); nothing imported: " + "; ".join(problems))
    with tarfile.open(path, _tar_mode(path, write=False)) as tar:
        fh = tar.extractfile(ARCHIVE_MANIFEST)
        assert fh is not None
        manifest = json.loads(fh.read())
    sessions: list[str] = [check_id(s, "session id") for s in manifest["sessions"]]
    strays = sorted({name.split("/", 1)[0] for name in manifest["files"]} - set(sessions))
    if strays:
        raise PrivacyError(f"{path}: files of sessions not listed in {ARCHIVE_MANIFEST}: {', '.join(strays)}")
    withdrawn = {sid for line in read_withdrawals(recordings) for sid in line.get("sessions", [])}
    for sid in sessions:
        if (recordings / sid).exists() or (recordings / f"{WITHDRAWING_PREFIX}{sid}").exists():
            raise PrivacyError(f"session {sid} exists already in {recordings}; nothing imported (never overwritten)")
        if sid in withdrawn:
            raise PrivacyError(
                f"session {sid} was withdrawn from {recordings} ({WITHDRAWALS_FILE}); nothing imported"
            )
    recordings.mkdir(parents=True, exist_ok=True)
    staging = {sid: recordings / f".importing-{sid}-{secrets.token_hex(4)}" for sid in sessions}
    try:
        with tarfile.open(path, _tar_mode(path, write=False)) as tar:
            for member in tar:
                if not member.isfile() or member.name == ARCHIVE_MANIFEST:
                    continue
                sid, _, rel = member.name.partition("/")
                target = staging[sid] / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
        for sid in sessions:
            report = verify_session(staging[sid])
            if not report.ok:
                raise PrivacyError(f"session {sid} from {path} does not verify: " + "; ".join(report.problems))
            os.rename(staging[sid], recordings / sid)
        _fsync_dir(recordings)
    finally:
        for folder in staging.values():
            if folder.exists():
                shutil.rmtree(folder)
    files = sum(1 for name in manifest["files"] if name.split("/", 1)[0] in sessions)
    return ImportResult(recordings, sessions, files)
