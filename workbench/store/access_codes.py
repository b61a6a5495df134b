"""The lab's access-codes file and its access log, kept outside the recordings.

``--access-codes FILE`` on ``workbench serve``/``demo``/``trainer``/``research``: a JSON object
``{"participant": ..., "trainer": ..., "researcher": ..., "console": ..., "secret": ...}``
(:class:`workbench.domain.roles.AccessCodes`). When FILE does not exist it is created with generated codes
(mode 0600, written to a temporary file and renamed, so a crash never leaves half a file). FILE must not lie inside
the recordings folder: recordings are archived and shared with researchers, codes are not.

Every refused code typed on a page is appended to ``access-log.jsonl`` beside FILE (when, page, role asked for,
what was refused; never the code typed).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from workbench.domain.roles import AccessCodes, AccessError, Role

ACCESS_LOG_NAME = "access-log.jsonl"
FIELDS = ("participant", "trainer", "researcher", "console", "secret")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def load_or_create(path: Path, *, recordings: Path | None = None) -> tuple[AccessCodes, bool]:
    """The codes in ``path``, generating and writing new ones when it does not exist; returns ``(codes, created)``.

    Raises :class:`AccessError` when ``path`` lies inside ``recordings``, is not a JSON object with exactly the
    :data:`FIELDS`, or holds unusable codes (too short, shared between roles).
    """
    path = Path(path)
    if recordings is not None and _inside(path, Path(recordings)):
        raise AccessError(
            f"the access-codes file {path} lies inside the recordings folder {recordings}; keep it outside "
            "(recordings are archived and shared, codes are not), e.g. --access-codes ~/lab/access.json"
        )
    if not path.exists():
        codes = AccessCodes.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".access-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({name: getattr(codes, name) for name in FIELDS}, fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return codes, True
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AccessError(f"{path}: not a readable JSON file ({exc}); fix it or delete it to generate new codes") \
            from None
    if not isinstance(data, dict) or set(data) != set(FIELDS):
        found = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
        raise AccessError(f"{path}: expected a JSON object with the keys {', '.join(FIELDS)}; found {found}")
    try:
        return AccessCodes(**{name: data[name] for name in FIELDS}), False
    except AccessError as exc:
        raise AccessError(f"{path}: {exc}") from None


def load(path: Path) -> AccessCodes:
    """The codes of an existing file (pages and the console read what ``serve`` created). Raises
    :class:`AccessError` when it is missing or invalid."""
    if not Path(path).is_file():
        raise AccessError(f"access-codes file {path} not found; start the workbench with --access-codes {path}")
    return load_or_create(Path(path))[0]


def log_refusal(codes_path: Path, *, page: str, wanted: Role, reason: str) -> None:
    """Append one refused access to ``access-log.jsonl`` beside the codes file (fsynced). ``reason`` says what was
    refused (``wrong code``, ``participant code on the trainer page``); the typed code is never stored."""
    line = json.dumps({
        "t_wall": datetime.now(timezone.utc).isoformat(),
        "page": page,
        "wanted": wanted.value,
        "reason": reason,
    })
    log_path = Path(codes_path).parent / ACCESS_LOG_NAME
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def describe(codes: AccessCodes, path: Path) -> str:
    """The lines ``workbench serve`` prints at start: each human role's code and where they are kept."""
    return (
        f"Access codes (kept in {path}; refused attempts in {Path(path).parent / ACCESS_LOG_NAME}):\n"
        f"  participant: {codes.participant}\n  trainer:     {codes.trainer}\n  researcher:  {codes.researcher}"
    )
