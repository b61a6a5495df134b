"""The console's related-reports-and-advice panel (issue 11): AppTest against a real ingest (in a thread) playing
the multi-caller scenario's reports, and the real page in Chromium with a screenshot
(/tmp/console-shots/links-panel.png). Every decision arrives as exactly the events the ingest writes for it."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, free_port
from workbench.console.launch import APP_PATH
from workbench.console.links_view import links_view
from workbench.domain import events as ev
from workbench.domain.session_state import SessionState, apply
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.scenarios import load_scenario

MULTI = REPO / "experiments" / "multi-caller" / "scenario.toml"
SID = "links-ui"


def _http(method: str, url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


@pytest.fixture()
def ingest(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ingest on loopback, served from a thread (the AppTest runs the page in this thread)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}
    settings = IngestSettings(port=free_port(), recordings=tmp_path / "rec")

    def serve() -> None:
        asyncio.set_event_loop(loop)
        holder["handle"] = loop.run_until_complete(start_ingest(settings))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(20)
    yield holder["handle"].url, tmp_path / "rec"
    asyncio.run_coroutine_threadsafe(holder["handle"].stop(), loop).result(20)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def play_reports(base: str) -> dict[str, str]:
    """The session with the multi-caller scenario: the neighbour's and the passer-by's reports and the collision,
    their lines said; the passer-by answered by station-7. Returns scenario call id -> call id."""
    _http("POST", f"{base}/api/sessions", {"participant": "P01", "scenario_toml": MULTI.read_text(),
                                            "session_id": SID})
    scenario = load_scenario(MULTI)
    ids = {}
    for name in ("fire-neighbour", "collision", "fire-passerby"):
        spec = scenario.call(name)
        ids[name] = _http("POST", f"{base}/api/calls", {"session_id": SID, "scenario_call_id": name,
                                                         "block_id": "multi", "modality": "photo",
                                                         "caller_label": spec.caller_label})["call_id"]
        for i, u in enumerate(spec.utterances):
            _http("POST", f"{base}/api/sessions/{SID}/events", {"source": "runner", "type": "caller.utterance",
                  "call_id": ids[name], "data": {"index": i, "text": u.text, "at_s": u.at_s}})
    _http("POST", f"{base}/api/sessions/{SID}/events", {"source": "console", "type": "call.answered",
          "call_id": ids["fire-passerby"], "data": {"station": "station-7"}})
    return ids


def log(base: str) -> list[ev.Event]:
    return [ev.event_from_dict(e) for e in _http("GET", f"{base}/api/sessions/{SID}/events")["events"]]


@pytest.fixture()
def console(ingest, monkeypatch) -> tuple[str, dict[str, str]]:
    base, rec = ingest
    ids = play_reports(base)
    for name in ("WORKBENCH_SESSION", "WORKBENCH_INGEST_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_INGEST_URL", base)
    monkeypatch.setenv("WORKBENCH_RECORDINGS", str(rec))
    monkeypatch.setenv("WORKBENCH_STATION", "station-7")
    return base, ids


def test_view_model_orders_pending_decided_links_and_candidates() -> None:
    state = SessionState()
    for seq, (cid, label) in enumerate((("a", "06-1"), ("b", "06-2"), ("c", "06-3")), start=1):
        apply(state, ev.Event(1, "s", seq, seq * 1000, "2026-01-01T00:00:00+00:00", "ingest", "call.created", cid,
                              ev.CallCreated(cid, "b1", "photo", label)))
    reply = {"proposals": [{"proposal_id": "lp1", "other_call_id": "a", "score": 0.834, "reasons": ["r1"],
                            "decision": "", "relation": ""},
                           {"proposal_id": "lp2", "other_call_id": "c", "score": 0.7, "reasons": [],
                            "decision": "reject", "relation": ""}],
             "links": [{"other_call_id": "c", "relation": "related"}],
             "advice": {"seq": 9, "urgency": "spoed", "rules": ["T3"], "reasons": ["T3: fire with people inside"]},
             "advice_shown": []}
    view = links_view(reply, state, "b")
    assert [p.headline for p in view.pending] == ["Possibly the same incident as 06-1 (in queue) (score 83%)"]
    assert view.pending[0].default_relation == "parent"  # the earlier report leads
    assert [p.proposal_id for p in view.decided] == ["lp2"]
    assert [(x.other_call_id, x.relation) for x in view.links] == [("c", "related")]
    assert view.candidates == (("a", "06-1 (in queue)"),)
    assert view.advice is not None and view.advice.post_shown and view.advice.label == "spoed (prio 1)"
    assert not links_view({**reply, "advice_shown": [9]}, state, "b").advice.post_shown


def _many_proposals_panel() -> None:
    """AppTest script: the panel for report ``b`` with five pending proposals (scores 50-90 %) from a stub ingest."""
    import streamlit as st

    from workbench.console.links_panel import links_panel
    from workbench.domain import events as ev
    from workbench.domain.session_state import SessionState, apply

    class StubIngest:
        def links(self, cid: str) -> dict:
            scores = (0.5, 0.9, 0.7, 0.6, 0.8)
            return {"proposals": [{"proposal_id": f"lp{i}", "other_call_id": f"o{i}", "score": score,
                                   "reasons": [f"reason {i}a", f"reason {i}b"], "decision": "", "relation": ""}
                                  for i, score in enumerate(scores)], "links": [], "advice": None}

    state = SessionState(session_id="s")
    for seq, cid in enumerate(("o0", "o1", "o2", "o3", "o4", "b"), start=1):
        apply(state, ev.Event(1, "s", seq, seq * 1000, "2026-01-01T00:00:00+00:00", "ingest", "call.created", cid,
                              ev.CallCreated(cid, "b1", "photo", f"06-{seq}")))
    st.session_state["stub_state"] = state
    links_panel(StubIngest(), "s", "b", lambda: st.session_state["stub_state"])


def test_the_panel_shows_the_three_best_proposals_and_the_rest_on_request() -> None:
    at = AppTest.from_function(_many_proposals_panel, default_timeout=30).run()
    assert not at.exception
    accepts = lambda: [b.key for b in at.button_group if b.key.startswith("link_decide_")]  # noqa: E731
    assert accepts() == ["link_decide_lp1-b", "link_decide_lp4-b", "link_decide_lp2-b"]  # 90, 80, 70 %
    row = at.button_group(key="link_decide_lp1-b")
    assert list(row.options) == [
        "Parent (proposed)", "Child", "Related", "Reject"]
    assert row.value is None  # nothing decided before a click
    assert [t.key for t in at.toggle] == ["link_show_all-b", "link_by_hand-b"]  # the manual row on request only
    assert not [s for s in at.selectbox if s.key.startswith("link_")]
    texts = [str(m.value) for m in at.markdown]
    # headline and reasons in one element per proposal
    assert "Possibly the same incident as 06-2 (in queue) (score 90%)\n- reason 1a\n- reason 1b" in texts
    assert "**Related reports** (0 linked, 5 proposed)" in texts
    # the other two stay in sight, reasons and buttons on request
    assert "Also proposed: 06-4 (in queue) (score 60%), 06-1 (in queue) (score 50%)" in [str(c.value) for c in at.caption]
    at.toggle(key="link_show_all-b").set_value(True).run()
    assert not at.exception
    assert accepts() == ["link_decide_lp1-b", "link_decide_lp4-b", "link_decide_lp2-b", "link_decide_lp3-b",
                         "link_decide_lp0-b"]


def _one_proposal_panel() -> None:
    """AppTest script: the panel for report ``b`` with one pending proposal from a stub ingest that refuses to link
    as ``child`` (409) and records every decision it is sent in ``st.session_state["decisions"]``."""
    import streamlit as st

    from workbench.console.ingest_client import IngestError
    from workbench.console.links_panel import links_panel
    from workbench.domain import events as ev
    from workbench.domain.session_state import SessionState, apply

    class StubIngest:
        def links(self, cid: str) -> dict:
            return {"proposals": [{"proposal_id": "lp1", "other_call_id": "o1", "score": 0.8, "reasons": ["near"],
                                   "decision": "", "relation": ""}], "links": [], "advice": None}

        def decide_link(self, cid: str, pid: str, decision: str, relation: str) -> None:
            st.session_state.setdefault("decisions", []).append((cid, pid, decision, relation))
            if relation == "child":
                raise IngestError("409 the other report is already this one's parent", 409)

    state = SessionState(session_id="s")
    for seq, cid in enumerate(("o1", "b"), start=1):
        apply(state, ev.Event(1, "s", seq, seq * 1000, "2026-01-01T00:00:00+00:00", "ingest", "call.created", cid,
                              ev.CallCreated(cid, "b1", "photo", f"06-{seq}")))
    links_panel(StubIngest(), "s", "b", lambda: state)


def test_a_refused_choice_is_cleared_with_the_error_and_reject_sends_no_relation() -> None:
    at = AppTest.from_function(_one_proposal_panel, default_timeout=30).run()
    row = at.button_group(key="link_decide_lp1-b")
    row.set_value("child").run()
    assert not at.exception
    assert at.session_state["decisions"] == [("b", "lp1", "accept", "child")]
    assert "already this one's parent" in " ".join(str(e.value) for e in at.error)
    assert at.button_group(key="link_decide_lp1-b").value is None  # cleared: the dispatcher can choose again
    at.button_group(key="link_decide_lp1-b").set_value("reject").run()
    assert not at.exception
    assert at.session_state["decisions"][1:] == [("b", "lp1", "reject", "")]
    assert not at.error  # the request went through: the error is gone


def test_dispatcher_sees_advice_and_proposal_accepts_links_by_hand_and_unlinks(console) -> None:
    base, ids = console
    at = AppTest.from_file(str(APP_PATH), default_timeout=30).run()
    assert not at.exception
    passerby, neighbour, collision = ids["fire-passerby"], ids["fire-neighbour"], ids["collision"]
    text = " ".join(str(m.value) for m in at.markdown)
    # The block has advice on: the ingest advised from the passer-by's words (big flames: T4 spoed) ...
    assert "**Advice: urgency spoed (prio 1)**" in text and "T4: large fire/smoke said" in text
    # ... and proposed the neighbour's report (same street, 100 m apart); the collision was not proposed.
    assert "Possibly the same incident as 06-1234 5678 (in queue)" in text
    assert "m apart (network location" in text  # proposed on arrival, from the callers' positions
    shown = [e for e in log(base) if isinstance(e.data, ev.AdviceShown)]
    given = [e for e in log(base) if isinstance(e.data, ev.AdviceGiven) and e.call_id == passerby]
    assert len(shown) == 1 and shown[0].source == "console" and shown[0].call_id == passerby
    assert shown[0].data.advice_seq == given[-1].seq and shown[0].data.urgency == "spoed"

    pid = next(e.data.proposal_id for e in log(base) if isinstance(e.data, ev.LinkProposed))
    row = at.button_group(key=f"link_decide_{pid}-{passerby}")
    assert row.options[0] == "Parent (proposed)"
    row.set_value("parent").run()
    assert not at.exception
    assert f"link_other-{passerby}" not in [box.key for box in at.selectbox]  # behind "Link by hand"
    at.toggle(key=f"link_by_hand-{passerby}").set_value(True).run()
    at.selectbox(key=f"link_other-{passerby}").set_value(collision).run()
    at.selectbox(key=f"link_manual_relation-{passerby}").set_value("related").run()
    at.button(key=f"link_set-{passerby}").click().run()
    assert not at.exception
    at.button(key=f"link_unlink_{collision}-{passerby}").click().run()
    assert not at.exception
    text = " ".join(str(m.value) for m in at.markdown)
    assert "06-1234 5678 (in queue): **parent**" in text

    mine = [(e.type, json.loads(json.dumps(e.to_dict()["data"]))) for e in log(base)
            if e.source == "console" and e.type.startswith(("link.", "advice."))]
    assert mine == [
        ("advice.shown", {"advice_seq": given[-1].seq, "urgency": "spoed", "rules": ["T4", "T5"]}),
        ("link.decided", {"proposal_id": pid, "other_call_id": neighbour, "decision": "accept", "relation": "parent"}),
        ("link.set", {"other_call_id": neighbour, "relation": "parent", "origin": "proposal", "proposal_id": pid}),
        ("link.set", {"other_call_id": collision, "relation": "related", "origin": "manual", "proposal_id": ""}),
        ("link.removed", {"other_call_id": collision}),
    ]


@pytest.mark.browser
@pytest.mark.slow
def test_the_panel_in_chromium_accepting_a_proposal(console, chromium_path: str) -> None:
    import time
    from urllib.parse import urlsplit

    from playwright.sync_api import Route, sync_playwright

    from tests.conftest import CHROMIUM_BASE_ARGS
    from workbench.console.launch import start_console, wait_until_ready

    base, ids = console
    shots = Path("/tmp/console-shots")
    shots.mkdir(parents=True, exist_ok=True)
    passerby = ids["fire-passerby"]
    pid = next(e.data.proposal_id for e in log(base) if isinstance(e.data, ev.LinkProposed))
    port = free_port()
    proc = start_console(base, port=port, session_id=SID, station="station-7")
    foreign: list[str] = []
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", 60)

        def only_loopback(route: Route) -> None:
            if route.request.url.startswith(("data:", "blob:")) or urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                foreign.append(route.request.url)
                route.abort()

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_BASE_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1100})
                context.route("**/*", only_loopback)
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.goto(f"http://127.0.0.1:{port}")
                panel = page.locator(f".st-key-panel_links-{passerby}")
                panel.wait_for()
                page.get_by_text("Advice: urgency spoed").wait_for()
                page.locator(f".st-key-link_decide_{pid}-{passerby} button").first.wait_for()
                page.locator(f".st-key-link_by_hand-{passerby}").get_by_text("Link by hand").click()
                page.locator(f".st-key-link_set-{passerby} button").wait_for()
                page.locator(".st-key-transcript").get_by_text("big flames").wait_for()
                page.locator(f".st-key-close_call-{passerby} button").wait_for()
                panel.scroll_into_view_if_needed()
                panel.get_by_text("Parent (proposed)").wait_for()
                panel.get_by_text("Link to report").wait_for()
                panel.get_by_text("Its relation").wait_for()
                page.get_by_text("Units dispatched").wait_for()
                page.screenshot(path=str(shots / "links-panel.png"), full_page=True)
                page.locator(f".st-key-link_decide_{pid}-{passerby} button").get_by_text("Parent (proposed)").click()
                deadline = time.monotonic() + 30
                while not any(isinstance(e.data, ev.LinkSet) for e in log(base)):
                    assert time.monotonic() < deadline, "the accept never reached the log"
                    time.sleep(0.2)
                panel.get_by_text("parent").first.wait_for()
                page.screenshot(path=str(shots / "links-panel-accepted.png"), full_page=True)
                # A link set elsewhere (another station, through the API) reaches the panel through the page's
                # change watcher, well before the panel's own fallback redraw (links_panel.FALLBACK_S = 10 s).
                page.locator(".st-key-wb_watch_links").wait_for(state="attached")
                _http("POST", f"{base}/api/calls/{passerby}/links",
                      {"other_call_id": ids["collision"], "relation": "related"})
                panel.get_by_text("related", exact=True).wait_for(timeout=4_000)
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    assert not foreign, foreign
    linked = [e for e in log(base) if isinstance(e.data, ev.LinkSet)]
    assert [(e.call_id, e.data.relation, e.data.origin, e.data.proposal_id) for e in linked] == [
        (passerby, "parent", "proposal", pid), (passerby, "related", "manual", "")]
    assert [e.source for e in log(base) if isinstance(e.data, ev.AdviceShown)] == ["console"]
