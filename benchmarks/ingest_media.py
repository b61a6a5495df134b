"""Media for the ingest benchmark's callers: the stamp in the picture, and callers that send pre-encoded VP8.

Why pre-encoded: on a 2-core machine N live aiortc callers encoding VP8 eat the cores the receiver is measured on
(the bare receiver collapsed from N=8). A pre-encoded caller hands aiortc ``av.Packet`` objects; aiortc's
``RTCRtpSender`` then only packetizes them (``Encoder.pack``, no encoding), so a caller costs RTP, SRTP and UDP only.

The sequence (:func:`pre_encode`): :data:`SEQ_FRAMES` pictures of 640x480, encoded once before the run by aiortc's
own ``Vp8Encoder`` (libvpx realtime, ``cpu-used -6``, no lag, CBR, ``kf_max_dist`` 3000: the settings a live aiortc
caller uses, close to a browser's libwebrtc VP8) at a fixed target bitrate, so the first frame is the only keyframe,
as with a live aiortc caller; the sequence loops from it. When the receiver asks for a keyframe (RTCP PLI/FIR),
which aiortc ignores for pre-encoded packets, the caller restarts the sequence at that keyframe, so the keyframe
comes as fast as from a live encoder and every later frame decodes against exactly the reference it was encoded
from (an all-keyframe second pass spliced in mid-sequence was tried: the following inter frames then drift from
their references and the stamps became unreadable). The sequence is kept as an IVF file (the plain VP8 container;
``ffprobe`` reads it).

A pre-encoded picture cannot carry its own send time, so each picture carries its FRAME INDEX in the stamp blocks
(:func:`index_stamp`: 24 bits of index in Gray code and their complement, so a damaged picture reads as unreadable rather than as
a wrong index), and each caller records the wall-clock time (``time.time()``, ms) at which it handed each index to
aiortc. Glass-to-glass latency is then the time the receiver read the index back minus the caller's send time of
that index (:func:`g2g_from_indices`); callers and receiver run on the same machine and read the same clock. Unlike
the live callers' capture time, the send time excludes the caller's encoding. The caller records the index it
sent with each time, since a keyframe request makes the sequence start over.
"""

from __future__ import annotations

import asyncio
import bisect
import fractions
import math
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

WIDTH, HEIGHT, FPS = 640, 480, 15
BITS = 48
BLOCK_W, BLOCK_H = 26, 32
"""Stamp blocks: 2 rows of 24 blocks, 26 x 32 px each, in the frame's top-left 624 x 64 px."""

SEQ_FRAMES = 450
"""Pictures in the pre-encoded sequence (30 s at 15 fps). A latency above 30 s would be matched to a later loop and
read 30 s too short; every case measured so far stayed far below."""
INDEX_BITS = 24
_INDEX_MASK = (1 << INDEX_BITS) - 1
VIDEO_CLOCK = fractions.Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960
"""Opus frames of 20 ms at 48 kHz, as aiortc sends them."""


# --- the stamp in the picture -------------------------------------------------------------------------------------


def draw_stamp(image: np.ndarray, value: int) -> None:
    """Write ``value`` (< 2**48) into ``image`` (BGR or grey, uint8) as black/white blocks, most significant first."""
    for i in range(BITS):
        row, col = divmod(i, BITS // 2)
        bit = (value >> (BITS - 1 - i)) & 1
        image[row * BLOCK_H : (row + 1) * BLOCK_H, col * BLOCK_W : (col + 1) * BLOCK_W] = 255 if bit else 0


def read_stamp(grey: np.ndarray, scale: int = 1) -> int:
    """Read back what :func:`draw_stamp` wrote, from a grey image (or a Y plane) decoded at ``1/scale`` size."""
    value = 0
    for i in range(BITS):
        row, col = divmod(i, BITS // 2)
        y = (row * BLOCK_H + BLOCK_H // 2) // scale
        x = (col * BLOCK_W + BLOCK_W // 2) // scale
        value = (value << 1) | int(grey[y, x] > 127)
    return value


def index_stamp(index: int) -> int:
    """The stamp value for frame ``index`` (0 <= index < 2**24): the index in Gray code, then that code's bitwise
    complement. Gray code flips one block (and its complement) from one frame to the next, so a rate-starved encoder
    has two small blocks to update, not up to 48; the complement tells a half-updated picture from a valid one."""
    if not 0 <= index <= _INDEX_MASK:
        raise ValueError(f"frame index {index} outside 0..{_INDEX_MASK}")
    gray = index ^ (index >> 1)
    return (gray << INDEX_BITS) | (~gray & _INDEX_MASK)


def index_from_stamp(value: int) -> int | None:
    """The frame index in a stamp read back, or None when code and complement disagree (a damaged picture)."""
    gray, check = value >> INDEX_BITS, value & _INDEX_MASK
    if gray ^ check != _INDEX_MASK:
        return None
    index, shift = gray, gray >> 1
    while shift:
        index ^= shift
        shift >>= 1
    return index


def drawn_picture(n: int) -> np.ndarray:
    """Picture ``n`` of the drawn scene (BGR 640x480): a grey gradient with a red square moving 12 px a frame."""
    import cv2

    gradient = np.linspace(40, 200, WIDTH, dtype=np.uint8)
    image = np.dstack([np.tile(gradient, (HEIGHT, 1))] * 3)
    x = int((n * 12) % (WIDTH - 80))
    cv2.rectangle(image, (x, 200), (x + 80, 280), (0, 0, 255), -1)
    return image


# --- IVF: the plain VP8 container ---------------------------------------------------------------------------------
# Layout (libvpx's ivfenc/ivfdec): a 32-byte file header "DKIF", version 0, header size 32, fourcc, width, height,
# frame rate, time scale, frame count, unused; then per frame a 12-byte header (size u32, pts u64) and the frame.


def write_ivf(path: Path, frames: list[bytes], width: int = WIDTH, height: int = HEIGHT, fps: int = FPS) -> None:
    """Write VP8 ``frames`` (one encoded picture each, pts = index at ``fps``) to ``path`` as IVF, atomically."""
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<4sHH4sHHIII4x", b"DKIF", 0, 32, b"VP80", width, height, fps, 1, len(frames)))
        for pts, data in enumerate(frames):
            fh.write(struct.pack("<IQ", len(data), pts))
            fh.write(data)
    tmp.replace(path)


def read_ivf(path: Path) -> list[bytes]:
    """The frames of a VP8 IVF file. Raises ValueError naming the file when it is not one or is cut short."""
    data = Path(path).read_bytes()
    if len(data) < 32 or data[:4] != b"DKIF" or data[8:12] != b"VP80":
        raise ValueError(f"{path}: not a VP8 IVF file (expected 'DKIF' ... 'VP80' in the first 12 bytes)")
    header_size = struct.unpack_from("<H", data, 6)[0]
    count = struct.unpack_from("<I", data, 24)[0]
    frames, pos = [], header_size
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"{path}: frame header cut short at byte {pos}")
        size = struct.unpack_from("<I", data, pos)[0]
        if pos + 12 + size > len(data):
            raise ValueError(f"{path}: frame {len(frames)} cut short ({size} bytes announced at byte {pos})")
        frames.append(data[pos + 12 : pos + 12 + size])
        pos += 12 + size
    if len(frames) != count:
        raise ValueError(f"{path}: header announces {count} frames, file holds {len(frames)}")
    return frames


def is_vp8_keyframe(frame: bytes) -> bool:
    """True for a VP8 key frame (RFC 6386 section 9.1: bit 0 of the frame tag is 0)."""
    return bool(frame) and not frame[0] & 1


# --- pre-encoding -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreEncoded:
    """A pre-encoded sequence on disk: ``directory`` holds ``video.ivf``, ``frames`` VP8 frames. ``bitrate_kbps`` is
    what it carries at :data:`FPS`; ``keyframes`` how many of its frames are keyframes; ``encode_s`` the wall time
    the encoding took (not part of any measurement)."""

    directory: Path
    frames: int
    picture: str
    target_kbps: int
    bitrate_kbps: float
    keyframes: int
    encode_s: float

    def describe(self) -> str:
        """One line for the benchmark's table."""
        return (f"pre-encoded VP8 callers: {self.frames} frames 640x480@{FPS} looped, {self.picture}, libvpx "
                f"realtime via aiortc's Vp8Encoder, target {self.target_kbps} kbit/s -> {self.bitrate_kbps:.0f} "
                f"kbit/s, {self.keyframes} keyframe per loop, a keyframe request restarts the sequence (encoded in "
                f"{self.encode_s:.1f} s before the run)")


def pre_encode(directory: Path, frames: int = SEQ_FRAMES, picture: str = "drawn scene",
               target_kbps: int = 500, pictures: list[np.ndarray] | None = None) -> PreEncoded:
    """Encode ``frames`` 640x480 pictures, frame index ``i`` stamped into picture ``i``, into
    ``directory/video.ivf`` (see the module docstring); returns what was made.

    ``pictures`` (BGR 640x480, looped) are what to encode, :func:`drawn_picture` when None; ``picture`` names them
    for the table. ``target_kbps`` is the encoder's CBR target (aiortc's starting rate is 500; its receiver's REMB
    may raise a live caller towards 1500). Raises ValueError for bad arguments."""
    from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
    from av import VideoFrame

    if not 1 <= frames <= _INDEX_MASK:
        raise ValueError(f"frames must be 1..{_INDEX_MASK}, got {frames}")
    if pictures is not None and not pictures:
        raise ValueError("pictures is empty: give at least one 640x480 picture, or None for the drawn scene")
    t0 = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    encoder = Vp8Encoder()
    encoder.target_bitrate = target_kbps * 1000
    encoded = []
    for i in range(frames):
        image = drawn_picture(i) if pictures is None else pictures[i % len(pictures)].copy()
        if image.shape != (HEIGHT, WIDTH, 3):
            raise ValueError(f"picture {i} is {image.shape}, expected ({HEIGHT}, {WIDTH}, 3) BGR")
        draw_stamp(image, index_stamp(i))
        frame = VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = int(i * 90000 / FPS), VIDEO_CLOCK
        payloads, _ = encoder.encode(frame)
        encoded.append(b"".join(vp8_depayload(p) for p in payloads))
    if not is_vp8_keyframe(encoded[0]):
        raise RuntimeError("libvpx did not start the sequence with a keyframe")
    write_ivf(directory / "video.ivf", encoded)
    return PreEncoded(directory, frames, picture, target_kbps,
                      bitrate_kbps=sum(map(len, encoded)) * 8 * FPS / frames / 1000,
                      keyframes=sum(map(is_vp8_keyframe, encoded)), encode_s=time.monotonic() - t0)


# --- the tracks a pre-encoded caller sends ------------------------------------------------------------------------


def _track_base() -> Any:
    from aiortc.mediastreams import MediaStreamTrack

    return MediaStreamTrack


class _Pacer:
    """Real-time pacing: the ``n``-th item is due at start + n / rate (no drift from late wake-ups)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._start: float | None = None

    async def wait(self, n: int) -> None:
        if self._start is None:
            self._start = time.monotonic()
            return
        delay = self._start + n / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def pre_encoded_video_track(directory: Path, fps: float = FPS) -> Any:
    """A video track sending the sequence in ``directory`` (:func:`pre_encode`) as ``av.Packet`` objects, paced at
    ``fps``, looping. Attributes: ``frames_sent``; ``sends`` (``[index, wall-clock ms]`` of each frame handed to
    aiortc); ``keyframes_sent`` (keyframe requests answered by restarting the sequence). Call
    :meth:`answer_keyframe_requests` with the track's ``RTCRtpSender`` after ``addTrack``."""
    import av

    sequence = read_ivf(directory / "video.ivf")
    if not is_vp8_keyframe(sequence[0]):
        raise ValueError(f"{directory / 'video.ivf'}: the first frame is not a keyframe")

    class PreEncodedVideoTrack(_track_base()):  # type: ignore[misc]
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.frames_sent = 0
            self.keyframes_sent = 0
            self.sends: list[tuple[int, float]] = []
            self._pacer = _Pacer(fps)
            self._next = 0
            self._keyframe_wanted = False

        def answer_keyframe_requests(self, sender: Any) -> None:
            # aiortc turns a PLI/FIR into a flag only its encoder reads; with pre-encoded packets there is no
            # encoder, and a receiver that lost a frame would show a broken picture until the loop's end.
            sender._send_keyframe = self.request_keyframe

        def request_keyframe(self) -> None:
            self._keyframe_wanted = True

        async def recv(self) -> Any:
            n = self.frames_sent
            await self._pacer.wait(n)
            if self._keyframe_wanted:
                self._keyframe_wanted = False
                if self._next != 0:
                    self._next = 0
                    self.keyframes_sent += 1
            index = self._next
            self._next = (index + 1) % len(sequence)
            packet = av.Packet(sequence[index])
            packet.pts, packet.time_base = int(n * 90000 / fps), VIDEO_CLOCK
            self.sends.append((index, time.time() * 1000))
            self.frames_sent += 1
            return packet

    return PreEncodedVideoTrack()


def opus_tone_packets(seconds: float = 1.0, hz: float = 440.0) -> list[bytes]:
    """A ``hz`` tone of ``seconds`` (a whole number of cycles, so it loops without a click) encoded by aiortc's
    ``OpusEncoder`` into 20 ms Opus packets."""
    from aiortc.codecs.opus import OpusEncoder
    from av import AudioFrame

    encoder = OpusEncoder()
    packets: list[bytes] = []
    total = int(seconds * AUDIO_RATE)
    t = np.arange(total, dtype=np.float64)
    samples = (8000 * np.sin(2 * math.pi * hz * t / AUDIO_RATE)).astype(np.int16)
    for k in range(0, total, AUDIO_SAMPLES):
        frame = AudioFrame.from_ndarray(samples[None, k : k + AUDIO_SAMPLES], format="s16", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, k
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        payloads, _ = encoder.encode(frame)
        packets.extend(payloads)
    return packets


def pre_encoded_tone_track(packets: list[bytes]) -> Any:
    """An audio track sending the Opus ``packets`` (:func:`opus_tone_packets`) every 20 ms, looping."""
    import av

    class PreEncodedToneTrack(_track_base()):  # type: ignore[misc]
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._n = 0
            self._pacer = _Pacer(AUDIO_RATE / AUDIO_SAMPLES)

        async def recv(self) -> Any:
            await self._pacer.wait(self._n)
            packet = av.Packet(packets[self._n % len(packets)])
            packet.pts, packet.time_base = self._n * AUDIO_SAMPLES, fractions.Fraction(1, AUDIO_RATE)
            self._n += 1
            return packet

    return PreEncodedToneTrack()


# --- glass-to-glass from frame indices ----------------------------------------------------------------------------


def g2g_from_indices(samples: list[tuple[int, int, float]],
                     sends: list[list[tuple[int, float]]]) -> tuple[list[float], int]:
    """Glass-to-glass latencies (ms) from what a receiver read back.

    ``samples``: ``(stream, stamp value read, wall-clock ms when read)``; ``sends[stream]``: ``(frame index,
    wall-clock ms)`` of each frame that stream's caller handed to aiortc, in send order. A sample is matched to the
    latest send of its index not after it was read. Returns ``(latencies, unmatched)``: ``unmatched`` counts stamps
    that did not read as an index (a damaged or half-updated picture) or match no send (which would mean the
    clocks disagree or the stream is wrong)."""
    by_index: list[dict[int, list[float]]] = []
    for stream_sends in sends:
        table: dict[int, list[float]] = {}
        for index, t in stream_sends:
            table.setdefault(int(index), []).append(float(t))  # in send order, so sorted
        by_index.append(table)
    latencies, unmatched = [], 0
    for stream, value, read_ms in samples:
        index = index_from_stamp(int(value))
        times = by_index[stream].get(index, []) if index is not None and 0 <= stream < len(by_index) else []
        k = bisect.bisect_right(times, read_ms)
        if k == 0:
            unmatched += 1
            continue
        latencies.append(read_ms - times[k - 1])
    return latencies, unmatched
