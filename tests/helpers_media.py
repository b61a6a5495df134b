"""Test media: generated aiortc tracks (moving video, a tone) and cached y4m/WAV files for a fake browser camera."""

from __future__ import annotations

import asyncio
import fractions
import math
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame, VideoFrame


class PacedVideoTrack(MediaStreamTrack):
    """Base of the generated video tracks: frames at ``fps`` in real time from the first one handed out."""

    kind = "video"

    def __init__(self, fps: float) -> None:
        super().__init__()
        self.fps = fps
        self.frames_sent = 0
        self._start: float | None = None

    async def next_frame(self) -> tuple[int, float]:
        """Wait until the next frame is due; its number and its scheduled time (monotonic s)."""
        n = self.frames_sent
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + n / self.fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return n, self._start + n / self.fps


class MovingPatternTrack(PacedVideoTrack):
    """Video: a square moving across a gradient with the frame number printed, ``width`` x ``height`` at ``fps``.

    Every frame differs from the one before, so a viewer can count distinct frames.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15.0) -> None:
        super().__init__(fps)
        self.width, self.height = width, height
        gradient = np.linspace(40, 200, width, dtype=np.uint8)
        self._background = np.dstack([np.tile(gradient, (height, 1))] * 3)

    async def recv(self) -> VideoFrame:
        n, _ = await self.next_frame()
        image = self._background.copy()
        x = int((n * 12) % (self.width - 80))
        cv2.rectangle(image, (x, 180), (x + 80, 260), (0, 0, 255), -1)
        cv2.putText(image, f"{n:05d}", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
        frame = VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = int(n * 90000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self.frames_sent += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """Audio: a 440 Hz tone in 20 ms frames of 48 kHz mono s16, paced in real time."""

    kind = "audio"
    RATE = 48000
    SAMPLES = 960

    def __init__(self) -> None:
        super().__init__()
        self.frames_sent = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        n = self.frames_sent
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + n * self.SAMPLES / self.RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        t = (np.arange(self.SAMPLES) + n * self.SAMPLES) / self.RATE
        samples = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.RATE
        frame.pts = n * self.SAMPLES
        frame.time_base = fractions.Fraction(1, self.RATE)
        self.frames_sent += 1
        return frame


def make_y4m(source: Path, target: Path, *, seconds: float = 8, width: int = 640, height: int = 480, fps: int = 15) -> Path:
    """Convert ``source`` to a y4m a fake Chromium camera can play (scaled, constant frame rate); cached."""
    if target.exists():
        return target
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FileNotFoundError("ffmpeg is not installed")
    tmp = target.with_suffix(".tmp.y4m")
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-t", str(seconds),
         "-vf", f"scale={width}:{height},fps={fps}", "-pix_fmt", "yuv420p", str(tmp)],
        check=True,
        timeout=120,
    )
    tmp.rename(target)
    return target


def make_speech_wav(text: str, target: Path) -> Path:
    """Speak ``text`` with espeak-ng into a WAV (the fake microphone); cached."""
    if target.exists():
        return target
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise FileNotFoundError("espeak-ng is not installed")
    tmp = target.with_suffix(".tmp.wav")
    subprocess.run([espeak, "-w", str(tmp), text], check=True, timeout=60)
    tmp.rename(target)
    return target


class SyncMarks:
    """A clock shared by :class:`FlashTrack` and :class:`BeepTrack`: every ``period_s`` (from ``period_s`` after the
    first frame of either track) both show a marker for ``length_s``, a white picture and a 1 kHz beep, like a
    clapperboard. Each track decides by its frames' scheduled times (track start + pts, monotonic s, what its RTP
    timestamps say) and notes the scheduled time of the first frame of each marker, so a test can subtract what the
    caller itself put between picture and sound (the two frame grids' phase and the tracks' start times)."""

    def __init__(self, period_s: float = 1.0, length_s: float = 0.2) -> None:
        self.period_s, self.length_s = period_s, length_s
        self.origin: float | None = None
        self.flash_sent: dict[int, float] = {}
        self.beep_sent: dict[int, float] = {}

    def marker(self, now: float) -> int | None:
        """The index (1, 2, ...) of the marker shown at monotonic time ``now``, or None between markers."""
        if self.origin is None:
            self.origin = now
        k, into = divmod(now - self.origin, self.period_s)
        return int(k) if k >= 1 and into < self.length_s else None

    def sent_offsets_s(self) -> list[float]:
        """Beep minus flash scheduled time (s) for each marker both tracks sent: the caller's own A/V offset."""
        return [self.beep_sent[k] - self.flash_sent[k] for k in sorted(self.flash_sent) if k in self.beep_sent]


class FlashTrack(PacedVideoTrack):
    """Video, 640x480 at ``fps``: dark grey, white while a :class:`SyncMarks` marker runs."""

    def __init__(self, marks: SyncMarks, fps: float = 15.0) -> None:
        super().__init__(fps)
        self.marks = marks
        self._dark = np.full((480, 640, 3), 30, np.uint8)
        self._white = np.full((480, 640, 3), 235, np.uint8)

    async def recv(self) -> VideoFrame:
        n, scheduled = await self.next_frame()
        k = self.marks.marker(scheduled)
        if k is not None:
            self.marks.flash_sent.setdefault(k, scheduled)
        frame = VideoFrame.from_ndarray(self._dark if k is None else self._white, format="bgr24")
        frame.pts = int(n * 90000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self.frames_sent += 1
        return frame


class BeepTrack(ToneTrack):
    """Audio like :class:`ToneTrack`, silent except for a 1 kHz beep while a :class:`SyncMarks` marker runs."""

    def __init__(self, marks: SyncMarks) -> None:
        super().__init__()
        self.marks = marks

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        assert self._start is not None
        scheduled = self._start + (self.frames_sent - 1) * self.SAMPLES / self.RATE
        k = self.marks.marker(scheduled)
        if k is None:
            samples = np.zeros((1, self.SAMPLES), np.int16)
        else:
            self.marks.beep_sent.setdefault(k, scheduled)
            t = np.arange(self.SAMPLES) / self.RATE
            samples = (np.sin(2 * math.pi * 1000 * t) * 12000).astype(np.int16).reshape(1, -1)
        beep = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        beep.sample_rate, beep.pts, beep.time_base = frame.sample_rate, frame.pts, frame.time_base
        return beep
