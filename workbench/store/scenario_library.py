"""The trainer's scenario library: every scenario in a folder (default ``experiments/``), validated, previewed, and
new scenarios made from uploaded media without editing files (issue 7).

A library entry is a ``*.toml`` file (at most two folders deep) whose top level has ``blocks`` or ``calls``; other
TOML files there (effects files of ``workbench simulate``) are not scenarios and are skipped. Each entry is
validated with :func:`workbench.store.scenarios.load_scenario` (media must exist) and keeps its error lines.

:func:`add_scenario` writes ``<library>/<id>/scenario.toml`` and the uploaded media beside it. It builds the TOML
from form fields, validates the result with the same loader, and writes everything into a temporary folder inside
the library that is renamed into place at the end: a scenario that does not validate, or whose id is taken, leaves
nothing behind, and an existing scenario is never overwritten.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from workbench.domain.scenario import Scenario
from workbench.domain.taxonomy import DISAGREEMENT_ASPECTS, INCIDENT_TYPES, INFORMATION_ITEMS
from workbench.store.scenarios import IDENT, ScenarioError, load_scenario, parse_scenario

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".y4m", ".avi")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff")
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""Largest single uploaded media file, bytes (a few minutes of phone video)."""


class LibraryError(ValueError):
    """A new scenario that cannot be added; ``str()`` lists every problem, one per line, saying what to change."""


@dataclass(frozen=True)
class LibraryEntry:
    """One scenario file of the library: ``path``, its ``relpath`` in the library, the scenario when it is valid
    (else None) and the validation ``errors`` (one ``file: field: message`` line each)."""

    path: Path
    relpath: str
    scenario: Scenario | None
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.scenario is not None

    @property
    def label(self) -> str:
        """``id — title`` of a valid scenario, else the file's relative path."""
        if self.scenario is None:
            return self.relpath
        return f"{self.scenario.id} — {self.scenario.title}" if self.scenario.title else self.scenario.id


def _looks_like_scenario(path: Path) -> bool | None:
    """True for a TOML file with top-level ``blocks``/``calls``, False for another TOML file, None if unreadable."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return "blocks" in data or "calls" in data


def list_library(folder: Path) -> list[LibraryEntry]:
    """Every scenario file under ``folder`` (depth <= 2, hidden folders skipped), sorted by relative path, each
    validated. An unreadable TOML file is listed as invalid (it may be a scenario with a syntax error). Raises
    :class:`LibraryError` when ``folder`` is not a directory."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LibraryError(f"scenario library {folder} is not a folder; pass an existing folder (default experiments/)")
    entries = []
    for path in sorted(folder.glob("*.toml")) + sorted(folder.glob("*/*.toml")) + sorted(folder.glob("*/*/*.toml")):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts):
            continue
        kind = _looks_like_scenario(path)
        if kind is False:
            continue
        try:
            entries.append(LibraryEntry(path, rel, load_scenario(path)))
        except ScenarioError as exc:
            entries.append(LibraryEntry(path, rel, None, tuple(str(exc).splitlines())))
    return sorted(entries, key=lambda e: e.relpath)


# --- preview ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    """One moment of a call's timeline: ``at_s`` (s; arrival-relative for media, answer-relative for speech, as the
    runner plays them), ``kind`` (``speech``, ``video``, ``photo``, ``manipulation``) and what happens."""

    at_s: float
    kind: str
    text: str


@dataclass(frozen=True)
class CallPreview:
    """What a trainer checks before running a call: where it plays, its timeline, media and ground truth."""

    call_id: str
    block_id: str
    modality: str
    practice: bool
    arrival_s: float
    caller_label: str
    timeline: tuple[TimelineItem, ...]
    media: tuple[str, ...]
    truth: dict[str, str]


def _media_name(ref: str) -> str:
    return ref if ref.startswith("builtin:") else Path(ref).name


def preview(scenario: Scenario) -> list[CallPreview]:
    """One :class:`CallPreview` per call, in block order then arrival order. Congruence is shown per aspect as
    ``agree``/``DISAGREE``; media withheld by an audio-only block are marked ``(withheld: audio block)``."""
    by_id = {c.id: c for c in scenario.calls}
    out = []
    for block in scenario.blocks:
        for spec in sorted((by_id[cid] for cid in block.call_ids), key=lambda c: c.arrival_s):
            withheld = " (withheld: audio block)" if block.modality.value == "audio" else ""
            items = [TimelineItem(u.at_s, "speech", u.text) for u in spec.utterances]
            media = []
            if spec.media.video:
                items.append(TimelineItem(spec.media.video_at_s, "video", f"live video starts{withheld}"))
                media.append(f"video: {_media_name(spec.media.video)}{withheld}")
            if spec.media.audio:
                media.append(f"voice: {_media_name(spec.media.audio)}")
            elif spec.media.voice:
                media.append(f"voice: espeak-ng {spec.media.voice}")
            for i, photo in enumerate(spec.media.photos, 1):
                at = photo.at_s + spec.manipulation.photo_delay_s
                items.append(TimelineItem(at, "photo", f"photo {i} sent{withheld}"))
                media.append(f"photo {i} at {at:g} s: {_media_name(photo.file)}{withheld}")
            m = spec.manipulation
            if m.video_start != "ok":
                items.append(TimelineItem(0.0, "manipulation", f"video fails to start ({m.video_start})"))
            if m.video_drop_at_s is not None:
                items.append(TimelineItem(m.video_drop_at_s, "manipulation", "video drops"))
            truth = spec.truth
            out.append(CallPreview(
                call_id=spec.id,
                block_id=block.id,
                modality=block.modality.value,
                practice=block.practice,
                arrival_s=spec.arrival_s,
                caller_label=spec.caller_label,
                timeline=tuple(sorted(items, key=lambda t: (t.at_s, t.kind))),
                media=tuple(media),
                truth={
                    "incident type": INCIDENT_TYPES.get(truth.incident_type, truth.incident_type),
                    "urgency": truth.urgency.value,
                    "location": truth.location or "—",
                    "coordinates": f"{truth.lat:.5f}, {truth.lon:.5f}" if truth.lat is not None else "—",
                    "required items": ", ".join(truth.required_items) or "—",
                    "speech vs image": ", ".join(
                        f"{DISAGREEMENT_ASPECTS.get(a, a)}: {'agree' if ok else 'DISAGREE'}"
                        for a, ok in truth.congruence.items()) or "—",
                },
            ))
    return out


# --- a new scenario from uploaded media --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """An uploaded file: the browser's file ``name`` and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class NewScenario:
    """Form fields of a one-call scenario made from uploaded media.

    ``lines`` are the caller's lines, one per entry, optionally prefixed ``"12: "`` (seconds after the answer;
    without a time a line comes 5 s after the previous one). ``congruence`` maps aspect -> True (speech and image
    agree) / False (they disagree). ``photo_times_s`` are the seconds after arrival each photo is sent (default
    3, 6, 9, ...). ``voice`` an espeak-ng voice (``nl``, ``en``) to speak the lines, or empty for silence.
    """

    scenario_id: str
    title: str
    modality: str
    caller_label: str
    lines: tuple[str, ...]
    incident_type: str
    urgency: str
    location: str
    required_items: tuple[str, ...]
    congruence: dict[str, bool] = field(default_factory=dict)
    description: str = ""
    video: Upload | None = None
    photos: tuple[Upload, ...] = ()
    photo_times_s: tuple[float, ...] = ()
    voice: str = ""
    lat: float | None = None
    lon: float | None = None


_TIMED_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:|]\s*(.+?)\s*$")


def parse_lines(lines: tuple[str, ...] | list[str]) -> list[tuple[float, str]]:
    """``[(at_s, text)]`` from form lines (``"12: text"`` or ``"text"`` = previous + 5 s; blank lines skipped).
    Raises :class:`LibraryError` when the times go backwards."""
    out: list[tuple[float, str]] = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        match = _TIMED_LINE.match(raw)
        at, text = (float(match.group(1)), match.group(2)) if match else (out[-1][0] + 5.0 if out else 0.0, raw.strip())
        if out and at < out[-1][0]:
            raise LibraryError(f"caller line {n}: {at:g} s comes before the previous line ({out[-1][0]:g} s); "
                               "put the lines in the order the caller says them")
        out.append((at, text))
    return out


def _safe_name(name: str, fallback: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(name).name).strip("-.") or fallback
    return stem[:80]


def _check_media(new: NewScenario) -> list[str]:
    """Problems with the uploads: wrong type, empty, too large, or not decodable (Pillow for photos, PyAV for
    video), each naming the file."""
    problems = []
    uploads = ([("video", new.video)] if new.video else []) + [("photo", p) for p in new.photos]
    for kind, up in uploads:
        suffix = Path(up.name).suffix.lower()
        allowed = VIDEO_SUFFIXES if kind == "video" else PHOTO_SUFFIXES
        if suffix not in allowed:
            problems.append(f"{kind} {up.name!r}: expected a file ending in {', '.join(allowed)}")
            continue
        if not up.data:
            problems.append(f"{kind} {up.name!r}: the file is empty")
            continue
        if len(up.data) > MAX_UPLOAD_BYTES:
            problems.append(f"{kind} {up.name!r}: {len(up.data)} bytes is more than {MAX_UPLOAD_BYTES} bytes")
            continue
        try:
            if kind == "photo":
                _check_photo(up.data)
            else:
                _check_video(up.data)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means the file cannot be played
            problems.append(f"{kind} {up.name!r}: cannot be read as a {kind} ({exc})")
    return problems


def _check_photo(data: bytes) -> None:
    from PIL import Image

    try:
        import pillow_heif  # HEIC/HEIF from phones, as the ingest accepts them

        pillow_heif.register_heif_opener()
    except ImportError:
        pass
    with Image.open(io.BytesIO(data)) as img:
        img.load()


def _check_video(data: bytes) -> None:
    import av

    with av.open(io.BytesIO(data)) as container:
        if not container.streams.video:
            raise ValueError("it has no video stream")
        for _frame in container.decode(video=0):
            return
        raise ValueError("no frame could be decoded")


def scenario_toml(new: NewScenario, video_file: str, photo_files: list[str]) -> str:
    """The scenario TOML for ``new`` with its media at the given file names (relative to the scenario file).
    Strings are written as JSON strings, which are valid TOML basic strings."""
    q = json.dumps
    lines = parse_lines(new.lines)
    call_id = "call-1"
    out = [
        "# Made in the trainer's scenario library from uploaded media.",
        f"id = {q(new.scenario_id)}",
        f"title = {q(new.title)}",
        f"description = {q(new.description)}",
        "",
        "[[blocks]]",
        f"id = {q(new.modality + '-block')}",
        f"modality = {q(new.modality)}",
        f"calls = [{q(call_id)}]",
        "",
        "[[calls]]",
        f"id = {q(call_id)}",
        "arrival_s = 0",
        f"caller_label = {q(new.caller_label)}",
    ]
    if video_file:
        out.append(f"media.video = {q(video_file)}")
    if new.voice:
        out.append(f"media.voice = {q(new.voice)}")
    times = list(new.photo_times_s) + [3.0 * (i + 1) for i in range(len(new.photo_times_s), len(photo_files))]
    if photo_files:
        photos = ", ".join(f"{{ file = {q(f)}, at_s = {t:g} }}" for f, t in zip(photo_files, times))
        out.append(f"media.photos = [{photos}]")
    out.append("utterances = [")
    out.extend(f"  {{ at_s = {at:g}, text = {q(text)} }}," for at, text in lines)
    out.append("]")
    out += ["", "[calls.truth]",
            f"incident_type = {q(new.incident_type)}",
            f"urgency = {q(new.urgency)}",
            f"location = {q(new.location)}"]
    if new.lat is not None and new.lon is not None:
        out += [f"lat = {new.lat!r}", f"lon = {new.lon!r}"]
    out.append(f"required_items = [{', '.join(q(i) for i in new.required_items)}]")
    out.append("congruence = { " + ", ".join(f"{a} = {'true' if v else 'false'}"
                                              for a, v in new.congruence.items()) + " }")
    return "\n".join(out) + "\n"


def add_scenario(library: Path, new: NewScenario) -> Path:
    """Validate ``new`` and write ``<library>/<scenario_id>/scenario.toml`` with its media; returns the TOML's path.

    Raises :class:`LibraryError` listing every problem (id taken or malformed, unknown incident type, urgency or
    item, a media file that cannot be decoded, and the loader's own ``file: field: message`` lines) before anything
    is written; an existing scenario folder is never touched.
    """
    library = Path(library)
    problems = []
    if not re.match(IDENT, new.scenario_id or ""):
        problems.append(f"scenario id {new.scenario_id!r}: use 1-64 letters, digits, '_', '.', '-' (no spaces), "
                        "starting with a letter or digit")
    elif (library / new.scenario_id).exists():
        problems.append(f"scenario id {new.scenario_id!r} is taken ({library / new.scenario_id} exists); "
                        "choose another id (existing scenarios are never overwritten)")
    if new.modality not in ("audio", "photo", "video"):
        problems.append(f"modality {new.modality!r}: expected audio, photo or video")
    if new.incident_type not in INCIDENT_TYPES:
        problems.append(f"incident type {new.incident_type!r}: expected one of {', '.join(INCIDENT_TYPES)}")
    unknown = [i for i in new.required_items if i not in INFORMATION_ITEMS]
    if unknown:
        problems.append(f"required items {', '.join(unknown)}: expected from {', '.join(INFORMATION_ITEMS)}")
    if new.modality == "video" and new.video is None:
        problems.append("a video block needs a video: upload one, or choose modality photo or audio")
    if new.modality == "photo" and not new.photos:
        problems.append("a photo block needs at least one photo: upload one, or choose modality audio")
    try:
        if not parse_lines(new.lines):
            problems.append("the caller says nothing: write at least one caller line")
    except LibraryError as exc:
        problems.append(str(exc))
    problems += _check_media(new)
    if problems:
        raise LibraryError("\n".join(problems))
    video_file = f"media/{_safe_name(new.video.name, 'video')}" if new.video else ""
    photo_files: list[str] = []
    for i, up in enumerate(new.photos, 1):
        photo_files.append(f"media/photo-{i}-{_safe_name(up.name, 'photo')}")
    text = scenario_toml(new, video_file, photo_files)
    library.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".new-{new.scenario_id}-", dir=library))
    try:
        (staging / "media").mkdir()
        for rel, up in zip(([video_file] if video_file else []) + photo_files,
                           ([new.video] if new.video else []) + list(new.photos)):
            _write_synced(staging / rel, up.data)
        _write_synced(staging / "scenario.toml", text.encode("utf-8"))
        try:
            parse_scenario(text.encode("utf-8"), f"{new.scenario_id}/scenario.toml", staging)
        except ScenarioError as exc:
            raise LibraryError(str(exc)) from None
        final = library / new.scenario_id
        if final.exists():  # someone added it while we wrote
            raise LibraryError(f"scenario id {new.scenario_id!r} was taken meanwhile; choose another id")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final / "scenario.toml"


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
