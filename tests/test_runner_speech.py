"""Spoken caller lines: espeak-ng synthesis cached by content, the speech track (silent until a line is said), and a
scenario call with ``media.voice`` whose caller speaks each line when the runner posts it."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from tests.conftest import free_port
from tests.runner_helpers import Robot, assert_sound_log, read_log, scenario_text
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.runner.caller import SpeechTrack
from workbench.runner.player import IngestApi, ScenarioPlayer
from workbench.runner.speech import read_line, synthesise_line
from workbench.store.scenarios import ScenarioError, parse_scenario

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_speech_track_is_silent_until_a_line_is_said() -> None:
    line_a = np.full(960 * 2 + 100, 1000, np.int16)
    line_b = np.full(500, -2000, np.int16)

    async def main() -> list[np.ndarray]:
        track = SpeechTrack([line_a, line_b])
        frames = [await track.recv()]
        track.say(0)
        track.say(1)
        frames += [await track.recv() for _ in range(4)]
        with pytest.raises(IndexError):
            track.say(2)
        assert track.lines_said == [0, 1]
        return [f.to_ndarray().reshape(-1) for f in frames]

    frames = asyncio.run(main())
    assert all(len(f) == 960 for f in frames)
    assert not frames[0].any()
    assert (frames[1] == 1000).all() and (frames[2] == 1000).all()
    assert (frames[3][:100] == 1000).all() and (frames[3][100:600] == -2000).all() and not frames[3][600:].any()
    assert not frames[4].any()


@needs_espeak
def test_synthesised_lines_are_cached_by_content(tmp_path: Path) -> None:
    path = synthesise_line("There is smoke in the stairwell.", "en", tmp_path)
    assert path is not None and path.parent == tmp_path / "speech"
    samples = read_line(path)
    assert 0.8 < len(samples) / 48_000 < 5 and np.abs(samples).max() > 1000
    mtime = path.stat().st_mtime_ns
    assert synthesise_line("There is smoke in the stairwell.", "en", tmp_path) == path
    assert path.stat().st_mtime_ns == mtime
    assert synthesise_line("Another line.", "en", tmp_path) != path


def test_voice_and_recorded_audio_are_exclusive() -> None:
    text = scenario_text([{"id": "c", "toml": 'media.voice = "en"\nmedia.audio = "builtin:demo_fire_voice"'}],
                         [{"id": "b", "calls": ["c"]}])
    with pytest.raises(ScenarioError, match="not both"):
        parse_scenario(text.encode(), check_media=False)


@needs_espeak
@pytest.mark.slow
@pytest.mark.webrtc
def test_caller_speaks_each_line_when_the_runner_posts_it(tmp_path: Path) -> None:
    text = scenario_text(
        [{"id": "voiced", "lines": [(0, "Hello, there is a fire."), (1.5, "It is at the corner house.")],
          "toml": 'media.voice = "en"'}],
        [{"id": "b", "modality": "audio", "calls": ["voiced"]}])
    scenario = parse_scenario(text.encode(), check_media=False)
    rec = tmp_path / "rec"

    async def main() -> tuple:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=rec))
        try:
            async with aiohttp.ClientSession() as http:
                seen: dict[str, float] = {}

                def close_when(call) -> bool:  # noqa: ANN001 - after both lines plus time to speak the second
                    if len(call.transcript) < 2:
                        return False
                    seen.setdefault(call.call_id, time.monotonic())
                    return time.monotonic() - seen[call.call_id] > 3.0

                robot = Robot(handle.url, "voice", close_when=close_when)
                robot_task = asyncio.create_task(robot.run())
                player = ScenarioPlayer(IngestApi(handle.url, http), scenario, text.encode(), participant="P01",
                                        media_cache=tmp_path / "cache", session_id="voice", poll_s=0.1,
                                        caller_logs=tmp_path / "callers")
                report = await player.run()
                await robot_task
                return report, tmp_path / "callers"  # kept: the caller's own account of what it said
        finally:
            await handle.stop()

    report, log_dir = asyncio.run(asyncio.wait_for(main(), 90))
    assert report.completed
    [call_id] = report.call_ids.values()
    caller_log = (log_dir / f"{call_id}.log").read_text()
    assert "lines said [0, 1]" in caller_log, caller_log[-2000:]
    events = read_log(rec / "voice")
    assert_sound_log(events)
    audio = [e["data"] for e in events if e["type"] == "media.stream_ended" and e["data"]["kind"] == "audio"]
    assert audio and audio[0]["frames_received"] > 100  # the live voice track reached the ingest
    assert not [e for e in events if e["type"] == "media.first_frame" and e["data"]["kind"] == "video"]
