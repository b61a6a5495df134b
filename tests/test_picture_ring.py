"""Decoded pictures cross to the recorder process through shared memory (issue 4, ``picture_ring``).

What the ring could break: a picture's bytes (row padding, plane order), its pts and time base, a slot never given
back (the ring fills and every later picture is dropped), pictures that do not fit, and a recorder process that
cannot open the ring. The ring is used once the recorder process says it has opened it, so the tests that need it
wait for that (:func:`ring_in_use`); ``tests/test_recorder_process.py`` checks the recordings themselves.
"""

from __future__ import annotations

import asyncio
import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import poll
from tests.test_recording import _audio, _video, stream_spans
from workbench.ingest.picture_ring import PictureRing, RingPicture, yuv420p_bytes
from workbench.ingest.recorder_process import FrameBox, RecorderProcess
from workbench.ingest.recording import SegmentInfo


async def ring_in_use(host: RecorderProcess) -> PictureRing:
    """The host's ring once the recorder process has opened it (pictures go by pipe until then)."""
    async def ring() -> PictureRing | None:
        return host.ring

    return await poll(ring, lambda r: r is not None, 15, "the recorder process to open the ring", 0.05)


async def until_read(ring: PictureRing) -> None:
    """Wait until the recorder process has copied every picture out of ``ring``."""
    async def in_use() -> int:
        return ring.in_use()

    await poll(in_use, lambda n: n == 0, 4, "the recorder process to read every slot", 0.02)


def noise_picture(width: int, height: int, seed: int = 5) -> av.VideoFrame:
    rng = np.random.default_rng(seed)
    frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (height, width, 3), np.uint8), format="bgr24")
    frame = frame.reformat(format="yuv420p")
    frame.pts, frame.time_base = 90_000 * 7, Fraction(1, 90000)
    return frame


def test_a_picture_goes_through_a_slot_unchanged_and_the_slot_comes_back() -> None:
    ring = PictureRing.create(3, yuv420p_bytes(640, 480))
    assert ring is not None
    other = PictureRing.attach(ring.spec)  # as the recorder process opens it
    try:
        picture = noise_picture(322, 240)  # 322 px rows are padded in the frame (line size > width)
        assert picture.planes[0].line_size > 322
        slot = ring.acquire()
        assert slot == 0 and ring.in_use() == 1
        sent = pickle.loads(pickle.dumps(FrameBox(picture, ring, slot)))  # what crosses the pipe
        assert isinstance(sent, RingPicture) and len(pickle.dumps(sent)) < 200
        back = other.read(sent)
        assert (back.width, back.height, back.format.name) == (322, 240, "yuv420p")
        assert np.array_equal(back.to_ndarray(), picture.to_ndarray())
        assert (back.pts, back.time_base) == (630_000, Fraction(1, 90000))
        assert ring.in_use() == 0 and ring.acquire() == 0  # freed by the reader, lowest slot first
    finally:
        other.close()
        ring.close()
        ring.close()  # twice is harmless
        ring.release(0)  # a late release (the feeder thread after the process died) does nothing
        assert ring.acquire() is None
        with pytest.raises(ValueError):
            ring.write(0, picture)


def test_a_full_ring_says_so_and_pictures_that_do_not_fit_use_the_pipe() -> None:
    ring = PictureRing.create(2, yuv420p_bytes(320, 240))
    assert ring is not None
    try:
        assert [ring.acquire(), ring.acquire(), ring.acquire()] == [0, 1, None]
        ring.release(0)
        assert ring.acquire() == 0
        assert ring.fits(320, 240) and ring.fits(160, 120)
        assert not ring.fits(640, 480) and not ring.fits(321, 240)  # too large; odd rows
        with pytest.raises(ValueError, match="slots > 0"):
            PictureRing.create(0, 10)
    finally:
        ring.close()


def test_a_full_ring_drops_and_counts_the_picture_and_leaks_no_slot(tmp_path: Path) -> None:
    async def run() -> tuple[list[SegmentInfo], int, int]:
        infos: list[SegmentInfo] = []
        host = RecorderProcess(queue_items=400, ring_slots=4)
        try:
            ring = await ring_in_use(host)
            recorder = host.recorder(tmp_path / "call", on_segment=infos.append, on_error=pytest.fail)
            recorder.has_video = True
            taken = [ring.acquire() for _ in range(4)]  # the ring is full, as when the recorder is behind
            recorder.push("video", _video(0, 15), 10**12)
            recorder.push("video", _video(1, 15), 10**12 + 66_000_000)
            dropped_while_full = recorder.frames_dropped
            for slot in taken:
                ring.release(slot)
            for n in range(2, 12):
                await until_read(ring)
                recorder.push("video", _video(n, 15), 10**12 + n * 66_000_000)
            await until_read(ring)
            await asyncio.wait_for(recorder.close(), 30)
            return infos, dropped_while_full, ring.in_use()
        finally:
            await host.close()

    infos, dropped_while_full, in_use = asyncio.run(run())
    assert dropped_while_full == 2
    assert in_use == 0  # every picture sent was read back and its slot freed
    assert len(infos) == 1 and infos[0].video_frames == 10 and infos[0].frames_dropped == 2
    with av.open(str(infos[0].path)) as container:  # the pictures made it across: frame n is grey level 7n
        levels = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]
    assert levels[:3] == pytest.approx([14, 21, 28], abs=2)


def test_pictures_larger_than_a_slot_and_audio_still_reach_the_recording(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workbench.ingest.recorder_process.RING_SLOT_BYTES", yuv420p_bytes(160, 120))

    acquired: list[int | None] = []
    acquire = PictureRing.acquire
    monkeypatch.setattr(PictureRing, "acquire", lambda self: acquired.append(acquire(self)) or acquired[-1])

    async def run() -> tuple[list[SegmentInfo], int]:
        infos: list[SegmentInfo] = []
        host = RecorderProcess(queue_items=400)
        try:
            await ring_in_use(host)
            recorder = host.recorder(tmp_path / "call", on_segment=infos.append, on_error=pytest.fail)
            recorder.has_audio = recorder.has_video = True
            for i in range(100):
                t = 10**12 + i * 20_000_000
                recorder.push("audio", _audio(i), t)
                if i % 4 == 0:
                    recorder.push("video", _video(i // 4, 12.5), t)  # 320x240: larger than a slot, by pipe
            await asyncio.wait_for(recorder.close(), 30)
            return infos, host.ring.in_use() if host.ring else -1
        finally:
            await host.close()

    infos, in_use = asyncio.run(run())
    assert in_use == 0 and acquired == []  # no picture took a slot: all went by pipe
    assert len(infos) == 1 and infos[0].video_frames == 25 and infos[0].audio_frames == 99  # 249 of 250 in test_recorder_process
    assert set(stream_spans(infos[0].path)) == {"video", "audio"}
    with av.open(str(infos[0].path)) as container:  # frame n is grey level 7n
        levels = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]
    assert levels[:3] == pytest.approx([0, 7, 14], abs=2)


def test_a_recorder_process_that_cannot_open_the_ring_gets_pictures_by_pipe(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The spec names a descriptor the ingest does not have: the recorder process cannot open the ring and says so.
    monkeypatch.setattr(PictureRing, "spec", property(lambda self: (self._owner_pid, 999_999, self.slots,
                                                                    self.slot_bytes)))

    async def run() -> tuple[list[SegmentInfo], str | None]:
        infos: list[SegmentInfo] = []
        host = RecorderProcess(queue_items=400)
        try:
            # At once, while the process is still starting: nothing may go into a ring it has not opened.
            recorder = host.recorder(tmp_path / "call", on_segment=infos.append, on_error=pytest.fail)
            recorder.has_video = True
            for n in range(30):
                recorder.push("video", _video(n, 15), 10**12 + n * 66_000_000)
                await asyncio.sleep(0.066)
            await asyncio.wait_for(recorder.close(), 30)
            return infos, host.ring_refused
        finally:
            await host.close()

    infos, refused = asyncio.run(run())
    assert refused is not None and "999999" in refused
    assert len(infos) == 1 and infos[0].video_frames == 30 and infos[0].frames_dropped == 0
