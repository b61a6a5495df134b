"""`workbench demo --duration 20`: the whole workbench unattended, on generated media only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port


@pytest.mark.slow
@pytest.mark.webrtc
def test_demo_runs_unattended_and_records_a_verified_session(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "demo", "--duration", "20",
         "--port", str(free_port()), "--console-port", str(free_port()), "--recordings", str(recordings)],
        capture_output=True, text=True, timeout=180, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Console: http://127.0.0.1:" in proc.stdout
    assert "verify: OK" in proc.stdout

    [session_dir] = [p for p in recordings.iterdir() if (p / "session.json").exists()]
    header = json.loads((session_dir / "session.json").read_text())
    assert header["scenario_id"] == "demo" and header["status"] == "exercise"
    events = [json.loads(line) for line in (session_dir / "events.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    assert types[0] == "session.started" and types[-1] == "session.ended"
    assert types.count("call.created") == 2  # house fire at 0 s, collision at 6 s

    video_ends = [e["data"] for e in events if e["type"] == "media.stream_ended" and e["data"]["kind"] == "video"]
    # The first caller streams ~19 s at 15 fps; allow for start-up and the frame aiortc never delivers.
    assert max(v["frames_received"] for v in video_ends) > 150
    first_frames = [e["data"] for e in events if e["type"] == "media.first_frame" and e["data"]["kind"] == "video"]
    assert {(f["width"], f["height"]) for f in first_frames} == {(640, 480)}
    audio_ends = [e["data"] for e in events if e["type"] == "media.stream_ended" and e["data"]["kind"] == "audio"]
    assert audio_ends and max(a["frames_received"] for a in audio_ends) > 100  # 20 ms Opus frames

    photos = [e for e in events if e["type"] == "media.photo_received"]
    assert len(photos) >= 1
    manifest = json.loads((session_dir / "manifest.json").read_text())["files"]
    for photo in photos:
        assert photo["data"]["file_original"] in manifest
        assert manifest[photo["data"]["file_original"]]["sha256"] == photo["data"]["sha256"]

    verify = subprocess.run([sys.executable, "-m", "workbench.cli", "verify", str(session_dir)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout
