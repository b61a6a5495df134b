"""The console page's change watcher (issue 6): ``GET /api/sessions/{sid}/head`` on the real ingest, and the URL
the page polls. The watcher in a real page is exercised by ``tests/test_console_latency_browser.py``."""

from __future__ import annotations

from tests.test_ingest_api import Ctx, with_ingest
from workbench.console import live_watch
from workbench.ingest.head import MAX_SKIP, head_of, skip_prefixes


@with_ingest()
async def test_head_gives_the_last_seq_and_the_last_seq_that_is_news(ctx: Ctx) -> None:
    status, created, _ = await ctx.request("POST", "/api/sessions", json={"participant": "P01"})
    assert status == 201, created
    sid = created["session_id"]
    status, head, headers = await ctx.request("GET", f"/api/sessions/{sid}/head")
    assert status == 200 and head["seq"] == head["changed_seq"] >= 1, head
    assert headers["Access-Control-Allow-Origin"] == "*"  # the console page's script reads it from another origin
    started = head["seq"]

    status, call, _ = await ctx.request("POST", "/api/calls", json={"session_id": sid, "modality": "audio"})
    assert status == 201, call
    focus = {"source": "console", "type": "console.focus", "call_id": call["call_id"],
             "data": {"panel": "form", "trigger": "pointer", "browser_ms": 1.0}}
    status, answer, _ = await ctx.request("POST", f"/api/sessions/{sid}/events", json=focus)
    assert status == 201, answer
    posted = answer["event"]

    status, head, _ = await ctx.request("GET", f"/api/sessions/{sid}/head")
    assert status == 200 and head["seq"] == head["changed_seq"] == posted["seq"] > started + 1, head
    skip = ",".join(live_watch.SKIP)
    status, head, _ = await ctx.request("GET", f"/api/sessions/{sid}/head?skip={skip}")
    assert status == 200, head
    assert head["seq"] == posted["seq"] and head["changed_seq"] == posted["seq"] - 1, head  # the focus is no news


@with_ingest()
async def test_head_errors_say_what_is_wrong(ctx: Ctx) -> None:
    status, data, _ = await ctx.request("GET", "/api/sessions/no-such-session/head")
    assert status == 404 and "no-such-session" in data["error"], data
    status, created, _ = await ctx.request("POST", "/api/sessions", json={"participant": "P01"})
    many = ",".join(f"t{i}." for i in range(MAX_SKIP + 1))
    status, data, _ = await ctx.request("GET", f"/api/sessions/{created['session_id']}/head?skip={many}")
    assert status == 400 and "at most" in data["error"], data


def test_head_of_and_skip_prefixes() -> None:
    class E:
        def __init__(self, seq: int, type_: str) -> None:
            self.seq, self.type = seq, type_

    log = [E(1, "session.started"), E(2, "call.created"), E(3, "drt.stimulus"), E(4, "console.focus")]
    assert head_of(log, ("drt.", "console.")) == {"seq": 4, "changed_seq": 2}
    assert head_of(log, ()) == {"seq": 4, "changed_seq": 4}
    assert head_of([], ("drt.",)) == {"seq": 0, "changed_seq": 0}
    assert head_of(log[2:], ("drt.", "console.")) == {"seq": 4, "changed_seq": 0}
    assert skip_prefixes(" drt., ,console.focus ") == ("drt.", "console.focus")


def test_the_page_polls_its_own_sessions_head_through_the_browsers_ingest_url() -> None:
    url = live_watch.head_url("http://lab:8080/t/TICKET", "s-1")
    assert url.startswith("http://lab:8080/t/TICKET/api/sessions/s-1/head?skip=")
    assert set(url.split("skip=")[1].split(",")) == set(live_watch.SKIP)
    # What the watched fragments draw must never be skipped.
    for drawn in ("call.created", "call.answered", "call.closed", "call.held", "caller.utterance",
                  "media.photo_received", "media.snapshot", "photo.opened", "dispatcher.prompt",
                  "caller.prompt_delivered", "block.ended", "session.ended"):
        assert not drawn.startswith(live_watch.SKIP), drawn
