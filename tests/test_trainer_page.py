"""Issue 7: the trainer's page under ``streamlit.testing.v1.AppTest`` against the real ingest (in a thread, with
access codes): the access-code gate, a station's live view and its controls landing in the session's log as
``session.control`` events, and the scenario library with its validation errors and previews."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, free_port
from workbench.console.ingest_client import IngestClient
from workbench.console.trainer_launch import TRAINER_PATH
from workbench.domain import events as ev
from workbench.domain.roles import AccessCodes
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store import access_codes
from workbench.store.recordings import Recordings

DEMO = (REPO / "experiments" / "demo" / "scenario.toml").read_text(encoding="utf-8")


class Lab:
    """A real ingest with access codes, served from a thread; ``trainer`` is a client with the trainer's code."""

    def __init__(self, tmp: Path) -> None:
        self.codes_path = tmp / "lab" / "access.json"
        self.codes: AccessCodes = access_codes.load_or_create(self.codes_path)[0]
        self.recordings = tmp / "recordings"
        self.library = tmp / "library"
        shutil.copytree(REPO / "experiments", self.library)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.handle = None
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            settings = IngestSettings(port=self.port, recordings=self.recordings, access=self.codes)
            self.handle = self.loop.run_until_complete(start_ingest(settings, Recordings(self.recordings)))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        assert ready.wait(30), "ingest did not start"
        self.url = f"http://127.0.0.1:{self.port}"
        self.trainer = IngestClient(self.url, access=self.codes.trainer)

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("WORKBENCH_INGEST_URL", self.url)
        monkeypatch.setenv("WORKBENCH_CONSOLE_URL", "http://127.0.0.1:8501")
        monkeypatch.setenv("WORKBENCH_RECORDINGS", str(self.recordings))
        monkeypatch.setenv("WORKBENCH_LIBRARY", str(self.library))
        monkeypatch.setenv("WORKBENCH_ACCESS_FILE", str(self.codes_path))
        monkeypatch.setenv("WORKBENCH_RUNNER_LOGS", str(self.codes_path.parent / "runner-logs"))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.handle.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture()
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    lab = Lab(tmp_path)
    lab.env(monkeypatch)
    try:
        yield lab
    finally:
        lab.stop()


def _open(lab: Lab) -> AppTest:
    at = AppTest.from_file(str(TRAINER_PATH), default_timeout=60).run()
    assert not at.exception, at.exception
    at.text_input(key="access_code_trainer").input(lab.codes.trainer)
    at.button(key="access_open_trainer").click().run()
    assert not at.exception, at.exception
    return at


def test_gate_refuses_other_roles_codes_and_logs_it(lab: Lab) -> None:
    at = AppTest.from_file(str(TRAINER_PATH), default_timeout=60).run()
    assert not at.title or at.title[0].value != "Trainer"
    at.text_input(key="access_code_trainer").input(lab.codes.participant)
    at.button(key="access_open_trainer").click().run()
    assert [e.value for e in at.error] == [
        "A participant's code does not open the trainer's page. This page is for: trainer."]
    assert not any(t.value == "Trainer" for t in at.title)
    at.text_input(key="access_code_trainer").input("guess-guess")
    at.button(key="access_open_trainer").click().run()
    # The trainer's page does not send its own trainer to "the trainer".
    assert [e.value for e in at.error] == [
        "This access code is not valid. Check it with whoever started the workbench: the codes are printed when "
        "`workbench serve` starts and kept in its access-codes file."]
    rows = [json.loads(x) for x in (lab.codes_path.parent / "access-log.jsonl").read_text().splitlines()]
    assert [(r["page"], r["reason"]) for r in rows] == [("trainer", "participant code on the trainer page"),
                                                       ("trainer", "wrong code")]
    assert lab.codes.participant not in (lab.codes_path.parent / "access-log.jsonl").read_text()
    at.text_input(key="access_code_trainer").input(lab.codes.trainer)
    at.button(key="access_open_trainer").click().run()
    assert any(t.value == "Trainer" for t in at.title)
    assert not at.error


def test_station_view_and_controls_reach_the_session_log(lab: Lab) -> None:
    sid = lab.trainer.create_session("P07", scenario_toml=DEMO, session_id="P07-station")
    other = lab.trainer.create_session("P08", scenario_toml=DEMO, session_id="P08-station")  # a second station
    at = _open(lab)
    stations = [c for c in at.markdown if "session `P07-station`" in c.value]
    assert stations and "**waiting for start**" in stations[0].value
    assert any("session `P08-station`" in c.value for c in at.markdown)
    codes = [c.value for c in at.code]
    ticket = lab.codes.session_ticket(sid)
    assert f"http://127.0.0.1:8501/?session={sid}&ticket={ticket}" in codes
    assert at.button(key=f"pause-{sid}").disabled and not at.button(key=f"start-{sid}").disabled

    at.button(key=f"start-{sid}").click().run()
    assert not at.exception, at.exception
    at.button(key=f"pause-{sid}").click().run()
    assert any("session `P07-station` · **paused**" in c.value for c in at.markdown)
    at.selectbox(key=f"inject_call-{sid}").set_value("collision")
    at.button(key=f"inject-{sid}").click().run()
    at.button(key=f"resume-{sid}").click().run()
    at.button(key=f"start-{other}").click().run()
    at.text_input(key=f"adhoc_id-{other}").input("extra-1")
    at.text_input(key=f"adhoc_label-{other}").input("06-0000 1111")
    at.text_area(key=f"adhoc_lines-{other}").input("Help, my neighbour fell.\nShe is breathing.")
    at.button(key=f"inject_adhoc-{other}").click().run()
    assert not at.exception, at.exception

    controls = [e.data for e in lab.trainer.events(sid) if isinstance(e.data, ev.SessionControl)]
    assert [(c.action, c.scenario_call_id) for c in controls] == [
        ("start", ""), ("pause", ""), ("inject", "collision"), ("resume", "")]
    assert at.text_input(key=f"adhoc_id-{other}").value == ""  # emptied for the next ad-hoc call
    adhoc = [e.data for e in lab.trainer.events(other) if isinstance(e.data, ev.SessionControl)][-1]
    assert (adhoc.action, adhoc.scenario_call_id, adhoc.caller_label, adhoc.utterances) == (
        "inject", "extra-1", "06-0000 1111", ["Help, my neighbour fell.", "She is breathing."])

    # What the dispatcher entered shows up against the ground truth.
    call = lab.trainer.create_call(sid, scenario_call_id="house-fire", block_id="live-video", modality="video",
                                   caller_label="06-1234 5678")["call_id"]
    lab.trainer.post_event(sid, call, ev.CallAnswered("station-1"))
    lab.trainer.post_event(sid, call, ev.IntakeUrgency("nu"))
    for i, onset in enumerate((1000.0, 5000.0)):  # two DRT stimuli, the first answered after 350 ms
        lab.trainer.post_event(sid, None, ev.DrtStimulus("r1", i, "visual", onset, onset, 0.0, 1.0))
    lab.trainer.post_event(sid, None, ev.DrtResponse("r1", 0, 1350.0, 350.0, "key"))
    at.run()
    assert [m.value for m in at.metric if m.label == "DRT hit rate"] == ["50%", "off"]  # P07, then P08
    assert any("hit rate 50% (1/2), mean hit RT 350 ms" in c.value for c in at.caption)
    table = at.dataframe[0].value
    row = table[table["call"] == "06-1234 5678 (house-fire)"].iloc[0]
    assert (row["status"], row["urgency"], row["items"]) == ("active", "nu ✗", "0/4")
    assert any("On the dispatcher's screen: **06-1234 5678** (house-fire)" in m.value for m in at.markdown)

    # Once P07's last scenario call has arrived, its inject panel offers the ad-hoc call alone, with no dangling
    # "Or ..." (P08 still has both scenario calls to offer).
    lab.trainer.create_call(sid, scenario_call_id="collision", block_id="live-video", modality="video",
                            caller_label="06-8765 4321")
    at.run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert captions.count("Every scenario call has been played. Inject an ad-hoc call (no ground truth):") == 1
    assert captions.count("Or an ad-hoc call (no ground truth):") == 1
    assert [s.options for s in at.selectbox if s.key == f"inject_call-{other}"] == [["house-fire", "collision"]]
    assert not [s for s in at.selectbox if s.key == f"inject_call-{sid}"]


def test_library_lists_errors_and_previews_and_refuses_a_bad_new_scenario(lab: Lab) -> None:
    broken = lab.library / "broken"
    broken.mkdir()
    (broken / "scenario.toml").write_text(DEMO.replace('urgency = "nu"', 'urgency = "soon"')
                                          .replace('id = "demo"', 'id = "broken"'), encoding="utf-8")
    at = _open(lab)
    labels = [e.label for e in at.expander]
    assert "✗ invalid · broken/scenario.toml" in labels
    assert any(label.startswith("✓ · demo — Demo shift") for label in labels)
    errors = [e.value for e in at.error]
    assert any("calls.1.truth.urgency" in e and "This scenario cannot be played" in e for e in errors), errors
    truth_tables = [d.value for d in at.dataframe if "ground truth" in d.value.columns]
    fire_truth = dict(zip(truth_tables[0]["ground truth"], truth_tables[0][""]))
    assert fire_truth["urgency"] == "spoed" and fire_truth["location"] == "Kerkstraat 12, Delft"
    # A broken scenario cannot be chosen to start a session.
    assert "broken/scenario.toml" not in at.selectbox(key="scenario").options
    at.text_input(key="new_id").input("demo")
    at.text_area(key="new_lines").input("Help")
    at.button[-1].click().run()  # the form's submit button
    assert not at.exception, at.exception
    (message,) = [e.value for e in at.error if "The scenario was not added" in e.value]
    assert "The scenario was not added" in message and "'demo' is taken" in message
    assert "a video block needs a video" in message


def test_debrief_tab_offers_ended_sessions_and_an_ended_station_opens_its_debrief(lab: Lab) -> None:
    from tests.test_debrief import write_session
    from workbench.store.recordings import Recordings as Store

    write_session(lab.recordings)  # s1: P05's photo call k1 against the ground truth, recorded earlier
    Store(lab.recordings).open_session("s1").event_log().append("runner", ev.SessionEnded("completed"))
    lab.trainer.create_session("P09", scenario_toml=DEMO, session_id="P09-running")  # not ended: not offered
    sid = lab.trainer.create_session("P07", scenario_toml=DEMO, session_id="P07-ends")
    lab.trainer.post_event(sid, None, ev.ParticipantConsent(True, "ab" * 32))  # the participant flow so far
    lab.trainer.post_event(sid, None, ev.ParticipantStep("instructions", "shown", ""))
    at = _open(lab)
    assert any(c.value.startswith("Participant flow: consent given · now: instructions (") for c in at.caption)
    assert f"debrief-{sid}" not in [b.key for b in at.button]  # running: no debrief yet

    at.button(key=f"abort-{sid}").click().run()  # the trainer aborts: the station stays, now with its Debrief
    assert not at.exception, at.exception
    assert any(f"session `{sid}` · **ended**" in m.value for m in at.markdown)
    at.button(key=f"debrief-{sid}").click().run()
    assert not at.exception, at.exception
    assert at.session_state["trainer_tab"] == "Debrief"
    picker = at.selectbox(key="trainer_debrief_session")
    assert picker.value == sid
    assert picker.options[0].startswith(f"{sid} · P07 · demo · ended ") and picker.options[0].endswith("(aborted)")
    assert len(picker.options) == 2  # P09's running session is not offered
    assert picker.options[1].startswith("s1 · P05 · lab1 · ended ") and picker.options[1].endswith("(completed)")
    assert any(s.value == f"Debrief of session {sid}" for s in at.subheader)

    picker.set_value("s1").run()  # the earlier session, against its ground truth
    assert not at.exception, at.exception
    assert any(s.value == "Debrief of session s1" for s in at.subheader)
    assert {m.label: m.value for m in at.metric}["Handling time"] == "18.0 s"
    assert {m.label: m.value for m in at.metric}["RSME"] == "57"
    table = next(m.value for m in at.markdown if "| | entered | ground truth | |" in m.value)
    assert "| urgency | spoed | nu | :red[**wrong**] |" in table
    assert any("missed: Suspect" in m.value for m in at.markdown)
