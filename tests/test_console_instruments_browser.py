"""The console's instruments and the new dispatcher actions end to end in a real headless Chromium: the real
ingest with a simulated aiortc caller (live video and a photo), the console with the DRT on, and a dispatcher who
works through the page only: DRT responses (a hit by the Control key, a miss, a response while the live view has
the focus), answer, view a photo (open, enlarge, close), fill the form with units and a disagreement with its
confidence, the console killed with SIGKILL and restarted mid-call (the page rebuilds from the log), close, RSME,
then the runner ends the block and the dispatcher fills in the NASA-TLX. The test checks the events the ingest wrote.

Screenshots go to ``/tmp/console-shots`` (drt-stimulus, photo-enlarged, instruments-active, after-restart,
nasa-tlx, after-tlx).
"""

from __future__ import annotations

import re
import statistics

import pytest

from tests.conftest import REPO
from tests.console_harness import SHOTS, console_rig, make_moving_video, make_photo  # noqa: F401 (fixture)
from workbench.domain import events as ev
from workbench.domain.instruments import TLX_SUBSCALES, score_drt_stimuli
from workbench.store.eventlog import read_events

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.webrtc]

BLOCK = "live-video"


def test_instruments_hold_photos_and_a_console_restart_in_the_browser(tmp_path, console_rig):
    from playwright.sync_api import expect

    rig = console_rig
    recordings = rig.recordings
    video = make_moving_video(tmp_path / "moving.mp4", seconds=150.0)
    photo = make_photo(tmp_path / "photo.jpg")
    client = rig.start_ingest()
    scenario = (REPO / "experiments/demo/scenario.toml").read_text(encoding="utf-8")
    sid = client.create_session("P08", scenario_toml=scenario, seed=5)
    client.post_event(sid, None, ev.BlockStarted(BLOCK, "video", 0), source="runner")
    call = client.create_call(sid, scenario_call_id="house-fire", block_id=BLOCK, modality="video",
                              caller_label="06-1234 5678")
    cid = call["call_id"]
    rig.start_caller(call["caller_url"], video, photos=[(photo, 1.0)], call_id=cid)
    rig.start_console(sid, station="station-4", drt=True)
    page = rig.open_page(1400, 1100, goto=False)
    wait = rig.wait

    def logged(event_type: str, **data):
        return rig.logged(sid, event_type, **data)

    page.goto(rig.console_url)
    page.locator(".st-key-answer_next button").wait_for()

    bar = page.locator("#wb-drt-stimulus")

    def next_stimulus(timeout_s: float = 8.0) -> int:
        """Wait until a new stimulus is on screen; return its index."""
        seen = page.evaluate("window.__wbDrt ? window.__wbDrt.index : -1")
        wait("a DRT stimulus", lambda: page.evaluate(
            f"!!window.__wbDrt && window.__wbDrt.shown && window.__wbDrt.index > {seen}"), timeout_s, 0.01)
        return page.evaluate("window.__wbDrt.index")

    # --- DRT: a hit by the Control key (typing keys are not responses), then a miss ---------------------
    i_hit = next_stimulus()
    expect(bar).to_be_visible()
    page.screenshot(path=str(SHOTS / "drt-stimulus.png"), full_page=True)
    page.wait_for_timeout(300)
    page.keyboard.press("Control")
    expect(bar).to_be_hidden()
    hit = wait("drt.response", logged("drt.response", stimulus_index=i_hit), 10)[0]
    assert 250 <= hit.data.rt_ms <= 1000 and hit.data.input == "key"
    i_miss = next_stimulus()
    page.wait_for_timeout(1200)
    expect(bar).to_be_hidden()  # gone after 1 s without a response

    # --- answer; the photo viewer -----------------------------------------------------------------------
    page.locator(".st-key-answer_next button").click()
    page.locator("iframe[src*='/viewer']").wait_for()
    open_p1 = page.locator(f".st-key-photo_open_p1-{cid} button")
    open_p1.wait_for(timeout=15_000)
    open_p1.click()
    wait("photo.opened", logged("photo.opened", photo_id="p1"), 10)
    page.locator(f".st-key-photo_enlarge-{cid} button").click()
    wait("photo.enlarged", logged("photo.enlarged", photo_id="p1", enlarged=True), 10)
    expect(page.locator(f".st-key-photo_enlarge-{cid} button")).to_contain_text("Shrink")
    page.screenshot(path=str(SHOTS / "photo-enlarged.png"), full_page=True)
    page.locator(f".st-key-photo_close-{cid} button").click()
    wait("photo.closed", logged("photo.closed", photo_id="p1"), 10)

    # --- the form -------------------------------------------------------------------------------------
    page.locator(f".st-key-urgency-{cid}").get_by_text("spoed (urgent, prio 1)").click()
    wait("intake.urgency", logged("intake.urgency", urgency="spoed"), 10)
    page.locator(f".st-key-units-{cid}").click()
    page.get_by_role("option", name="Fire engine").click()
    wait("intake.units", logged("intake.units", units=["fire_engine"]), 10)
    page.keyboard.press("Escape")
    page.locator(f".st-key-disagree_flag-{cid} label").click()
    wait("disagreement flag", logged("intake.disagreement_flag", flagged=True), 10)
    page.locator(f".st-key-disagree_confidence-{cid} button").filter(has_text=re.compile(r"^4$")).click()
    wait("confidence", logged("intake.disagreement_confidence", confidence=4), 10)
    notes = page.locator(f".st-key-notes-{cid} textarea")
    notes.fill("more smoke than described")
    page.locator(f".st-key-location-{cid} input").click()  # leaving the notes commits them
    wait("intake.notes", logged("intake.notes", notes="more smoke than described"), 10)

    # --- the live view takes the focus: the panel focus is logged and the DRT key still works ------------
    page.locator("iframe[src*='/viewer']").click()
    focus = wait("console.focus live_view", logged("console.focus", panel="live_view"), 10)[0]
    print(f"console.focus live_view logged {focus.t_mono_ns / 1e6 - focus.data.browser_ms:.0f} ms after it")
    i_view = next_stimulus()
    wait("the console page to take the focus back from the viewer", lambda: page.evaluate(
        "document.activeElement.tagName !== 'IFRAME'"), 5)
    page.wait_for_timeout(200)
    page.keyboard.press("Control")
    state = page.evaluate("[window.__wbDrt.index, window.__wbDrt.responses.length, window.__wbDrtOwner]")
    print("DRT after the viewer had focus: index, responses, run:", state, "expected index", i_view)
    wait("drt.response after the viewer had focus", logged("drt.response", stimulus_index=i_view), 10)
    page.screenshot(path=str(SHOTS / "instruments-active.png"), full_page=True)

    # --- kill -9 the console mid-call, restart it, reload: nothing is lost ------------------------------
    rig.kill_console()
    rig.restart_console()
    page.reload()
    expect(page.locator(f".st-key-urgency-{cid} input[type=radio]").first).to_be_checked(timeout=20_000)
    expect(page.locator(f".st-key-units-{cid}")).to_contain_text("Fire engine")
    expect(page.locator(f".st-key-notes-{cid} textarea")).to_have_value("more smoke than described")
    expect(page.locator(f".st-key-disagree_flag-{cid} input")).to_be_checked()
    page.screenshot(path=str(SHOTS / "after-restart.png"), full_page=True)

    # --- close, RSME ------------------------------------------------------------------------------------
    page.locator(f".st-key-close_call-{cid} button").click()
    wait("call.closed", logged("call.closed"), 10)
    box = page.locator(f".st-key-rsme_number-{cid} input")
    box.fill("71")
    box.press("Enter")
    submit = page.locator(f".st-key-submit_rsme-{cid} button")
    wait("Submit enabled", lambda: submit.is_enabled(), 10)
    submit.click()
    wait("rating.rsme", logged("rating.rsme"), 10)

    # --- the runner ends the block: NASA-TLX ------------------------------------------------------------
    client.post_event(sid, None, ev.BlockEnded(BLOCK), source="runner")
    tlx_submit = page.locator(f".st-key-submit_tlx-{BLOCK} button")
    tlx_submit.wait_for(timeout=10_000)
    expect(tlx_submit).to_be_disabled()
    page.get_by_text("Good ← → Poor").wait_for()
    steps = {"mental_demand": 4, "physical_demand": -6, "temporal_demand": 2, "performance": -4,
             "effort": 3, "frustration": -5}  # from 50, in steps of 5
    for name, n in steps.items():
        thumb = page.locator(f".st-key-tlx_{name}-{BLOCK} input[type=range]")
        thumb.focus()
        for _ in range(abs(n)):
            thumb.press("ArrowRight" if n > 0 else "ArrowLeft")
        expect(thumb).to_have_value(str(50 + 5 * n))
        page.wait_for_timeout(400)
    expect(tlx_submit).to_be_enabled(timeout=10_000)
    page.screenshot(path=str(SHOTS / "nasa-tlx.png"), full_page=True)
    tlx_submit.click()
    tlx = wait("rating.nasa_tlx", logged("rating.nasa_tlx", block_id=BLOCK), 10)
    assert {n: getattr(tlx[0].data, n) for n in TLX_SUBSCALES} == {n: 50 + 5 * k for n, k in steps.items()}
    page.locator(".st-key-answer_next").or_(page.get_by_text("No calls in the queue.")).first.wait_for()
    page.screenshot(path=str(SHOTS / "after-tlx.png"), full_page=True)

    rig.close()
    events, problems = read_events(recordings / sid / "events.jsonl")
    assert problems == []
    stimuli = [e for e in events if e.type == "drt.stimulus"]
    responses = [e for e in events if e.type == "drt.response"]
    assert len({e.data.run_id for e in stimuli}) == 2  # the reload started a new run
    first_run = stimuli[0].data.run_id
    run_stimuli = [e.data for e in stimuli if e.data.run_id == first_run]
    outcomes = score_drt_stimuli([s.onset_ms for s in run_stimuli],
                         [r.data.response_ms for r in responses if r.data.run_id == first_run])
    assert outcomes[i_hit].outcome == "hit" and outcomes[i_miss].outcome == "miss"
    assert outcomes[i_view].outcome == "hit"
    # The browser's estimate of the ingest clock agrees with when the ingest logged the stimulus: never logged
    # before its onset (beyond the clock estimate's error), and not seconds after it unless a post was retried
    # (every 2 s) on this loaded machine. The lag itself is a benchmark figure, not asserted here.
    lags = [e.t_mono_ns / 1e6 - e.data.onset_ms for e in stimuli]
    print(f"DRT onset to log, ms: median {statistics.median(lags):.0f}, max {max(lags):.0f}")
    assert all(-50 < lag < 10_000 for lag in lags), lags
    jitter = [s.onset_ms - s.scheduled_onset_ms for s in run_stimuli]
    print(f"DRT onset jitter (onset - scheduled), ms: median {statistics.median(jitter):.1f}, max {max(jitter):.1f}")
    intervals = [b.scheduled_onset_ms - a.scheduled_onset_ms for a, b in zip(run_stimuli, run_stimuli[1:])]
    assert all(2990 <= d <= 5010 for d in intervals), intervals
    mine = [e.type for e in events if e.call_id == cid and e.source == "console" and e.type != "console.focus"]
    assert mine.count("call.answered") == 1 and mine.count("call.closed") == 1 and mine.count("rating.rsme") == 1
    closed = next(e.data for e in events if e.type == "call.closed")
    assert closed.urgency == "spoed" and closed.disagreement_flagged and closed.notes == "more smoke than described"
    assert [e.data.units for e in events if e.type == "intake.units"] == [["fire_engine"]]
