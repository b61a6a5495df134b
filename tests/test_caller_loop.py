"""A simulated caller's looped video keeps streaming at its frame rate past the end of the file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.test_console_browser import make_moving_video
from workbench.console.ingest_client import IngestClient
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.runner.caller import stream_call


@pytest.mark.webrtc
@pytest.mark.slow
def test_a_two_second_clip_streams_steadily_for_seven_seconds(tmp_path: Path) -> None:
    video = make_moving_video(tmp_path / "clip.mp4", seconds=2, fps=15)

    async def scenario() -> list[tuple[float, int]]:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=tmp_path / "rec", ice_mode="loopback"))
        client = IngestClient(handle.url)
        try:
            session_id = await asyncio.to_thread(client.create_session, "P01")
            call = await asyncio.to_thread(client.create_call, session_id)
            caller = asyncio.ensure_future(stream_call(call["caller_url"], video=video, duration_s=8))
            samples = []
            t0 = time.monotonic()
            for _ in range(7):
                await asyncio.sleep(1)
                status = await asyncio.to_thread(client.call_status, call["call_id"])
                samples.append((time.monotonic() - t0, status["frames_received"]))
            await caller
            return samples
        finally:
            await handle.stop()

    samples = asyncio.run(scenario())
    # Three and a half passes of the clip: frames keep arriving at about 15 fps in every second, with no burst at
    # the loop point (aiortc's own loop bursts ~90 frames and then freezes the picture for good).
    per_second = [b[1] - a[1] for a, b in zip(samples, samples[1:])]
    assert all(8 <= n <= 22 for n in per_second), per_second
    assert samples[-1][1] >= 80
