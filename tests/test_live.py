"""CallMedia fed by generated tracks (no WebRTC): bounded live processing, viewer latency with a slow analyzer,
one JPEG encode per frame for several viewers, monotonic timestamps, snapshot quality figures."""

from __future__ import annotations

import asyncio
import fractions
import re
import time
from typing import Any

import numpy as np
import pytest
from av import VideoFrame

from tests.helpers_media import MovingPatternTrack
from workbench.domain import events as ev
from workbench.ingest.live import CallMedia, jpeg_comment, quality_figures
from workbench.ingest.settings import IngestSettings
from workbench.store.eventlog import SystemClock


class QueuedTrack:
    """A video track with aiortc's shape: frames wait in ``_queue`` (unbounded, like aiortc's) until ``recv()``.

    A producer task puts a frame every ``1 / fps`` s, so a slow consumer would build a backlog."""

    kind = "video"

    def __init__(self, source: Any, fps: float) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._source, self._fps = source, fps
        self._task = asyncio.ensure_future(self._produce())

    async def _produce(self) -> None:
        while True:
            self._queue.put_nowait(await self._source.recv())

    async def recv(self) -> Any:
        return await self._queue.get()

    def stop(self) -> None:
        self._task.cancel()


def make_media(**settings: Any) -> tuple[CallMedia, list[ev.Payload]]:
    emitted: list[ev.Payload] = []
    stored: dict[str, bytes] = {}

    def store(name: str, data: bytes) -> tuple[str, str]:
        stored[name] = data
        return f"media/c1/{name}", "0" * 64

    media = CallMedia(
        settings=IngestSettings(**settings), clock=SystemClock(), emit=emitted.append, store=store
    )
    return media, emitted


def test_live_view_stays_under_a_second_behind_with_an_analyzer_slower_than_the_camera() -> None:
    async def run() -> tuple[list[float], Any, CallMedia]:
        media, _ = make_media(viewer_fps=15, snapshot_interval_s=60)
        track = QueuedTrack(MovingPatternTrack(640, 480, 30), 30)
        analyzer = media.add_analyzer(lambda frame, index, t_ns: time.sleep(0.3), "slow")  # ~3 fps vs a 30 fps camera
        media.consume(track, time.monotonic_ns(), lambda kind: "VP8")
        lags: list[float] = []

        async def send(data: bytes) -> None:
            t_wall_ms = float(re.search(r"t_wall_ms=([0-9.]+)", jpeg_comment(data)).group(1))
            lags.append(time.time() * 1000 - t_wall_ms)
            await asyncio.sleep(0.15)  # a slow viewer too: it skips frames, never builds a backlog

        viewer = asyncio.ensure_future(media.serve_viewer(send))
        await asyncio.sleep(4.0)
        track.stop()
        await media.close()
        viewer.cancel()
        await asyncio.gather(viewer, return_exceptions=True)
        await media.wait_streams(timeout_s=0.5)
        return lags, analyzer, media

    lags, analyzer, media = asyncio.run(run())
    assert len(lags) > 10
    assert max(lags) < 1000, f"the live view fell {max(lags):.0f} ms behind"
    assert float(np.median(lags)) < 300
    assert analyzer.skipped > 50 and 5 <= analyzer.analyzed <= 16, (analyzer.skipped, analyzer.analyzed)
    assert media.frames_received > 100


def test_three_viewers_share_one_encode_per_frame() -> None:
    async def run() -> tuple[CallMedia, list[int]]:
        media, _ = make_media(viewer_fps=30, snapshot_interval_s=60)
        track = MovingPatternTrack(320, 240, 10)
        media.consume(track, time.monotonic_ns(), lambda kind: "VP8")
        counts = [0, 0, 0]

        def sender(i: int) -> Any:
            async def send(data: bytes) -> None:
                counts[i] += 1

            return send

        viewers = [asyncio.ensure_future(media.serve_viewer(sender(i))) for i in range(3)]
        await asyncio.sleep(3.0)
        await media.close()
        await asyncio.gather(*viewers, return_exceptions=True)
        await media.wait_streams(timeout_s=0.5)
        return media, counts

    media, counts = asyncio.run(run())
    assert media.jpegs_encoded <= media.frame_index  # never more than one encode per frame, whatever the viewers
    assert all(c >= media.jpegs_encoded - 2 for c in counts), (counts, media.jpegs_encoded)
    assert media.jpegs_encoded >= 20


def test_timestamps_handed_on_stay_monotonic_when_rtp_jumps_below_10_fps() -> None:
    class Jumping(MovingPatternTrack):
        async def recv(self) -> VideoFrame:
            frame = await super().recv()
            if self.frames_sent > 5:
                frame.pts += 2**32  # what aiortc has shown below 10 fps
            return frame

    async def run() -> list[int]:
        media, _ = make_media(snapshot_interval_s=60)
        seen: list[int] = []
        media.add_analyzer(lambda frame, index, t_ns: seen.append(t_ns), "times")
        media.consume(Jumping(160, 120, 5), time.monotonic_ns(), lambda kind: "VP8")
        await asyncio.sleep(2.5)
        await media.close()
        await media.wait_streams(timeout_s=0.3)
        return seen

    seen = asyncio.run(run())
    assert len(seen) >= 10
    gaps = np.diff(seen) / 1e6
    assert (gaps > 0).all() and gaps.max() < 400, gaps  # 200 ms apart at 5 fps: no jump, no step back


def test_quality_figures() -> None:
    flat = np.full((120, 160), 100, np.uint8)
    edges = flat.copy()
    edges[:, ::8] = 250
    assert quality_figures(flat, None) == (0.0, 100.0, 0.0)
    sharp, bright, motion = quality_figures(edges, flat)
    assert sharp > 1000 and bright > 100 and motion == pytest.approx(150 / 8, rel=0.01)


def test_snapshot_on_request_has_quality_figures() -> None:
    async def run() -> list[ev.Payload]:
        media, emitted = make_media(snapshot_interval_s=60)
        assert await media.snapshot_now() is None  # no frame yet
        media.consume(MovingPatternTrack(320, 240, 15), time.monotonic_ns(), lambda kind: "VP8")
        while media.frame_index < 5:
            await asyncio.sleep(0.05)
        snap = await media.snapshot_now()
        assert snap is not None
        await media.close()
        await media.wait_streams(timeout_s=0.3)
        return emitted

    snaps = [p for p in asyncio.run(run()) if isinstance(p, ev.MediaSnapshot)]
    assert [s.reason for s in snaps] == ["first_frame", "request"]
    assert snaps[0].motion == 0.0 and snaps[1].motion > 0 and snaps[1].sharpness > 50


def test_jpeg_comment_round_trip() -> None:
    frame = VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
    frame.time_base = fractions.Fraction(1, 90000)
    from workbench.ingest.live import encode_jpeg

    data = encode_jpeg(frame, comment="wb t_wall_ms=1.0 frame=3")
    assert data[:2] == b"\xff\xd8" and jpeg_comment(data) == "wb t_wall_ms=1.0 frame=3"
    import cv2

    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)
    assert jpeg_comment(encode_jpeg(frame)) == ""


HAMMER = """
import sys, threading, numpy as np, av
from workbench.ingest.live import frame_bgr, frame_grey, frame_yuv420p
img = np.random.default_rng(1).integers(0, 255, (480, 640, 3), np.uint8)
frames = [av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p") for _ in range(2)]
def work(fn):
    for i in range(400):
        fn(frames[i % 2])
threads = [threading.Thread(target=work, args=(fn,)) for fn in (frame_grey, frame_bgr, frame_yuv420p, frame_bgr)]
[t.start() for t in threads]
[t.join() for t in threads]
print("ok")
"""


def test_converting_one_frame_in_several_threads_at_once_is_safe() -> None:
    """The viewer's JPEG, a snapshot's grey image and the relay convert the same frame in different threads;
    PyAV's per-frame ``to_ndarray(format=...)`` crashed the ingest with SIGSEGV there (bench_ingest). Run in a
    subprocess so a regression fails this test instead of killing the test run."""
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", HAMMER], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.returncode, out.stderr[-2000:])
