"""The trainer's debrief: its view model over a session folder written with the store's code (exact values), the
page under ``AppTest``, the remux of a real recording, and the replay in a real Chromium on a real recorded session
(``workbench run`` of the demo scenario with a robot dispatcher, see ``tests/debrief_helpers.py``): the video
plays, the cursor moves, and the right transcript line and action light up at a given time.

Screenshots go to ``/tmp/debrief-shots``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import CHROMIUM_BASE_ARGS, free_port
from tests.test_analysis import FakeClock, make_session
from workbench.console import debrief_viewmodel as dvm
from workbench.console.debrief_media import ReplayMediaError, browser_copy
from workbench.console.launch import DEBRIEF_PATH
from workbench.domain import events as ev

SHOTS = Path("/tmp/debrief-shots")


def write_session(root: Path) -> Path:
    """Session s1 of the analysis tests' scenario: call k1 (p-theft, photo block) answered at 2 s, two lines, a
    photo at 8 s, urgency nu then spoed, two of four required items, closed at 20 s, RSME 57; call k2 never answered."""
    clock = FakeClock()
    folder, log = make_session(root, "s1", "P05", ["b-photo", "b-video"], clock)
    log.append("runner", ev.BlockStarted("b-photo", "photo", 0))
    log.append("ingest", ev.CallCreated("p-theft", "b-photo", "photo", "06-11"), call_id="k1")
    clock.advance(2.0)
    log.append("console", ev.CallAnswered("st-1"), call_id="k1")
    clock.advance(1.0)
    log.append("runner", ev.CallerUtterance(0, "Someone is stealing my bike!", 0.0), call_id="k1")
    clock.advance(2.0)
    log.append("console", ev.IntakeIncidentType("theft"), call_id="k1")
    log.append("console", ev.IntakeUrgency("nu"), call_id="k1")
    clock.advance(3.0)
    log.append("ingest", ev.MediaPhotoReceived("p1", "media/k1/photo-p1.jpg", "media/k1/photo-p1-display.jpg",
                                               "00" * 32, 10, "jpeg", 64, 48, "bike.jpg"), call_id="k1")
    clock.advance(4.0)
    log.append("runner", ev.CallerUtterance(1, "He went towards the station.", 5.0), call_id="k1")
    log.append("console", ev.IntakeItemChecked("location", True), call_id="k1")
    log.append("console", ev.IntakeItemChecked("direction", True), call_id="k1")
    clock.advance(2.0)
    log.append("console", ev.IntakeUrgency("spoed"), call_id="k1")
    clock.advance(6.0)
    log.append("console", ev.IntakeUnits(["police"]), call_id="k1")
    log.append("console", ev.CallClosed("theft", "spoed", "Stationsplein", ["location", "direction"], False, "",
                                        "grey bike"), call_id="k1")
    clock.advance(1.0)
    log.append("console", ev.RatingRsme(57), call_id="k1")
    log.append("ingest", ev.CallCreated("p-medical", "b-photo", "photo", "06-22"), call_id="k2")
    return folder.path


def test_view_model_compares_the_intake_with_the_ground_truth_and_times_every_mark(tmp_path: Path) -> None:
    debrief = dvm.load_debrief(write_session(tmp_path / "rec"))
    assert (debrief.session_id, debrief.participant, debrief.scenario_id, debrief.problems) == ("s1", "P05", "lab1", [])
    k1, k2 = debrief.calls
    assert (k1.answered_s, k1.closed_s, k1.handling_time_s, k1.rsme) == (2.0, 20.0, 18.0, 57.0)
    assert [(m.t_s, m.text) for m in k1.transcript] == [(3.0, "Someone is stealing my bike!"),
                                                        (12.0, "He went towards the station.")]
    assert [(m.t_s, m.label) for m in k1.actions] == [
        (2.0, "answered"), (5.0, "incident type: theft"), (5.0, "urgency: nu"), (12.0, "checked location"),
        (12.0, "checked direction"), (14.0, "urgency: spoed"), (20.0, "units: police"), (20.0, "closed the call"),
    ]
    assert [(c.field, c.entered) for c in k1.comparisons][3:5] == [
        ("units dispatched", "police"), ("notes", "grey bike")]
    assert [c for c in k1.comparisons if c.field == "urgency"] == [dvm.Comparison("urgency", "spoed", "nu", False)]
    assert [c for c in k1.comparisons if c.field == "incident type"][0].correct is True
    assert k1.missed_items == ["suspect", "callback_number"]
    assert [(i.key, i.gathered) for i in k1.items] == [
        ("location", True), ("suspect", False), ("direction", True), ("callback_number", False)]
    assert "Number of people: the image agrees with what the caller says" in k1.media_facts
    # One reference throughout: call time since arrival. The scenario's photo time counts from the arrival too
    # (docs/scenario-format.md); its lines count from the answer, and say so.
    assert "photo 1 sent (designed: 2 s after arrival, at the answer)" in k1.media_facts
    assert not [f for f in k1.media_facts if "after the answer" in f]
    assert [m.designed for m in k1.transcript] == ["designed: 0 s after the answer", "designed: 5 s after the answer"]
    assert dvm.time_reference(k1) == "since the call arrived; answered at 2.0 s"
    assert [(p.caption, p.t_s) for p in k1.pictures] == [("photo p1 at 8.0 s", 8.0)]
    assert [m.kind for m in k1.marks].count("rating") == 1 and k1.end_s == 21.0
    assert k1.segments == [] and k1.video_offset_s is None
    # The unanswered call: nothing entered, every required item missed, no times.
    assert (k2.answered_s, k2.handling_time_s, k2.rsme, k2.transcript) == (None, None, None, [])
    assert k2.missed_items == ["location", "people_involved", "injuries"]

    svg = dvm.timeline_svg(k1, width=600, cursor_s=11.0)
    assert svg.count("<circle") == len([m for m in k1.marks if m.kind in dvm.LANES]) == 12
    assert 'id="cursor"' in svg and ">answer 2.0 s<" in svg and ">close 20.0 s<" in svg and ">since arrival<" in svg
    assert re.search(r"text-anchor=\"end\" y=\"\d+\" fill=\"#333\">close 20.0 s<", svg)  # kept inside the SVG
    assert "12.0 s: caller line 2 — He went towards the station." in svg
    page = dvm.replay_html(k1, None)
    assert re.findall(r'<li class="cue utterance" data-t="([\d.]+)"', page) == ["3.000", "12.000"]
    assert "No recording of this call" in page
    assert "(since the call arrived; answered at 2.0 s; the" in page
    assert '12.0 s</span> He went towards the station. <span class="designed">(designed: 5 s after the answer)' in page


def test_debrief_of_a_folder_without_log_or_scenario_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(dvm.DebriefError, match="no events.jsonl; pass a session folder"):
        dvm.load_debrief(tmp_path)
    session = write_session(tmp_path / "rec")
    (session / "scenario.toml").unlink()
    debrief = dvm.load_debrief(session)
    assert debrief.problems == ["no scenario.toml copy: no ground truth to compare against"]
    assert debrief.calls[0].comparisons[1] == dvm.Comparison("urgency", "spoed", "(no ground truth)", None)
    assert debrief.calls[0].items == []
    with pytest.raises(ReplayMediaError, match="no recording segments"):
        browser_copy([], tmp_path / "cache")


def test_debrief_page_shows_the_call_against_the_ground_truth(tmp_path: Path, monkeypatch) -> None:
    write_session(tmp_path / "rec")
    monkeypatch.setenv("WORKBENCH_RECORDINGS", str(tmp_path / "rec"))
    monkeypatch.setenv("WORKBENCH_DEBRIEF_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_DEBRIEF_SESSION", raising=False)
    at = AppTest.from_file(str(DEBRIEF_PATH), default_timeout=30).run()
    assert not at.exception
    assert at.selectbox(key="debrief_session").value == "s1"
    assert at.selectbox(key="debrief_call").options == ["p-theft · 06-11 (photo)", "p-medical · 06-22 (photo)"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Handling time": "18.0 s", "RSME": "57", "Answered after": "2.0 s", "Missed items": "2"}
    text = " ".join(str(m.value) for m in at.markdown)
    assert ":red[:material/close: **missed: Suspect description**]" in text
    assert ":green[:material/check: Direction of flight]" in text
    assert "| urgency | spoed | nu | :red[**wrong**] |" in text
    assert "`  3.0 s` Someone is stealing my bike! :gray[(designed: 0 s after the answer)]" in text
    assert [c.value for c in at.caption][1:2] == [
        "All times below are call time: seconds since the call arrived; answered at 2.0 s. The scenario's designed "
        "times are labelled with their own reference (caller lines after the answer, media after arrival)."]

    at.selectbox(key="debrief_call").set_value("k2").run()
    assert {m.label: m.value for m in at.metric}["Handling time"] == "—"


def test_debrief_page_names_a_missing_recordings_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_RECORDINGS", str(tmp_path / "nowhere"))
    at = AppTest.from_file(str(DEBRIEF_PATH), default_timeout=30).run()
    assert "no such folder; pass the recordings folder" in at.error[0].value


# --- a real recorded session ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    from tests.debrief_helpers import record_demo_session

    return record_demo_session(tmp_path_factory.mktemp("debrief-run"))


@pytest.mark.slow
@pytest.mark.webrtc
def test_a_real_recording_is_remuxed_for_the_browser_once(recorded: Path, tmp_path: Path) -> None:
    debrief = dvm.load_debrief(recorded)
    fire = next(c for c in debrief.calls if c.scenario_call_id == "house-fire")
    assert fire.missed_items == ["trapped", "fire_size"]
    assert fire.video_offset_s is not None and len(fire.segments) == 1
    mp4 = browser_copy(fire.segments, tmp_path / "cache")
    with av.open(str(mp4)) as container:
        kinds = sorted((s.type, s.codec_context.name) for s in container.streams)
        duration_s = container.duration / 1e6
    assert kinds == [("audio", "opus"), ("video", "h264")]
    with av.open(str(fire.segments[0])) as source:
        source_s = source.duration / 1e6 if source.duration else 0.0
    assert duration_s > 3 and abs(duration_s - source_s) < 0.5
    mtime = mp4.stat().st_mtime_ns
    assert browser_copy(fire.segments, tmp_path / "cache") == mp4 and mp4.stat().st_mtime_ns == mtime  # cached
    assert not list((tmp_path / "cache").glob(".remux-*"))
    assert not any(p.suffix == ".mp4" for p in recorded.rglob("*"))  # nothing written into the recordings


@pytest.mark.slow
@pytest.mark.webrtc
@pytest.mark.browser
def test_replay_plays_the_recording_with_cursor_transcript_and_actions_in_step(recorded: Path, tmp_path: Path,
                                                                                chromium_path: str) -> None:
    import os
    import subprocess
    import sys

    from playwright.sync_api import Route, sync_playwright

    from workbench.console.launch import wait_until_ready

    SHOTS.mkdir(exist_ok=True)
    fire = next(c for c in dvm.load_debrief(recorded).calls if c.scenario_call_id == "house-fire")
    offset = fire.video_offset_s
    assert offset is not None
    # The moment to check: 1.5 s after the caller's third line, inside the recording.
    line3 = fire.transcript[2]
    target = line3.t_s + 1.5
    assert offset < target < fire.end_s
    expected_action = [a for a in fire.actions if a.t_s <= target][-1]

    port = free_port()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "debrief", "--recordings", str(recorded.parent),
                             "--session", recorded.name, "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    foreign: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    try:
        wait_until_ready(f"http://127.0.0.1:{port}", 60)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path,
                                         args=[*CHROMIUM_BASE_ARGS, "--autoplay-policy=no-user-gesture-required"])
            context = browser.new_context(viewport={"width": 1400, "height": 1800})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_text("Debrief of session").wait_for()
            assert page.get_by_text("Largest recording").count() == 0  # no stray text on the page
            page.get_by_text("missed: People trapped or inside").wait_for()
            replay = page.frame_locator(".st-key-debrief_replay iframe")
            video = replay.locator("#video")
            video.wait_for()
            page.wait_for_function(
                "() => { const f = document.querySelector('.st-key-debrief_replay iframe');"
                " const v = f && f.contentDocument && f.contentDocument.getElementById('video');"
                " return v && v.readyState >= 2 && v.duration > 3; }", timeout=60_000)

            # Plays: the video's clock and the cursor move.
            x_before = float(replay.locator("#cursor").get_attribute("x1"))
            video.evaluate("v => { v.muted = true; return v.play(); }")
            page.wait_for_function(
                "() => document.querySelector('.st-key-debrief_replay iframe').contentDocument"
                ".getElementById('video').currentTime > 1.0", timeout=30_000)
            video.evaluate("v => v.pause()")
            shown_now = float(replay.locator("#now").inner_text())
            assert shown_now > offset + 0.9
            assert float(replay.locator("#cursor").get_attribute("x1")) > x_before + 5

            # Sought to a known moment: the caller's third line and the action taken last by then light up.
            video.evaluate(f"v => {{ v.currentTime = {target - offset:.3f}; }}")
            page.wait_for_function(
                f"() => {{ const d = document.querySelector('.st-key-debrief_replay iframe').contentDocument;"
                f" return Math.abs(parseFloat(d.getElementById('now').textContent) - {target:.3f}) < 0.2; }}")
            current_line = replay.locator("#transcript li.current")
            assert current_line.count() == 1
            assert line3.text in current_line.inner_text()
            assert float(current_line.get_attribute("data-t")) == pytest.approx(line3.t_s, abs=0.001)
            current_action = replay.locator("#actions li.current")
            assert expected_action.label in current_action.inner_text()
            later = [a for a in fire.actions if a.t_s > target]
            assert replay.locator("#actions li.done").count() == len(fire.actions) - len(later)
            page.screenshot(path=str(SHOTS / "debrief.png"), full_page=True)
            page.locator(".st-key-debrief_replay iframe").screenshot(path=str(SHOTS / "replay.png"))

            # Clicking the first line seeks the recording back (to its start: the line came before the video).
            replay.locator("#transcript li.cue").first.click()
            page.wait_for_function(
                "() => document.querySelector('.st-key-debrief_replay iframe').contentDocument"
                ".getElementById('video').currentTime < 0.5")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    assert foreign == []


def test_workbench_debrief_names_a_missing_folder_or_session(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_session(tmp_path / "rec")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "workbench.cli", "debrief", *args], capture_output=True,
                              text=True, timeout=60)

    missing = run("--recordings", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "nowhere: no such folder; pass --recordings DIR" in missing.stderr
    unknown = run("--recordings", str(tmp_path / "rec"), "--session", "s9")
    assert unknown.returncode == 2 and "no session 's9' in" in unknown.stderr and "sessions there: s1" in unknown.stderr
