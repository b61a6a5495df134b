"""Crash-safe recording of one call: video (re-encoded or as received) and the caller's audio (as received) in short
Matroska segments written as a stream.

Choice and why
--------------
* **Container: Matroska (``.mkv``), one file per segment** (``media/<call_id>/rec-0001.mkv``, ``rec-0002.mkv``, ...,
  ``segment_s`` long, 60 s by default). Matroska is written front to back in clusters; with a 1 s cluster limit and
  ``flush_packets`` every closed cluster is in the file (the kernel's page cache, which survives ``kill -9`` of the
  ingest), so a crash loses at most about one second. A cut file has no cues and no duration, yet ffprobe, ffmpeg,
  VLC and PyAV read it up to the cut. A closed segment is fsynced, hashed and listed in ``manifest.json`` at once
  (``media.recording_segment``); the segment being written when the process died is the one file not listed, and
  ``workbench verify`` reports it as cut by a crash with the duration it holds.
  Fragmented MP4 would also survive a crash, but only up to the last complete fragment and with a moov that needs
  care; Matroska is the simpler stream.
* **Video codec: re-encoded H.264 (libx264 ``ultrafast``, ``zerolatency``)**, the default (``video_mode
  "h264"``): works for any received codec. ``zerolatency`` means no B-frames and no look-ahead, so each frame leaves
  the encoder at once (nothing waits in the encoder when the process dies).
  **Or the received VP8 frames as they came** (``video_mode "copy"``, the session's ``record_video``): no decode or
  encode for the recording; the frames come from a documented tap into aiortc's receiver
  (:mod:`workbench.ingest.passthrough`). A segment then starts only at a key frame (asked for with a PLI at the
  call's start, at a rollover and after a frame was dropped from the full queue, since later frames refer to it).
  Measured by ``benchmarks/bench_ingest.py`` (the recorder alone, CPU time, the real fire clip at 640x480@15):
  re-encoding 1.7-1.8% of a core per stream, copy 0.1% (and 62 instead of 101 kB/s on disk). The ingest still
  decodes every stream for the live view and snapshots either way, so copy saves the encode only.
  Why re-encoding stays the default: every recording of a study is then the same codec (copy stores VP8 only, an
  H.264 caller is re-encoded anyway), and it rests on no private aiortc path. Choose copy for sessions with many
  simultaneous callers: on a 2-core machine 16 callers re-encoded fill both cores (the recorder process keeps up,
  but the live view's p95 rises to 0.1-0.45 s), while copy holds 16 at p95 ~80 ms (``docs/recording.md``).
* **The caller's audio as it came**: the received Opus packets, in both video modes (:attr:`CallRecorder.audio_copy`,
  set by the ingest when its tap into the audio receiver works; otherwise the decoded audio is re-encoded to Opus).
  Re-encoding every caller's audio (50 frames a second each, in the writer threads under the GIL) was most of what
  recording cost the ingest: at 16 callers in ``copy`` mode the ingest ran at 106-110 % of a core and fell behind
  (p95 at decode 102-3073 ms); storing the packets it runs at 84-85 % with p95 77-79 ms, 0 frames lost
  (``workbench bench ingest``). The segment's caller track keeps the Opus encoder's header (48 kHz, stereo).
* **Talk-back**: with ``talkback=True`` each segment has a second Opus track titled ``dispatcher`` (the caller's is
  ``caller``): the dispatcher's voice as the caller heard it (silence while the talk control is off), on the same
  time line (:mod:`workbench.ingest.talkback`).
* **One time line for both kinds**: every decoded frame is placed on the ingest's monotonic clock by its own RTP
  time plus the smallest arrival-minus-RTP offset of its stream over the last :data:`CLOCK_WINDOW_S`
  (:class:`MediaClock`), relative to the call's first recorded video frame (``t = 0``). Frames held up on the way
  (network jitter, a stalled event loop, a decoder behind) thus keep their place instead of being stamped late, so
  a stall does not shift one kind against the other; lost frames leave a gap. An RTP time that jumps by more than
  :data:`CLOCK_JUMP_S` from the arrival clock (a reconnect; aiortc's 2^32 jumps below 10 fps) starts a new offset.
  Video pts are milliseconds, strictly increasing; audio pts are samples, never overlapping (a frame placed inside
  the one before is moved up to half a frame later, or dropped). Audio that arrives before the first video frame is
  not recorded, unless no video comes within :data:`AUDIO_ONLY_AFTER_S` (an audio-only call), so audio and video
  start together. In ``copy`` mode the received VP8 frames are placed the same way from their RTP times.

Threads and queues
------------------
The event-loop side (:class:`RecorderFront`: :meth:`~RecorderFront.push`, :meth:`~RecorderFront.push_encoded`)
never blocks: it offers each ``(kind, frame, t_ns, ...)`` item to a bounded queue and counts a drop when it is full.
The ingest's recordings are written by one recorder process (:mod:`workbench.ingest.recorder_process`, the default):
writer threads inside the ingest competed with its event loop for the GIL and made it fall behind at 16 recorded
callers. :class:`CallRecorder` keeps a writer thread per call in this process (``recorder_process = false`` in the
ingest's settings; the unit tests and the recorder-alone benchmark use it). Either way one :class:`CallWriter` per
call encodes and muxes (PyAV releases the GIL while encoding), and segment closes are reported back on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import hashlib
import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import av
from av.video.reformatter import VideoReformatter

from workbench.ingest.passthrough import vp8_keyframe_size

log = logging.getLogger(__name__)

CLOCK_WINDOW_S = 5.0
"""Window (s) over which :class:`MediaClock` takes the smallest arrival-minus-RTP offset: long enough to see a frame
that came through without delay, short enough to follow the drift between the caller's and the ingest's clocks."""
VP8_RTP_RATE = 90_000
"""RTP clock rate of video (RFC 7741 for VP8), Hz."""
OPUS_RTP_RATE = 48_000
"""RTP clock rate of Opus (RFC 7587: always 48 kHz, whatever the sampling rate used inside), Hz."""
CLOCK_JUMP_S = 5.0
"""An arrival-minus-RTP offset this far (s) from the current one is a timestamp discontinuity, not delay."""
AUDIO_ONLY_AFTER_S = 2.0
"""Without any video frame this long (s) after the first audio frame, the call is recorded as audio only."""
CLUSTER_MS = 1000
"""Matroska cluster length (ms): at most about this much is lost when the process dies."""
VIDEO_TIME_BASE = fractions.Fraction(1, 1000)
AUDIO_RATE = 48000
TALKBACK_TITLE = "dispatcher"
"""Matroska track name of the dispatcher's voice as the caller heard it (talk-back); the caller's audio is
``caller``."""


@dataclass(frozen=True)
class SegmentInfo:
    """A closed segment: where it is, its SHA-256 and size, and what it holds (see ``ev.MediaRecordingSegment``)."""

    path: Path
    sha256: str
    size_bytes: int
    index: int
    start_s: float
    duration_s: float
    video_frames: int
    audio_frames: int
    frames_dropped: int
    reason: str


class MediaClock:
    """Places the decoded frames of one received stream on the ingest's monotonic clock (ns).

    A frame's place is its media time (``pts * time_base``, aiortc's RTP time from the stream's first packet) plus
    the smallest ``arrival - media time`` seen over the last :data:`CLOCK_WINDOW_S`: the transport delay of a frame
    that was not held up. Delay on top of that (jitter, a busy event loop) does not move the frame. A frame without
    pts is placed at its arrival. Writer-thread state only (one clock per stream)."""

    def __init__(self) -> None:
        self._offsets: collections.deque[tuple[int, int]] = collections.deque()
        """(arrival ns, offset ns) pairs with increasing offsets: the front holds the window's minimum."""

    def place_ns(self, frame: Any, arrival_ns: int) -> int:
        """Where ``frame`` (an ``av`` audio or video frame) arrived at ``arrival_ns`` belongs on the clock, ns."""
        if frame.pts is None or frame.time_base is None:
            return arrival_ns
        return self.place_media_ns(int(frame.pts * frame.time_base * 1_000_000_000), arrival_ns)

    def place_media_ns(self, media_ns: int | None, arrival_ns: int) -> int:
        """Where a frame of media time ``media_ns`` (None: unknown, placed at its arrival) that arrived at
        ``arrival_ns`` belongs on the clock, ns."""
        if media_ns is None:
            return arrival_ns
        offset = arrival_ns - media_ns
        if self._offsets and abs(offset - self._offsets[0][1]) > CLOCK_JUMP_S * 1e9:
            self._offsets.clear()
        while self._offsets and self._offsets[-1][1] >= offset:
            self._offsets.pop()
        self._offsets.append((arrival_ns, offset))
        while self._offsets[0][0] < arrival_ns - CLOCK_WINDOW_S * 1e9:
            self._offsets.popleft()
        return media_ns + self._offsets[0][1]


def opus_packet_samples(data: bytes) -> int:
    """Samples at 48 kHz that one Opus packet decodes to, from its TOC byte and frame count (RFC 6716, 3.1 and
    3.2.5); 960 (20 ms, what WebRTC callers send) for an empty or malformed packet."""
    if not data:
        return 960
    toc = data[0]
    config = toc >> 3
    if config < 12:  # SILK-only: 10, 20, 40, 60 ms
        per_frame = (480, 960, 1920, 2880)[config % 4]
    elif config < 16:  # hybrid: 10, 20 ms
        per_frame = (480, 960)[config % 2]
    else:  # CELT-only: 2.5, 5, 10, 20 ms
        per_frame = (120, 240, 480, 960)[config % 4]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = data[1] & 0x3F if len(data) > 1 else 1
    return per_frame * max(1, frames)


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size (bytes) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


class _Segment:
    """One open Matroska file with a video and/or an audio stream, and the dispatcher's voice with talk-back (writer
    thread only)."""

    def __init__(
        self, path: Path, index: int, start_ns: int, size: tuple[int, int] | None, audio: bool, talkback: bool = False,
        copy: bool = False,
    ) -> None:
        self.path, self.index, self.start_ns = path, index, start_ns
        self.video_frames = self.audio_frames = self.dropped = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.size = size
        self.container = av.open(
            str(path),
            "w",
            format="matroska",
            options={"cluster_time_limit": str(CLUSTER_MS)},
            container_options={"flush_packets": "1"},
        )
        self.video = None
        self.audio = None
        self.copy = copy
        """True: the video stream takes the received VP8 frames as they are (nothing is encoded)."""
        if size is not None and copy:
            # A codec context is needed only to describe the stream in the header; no frame is ever encoded.
            v = self.container.add_stream("vp8", rate=30)
            v.width, v.height = size
            v.pix_fmt = "yuv420p"
            v.time_base = VIDEO_TIME_BASE
            self.video = v
        elif size is not None:
            v = self.container.add_stream("libx264", rate=30)
            v.width, v.height = size
            v.pix_fmt = "yuv420p"
            v.time_base = VIDEO_TIME_BASE
            v.codec_context.time_base = VIDEO_TIME_BASE
            v.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "60"}
            self.video = v
        if audio:
            self.audio = self._opus("caller")
        self.talk = self._opus(TALKBACK_TITLE) if talkback else None

    def _opus(self, title: str) -> Any:
        a = self.container.add_stream("libopus", rate=AUDIO_RATE)
        a.layout = "stereo"
        a.time_base = fractions.Fraction(1, AUDIO_RATE)
        a.metadata["title"] = title  # Matroska track name: players and ffprobe tell the two voices apart
        return a

    def mux(self, packets: Any) -> None:
        for packet in packets:
            self.container.mux(packet)

    def close(self) -> None:
        try:
            for stream in (None if self.copy else self.video, self.audio, self.talk):
                if stream is not None:
                    self.mux(stream.encode(None))
        finally:
            self.container.close()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


RecorderItem = tuple[str, Any, int, int, bool, bool]
"""What the event loop hands the writer: ``(kind, frame, arrival t_ns, frames dropped so far, has_audio,
has_video)``. ``kind`` is ``video``, ``audio`` or ``talkback`` (a decoded ``av`` frame), ``vp8`` (``(data, rtp_time,
resync)``: a received VP8 frame, ``resync`` when a frame before it was dropped) or ``opus`` (``(data, rtp_time)``).
The flags and the drop count travel with each frame so that a writer in another process sees what the loop saw."""


class RecorderFront:
    """The event-loop side of one call's recording: decides what is recorded and hands it on without blocking.

    Subclasses say where the items go (:meth:`_offer`): :class:`CallRecorder` to a writer thread in this process,
    :class:`workbench.ingest.recorder_process.ProcessCallRecorder` to the ingest's recorder process. The writer is a
    :class:`CallWriter` either way."""

    def __init__(self, *, talkback: bool, video_mode: str, request_keyframe: Callable[[], Any] | None) -> None:
        if video_mode not in ("h264", "copy"):
            raise ValueError(f"video_mode must be h264 or copy, got {video_mode!r}")
        self.video_mode = video_mode
        """``h264``: decoded frames (:meth:`push`) re-encoded; ``copy``: received VP8 frames (:meth:`push_encoded`)
        stored as they came. The ingest may switch a call to ``h264`` at its offer (no VP8, or no hook into aiortc);
        decoded video is ignored in ``copy`` mode and encoded video in ``h264`` mode."""
        self.request_keyframe = request_keyframe
        """Called on the event loop when the writer needs a key frame (``copy`` mode); the ingest sets it."""
        self.audio_copy = False
        """True once the ingest hands over the caller's received Opus packets (:meth:`push_encoded`; any video
        mode): they are stored as received and the decoded audio is ignored. Re-encoding every caller's audio was
        most of what recording cost the ingest (``workbench bench ingest``: at 16 callers in ``copy`` mode the
        ingest fell behind with it and kept up without it)."""
        self.talkback = talkback
        """Whether every segment carries the dispatcher's voice (talk-back) as a second Opus track."""
        self.frames_dropped = 0
        """Frames not handed on because the writer fell behind (its queue was full)."""
        self.has_audio = False
        self.has_video = False
        self._resync = False
        self._failed = False
        self._closed = False

    def push(self, kind: str, frame: Any, t_ns: int) -> None:
        """Hand a decoded frame (``kind`` ``video``, ``audio`` (the caller's) or ``talkback`` (the dispatcher's voice
        sent to the caller; only with ``talkback=True``)) received at monotonic ``t_ns`` to the writer; never blocks.
        A full queue drops the frame and counts it."""
        if self._closed or self._failed:
            return
        if kind == "video":
            self.has_video = True
            if self.video_mode == "copy":
                return
        elif kind == "audio":
            self.has_audio = True
            if self.audio_copy:
                return
        elif not self.talkback:
            return
        self._hand_on(kind, frame, t_ns)

    def push_encoded(self, codec: str, data: bytes, t_ns: int, rtp_time: int | None = None) -> None:
        """Hand one received encoded frame (``codec`` as aiortc names it: ``VP8`` video in ``copy`` mode, or
        ``opus`` audio once :attr:`audio_copy` is set; others are ignored) that arrived at monotonic ``t_ns``, with
        its RTP time (90 kHz for video, 48 kHz for Opus; None: placed at its arrival), to the writer; never blocks. A
        full queue drops the frame and counts it; for video it also makes the writer skip to the next key frame
        (later frames would refer to the lost one)."""
        if self._closed or self._failed:
            return
        if codec.lower() == "opus" and self.audio_copy:
            self.has_audio = True
            self._hand_on("opus", (data, rtp_time), t_ns)
            return
        if codec != "VP8" or self.video_mode != "copy":
            return
        self.has_video = True
        if self._hand_on("vp8", (data, rtp_time, self._resync), t_ns):
            self._resync = False
        else:
            self._resync = True

    def _hand_on(self, kind: str, frame: Any, t_ns: int) -> bool:
        if self._offer((kind, frame, t_ns, self.frames_dropped, self.has_audio, self.has_video)):
            return True
        self.frames_dropped += 1
        return False

    def _offer(self, item: RecorderItem) -> bool:
        """Queue ``item`` for the writer without blocking; False when the queue is full."""
        raise NotImplementedError

    async def close(self) -> None:
        """Finish the open segment (reported with reason ``call_ended``) and stop writing."""
        raise NotImplementedError


class CallWriter:
    """Writes one call's frames into ``directory/rec-NNNN.mkv`` segments (see the module docstring): the part of a
    recorder that encodes, muxes and closes files. Runs in one thread (a :class:`CallRecorder`'s writer thread, or
    the recorder process's); ``report_segment(info)`` and ``want_keyframe()`` are called from that thread.
    Errors: encoder and disk errors propagate from :meth:`take` and :meth:`finish`."""

    def __init__(
        self, directory: Path, *, segment_s: float, talkback: bool,
        report_segment: Callable[[SegmentInfo], Any], want_keyframe: Callable[[], Any],
    ) -> None:
        self.directory = directory
        self.talkback = talkback
        self._report_segment = report_segment
        self._report_keyframe = want_keyframe
        self._segment_ns = int(segment_s * 1e9)
        self.keyframe_waits = 0
        """VP8 frames skipped in ``copy`` mode while waiting for a key frame (at the start, after a queue drop)."""
        self.has_audio = False
        self.has_video = False
        self._dropped_seen = 0
        self._dropped_pending = 0
        self._resync = False
        self._last_keyframe_request_ns = 0
        self._segment: _Segment | None = None
        self._zero_ns: int | None = None
        self._first_audio_ns: int | None = None
        self._audio_next: dict[str, int | None] = {"audio": None, "talkback": None}
        self._clocks = {kind: MediaClock() for kind in ("video", "vp8", "audio", "opus", "talkback")}
        self._video_last_pts = -1
        self._index = 0

    def take(self, item: RecorderItem) -> None:
        """Write one item handed on by the event loop (:data:`RecorderItem`)."""
        kind, frame, arrival_ns, dropped, self.has_audio, self.has_video = item
        self.note_dropped(dropped)
        self._write(kind, frame, arrival_ns)

    def note_dropped(self, total: int) -> None:
        """The front has dropped ``total`` frames so far: the new ones count against the open segment, or the next
        one opened (so the segments' counts add up to the call's)."""
        if total > self._dropped_seen:
            self._dropped_pending += total - self._dropped_seen
            self._dropped_seen = total
        if self._segment is not None and self._dropped_pending:
            self._segment.dropped += self._dropped_pending
            self._dropped_pending = 0

    def _open(self, start_ns: int, size: tuple[int, int] | None, copy: bool = False) -> _Segment:
        self._index += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"rec-{self._index:04d}.mkv"
        # The audio stream exists in a segment when the call has audio; audio-only calls have no video stream.
        segment = _Segment(
            path, self._index, start_ns, size, audio=self.has_audio or size is None, talkback=self.talkback, copy=copy
        )
        segment.dropped, self._dropped_pending = self._dropped_pending, 0
        return segment

    def finish(self, reason: str) -> None:
        """Close the open segment (if any), fsync and hash it, and report it with ``reason`` (``rollover``,
        ``call_ended``, ``error``)."""
        seg, self._segment = self._segment, None
        if seg is None:
            return
        seg.close()
        digest, size = file_sha256(seg.path)
        span = ((seg.last_ns or seg.start_ns) - (seg.first_ns or seg.start_ns)) / 1e9
        info = SegmentInfo(
            seg.path, digest, size, seg.index, (seg.start_ns - (self._zero_ns or seg.start_ns)) / 1e9, span,
            seg.video_frames, seg.audio_frames, seg.dropped, reason,
        )
        self._report_segment(info)

    def _write(self, kind: str, frame: Any, arrival_ns: int) -> None:
        if kind == "vp8":
            data, rtp_time, resync = frame
            if resync:
                self._resync = True
            media_ns = None if rtp_time is None else rtp_time * 1_000_000_000 // VP8_RTP_RATE
            self._write_vp8(data, self._clocks[kind].place_media_ns(media_ns, arrival_ns))
            return
        if kind == "opus":
            data, rtp_time = frame
            media_ns = None if rtp_time is None else rtp_time * 1_000_000_000 // OPUS_RTP_RATE
            t_ns = self._clocks[kind].place_media_ns(media_ns, arrival_ns)
            kind = "audio"  # from here on the received Opus packet is the caller's audio
        else:
            t_ns = self._clocks[kind].place_ns(frame, arrival_ns)
        if kind == "talkback":
            # The dispatcher's voice follows the call's time line; it never opens a segment or sets t = 0.
            if self._segment is not None and self._segment.talk is not None and self._zero_ns is not None:
                self._write_audio(self._segment, self._segment.talk, "talkback", frame, t_ns)
            return
        if self._zero_ns is None:
            if kind == "audio":
                if self._first_audio_ns is None:
                    self._first_audio_ns = t_ns
                if t_ns - self._first_audio_ns < AUDIO_ONLY_AFTER_S * 1e9 or self.has_video:
                    return  # wait for the first video frame so both kinds start together
            self._zero_ns = t_ns
        seg = self._segment
        if kind == "video":
            size = (frame.width, frame.height)
            if seg is not None and (seg.size != size or seg.copy or t_ns - seg.start_ns >= self._segment_ns):
                self.finish("rollover")
                seg = None
            if seg is None:
                seg = self._segment = self._open(t_ns, size)
            if seg.video is None:  # an audio-only segment and now video: start a segment with both
                self.finish("rollover")
                seg = self._segment = self._open(t_ns, size)
            pts = max((t_ns - self._zero_ns) // 1_000_000, self._video_last_pts + 1)
            self._video_last_pts = pts
            if frame.format.name != "yuv420p":  # a private reformatter: the frame's own is not thread-safe
                frame = VideoReformatter().reformat(frame, format="yuv420p")
            frame.pts = pts
            frame.time_base = VIDEO_TIME_BASE
            seg.mux(seg.video.encode(frame))
            seg.video_frames += 1
        else:
            if seg is None:
                if self.has_video:
                    return  # video is on its way; its first frame opens the segment
                seg = self._segment = self._open(t_ns, None)
            elif seg.video is None and t_ns - seg.start_ns >= self._segment_ns:
                self.finish("rollover")
                seg = self._segment = self._open(t_ns, None)
            if seg.audio is None:
                return
            if isinstance(frame, tuple):  # a received Opus packet (audio_copy)
                self._write_opus(seg, frame[0], t_ns)
            else:
                self._write_audio(seg, seg.audio, "audio", frame, t_ns)
            seg.audio_frames += 1
        if seg.first_ns is None:
            seg.first_ns = t_ns
        seg.last_ns = t_ns

    def _write_audio(self, seg: _Segment, stream: Any, kind: str, frame: Any, t_ns: int) -> None:
        """Encode one audio frame of ``kind``, placed at ``t_ns`` (:class:`MediaClock`), into ``stream``; a frame
        that would overlap the one before by more than half its length is dropped (see the module docstring)."""
        assert self._zero_ns is not None
        pts = (t_ns - self._zero_ns) * AUDIO_RATE // 1_000_000_000
        if frame.sample_rate != AUDIO_RATE or frame.layout.name != "stereo" or frame.format.name != "s16":
            frame = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE).resample(frame)[0]
        following = self._audio_next[kind]
        if following is not None and pts < following:
            if following - pts > frame.samples // 2:
                return  # placed inside what is written already (the offset shrank): dropped, not shifted
            pts = following
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._audio_next[kind] = pts + frame.samples
        seg.mux(stream.encode(frame))

    def _write_opus(self, seg: _Segment, data: bytes, t_ns: int) -> None:
        """Store one received Opus packet, placed at ``t_ns``, in the segment's caller audio track as it came (the
        track's header is the Opus encoder's, 48 kHz stereo; a mono packet plays as both channels). Placed and
        dropped like decoded audio (:meth:`_write_audio`)."""
        assert self._zero_ns is not None
        samples = opus_packet_samples(data)
        pts = (t_ns - self._zero_ns) * AUDIO_RATE // 1_000_000_000
        following = self._audio_next["audio"]
        if following is not None and pts < following:
            if following - pts > samples // 2:
                return
            pts = following
        self._audio_next["audio"] = pts + samples
        packet = av.Packet(data)
        packet.stream = seg.audio
        packet.pts = packet.dts = pts
        packet.duration = samples
        packet.time_base = fractions.Fraction(1, AUDIO_RATE)
        seg.container.mux(packet)

    def _want_keyframe(self, t_ns: int) -> None:
        """Ask the caller for a key frame (on the loop), at most once a second."""
        if t_ns - self._last_keyframe_request_ns >= 1_000_000_000:
            self._last_keyframe_request_ns = t_ns
            self._report_keyframe()

    def _write_vp8(self, data: bytes, t_ns: int) -> None:
        """Store one received VP8 frame, placed at ``t_ns``, as a Matroska packet (``copy`` mode). A segment starts
        only at a key frame: at the call's start, after a dropped frame, and at a rollover (the old segment goes on
        until the key frame asked for arrives)."""
        size = vp8_keyframe_size(data)
        key = size is not None
        seg = self._segment
        if key:
            self._resync = False
        elif self._resync or seg is None or seg.video is None or not seg.copy:
            self.keyframe_waits += 1
            self._want_keyframe(t_ns)
            return
        if seg is not None and seg.video is not None and seg.copy and not key:
            if t_ns - seg.start_ns >= self._segment_ns:
                self._want_keyframe(t_ns)  # roll over at the next key frame
        elif key and (seg is None or seg.video is None or not seg.copy or seg.size != size
                      or t_ns - seg.start_ns >= self._segment_ns):
            if self._zero_ns is None:
                self._zero_ns = t_ns
            if seg is not None:
                self.finish("rollover")
            seg = self._segment = self._open(t_ns, size, copy=True)
        assert seg is not None and self._zero_ns is not None
        pts = max((t_ns - self._zero_ns) // 1_000_000, self._video_last_pts + 1)
        self._video_last_pts = pts
        packet = av.Packet(data)
        packet.stream = seg.video
        packet.pts = packet.dts = pts
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = key
        seg.container.mux(packet)
        seg.video_frames += 1
        if seg.first_ns is None:
            seg.first_ns = t_ns
        seg.last_ns = t_ns


class CallRecorder(RecorderFront):
    """Records one call into ``directory/rec-NNNN.mkv`` segments (see the module docstring) with a writer thread of
    its own, in this process.

    ``on_segment(info)`` and ``on_error(message)`` are called on the event loop's thread. ``has_audio`` says whether
    the call offered audio (an audio stream is then created in every segment, so both kinds share each file).
    Errors: ``ValueError`` for an unknown ``video_mode``; none raised from :meth:`push`; an encoder or disk error
    stops the recorder and is reported through ``on_error`` (the call goes on without recording).
    """

    def __init__(
        self,
        directory: Path,
        *,
        loop: asyncio.AbstractEventLoop,
        on_segment: Callable[[SegmentInfo], Any],
        on_error: Callable[[str], Any],
        segment_s: float = 60.0,
        queue_frames: int = 120,
        talkback: bool = False,
        video_mode: str = "h264",
        request_keyframe: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(talkback=talkback, video_mode=video_mode, request_keyframe=request_keyframe)
        self.directory = directory
        self._loop = loop
        self._on_segment = on_segment
        self._on_error = on_error
        self._queue: queue.Queue[RecorderItem | None] = queue.Queue(maxsize=queue_frames)
        self._writer = CallWriter(
            directory, segment_s=segment_s, talkback=talkback,
            report_segment=lambda info: self._report(self._on_segment, info),
            want_keyframe=lambda: self._report(self._keyframe_wanted),
        )
        self._thread = threading.Thread(target=self._run, name=f"recorder-{directory.name}", daemon=True)
        self._thread.start()

    @property
    def keyframe_waits(self) -> int:
        """VP8 frames skipped in ``copy`` mode while waiting for a key frame (at the start, after a queue drop)."""
        return self._writer.keyframe_waits

    def _offer(self, item: RecorderItem) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def _keyframe_wanted(self) -> None:
        if self.request_keyframe is not None:
            self.request_keyframe()

    async def close(self) -> None:
        """Finish the open segment (it is reported through ``on_segment`` with reason ``call_ended``) and stop the
        writer thread."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(self._thread.join)

    def _report(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has closed (interpreter shutting down): nothing left to tell
            log.warning("recorder %s: event loop closed, %s not reported", self.directory, fn)

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                if not self._failed:
                    self._writer.take(item)
            self._writer.note_dropped(self.frames_dropped)
            self._writer.finish("call_ended")
        except Exception as exc:  # encoder or disk error: stop recording, keep the call
            log.exception("recording of %s failed", self.directory)
            self._failed = True
            self._report(self._on_error, f"{type(exc).__name__}: {exc}")
            try:
                self._writer.finish("error")
            except Exception:
                log.exception("closing the failed segment of %s", self.directory)
            while self._queue.get() is not None:  # keep draining so push() never blocks, until close()
                pass
