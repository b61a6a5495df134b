"""Live media of one call: frame consumers, snapshots and the shared JPEG stream for viewers.

:class:`CallMedia` belongs to one call and outlives reconnects (each new peer connection adds streams to it).
Per received track, :meth:`CallMedia.consume` runs a task that takes frames off aiortc's (unbounded) receive queue
as soon as they arrive, keeps only the newest video frame and counts frames received and dropped. Nothing here
queues frames: snapshots and viewer JPEGs are made from the newest frame, at most one encode in flight each.

The viewer stream encodes the newest frame at most ``viewer_fps`` times a second, once per call, and every viewer
WebSocket sends whatever JPEG is newest when it is ready for the next one (a slow viewer skips frames, it never
builds a backlog).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable

import cv2
from aiortc.mediastreams import MediaStreamError

from workbench.domain import events as ev
from workbench.ingest.settings import IngestSettings
from workbench.store.eventlog import Clock

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
"""JPEG quality of snapshots and viewer frames (OpenCV scale 0-100)."""


def encode_jpeg(frame: Any, quality: int = JPEG_QUALITY) -> bytes:
    """Encode an aiortc/PyAV video frame as JPEG with OpenCV (runs in a worker thread; OpenCV releases the GIL)."""
    image = frame.to_ndarray(format="bgr24")
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the frame as JPEG")
    return buf.tobytes()


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
    ) -> None:
        self._settings = settings
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
        task = asyncio.ensure_future(self._run(track, stats, offer_ns, codec_of))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, track: Any, stats: StreamStats, offer_ns: int, codec_of: Callable[[str], str]) -> None:
        try:
            while True:
                frame = await track.recv()
                stats.frames_received += 1
                # aiortc's receive queue is unbounded and private; if we fell behind, newer frames are waiting:
                # skip to the newest and count the skipped ones as dropped.
                # Audio is only counted, so nothing is skipped there.
                queue = getattr(track, "_queue", None) if track.kind == "video" else None
                while queue is not None and queue.qsize() > 0:
                    frame = await track.recv()
                    stats.frames_received += 1
                    stats.frames_dropped += 1
                now = self._clock.monotonic_ns()
                if stats.first_ns is None:
                    stats.first_ns = now
                stats.last_ns = now
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
        self.latest_frame = frame
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
            self._snapshot_task = asyncio.ensure_future(self._snapshot(frame, self.frame_index, reason))
        self._frame_event.set()

    async def _snapshot(self, frame: Any, index: int, reason: str) -> None:
        try:
            data = await asyncio.to_thread(encode_jpeg, frame)
        except Exception:  # a broken frame must not kill the call
            log.exception("snapshot encoding failed")
            return
        self.snapshots += 1
        relpath, digest = self._store(f"snapshot-{self.snapshots:04d}.jpg", data)
        self._emit(ev.MediaSnapshot(relpath, digest, frame.width, frame.height, index, reason))

    async def wait_streams(self, timeout_s: float = 2.0) -> None:
        """Wait until every consumer task and a pending snapshot have finished (after the peer was closed).

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

    # --- stills for the console ---------------------------------------------------------------------------------

    async def frame_jpeg(self) -> bytes | None:
        """The newest frame as JPEG (reusing the viewer stream's encode when it is of the same frame); None before
        the first frame."""
        if self.latest_frame is None:
            return None
        if self._jpeg is not None and self._jpeg_frame_index == self.frame_index:
            return self._jpeg
        return await asyncio.to_thread(encode_jpeg, self.latest_frame)

    # --- viewer stream ------------------------------------------------------------------------------------------

    async def serve_viewer(self, send: Callable[[bytes], Any]) -> None:
        """Send the newest JPEG with ``await send(bytes)`` whenever a newer one exists, until cancelled or closed."""
        self._viewers += 1
        if self._encoder is None or self._encoder.done():
            self._encoder = asyncio.ensure_future(self._encode_loop())
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
            try:
                data = await asyncio.to_thread(encode_jpeg, frame)
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
        self._jpeg_changed.set()
        self._frame_event.set()
        if self._encoder is not None:
            self._encoder.cancel()
            await asyncio.gather(self._encoder, return_exceptions=True)
