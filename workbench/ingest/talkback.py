"""Talk-back: the dispatcher's microphone, through the ingest, to the caller's page (issue 4).

Path and why
------------
The dispatcher's live viewer page (``?mode=webrtc``) already has a WebRTC connection to the ingest for the caller's
video and audio; when the session allows talk-back it also sends the dispatcher's microphone on that connection
(its audio transceiver becomes ``sendrecv``). The ingest drains that track (:meth:`Talkback.consume_microphone`)
and, while the dispatcher's talk control is on, hands its frames to :class:`VoiceTrack`, the audio track the
ingest adds to the *caller's* peer connection when it answers the caller's offer (the caller's microphone
transceiver is ``sendrecv`` already, so no renegotiation is needed). Only offers that say ``"talkback": true`` get
it (the caller page does): a client that never reads incoming tracks, like the simulated aiortc callers, would
pile the frames up in aiortc's unbounded receive queue. So the caller's page plays the dispatcher
without a second connection, and reconnects of either side just attach a new track.

* **Gated in the ingest, not only in the browser**: with talk off, the caller gets silence whatever the viewer
  sends, so a muted dispatcher is never heard because of a page bug.
* **Bounded**: the dispatcher's frames wait in a queue of :data:`VOICE_QUEUE_FRAMES` (20 ms each); the oldest are
  dropped (counted) when the caller's side falls behind. The microphone consumer drains aiortc's unbounded
  receive queue as fast as frames come, whether talk is on or not.
* **Recorded as heard**: every frame :class:`VoiceTrack` sends to the caller (the dispatcher's voice, or silence
  while talk is off) goes to the call's recorder as ``talkback``, a second Opus track in the same Matroska segments
  (:mod:`workbench.ingest.recording`), on the same monotonic time line as the caller's audio and video.
* **One speaker**: up to ``live.MAX_WEBRTC_VIEWERS`` viewers may watch; the newest viewer that sends a microphone
  is the one the caller hears (a console reload replaces the old page's connection).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import time
from typing import Any, Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame
from av.audio.resampler import AudioResampler

from workbench.domain import events as ev
from workbench.store.eventlog import Clock

log = logging.getLogger(__name__)

RATE = 48000
"""Sample rate of the voice sent to the caller, Hz (Opus's native rate)."""
FRAME_SAMPLES = 960
"""Samples per frame: 20 ms at :data:`RATE`, the Opus frame aiortc sends."""
VOICE_QUEUE_FRAMES = 10
"""Dispatcher frames (20 ms each) that may wait for the caller's side before the oldest is dropped (200 ms)."""


class TalkbackError(RuntimeError):
    """A talk request that cannot be carried out; the message says why and what to do."""


def silence(samples: int = FRAME_SAMPLES) -> AudioFrame:
    """``samples`` of stereo s16 silence at :data:`RATE` (an :class:`av.AudioFrame`, pts unset)."""
    frame = AudioFrame(format="s16", layout="stereo", samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = RATE
    return frame


def copy_frame(frame: AudioFrame) -> AudioFrame:
    """An independent copy of a packed audio frame (samples, rate, pts, time base)."""
    copy = AudioFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name, layout=frame.layout.name)
    copy.sample_rate = frame.sample_rate
    copy.pts, copy.time_base = frame.pts, frame.time_base
    return copy


class VoiceTrack(MediaStreamTrack):
    """The audio the ingest sends to one caller connection: the dispatcher's voice while talking, else silence.

    Paced in real time (one 20 ms frame per 20 ms, like aiortc's own ``AudioStreamTrack``), stereo s16 at 48 kHz,
    pts a continuous sample count. ``on_frame(frame, t_mono_ns)`` sees each frame sent (for the recording)."""

    kind = "audio"

    def __init__(self, talkback: "Talkback", on_frame: Callable[[AudioFrame, int], Any] | None) -> None:
        super().__init__()
        self._talkback = talkback
        self._on_frame = on_frame
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + self._sent * FRAME_SAMPLES / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5:  # the loop stalled for long: restart the pacing instead of bursting to catch up
                self._start = time.monotonic() - self._sent * FRAME_SAMPLES / RATE
        frame = self._talkback.next_voice_frame()
        frame.pts = self._sent * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self._sent += 1
        if self._on_frame is not None:
            # A copy: aiortc encodes the returned frame in a worker thread while the recorder's thread sets its own
            # pts on what it gets.
            self._on_frame(copy_frame(frame), self._talkback.clock.monotonic_ns())
        return frame

    def stop(self) -> None:
        super().stop()
        self._talkback.tracks.discard(self)


class Talkback:
    """The dispatcher's voice path of one call (see the module docstring).

    ``allowed``: the session's talk-back policy (``media.talkback_policy``); when False nothing is relayed and
    :meth:`set_talking` refuses. ``record(frame, t_ns)`` gets every frame sent to the caller (the call's recorder,
    or None). ``emit(payload, source)`` writes an event for this call. Runs on the event loop's thread only."""

    def __init__(
        self,
        *,
        allowed: bool,
        clock: Clock,
        emit: Callable[[ev.Payload, str], Any],
        record: Callable[[AudioFrame, int], Any] | None = None,
    ) -> None:
        self.allowed = allowed
        self.clock = clock
        self._emit = emit
        self._record = record
        self.talking = False
        """The dispatcher's talk control: True while the caller hears the dispatcher."""
        self.tracks: set[VoiceTrack] = set()
        self._queue: collections.deque[AudioFrame] = collections.deque(maxlen=VOICE_QUEUE_FRAMES)
        self._speaker: object | None = None
        self._consumers: set[asyncio.Task[None]] = set()
        self._resampler: AudioResampler | None = None
        self.voice_frames_sent = 0
        """Frames of the dispatcher's voice (not silence) handed to the caller's side."""
        self.frames_dropped = 0
        """Dispatcher frames dropped because the caller's side fell behind (the queue was full)."""
        self.microphone_frames = 0
        """Frames received from the dispatcher's microphone (talking or not)."""

    @property
    def microphone_live(self) -> bool:
        """Whether a viewer's microphone track is being received now."""
        return self._speaker is not None

    def status(self) -> dict[str, Any]:
        """``{"allowed", "talking", "microphone", "microphone_frames", "voice_frames_sent", "frames_dropped"}`` for
        ``GET /api/calls/{call_id}``."""
        return {
            "allowed": self.allowed, "talking": self.talking, "microphone": self.microphone_live,
            "microphone_frames": self.microphone_frames, "voice_frames_sent": self.voice_frames_sent,
            "frames_dropped": self.frames_dropped,
        }

    # --- towards the caller --------------------------------------------------------------------------------------

    def caller_track(self) -> VoiceTrack | None:
        """A new track for the caller's peer connection (one per offer), or None when talk-back is not allowed."""
        if not self.allowed:
            return None
        for old in list(self.tracks):  # a reconnect replaces the caller's connection: one listener at a time
            old.stop()
        track = VoiceTrack(self, self._record)
        self.tracks.add(track)
        return track

    def next_voice_frame(self) -> AudioFrame:
        """The next 20 ms for the caller: the oldest waiting dispatcher frame while talking, else silence."""
        if self.talking and self._queue:
            self.voice_frames_sent += 1
            return self._queue.popleft()
        return silence()

    # --- from the dispatcher ---------------------------------------------------------------------------------------

    def consume_microphone(self, track: Any) -> asyncio.Task[None]:
        """Drain a viewer's microphone ``track`` (aiortc remote audio track) until it ends; the newest such track is
        the one the caller hears."""
        speaker = object()
        self._speaker = speaker
        task = asyncio.ensure_future(self._drain(track, speaker))
        self._consumers.add(task)
        task.add_done_callback(self._consumers.discard)
        return task

    async def _drain(self, track: Any, speaker: object) -> None:
        try:
            while True:
                frame = await track.recv()
                self.microphone_frames += 1
                if speaker is not self._speaker or not (self.talking and self.allowed and self.tracks):
                    continue
                for out in self._to_voice_format(frame):
                    if len(self._queue) == self._queue.maxlen:
                        self.frames_dropped += 1
                    self._queue.append(out)
        except MediaStreamError:
            pass
        finally:
            if self._speaker is speaker:
                self._speaker = None
                if self.talking:
                    self.set_talking(False, "microphone_ended")

    def _to_voice_format(self, frame: AudioFrame) -> list[AudioFrame]:
        """``frame`` as stereo s16 at 48 kHz in :data:`FRAME_SAMPLES` pieces (browsers send exactly that; anything
        else is resampled)."""
        if (frame.format.name, frame.layout.name, frame.sample_rate, frame.samples) == ("s16", "stereo", RATE,
                                                                                       FRAME_SAMPLES):
            return [copy_frame(frame)]
        if self._resampler is None:
            self._resampler = AudioResampler(format="s16", layout="stereo", rate=RATE, frame_size=FRAME_SAMPLES)
        frame.pts = None
        return list(self._resampler.resample(frame))

    def set_talking(self, on: bool, origin: str) -> ev.DispatcherTalk:
        """Switch the dispatcher's talk control; returns the ``dispatcher.talk`` event written (``origin``: ``toggle``
        from the viewer page, ``microphone_ended`` when the dispatcher's microphone went away, ``call_ended``).

        Raises :class:`TalkbackError` when talk-back is not allowed in this session, or when turning on without a
        dispatcher microphone connected."""
        if not self.allowed:
            raise TalkbackError(
                "talk-back is off in this session; create the session with \"talkback\": true "
                "(POST /api/sessions) or start the ingest with --talkback"
            )
        if on and self._speaker is None:
            raise TalkbackError(
                "no dispatcher microphone is connected to this call: open the live view with ?mode=webrtc and "
                "allow the microphone"
            )
        self.talking = on
        if not on:
            self._queue.clear()
        payload = ev.DispatcherTalk(on, origin, self.microphone_live)
        self._emit(payload, "ingest" if origin != "toggle" else "console")
        return payload

    async def close(self) -> None:
        """The call has ended: stop talking (logged when it was on), end the tracks and the microphone consumers."""
        if self.talking:
            self.set_talking(False, "call_ended")
        for track in list(self.tracks):
            track.stop()
        for task in list(self._consumers):
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
