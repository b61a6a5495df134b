"""The participant flow in the dispatcher console (consent, instructions, practice, break, end questionnaire) under
``AppTest``, against the fake ingest of ``test_console_apptest`` plus its control endpoint; the runner's side is
played by appending its events to the log. Also the pure parts: the flow's screen choice, the questionnaire's
validation, the runner waiting for the questionnaire, and the covariates in ``sessions.csv``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from streamlit.testing.v1 import AppTest

from tests.conftest import free_port
from tests.test_console_apptest import FakeIngest
from workbench.console import participant_viewmodel as pvm
from workbench.console.launch import APP_PATH
from workbench.domain import events as ev
from workbench.domain.session_state import replay
from workbench.store.eventlog import MemoryEventLog

SID = "s-flow"

SCENARIO = """\
id = "flow-test"
[[blocks]]
id = "practice"
modality = "audio"
calls = ["p1"]
practice = true
break_s = 30
[[blocks]]
id = "main"
modality = "audio"
calls = ["m1"]
[[calls]]
id = "p1"
arrival_s = 0
utterances = [{ at_s = 0, text = "This is a practice call." }]
[calls.truth]
incident_type = "fire"
urgency = "nu"
[[calls]]
id = "m1"
arrival_s = 0
utterances = [{ at_s = 0, text = "This is a scored call." }]
[calls.truth]
incident_type = "medical"
urgency = "spoed"
"""


class FlowIngest(FakeIngest):
    """The fake ingest with ``POST /api/sessions/{sid}/control`` (start writes ``session.control``, abort writes
    ``session.ended``; 409 once ended), as the real one does."""

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/api/sessions/{sid}/control", self.control)
        return app

    async def control(self, request: web.Request) -> web.Response:
        log = self.logs[request.match_info["sid"]]
        body = await request.json()
        self.posted.append({"control": body["action"]})
        if any(e.type == "session.ended" for e in log.events()):
            return web.json_response({"error": "session has ended already"}, status=409)
        if body["action"] == "abort":
            event = log.append("ingest", ev.SessionEnded("aborted"))
        else:
            event = log.append("ingest", ev.SessionControl(body["action"], "", "", "", []))
        return web.json_response({"event": event.to_dict()})


@pytest.fixture()
def flow_env(tmp_path, monkeypatch) -> Iterator[tuple[FlowIngest, MemoryEventLog]]:
    """A session of the two-block scenario, not started yet, and the console configured for the flow."""
    fake = FlowIngest()
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
    log = MemoryEventLog(SID)
    log.append("ingest", ev.SessionStarted("P07", "flow-test", "00" * 32, 1, ["practice", "main"], "0.1.0"))
    fake.logs[SID] = log
    (tmp_path / SID).mkdir()
    (tmp_path / SID / "scenario.toml").write_text(SCENARIO)
    for name in ("WORKBENCH_SESSION", "WORKBENCH_INGEST_PUBLIC_URL", "WORKBENCH_DRT", "WORKBENCH_TLX_WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_INGEST_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WORKBENCH_RECORDINGS", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_PARTICIPANT_FLOW", "1")
    yield fake, log
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def new_app() -> AppTest:
    return AppTest.from_file(str(APP_PATH), default_timeout=30)


def flow_events(log: MemoryEventLog) -> list[tuple[str, dict]]:
    """``(type, data)`` of the participant-flow events and the session's start/end controls, in log order."""
    keep = ("participant.", "session.control", "session.ended")
    return [(e.type, json.loads(json.dumps(e.to_dict()["data"]))) for e in log.events() if e.type.startswith(keep)]


def texts(at: AppTest) -> str:
    return " ".join(str(x.value) for kind in (at.markdown, at.info, at.success, at.error, at.caption) for x in kind)


def rate_block(at: AppTest, block: str) -> None:
    from workbench.domain.instruments import TLX_SUBSCALES

    for name in TLX_SUBSCALES:
        at.slider(key=f"tlx_{name}-{block}").set_value(40).run()
    at.button(key=f"submit_tlx-{block}").click().run()


def handle_call(at: AppTest, cid: str) -> None:
    at.button(key="answer_next").click().run()
    at.radio(key=f"urgency-{cid}").set_value("nu").run()
    at.button(key=f"close_call-{cid}").click().run()
    at.slider(key=f"rsme-{cid}").set_value(30).run()
    at.button(key=f"submit_rsme-{cid}").click().run()


def test_the_whole_flow_consent_instructions_practice_break_questionnaire_is_logged_step_by_step(flow_env):
    fake, log = flow_env
    sha = pvm.consent_sha256()
    at = new_app().run()
    assert not at.exception
    assert at.button(key="flow_consent_yes") and not [b for b in at.button if b.key == "answer_next"]
    assert "Taking part in this study" in texts(at)
    assert flow_events(log) == [("participant.step", {"step": "consent", "phase": "shown", "block_id": ""})]

    at.button(key="flow_consent_yes").click().run()
    assert not at.exception
    assert at.button(key="flow_start").label == "Start the practice block"
    assert "practice block" in texts(at)
    at.button(key="flow_start").click().run()
    assert not at.exception

    # The runner, released by the start: the practice block and its call.
    log.append("runner", ev.BlockStarted("practice", "audio", 0))
    log.append("runner", ev.BlockPractice("practice"))
    log.append("ingest", ev.CallCreated("p1", "practice", "audio", "caller 1"), "c1")
    at.run()
    assert at.button(key="answer_next")
    assert "Practice block." in texts(at)
    handle_call(at, "c1")
    log.append("runner", ev.BlockEnded("practice"))
    at.run()
    rate_block(at, "practice")
    assert not at.exception

    log.append("runner", ev.BreakStarted("practice", 30.0))
    at.run()
    assert not at.exception
    assert "Break after block 1 of 2. The next block starts in about" in texts(at)
    assert not [b for b in at.button if b.key == "answer_next"]

    log.append("runner", ev.BreakEnded("practice"))
    log.append("runner", ev.BlockStarted("main", "audio", 1))
    log.append("ingest", ev.CallCreated("m1", "main", "audio", "caller 2"), "c2")
    at.run()
    assert "Practice block." not in texts(at)
    handle_call(at, "c2")
    log.append("runner", ev.BlockEnded("main"))
    at.run()
    rate_block(at, "main")
    assert at.selectbox(key="flow_age_band")

    at.button(key="flow_submit_questionnaire").click().run()  # nothing answered yet
    assert "Not submitted: please answer: age band, years of experience, discipline." in texts(at)
    at.selectbox(key="flow_age_band").set_value("35-44").run()
    at.number_input(key="flow_experience").set_value(12).run()
    at.radio(key="flow_discipline").set_value("multidisciplinary").run()
    at.button(key="flow_submit_questionnaire").click().run()
    assert not at.exception
    assert "Thank you for taking part." in texts(at)

    step = lambda s, p="shown", b="": ("participant.step", {"step": s, "phase": p, "block_id": b})  # noqa: E731
    assert flow_events(log) == [
        step("consent"),
        ("participant.consent", {"given": True, "text_sha256": sha}),
        step("instructions"),
        step("instructions", "done"),
        ("session.control", {"action": "start", "checkpoint": "", "scenario_call_id": "", "caller_label": "",
                             "utterances": []}),
        step("practice", b="practice"),
        step("break", b="practice"),
        step("questionnaire"),
        ("participant.questionnaire", {"age_band": "35-44", "experience_years": 12,
                                       "discipline": "multidisciplinary"}),
        step("end"),
    ]
    # The runner ends the session after the questionnaire; the page says goodbye and waits for the next session.
    log.append("ingest", ev.SessionEnded("completed"))
    at.run()
    assert "Thank you for taking part." in texts(at)
    assert "Waiting for a session to start" in texts(at)


def test_refusal_records_the_refusal_only_and_ends_the_session(flow_env):
    fake, log = flow_env
    at = new_app().run()
    at.button(key="flow_consent_no").click().run()
    assert not at.exception
    assert "You chose not to take part. Nothing further is recorded." in texts(at)
    assert [e.type for e in log.events()] == [
        "session.started", "participant.step", "participant.consent", "session.ended",
    ]
    assert log.events()[2].data == ev.ParticipantConsent(False, pvm.consent_sha256())
    assert log.events()[3].data == ev.SessionEnded("aborted")
    at.run()  # a rerun posts nothing more
    assert len(log.events()) == 4
    assert [b for b in at.button if b.key == "answer_next"] == []


def test_a_reloaded_page_resumes_the_flow_where_the_log_says(flow_env):
    fake, log = flow_env
    at = new_app().run()
    at.button(key="flow_consent_yes").click().run()
    reloaded = new_app().run()  # a new browser tab: new session_state, same log
    assert reloaded.button(key="flow_start")
    assert [t for t, d in flow_events(log)].count("participant.step") == 2  # consent, instructions: once each


def test_flow_screen_order_and_questionnaire_validation():
    events = [ev.SessionStarted("P01", "s", "00" * 32, 1, ["a"], "0"), ]
    log = MemoryEventLog("s")
    for payload in events:
        log.append("ingest", payload)
    state = replay(log.events())
    assert pvm.flow_screen(state, "queue") == "consent"
    log.append("console", ev.ParticipantConsent(True, pvm.consent_sha256()))
    assert pvm.flow_screen(replay(log.events()), "queue") == "instructions"
    log.append("console", ev.ParticipantStep("instructions", "done", ""))
    assert pvm.flow_screen(replay(log.events()), "queue") == ""
    log.append("runner", ev.BlockStarted("a", "audio", 0))
    log.append("runner", ev.BlockEnded("a"))
    assert pvm.flow_screen(replay(log.events()), "tlx") == ""  # the rating comes first
    assert pvm.flow_screen(replay(log.events()), "queue") == "questionnaire"

    with pytest.raises(ev.EventValidationError, match="years of experience must be whole years"):
        pvm.questionnaire_payload("25-34", 2.5, "police")
    with pytest.raises(ev.EventValidationError, match="discipline must be one of"):
        pvm.questionnaire_payload("25-34", 2, "coastguard")
    with pytest.raises(ev.EventValidationError, match="experience_years must be a whole number 0-50"):
        pvm.questionnaire_payload("25-34", 51, "police")
    assert pvm.questionnaire_payload("65+", 30.0, "fire") == ev.ParticipantQuestionnaire("65+", 30, "fire")
    with pytest.raises(ev.EventValidationError, match="text_sha256"):
        ev.payload_from_dict("participant.consent", {"given": True, "text_sha256": "abc"})
    with pytest.raises(ev.EventValidationError, match="step must be one of"):
        ev.payload_from_dict("participant.step", {"step": "lunch", "phase": "shown", "block_id": ""})


def test_the_break_countdown_text():
    assert pvm.break_text(41.2, "block 1 of 2") == "Break after block 1 of 2. The next block starts in about 42 s."
    assert pvm.break_text(0.0, "block 1 of 2").endswith("starts any moment.")


def test_covariates_reach_sessions_csv_and_the_codebook(tmp_path: Path):
    from analysis.codebook import render_codebook
    from analysis.run import analyze
    from tests.test_analysis import FakeClock, make_session

    clock = FakeClock()
    folder, log = make_session(tmp_path / "rec", "s1", "P01", ["b-photo", "b-video"], clock)
    log.append("console", ev.ParticipantStep("instructions", "shown", ""))
    log.append("console", ev.ParticipantConsent(True, pvm.consent_sha256()))
    clock.advance(42.5)
    log.append("console", ev.ParticipantStep("instructions", "done", ""))
    log.append("console", ev.ParticipantQuestionnaire("45-54", 17, "ambulance"))
    log.append("ingest", ev.SessionEnded("completed"))
    make_session(tmp_path / "rec", "s2", "P02", ["b-photo", "b-video"], clock)  # no participant flow

    result = analyze(tmp_path / "rec", tmp_path / "out")
    rows = result.sessions.set_index("session_id")
    assert rows.loc["s1", "consent"] == True  # noqa: E712 - a pandas nullable boolean
    assert rows.loc["s1", "consent_text_sha256"] == pvm.consent_sha256()
    assert (rows.loc["s1", "age_band"], rows.loc["s1", "experience_years"], rows.loc["s1", "discipline"]) == (
        "45-54", 17, "ambulance")
    assert rows.loc["s1", "instructions_s"] == 42.5
    assert all(pd_isna(rows.loc["s2", c]) for c in ("consent", "age_band", "experience_years", "discipline"))
    header = (tmp_path / "out" / "sessions.csv").read_text().splitlines()[0].split(",")
    assert header[-6:] == ["consent", "consent_text_sha256", "age_band", "experience_years", "discipline",
                           "instructions_s"]
    codebook = render_codebook()
    assert "| `experience_years` | integer | years |" in codebook
    assert "participant.questionnaire" in codebook


def pd_isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_the_labs_consent_text_is_shown_and_its_hash_recorded(flow_env, tmp_path, monkeypatch):
    fake, log = flow_env
    text = "**Toestemming**\n\nJe doet mee aan een oefening van de meldkamer. Ga je akkoord?\n"
    consent = tmp_path / "consent.md"
    consent.write_text(text, encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_CONSENT_FILE", str(consent))
    at = new_app().run()
    assert "Je doet mee aan een oefening van de meldkamer." in texts(at)
    assert "Taking part in this study" not in texts(at)
    at.button(key="flow_consent_yes").click().run()
    assert log.events()[-2].data == ev.ParticipantConsent(True, pvm.consent_sha256(text))
    assert pvm.consent_sha256(text) != pvm.consent_sha256()


def test_an_unusable_consent_file_blocks_the_answer_and_says_why(flow_env, tmp_path, monkeypatch):
    fake, log = flow_env
    bad = tmp_path / "consent.md"
    bad.write_bytes(b"\xff\xfe not utf-8")
    monkeypatch.setenv("WORKBENCH_CONSENT_FILE", str(bad))
    at = new_app().run()
    assert "The consent text cannot be shown" in texts(at) and "not UTF-8" in texts(at)
    assert [b for b in at.button if b.key in ("flow_consent_yes", "flow_consent_no")] == []
    assert [e.type for e in log.events()] == ["session.started"]
    with pytest.raises(pvm.ConsentTextError, match="the file is empty"):
        (tmp_path / "empty.md").write_text("  \n")
        pvm.read_consent_text(tmp_path / "empty.md")


def test_workbench_run_refuses_a_missing_consent_file(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "workbench.cli", "run", "experiments/demo/scenario.toml",
                           "--participant-flow", "--consent", str(tmp_path / "nope.md")],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert done.returncode == 2
    assert "--consent:" in done.stderr and "nope.md: cannot read it" in done.stderr
