"""Issue 7, the trainer's running view: status, current call, queue, entries against ground truth, DRT and
data-quality warnings from hand-made logs of the demo scenario (values written out, not derived from the code)."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import REPO
from workbench.console import trainer_viewmodel as tvm
from workbench.domain import events as ev
from workbench.store.scenarios import load_scenario

DEMO = load_scenario(REPO / "experiments" / "demo" / "scenario.toml")
S = 1_000_000_000


class Log:
    """Builds a session log: ``add(t_s, payload, call_id)``."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def add(self, t_s: float, payload: ev.Payload, call_id: str | None = None,
            source: str = "ingest") -> "Log":
        self.events.append(ev.Event(ev.EVENT_SCHEMA, "S1", len(self.events) + 1, int(t_s * S),
                                    "2026-11-29T13:00:00+00:00", source, payload.TYPE, call_id, payload))
        return self


def _started() -> Log:
    return Log().add(0, ev.SessionStarted("P07", "demo", "abc", 0, ["live-video"], "0.1"))


def _control(action: str, call: str = "") -> ev.SessionControl:
    return ev.SessionControl(action, "", call, "", [])


def test_status_and_controls_follow_start_pause_resume_and_end() -> None:
    log = _started()
    view = tvm.station_view(log.events, DEMO, 1 * S)
    assert (view.status, view.controls) == ("waiting for start", ("start", "abort"))
    assert view.injectable == ("house-fire", "collision")
    log.add(2, _control("start")).add(2.1, ev.BlockStarted("live-video", "video", 0), source="runner")
    assert tvm.station_view(log.events, DEMO, 3 * S).status == "running"
    log.add(5, _control("pause"))
    view = tvm.station_view(log.events, DEMO, 6 * S)
    assert (view.status, view.controls) == ("paused", ("resume", "inject", "abort"))
    log.add(9, _control("resume"))
    assert tvm.station_view(log.events, DEMO, 10 * S).controls == ("pause", "inject", "abort")
    log.add(11, ev.SessionEnded("aborted"))
    view = tvm.station_view(log.events, DEMO, 12 * S)
    assert (view.status, view.controls) == ("ended", ())
    assert view.controls_log == ("start", "pause", "resume")


def test_an_adhoc_session_has_no_runner_to_steer() -> None:
    log = Log().add(0, ev.SessionStarted("P09", "adhoc", "", 0, [], "0.1"))
    view = tvm.station_view(log.events, None, 1 * S)
    assert (view.status, view.controls, view.injectable) == ("ad hoc", ("abort",), ())


def _working_log() -> Log:
    log = _started().add(1, _control("start")).add(1, ev.BlockStarted("live-video", "video", 0), source="runner")
    log.add(2, ev.CallCreated("house-fire", "live-video", "video", "06-1234 5678"), "c1")
    log.add(2.5, ev.CallLinkOpened("sim"), "c1")
    log.add(3, ev.MediaFirstFrame("video", "VP8", 640, 480, 120.0), "c1")
    log.add(8, ev.CallCreated("collision", "live-video", "video", "06-8765 4321"), "c2")
    log.add(9, ev.CallLinkOpened("sim"), "c2")
    log.add(10, ev.CallAnswered("station-1"), "c1", source="console")
    log.add(10.5, ev.CallerUtterance(0, "There is some smoke.", 0.0), "c1", source="runner")
    log.add(12, ev.IntakeIncidentType("fire"), "c1", source="console")
    log.add(13, ev.IntakeUrgency("nu"), "c1", source="console")
    log.add(14, ev.IntakeItemChecked("location", True), "c1", source="console")
    log.add(15, ev.IntakeItemChecked("trapped", True), "c1", source="console")
    return log


def test_current_call_queue_and_entries_against_ground_truth() -> None:
    view = tvm.station_view(_working_log().events, DEMO, 20 * S)
    assert view.queue_length == 1  # the collision waits
    cur = view.current
    assert (cur.label, cur.scenario_call_id, cur.answered_s, cur.video) == ("06-1234 5678", "house-fire", 10.0,
                                                                            "VP8 640x480")
    assert cur.transcript == ("There is some smoke.",)
    fire, collision = view.entries
    assert (fire.incident_type, fire.incident_type_ok) == ("fire", True)
    assert (fire.urgency, fire.urgency_ok) == ("nu", False)  # truth: spoed
    assert fire.items == "2/4" and fire.status == "active" and fire.truth == "fire · spoed"
    assert (collision.status, collision.urgency_ok, collision.items) == ("waiting", None, "0/3")
    assert view.injectable == ()


def test_caller_without_frames_and_missing_photo_are_warned() -> None:
    log = _working_log()
    # c2 opened its link at 9 s and has sent no frame: flagged from 9 + 15 = 24 s on, not before.
    assert not any("no video frames" in w for w in tvm.station_view(log.events, DEMO, 23 * S).warnings)
    warnings = tvm.station_view(log.events, DEMO, 25 * S).warnings
    assert "06-8765 4321: no video frames 16 s after opening the link" in warnings
    # c1's photo is planned 3 s after the answer (10 s): missing 20 s later (33 s) is flagged.
    assert not any("planned photo" in w for w in tvm.station_view(log.events, DEMO, 32 * S).warnings)
    assert "06-1234 5678: 1 planned photo(s) not received 20 s after they were due" in \
        tvm.station_view(log.events, DEMO, 34 * S).warnings
    log.add(30, ev.MediaPhotoReceived("p1", "a", "b", "0" * 64, 10, "jpeg", 10, 10, ""), "c1")
    assert not any("planned photo" in w for w in tvm.station_view(log.events, DEMO, 34 * S).warnings)
    log.add(31, ev.ManipulationApplied("video_start", "no_frames", 0.0), "c2", source="runner")
    assert "06-8765 4321: no video frames 31 s after opening the link (designed: video_start no_frames)" in \
        tvm.station_view(log.events, DEMO, 40 * S).warnings


def test_drt_performance_and_low_hit_rate_warning() -> None:
    log = _working_log()
    for i in range(10):
        onset = 20_000.0 + i * 4000
        log.add(20 + i * 4, ev.DrtStimulus("r1", i, "visual", onset, onset, 0.0, 1.0), source="console")
        if i < 4:  # 4 hits at 400 ms; the other 6 unanswered
            log.add(20.4 + i * 4, ev.DrtResponse("r1", i, onset + 400, 400.0, "key"), source="console")
    view = tvm.station_view(log.events, DEMO, 70 * S)
    assert (view.drt.stimuli, view.drt.hits, view.drt.hit_rate) == (10, 4, 0.4)
    assert math.isclose(view.drt.mean_hit_rt_ms, 400.0)
    assert view.drt.text() == "hit rate 40% (4/10), mean hit RT 400 ms"
    assert any(w.startswith("DRT: hit rate 40% over 10 stimuli") for w in view.warnings)


def test_control_bodies_for_the_buttons() -> None:
    assert tvm.control_body("pause") == {"action": "pause"}
    assert tvm.control_body("abort") == {"action": "abort", "checkpoint": "now"}
    assert tvm.control_body("inject", scenario_call_id="collision") == {"action": "inject",
                                                                         "scenario_call_id": "collision"}
    assert tvm.control_body("inject", scenario_call_id="extra-1", caller_label="06-0000",
                            lines="Help!\n\nMy neighbour fell.") == {
        "action": "inject", "scenario_call_id": "extra-1", "caller_label": "06-0000",
        "utterances": ["Help!", "My neighbour fell."]}
    with pytest.raises(ValueError, match="inject needs a call"):
        tvm.control_body("inject")
    with pytest.raises(ValueError, match="at least one caller line"):
        tvm.control_body("inject", scenario_call_id="x", caller_label="06")


def test_starting_helpers(tmp_path: Path) -> None:
    assert tvm.check_pseudonym(" P07 ") == "P07"
    with pytest.raises(ValueError, match="never a name"):
        tvm.check_pseudonym("Jan de Vries")
    assert tvm.new_session_id("P07", datetime(2026, 11, 29, 13, 5, 9, tzinfo=timezone.utc)) == "P07-20261129-130509"
    cfg = tvm.TrainerConfig.from_env({"WORKBENCH_INGEST_URL": "http://127.0.0.1:9/", "WORKBENCH_LIBRARY": "lib"})
    cmd = tvm.runner_command("py", Path("lib/a.toml"), cfg, participant="P07", session_id="S9", seed=3)
    assert cmd[:5] == ["py", "-m", "workbench.cli", "run", "lib/a.toml"]
    assert cmd[cmd.index("--ingest") + 1] == "http://127.0.0.1:9" and "--wait-start" in cmd
    assert tvm.station_link("http://h:8501/", "S9", "S9~ab") == "http://h:8501/?session=S9&ticket=S9~ab"
    assert tvm.station_link("http://h:8501", "S9", None) == "http://h:8501/?session=S9"


def test_the_participant_flow_as_the_trainer_sees_it() -> None:
    log = _started()
    assert tvm.station_view(log.events, DEMO, 1 * S).flow == ""  # flow off: nothing to say
    log.add(1, ev.ParticipantStep("consent", "shown", ""), source="console")
    assert tvm.station_view(log.events, DEMO, 4 * S).flow == "now: consent (3 s)"
    log.add(5, ev.ParticipantConsent(True, "ab" * 32), source="console")
    log.add(5, ev.ParticipantStep("consent", "done", ""), source="console")
    log.add(5.5, ev.ParticipantStep("instructions", "shown", ""), source="console")
    log.add(44.5, ev.ParticipantStep("instructions", "done", ""), source="console")
    log.add(100, ev.ParticipantStep("break", "shown", "live-video"), source="console")
    assert tvm.station_view(log.events, DEMO, 112 * S).flow == (
        "consent given · instructions read (39 s) · now: break after block live-video (12 s)")
    log.add(130, ev.ParticipantStep("break", "done", "live-video"), source="console")
    log.add(300, ev.ParticipantQuestionnaire("35-44", 12, "ambulance"), source="console")
    assert tvm.station_view(log.events, DEMO, 301 * S).flow == (
        "consent given · instructions read (39 s) · questionnaire answered")
    refused = _started().add(3, ev.ParticipantConsent(False, "cd" * 32), source="console")
    assert tvm.station_view(refused.events, DEMO, 4 * S).flow == "consent REFUSED"
