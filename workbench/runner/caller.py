"""A simulated caller: an aiortc client that opens a one-time caller link like a browser would.

It GETs the caller URL (which binds the link to its cookie jar), offers live video and/or audio read from files,
and uploads photos through the same multipart endpoint the caller page uses. Used by ``workbench caller`` and by
the scenario runner (one ``workbench caller`` process per call, so media encoding spreads over the cores).

The study's manipulations (:class:`CallerManipulation`) are applied here, to what the caller sends: live video that
never starts (no offer, or a video track without frames), that drops at a time, reduced resolution and frame rate
(:class:`ManipulatedVideoTrack` wraps the player's track), and degraded images (blur, dark, partial view) applied
to photos before upload (:func:`degrade_image_bytes`) and/or to every video frame. Times run on a
:class:`PausableClock`, so a paused session also holds the caller's photo and drop times.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import fractions
import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import aiohttp
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError
import numpy as np
from av import AudioFrame, VideoFrame
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from workbench.ice import rtc_configuration

log = logging.getLogger(__name__)


class CallerError(RuntimeError):
    """The ingest refused the caller (bad link, refused offer or photo) or the connection did not come up."""


class PausableClock:
    """Seconds since :meth:`start` (or creation) minus the time spent paused; :meth:`sleep_until` waits for a clock
    time and keeps waiting while paused. Poll step ``step_s`` (s) bounds how late a wake-up can be."""

    def __init__(self, step_s: float = 0.02) -> None:
        self._t0 = time.monotonic()
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._step_s = step_s

    def start(self, elapsed_s: float = 0.0) -> None:
        """Restart at ``elapsed_s`` (s, >= 0; a pause already requested stays in force)."""
        now = time.monotonic()
        self._t0, self._paused_total = now - max(0.0, elapsed_s), 0.0
        if self._paused_at is not None:
            self._paused_at = now

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def pause(self) -> None:
        """Stop the clock (no-op when paused)."""
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        """Let the clock run again (no-op when running)."""
        if self._paused_at is not None:
            self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None

    def now(self) -> float:
        """Clock time, s."""
        end = self._paused_at if self._paused_at is not None else time.monotonic()
        return end - self._t0 - self._paused_total

    async def sleep_until(self, t_s: float) -> None:
        """Return once :meth:`now` >= ``t_s`` and the clock is running."""
        while True:
            remaining = t_s - self.now()
            if remaining <= 0 and not self.paused:
                return
            await asyncio.sleep(self._step_s if self.paused else max(0.0, min(remaining, 0.25)))


@dataclass(frozen=True)
class CallerManipulation:
    """What this caller sends differently (see ``workbench.domain.scenario.Manipulation``; same meanings).

    ``video_start``: ``ok``, ``no_offer``, ``no_frames``; ``video_drop_at_s``: clock time the video track ends;
    ``video_scale`` (0-1], ``video_fps`` (0 = source); ``blur_px``, ``brightness`` (0-1], ``visible`` (0-1];
    ``degrade_photos``/``degrade_video``: where the image degradations apply.
    """

    video_start: str = "ok"
    video_drop_at_s: float | None = None
    video_scale: float = 1.0
    video_fps: float = 0.0
    blur_px: float = 0.0
    brightness: float = 1.0
    visible: float = 1.0
    degrade_photos: bool = True
    degrade_video: bool = True

    def __post_init__(self) -> None:
        if self.video_start not in ("ok", "no_offer", "no_frames"):
            raise ValueError(f"video_start must be ok, no_offer or no_frames, got {self.video_start!r}")
        for name in ("video_scale", "brightness", "visible"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if self.video_fps < 0 or self.blur_px < 0:
            raise ValueError("video_fps and blur_px must be >= 0")

    @property
    def degrades(self) -> bool:
        return self.blur_px > 0 or self.brightness < 1 or self.visible < 1

    @property
    def touches_video(self) -> bool:
        """True when the video track needs wrapping."""
        return (
            self.video_drop_at_s is not None
            or self.video_scale < 1
            or self.video_fps > 0
            or (self.degrade_video and self.degrades)
        )


def degrade_image(image: Image.Image, m: CallerManipulation) -> Image.Image:
    """``image`` (RGB) blurred by ``m.blur_px`` (Gaussian radius, px), scaled in brightness by ``m.brightness`` and
    black outside the centred ``m.visible`` share of width and height. Returns a new RGB image, same size."""
    out = image.convert("RGB")
    if m.blur_px > 0:
        out = out.filter(ImageFilter.GaussianBlur(m.blur_px))
    if m.brightness < 1:
        out = ImageEnhance.Brightness(out).enhance(m.brightness)
    if m.visible < 1:
        w, h = out.size
        vw, vh = max(1, round(w * m.visible)), max(1, round(h * m.visible))
        left, top = (w - vw) // 2, (h - vh) // 2
        window = out.crop((left, top, left + vw, top + vh))
        out = Image.new("RGB", (w, h))
        out.paste(window, (left, top))
    return out


def degrade_image_bytes(data: bytes, m: CallerManipulation) -> bytes:
    """A photo file's bytes degraded by :func:`degrade_image` (upright first, EXIF orientation applied), as JPEG
    (quality 92). Raises ``PIL.UnidentifiedImageError`` for bytes that are not an image PIL reads."""
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img)
        out = degrade_image(upright, m)
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


class LoopingVideoTrack(MediaStreamTrack):
    """The video of ``path`` played in a loop at its own frame rate, with timestamps that keep increasing.

    Why not ``MediaPlayer(loop=True)``: aiortc's player seeks back to the start and hands on the file's timestamps
    again from zero, so after the first pass it bursts frames without pacing and the VP8 encoder refuses the
    backwards timestamps (``InvalidDataError``), freezing the picture. Here each pass opens a fresh player and the
    pass's timestamps are shifted past the previous pass's last frame. ``passes`` counts completed passes.
    """

    kind = "video"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._player: MediaPlayer | None = None
        self._offset = 0
        self._last_pts: int | None = None
        self._interval = 1
        self.passes = 0

    async def recv(self) -> Any:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._player is None:
                self._player = MediaPlayer(str(self._path))
                if self._player.video is None:
                    raise MediaStreamError
                if self._last_pts is not None:
                    self._offset = self._last_pts + self._interval
            try:
                frame = await self._player.video.recv()
            except MediaStreamError:
                self._player.video.stop()
                self._player = None
                self.passes += 1
                continue
            frame.pts += self._offset
            if self._last_pts is not None and frame.pts > self._last_pts:
                self._interval = frame.pts - self._last_pts
            self._last_pts = frame.pts
            return frame

    def stop(self) -> None:
        super().stop()
        if self._player is not None and self._player.video is not None:
            self._player.video.stop()
        self._player = None


class ManipulatedVideoTrack(MediaStreamTrack):
    """A video track that passes ``source``'s frames through the manipulation: never a frame (``no_frames``), none
    after ``video_drop_at_s`` on ``clock`` (the track ends), at most ``video_fps`` frames per second (others
    dropped), scaled by ``video_scale`` (even sizes) and degraded (when ``degrade_video``). ``frames_sent`` and
    ``frames_dropped`` count what it did."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, m: CallerManipulation, clock: PausableClock) -> None:
        super().__init__()
        self._source = source
        self._m = m
        self._clock = clock
        self._stopped = asyncio.Event()
        self._last_sent: float | None = None
        self.frames_sent = 0
        self.frames_dropped = 0

    async def recv(self) -> Any:
        if self._m.video_start == "no_frames":
            await self._stopped.wait()
            raise MediaStreamError
        while True:
            if self._m.video_drop_at_s is not None and self._clock.now() >= self._m.video_drop_at_s:
                self.stop()
                raise MediaStreamError
            frame = await self._source.recv()
            now = time.monotonic()
            if self._m.video_fps > 0 and self._last_sent is not None and now - self._last_sent < 1 / self._m.video_fps - 0.005:
                self.frames_dropped += 1
                continue
            self._last_sent = now
            self.frames_sent += 1
            return self._transform(frame)

    def _transform(self, frame: VideoFrame) -> VideoFrame:
        m = self._m
        out = frame
        if m.video_scale < 1:
            w = max(2, int(frame.width * m.video_scale) // 2 * 2)
            h = max(2, int(frame.height * m.video_scale) // 2 * 2)
            out = out.reformat(width=w, height=h)
        if m.degrade_video and m.degrades:
            out = VideoFrame.from_image(degrade_image(out.to_image(), m))
        if out is not frame:
            out.pts = frame.pts
            out.time_base = frame.time_base or fractions.Fraction(1, 90000)
        return out

    def stop(self) -> None:
        super().stop()
        self._stopped.set()
        self._source.stop()


class SpeechTrack(MediaStreamTrack):
    """A live audio track (48 kHz mono, 20 ms frames, paced in real time) that is silent until :meth:`say` queues a
    line, which it then plays. ``lines`` are int16 sample arrays at 48 kHz (``workbench.runner.speech``). At most
    ``len(lines)`` lines wait (a bounded queue; older requests are dropped and counted in ``lines_dropped``).
    ``lines_said`` lists the indexes played (started), in order."""

    kind = "audio"
    RATE = 48_000
    FRAME = 960

    def __init__(self, lines: Sequence[np.ndarray]) -> None:
        super().__init__()
        self._lines = [np.asarray(x, dtype=np.int16) for x in lines]
        self._waiting: collections.deque[int] = collections.deque(maxlen=max(1, len(self._lines)))
        self._current: np.ndarray | None = None
        self._pos = 0
        self._start: float | None = None
        self._timestamp = 0
        self.lines_said: list[int] = []
        self.lines_dropped = 0

    def say(self, index: int) -> None:
        """Queue line ``index``; raises ``IndexError`` for an unknown line."""
        if not 0 <= index < len(self._lines):
            raise IndexError(f"no line {index} (have {len(self._lines)})")
        if len(self._waiting) == self._waiting.maxlen:
            self.lines_dropped += 1
        self._waiting.append(index)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._timestamp += self.FRAME
            await asyncio.sleep(max(0.0, self._start + self._timestamp / self.RATE - time.time()))
        out = np.zeros(self.FRAME, np.int16)
        filled = 0
        while filled < self.FRAME:
            if self._current is None:
                if not self._waiting:
                    break
                index = self._waiting.popleft()
                self._current, self._pos = self._lines[index], 0
                self.lines_said.append(index)
                log.info("saying line %d (%.1f s)", index, len(self._current) / self.RATE)
            chunk = self._current[self._pos : self._pos + self.FRAME - filled]
            out[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            self._pos += len(chunk)
            if self._pos >= len(self._current):
                self._current = None
        frame = AudioFrame.from_ndarray(out.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, self.RATE)
        return frame


@dataclass(frozen=True)
class PhotoUpload:
    """A photo to attach ``at_s`` seconds after the caller opened the link."""

    path: Path
    at_s: float = 0.0


@dataclass
class CallerReport:
    """What a simulated caller did: final connection state, media sent and the ingest's answers to photo uploads."""

    connection_state: str = "new"
    video_sent: bool = False
    audio_sent: bool = False
    photos: list[dict] = field(default_factory=list)
    connected_after_s: float | None = None


class SimulatedCaller:
    """One caller on one link. Use as ``async with SimulatedCaller(url) as caller: ...``.

    ``ice_mode`` as in ``workbench.ice.rtc_configuration``; ``loopback`` for a caller on the same machine.
    """

    def __init__(
        self,
        caller_url: str,
        *,
        ice_mode: str = "loopback",
        connect_timeout_s: float = 20.0,
        manipulation: CallerManipulation | None = None,
        clock: PausableClock | None = None,
    ) -> None:
        self.caller_url = caller_url.rstrip("/")
        self.manipulation = manipulation or CallerManipulation()
        self.clock = clock or PausableClock()
        self.video_track: ManipulatedVideoTrack | None = None
        self.report = CallerReport()
        self._ice_mode = ice_mode
        self._connect_timeout_s = connect_timeout_s
        self._http: aiohttp.ClientSession | None = None
        self._pc: RTCPeerConnection | None = None
        self._players: list[MediaPlayer] = []
        self._t0 = time.monotonic()

    async def __aenter__(self) -> "SimulatedCaller":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    async def open(self) -> None:
        """GET the caller page so the link is bound to this caller's cookie. Raises :class:`CallerError`."""
        # unsafe=True: the ingest is addressed by IP (127.0.0.1), for which aiohttp's default jar drops cookies.
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self._http.get(self.caller_url) as resp:
            if resp.status != 200:
                raise CallerError(f"caller link refused: HTTP {resp.status}: {(await resp.text())[:200]}")
        self._t0 = time.monotonic()

    async def start_media(
        self,
        video: Path | None = None,
        audio: Path | None = None,
        *,
        loop_video: bool = True,
        speech: SpeechTrack | None = None,
    ) -> None:
        """Offer the given media files as live tracks and wait until connected.

        ``video`` is any file PyAV reads (played in a loop by default); ``audio`` a sound file played once (or the
        video's own sound when ``audio`` is None); ``speech`` a :class:`SpeechTrack` sent as the voice instead.
        Raises :class:`CallerError` when the offer is refused or the connection is not up within
        ``connect_timeout_s``.
        """
        if self._http is None:
            raise CallerError("open() the link before starting media")
        if video is None and audio is None and speech is None:
            raise CallerError("start_media needs a video or an audio file, or a speech track")
        await self._close_pc()
        pc = RTCPeerConnection(rtc_configuration(self._ice_mode))
        self._pc = pc
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            self.report.connection_state = pc.connectionState
            if pc.connectionState == "connected":
                connected.set()

        if video is not None:
            player = MediaPlayer(str(video))
            self._players.append(player)
            if player.video is None:
                raise CallerError(f"{video} has no video stream")
            track = player.video
            if loop_video:
                player.video.stop()  # this player serves only the file's own sound; the loop has its own players
                track = self.video_track = LoopingVideoTrack(video)
            m = self.manipulation
            if m.touches_video or m.video_start == "no_frames":
                track = self.video_track = ManipulatedVideoTrack(track, m, self.clock)
            pc.addTrack(track)
            self.report.video_sent = True
            if audio is None and speech is None and player.audio is not None:
                pc.addTrack(player.audio)
                self.report.audio_sent = True
        if speech is not None:
            pc.addTrack(speech)
            self.report.audio_sent = True
        if audio is not None:
            sound = MediaPlayer(str(audio))
            self._players.append(sound)
            if sound.audio is None:
                raise CallerError(f"{audio} has no audio stream")
            pc.addTrack(sound.audio)
            self.report.audio_sent = True
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        async with self._http.post(f"{self.caller_url}/offer", json=offer) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                raise CallerError(f"offer refused: HTTP {resp.status}: {body.get('error', body)}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
        try:
            await asyncio.wait_for(connected.wait(), self._connect_timeout_s)
        except asyncio.TimeoutError:
            raise CallerError(
                f"no connection within {self._connect_timeout_s:.0f} s (state {pc.connectionState})"
            ) from None
        self.report.connected_after_s = round(time.monotonic() - self._t0, 3)

    async def send_photo(self, path: Path) -> dict:
        """Upload one photo (multipart field ``photo``); returns the ingest's JSON answer. Raises CallerError."""
        if self._http is None:
            raise CallerError("open() the link before sending photos")
        data = path.read_bytes()
        name = path.name
        if self.manipulation.degrade_photos and self.manipulation.degrades:
            data = await asyncio.to_thread(degrade_image_bytes, data, self.manipulation)
            name = f"{path.stem}-degraded.jpg"
        form = aiohttp.FormData()
        form.add_field("photo", data, filename=name, content_type="application/octet-stream")
        async with self._http.post(f"{self.caller_url}/photos", data=form) as resp:
            body = await resp.json(content_type=None)
            if resp.status not in (200, 201):
                raise CallerError(f"photo {path.name} refused: HTTP {resp.status}: {body.get('error', body)}")
        self.report.photos.append(body)
        return body

    async def hang_up(self) -> None:
        """Stop media, close the peer connection and the HTTP session (idempotent)."""
        await self._close_pc()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _close_pc(self) -> None:
        if self.video_track is not None:
            self.video_track.stop()
            self.video_track = None
        for player in self._players:
            for track in (player.audio, player.video):
                if track is not None:
                    track.stop()
        self._players.clear()
        if self._pc is not None:
            await self._pc.close()
            self.report.connection_state = "closed"
            self._pc = None


async def stream_call(
    caller_url: str,
    *,
    video: Path | None = None,
    audio: Path | None = None,
    photos: Sequence[PhotoUpload] = (),
    video_at_s: float = 0.0,
    duration_s: float | None = None,
    ice_mode: str = "loopback",
    stop: asyncio.Event | None = None,
    manipulation: CallerManipulation | None = None,
    clock: PausableClock | None = None,
    speech: SpeechTrack | None = None,
    origin_wall_s: float | None = None,
) -> CallerReport:
    """Play one caller: open the link, start media ``video_at_s`` s after opening, upload ``photos`` at their
    times, and hang up after ``duration_s`` s or when ``stop`` is set (whichever first; forever when neither).

    Photo, media-start and video-drop times run on ``clock`` (paused by whoever holds it), counted from
    ``origin_wall_s`` (POSIX s; the runner passes the call's arrival, so a slow process start does not shift the
    scenario's times) or else from the link's opening. ``manipulation`` changes what is sent (see :class:`CallerManipulation`); with ``no_offer`` no live
    media is offered at all. ``speech`` is the voice track (its lines are queued by whoever holds it).
    Raises :class:`CallerError` when the ingest refuses the link, the offer or a photo.
    """
    stop = stop or asyncio.Event()
    clock = clock or PausableClock()
    m = manipulation or CallerManipulation()
    caller = SimulatedCaller(caller_url, ice_mode=ice_mode, manipulation=m, clock=clock)
    await caller.open()
    try:
        clock.start(0.0 if origin_wall_s is None else time.time() - origin_wall_s)

        async def photos_at_their_times() -> None:
            for photo in sorted(photos, key=lambda p: p.at_s):
                await clock.sleep_until(photo.at_s)
                await caller.send_photo(photo.path)

        async def media_at_its_time() -> None:
            if video is None and audio is None and speech is None:
                return
            if m.video_start == "no_offer":
                log.info("manipulation: live media never offered (video_start no_offer)")
                return
            await clock.sleep_until(video_at_s)
            await caller.start_media(video, audio, speech=speech)

        work = asyncio.ensure_future(asyncio.gather(photos_at_their_times(), media_at_its_time()))
        ends = [asyncio.ensure_future(stop.wait())]
        if duration_s is not None:
            ends.append(asyncio.ensure_future(asyncio.sleep(duration_s)))
        try:
            done, _ = await asyncio.wait([work, *ends], return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                work.result()  # a refused photo or offer is raised here
                await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (work, *ends):
                fut.cancel()
            await asyncio.gather(work, *ends, return_exceptions=True)
    finally:
        await caller.hang_up()
    return caller.report


# --- command line (the runner starts one such process per call) ------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Options of ``python -m workbench.runner.caller``: those of ``workbench caller`` plus the manipulations and
    ``--control-stdin``."""
    def photo(value: str) -> PhotoUpload:
        path, _, at = value.rpartition("@") if "@" in value else (value, "", "0")
        try:
            return PhotoUpload(Path(path), float(at))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--photo {value!r}: expected PATH or PATH@SECONDS") from None

    p = argparse.ArgumentParser(
        prog="python -m workbench.runner.caller",
        description="One simulated caller with the scenario's manipulations (started by the scenario runner).",
    )
    p.add_argument("url", help="caller_url from POST /api/calls")
    p.add_argument("--video", type=Path, help="video file to stream (looped)")
    p.add_argument("--audio", type=Path, help="audio file to stream (played once)")
    p.add_argument("--photo", action="append", default=[], type=photo, metavar="PATH[@S]", help="photo at S s")
    p.add_argument("--video-at", type=float, default=0.0, metavar="S", help="start live media at S s")
    p.add_argument("--duration", type=float, help="hang up after this many seconds")
    p.add_argument("--ice", choices=("lan", "stun", "loopback"), default="loopback")
    p.add_argument("--video-start", choices=("ok", "no_offer", "no_frames"), default="ok",
                   help="no_offer: never offer live media; no_frames: offer a video track that sends nothing")
    p.add_argument("--video-drop-at", type=float, metavar="S", help="the video track ends at S s")
    p.add_argument("--video-scale", type=float, default=1.0, metavar="F", help="scale the picture by F (0-1]")
    p.add_argument("--video-fps", type=float, default=0.0, metavar="N", help="cap the frame rate at N (0: source)")
    p.add_argument("--blur", type=float, default=0.0, metavar="PX", help="Gaussian blur radius, px")
    p.add_argument("--brightness", type=float, default=1.0, metavar="F", help="brightness factor (0-1]")
    p.add_argument("--visible", type=float, default=1.0, metavar="F", help="centred share left visible (0-1]")
    p.add_argument("--degrade", default="photos,video", help="where degradations apply: photos,video")
    p.add_argument("--line", action="append", default=[], type=Path, metavar="WAV",
                   help="a spoken line (48 kHz mono WAV), in script order; 'say N' on stdin plays line N (repeatable)")
    p.add_argument("--origin", type=float, metavar="POSIX_S",
                   help="count every time (--photo, --video-at, --video-drop-at) from this wall-clock time (the "
                   "call's arrival) instead of from opening the link")
    p.add_argument("--control-stdin", action="store_true",
                   help="read 'pause', 'resume' and 'say N' lines from stdin; hang up at end of input (the runner "
                   "went away)")
    return p


async def _read_controls(clock: PausableClock, stop: asyncio.Event, speech: SpeechTrack | None = None) -> None:
    """Obey ``pause``, ``resume`` and ``say N`` lines on stdin; set ``stop`` at end of input (the parent runner died
    or ended)."""
    import sys

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=4096)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            stop.set()
            return
        command = line.decode(errors="replace").strip()
        if command == "pause":
            clock.pause()
        elif command == "resume":
            clock.resume()
        elif command.startswith("say ") and speech is not None:
            try:
                speech.say(int(command[4:]))
            except (ValueError, IndexError) as exc:
                log.warning("cannot say %r: %s", command, exc)
        log.info("control %r at clock %.3f s", command, clock.now())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one caller; exit 0 when it hung up normally, 1 when the ingest refused it, 2 for bad usage."""
    import signal
    import sys

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    places = {p.strip() for p in args.degrade.split(",") if p.strip()}
    try:
        manipulation = CallerManipulation(
            video_start=args.video_start,
            video_drop_at_s=args.video_drop_at,
            video_scale=args.video_scale,
            video_fps=args.video_fps,
            blur_px=args.blur,
            brightness=args.brightness,
            visible=args.visible,
            degrade_photos="photos" in places,
            degrade_video="video" in places,
        )
    except ValueError as exc:
        print(f"caller: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        clock = PausableClock()
        speech = None
        if args.line:
            from workbench.runner.speech import read_line

            speech = SpeechTrack([read_line(p) for p in args.line])
        controls = asyncio.ensure_future(_read_controls(clock, stop, speech)) if args.control_stdin else None
        try:
            report = await stream_call(
                args.url, video=args.video, audio=args.audio, photos=args.photo, video_at_s=args.video_at,
                duration_s=args.duration, ice_mode=args.ice, stop=stop, manipulation=manipulation, clock=clock,
                speech=speech, origin_wall_s=args.origin,
            )
        except (CallerError, OSError) as exc:
            print(f"caller: {exc}", file=sys.stderr)
            return 1
        finally:
            if controls is not None:
                controls.cancel()
        said = f", lines said {speech.lines_said}" if speech is not None else ""
        print(f"caller done: state {report.connection_state}, video {report.video_sent}, photos {len(report.photos)}"
              f"{said}", flush=True)
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
