"""The whole path on real media: scenario -> `workbench run` (ingest + simulated callers) -> the dispatcher console's
own page logic (AppTest) -> `workbench analyze` -> trials.csv, compared with literal values.

The real fire clip streams as live video and a real still is attached in the video block; the same kind of call in
an audio-only block must arrive without video or photos (the runner withholds them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import free_port
from workbench.console.launch import APP_PATH

SCENARIO = """
id = "e2e-real-media"
title = "End-to-end on real media"

[[blocks]]
id = "video-block"
modality = "video"
calls = ["field-fire"]

[[blocks]]
id = "audio-block"
modality = "audio"
calls = ["shed-smoke"]

[[calls]]
id = "field-fire"
arrival_s = 0
caller_label = "06-1111 2222"
media.video = "{video}"
media.audio = "builtin:demo_fire_voice"
media.photos = [{{ file = "{photo}", at_s = 1 }}]
utterances = [
  {{ at_s = 0, text = "There is a fire in the field behind my house." }},
  {{ at_s = 1, text = "It is only a small one, a bit of smoke." }},
]
[calls.truth]
incident_type = "fire"
urgency = "spoed"
location = "Veldweg 3, Delft"
required_items = ["location", "fire_size", "trapped"]
congruence = {{ fire_smoke_size = false }}

[[calls]]
id = "shed-smoke"
arrival_s = 0
caller_label = "06-3333 4444"
media.video = "{video}"
media.audio = "builtin:demo_collision_voice"
media.photos = [{{ file = "{photo}", at_s = 0 }}]
utterances = [{{ at_s = 0, text = "Smoke is coming out of my neighbour's shed." }}]
[calls.truth]
incident_type = "fire"
urgency = "nu"
location = "Tuinpad 8, Delft"
required_items = ["location", "caller_safe"]
congruence = {{ fire_smoke_size = true }}
"""


TLX_VIDEO = {"mental_demand": 70, "physical_demand": 10, "temporal_demand": 55, "performance": 30, "effort": 65,
             "frustration": 40}
TLX_AUDIO = {"mental_demand": 40, "physical_demand": 5, "temporal_demand": 35, "performance": 20, "effort": 45,
             "frustration": 15}


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _wait(predicate, timeout_s: float, what: str, step_s: float = 0.3):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _rerun_until(at: AppTest, predicate, timeout_s: float, what: str) -> None:
    def check() -> bool:
        at.run()
        assert not at.exception, at.exception
        return predicate()

    _wait(check, timeout_s, what, step_s=0.5)


def _has_button(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def _rate_tlx(at: AppTest, block: str, ratings: dict[str, int]) -> None:
    """The NASA-TLX the console asks for after each block, through its sliders."""
    _rerun_until(at, lambda: _has_button(at, f"submit_tlx-{block}"), 30, f"the NASA-TLX of block {block}")
    for name, value in ratings.items():
        at.slider(key=f"tlx_{name}-{block}").set_value(value).run()
    at.button(key=f"submit_tlx-{block}").click().run()
    assert not at.exception, at.exception


def _work_call(at: AppTest, cid: str, *, incident: str, urgency: str, location: str, items: list[str],
               aspect: str | None, rsme: int, expect_line: str) -> None:
    """What the dispatcher does, through the console page's own widgets (keys carry the call id ``cid``)."""
    _rerun_until(at, lambda: _has_button(at, "answer_next"), 30, "a call in the queue")
    at.button(key="answer_next").click().run()
    _rerun_until(at, lambda: any(expect_line in str(m.value) for m in at.markdown), 20, f"transcript {expect_line!r}")
    at.selectbox(key=f"incident_type-{cid}").set_value(incident).run()
    at.radio(key=f"urgency-{cid}").set_value(urgency).run()
    at.text_input(key=f"location-{cid}").input(location).run()
    for item in items:
        at.pills(key=f"items-{cid}").select(item).run()
    if aspect:
        at.checkbox(key=f"disagree_flag-{cid}").check().run()
        at.selectbox(key=f"disagree_aspect-{cid}").set_value(aspect).run()
    at.button(key=f"close_call-{cid}").click().run()
    assert not at.exception, at.exception
    at.slider(key=f"rsme-{cid}").set_value(rsme).run()
    at.button(key=f"submit_rsme-{cid}").click().run()
    assert not at.exception, at.exception


@pytest.mark.slow
@pytest.mark.webrtc
def test_scenario_to_trials_csv_on_real_media(real_data: Path, tmp_path: Path, monkeypatch) -> None:
    video = real_data / "video" / "firedetection_test1_outdoor_fire.mp4"
    photo = real_data / "photos" / "still_test1_outdoor_fire_smoke_f090.jpg"
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO.format(video=video, photo=photo))
    recordings = tmp_path / "recordings"
    port = free_port()
    ingest = f"http://127.0.0.1:{port}"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    run = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", str(scenario), "--no-console", "--port", str(port),
         "--recordings", str(recordings), "--participant", "P07", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        sessions = _wait(lambda: _try_sessions(ingest), 60, "the ingest and the session")
        session_id = sessions[0]["session_id"]
        monkeypatch.setenv("WORKBENCH_INGEST_URL", ingest)
        monkeypatch.setenv("WORKBENCH_RECORDINGS", str(recordings))
        monkeypatch.setenv("WORKBENCH_SESSION", session_id)
        at = AppTest.from_file(str(APP_PATH), default_timeout=30)

        # Video block: the live picture and the photo reach the ingest before the dispatcher closes.
        _wait(lambda: _call_status(ingest, session_id, "field-fire", lambda s: s["frames_received"] >= 30 and s["photos"] >= 1),
              30, "live frames and a photo of the video call")
        _work_call(at, _call_id(ingest, session_id, "field-fire"), incident="fire", urgency="spoed", location="Veldweg 3, Delft", items=["location", "fire_size"],
                   aspect="fire_smoke_size", rsme=57, expect_line="It is only a small one, a bit of smoke.")
        _rate_tlx(at, "video-block", TLX_VIDEO)
        # Audio block: the same media in the scenario, withheld by the runner.
        _wait(lambda: _call_id(ingest, session_id, "shed-smoke"), 30, "the audio-block call")
        _work_call(at, _call_id(ingest, session_id, "shed-smoke"), incident="fire", urgency="later", location="Tuinpad 8", items=["location", "caller_safe"],
                   aspect=None, rsme=23, expect_line="Smoke is coming out of my neighbour's shed.")
        _rate_tlx(at, "audio-block", TLX_AUDIO)
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, out
    assert "completed" in out and "verify: OK" in out

    session_dir = recordings / session_id
    events = [json.loads(line) for line in (session_dir / "events.jsonl").read_text().splitlines()]
    by_call = {e["data"]["scenario_call_id"]: e["call_id"] for e in events if e["type"] == "call.created"}
    audio_call_types = {e["type"] for e in events if e["call_id"] == by_call["shed-smoke"]}
    assert "media.photo_received" not in audio_call_types and "media.snapshot" not in audio_call_types
    first_video = [e["data"] for e in events if e["type"] == "media.first_frame" and e["data"]["kind"] == "video"]
    assert [(f["width"], f["height"], f["codec"]) for f in first_video] == [(352, 288, "VP8")]

    results = tmp_path / "results"
    analyze = subprocess.run([sys.executable, "-m", "workbench.cli", "analyze", str(recordings), "--out", str(results)],
                             capture_output=True, text=True, timeout=120)
    assert analyze.returncode == 0, analyze.stdout + analyze.stderr
    trials = pd.read_csv(results / "trials.csv", keep_default_na=False)
    got = trials[["participant", "block_id", "block_position", "modality", "scenario_call_id", "congruent",
                  "urgency_given", "urgency_true", "urgency_correct", "incident_type_correct", "items_gathered",
                  "items_required", "completeness", "disagreement_flagged", "disagreement_designed", "rsme",
                  "photos_received"]].to_dict("records")
    assert got == [
        {"participant": "P07", "block_id": "video-block", "block_position": 0, "modality": "video",
         "scenario_call_id": "field-fire", "congruent": False, "urgency_given": "spoed", "urgency_true": "spoed",
         "urgency_correct": True, "incident_type_correct": True, "items_gathered": 2, "items_required": 3,
         "completeness": pytest.approx(2 / 3, abs=1e-3), "disagreement_flagged": True, "disagreement_designed": True,
         "rsme": 57.0, "photos_received": 1},
        {"participant": "P07", "block_id": "audio-block", "block_position": 1, "modality": "audio",
         "scenario_call_id": "shed-smoke", "congruent": True, "urgency_given": "later", "urgency_true": "nu",
         "urgency_correct": False, "incident_type_correct": True, "items_gathered": 2, "items_required": 2,
         "completeness": 1.0, "disagreement_flagged": False, "disagreement_designed": False, "rsme": 23.0,
         "photos_received": 0},
    ]
    # Handling time is real time from answer to close: positive and bounded by how long the test worked the call.
    assert all(0.5 < t < 60 for t in trials["handling_time_s"])
    assert (results / "codebook.md").read_text().count("handling_time_s") >= 1

    tlx = [e["data"] for e in events if e["type"] == "rating.nasa_tlx"]
    assert [{k: v for k, v in t.items() if k != "block_id"} for t in tlx] == [TLX_VIDEO, TLX_AUDIO]
    assert [t["block_id"] for t in tlx] == ["video-block", "audio-block"]


def _try_sessions(ingest: str) -> list[dict] | None:
    try:
        return _get_json(f"{ingest}/api/sessions")["sessions"] or None
    except OSError:
        return None


def _call_id(ingest: str, session_id: str, scenario_call_id: str) -> str | None:
    events = _get_json(f"{ingest}/api/sessions/{session_id}/events")["events"]
    ids = [e["call_id"] for e in events if e["type"] == "call.created" and e["data"]["scenario_call_id"] == scenario_call_id]
    return ids[0] if ids else None


def _call_status(ingest: str, session_id: str, scenario_call_id: str, predicate) -> bool:
    call_id = _call_id(ingest, session_id, scenario_call_id)
    return call_id is not None and predicate(_get_json(f"{ingest}/api/calls/{call_id}"))
