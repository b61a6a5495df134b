"""The recordings tree: one folder per session with its header, event log, media and manifest.

Layout (DESIGN.md)::

    <root>/<session_id>/session.json     header, written once, atomically
    <root>/<session_id>/events.jsonl     append-only event log (see eventlog.py)
    <root>/<session_id>/scenario.toml    byte copy of the scenario played (ground truth for the analysis)
    <root>/<session_id>/media/<call_id>/ photos, snapshots, recordings
    <root>/<session_id>/manifest.json    SHA-256 and size of every file above except the log and the manifest

Every file is written to a temporary name, fsynced and renamed into place, so a crash leaves either the old or
the new file, never half of one. Nothing here overwrites an existing media file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.store.eventlog import Clock, FileEventLog, LogProblem, SystemClock, read_events

SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""What a session id (and a call id) may look like: it becomes a folder name."""


class RecordingsError(Exception):
    """A request to the recordings tree that cannot be honoured (bad id, existing file, missing session)."""


@dataclass(frozen=True)
class SessionHeader:
    """Contents of ``session.json``. ``status`` is always ``exercise`` (CAP-style: every record is simulated)."""

    session_id: str
    participant: str
    scenario_id: str
    scenario_sha256: str
    block_order: list[str]
    seed: int
    software_version: str
    started_at: str
    status: str = "exercise"
    extra: dict[str, Any] = field(default_factory=dict)


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` via a fsynced temporary file and ``os.replace``.

    Raises :class:`RecordingsError` if ``overwrite`` is False and ``path`` exists.
    """
    if not overwrite and path.exists():
        raise RecordingsError(f"{path} exists already; recordings are never overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a safe id (letters, digits, ``_.-``, 1-64 chars); else raise RecordingsError."""
    if not SESSION_ID_PATTERN.match(value):
        raise RecordingsError(f"{what} {value!r} is not valid: use 1-64 letters, digits, '_', '.', '-'")
    return value


class SessionFolder:
    """One session's folder. Create with :meth:`Recordings.create_session` or :meth:`Recordings.open_session`."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self.session_id = path.name
        self._clock = clock or SystemClock()
        self._log: FileEventLog | None = None

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def header_path(self) -> Path:
        return self.path / "session.json"

    def header(self) -> dict[str, Any]:
        """The parsed ``session.json``; raises ``FileNotFoundError`` or ``json.JSONDecodeError``."""
        return json.loads(self.header_path.read_text(encoding="utf-8"))

    def event_log(self) -> FileEventLog:
        """The writable log of this session (opened once, kept open). Only the ingest calls this."""
        if self._log is None:
            self._log = FileEventLog(self.events_path, self.session_id, self._clock)
        return self._log

    def close(self) -> None:
        """Close the event log if it is open."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def read_events(self) -> tuple[list, list[LogProblem]]:
        """Read-side view of the log: (events, problems). See :func:`eventlog.read_events`."""
        return read_events(self.events_path)

    def store_file(self, relpath: str, data: bytes) -> tuple[str, str]:
        """Store ``data`` at ``relpath`` (relative to the session folder, under ``media/`` or a top-level file) and
        record it in the manifest. Returns ``(relpath, sha256)``.

        Raises :class:`RecordingsError` if the path escapes the folder or the file exists already.
        """
        target = (self.path / relpath).resolve()
        if self.path.resolve() not in target.parents:
            raise RecordingsError(f"{relpath!r} is outside the session folder")
        atomic_write(target, data, overwrite=False)
        digest = sha256_hex(data)
        manifest = self.manifest()
        manifest["files"][relpath] = {"sha256": digest, "size": len(data)}
        atomic_write(self.manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        return relpath, digest

    def record_existing(self, relpath: str, sha256: str, size: int) -> None:
        """List a file that was written in place (a closed recording segment) in the manifest with its SHA-256 and
        size (bytes). Raises :class:`RecordingsError` if it is outside the folder, missing, or listed already."""
        target = (self.path / relpath).resolve()
        if self.path.resolve() not in target.parents or not target.is_file():
            raise RecordingsError(f"{relpath!r} is not a file inside the session folder")
        manifest = self.manifest()
        if relpath in manifest["files"]:
            raise RecordingsError(f"{relpath!r} is listed in the manifest already")
        manifest["files"][relpath] = {"sha256": sha256, "size": size}
        atomic_write(self.manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())

    def store_media(self, call_id: str, name: str, data: bytes) -> tuple[str, str]:
        """Store a media file under ``media/<call_id>/<name>``; see :meth:`store_file`."""
        check_id(call_id, "call id")
        check_id(name, "media file name")
        return self.store_file(f"media/{call_id}/{name}", data)

    def manifest(self) -> dict[str, Any]:
        """The parsed manifest (``{"files": {relpath: {"sha256", "size"}}}``), empty when none was written yet."""
        if not self.manifest_path.exists():
            return {"files": {}}
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))


class Recordings:
    """The recordings root folder (``recordings/`` by default)."""

    def __init__(self, root: Path, clock: Clock | None = None) -> None:
        self.root = root
        self._clock = clock or SystemClock()

    def create_session(self, header: SessionHeader, scenario_bytes: bytes | None = None) -> SessionFolder:
        """Create ``<root>/<session_id>/`` with ``session.json`` (and ``scenario.toml`` when given).

        Raises :class:`RecordingsError` if the id is invalid or the session exists already.
        """
        check_id(header.session_id, "session id")
        path = self.root / header.session_id
        if path.exists():
            raise RecordingsError(f"session {header.session_id!r} exists already in {self.root}")
        path.mkdir(parents=True)
        folder = SessionFolder(path, self._clock)
        atomic_write(folder.header_path, (json.dumps(asdict(header), indent=2) + "\n").encode(), overwrite=False)
        if scenario_bytes is not None:
            folder.store_file("scenario.toml", scenario_bytes)
        return folder

    def open_session(self, session_id: str) -> SessionFolder:
        """An existing session; raises :class:`RecordingsError` if there is none."""
        check_id(session_id, "session id")
        path = self.root / session_id
        if not (path / "session.json").exists():
            raise RecordingsError(f"no session {session_id!r} in {self.root}")
        return SessionFolder(path, self._clock)

    def session_ids(self) -> list[str]:
        """Ids of all sessions (folders with a ``session.json``), sorted."""
        if not self.root.exists():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / "session.json").is_file()
        )


@dataclass
class VerifyReport:
    """Result of :func:`verify_session`: ``ok`` when nothing is wrong; each problem a human-readable line."""

    session_dir: Path
    files_checked: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


RECORDING_SEGMENT = re.compile(r"^rec-[0-9]{4}\.mkv$")
"""Name of a call recording segment (``workbench.ingest.recording``); listed in the manifest once closed."""


def recording_duration_s(path: Path) -> float:
    """Span of the packets in a media file, s (last minus first packet time over all streams), measured by demuxing
    it with PyAV (no decoding); reads a file cut by a crash up to the cut. Raises ``av.error.FFmpegError`` (an
    ``OSError``/``ValueError``) if PyAV cannot open it. PyAV is imported here only (the store's one media reader)."""
    import av

    first: float | None = None
    last: float | None = None
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            t = float(packet.pts * packet.time_base)
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
    return 0.0 if first is None or last is None else last - first


def _cut_recording_warning(path: Path, rel: str) -> str:
    """The verify warning for a recording segment missing from the manifest: the ingest stopped while writing it."""
    try:
        held = f"holds {recording_duration_s(path):.1f} s"
    except Exception as exc:  # unreadable: say so, it stays a warning (the crash is the finding)
        held = f"unreadable by PyAV ({exc})"
    return f"{rel}: cut by a crash: last segment of the recording, not in the manifest, {held}"


def verify_session(session_dir: Path) -> VerifyReport:
    """Check a session folder: header readable, every event line valid with gapless ``seq``, every manifest
    entry present with the recorded size and SHA-256, and no media file missing from the manifest.

    One exception, a warning rather than a problem: a call recording segment (``rec-NNNN.mkv``) that is not in the
    manifest is the segment the ingest was writing when it died (segments are listed when closed); the warning says
    "cut by a crash" and how many seconds it holds (:func:`recording_duration_s`)."""
    report = VerifyReport(session_dir)
    if not session_dir.is_dir():
        report.problems.append(f"{session_dir} is not a folder")
        return report
    folder = SessionFolder(session_dir)
    try:
        header = folder.header()
        if header.get("status") != "exercise":
            report.problems.append("session.json: status is not 'exercise'")
    except FileNotFoundError:
        report.problems.append("session.json is missing")
    except json.JSONDecodeError as exc:
        report.problems.append(f"session.json is not valid JSON: {exc}")
    if folder.events_path.exists():
        events, log_problems = folder.read_events()
        report.events = len(events)
        for p in log_problems:
            report.problems.append(f"events.jsonl line {p.line}: {p.problem}")
    else:
        report.problems.append("events.jsonl is missing")
    try:
        manifest = folder.manifest()
    except json.JSONDecodeError as exc:
        report.problems.append(f"manifest.json is not valid JSON: {exc}")
        return report
    for relpath, entry in sorted(manifest.get("files", {}).items()):
        target = session_dir / relpath
        if not target.is_file():
            report.problems.append(f"{relpath}: listed in manifest but missing")
            continue
        data = target.read_bytes()
        report.files_checked += 1
        if len(data) != entry.get("size"):
            report.problems.append(f"{relpath}: size {len(data)} != manifest {entry.get('size')}")
        if sha256_hex(data) != entry.get("sha256"):
            report.problems.append(f"{relpath}: SHA-256 does not match the manifest (file changed or damaged)")
    listed = set(manifest.get("files", {}))
    media_root = session_dir / "media"
    if media_root.is_dir():
        for p in sorted(media_root.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                rel = p.relative_to(session_dir).as_posix()
                if rel not in listed and RECORDING_SEGMENT.match(p.name):
                    report.warnings.append(_cut_recording_warning(p, rel))
                elif rel not in listed:
                    report.problems.append(f"{rel}: media file not in manifest")
            elif p.is_file() and p.name.endswith(".tmp"):
                report.warnings.append(f"{p.relative_to(session_dir)}: leftover temporary file from an interrupted write")
    return report
