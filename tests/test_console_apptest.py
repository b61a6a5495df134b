"""The dispatcher page under ``streamlit.testing.v1.AppTest``, against a small fake ingest (a real aiohttp server
on loopback, in a thread, backed by a :class:`MemoryEventLog`): every dispatcher action must arrive as exactly one
event with exactly the values chosen."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, free_port
from workbench.console.ingest_client import IngestClient, IngestError
from workbench.console.launch import APP_PATH
from workbench.domain import events as ev
from workbench.store.eventlog import MemoryEventLog

SID = "s-apptest"


@dataclass
class FakeIngest:
    """The few ingest endpoints the console uses, over in-memory logs. ``posted`` lists every POSTed event body."""

    logs: dict[str, MemoryEventLog] = field(default_factory=dict)
    posted: list[dict] = field(default_factory=list)
    reads: int = 0
    """``GET /api/sessions/{sid}/events`` requests served."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/sessions", self.sessions)
        app.router.add_get("/api/sessions/{sid}/events", self.get_events)
        app.router.add_post("/api/sessions/{sid}/events", self.post_event)
        app.router.add_get("/api/calls/{cid}", self.call)
        app.router.add_post("/api/calls/{cid}/snapshot", self.snapshot)
        app.router.add_post("/api/calls/{cid}/prompts", self.prompt)
        return app

    def _log_of(self, call_id: str) -> MemoryEventLog:
        return next(log for log in self.logs.values() if any(e.call_id == call_id for e in log.events()))

    async def snapshot(self, request: web.Request) -> web.Response:
        """Like the ingest: a still of the newest frame, logged as ``media.snapshot`` with reason ``request``."""
        cid = request.match_info["cid"]
        log = self._log_of(cid)
        n = 1 + sum(1 for e in log.events() if e.type == "media.snapshot" and e.call_id == cid)
        payload = ev.MediaSnapshot(f"media/{cid}/snapshot-{n:04d}.jpg", "cd" * 32, 640, 480, 40 * n, "request",
                                   31.5 * n, 101.0, 2.25)
        log.append("ingest", payload, cid)
        return web.json_response({"snapshot": dataclasses.asdict(payload)}, status=201)

    async def prompt(self, request: web.Request) -> web.Response:
        """Like the ingest: ``dispatcher.prompt`` (source console), numbered within the call."""
        cid = request.match_info["cid"]
        body = await request.json()
        log = self._log_of(cid)
        n = 1 + sum(1 for e in log.events() if e.type == "dispatcher.prompt" and e.call_id == cid)
        log.append("console", ev.DispatcherPrompt(n, body["prompt"], body.get("message", "")), cid)
        return web.json_response({"prompt_id": n}, status=201)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def sessions(self, request: web.Request) -> web.Response:
        rows = []
        for sid, log in self.logs.items():
            events = log.events()
            rows.append({"session_id": sid, "participant": "P01", "scenario_id": "demo",
                         "last_seq": events[-1].seq if events else 0,
                         "ended": any(e.type == "session.ended" for e in events)})
        return web.json_response({"sessions": rows})

    async def get_events(self, request: web.Request) -> web.Response:
        self.reads += 1
        log = self.logs.get(request.match_info["sid"])
        if log is None:
            return web.json_response({"error": "no such session"}, status=404)
        after = int(request.query.get("after", "0"))
        return web.json_response({"events": [e.to_dict() for e in log.events(after)]})

    async def post_event(self, request: web.Request) -> web.Response:
        log = self.logs.get(request.match_info["sid"])
        if log is None:
            return web.json_response({"error": "no such session"}, status=404)
        body = await request.json()
        self.posted.append(body)
        try:
            payload = ev.payload_from_dict(body["type"], body["data"])
            event = log.append(body["source"], payload, body.get("call_id"))
        except ev.EventValidationError as exc:
            return web.json_response({"error": str(exc)}, status=422)
        return web.json_response({"event": event.to_dict()}, status=201)

    async def call(self, request: web.Request) -> web.Response:
        return web.json_response({"state": "connected", "connected": True, "video_codec": "VP8", "width": 640,
                                  "height": 480, "frames_received": 42, "photos": [], "answered": True})


@pytest.fixture()
def fake_ingest() -> Iterator[tuple[FakeIngest, str]]:
    """A :class:`FakeIngest` served on 127.0.0.1 from a thread; yields it and its base URL."""
    fake = FakeIngest()
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner = web.AppRunner(fake.app())

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield fake, f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture()
def console_env(fake_ingest, tmp_path, monkeypatch) -> tuple[FakeIngest, MemoryEventLog]:
    """A session with the demo scenario's house-fire call waiting, and the console configured for it."""
    fake, url = fake_ingest
    log = MemoryEventLog(SID)
    log.append("ingest", ev.SessionStarted("P01", "demo", "00" * 32, 3, ["live-video"], "0.1.0"))
    log.append("ingest", ev.CallCreated("house-fire", "live-video", "video", "06-1234 5678"), "c1")
    fake.logs[SID] = log
    (tmp_path / SID).mkdir()
    shutil.copy(REPO / "experiments/demo/scenario.toml", tmp_path / SID / "scenario.toml")
    for name in ("WORKBENCH_SESSION", "WORKBENCH_INGEST_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_INGEST_URL", url)
    monkeypatch.setenv("WORKBENCH_RECORDINGS", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_STATION", "station-7")
    return fake, log


def new_app() -> AppTest:
    return AppTest.from_file(str(APP_PATH), default_timeout=20)


def start_another_session(fake: FakeIngest, session_id: str, participant: str, scenario_id: str) -> None:
    """A second live session on the fake ingest (newer than the fixture's), with no calls."""
    other = MemoryEventLog(session_id)
    other.append("ingest", ev.SessionStarted(participant, scenario_id, "", 0, [], "0.1.0"))
    fake.logs[session_id] = other


def console_events(log: MemoryEventLog) -> list[tuple[str, dict]]:
    return [(e.type, json.loads(json.dumps(e.to_dict()["data"]))) for e in log.events() if e.source == "console"]


def test_a_rerun_reads_the_log_once_and_a_posted_event_at_once(console_env):
    """Issue 6 follow-up (interaction latency): the page, the queue, transcript, media and links panels share one
    read of the log per script run (five round trips to a busy ingest before), and what a callback posted is read
    back in the same run."""
    fake, log = console_env
    at = new_app().run()
    before = fake.reads
    at.button(key="answer_next").click().run()
    assert not at.exception
    assert at.button(key="close_call-c1")  # the answer drew the call in the run the click caused
    # One read before posting (a double click answers once); the posted event is folded in without another.
    assert fake.reads - before == 1
    before = fake.reads
    at.run()
    assert not at.exception
    assert fake.reads - before == 1
    log.append("runner", ev.CallerUtterance(0, "The roof is on fire.", 0.0), "c1")
    at.radio(key="urgency-c1").set_value("spoed").run()
    assert any("The roof is on fire." in str(m.value) for m in at.markdown)
    at.button(key="close_call-c1").click().run()
    assert not at.exception
    assert [e.type for e in log.events() if e.source == "console"] == ["call.answered", "intake.urgency", "call.closed"]
    assert at.button(key="submit_rsme-c1")  # the close drew the RSME in the run the click caused


def test_the_answer_pauses_once_between_the_form_and_the_rest_of_the_call_screen(console_env, monkeypatch):
    """Issue 6 (interaction latency): the Answer's run pauses after the header, form and transcript, so the browser
    mounts them in a pass of their own before the live view, photos and related reports arrive; the reruns that
    follow (every widget change) do not pause."""
    import sys
    import time

    import workbench.console.links_panel as links_module

    paused: list[float] = []
    order: list[str] = []
    real_sleep, real_links_panel = time.sleep, links_module.links_panel

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_code.co_name == "render_active":
            paused.append(seconds)
            order.append("pause")
        real_sleep(seconds)

    def links_panel(*args, **kwargs) -> None:
        order.append("related reports")
        real_links_panel(*args, **kwargs)

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(links_module, "links_panel", links_panel)  # app.py imports it anew on every run
    at = new_app().run()
    assert paused == []  # the queue screen
    at.button(key="answer_next").click().run()
    assert not at.exception and at.button(key="close_call-c1")
    assert len(paused) == 1 and 0 < paused[0] <= 0.1
    assert order == ["pause", "related reports"]  # the related reports after the pause, not with the form
    at.radio(key="urgency-c1").set_value("spoed").run()
    at.run()
    assert not at.exception
    assert len(paused) == 1


def test_dispatcher_handles_a_call_and_every_action_is_logged_exactly(console_env):
    fake, log = console_env
    at = new_app().run()
    assert not at.exception
    assert at.button(key="answer_next").label == "Answer 06-1234 5678"

    at.button(key="answer_next").click().run()
    assert not at.exception
    # The scenario's four required items, in the scenario's order, with their labels.
    items = at.pills(key="items-c1")
    assert items.options == ["Exact location / address", "People trapped or inside", "Size of fire or smoke",
                             "Caller is safe"]
    assert items.value == []
    assert at.radio(key="urgency-c1").options == ["spoed (urgent, prio 1)", "nu (now, prio 2)", "later (later, prio 3)"]
    # The checklist is the only ground truth the page shows.
    page_text = " ".join(str(m.value) for m in at.markdown)
    assert "Kerkstraat 12, Delft" not in page_text

    log.append("runner", ev.CallerUtterance(0, "There is smoke coming from the house.", 0.0), "c1")
    at.run()
    assert any("[+0 s] There is smoke coming from the house." in str(m.value) for m in at.markdown)

    at.selectbox(key="incident_type-c1").set_value("fire").run()
    at.radio(key="urgency-c1").set_value("nu").run()
    at.radio(key="urgency-c1").set_value("spoed").run()
    at.text_input(key="location-c1").input("Kerkstraat 12, Delft").run()
    at.pills(key="items-c1").select("location").run()
    at.pills(key="items-c1").select("fire_size").run()
    at.pills(key="items-c1").select("trapped").run()
    at.pills(key="items-c1").unselect("trapped").run()
    assert at.pills(key="items-c1").value == ["location", "fire_size"]
    assert at.selectbox(key="disagree_aspect-c1").disabled
    at.checkbox(key="disagree_flag-c1").check().run()
    at.selectbox(key="disagree_aspect-c1").set_value("fire_smoke_size").run()
    at.text_area(key="notes-c1").input("more smoke on video than described").run()
    assert not at.exception
    at.button(key="close_call-c1").click().run()
    assert not at.exception

    assert at.button(key="submit_rsme-c1").disabled
    at.slider(key="rsme-c1").set_value(57).run()
    assert at.number_input(key="rsme_number-c1").value == 57
    assert not at.button(key="submit_rsme-c1").disabled
    at.button(key="submit_rsme-c1").click().run()
    assert not at.exception
    assert any("No calls in the queue." in str(c.value) for c in at.caption)

    assert console_events(log) == [
        ("call.answered", {"station": "station-7"}),
        ("intake.incident_type", {"incident_type": "fire"}),
        ("intake.urgency", {"urgency": "nu"}),
        ("intake.urgency", {"urgency": "spoed"}),
        ("intake.location", {"location": "Kerkstraat 12, Delft"}),
        ("intake.item_checked", {"item": "location", "checked": True}),
        ("intake.item_checked", {"item": "fire_size", "checked": True}),
        ("intake.item_checked", {"item": "trapped", "checked": True}),
        ("intake.item_checked", {"item": "trapped", "checked": False}),
        ("intake.disagreement_flag", {"flagged": True, "aspect": ""}),
        ("intake.disagreement_flag", {"flagged": True, "aspect": "fire_smoke_size"}),
        ("intake.notes", {"notes": "more smoke on video than described"}),
        ("call.closed", {
            "incident_type": "fire", "urgency": "spoed", "location": "Kerkstraat 12, Delft",
            "items_gathered": ["location", "fire_size"], "disagreement_flagged": True,
            "disagreement_aspect": "fire_smoke_size", "notes": "more smoke on video than described",
        }),
        ("rating.rsme", {"value": 57.0}),
    ]
    assert all(body["source"] == "console" and body["call_id"] == "c1" for body in fake.posted)


def test_exact_value_box_drives_the_rating(console_env):
    fake, log = console_env
    log.append("console", ev.CallAnswered("station-1"), "c1")
    log.append("console", ev.CallClosed("", "", "", [], False, "", ""), "c1")
    at = new_app().run()
    at.number_input(key="rsme_number-c1").set_value(113).run()
    assert at.slider(key="rsme-c1").value == 113
    at.button(key="submit_rsme-c1").click().run()
    assert console_events(log)[-1] == ("rating.rsme", {"value": 113.0})


def test_a_reloaded_page_restores_the_intake_from_the_log_and_an_ad_hoc_call_gets_the_whole_taxonomy(console_env):
    fake, log = console_env
    log.append("ingest", ev.CallCreated("", "", "video", "walk-in"), "c2")
    log.append("console", ev.CallAnswered("station-1"), "c2")
    log.append("console", ev.IntakeUrgency("later"), "c2")
    log.append("console", ev.IntakeItemChecked("animals", True), "c2")
    log.append("console", ev.IntakeDisagreementFlag(True, "people"), "c2")
    at = new_app().run()
    assert not at.exception
    assert at.radio(key="urgency-c2").value == "later"
    assert at.pills(key="items-c2").value == ["animals"]
    assert len(at.pills(key="items-c2").options) == 12  # an ad-hoc call: the whole taxonomy
    assert at.selectbox(key="disagree_aspect-c2").value == "people"
    # Closing without touching anything posts the close with the restored values and nothing else.
    at.button(key="close_call-c2").click().run()
    assert console_events(log)[-1] == ("call.closed", {
        "incident_type": "", "urgency": "later", "location": "", "items_gathered": ["animals"],
        "disagreement_flagged": True, "disagreement_aspect": "people", "notes": "",
    })
    assert [t for t, _ in console_events(log)].count("call.closed") == 1


def test_session_from_query_param_and_waiting_page_without_a_session(console_env, monkeypatch):
    fake, log = console_env
    start_another_session(fake, "s-other", "P02", "adhoc")
    at = new_app()
    at.query_params["session"] = SID
    at.run()
    assert any(f"`{SID}`" in str(m.value) for m in at.sidebar.markdown)

    at = new_app().run()  # newest live session
    assert any("`s-other`" in str(m.value) for m in at.sidebar.markdown)

    fake.logs.clear()
    at = new_app().run()
    assert not at.exception
    assert any("Waiting for a session" in str(i.value) for i in at.info)


def test_ingest_client_reports_the_ingests_error_message(fake_ingest):
    fake, url = fake_ingest
    client = IngestClient(url)
    with pytest.raises(IngestError, match="404 no such session") as info:
        client.events("missing")
    assert info.value.status == 404
    with pytest.raises(IngestError, match="unreachable"):
        IngestClient(f"http://127.0.0.1:{free_port()}", timeout_s=1).health()


def photo(pid: str) -> ev.MediaPhotoReceived:
    return ev.MediaPhotoReceived(pid, f"media/c1/{pid}.jpg", f"media/c1/{pid}-display.jpg", "ab" * 32, 1000, "JPEG",
                                 640, 480, f"{pid}.jpg")


def test_hold_resume_photo_viewer_units_and_confidence_are_events_and_survive_a_reload(console_env):
    fake, log = console_env
    log.append("ingest", ev.CallCreated("collision", "live-video", "audio", "06-8765 4321"), "c2")
    log.append("console", ev.CallAnswered("station-7"), "c1")
    log.append("ingest", photo("p1"), "c1")
    log.append("ingest", photo("p2"), "c1")
    at = new_app().run()
    assert not at.exception
    at.button(key="photo_open_p2-c1").click().run()
    at.button(key="photo_enlarge-c1").click().run()
    assert at.button(key="photo_enlarge-c1").label == "Shrink"
    at.button(key="photo_open_p1-c1").click().run()  # another photo: the viewer switches (and is not enlarged)
    at.button(key="photo_close-c1").click().run()
    at.multiselect(key="units-c1").select("fire_engine").run()
    at.multiselect(key="units-c1").select("ambulance").run()
    at.checkbox(key="disagree_flag-c1").check().run()
    assert not at.exception

    # Hold: the queue comes back with the waiting call to answer and the held one to resume.
    at.button(key="hold-c1").click().run()
    assert at.button(key="answer_next").label == "Answer 06-8765 4321"
    at.button(key="answer_next").click().run()
    assert at.button(key="hold-c2") is not None
    at.button(key="hold-c2").click().run()
    at.button(key="resume-c1").click().run()
    assert not at.exception

    # A fresh page (reload, or a restarted console) rebuilds the form from the log.
    at = new_app().run()
    assert at.multiselect(key="units-c1").value == ["fire_engine", "ambulance"]
    assert at.checkbox(key="disagree_flag-c1").value is True
    at.text_area(key="notes-c1").input("two engines").run()
    at = new_app().run()
    assert at.text_area(key="notes-c1").value == "two engines"

    assert [(e.type, e.call_id) for e in log.events() if e.source == "console" and e.call_id == "c2"] == [
        ("call.answered", "c2"), ("call.held", "c2"), ("console.audio", "c2")]
    c1 = [(e.type, json.loads(json.dumps(e.to_dict()["data"]))) for e in log.events()
          if e.source == "console" and e.call_id == "c1"][1:]
    assert c1 == [
        ("photo.opened", {"photo_id": "p2"}),
        ("photo.enlarged", {"photo_id": "p2", "enlarged": True}),
        ("photo.opened", {"photo_id": "p1"}),
        ("photo.closed", {"photo_id": "p1"}),
        ("intake.units", {"units": ["fire_engine"]}),
        ("intake.units", {"units": ["fire_engine", "ambulance"]}),
        ("intake.disagreement_flag", {"flagged": True, "aspect": ""}),
        ("call.held", {"station": "station-7"}),
        ("console.audio", {"state": "muted", "reason": "hold"}),
        ("call.resumed", {"station": "station-7"}),
        ("console.audio", {"state": "unmuted", "reason": "resume"}),
        ("intake.notes", {"notes": "two engines"}),
    ]


def test_confidence_rating_is_posted(console_env):
    fake, log = console_env
    log.append("console", ev.CallAnswered("station-7"), "c1")
    at = new_app().run()
    at.checkbox(key="disagree_flag-c1").check().run()
    at.button_group(key="disagree_confidence-c1").set_value(4).run()
    assert not at.exception
    assert console_events(log)[-1] == ("intake.disagreement_confidence", {"confidence": 4})
    at = new_app().run()
    assert at.button_group(key="disagree_confidence-c1").value == 4


def test_nasa_tlx_follows_the_end_of_a_block_with_the_optional_pairwise_weights(console_env, monkeypatch):
    from workbench.domain.instruments import TLX_PAIRS, TLX_SUBSCALES

    fake, log = console_env
    monkeypatch.setenv("WORKBENCH_TLX_WEIGHTS", "1")
    log.append("runner", ev.BlockStarted("live-video", "video", 0))
    at = new_app().run()
    assert at.button(key="answer_next")
    log.append("runner", ev.BlockEnded("live-video"))
    at.run()
    assert at.button(key="submit_tlx-live-video").disabled
    values = dict(zip(TLX_SUBSCALES, (70, 10, 55, 30, 60, 25)))
    for name, value in values.items():
        at.slider(key=f"tlx_{name}-live-video").set_value(value).run()
    assert not at.exception
    assert not at.button(key="submit_tlx-live-video").disabled
    at.button(key="submit_tlx-live-video").click().run()
    assert console_events(log)[-1] == ("rating.nasa_tlx", {"block_id": "live-video", **values})

    assert at.button(key="submit_tlxw-live-video").disabled
    for i, (a, b) in enumerate(TLX_PAIRS):
        at.radio(key=f"tlxw_{i}-live-video").set_value(b if i % 2 else a).run()
    at.button(key="submit_tlxw-live-video").click().run()
    assert not at.exception
    choices = [b if i % 2 else a for i, (a, b) in enumerate(TLX_PAIRS)]
    assert console_events(log)[-1] == ("rating.nasa_tlx_weights", {"block_id": "live-video", "choices": choices})
    assert at.button(key="answer_next")  # back to the queue
    assert [t for t, _ in console_events(log)].count("rating.nasa_tlx") == 1
    assert all(body["call_id"] is None for body in fake.posted)


def test_drt_setting_shows_live_performance_from_the_log(console_env, monkeypatch):
    fake, log = console_env
    monkeypatch.setenv("WORKBENCH_DRT", "1")
    at = new_app().run()
    assert not at.exception
    assert any("DRT: no stimuli yet" in str(c.value) for c in at.sidebar.caption)
    for i, (onset, response) in enumerate(((10_000.0, 10_050.0), (14_000.0, 14_300.0), (18_500.0, 21_100.0))):
        log.append("console", ev.DrtStimulus("r1", i, "visual", onset - 2, onset, 5.0, 0.7))
        log.append("console", ev.DrtResponse("r1", i, response, response - onset, "key"))
    at.run()
    assert any("DRT: 3 stimuli · 33% hits · mean RT 300 ms" in str(c.value) for c in at.sidebar.caption)


def test_snapshot_and_prompts_to_the_caller_from_the_console(console_env):
    fake, log = console_env
    log.append("console", ev.CallAnswered("station-7"), "c1")
    at = new_app().run()
    assert not at.exception
    assert not [img for img in at.get("image") if "/snapshots/" in img.value[0]]  # none before a request
    at.button(key="snapshot-c1").click().run()
    at.button(key="snapshot-c1").click().run()
    assert not at.exception
    assert any("Snapshot taken: sharpness 63, brightness 101, motion 2.2" in str(c.value) for c in at.caption)
    # The gallery shows the stills, newest first, with their quality figures (the first one is blurred).
    gallery = [img for img in at.get("image") if "/snapshots/" in img.value[0]]
    assert [img.value[0].rsplit("/", 1)[-1] for img in gallery] == ["snapshot-0002.jpg", "snapshot-0001.jpg"]
    assert [img.captions[0] for img in gallery] == ["#2 · 640x480 · sharpness 63 · brightness 101 · motion 2.2",
                            "#1 · 640x480 · sharpness 32 (blurred) · brightness 101 · motion 2.2"]
    for key in ("prompt_photo-c1", "prompt_switch_camera-c1", "prompt_end_video-c1"):
        at.button(key=key).click().run()
    assert not at.exception
    log.append("ingest", ev.CallerPromptDelivered(1, 350.0), "c1")
    at.run()
    lines = [str(c.value) for c in at.caption]
    assert any(line.startswith("End the video · ") and line.endswith("not yet on the caller's screen") for line in lines)
    assert any(line.startswith("Ask for a photo · ") and line.endswith(" on the caller's screen")
               and "not yet" not in line for line in lines)
    assert [(t, d) for t, d in console_events(log) if t == "dispatcher.prompt"] == [
        ("dispatcher.prompt", {"prompt_id": 1, "prompt": "photo", "message": ""}),
        ("dispatcher.prompt", {"prompt_id": 2, "prompt": "switch_camera", "message": ""}),
        ("dispatcher.prompt", {"prompt_id": 3, "prompt": "end_video", "message": ""}),
    ]
    assert [e.data.reason for e in log.events() if e.type == "media.snapshot"] == ["request", "request"]


def test_typing_zero_in_the_exact_value_box_is_a_rating(console_env):
    # 0 ("absolutely no effort") is on the scale: the box starts empty, so typing 0 counts (found by a fresh user).
    fake, log = console_env
    log.append("console", ev.CallAnswered("station-1"), "c1")
    log.append("console", ev.CallClosed("", "", "", [], False, "", ""), "c1")
    at = new_app().run()
    assert at.number_input(key="rsme_number-c1").value is None
    assert at.button(key="submit_rsme-c1").disabled
    at.number_input(key="rsme_number-c1").set_value(0).run()
    assert not at.button(key="submit_rsme-c1").disabled
    at.button(key="submit_rsme-c1").click().run()
    assert console_events(log)[-1] == ("rating.rsme", {"value": 0.0})


def test_a_reload_stays_on_the_session_shown_while_another_one_starts(console_env):
    # Found by a fresh user: the README's own `curl -X POST /api/calls` during the demo starts an ad-hoc session,
    # and a reload used to show that newer session instead of the one the dispatcher was working in.
    fake, log = console_env
    at = new_app().run()
    assert at.query_params["shown"] == SID
    start_another_session(fake, "s-adhoc", "adhoc", "")
    reloaded = new_app()
    reloaded.query_params["shown"] = SID
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.button(key="answer_next")  # still the demo session's waiting call
    assert new_app().run().query_params["shown"] == "s-adhoc"  # a page without it takes the newest, as before
    log.append("ingest", ev.SessionEnded("completed"))
    moved = new_app()
    moved.query_params["shown"] = SID
    moved.run()
    assert moved.query_params["shown"] == "s-adhoc"  # the shown session ended: on to the newest live one
