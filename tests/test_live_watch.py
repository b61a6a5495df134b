"""The console page's change watcher (issue 6): ``GET /api/sessions/{sid}/head`` on the real ingest, and what each
watcher counts as news. The watcher in a real page is exercised by ``tests/test_console_latency_browser.py``."""

from __future__ import annotations

from urllib.parse import quote

from tests.test_ingest_api import Ctx, with_ingest
from workbench.console import live_watch
from workbench.domain import events as ev
from workbench.ingest.head import MAX_PREFIXES, head_of, watch_prefixes


@with_ingest()
async def test_head_gives_the_last_seq_of_each_watched_kind_of_event(ctx: Ctx) -> None:
    status, created, _ = await ctx.request("POST", "/api/sessions", json={"participant": "P01"})
    assert status == 201, created
    sid = created["session_id"]
    watch = quote(",".join(live_watch.QUEUE + live_watch.TRANSCRIPT))
    status, head, headers = await ctx.request("GET", f"/api/sessions/{sid}/head?watch={watch}")
    assert status == 200, head
    assert headers["Access-Control-Allow-Origin"] == "*"  # the console page's script reads it from another origin
    assert head["last"]["session."] == head["seq"] >= 1 and head["last"]["caller.utterance"] == 0, head

    status, call, _ = await ctx.request("POST", "/api/calls", json={"session_id": sid, "modality": "audio"})
    assert status == 201, call
    focus = {"source": "console", "type": "console.focus", "call_id": call["call_id"],
             "data": {"panel": "form", "trigger": "pointer", "browser_ms": 1.0}}
    status, answer, _ = await ctx.request("POST", f"/api/sessions/{sid}/events", json=focus)
    assert status == 201, answer
    focus_seq = answer["event"]["seq"]

    status, head, _ = await ctx.request("GET", f"/api/sessions/{sid}/head?watch={watch}")
    assert status == 200 and head["seq"] == focus_seq, head
    assert 0 < head["last"]["call."] < focus_seq, head  # the call's creation; the focus is nobody's news
    status, head, _ = await ctx.request("GET", f"/api/sessions/{sid}/head")
    assert status == 200 and head == {"seq": focus_seq, "last": {}}, head


@with_ingest()
async def test_head_errors_say_what_is_wrong(ctx: Ctx) -> None:
    status, data, _ = await ctx.request("GET", "/api/sessions/no-such-session/head")
    assert status == 404 and "no-such-session" in data["error"], data
    status, created, _ = await ctx.request("POST", "/api/sessions", json={"participant": "P01"})
    many = ",".join(f"t{i}." for i in range(MAX_PREFIXES + 1))
    status, data, _ = await ctx.request("GET", f"/api/sessions/{created['session_id']}/head?watch={many}")
    assert status == 400 and "at most" in data["error"], data


def test_head_of_and_watch_prefixes() -> None:
    class E:
        def __init__(self, seq: int, type_: str) -> None:
            self.seq, self.type = seq, type_

    log = [E(1, "session.started"), E(2, "call.created"), E(3, "drt.stimulus"), E(4, "call.answered"),
           E(5, "console.focus")]
    assert head_of(log, ("call.", "caller.utterance")) == {"seq": 5, "last": {"call.": 4, "caller.utterance": 0}}
    assert head_of([], ("call.",)) == {"seq": 0, "last": {"call.": 0}}
    assert watch_prefixes(" call., ,caller.utterance ,call.") == ("call.", "caller.utterance")


def test_each_watcher_counts_what_its_fragment_draws_and_nothing_the_page_logs_itself() -> None:
    url = live_watch.head_url("http://lab:8080/t/TICKET", "s-1")
    assert url == "http://lab:8080/t/TICKET/api/sessions/s-1/head"
    news = {
        "queue": ("call.created", "call.answered", "call.closed", "call.held", "call.resumed", "call.ended",
                  "rating.rsme", "rating.nasa_tlx", "block.ended", "session.ended"),
        "transcript": ("caller.utterance",),
        "media": ("media.photo_received", "media.snapshot", "photo.opened", "photo.enlarged", "photo.closed",
                  "dispatcher.prompt", "caller.prompt_delivered"),
    }
    prefixes = {"queue": live_watch.QUEUE, "transcript": live_watch.TRANSCRIPT, "media": live_watch.MEDIA}
    declared = {p.TYPE for p in ev.PAYLOAD_TYPES}
    for name, types in news.items():
        for t in types:
            assert t.startswith(prefixes[name]), (name, t)
            assert t in declared, t
    # The page's own timed events and the form's changes are no one's news.
    quiet = ("drt.stimulus", "drt.response", "console.focus", "console.audio", "intake.urgency",
             "intake.item_checked", "media.recording_segment", "media.keyframe_requested", "link.proposed")
    for t in quiet:
        assert t in declared, t
        assert not any(t.startswith(prefixes[name]) for name in prefixes), t
