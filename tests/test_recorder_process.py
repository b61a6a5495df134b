"""The ingest's recorder process (issue 4): every call's segments written outside the ingest's process.

The writer is the same :class:`CallWriter` as a writer thread's, so these tests check what crossing the process
boundary could break: the frames arrive unchanged, segments come back to the event loop, a full queue drops and
counts, one call's failure leaves the others, and a dead recorder process is reported and replaced. The crash proof
with a real caller (``kill -9`` of the ingest, the recorder process dies with it) is in ``tests/test_recording.py``.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import threading
import time
from fractions import Fraction
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest

from tests.conftest import free_port, poll
from tests.test_ingest_webrtc import events_of
from tests.test_recording import _audio, _feed, _video, hard_to_encode_frames, stream_spans
from workbench.ingest.app import INGEST
from workbench.ingest.recorder_process import FrameBox, RecorderProcess
from workbench.ingest.recording import SegmentInfo
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings


def test_decoded_frames_cross_the_process_boundary_unchanged() -> None:
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 255, (240, 320, 3), np.uint8)
    yuv = av.VideoFrame.from_ndarray(picture, format="bgr24").reformat(format="yuv420p")
    yuv.pts, yuv.time_base = 123_456, Fraction(1, 90000)
    back = pickle.loads(pickle.dumps(FrameBox(yuv)))
    assert (back.width, back.height, back.format.name) == (320, 240, "yuv420p")
    assert np.array_equal(back.to_ndarray(), yuv.to_ndarray())
    assert (back.pts, back.time_base) == (123_456, Fraction(1, 90000))

    bgr = av.VideoFrame.from_ndarray(picture, format="bgr24")  # not yuv420p: converted on the way
    bgr.pts, bgr.time_base = 7, Fraction(1, 1000)
    back = pickle.loads(pickle.dumps(FrameBox(bgr)))
    assert back.format.name == "yuv420p" and (back.pts, back.time_base) == (7, Fraction(1, 1000))
    assert np.array_equal(back.to_ndarray(), bgr.reformat(format="yuv420p").to_ndarray())

    tone = (np.sin(np.arange(1920) / 10) * 8000).astype(np.int16).reshape(1, 1920)
    audio = av.AudioFrame.from_ndarray(tone, format="s16", layout="stereo")
    audio.sample_rate, audio.pts, audio.time_base = 48000, 960 * 5, Fraction(1, 48000)
    back = pickle.loads(pickle.dumps(FrameBox(audio)))
    assert (back.format.name, back.layout.name, back.sample_rate, back.samples) == ("s16", "stereo", 48000, 960)
    assert np.array_equal(back.to_ndarray(), tone)
    assert (back.pts, back.time_base) == (4800, Fraction(1, 48000))


def test_the_recorder_process_writes_the_segments_a_writer_thread_writes(tmp_path: Path) -> None:
    async def run() -> tuple[list[SegmentInfo], list[str], set[int], int | None]:
        infos: list[SegmentInfo] = []
        errors: list[str] = []
        threads: set[int] = set()

        def on_segment(info: SegmentInfo) -> None:
            threads.add(threading.get_ident())
            infos.append(info)

        host = RecorderProcess(queue_items=400)
        try:
            recorder = host.recorder(tmp_path / "call", on_segment=on_segment, on_error=errors.append, segment_s=2.0)
            recorder.has_audio = recorder.has_video = True
            await _feed(recorder, 5.0, video_fps=5, t0=10**12, rtp_jump_at=8)  # as the writer-thread test feeds it
            await asyncio.wait_for(recorder.close(), 30)
            return infos, errors, threads, host.pid
        finally:
            await host.close()

    infos, errors, threads, pid = asyncio.run(run())
    assert not errors and pid is not None and pid != os.getpid()
    assert threads == {threading.main_thread().ident}  # reported on the event loop's thread
    assert [i.index for i in infos] == [1, 2, 3]
    assert [i.reason for i in infos] == ["rollover", "rollover", "call_ended"]
    assert sum(i.video_frames for i in infos) == 25 and sum(i.audio_frames for i in infos) == 249
    previous_end = -1.0
    for info in infos:
        spans = stream_spans(info.path)
        assert set(spans) == {"video", "audio"}
        assert abs(spans["video"][0] - info.start_s) < 0.05, (spans, info)
        assert spans["video"][0] > previous_end  # one time line across segments, no 2^32 jump
        previous_end = spans["video"][1]
        assert info.size_bytes == info.path.stat().st_size
    assert previous_end == pytest.approx(4.8, abs=0.05)
    with av.open(str(infos[0].path)) as container:  # the pictures made it across: frame n is grey level 7n
        levels = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]
    assert levels[:3] == pytest.approx([0, 7, 14], abs=2)


def test_a_full_recorder_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    async def run() -> tuple[list[SegmentInfo], int, float]:
        infos: list[SegmentInfo] = []
        host = RecorderProcess(queue_items=5)
        try:
            recorder = host.recorder(tmp_path / "call", on_segment=infos.append, on_error=pytest.fail)
            recorder.has_video = True
            noise = hard_to_encode_frames()
            started = time.monotonic()
            for i in range(200):  # far beyond the queue: push never blocks
                recorder.push("video", noise[i % 4], 10**12 + i * 1_000_000)
            pushed_in = time.monotonic() - started
            await asyncio.wait_for(recorder.close(), 60)
            return infos, recorder.frames_dropped, pushed_in
        finally:
            await host.close()

    infos, dropped, pushed_in = asyncio.run(run())
    assert pushed_in < 0.5
    assert dropped > 50
    assert len(infos) == 1 and infos[0].video_frames + dropped == 200
    assert infos[0].frames_dropped == dropped


def test_items_of_a_call_the_process_was_not_yet_told_of_are_dropped_and_counted(tmp_path: Path) -> None:
    async def run() -> tuple[bool, int, list[SegmentInfo]]:
        infos: list[SegmentInfo] = []
        host = RecorderProcess(queue_items=1)  # the process is still starting: the first open fills the queue
        try:
            first = host.recorder(tmp_path / "first", on_segment=lambda info: None, on_error=pytest.fail)
            second = host.recorder(tmp_path / "second", on_segment=infos.append, on_error=pytest.fail)
            waited = not second.opening.done()
            second.has_video = True
            second.push("video", _video(0, 10), 10**12)  # its open message is not queued yet
            dropped_early = second.frames_dropped
            await asyncio.wait_for(second.opening, 30)
            await asyncio.sleep(0.5)  # the process takes the open message out of the one-place queue
            for i in range(1, 11):
                second.push("video", _video(i, 10), 10**12 + i * 100_000_000)
                await asyncio.sleep(0.1)  # one frame at a time through the one-place queue
            await asyncio.wait_for(asyncio.gather(first.close(), second.close()), 30)
            return waited, dropped_early, infos
        finally:
            await host.close()

    waited, dropped_early, infos = asyncio.run(run())
    assert waited and dropped_early == 1
    assert [(i.video_frames, i.frames_dropped) for i in infos] == [(10, 1)]


def test_a_failing_call_stops_only_its_own_recording(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the call's folder should be")

    async def run() -> tuple[list[str], list[str], list[SegmentInfo]]:
        bad_errors: list[str] = []
        good_errors: list[str] = []
        good: list[SegmentInfo] = []
        host = RecorderProcess(queue_items=400)
        try:
            bad = host.recorder(blocker / "call", on_segment=pytest.fail, on_error=bad_errors.append)
            ok = host.recorder(tmp_path / "call", on_segment=good.append, on_error=good_errors.append)
            for rec in (bad, ok):
                rec.has_audio = rec.has_video = True
            await asyncio.gather(_feed(bad, 2.0, video_fps=10, t0=10**12), _feed(ok, 2.0, video_fps=10, t0=10**12))
            await asyncio.wait_for(asyncio.gather(bad.close(), ok.close()), 30)
            return bad_errors, good_errors, good
        finally:
            await host.close()

    bad_errors, good_errors, good = asyncio.run(run())
    assert len(bad_errors) == 1 and bad_errors[0].startswith(("NotADirectoryError", "FileExistsError")), bad_errors
    assert not good_errors
    assert len(good) == 1 and good[0].video_frames == 20 and good[0].reason == "call_ended"


def test_a_dead_recorder_process_is_reported_and_the_next_call_gets_a_new_one(tmp_path: Path) -> None:
    """The ingest itself: the recorder process is killed while a call is open; the call logs
    ``media.recording_failed``, its end still comes, and the next call is recorded by a new process."""
    root = tmp_path / "rec"

    async def run() -> tuple[str, str, str, int, int]:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=root, ice_mode="loopback"),
                                    Recordings(root))
        ingest = handle.app[INGEST]
        api = aiohttp.ClientSession()
        try:
            async with api.post(handle.url + "/api/sessions", json={"participant": "p"}) as r:
                sid = (await r.json())["session_id"]
            async with api.post(handle.url + "/api/calls", json={"session_id": sid}) as r:
                first = (await r.json())["call_id"]
            host = ingest.recorder_process
            assert host is not None and host.pid is not None
            first_pid = host.pid
            os.kill(first_pid, signal.SIGKILL)
            await poll(lambda: _async(host.dead), bool, 10, "the ingest to notice the recorder process died")
            async with api.post(handle.url + "/api/calls", json={"session_id": sid}) as r:
                second = (await r.json())["call_id"]
            assert ingest.recorder_process is not host and ingest.recorder_process is not None
            second_pid = ingest.recorder_process.pid
            recorder = ingest.calls.by_id(second).media.recorder
            recorder.has_audio = True
            for i in range(150):  # 3 s of audio, no video: an audio-only recording
                recorder.push("audio", _audio(i), 10**12 + i * 20_000_000)
                await asyncio.sleep(0.002)
        finally:
            await api.close()
            await handle.stop()
        return sid, first, second, first_pid, second_pid

    sid, first, second, first_pid, second_pid = asyncio.run(run())
    assert first_pid != second_pid
    # No thread of either recorder process outlives the ingest (a forking analysis in the same process needs that).
    deadline = time.monotonic() + 5
    while (left := [t.name for t in threading.enumerate() if t.name.startswith(("QueueFeeder", "recorder-"))]):
        assert time.monotonic() < deadline, left
        time.sleep(0.1)
    events = events_of(root, sid)
    failed = [e for e in events if e["type"] == "media.recording_failed"]
    assert [e["call_id"] for e in failed] == [first], failed
    assert "recorder process exited" in failed[0]["data"]["error"]
    segments = [e for e in events if e["type"] == "media.recording_segment"]
    assert [e["call_id"] for e in segments] == [second], segments
    assert segments[0]["data"]["audio_frames"] > 40  # after the first 2 s that wait for video
    assert {e["call_id"] for e in events if e["type"] == "call.ended"} == {first, second}


async def _async(value: object) -> object:
    return value
