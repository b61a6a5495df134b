"""The browser's own events (``console.focus``, ``drt.response``) reach the log even when the component that noticed
them goes away before its post went out (issue 6 follow-up: in a long flow the first ``console.focus`` after
clicking the urgency radio was sometimes never sent).

A Streamlit rerun can re-mount an ``st.iframe``: a new iframe with the same document replaces the old one. Timers
and promise callbacks created by the old iframe's script never run once its document is gone (the HTML event loop
skips callbacks of a document that is not fully active), so a change held back by the 250 ms throttle, or a post
waiting to be retried, died with it. These tests re-mount the focus component exactly as a rerun does (the
iframe replaced by a fresh one with the same ``srcdoc``) at the worst moment, and reload the page while a DRT
response waits for its retry, and check that the ingest logged every event once.

Screenshot: ``/tmp/console-shots/event-delivery.png`` (the active call after the re-mounts).
"""

from __future__ import annotations

import json

import pytest

from tests.console_harness import SHOTS, console_rig  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FOCUS_IFRAME = "iframe[srcdoc*='__wbFocus']"

# In the page, in one task (no rerun or timer can run in between): a press in ``panel``'s container, then the focus
# component re-mounted the way a Streamlit rerun does it.
PRESS_THEN_REMOUNT_JS = """([panel, remount]) => {
  const el = document.querySelector("[class*='st-key-panel_" + panel + "-']");
  if (el === null) return "no panel " + panel;
  el.dispatchEvent(new PointerEvent("pointerdown", {bubbles: true, composed: true}));
  if (remount) {
    const old = document.querySelector("%s");
    if (old === null) return "no focus iframe";
    old.replaceWith(old.cloneNode(true));
  }
  return "ok";
}""" % FOCUS_IFRAME


def _fail_first(page, event_type: str) -> dict:
    """Make the browser's first POST of ``event_type`` to the ingest fail as a network error (an ingest that is
    unreachable for a moment); later posts go through. Returns the counters the route handler keeps."""
    seen = {"failed": 0, "passed": 0}

    def handle(route) -> None:
        body = route.request.post_data or ""
        try:
            kind = json.loads(body).get("type")
        except ValueError:
            kind = None
        if route.request.method == "POST" and kind == event_type:
            if seen["failed"] == 0:
                seen["failed"] += 1
                route.abort()
                return
            seen["passed"] += 1
        route.fallback()  # on to the loopback guard

    page.route("**/api/sessions/*/events", handle)
    return seen


def _active_audio_call(rig, *, drt: bool) -> tuple[str, str, object]:
    client = rig.start_ingest()
    sid = client.create_session("P21")
    cid = client.create_call(sid, modality="audio", caller_label="06-5555 0101")["call_id"]
    rig.start_console(sid, station="station-9", drt=drt)
    page = rig.open_page(1400, 1000)
    page.locator(".st-key-answer_next button").click()
    page.locator(f".st-key-panel_form-{cid}").wait_for(timeout=30_000)
    rig.wait("the focus component", lambda: page.evaluate(
        f"!!window.__wbFocus && window.__wbFocus.callId === {json.dumps(cid)}"), 30)
    return sid, cid, page


def _focus_panels(rig, sid: str, cid: str) -> list[str]:
    return [e.data.panel for e in rig.client.events(sid) if e.type == "console.focus" and e.call_id == cid]


def test_focus_change_survives_a_remount_of_the_focus_component(console_rig):
    rig = console_rig
    sid, cid, page = _active_audio_call(rig, drt=False)
    panels = lambda: _focus_panels(rig, sid, cid)  # noqa: E731

    # A change of panel, then the component re-mounted while that change is held back (the 250 ms throttle).
    assert page.evaluate(PRESS_THEN_REMOUNT_JS, ["transcript", False]) == "ok"
    rig.wait("console.focus transcript", lambda: panels()[-1:] == ["transcript"], 15)
    assert page.evaluate(PRESS_THEN_REMOUNT_JS, ["form", True]) == "ok"
    rig.wait("console.focus form after the re-mount", lambda: panels()[-1:] == ["form"], 15)

    # A post that fails (the ingest unreachable for a moment) and whose component is re-mounted before the retry.
    seen = _fail_first(page, "console.focus")
    assert page.evaluate(PRESS_THEN_REMOUNT_JS, ["transcript", False]) == "ok"
    rig.wait("the first focus post to fail", lambda: seen["failed"] == 1, 15)
    page.evaluate("""() => { const f = document.querySelector("%s"); f.replaceWith(f.cloneNode(true)); }"""
                  % FOCUS_IFRAME)
    rig.wait("console.focus transcript retried after the re-mount", lambda: panels()[-1:] == ["transcript"], 15)

    # Only on change and at most one per 250 ms: presses in the same panel and a burst of changes add one event.
    before = len(panels())
    page.evaluate("""() => {
      const at = (p) => document.querySelector("[class*='st-key-panel_" + p + "-']");
      for (const p of ["transcript", "transcript", "form", "transcript", "form"])
        at(p).dispatchEvent(new PointerEvent("pointerdown", {bubbles: true, composed: true}));
    }""")
    rig.wait("the burst's one console.focus", lambda: len(panels()) == before + 1, 15)
    page.wait_for_timeout(1000)
    assert panels()[before:] == ["form"], "a burst within 250 ms logs its last panel once"
    assert panels() == ["transcript", "form", "transcript", "form"]
    page.screenshot(path=str(SHOTS / "event-delivery.png"), full_page=True)


def test_drt_response_survives_a_failed_post_and_a_page_reload(console_rig):
    rig = console_rig
    sid, _cid, page = _active_audio_call(rig, drt=True)
    rig.wait("the DRT running", lambda: page.evaluate("!!window.__wbDrt"), 30)
    seen = _fail_first(page, "drt.response")
    page.locator(".st-key-transcript").click()  # keyboard focus in the console page
    page.keyboard.press("Control")
    rig.wait("the response's first post to fail", lambda: seen["failed"] == 1, 15)
    run_id = page.evaluate("window.__wbDrt.responses[0].run_id")
    page.wait_for_timeout(50)  # the failure reaches the script
    page.reload()  # before the retry (2 s): the DRT component and its page go away
    responses = rig.wait("the drt.response of the first page load", lambda: [
        e for e in rig.client.events(sid) if e.type == "drt.response" and e.data.run_id == run_id], 15)
    assert len(responses) == 1 and responses[0].data.input == "key"
