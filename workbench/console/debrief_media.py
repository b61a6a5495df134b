"""A call's recording made playable in the browser, for the debrief's replay.

The ingest records each call as Matroska segments (``media/<call_id>/rec-0001.mkv``, ... ; H.264 + Opus, or the
caller's VP8 + Opus with ``record_video = "copy"``, see ``workbench.ingest.recording``). Browsers do not play
Matroska, but they play H.264 with Opus in MP4 and VP8 with Opus in WebM, so the segments are remuxed (packets
copied, nothing re-encoded: fast and lossless) into one file of the container that suits the video codec
(:data:`CONTAINERS`) with PyAV. The recorder stamps every packet on the call's own time line (0 = first recorded video frame), so the
segments' packets follow each other without any shift.

The MP4 goes into a cache outside the recordings (recordings are append-only and listed in their manifest; a
derived file does not belong there), named by the SHA-256 of the segments it was made from, written to a temporary
name and renamed, so a half-written file is never served and a changed recording never serves a stale copy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Sequence

import av


class ReplayMediaError(Exception):
    """A recording could not be made playable (missing or unreadable segment, a video codec no browser container
    takes, segments of different codecs); the message names the file."""


CONTAINERS = {"h264": ("mp4", "video/mp4"), "vp8": ("webm", "video/webm")}
"""Video codec of the recording -> (container the browser copy is written in, its MIME type)."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/workbench112/debrief`` (``~/.cache/...`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "workbench112" / "debrief"


def browser_copy(segments: Sequence[Path], cache_dir: Path) -> Path:
    """The call's segments, in order, remuxed into one file a browser plays (faststart MP4 for H.264, WebM for VP8;
    the suffix says which) in ``cache_dir``; made once per set of segment contents (an existing copy is returned at
    once).

    Raises :class:`ReplayMediaError` when there are no segments, one cannot be read, or their video codec has no
    browser container or differs between segments.
    """
    if not segments:
        raise ReplayMediaError("the call has no recording segments (recording off, audio-only failure, or no video)")
    out = copy_path(segments, cache_dir)
    if out.exists():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".remux-", suffix=out.suffix, dir=cache_dir)
    os.close(fd)
    try:
        _remux(segments, Path(tmp_name))
        os.replace(tmp_name, out)
    except (av.error.FFmpegError, ValueError) as exc:  # the muxer refusing what the segments hold
        Path(tmp_name).unlink(missing_ok=True)
        raise ReplayMediaError(f"cannot make the recording playable in the browser: {exc}") from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out


def copy_path(segments: Sequence[Path], cache_dir: Path) -> Path:
    """Where :func:`browser_copy` keeps the copy of ``segments`` in ``cache_dir`` (named by their contents' SHA-256,
    suffixed by the container of their video codec); raises :class:`ReplayMediaError` when a segment cannot be read
    or the codecs do not fit one browser container."""
    container, _ = CONTAINERS[video_codec(segments)]
    digest = hashlib.sha256()
    for path in segments:
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError as exc:
            raise ReplayMediaError(f"cannot read recording segment {path}: {exc}") from exc
    return cache_dir / f"{digest.hexdigest()[:32]}.{container}"


def mime_type(copy: Path) -> str:
    """The MIME type of a copy made by :func:`browser_copy` (``video/mp4`` or ``video/webm``)."""
    return next(mime for container, mime in CONTAINERS.values() if copy.suffix == f".{container}")


def video_codec(segments: Sequence[Path]) -> str:
    """The video codec of ``segments`` (``h264`` or ``vp8``; ``h264`` for audio-only segments, which MP4 holds).
    Raises :class:`ReplayMediaError` for an unreadable segment, another codec, or segments of different codecs."""
    codecs = set()
    for path in segments:
        try:
            with av.open(str(path)) as source:
                codecs.update(s.codec_context.name for s in source.streams.video)
        except (av.error.FFmpegError, OSError) as exc:
            raise ReplayMediaError(f"cannot open recording segment {path}: {exc}") from exc
    codec = codecs.pop() if len(codecs) == 1 else "h264" if not codecs else ""
    if codec not in CONTAINERS:
        raise ReplayMediaError(f"the call's recording has video codec(s) {sorted(codecs | {codec} - {''})}: the "
                               "replay plays one of H.264 or VP8; open the segments in a video player")
    return codec


def forget_replays(session_dir: Path, cache_dirs: Sequence[Path]) -> list[Path]:
    """Delete the browser copies of the session's recordings from every folder in ``cache_dirs`` and return the
    files deleted. A withdrawal calls it before the session's folder goes: the copies live outside the recordings,
    so removing the folder alone would leave the participant's video behind. A call whose segments cannot be read
    any more is skipped (its copy's name cannot be known; the caller says so)."""
    from workbench.console.debrief_viewmodel import DebriefError, load_debrief

    try:
        calls = load_debrief(session_dir).calls
    except DebriefError:
        return []
    removed = []
    for call in calls:
        if not call.segments:
            continue
        try:
            name = copy_path(call.segments, Path()).name
        except ReplayMediaError:
            continue
        for folder in cache_dirs:
            copy = folder / name
            if copy.is_file():
                copy.unlink()
                removed.append(copy)
    return removed


def replay_cache_dirs() -> list[Path]:
    """The folders replay copies may be in: :func:`default_cache_dir` and ``$WORKBENCH_DEBRIEF_CACHE`` when set."""
    dirs = [default_cache_dir()]
    if os.environ.get("WORKBENCH_DEBRIEF_CACHE"):
        dirs.append(Path(os.environ["WORKBENCH_DEBRIEF_CACHE"]))
    return dirs


def _remux(segments: Sequence[Path], out: Path) -> None:
    # faststart moves MP4's index to the front so the browser can start playing (and seek) before the end arrives.
    options = {"movflags": "+faststart"} if out.suffix == ".mp4" else {}
    with av.open(str(out), "w", format=out.suffix.lstrip("."), options=options) as sink:
        mapping: dict[str, av.stream.Stream] = {}
        last_dts: dict[str, int] = {}
        for path in segments:
            try:
                source = av.open(str(path))
            except (av.error.FFmpegError, OSError) as exc:
                raise ReplayMediaError(f"cannot open recording segment {path}: {exc}") from exc
            with source:
                streams = [s for s in source.streams if s.type in ("video", "audio")]
                for stream in streams:
                    if stream.type not in mapping:
                        mapping[stream.type] = sink.add_stream_from_template(stream)
                try:
                    for packet in source.demux(streams):
                        if packet.dts is None or packet.size == 0:
                            continue  # the demuxer's flush packet
                        kind = packet.stream.type
                        # A segment cut by a crash may repeat a timestamp at the seam; the muxer needs them rising.
                        if kind in last_dts and packet.dts <= last_dts[kind]:
                            continue
                        last_dts[kind] = packet.dts
                        packet.stream = mapping[kind]
                        sink.mux(packet)
                except av.error.FFmpegError:
                    pass  # a segment cut by a crash: keep what was read up to the cut
