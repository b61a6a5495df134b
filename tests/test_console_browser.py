"""The dispatcher console end to end in a real headless Chromium: the real ingest (loopback ICE) with a simulated
aiortc caller streaming moving video and a photo, the console started by ``launch.start_console``, and a
dispatcher who works the call through the page only. The test never posts a dispatcher event itself; it checks
what the ingest wrote to ``events.jsonl``.

The dispatcher also takes a snapshot (shown in the gallery with its quality figures) and asks the caller for a
photo. Screenshots of the queue, the active call and the RSME step go to ``/tmp/console-shots``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import REPO
# console_rig is a fixture. The other names are re-exported for tests that import them from here (test_caller_loop
# and tests on other branches); new tests should import them from tests.console_harness.
from tests.console_harness import (  # noqa: F401
    SHOTS,
    LoopThread,
    console_rig,
    loop_thread,
    make_moving_video,
    make_photo,
    stop_ingest,
    wait_for,
)
from workbench.domain import events as ev
from workbench.domain.taxonomy import INFORMATION_ITEMS
from workbench.store.eventlog import read_events

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.webrtc]

UTTERANCES = (
    "Hello, there is smoke coming from the house across the street.",
    "It's the corner house on Kerkstraat, number 12, in Delft.",
)


def test_dispatcher_works_a_live_video_call_in_the_browser(tmp_path, console_rig):
    from playwright.sync_api import expect

    rig = console_rig
    recordings = rig.recordings
    # Longer than the test: the simulated caller's looped playback stops sending after the first loop (aiortc
    # MediaPlayer(loop=True) feeding the VP8 encoder; reported to the runner's owner).
    video = make_moving_video(tmp_path / "moving.mp4")
    photo = make_photo(tmp_path / "photo.jpg")
    client = rig.start_ingest()
    scenario = (REPO / "experiments/demo/scenario.toml").read_text(encoding="utf-8")
    sid = client.create_session("P07", scenario_toml=scenario, seed=11)
    call = client.create_call(sid, scenario_call_id="house-fire", block_id="live-video", modality="video",
                              caller_label="06-1234 5678")
    cid = call["call_id"]
    rig.start_caller(call["caller_url"], video, photos=[(photo, 1.0)], call_id=cid)
    rig.start_console(sid, station="station-3")
    page = rig.open_page(1400, 1000)
    wait_for = rig.wait
    answer = page.locator(".st-key-answer_next button")
    answer.wait_for()
    assert "06-1234 5678" in answer.inner_text()
    page.screenshot(path=str(SHOTS / "queue.png"), full_page=True)

    # --- answer: the live view plays within 5 s ---------------------------------------------------------
    answer.click()
    t_answer = time.monotonic()
    page.locator("iframe[src*='/viewer']").wait_for()

    def viewer_frame():
        # Playwright may list a fresh same-site iframe with url "" for a while: go through the element.
        handle = page.locator("iframe[src*='/viewer']").element_handle()
        return handle.content_frame() if handle else None

    def distinct_frames() -> int:
        frame = viewer_frame()
        if frame is None:
            return 0
        try:
            return frame.evaluate("window.viewerStats ? window.viewerStats.distinctHashes.size : 0")
        except Exception:  # the frame may still be navigating
            return 0

    wait_for("10 distinct frames in the viewer", lambda: distinct_frames() >= 10, 5.0, 0.1)
    print(f"viewer: 10 distinct frames {time.monotonic() - t_answer:.2f} s after the answer click")
    assert time.monotonic() - t_answer < 5.5
    viewer_frame().evaluate("window.__notReloaded = true")

    answered = wait_for("call.answered in the log", lambda: [
        e for e in client.events(sid) if e.type == "call.answered"], 10)
    assert answered[0].source == "console" and answered[0].data == ev.CallAnswered("station-3")

    # --- the caller speaks: transcript lines appear -------------------------------------------------------
    for i, text in enumerate(UTTERANCES):
        client.post_event(sid, cid, ev.CallerUtterance(i, text, float(i * 4)), source="runner")
    transcript = page.locator(".st-key-transcript")
    for text in UTTERANCES:
        transcript.get_by_text(text, exact=False).wait_for(timeout=10_000)
    # More lines than the transcript box holds: the newest stays in sight (the box scrolls to the end by itself).
    more = [f"Now I can see flames on floor {k}." for k in range(1, 9)]
    for i, text in enumerate(more, start=len(UTTERANCES)):
        client.post_event(sid, cid, ev.CallerUtterance(i, text, float(i * 4)), source="runner")
    transcript.get_by_text(more[-1]).wait_for(timeout=10_000)
    expect(transcript.get_by_text(more[-1])).to_be_in_viewport(timeout=5_000)
    expect(transcript.get_by_text(UTTERANCES[0], exact=False)).not_to_be_in_viewport()
    # A second report arrives while the first is being handled: the queue in the sidebar shows it.
    cid2 = client.create_call(sid, scenario_call_id="collision", block_id="live-video", modality="audio",
                              caller_label="06-8765 4321")["call_id"]
    page.locator("[data-testid='stSidebar']").get_by_text("06-8765 4321").wait_for(timeout=10_000)
    page.get_by_role("img", name="p1").or_(page.locator("img[src*='/photos/p1']")).first.wait_for(
        timeout=15_000)

    def logged(event_type: str, **data: Any):
        return rig.logged(sid, event_type, **data)

    # --- the intake form --------------------------------------------------------------------------------
    page.locator(f".st-key-incident_type-{cid}").click()
    page.get_by_role("option", name="Fire (building, vehicle, outdoor)").click()
    wait_for("intake.incident_type", logged("intake.incident_type", incident_type="fire"), 10)

    page.locator(f".st-key-urgency-{cid}").get_by_text("spoed (urgent, prio 1)").click()
    wait_for("intake.urgency", logged("intake.urgency", urgency="spoed"), 10)

    location = page.locator(f".st-key-location-{cid} input")
    location.fill("Kerkstraat 12, Delft")
    location.press("Enter")
    wait_for("intake.location", logged("intake.location", location="Kerkstraat 12, Delft"), 10)

    for item in ("location", "fire_size", "caller_safe"):
        page.locator(f".st-key-items-{cid} button").filter(has_text=INFORMATION_ITEMS[item]).click()
        wait_for(f"item {item}", logged("intake.item_checked", item=item, checked=True), 10)
    expect(page.locator(f".st-key-items-{cid} button[aria-pressed=true]")).to_have_count(3)

    page.locator(f".st-key-disagree_flag-{cid} label").click()
    wait_for("disagreement flag", logged("intake.disagreement_flag", flagged=True), 10)
    aspect = page.locator(f".st-key-disagree_aspect-{cid} input")
    expect(aspect).to_be_enabled()  # enabled by the form's rerun after the flag
    aspect.click()
    page.get_by_role("option", name="Fire or smoke size").click()
    wait_for("disagreement aspect",
             logged("intake.disagreement_flag", flagged=True, aspect="fire_smoke_size"), 10)

    notes = page.locator(f".st-key-notes-{cid} textarea")
    notes.fill("video shows more fire than described")
    notes.press("Control+Enter")
    page.wait_for_timeout(800)

    # --- a snapshot on request (shown with its quality figures) and a prompt to the caller -------------------
    page.locator(f".st-key-snapshot-{cid} button").click()
    snap = wait_for("media.snapshot on request", logged("media.snapshot", reason="request"), 15)[0].data
    gallery = page.locator(f".st-key-snapshots-{cid}")
    gallery.locator("img[src*='/snapshots/snapshot-']").wait_for(timeout=10_000)
    expect(gallery).to_contain_text(f"sharpness {snap.sharpness:.0f}")
    expect(gallery).to_contain_text(f"brightness {snap.brightness:.0f}")
    assert gallery.locator("img").evaluate("img => img.complete && img.naturalWidth") == snap.width
    page.locator(f".st-key-prompt_photo-{cid} button").click()
    wait_for("dispatcher.prompt photo", logged("dispatcher.prompt", prompt="photo"), 10)
    page.get_by_text("Ask for a photo · ").first.wait_for(timeout=10_000)

    # The media panel redraws every 2 s: shoot once a redraw has put the photo tile and the still back.
    page.locator(f".st-key-photo_open_p1-{cid} button").wait_for(timeout=10_000)
    page.locator(f".st-key-snapshots-{cid} img").wait_for(timeout=10_000)
    page.locator(f".st-key-snapshot-{cid}").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "active.png"), full_page=True)
    frame = viewer_frame()
    assert frame is not None and frame.evaluate("window.__notReloaded === true"), "viewer was reloaded"
    assert frame.evaluate("window.viewerStats.framesShown") > 10

    page.locator(f".st-key-close_call-{cid} button").click()
    wait_for("call.closed", logged("call.closed"), 10)

    # --- RSME ------------------------------------------------------------------------------------------
    rsme_box = page.locator(f".st-key-rsme_number-{cid} input")
    rsme_box.wait_for()
    rsme_box.fill("57")
    rsme_box.press("Enter")
    submit = page.locator(f".st-key-submit_rsme-{cid} button")
    wait_for("Submit enabled", lambda: submit.is_enabled(), 10)
    page.get_by_text("rather much effort").wait_for()
    page.screenshot(path=str(SHOTS / "rsme.png"), full_page=True)
    submit.click()
    wait_for("rating.rsme", logged("rating.rsme"), 10)

    # --- back to the queue; the next call starts with an empty form ------------------------------------
    answer2 = page.locator(".st-key-answer_next button")
    expect(answer2).to_contain_text("06-8765 4321")
    page.screenshot(path=str(SHOTS / "after.png"), full_page=True)
    answer2.click()
    page.get_by_text("no live video in this condition").wait_for()
    expect(page.locator(f".st-key-incident_type-{cid2}")).not_to_contain_text("Fire (building")
    expect(page.locator(f".st-key-items-{cid2} button[aria-pressed]")).to_have_text(
        [INFORMATION_ITEMS[item] for item in ("location", "injuries", "vehicles")])
    expect(page.locator(f".st-key-items-{cid2} button[aria-pressed=true]")).to_have_count(0)
    expect(page.locator(f".st-key-location-{cid2} input")).to_have_value("")
    expect(page.locator(f".st-key-disagree_flag-{cid2} input")).not_to_be_checked()
    page.wait_for_timeout(2500)  # a few polls: nothing stale may be posted for the new call
    page.screenshot(path=str(SHOTS / "second-call.png"), full_page=True)
    second = [(e.type, e.data) for e in client.events(sid) if e.call_id == cid2 and e.source == "console"
              and e.type != "console.focus"]
    assert second == [("call.answered", ev.CallAnswered("station-3"))]

    rig.close()
    events, problems = read_events(recordings / sid / "events.jsonl")
    assert problems == []
    mine = [(e.type, e.data) for e in events if e.source == "console" and e.call_id == cid
            and e.type not in ("console.focus", "dispatcher.prompt")]
    assert [e.data for e in events if e.type == "dispatcher.prompt"] == [ev.DispatcherPrompt(1, "photo", "")]
    assert [(e.call_id, e.data.reason) for e in events if e.type == "media.snapshot" and e.data.reason == "request"] \
        == [(cid, "request")]
    assert mine[0] == ("call.answered", ev.CallAnswered("station-3"))
    assert [m for m in mine if m[0].startswith("intake.")] == [
        ("intake.incident_type", ev.IntakeIncidentType("fire")),
        ("intake.urgency", ev.IntakeUrgency("spoed")),
        ("intake.location", ev.IntakeLocation("Kerkstraat 12, Delft")),
        ("intake.item_checked", ev.IntakeItemChecked("location", True)),
        ("intake.item_checked", ev.IntakeItemChecked("fire_size", True)),
        ("intake.item_checked", ev.IntakeItemChecked("caller_safe", True)),
        ("intake.disagreement_flag", ev.IntakeDisagreementFlag(True, "")),
        ("intake.disagreement_flag", ev.IntakeDisagreementFlag(True, "fire_smoke_size")),
        ("intake.notes", ev.IntakeNotes("video shows more fire than described")),
    ]
    assert [m for m in mine if m[0] == "call.closed"] == [("call.closed", ev.CallClosed(
        incident_type="fire", urgency="spoed", location="Kerkstraat 12, Delft",
        items_gathered=["location", "fire_size", "caller_safe"], disagreement_flagged=True,
        disagreement_aspect="fire_smoke_size", notes="video shows more fire than described",
    ))]
    assert mine[-1] == ("rating.rsme", ev.RatingRsme(57.0))
    assert len(mine) == 12
    # Without the DRT, and with the pointer never resting over a panel for long, nothing else is logged... except
    # the panel focus the clicks above moved (console.focus), which are counted apart.
    focus = [e for e in events if e.type == "console.focus"]
    assert [e.call_id for e in events if e.source == "console" and e.type not in ("console.focus", "dispatcher.prompt")
            ] == [cid] * 12 + [cid2]
    assert {e.data.panel for e in focus if e.call_id == cid} >= {"form"}
