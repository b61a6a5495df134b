"""The console's change watcher in a real page (issue 6): the queue, the transcript and the photos redraw when the
log has news for them (``workbench.console.live_watch``), the DRT's and the form's own events cause no redraw, and
the watchers take no room on the page. Real ingest, real console process, Debian's Chromium; screenshot
``/tmp/console-shots/watcher-active.png``."""

from __future__ import annotations

import pytest

from tests.console_harness import SHOTS, console_rig, make_photo  # noqa: F401
from workbench.domain import events as ev

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WATCH_JS = ("() => window.__wbWatch ? {polls: window.__wbWatch.polls, failures: window.__wbWatch.failures, "
            "fired: window.__wbWatch.fired, subs: [...window.__wbWatch.subs.keys()]} "
            ": null")


def test_news_in_the_log_redraws_the_watched_parts_and_the_pages_own_events_do_not(tmp_path, console_rig):
    rig = console_rig
    client = rig.start_ingest()
    sid = client.create_session("P05")
    rig.start_console(sid, station="station-5", drt=True)
    page = rig.open_page(1400, 1000)
    page.get_by_text("No calls in the queue.").wait_for(timeout=30_000)
    first = rig.wait("the watcher polling the ingest", lambda: (w := page.evaluate(WATCH_JS)) and w["polls"] >= 3
                     and w, 20, 0.1)
    assert first["failures"] == 0 and first["subs"] == ["queue"], first

    # A new call: the queue shows it (the watcher or the queue's 1 s timer, whichever comes first).
    call = client.create_call(sid, modality="photo", caller_label="06-5555 0101")
    cid = call["call_id"]
    page.get_by_text("06-5555 0101").first.wait_for(timeout=10_000)

    # The DRT (visual, every 3-5 s) logs from the page itself: no news, no redraw.
    rig.wait("two DRT stimuli", lambda: len(rig.logged(sid, "drt.stimulus")()) >= 2, 20, 0.2)
    settled = page.evaluate(WATCH_JS)
    rig.wait("one more DRT stimulus", lambda: len(rig.logged(sid, "drt.stimulus")()) >= 3, 20, 0.2)
    page.wait_for_timeout(1000)  # several polls after it
    quiet = page.evaluate(WATCH_JS)
    assert quiet["fired"] == settled["fired"] and quiet["polls"] > settled["polls"], (settled, quiet)

    # Answer: the call's watchers replace the queue's; a transcript line and a photo appear when logged.
    page.locator(".st-key-answer_next button").click()
    page.locator(f".st-key-close_call-{cid} button").wait_for(timeout=20_000)
    rig.wait("the call's watchers", lambda: {"transcript", "media", "queue"} <= set(page.evaluate(WATCH_JS)["subs"]),
             20, 0.1)
    before_news = page.evaluate(WATCH_JS)
    client.post_event(sid, cid, ev.CallerUtterance(0, "There is smoke on the first floor.", 0.0), source="runner")
    page.get_by_text("There is smoke on the first floor.").wait_for(timeout=10_000)
    rig.start_caller(call["caller_url"], None, photos=[(make_photo(tmp_path / "photo.jpg"), 0.2)])
    page.locator(f".st-key-photo_open_p1-{cid} button").wait_for(timeout=20_000)
    # Each news fired the watchers unless a fragment's own timer had drawn it first (the transcript's every 5 s, the
    # photos' every 2 s): over a line and a photo, the watchers fired.
    assert page.evaluate(WATCH_JS)["fired"] > before_news["fired"]

    # A click in the form is logged but is no news for the watched parts.
    page.wait_for_timeout(1500)  # the photo's later events (metadata) are in
    settled = page.evaluate(WATCH_JS)
    page.locator(f".st-key-items-{cid} button").filter(has_text="Exact location").click()
    rig.wait("intake.item_checked", rig.logged(sid, "intake.item_checked", item="location", checked=True), 15)
    page.wait_for_timeout(1000)
    assert page.evaluate(WATCH_JS)["fired"] == settled["fired"]

    # The watchers draw nothing: their containers take no room.
    for name in ("queue", "transcript", "media"):
        box = page.locator(f".st-key-wb_watch_{name}")
        assert box.count() == 1 and not box.is_visible(), name
    page.screenshot(path=str(SHOTS / "watcher-active.png"))
    assert page.evaluate(WATCH_JS)["failures"] == 0
