"""One recorder process per ingest: every call's segments are written outside the ingest's process.

Why
---
With a writer thread per call inside the ingest (:class:`workbench.ingest.recording.CallRecorder`), recording 16
callers made the ingest fall behind although the encoding itself is cheap (x264 ``ultrafast`` 1.7 % of a core per
640x480@15 stream, VP8 copy 0.1 %, both releasing the GIL): the writer threads compete for the GIL with the event
loop and aiortc's decoder threads, so every time the loop thread gives the GIL up (each socket call) it waits to get
it back. ``workbench bench ingest`` at N=16 (2 cores, quiet machine), H.264: 12.4-13.9 fps, p95 931-1768 ms at
decode; copy: p95 77-234 ms. With this process: copy 15.0 fps, 0 lost, p95 74-80 ms at decode in six runs, nothing
dropped by the recorder; H.264 0 lost, p50 72-85 ms, p95 85-452 ms: re-encoding 16 streams beside 16 callers fills
both cores (``docs/recording.md``).

Here the ingest's side only hands items to one bounded :class:`multiprocessing.Queue` (its feeder thread pickles
them, not the event loop). A decoded picture is copied by that thread into a slot of a shared ring
(:mod:`workbench.ingest.picture_ring`) and only its place crosses the pipe; audio, and pictures that do not fit a
slot, are pickled whole. In the recorder process a
router thread hands each call's items to that call's writer thread (x264 releases the GIL, so calls encode in
parallel; with one writer thread for all calls the recorder dropped a third of the H.264 video at N=16).

Contract
--------
* **Bounded**: the queue holds at most ``queue_items`` items (all calls together); a full queue drops the item and
  counts it for its call (:attr:`RecorderFront.frames_dropped`), exactly as a writer thread's full queue did.
* **Crash-safe as before**: the recorder process asks the kernel to kill it when the ingest dies
  (``PR_SET_PDEATHSIG``, Linux) and also exits when its parent changes, so ``kill -9`` of the ingest leaves the
  segments cut where they were, as with writer threads (``workbench verify`` reports the cut segment). Closed
  segments are fsynced and hashed in the recorder process and listed by the ingest when their report arrives.
* **Failure**: an encoder or disk error in one call stops that call's recording (``on_error``), the others go on.
  If the recorder process itself dies, every open recording is reported failed and the next recorded call starts a
  new process.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
from pathlib import Path
from typing import Any, Callable

import av
from av.video.reformatter import VideoReformatter

from workbench.ingest.picture_ring import PictureRing, RingPicture, stamp, time_base_of, video_frame
from workbench.ingest.recording import CallWriter, RecorderFront, RecorderItem, SegmentInfo

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal the kernel sends this process when its parent thread ends (Linux)."""
PARENT_CHECK_S = 0.5
"""How often (s) an idle recorder process checks that the ingest that started it is still there."""
CALL_QUEUE_ITEMS = 60
"""Items one call's writer thread in the recorder process holds (~1 s of video and audio)."""
RING_SLOTS = 64
"""Decoded pictures on their way to the recorder process through shared memory, all calls together
(:mod:`workbench.ingest.picture_ring`): 0.27 s of 16 callers' 15 fps video; a picture finding every slot taken is
dropped and counted. Measured with 64: no picture dropped in 8 runs of 16 H.264 callers (``docs/recording.md``)."""
RING_SLOT_BYTES = 1920 * 1080 * 3 // 2
"""One slot holds a ``yuv420p`` picture of up to 3.1 MB (1920x1080 px). Only the pages pictures write are touched
(460,800 bytes of a slot for 640x480), and they stay with the ring: at most 29.5 MB for 64 slots of 640x480.
Larger pictures go through the pipe."""
REPLY_QUEUE_ITEMS = 1000
"""Bound of the recorder process's replies (segments closed, errors, key frame requests, calls closed)."""
SEND_TIMEOUT_S = 1.0
"""Wait (s) between checks that the recorder process lives, while a close waits for room in the queue."""


# --- decoded frames across the process boundary --------------------------------------------------------------------


class FrameBox:
    """A decoded ``av`` video or audio frame on its way to the recorder process. Pickled in the queue's feeder
    thread (not on the event loop): the picture or samples are copied out then, as ``yuv420p`` planes (video) or the
    frame's own sample format (audio), with pts, time base, and for audio the layout and rate."""

    __slots__ = ("frame", "ring", "slot")

    def __init__(self, frame: Any, ring: PictureRing | None = None, slot: int | None = None) -> None:
        self.frame = frame
        self.ring = ring
        """With ``slot``: the picture goes into that slot of the shared ring, and only its place is pickled."""
        self.slot = slot

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        frame = self.frame
        if self.ring is not None and self.slot is not None:
            try:
                return self.ring.write(self.slot, frame).__reduce__()
            except Exception:  # the ring was closed under it, or a picture it was not meant for: use the pipe
                log.exception("recorder process: a picture could not go into the shared ring")
                self.ring.release(self.slot)
        time_base = time_base_of(frame)
        if isinstance(frame, av.VideoFrame):
            if frame.format.name != "yuv420p":  # a private reformatter: the frame's own is not thread-safe
                frame = VideoReformatter().reformat(frame, format="yuv420p")
            return video_frame, (frame.to_ndarray(), self.frame.pts, time_base)
        return _audio_frame, (frame.to_ndarray(), frame.format.name, frame.layout.name, frame.sample_rate, frame.pts,
                              time_base)


def _audio_frame(samples: Any, fmt: str, layout: str, rate: int, pts: int | None,
                 time_base: tuple[int, int] | None) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    frame.sample_rate = rate
    stamp(frame, pts, time_base)
    return frame


# --- the recorder process --------------------------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to kill this process when the ingest dies (Linux ``prctl``); exit at once when it already
    has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the idle check below still ends an orphan
        log.warning("recorder process: prctl(PR_SET_PDEATHSIG) unavailable")
    if os.getppid() != parent_pid:
        os._exit(0)


class _CallThread:
    """One call's :class:`CallWriter` in a thread of the recorder process: x264 releases the GIL while it encodes, so
    calls encode in parallel (one thread for all calls kept up with only about 10 callers in H.264). Items wait in a
    bounded queue; when it is full the router waits, the ingest's queue fills and the ingest drops and counts."""

    def __init__(self, key: int, writer: CallWriter, replies: Any) -> None:
        self.key = key
        self.writer = writer
        self._replies = replies
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=CALL_QUEUE_ITEMS)
        self._failed = False
        self.thread = threading.Thread(target=self._run, name=f"recorder-call-{key}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            what, body = self.queue.get()
            try:
                if what == "item" and not self._failed:
                    self.writer.take(body)
                elif what == "close":
                    if not self._failed:
                        self.writer.note_dropped(body)
                        self.writer.finish("call_ended")
                    break
            except Exception as exc:  # encoder or disk error: stop this call's recording, keep the others
                self._fail(exc)
                if what == "close":
                    break
        self._replies.put(("closed", self.key, self.writer.keyframe_waits))

    def _fail(self, exc: Exception) -> None:
        log.exception("recording of call %s failed", self.key)
        self._failed = True
        self._replies.put(("error", self.key, f"{type(exc).__name__}: {exc}"))
        try:
            self.writer.finish("error")
        except Exception:
            log.exception("closing the failed segment of call %s", self.key)


def serve(inbox: Any, replies: Any, parent_pid: int, ring_spec: tuple[int, int, int, int] | None = None) -> None:
    """The recorder process's main loop: routes ``inbox`` to one :class:`_CallThread` per open call, in order.

    Messages in: ``("open", key, (directory, segment_s, talkback))``, ``("item", key, RecorderItem)``,
    ``("close", key, frames_dropped)``, and ``None`` (the ingest is stopping: finish every call). A video item's
    picture may be a :class:`RingPicture` in the shared ring ``ring_spec`` names; it is copied out here, in order.
    Replies: ``("segment", key, SegmentInfo)``, ``("keyframe", key, None)``, ``("error", key, message)``,
    ``("closed", key, keyframe_waits)``, and first ``("ring", 0, None)`` once the ring is open (the ingest uses it
    from then on) or ``("no_ring", 0, message)`` when it cannot be opened. A picture that cannot be copied out of the
    ring is lost and counted with its call's dropped frames."""
    _die_with_parent(parent_pid)
    calls: dict[int, _CallThread] = {}
    lost: dict[int, int] = {}
    ring: PictureRing | None = None
    if ring_spec is not None:
        try:
            ring = PictureRing.attach(ring_spec)
            replies.put(("ring", 0, None))
        except OSError as exc:
            log.error("recorder process: the shared picture ring cannot be opened (%s); pictures come by pipe", exc)
            replies.put(("no_ring", 0, f"{type(exc).__name__}: {exc}"))

    def open_call(key: int, directory: str, segment_s: float, talkback: bool) -> _CallThread:
        writer = CallWriter(
            Path(directory), segment_s=segment_s, talkback=talkback,
            report_segment=lambda info: replies.put(("segment", key, info)),
            want_keyframe=lambda: replies.put(("keyframe", key, None)),
        )
        return _CallThread(key, writer, replies)

    while True:
        try:
            message = inbox.get(timeout=PARENT_CHECK_S)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return  # the ingest is gone: leave the segments as they are, as a crash would
            continue
        except Exception:  # a message that does not unpickle: lost (its call has a gap), the others go on
            log.exception("recorder process: a message could not be read")
            continue
        if message is None:
            break
        what, key, body = message
        if what == "open":
            calls[key] = open_call(key, *body)
            continue
        if what == "item" and isinstance(body[1], RingPicture):
            body = _from_ring(ring, body)
            if body is None:
                lost[key] = lost.get(key, 0) + 1
        elif what == "close":
            body += lost.pop(key, 0)
        call = calls.get(key)
        if call is None or body is None:
            continue
        call.queue.put((what, body))
        if what == "close":
            del calls[key]
    for call in calls.values():
        call.queue.put(("close", 0))  # the ingest closes its calls first: this is only a safety net
    for call in calls.values():
        call.thread.join()


def _from_ring(ring: PictureRing | None, item: Any) -> Any:
    """``item`` with its :class:`RingPicture` copied out of the ring into an ``av.VideoFrame`` (the slot is free
    again); None when the picture is lost (no ring here, or it could not be read)."""
    if ring is None:  # the ingest uses the ring only once this process said it is open: should not happen
        log.error("recorder process: a picture came through a shared ring this process has not opened; lost")
        return None
    try:
        return (item[0], ring.read(item[1]), *item[2:])
    except Exception:  # one picture lost, the recordings go on
        log.exception("recorder process: a picture could not be copied out of the shared ring")
        return None


# --- the ingest's side -------------------------------------------------------------------------------------------------


class ProcessCallRecorder(RecorderFront):
    """One call's recording, written by the ingest's recorder process (:class:`RecorderProcess`); the same interface
    as :class:`workbench.ingest.recording.CallRecorder`. ``on_segment`` and ``on_error`` are called on the event
    loop's thread."""

    def __init__(
        self, host: "RecorderProcess", key: int, directory: Path, *,
        on_segment: Callable[[SegmentInfo], Any], on_error: Callable[[str], Any],
        talkback: bool, video_mode: str, request_keyframe: Callable[[], Any] | None,
    ) -> None:
        super().__init__(talkback=talkback, video_mode=video_mode, request_keyframe=request_keyframe)
        self.directory = directory
        self._host = host
        self.key = key
        self.on_segment = on_segment
        self.on_error = on_error
        self.keyframe_waits = 0
        """VP8 frames the writer skipped waiting for a key frame; known once the recording is closed."""
        loop = asyncio.get_running_loop()
        self.opening: asyncio.Future[Any] = loop.create_future()
        """Done once the process has been told of this call (at once, unless the queue was full)."""
        self.opening.set_result(True)
        self.closed = loop.create_future()
        """Done when the recorder process has closed this call's last segment (or can no longer)."""

    def _offer(self, item: RecorderItem) -> bool:
        if not self.opening.done() or self._host.dead:
            return False
        kind = item[0]
        ring, slot = self._host.ring, None
        if kind == "video" and ring is not None:
            frame = item[1]
            if frame.format.name == "yuv420p" and ring.fits(frame.width, frame.height):
                slot = ring.acquire()
                if slot is None:
                    return False  # every slot is taken: the recorder is behind, dropped and counted like a full queue
        if kind in ("video", "audio", "talkback"):
            item = (kind, FrameBox(item[1], ring, slot), *item[2:])
        if self._host.offer(("item", self.key, item)):
            return True
        if slot is not None:
            ring.release(slot)  # type: ignore[union-attr]
        return False

    def failed(self, message: str) -> None:
        """The recording broke (encoder or disk error, or the recorder process died): nothing more is sent."""
        if not self._failed:
            self._failed = True
            self.on_error(message)

    async def close(self) -> None:
        """Finish the open segment (reported through ``on_segment`` with reason ``call_ended``) and wait until the
        recorder process has closed it."""
        if self._closed:
            return
        self._closed = True
        await self.opening
        await self._host.send(("close", self.key, self.frames_dropped))
        await self.closed


class RecorderProcess:
    """The ingest's recorder process (see the module docstring), started at once; :meth:`recorder` gives each call
    its recording. ``queue_items`` bounds the items on their way to the process, all calls together; ``ring_slots``
    the decoded pictures among them that go through shared memory (0: every picture goes by pipe). Create it on the
    event loop that uses it; close it with :meth:`close`."""

    def __init__(self, *, queue_items: int, ring_slots: int = RING_SLOTS) -> None:
        self._loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")  # fork is unsafe in a process with threads and an event loop
        self._inbox = context.Queue(maxsize=queue_items)
        self._replies = context.Queue(maxsize=REPLY_QUEUE_ITEMS)
        self.ring: PictureRing | None = None
        """Shared memory for decoded pictures (:mod:`workbench.ingest.picture_ring`), in use once the recorder
        process has said it opened it; None: pictures go by pipe (until then, or for good)."""
        self._ring_memory: PictureRing | None = None
        self.ring_refused: str | None = None
        """Why the recorder process could not open the ring, once it has said so."""
        if ring_slots > 0:
            try:
                self._ring_memory = PictureRing.create(ring_slots, RING_SLOT_BYTES)
            except OSError as exc:
                log.warning("no shared picture ring (%s): pictures go to the recorder process by pipe", exc)
        spec = self._ring_memory.spec if self._ring_memory is not None else None
        self._process = context.Process(
            target=serve, args=(self._inbox, self._replies, os.getpid(), spec),
            name="workbench-recorder", daemon=True,
        )
        self._process.start()
        self._keys = itertools.count(1)
        self._recorders: dict[int, ProcessCallRecorder] = {}
        self._stopping = False
        self.dead = False
        """True once the process has died or was closed: the ingest then starts another for new calls."""
        self._reader = threading.Thread(target=self._read_replies, name="recorder-replies", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def recorder(
        self, directory: Path, *, on_segment: Callable[[SegmentInfo], Any], on_error: Callable[[str], Any],
        segment_s: float = 60.0, talkback: bool = False, video_mode: str = "h264",
        request_keyframe: Callable[[], Any] | None = None,
    ) -> ProcessCallRecorder:
        """A new call's recording into ``directory`` (``rec-NNNN.mkv`` segments of ``segment_s`` s). Raises
        ``ValueError`` for an unknown ``video_mode``."""
        key = next(self._keys)
        rec = ProcessCallRecorder(self, key, directory, on_segment=on_segment, on_error=on_error, talkback=talkback,
                                  video_mode=video_mode, request_keyframe=request_keyframe)
        self._recorders[key] = rec
        # The open message is tiny and comes first; should the queue be full it waits in a thread, never on the loop,
        # and the call's items are dropped and counted until it is queued (the process would not know their call).
        opening = ("open", key, (str(directory), segment_s, talkback))
        if not self.offer(opening):
            rec.opening = asyncio.ensure_future(self.send(opening))
        return rec

    def offer(self, message: tuple[str, int, Any]) -> bool:
        """Queue ``message`` without blocking; False when the queue is full or the process is gone or stopping."""
        if self.dead or self._stopping:
            return False
        try:
            self._inbox.put_nowait(message)
        except queue.Full:
            return False
        return True

    async def send(self, message: tuple[str, int, Any] | None) -> bool:
        """Queue ``message``, waiting (in a thread) for room while the process lives; False when it is gone."""
        def put() -> bool:
            while not self.dead and self._process.is_alive():
                try:
                    self._inbox.put(message, timeout=SEND_TIMEOUT_S)
                    return True
                except queue.Full:
                    continue
            return False

        sent = await asyncio.to_thread(put)
        if not sent and message is not None:
            self._finish_call(message[1], None)
        return sent

    async def close(self) -> None:
        """Finish every open recording, stop the process (SIGKILL after 10 s), and the reply reader."""
        if self._stopping:
            return
        self._stopping = True
        await self.send(None)
        await asyncio.to_thread(self._process.join, 10.0)
        if self._process.is_alive():
            log.error("the recorder process did not stop in 10 s; killing it")
            self._process.kill()
            await asyncio.to_thread(self._process.join, 5.0)
        await asyncio.to_thread(self._reader.join, 10.0)
        self._died(self._process.exitcode)
        if self._process.exitcode == 0:  # it read everything: nothing is left in the pipes
            self._inbox.close()
            self._replies.close()

    # --- replies (reader thread -> event loop) -----------------------------------------------------------------------

    def _read_replies(self) -> None:
        while True:
            try:
                reply = self._replies.get(timeout=PARENT_CHECK_S)
            except queue.Empty:
                if not self._process.is_alive():
                    break
                continue
            except (EOFError, OSError):
                break
            self._call_soon(self._on_reply, *reply)
        self._call_soon(self._died, self._process.exitcode)

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has closed: nothing left to tell
            log.warning("recorder process: event loop closed, %s not reported", fn)

    def _on_reply(self, what: str, key: int, body: Any) -> None:
        if what == "ring":
            if not self._stopping and not self.dead:
                self.ring = self._ring_memory
            return
        if what == "no_ring":
            log.warning("the recorder process cannot open the shared picture ring (%s): pictures go by pipe", body)
            self.ring_refused = body
            return
        rec = self._recorders.get(key)
        if rec is None:
            return
        if what == "segment":
            rec.on_segment(body)
        elif what == "keyframe":
            if rec.request_keyframe is not None:
                rec.request_keyframe()
        elif what == "error":
            rec.failed(body)
        elif what == "closed":
            self._finish_call(key, body)

    def _finish_call(self, key: int, keyframe_waits: int | None) -> None:
        rec = self._recorders.pop(key, None)
        if rec is None:
            return
        if keyframe_waits is not None:
            rec.keyframe_waits = keyframe_waits
        if not rec.closed.done():
            rec.closed.set_result(None)

    def _died(self, exitcode: int | None) -> None:
        """The process has ended: every recording still open is reported failed and its close returns."""
        if self.dead and not self._recorders:
            return
        if not self.dead:
            self.dead = True
            self.ring = None
            if self._ring_memory is not None:  # no more slots; a picture the feeder still writes stays mapped
                self._ring_memory.close()
            if exitcode != 0:
                # What the feeder thread still holds cannot be delivered: read it back so the thread ends, and let
                # the interpreter exit without waiting for it.
                self._inbox.cancel_join_thread()
                threading.Thread(target=self._drain, name="recorder-drain", daemon=True).start()
        open_recordings = list(self._recorders.values())
        for rec in open_recordings:
            self._finish_call(rec.key, None)
        if not self._stopping:
            for rec in open_recordings:
                rec.failed(f"the recorder process exited (code {exitcode}); this call is no longer recorded")

    def _drain(self) -> None:
        try:
            while True:
                self._inbox.get(timeout=SEND_TIMEOUT_S)
        except (queue.Empty, OSError, EOFError, ValueError):
            pass
        self._inbox.close()  # the feeder thread ends: no thread of a dead recorder outlives it
        self._inbox.join_thread()
