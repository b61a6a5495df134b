"""Live media of one call: frame consumers, snapshots and the shared JPEG stream for viewers.

:class:`CallMedia` belongs to one call and outlives reconnects (each new peer connection adds streams to it).
Per received track, :meth:`CallMedia.consume` runs a task that takes frames off aiortc's (unbounded) receive queue
as soon as they arrive, keeps only the newest video frame and counts frames received and dropped. Nothing here
queues frames: snapshots and viewer JPEGs are made from the newest frame, at most one encode in flight each.

The viewer stream encodes the newest frame at most ``viewer_fps`` times a second, once per call, and every viewer
WebSocket sends whatever JPEG is newest when it is ready for the next one (a slow viewer skips frames, it never
builds a backlog). Each viewer JPEG carries a JPEG comment (COM segment) ``wb t_wall_ms=<ms> frame=<n>``: the
wall-clock time (ms since the epoch) the frame arrived at the ingest, so a viewer measures the stream's latency.

Recording (:mod:`workbench.ingest.recording`) gets every received frame, video and audio, through a bounded queue.
Analysis consumers (:meth:`CallMedia.add_analyzer`) get the newest frame, one call at a time each; a slow one skips
frames (counted) and never delays the live view. When a viewer joins, or no video frame has arrived for
:data:`STALL_S`, the ingest asks the caller for a keyframe (:func:`request_keyframe`, RTCP PLI); aiortc itself
sends one when its decoder fails.

Two live views: the shared JPEG stream (one encode per frame whatever the number of viewers) and a WebRTC relay
(:class:`RelayTrack`: newest video frame, bounded audio, re-encoded by aiortc once per viewer, so at most
:data:`MAX_WEBRTC_VIEWERS`), which also carries the caller's audio to the dispatcher. Measured in one run by
``tests/test_live_viewer.py`` (aiortc caller -> ingest -> Chromium, loopback, 2 shared cores): JPEG stream p50
135 ms / p95 212 ms, WebRTC relay p50 159 ms / p95 365 ms; the JPEG stream stays the default for video.
:class:`Prompts` holds the dispatcher's prompts to the caller's page (bounded, long-polled); the dispatcher's voice to
the caller (talk-back) is :mod:`workbench.ingest.talkback`, attached as :attr:`CallMedia.talkback`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import struct
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame
from av.video.reformatter import VideoReformatter

from workbench.domain import events as ev
from workbench.ingest.recording import RecorderFront
from workbench.ingest.settings import IngestSettings
from workbench.ingest.talkback import Talkback
from workbench.store.eventlog import Clock

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
"""JPEG quality of snapshots and viewer frames (OpenCV scale 0-100)."""


STALL_S = 2.0
"""No video frame for this long (s) while the track is live: ask the caller for a keyframe (at most once per stall)."""
KEYFRAME_MIN_INTERVAL_S = 1.0
"""At most one keyframe request per this many seconds."""
MAX_WEBRTC_VIEWERS = 4
"""WebRTC relay viewers per call: aiortc encodes VP8 once per viewer connection (~4-8% of a core each at 640x480),
so unlike the shared JPEG stream their cost grows with each viewer; this bounds it."""
MAX_PROMPTS = 20
"""Most dispatcher prompts (photo, switch camera, end video) one call keeps; more are refused."""
AUDIO_RELAY_FRAMES = 10
"""Audio frames (20 ms each) one relay viewer may lag behind before the oldest is dropped (200 ms)."""


def frame_bgr(frame: Any) -> np.ndarray:
    """A decoded video frame as a BGR image (uint8, shape (h, w, 3)); safe to call from several threads at once.

    Why not ``frame.to_ndarray(format="bgr24")``: PyAV keeps ONE swscale context per frame
    (``VideoFrame.reformatter``, av 18 ``av/video/frame.py``), so two threads converting the same frame at once (the
    viewer's JPEG and a snapshot; one to grey, one to BGR) race on it; the ingest died of SIGSEGV in
    ``benchmarks/bench_ingest.py`` from exactly that. yuv420p frames (what aiortc decodes to) are read without any
    conversion context (``to_ndarray()`` of the planes) and converted with OpenCV; other formats get a private
    :class:`VideoReformatter`."""
    if _plain_i420(frame):
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    return VideoReformatter().reformat(frame, format="bgr24").to_ndarray()


def _plain_i420(frame: Any) -> bool:
    """yuv420p with even sides: its planes read as one (h * 3 / 2, w) array without conversion."""
    return frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0


def frame_yuv420p(frame: Any) -> np.ndarray:
    """A decoded video frame's I420 planes (uint8, shape (h * 3 / 2, w)), sides rounded down to even; thread-safe
    like :func:`frame_bgr`."""
    if _plain_i420(frame):
        return frame.to_ndarray()
    even = {"width": frame.width // 2 * 2, "height": frame.height // 2 * 2}
    return VideoReformatter().reformat(frame, format="yuv420p", **even).to_ndarray()


def frame_grey(frame: Any) -> np.ndarray:
    """A decoded video frame as 8-bit grey (the Y plane, no colour conversion), shape (h, w); thread-safe like
    :func:`frame_bgr`."""
    if _plain_i420(frame):
        return frame.to_ndarray()[: frame.height]
    return cv2.cvtColor(frame_bgr(frame), cv2.COLOR_BGR2GRAY)


def encode_jpeg(frame: Any, quality: int = JPEG_QUALITY, comment: str = "") -> bytes:
    """Encode an aiortc/PyAV video frame as JPEG with OpenCV (runs in a worker thread; OpenCV releases the GIL).

    ``comment`` (ASCII) is stored in a COM segment right after SOI. Raises RuntimeError if OpenCV fails."""
    image = frame_bgr(frame)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the frame as JPEG")
    data = buf.tobytes()
    if comment:
        body = comment.encode("ascii")
        data = data[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + data[2:]
    return data


def jpeg_comment(data: bytes) -> str:
    """The COM segment text :func:`encode_jpeg` put right after SOI, or "" when there is none."""
    if data[2:4] != b"\xff\xfe":
        return ""
    (length,) = struct.unpack(">H", data[4:6])
    return data[6 : 4 + length].decode("ascii", "replace")


def quality_figures(grey: np.ndarray, previous: np.ndarray | None) -> tuple[float, float, float]:
    """``(sharpness, brightness, motion)`` of a grey image (uint8, shape (h, w)).

    sharpness: variance of the Laplacian (``cv2.Laplacian(grey, CV_64F).var()``, Pech-Pacheco et al. 2000);
    brightness: mean grey level 0-255; motion: mean absolute difference from ``previous`` (0-255; 0.0 without one,
    or when the sizes differ)."""
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    brightness = float(grey.mean())
    motion = 0.0
    if previous is not None and previous.shape == grey.shape:
        motion = float(cv2.absdiff(grey, previous).mean())
    return sharpness, brightness, motion


async def request_keyframe(pc: Any) -> int:
    """Ask the caller's video encoder for a keyframe (RTCP PLI) on every video receiver of ``pc``; returns how many
    requests were sent.

    aiortc has no public API for this: its receiver sends a PLI itself only when its jitter buffer or decoder sees
    loss. We call the receiver's private ``_send_rtcp_pli(media_ssrc)`` (aiortc 1.16,
    ``aiortc/rtcrtpreceiver.py``) with the SSRCs it is receiving (from its public ``getSynchronizationSources()``);
    this one function is the only place that touches the private API, so an aiortc upgrade breaks only here.
    """
    sent = 0
    for receiver in pc.getReceivers() if pc is not None else []:
        if receiver.track is None or receiver.track.kind != "video":
            continue
        send = getattr(receiver, "_send_rtcp_pli", None)
        if send is None:
            log.warning("this aiortc has no RTCRtpReceiver._send_rtcp_pli; cannot request a keyframe")
            return sent
        for source in receiver.getSynchronizationSources():
            await send(source.source)
            sent += 1
    return sent


@dataclass
class StreamStats:
    """Counters of one received track (one kind of one peer connection)."""

    kind: str
    frames_received: int = 0
    frames_dropped: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    ended: bool = False

    @property
    def duration_s(self) -> float:
        if self.first_ns is None or self.last_ns is None:
            return 0.0
        return (self.last_ns - self.first_ns) / 1e9


class CallMedia:
    """Newest frame, counters, snapshots and the viewer JPEG stream of one call.

    ``emit(payload)`` appends an event for this call; ``store(name, data)`` stores a media file for this call and
    returns ``(relpath, sha256)``. Both are called on the event loop's thread.
    """

    def __init__(
        self,
        *,
        settings: IngestSettings,
        clock: Clock,
        emit: Callable[[ev.Payload], Any],
        store: Callable[[str, bytes], tuple[str, str]],
        recorder: RecorderFront | None = None,
    ) -> None:
        self._settings = settings
        self.recorder = recorder
        """The call's recorder (None when the session does not record); closed by :meth:`wait_streams`."""
        self.talkback: Talkback | None = None
        """The dispatcher's voice to the caller (set by the ingest; :mod:`workbench.ingest.talkback`)."""
        self.peer: Callable[[], Any] = lambda: None
        """Returns the call's current RTCPeerConnection (set by the ingest), for keyframe requests."""
        self.latest_wall_ms = 0.0
        """Wall-clock arrival time of :attr:`latest_frame`, ms since the epoch."""
        self.latest_mono_ns = 0
        """Monotonic arrival time of :attr:`latest_frame`, ns (the time line handed on: monotonic, continuous)."""
        self._previous_frame: Any = None
        self._analyzers: list[Analyzer] = []
        self._last_keyframe_ns: int | None = None
        self.keyframes_requested = 0
        self._watchdog: asyncio.Task[None] | None = None
        self._relays: set[RelayTrack] = set()
        self.prompts = Prompts(clock)
        """The dispatcher's prompts to the caller's page (long-polled by the page)."""
        self.viewer_pcs: set[Any] = set()
        """WebRTC relay viewers' peer connections (closed when the call's media closes)."""
        self._clock = clock
        self._emit = emit
        self._store = store
        self.streams: list[StreamStats] = []
        self.video_codec = ""
        self.width = 0
        self.height = 0
        self.latest_frame: Any = None
        self.frame_index = 0
        """1-based index of :attr:`latest_frame` among all video frames of the call."""
        self.snapshots = 0
        self._first_frame_sent: set[str] = set()
        self._last_snapshot_ns: int | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._frame_event = asyncio.Event()
        # Viewer stream state: the newest JPEG, its sequence number, and an event replaced on every publish.
        self._jpeg: bytes | None = None
        self._jpeg_seq = 0
        self._jpeg_frame_index = 0
        self._jpeg_changed = asyncio.Event()
        self._viewers = 0
        self._encoder: asyncio.Task[None] | None = None
        self._closed = False
        self.jpegs_encoded = 0

    # --- counters ---------------------------------------------------------------------------------------------

    def _total(self, kind: str, attr: str) -> int:
        return sum(getattr(s, attr) for s in self.streams if s.kind == kind)

    @property
    def frames_received(self) -> int:
        return self._total("video", "frames_received")

    @property
    def frames_dropped(self) -> int:
        return self._total("video", "frames_dropped")

    @property
    def audio_frames_received(self) -> int:
        return self._total("audio", "frames_received")

    # --- consuming tracks ---------------------------------------------------------------------------------------

    def consume(self, track: Any, offer_ns: int, codec_of: Callable[[str], str]) -> asyncio.Task[None]:
        """Start the task that drains ``track``; ``codec_of(kind)`` names the negotiated codec once answered."""
        stats = StreamStats(track.kind)
        self.streams.append(stats)
        if self.recorder is not None:
            if track.kind == "audio":
                self.recorder.has_audio = True
            else:
                self.recorder.has_video = True
        if track.kind == "video" and self._watchdog is None:
            self._watchdog = asyncio.ensure_future(self._stall_watchdog())
        task = asyncio.ensure_future(self._run(track, stats, offer_ns, codec_of))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, track: Any, stats: StreamStats, offer_ns: int, codec_of: Callable[[str], str]) -> None:
        try:
            while True:
                frame = await track.recv()
                stats.frames_received += 1
                now = self._clock.monotonic_ns()
                if self.recorder is not None:
                    self.recorder.push(track.kind, frame, now)
                # aiortc's receive queue is unbounded and private; if we fell behind, newer frames are waiting:
                # skip to the newest and count the skipped ones as dropped (the recorder still gets each one).
                # Audio is only counted, so nothing is skipped there.
                queue = getattr(track, "_queue", None) if track.kind == "video" else None
                while queue is not None and queue.qsize() > 0:
                    frame = await track.recv()
                    stats.frames_received += 1
                    stats.frames_dropped += 1
                    now = self._clock.monotonic_ns()
                    if self.recorder is not None:
                        self.recorder.push(track.kind, frame, now)
                if stats.first_ns is None:
                    stats.first_ns = now
                stats.last_ns = now
                for relay in list(self._relays):
                    if relay.kind == track.kind:
                        relay.put(frame)
                if track.kind == "video":
                    self._on_video(frame, now, offer_ns, codec_of("video"))
                elif track.kind not in self._first_frame_sent:
                    self._first_frame_sent.add(track.kind)
                    self._emit(ev.MediaFirstFrame(track.kind, codec_of(track.kind), 0, 0, (now - offer_ns) / 1e6))
        except MediaStreamError:
            pass
        finally:
            self._end_stream(stats)

    def _end_stream(self, stats: StreamStats) -> None:
        if stats.ended:
            return
        stats.ended = True
        self._emit(ev.MediaStreamEnded(stats.kind, stats.frames_received, stats.frames_dropped, stats.duration_s))

    def _on_video(self, frame: Any, now: int, offer_ns: int, codec: str) -> None:
        self._previous_frame, self.latest_frame = self.latest_frame, frame
        self.latest_mono_ns = max(now, self.latest_mono_ns + 1)
        self.latest_wall_ms = self._clock.now_utc().timestamp() * 1000.0
        self.frame_index += 1
        self.width, self.height = frame.width, frame.height
        if codec:
            self.video_codec = codec
        if "video" not in self._first_frame_sent:
            self._first_frame_sent.add("video")
            self._emit(ev.MediaFirstFrame("video", codec, frame.width, frame.height, (now - offer_ns) / 1e6))
        interval_ns = int(self._settings.snapshot_interval_s * 1e9)
        due = self._last_snapshot_ns is None or now - self._last_snapshot_ns >= interval_ns
        if due and (self._snapshot_task is None or self._snapshot_task.done()):
            reason = "first_frame" if self._last_snapshot_ns is None else "periodic"
            self._last_snapshot_ns = now
            self._snapshot_task = asyncio.ensure_future(
                self._snapshot(frame, self._previous_frame, self.frame_index, reason)
            )
        for analyzer in self._analyzers:
            analyzer.offer(frame, self.frame_index, self.latest_mono_ns)
        self._frame_event.set()

    async def _snapshot(self, frame: Any, previous: Any, index: int, reason: str) -> ev.MediaSnapshot | None:
        def work() -> tuple[bytes, tuple[float, float, float]]:
            grey = frame_grey(frame)
            prev = frame_grey(previous) if previous is not None else None
            return encode_jpeg(frame), quality_figures(grey, prev)

        try:
            data, (sharpness, brightness, motion) = await asyncio.to_thread(work)
        except Exception:  # a broken frame must not kill the call
            log.exception("snapshot encoding failed")
            return None
        self.snapshots += 1
        relpath, digest = self._store(f"snapshot-{self.snapshots:04d}.jpg", data)
        payload = ev.MediaSnapshot(
            relpath, digest, frame.width, frame.height, index, reason, sharpness, brightness, motion
        )
        self._emit(payload)
        return payload

    async def snapshot_now(self) -> ev.MediaSnapshot | None:
        """A snapshot of the newest frame at the dispatcher's request (reason ``request``), with its quality
        figures; None before the first frame. Waits for a periodic snapshot in flight first (one at a time)."""
        if self.latest_frame is None:
            return None
        if self._snapshot_task is not None and not self._snapshot_task.done():
            await asyncio.gather(self._snapshot_task, return_exceptions=True)
        task = asyncio.ensure_future(
            self._snapshot(self.latest_frame, self._previous_frame, self.frame_index, "request")
        )
        self._snapshot_task = task
        return await task

    # --- analysis consumers and keyframes -----------------------------------------------------------------------

    def add_analyzer(self, fn: Callable[[Any, int, int], Any], name: str = "analyzer") -> "Analyzer":
        """Run ``fn(frame, frame_index, t_mono_ns)`` in a worker thread on the newest video frame, one call at a
        time; frames that arrive while it runs are skipped except the newest (counted in ``Analyzer.skipped``)."""
        analyzer = Analyzer(fn, name)
        self._analyzers.append(analyzer)
        return analyzer

    async def request_keyframe(self, reason: str) -> bool:
        """Ask the caller for a keyframe (``media.keyframe_requested``), at most once per
        :data:`KEYFRAME_MIN_INTERVAL_S`; False when rate-limited or there is no peer connection."""
        now = self._clock.monotonic_ns()
        if self._last_keyframe_ns is not None and now - self._last_keyframe_ns < KEYFRAME_MIN_INTERVAL_S * 1e9:
            return False
        pc = self.peer()
        if pc is None:
            return False
        self._last_keyframe_ns = now
        try:
            sent = await request_keyframe(pc)
        except Exception:  # a closing transport must not break the caller of this
            log.exception("keyframe request failed")
            return False
        if sent:
            self.keyframes_requested += 1
            self._emit(ev.MediaKeyframeRequested(reason))
        return bool(sent)

    async def _stall_watchdog(self) -> None:
        """Request a keyframe when video frames stop arriving for :data:`STALL_S` while a video track is live
        (the decoder may be waiting for a keyframe after loss); once per stall."""
        stalled_at = -1
        while not self._closed and any(s.kind == "video" and not s.ended for s in self.streams):
            await asyncio.sleep(STALL_S / 2)
            last = max((s.last_ns or 0 for s in self.streams if s.kind == "video"), default=0)
            if last and self._clock.monotonic_ns() - last > STALL_S * 1e9 and stalled_at != self.frame_index:
                stalled_at = self.frame_index
                await self.request_keyframe("stalled")

    async def wait_streams(self, timeout_s: float = 2.0) -> None:
        """Wait until every consumer task and a pending snapshot have finished (after the peer was closed), close the
        recording's last segment, stop the viewer stream and drop the frames (the call has ended).

        A track whose receiver never started (the peer never connected) is not ended by aiortc; its consumer is
        cancelled after ``timeout_s`` (its ``media.stream_ended`` is still written, with zero counts)."""
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._snapshot_task is not None:
            await asyncio.gather(self._snapshot_task, return_exceptions=True)
        for analyzer in self._analyzers:
            await analyzer.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        if self.talkback is not None:
            await self.talkback.close()  # before the recorder: its last frames and "talk off" belong to the call
        if self.recorder is not None:
            await self.recorder.close()
        await self.close()
        # The call is over: let go of the frames and the JPEG (an ended call must not hold ~1 MB of pixels while the
        # ingest keeps its record for the API); the counters stay.
        self.latest_frame = self._previous_frame = None
        self._jpeg = None

    # --- stills for the console ---------------------------------------------------------------------------------

    async def frame_jpeg(self) -> bytes | None:
        """The newest frame as JPEG (reusing the viewer stream's encode when it is of the same frame); None before
        the first frame."""
        if self.latest_frame is None:
            return None
        if self._jpeg is not None and self._jpeg_frame_index == self.frame_index:
            return self._jpeg
        return await asyncio.to_thread(encode_jpeg, self.latest_frame)

    # --- WebRTC relay to viewers ---------------------------------------------------------------------------------

    def relay_tracks(self) -> list[RelayTrack]:
        """New relay tracks (video, and audio when the call has audio) for one WebRTC viewer: the newest video frame,
        and audio through a queue of :data:`AUDIO_RELAY_FRAMES`. Raises RuntimeError when the call already has
        :data:`MAX_WEBRTC_VIEWERS` WebRTC viewers or its media has closed."""
        if self._closed:
            raise RuntimeError("the call's media has ended")
        if len({r.viewer for r in self._relays}) >= MAX_WEBRTC_VIEWERS:
            raise RuntimeError(f"this call has {MAX_WEBRTC_VIEWERS} WebRTC viewers already (each costs a VP8 encode)")
        viewer = object()
        kinds = ["video"] + (["audio"] if any(s.kind == "audio" for s in self.streams) else [])
        tracks = [RelayTrack(kind, self._clock, viewer, self._relays.discard) for kind in kinds]
        self._relays.update(tracks)
        if self.latest_frame is not None:
            tracks[0].put(self.latest_frame)
        return tracks

    # --- viewer stream ------------------------------------------------------------------------------------------

    async def serve_viewer(self, send: Callable[[bytes], Any]) -> None:
        """Send the newest JPEG with ``await send(bytes)`` whenever a newer one exists, until cancelled or closed."""
        self._viewers += 1
        if self._encoder is None or self._encoder.done():
            self._encoder = asyncio.ensure_future(self._encode_loop())
        if self.latest_frame is not None:
            asyncio.ensure_future(self.request_keyframe("viewer_joined"))
        try:
            sent = 0
            while not self._closed:
                if self._jpeg_seq == sent or self._jpeg is None:
                    await self._jpeg_changed.wait()
                    continue
                sent = self._jpeg_seq
                await send(self._jpeg)
        finally:
            self._viewers -= 1

    async def _encode_loop(self) -> None:
        """Encode the newest frame for the viewers, at most ``viewer_fps`` per second, while anyone watches."""
        period = 1.0 / max(self._settings.viewer_fps, 0.1)
        loop = asyncio.get_running_loop()
        while not self._closed and self._viewers > 0:
            if self.latest_frame is None or self._jpeg_frame_index == self.frame_index:
                self._frame_event.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._frame_event.wait(), timeout=1.0)
                continue
            started = loop.time()
            frame, index = self.latest_frame, self.frame_index
            comment = f"wb t_wall_ms={self.latest_wall_ms:.1f} frame={index}"
            try:
                data = await asyncio.to_thread(encode_jpeg, frame, JPEG_QUALITY, comment)
            except Exception:
                log.exception("viewer frame encoding failed")
                data = None
            if data is not None:
                self.jpegs_encoded += 1
                self._publish(data, index)
            await asyncio.sleep(max(0.0, period - (loop.time() - started)))

    def _publish(self, data: bytes, frame_index: int) -> None:
        self._jpeg, self._jpeg_frame_index = data, frame_index
        self._jpeg_seq += 1
        changed, self._jpeg_changed = self._jpeg_changed, asyncio.Event()
        changed.set()

    async def close(self) -> None:
        """Stop the viewer stream (viewers return from :meth:`serve_viewer`)."""
        self._closed = True
        self.prompts.close()
        if self.talkback is not None:
            await self.talkback.close()
        if self.recorder is not None:
            await self.recorder.close()
        for relay in list(self._relays):
            relay.stop()
        for pc in list(self.viewer_pcs):
            await pc.close()
        self.viewer_pcs.clear()
        self._jpeg_changed.set()
        self._frame_event.set()
        if self._encoder is not None:
            self._encoder.cancel()
            await asyncio.gather(self._encoder, return_exceptions=True)


class Analyzer:
    """One analysis consumer of a call's video: newest frame wins, at most one run in flight, drops counted.

    ``offer()`` runs on the event loop; ``fn`` runs in a worker thread. Holds one pending frame at most (a bounded
    queue of one)."""

    def __init__(self, fn: Callable[[Any, int, int], Any], name: str) -> None:
        self.fn, self.name = fn, name
        self.analyzed = 0
        """Frames ``fn`` was run on."""
        self.skipped = 0
        """Frames replaced by a newer one before ``fn`` was free."""
        self.errors = 0
        self._pending: tuple[Any, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def offer(self, frame: Any, index: int, t_ns: int) -> None:
        if self._pending is not None:
            self.skipped += 1
        self._pending = (frame, index, t_ns)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self._pending is not None:
            item, self._pending = self._pending, None
            try:
                await asyncio.to_thread(self.fn, *item)
            except Exception:
                self.errors += 1
                log.exception("analyzer %s failed", self.name)
            self.analyzed += 1

    async def close(self) -> None:
        self._pending = None
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class RelayTrack(MediaStreamTrack):
    """The caller's video or audio for one WebRTC viewer (an aiortc track to ``addTrack``).

    Video: only the newest frame waits (a slow viewer skips frames); audio: at most :data:`AUDIO_RELAY_FRAMES`
    wait, the oldest is dropped. Frames are copied with new timestamps on the ingest's monotonic clock (video 90 kHz,
    audio a continuous sample count), so the shared decoded frame is never changed (the recorder sets its own pts)
    and a caller's RTP timestamp jumps never reach the viewer. ``dropped`` counts skipped frames."""

    def __init__(self, kind: str, clock: Clock, viewer: object, on_stop: Callable[["RelayTrack"], Any]) -> None:
        super().__init__()
        self.kind = kind
        self.viewer = viewer
        self._clock = clock
        self._on_stop = on_stop
        self._frames: collections.deque[Any] = collections.deque(maxlen=1 if kind == "video" else AUDIO_RELAY_FRAMES)
        self._event = asyncio.Event()
        self._start_ns: int | None = None
        self._samples = 0
        self.dropped = 0

    def put(self, frame: Any) -> None:
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._event.set()

    async def recv(self) -> Any:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._event.clear()
            await self._event.wait()
        if self.readyState != "live":
            raise MediaStreamError
        frame = self._frames.popleft()
        now = self._clock.monotonic_ns()
        if self._start_ns is None:
            self._start_ns = now
        if self.kind == "video":
            copy = VideoFrame.from_ndarray(frame_yuv420p(frame), format="yuv420p")
            copy.pts = (now - self._start_ns) * 90_000 // 1_000_000_000
            copy.time_base = fractions.Fraction(1, 90_000)
        else:
            copy = AudioFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name, layout=frame.layout.name)
            copy.sample_rate = frame.sample_rate
            copy.pts = self._samples
            copy.time_base = fractions.Fraction(1, frame.sample_rate)
            self._samples += frame.samples
        return copy

    def stop(self) -> None:
        super().stop()
        self._event.set()
        self._on_stop(self)


@dataclass
class Prompt:
    """One dispatcher prompt: its 1-based id, what (``ev.CALLER_PROMPTS``), the message and when (monotonic ns)."""

    prompt_id: int
    prompt: str
    message: str
    t_ns: int
    delivered: bool = False


class Prompts:
    """The dispatcher's prompts of one call, at most :data:`MAX_PROMPTS`, for the caller's page to long-poll."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.items: list[Prompt] = []
        self._changed = asyncio.Event()
        self.closed = False

    def add(self, prompt: str, message: str) -> Prompt:
        """Queue a prompt; raises RuntimeError when the call has :data:`MAX_PROMPTS` already or has ended."""
        if self.closed:
            raise RuntimeError("the call has ended")
        if len(self.items) >= MAX_PROMPTS:
            raise RuntimeError(f"this call has {MAX_PROMPTS} prompts already; no more are sent")
        item = Prompt(len(self.items) + 1, prompt, message, self._clock.monotonic_ns())
        self.items.append(item)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return item

    async def after(self, prompt_id: int, timeout_s: float) -> list[Prompt]:
        """Prompts with an id above ``prompt_id``, waiting up to ``timeout_s`` (s) for one (a long poll); [] on
        time-out or when the call ends."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.closed:
            newer = [p for p in self.items if p.prompt_id > prompt_id]
            remaining = deadline - asyncio.get_running_loop().time()
            if newer or remaining <= 0:
                return newer
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
        return []

    def close(self) -> None:
        self.closed = True
        self._changed.set()
