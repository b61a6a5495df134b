"""analysis.run.analyze on recordings written by the real store code with a fake clock, so every measure is exact."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from analysis.codebook import render_codebook
from analysis.load import AnalysisInputError
from analysis.run import AnalysisError, AnalysisResult, analyze
from analysis.trials import SESSION_COLUMNS, TRIAL_COLUMNS, Column, frame
from workbench.domain import events as ev
from workbench.domain.session_state import replay
from workbench.store.eventlog import MemoryEventLog
from workbench.store.recordings import Recordings, SessionHeader, sha256_hex

SCENARIO = b"""
id = "lab1"
title = "Two blocks: photo and live video"

[[blocks]]
id = "b-photo"
modality = "photo"
calls = ["p-theft", "p-medical"]

[[blocks]]
id = "b-video"
modality = "video"
calls = ["v-fire", "v-crash"]

[[calls]]
id = "p-theft"
arrival_s = 0
media.photos = [{ file = "photos/bike.jpg", at_s = 2 }]
[calls.truth]
incident_type = "theft"
urgency = "nu"
required_items = ["location", "suspect", "direction", "callback_number"]
congruence = { people = true, location = true }

[[calls]]
id = "p-medical"
arrival_s = 10
[calls.truth]
incident_type = "medical"
urgency = "spoed"
required_items = ["location", "people_involved", "injuries"]
congruence = { people = false, location = true, injuries = false }

[[calls]]
id = "v-fire"
arrival_s = 0
media.video = "videos/fire.mp4"
[calls.truth]
incident_type = "fire"
urgency = "spoed"
required_items = ["location", "trapped", "fire_size", "caller_safe"]
congruence = { fire_smoke_size = false }

[[calls]]
id = "v-crash"
arrival_s = 10
[calls.truth]
incident_type = "traffic_accident"
urgency = "nu"
required_items = ["location", "injuries", "vehicles"]
congruence = { vehicle = true }
"""
"""The scenario copy of the test sessions; its media files do not exist (the analysis must not need them)."""

TRIAL_NAMES = [c.name for c in TRIAL_COLUMNS]


class FakeClock:
    """Monotonic ns starting at 0 (the replay must not mistake 0 for "unset"), advanced by the test."""

    def __init__(self) -> None:
        self.ns = 0

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1_000_000_000)

    def monotonic_ns(self) -> int:
        return self.ns

    def now_utc(self) -> datetime:
        return datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc) + timedelta(microseconds=self.ns // 1000)


def make_session(root: Path, session_id: str, participant: str, block_order: list[str], clock: FakeClock,
                 scenario: bytes | None = SCENARIO):
    header = SessionHeader(
        session_id=session_id,
        participant=participant,
        scenario_id="lab1",
        scenario_sha256=sha256_hex(SCENARIO),
        block_order=block_order,
        seed=7,
        software_version="0.1.0",
        started_at="2025-03-01T09:00:00+00:00",
    )
    folder = Recordings(root, clock=clock).create_session(header, scenario_bytes=scenario)
    log = folder.event_log()
    log.append("ingest", ev.SessionStarted(participant, "lab1", sha256_hex(SCENARIO), 7, block_order, "0.1.0"))
    return folder, log


def created(log, call_id: str, scenario_call_id: str, block_id: str, modality: str) -> None:
    log.append("ingest", ev.CallCreated(scenario_call_id, block_id, modality, f"06-{call_id}"), call_id=call_id)


def closed(log, call_id: str, *, urgency: str, incident_type: str, items: list[str], flagged: bool = False,
           aspect: str = "") -> None:
    log.append(
        "console",
        ev.CallClosed(incident_type, urgency, "somewhere", items, flagged, aspect, ""),
        call_id=call_id,
    )


def record_full_session(root: Path) -> None:
    """Participant P01: photo block first (k1 congruent, k2 incongruent), then video (k3 incongruent, k4 never
    answered). Fake clock in seconds: see the comments."""
    clock = FakeClock()
    folder, log = make_session(root, "s1", "P01", ["b-photo", "b-video"], clock)
    log.append("runner", ev.BlockStarted("b-photo", "photo", 0))
    created(log, "k1", "p-theft", "b-photo", "photo")  # t=0
    clock.advance(2.0)
    log.append("ingest", ev.MediaPhotoReceived("p1", "media/k1/p1.jpg", "media/k1/p1_display.jpg", "a" * 64, 1000,
                                               "JPEG", 640, 480, "IMG_1.jpg"), call_id="k1")
    clock.advance(3.25)
    log.append("console", ev.CallAnswered("st1"), call_id="k1")  # t=5.25
    clock.advance(3.5)
    log.append("console", ev.IntakeUrgency("nu"), call_id="k1")  # t=8.75: first urgency 3.5 s after answer
    log.append("console", ev.IntakeIncidentType("theft"), call_id="k1")
    clock.advance(1.25)
    created(log, "k2", "p-medical", "b-photo", "photo")  # t=10
    for item in ["location", "suspect", "direction", "animals", "injuries"]:
        log.append("console", ev.IntakeItemChecked(item, True), call_id="k1")
    log.append("console", ev.IntakeItemChecked("injuries", False), call_id="k1")
    clock.advance(37.75)
    closed(log, "k1", urgency="nu", incident_type="theft", items=["location", "suspect", "direction", "animals"])
    # t=47.75: handling 42.5 s; 3 of 4 required items (animals is not required)
    log.append("console", ev.RatingRsme(37.5), call_id="k1")
    for n in (1, 2):
        log.append("ingest", ev.MediaPhotoReceived(f"p{n}", f"media/k2/p{n}.jpg", f"media/k2/p{n}_d.jpg", "b" * 64,
                                                   10, "PNG", 10, 10, ""), call_id="k2")
    clock.advance(2.25)
    log.append("console", ev.CallAnswered("st1"), call_id="k2")  # t=50: queue time 40 s
    clock.advance(1.0)
    log.append("console", ev.IntakeUrgency("spoed"), call_id="k2")
    clock.advance(1.0)
    log.append("console", ev.IntakeUrgency("nu"), call_id="k2")
    log.append("console", ev.IntakeDisagreementFlag(True, "people"), call_id="k2")
    clock.advance(59.25)
    closed(log, "k2", urgency="nu", incident_type="medical", items=["location", "injuries"], flagged=True,
           aspect="people")  # t=111.25: handling 61.25 s, urgency wrong (truth spoed), 2 of 3 items
    log.append("console", ev.RatingRsme(85), call_id="k2")
    log.append("runner", ev.BlockEnded("b-photo"))
    clock.advance(8.75)
    log.append("runner", ev.BlockStarted("b-video", "video", 1))
    created(log, "k3", "v-fire", "b-video", "video")  # t=120
    clock.advance(1.2)
    log.append("ingest", ev.MediaFirstFrame("video", "VP8", 640, 480, 310.0), call_id="k3")  # t=121.2
    clock.advance(0.0005)  # sub-millisecond: rounds away in the 3-decimal outputs
    log.append("console", ev.CallAnswered("st1"), call_id="k3")
    clock.advance(2.0)
    log.append("console", ev.IntakeUrgency("spoed"), call_id="k3")
    clock.advance(8.0)
    created(log, "k4", "v-crash", "b-video", "video")  # never answered
    clock.advance(20.0)
    closed(log, "k3", urgency="spoed", incident_type="other",
           items=["location", "trapped", "fire_size", "caller_safe"])  # handling 30.0 s
    log.append("console", ev.RatingRsme(150), call_id="k3")
    log.append("runner", ev.BlockEnded("b-video"))
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()


def record_torn_session(root: Path) -> None:
    """Participant P02: one sound call (handling 12.0 s), then the writer dies mid-line; never ended."""
    clock = FakeClock()
    clock.advance(100.0)
    folder, log = make_session(root, "s2", "P02", ["b-video", "b-photo"], clock)
    log.append("runner", ev.BlockStarted("b-video", "video", 0))
    created(log, "k1", "v-crash", "b-video", "video")
    clock.advance(4.0)
    log.append("console", ev.CallAnswered("st2"), call_id="k1")
    clock.advance(12.0)
    closed(log, "k1", urgency="nu", incident_type="traffic_accident", items=["location"])
    folder.close()
    with open(folder.events_path, "ab") as fh:
        fh.write(b'{"schema":1,"session_id":"s2","seq":6,"t_mono_ns":1169')


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def two_sessions(tmp_path: Path) -> tuple[AnalysisResult, Path]:
    root = tmp_path / "recordings"
    record_full_session(root)
    record_torn_session(root)
    out = tmp_path / "out"
    return analyze(root, out), out


def test_trials_literal_values(two_sessions) -> None:
    result, out = two_sessions
    rows = read_csv(out / "trials.csv")
    assert [(r["session_id"], r["call_id"]) for r in rows] == [("s1", "k1"), ("s1", "k2"), ("s1", "k3"),
                                                               ("s1", "k4"), ("s2", "k1")]
    k1, k2, k3, k4, s2k1 = rows
    assert k1 == {
        "participant": "P01", "session_id": "s1", "scenario_id": "lab1", "block_id": "b-photo",
        "block_position": "0", "modality": "photo", "call_id": "k1", "scenario_call_id": "p-theft",
        "congruent": "True", "incongruent_aspects": "", "answered": "True", "closed": "True",
        "queue_time_s": "5.25", "handling_time_s": "42.5", "time_to_first_urgency_s": "3.5",
        "urgency_given": "nu", "urgency_true": "nu", "urgency_correct": "True",
        "incident_type_given": "theft", "incident_type_true": "theft", "incident_type_correct": "True",
        "items_ticked": "4", "items_gathered": "3", "items_required": "4", "completeness": "0.75",
        "disagreement_flagged": "False", "disagreement_aspect_flagged": "", "disagreement_designed": "False",
        "disagreement_confidence": "", "rsme": "37.5", "rsme_source": "event", "video_first_frame_s": "", "photos_received": "1",
        "practice": "False", "first_media_s": "2.0", "urgency_before_media": "", "triage_change": "",
        "drt_stimuli": "", "drt_hit_rate": "", "drt_hit_rt_ms": "", "photo_dwell_s": "", "focus_photos_share": "",
        "focus_live_view_share": "", "focus_transcript_share": "", "focus_form_share": "",
    }
    assert (k2["congruent"], k2["incongruent_aspects"], k2["disagreement_designed"]) == ("False", "people;injuries",
                                                                                         "True")
    assert (k2["queue_time_s"], k2["handling_time_s"], k2["time_to_first_urgency_s"]) == ("40.0", "61.25", "1.0")
    assert (k2["urgency_given"], k2["urgency_true"], k2["urgency_correct"]) == ("nu", "spoed", "False")
    assert (k2["items_gathered"], k2["items_required"], k2["completeness"]) == ("2", "3", "0.667")
    assert (k2["disagreement_flagged"], k2["disagreement_aspect_flagged"]) == ("True", "people")
    assert (k2["rsme"], k2["photos_received"]) == ("85.0", "2")
    assert (k3["block_id"], k3["block_position"], k3["modality"]) == ("b-video", "1", "video")
    assert (k3["video_first_frame_s"], k3["queue_time_s"], k3["handling_time_s"]) == ("1.2", "1.2", "30.0")
    assert (k3["incident_type_given"], k3["incident_type_correct"], k3["completeness"]) == ("other", "False", "1.0")
    assert k3["rsme"] == "150.0"
    # Never answered: ground truth is there, every measure is empty.
    assert (k4["answered"], k4["closed"], k4["congruent"], k4["urgency_true"]) == ("False", "False", "True", "nu")
    for name in ["queue_time_s", "handling_time_s", "time_to_first_urgency_s", "urgency_given", "urgency_correct",
                 "items_gathered", "completeness", "disagreement_flagged", "rsme", "video_first_frame_s"]:
        assert k4[name] == "", name
    assert (k4["items_required"], k4["photos_received"]) == ("3", "0")
    # The damaged session still contributes its sound call, with its own block order.
    assert (s2k1["participant"], s2k1["block_position"], s2k1["handling_time_s"]) == ("P02", "0", "12.0")
    assert (s2k1["items_gathered"], s2k1["completeness"], s2k1["urgency_correct"]) == ("1", "0.333", "True")


def test_designed_disagreement_per_aspect_and_modality(two_sessions) -> None:
    """Hand count from SCENARIO: photo k1 (people, location agree), k2 (people, injuries disagree; flagged
    'people'); video k3 (fire_smoke_size disagrees; not flagged), k4 and s2/k1 (vehicle agrees)."""
    result, out = two_sessions
    rows = {(r["modality"], r["aspect"]): (r["calls"], r["incongruent"], r["share_incongruent"],
                                           r["closed_incongruent"], r["flagged"], r["flagged_aspect"])
            for r in read_csv(out / "disagreement.csv")}
    assert rows[("photo", "any")] == ("2", "1", "0.5", "1", "1", "1")
    assert rows[("photo", "people")] == ("2", "1", "0.5", "1", "1", "1")
    assert rows[("photo", "injuries")] == ("1", "1", "1.0", "1", "1", "0")
    assert rows[("video", "any")] == ("3", "1", "0.333", "1", "0", "0")
    assert rows[("video", "vehicle")] == ("2", "0", "0.0", "0", "0", "0")
    assert rows[("all", "any")] == ("5", "2", "0.4", "2", "1", "1")


def test_trials_header_is_the_declared_columns(two_sessions) -> None:
    result, out = two_sessions
    with open(out / "trials.csv", encoding="utf-8") as fh:
        assert fh.readline().rstrip("\n").split(",") == TRIAL_NAMES
    with open(out / "sessions.csv", encoding="utf-8") as fh:
        assert fh.readline().rstrip("\n").split(",") == [c.name for c in SESSION_COLUMNS]
    assert list(result.trials.columns) == TRIAL_NAMES
    assert str(result.trials["handling_time_s"].dtype) == "Float64"
    assert str(result.trials["block_position"].dtype) == "Int64"
    assert result.trials["handling_time_s"].tolist()[:3] == [42.5, 61.25, 30.0]
    names = [p.relative_to(out).as_posix() for p in result.files]
    for table in ("trials", "sessions", "events", "summary", "confusion", "data_quality", "form_changes",
                  "disagreement", "blocks", "drt", "media_views", "focus"):
        assert f"{table}.csv" in names and f"{table}.parquet" in names, table
        assert pd.read_parquet(out / f"{table}.parquet").columns.tolist() == pd.read_csv(out / f"{table}.csv").columns.tolist()
    assert {"codebook.md", "report.html", "plots/rsme_modality.png", "plots/rsme_modality.svg"} <= set(names)
    assert all(p.is_file() for p in result.files)


def test_damaged_session_is_reported_not_dropped(two_sessions) -> None:
    result, out = two_sessions
    assert result.sessions_loaded == 2
    assert list(result.sessions_with_problems) == ["s2"]
    problems = result.sessions_with_problems["s2"]
    assert problems == [
        "events.jsonl line 6: torn last line (the writer stopped mid-line)",
        "not ended: no session.ended event (the session was cut off or is still running)",
        "missing calls: 3 scenario call(s) of the block order never arrived (v-fire, p-theft, p-medical)",
    ]
    assert "s2: events.jsonl line 6: torn last line" in result.problems_text
    sessions = {r["session_id"]: r for r in read_csv(out / "sessions.csv")}
    assert sessions["s1"] == {
        "session_id": "s1", "participant": "P01", "scenario_id": "lab1", "scenario_sha256": sha256_hex(SCENARIO),
        "seed": "7", "block_order": "b-photo;b-video", "software_version": "0.1.0",
        "started_at": "2025-03-01T09:00:00+00:00", "events": "35", "calls": "4", "ended": "True",
        "end_reason": "completed", "lines_skipped": "0", "calls_missing": "0", "practice_calls": "0", "problems": "",
        # No participant flow in this session: its covariates are empty.
        "consent": "", "consent_text_sha256": "", "age_band": "", "experience_years": "", "discipline": "",
        "instructions_s": "",
    }
    assert (sessions["s2"]["events"], sessions["s2"]["calls"], sessions["s2"]["ended"]) == ("5", "1", "False")
    assert (sessions["s2"]["end_reason"], sessions["s2"]["lines_skipped"], sessions["s2"]["calls_missing"]) == (
        "", "1", "3")
    assert sessions["s2"]["problems"] == " | ".join(problems)


def test_session_without_scenario_copy_and_with_a_seq_gap(tmp_path: Path) -> None:
    clock = FakeClock()
    folder, log = make_session(tmp_path / "rec", "s9", "P09", ["b-photo", "b-video"], clock, scenario=None)
    created(log, "k1", "p-theft", "b-photo", "photo")
    clock.advance(1.0)
    log.append("console", ev.CallAnswered("st"), call_id="k1")
    clock.advance(9.0)
    closed(log, "k1", urgency="nu", incident_type="theft", items=["location"])
    gap = log.append("console", ev.RatingRsme(13), call_id="k1").to_dict() | {"seq": 9}
    folder.close()
    with open(folder.events_path, "ab") as fh:
        fh.write(json.dumps(gap).encode() + b"\n")
        fh.write(b'{"not an event": true}\n')
    # A single session folder is accepted as well as a recordings root.
    result = analyze(folder.path, tmp_path / "out")
    assert result.sessions_loaded == 1
    assert result.sessions_with_problems["s9"] == [
        "events.jsonl line 6: seq gap: expected 6, found 9",
        "events.jsonl line 7: event is missing envelope field 'schema'",
        "no scenario.toml copy: ground-truth columns are empty",
        "not ended: no session.ended event (the session was cut off or is still running)",
    ]
    (row,) = read_csv(tmp_path / "out" / "trials.csv")
    assert (row["handling_time_s"], row["items_ticked"], row["rsme"]) == ("9.0", "1", "13.0")
    for name in ["congruent", "urgency_true", "urgency_correct", "items_gathered", "items_required", "completeness",
                 "disagreement_designed", "incident_type_correct"]:
        assert row[name] == "", name


def test_changed_scenario_copy_is_reported(tmp_path: Path) -> None:
    clock = FakeClock()
    folder, log = make_session(tmp_path, "s3", "P03", ["b-photo", "b-video"], clock,
                               scenario=SCENARIO.replace(b'urgency = "nu"', b'urgency = "later"', 1))
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    result = analyze(tmp_path, tmp_path / "out")
    assert result.sessions_with_problems == {"s3": [
        "scenario.toml: SHA-256 differs from scenario_sha256 in session.json (the copy changed); "
        "its ground truth is used anyway",
        "missing calls: 4 scenario call(s) of the block order never arrived (p-theft, p-medical, v-fire, v-crash)",
    ]}
    assert result.trials.empty and list(result.trials.columns) == TRIAL_NAMES


def test_no_sessions_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisInputError, match="no sessions found") as info:
        analyze(tmp_path / "empty", tmp_path / "out")
    assert isinstance(info.value, AnalysisError) and isinstance(info.value, ValueError)
    assert str(tmp_path / "empty") in str(info.value)
    with pytest.raises(AnalysisInputError, match="no such folder"):
        analyze(tmp_path / "missing", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_codebook_lists_every_column_and_event_type(two_sessions) -> None:
    result, out = two_sessions
    text = (out / "codebook.md").read_text(encoding="utf-8")
    assert text == render_codebook()
    for column in TRIAL_COLUMNS + SESSION_COLUMNS:
        assert f"| `{column.name}` | {column.dtype} |" in text, column.name
    assert "| `handling_time_s` | number | s | Answer (call.answered) to close" in text
    for payload in ev.PAYLOAD_TYPES:
        assert f"### `{payload.TYPE}`" in text, payload.TYPE
    assert "| `value` | number | Rating on the RSME scale, 0-150 (stored exactly as given). |" in text
    assert "## Events" in text and "## trials.csv" in text and "## sessions.csv" in text


def test_frame_rejects_undeclared_columns() -> None:
    cols = (Column("a", "integer", "", "A."), Column("b", "boolean", "", "B."))
    df = frame([{"a": 1, "b": None}, {"a": None, "b": True}], cols)
    assert df["a"].tolist()[0] == 1 and df["a"].isna().tolist() == [False, True]
    with pytest.raises(ValueError, match=r"undeclared column\(s\) \['c'\]"):
        frame([{"a": 1, "b": True, "c": 2}], cols)
    with pytest.raises(ValueError, match="column a: expected integer"):
        frame([{"a": 1.5, "b": True}], cols)
    with pytest.raises(ValueError, match="dtype must be one of"):
        Column("x", "float", "", "")


def test_replay_keeps_timestamps_at_zero() -> None:
    clock = FakeClock()
    log = MemoryEventLog("s", clock)
    log.append("ingest", ev.CallCreated("", "", "audio", "x"), call_id="c")
    log.append("console", ev.CallAnswered("st"), call_id="c")  # t=0
    log.append("console", ev.IntakeUrgency("nu"), call_id="c")  # t=0
    clock.advance(5.0)
    log.append("console", ev.CallAnswered("st"), call_id="c")  # a second answer does not restart the clock
    log.append("console", ev.IntakeUrgency("later"), call_id="c")
    call = replay(log.events()).calls["c"]
    assert (call.answered_ns, call.first_urgency_ns, call.urgency) == (0, 0, "later")


def test_session_whose_header_was_lost_is_still_analysed(tmp_path: Path) -> None:
    clock = FakeClock()
    folder, log = make_session(tmp_path / "rec", "s5", "P05", ["b-video", "b-photo"], clock)
    created(log, "k1", "v-fire", "b-video", "video")
    log.append("runner", ev.SessionEnded("aborted"))
    folder.close()
    folder.header_path.unlink()
    (tmp_path / "rec" / "stray-folder").mkdir()
    result = analyze(tmp_path / "rec", tmp_path / "out")
    assert result.sessions_loaded == 1
    assert result.sessions_with_problems == {"s5": [
        "session.json is missing; header fields taken from session.started",
        "aborted: session.ended reason 'aborted' (the session did not run to completion; its calls so far are "
        "analysed)",
        "missing calls: 3 scenario call(s) of the block order never arrived (v-crash, p-theft, p-medical)",
    ]}
    (row,) = read_csv(tmp_path / "out" / "trials.csv")
    assert (row["participant"], row["block_position"], row["urgency_true"], row["answered"]) == ("P05", "0", "spoed",
                                                                                                 "False")
    (session,) = read_csv(tmp_path / "out" / "sessions.csv")
    assert (session["seed"], session["block_order"], session["started_at"]) == ("7", "b-video;b-photo", "")


def test_triage_change_is_computed_from_the_events(tmp_path: Path) -> None:
    """k1: 'later' set, then a photo arrives, then 'spoed' and closed spoed -> up. k2: 'spoed' before the first video
    frame, closed 'nu' -> down. k3: 'nu' before the photo, unchanged -> none. k4: media before any urgency -> empty."""
    clock = FakeClock()
    folder, log = make_session(tmp_path / "rec", "s7", "P07", ["b-photo", "b-video"], clock)
    photo = ev.MediaPhotoReceived("p1", "media/x/p1.jpg", "media/x/p1_d.jpg", "c" * 64, 10, "JPEG", 10, 10, "")
    for call_id, scenario_call, block, modality in (("k1", "p-theft", "b-photo", "photo"),
                                                    ("k2", "v-fire", "b-video", "video"),
                                                    ("k3", "p-medical", "b-photo", "photo"),
                                                    ("k4", "v-crash", "b-video", "video")):
        created(log, call_id, scenario_call, block, modality)
    for call_id in ("k1", "k2", "k3", "k4"):
        log.append("console", ev.CallAnswered("st"), call_id=call_id)
    log.append("console", ev.IntakeUrgency("later"), call_id="k1")
    log.append("console", ev.IntakeUrgency("nu"), call_id="k1")  # the last value before the media counts
    log.append("console", ev.IntakeUrgency("spoed"), call_id="k2")
    log.append("console", ev.IntakeUrgency("nu"), call_id="k3")
    log.append("console", ev.IntakeDisagreementConfidence(2), call_id="k3")
    log.append("console", ev.IntakeDisagreementConfidence(4), call_id="k3")  # the last one counts
    log.append("ingest", ev.MediaFirstFrame("video", "VP8", 640, 480, 100.0), call_id="k4")
    clock.advance(2.0)
    log.append("ingest", photo, call_id="k1")
    log.append("ingest", ev.MediaFirstFrame("video", "VP8", 640, 480, 100.0), call_id="k2")
    log.append("ingest", photo, call_id="k3")
    log.append("console", ev.IntakeUrgency("spoed"), call_id="k1")
    log.append("console", ev.IntakeUrgency("nu"), call_id="k4")
    clock.advance(1.0)
    closed(log, "k1", urgency="spoed", incident_type="theft", items=[])
    closed(log, "k2", urgency="nu", incident_type="fire", items=[])
    closed(log, "k3", urgency="nu", incident_type="medical", items=[])
    closed(log, "k4", urgency="nu", incident_type="traffic_accident", items=[])
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    result = analyze(tmp_path / "rec", tmp_path / "out")
    rows = {r["call_id"]: r for r in read_csv(tmp_path / "out" / "trials.csv")}
    got = {k: (r["urgency_before_media"], r["urgency_given"], r["triage_change"], r["first_media_s"])
           for k, r in rows.items()}
    assert got == {"k1": ("nu", "spoed", "up", "2.0"), "k2": ("spoed", "nu", "down", "2.0"),
                   "k3": ("nu", "nu", "none", "2.0"), "k4": ("", "nu", "", "0.0")}
    assert "Triage change after media" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    changes = [(c["call_id"], c["field"], c["value"], c["after_first_media"], c["t_since_answer_s"])
               for c in read_csv(tmp_path / "out" / "form_changes.csv") if c["call_id"] == "k1"]
    assert changes == [("k1", "urgency", "later", "False", "0.0"), ("k1", "urgency", "nu", "False", "0.0"),
                       ("k1", "urgency", "spoed", "True", "2.0")]
    assert result.trials["triage_change"].tolist()[:3] == ["up", "down", "none"]
    assert result.trials["disagreement_confidence"].tolist()[2] == 4 and rows["k1"]["disagreement_confidence"] == ""


def test_foreign_lines_and_version_mismatch_are_reported(tmp_path: Path) -> None:
    """Lines of an event type this version does not declare, a line of another event schema, an aborted session
    and a session recorded by another software version: each named in sessions.csv, nothing dropped silently."""
    root = tmp_path / "rec"
    for session_id, participant in (("a1", "P1"), ("a2", "P2")):
        clock = FakeClock()
        folder, log = make_session(root, session_id, participant, ["b-photo", "b-video"], clock)
        for call_id, scenario_call, block, modality in (("k1", "p-theft", "b-photo", "photo"),
                                                        ("k2", "p-medical", "b-photo", "photo"),
                                                        ("k3", "v-fire", "b-video", "video"),
                                                        ("k4", "v-crash", "b-video", "video")):
            created(log, call_id, scenario_call, block, modality)
        log.append("runner", ev.SessionEnded("completed"))
        folder.close()
    clock = FakeClock()
    folder, log = make_session(root, "a3", "P3", ["b-photo", "b-video"], clock)
    created(log, "k1", "p-theft", "b-photo", "photo")
    log.append("runner", ev.SessionEnded("aborted"))
    folder.close()
    header = json.loads(folder.header_path.read_text())
    folder.header_path.write_text(json.dumps(header | {"software_version": "0.0.9"}))
    envelope = {"schema": 1, "session_id": "a3", "t_mono_ns": 5, "t_wall": "2025-03-01T09:00:00+00:00",
                "source": "console", "call_id": "k1"}
    with open(folder.events_path, "a", encoding="utf-8") as fh:
        for seq in (4, 5):
            fh.write(json.dumps(envelope | {"seq": seq, "type": "lab.eye_tracker_sample", "data": {"x": 1}}) + "\n")
        fh.write(json.dumps(envelope | {"seq": 6, "schema": 2, "type": "rating.rsme", "data": {"value": 3}}) + "\n")
    result = analyze(root, tmp_path / "out")
    assert list(result.sessions_with_problems) == ["a3"]
    assert result.sessions_with_problems["a3"] == [
        "events.jsonl: 2 line(s) of unknown event type 'lab.eye_tracker_sample' (not declared in this version) skipped "
        "(lines 4, 5)",
        "events.jsonl: 1 line(s) of event schema 2 (this version reads 1): version mismatch skipped (lines 6)",
        "session.json software_version '0.0.9' differs from session.started '0.1.0'; session.json is used",
        "aborted: session.ended reason 'aborted' (the session did not run to completion; its calls so far are "
        "analysed)",
        "missing calls: 3 scenario call(s) of the block order never arrived (p-medical, v-fire, v-crash)",
        "version mismatch: recorded by software version 0.0.9, most sessions by 0.1.0 (versions: 0.0.9 (1 "
        "session(s)), 0.1.0 (2 session(s)))",
    ]
    sessions = {r["session_id"]: r for r in read_csv(tmp_path / "out" / "sessions.csv")}
    assert (sessions["a3"]["end_reason"], sessions["a3"]["lines_skipped"], sessions["a3"]["calls_missing"]) == (
        "aborted", "3", "3")
    quality = read_csv(tmp_path / "out" / "data_quality.csv")
    handled = [(q["session_id"], q["handling"], q["problem"][:40]) for q in quality if q["record"] == "session"]
    assert handled[0] == ("a3", "excluded", "events.jsonl: 2 line(s) of unknown event")
    assert all(h[1] == "reported" for h in handled[2:])
    events = read_csv(tmp_path / "out" / "events.csv")
    assert len(events) == 6 + 6 + 3  # sound events only; the 3 foreign lines are in data_quality, not here
    assert {"data_scenario_call_id", "data_modality", "data_block_order"} <= set(events[0])
    assert json.loads(events[0]["data_block_order"]) == ["b-photo", "b-video"]


def trial(participant: str, modality: str, call: str, congruent: bool | None = True, **values) -> dict:
    """A trials.csv row (every declared column) for summary tests."""
    row = dict.fromkeys(TRIAL_NAMES)
    row |= {"participant": participant, "session_id": f"s-{participant}", "scenario_id": "lab", "block_id": modality,
            "modality": modality, "call_id": call, "scenario_call_id": call, "congruent": congruent,
            "answered": True, "closed": True, "practice": False, "disagreement_designed": None}
    return row | values


def test_summary_contract_and_hand_computed_paired_rows() -> None:
    from analysis.summary import build_summary

    # RSME: audio 30 + p, photo = audio + (10, 12, 14, 16)[p]. Paired differences d = 10, 12, 14, 16:
    # mean 13, sd sqrt(20/3) = 2.581989, t = 13 / (2.581989 / 2) = 10.069757 (df 3), d_z = 13 / 2.581989 = 5.034878.
    rows = []
    for p, extra in enumerate((10, 12, 14, 16)):
        for k in range(2):  # two calls per condition: the participant mean is what is compared
            rows.append(trial(f"P{p}", "audio", f"a{k}", rsme=30.0 + p + (k - 0.5), handling_time_s=60.0 + p,
                              completeness=0.5))
            rows.append(trial(f"P{p}", "photo", f"f{k}", rsme=30.0 + p + extra + (k - 0.5),
                              handling_time_s=(60.0 + p) * 1.5, completeness=0.5 + 0.1 * (p % 2)))
        rows.append(trial(f"P{p}", "photo", "practice-call", rsme=150.0, practice=True))
    trials = frame(rows, TRIAL_COLUMNS)
    summary = build_summary(trials[trials["practice"] != True])  # noqa: E712
    assert summary.columns.tolist() == [
        "measure", "contrast", "level", "reference", "method", "n_participants", "n_obs", "estimate", "ci_low",
        "ci_high", "unit", "statistic", "p", "p_holm", "effect_size", "es_ci_low", "es_ci_high", "converged", "note",
    ]
    rsme = summary[(summary["measure"] == "rsme") & (summary["contrast"] == "modality")].set_index("method")
    assert rsme.index.tolist() == ["paired_t", "wilcoxon", "mixedlm"]
    t = rsme.loc["paired_t"]
    assert (t["level"], t["reference"], t["n_participants"], t["n_obs"], t["unit"]) == ("photo", "audio", 4, 16,
                                                                                        "RSME 0-150")
    assert t["estimate"] == pytest.approx(13.0)
    assert t["statistic"] == pytest.approx(10.069757, abs=1e-6)
    assert t["effect_size"] == pytest.approx(5.034878, abs=1e-6)
    assert t["ci_low"] < 13 < t["ci_high"] and t["es_ci_low"] < 5.034878 < t["es_ci_high"]
    # Wilcoxon on 10, 12, 14, 16: all positive, W = 0, exact two-sided p = 2/16 = 0.125.
    assert (rsme.loc["wilcoxon", "statistic"], rsme.loc["wilcoxon", "p"]) == (0.0, pytest.approx(0.125))
    assert rsme.loc["mixedlm", "estimate"] == pytest.approx(13.0, abs=1e-3)
    assert pd.isna(rsme.loc["wilcoxon", "converged"]) and rsme.loc["mixedlm", "converged"] in (True, False)
    # Handling time 1.5 times as long with photos for everyone: the log model's ratio is 1.5.
    log_row = summary[(summary["measure"] == "handling_time_s") & (summary["method"] == "mixedlm_log")].iloc[0]
    assert log_row["estimate"] == pytest.approx(1.5, abs=1e-3) and log_row["unit"] == "ratio photo/audio"
    # Holm over the primary outcomes of modality/photo: three paired_t rows share one correction.
    primary = summary[(summary["method"] == "paired_t") & (summary["level"] == "photo")].set_index("measure")
    assert primary.index.tolist() == ["rsme", "handling_time_s", "completeness"]  # no time_to_first_urgency data
    p = primary["p"].astype(float).sort_values()
    # Holm (1979) by hand: sorted p1 <= p2 <= p3 -> 3 p1, max(3 p1, 2 p2), max(that, p3), capped at 1.
    expected = [min(1, 3 * p.iloc[0]), min(1, max(3 * p.iloc[0], 2 * p.iloc[1]))]
    expected.append(min(1, max(expected[1], p.iloc[2])))
    assert primary.loc[p.index, "p_holm"].astype(float).tolist() == pytest.approx(expected)
    other = summary[(summary["method"] != "paired_t")]
    assert other["p_holm"].isna().all()


def test_missing_calls_honour_calls_per_block(tmp_path: Path) -> None:
    """A session that works a fixed number of calls per block (session.json extra.calls_per_block, as written by
    workbench simulate) misses only the calls short of that number."""
    clock = FakeClock()
    folder, log = make_session(tmp_path / "rec", "s8", "P08", ["b-photo", "b-video"], clock)
    created(log, "k1", "p-theft", "b-photo", "photo")
    created(log, "k2", "v-fire", "b-video", "video")
    created(log, "k3", "v-fire", "b-video", "video")
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    header = json.loads(folder.header_path.read_text())
    folder.header_path.write_text(json.dumps(header | {"extra": {"calls_per_block": 2}}))
    result = analyze(tmp_path / "rec", tmp_path / "out")
    assert result.sessions_with_problems == {"s8": [
        "missing calls: 1 scenario call(s) of the block order never arrived (b-photo: 1 of 2 calls)"]}
    (row,) = read_csv(tmp_path / "out" / "sessions.csv")
    assert row["calls_missing"] == "1"


def test_nasa_tlx_and_drt_events(tmp_path: Path) -> None:
    """Block b-photo (t = 0-30 s on the fake clock) with call k1 handled from 1 s to 20 s. DRT stimuli at 2000,
    6000, 10000, 25000 ms; responses at 2450 (hit, 450 ms), 6050 (too early), 10000 + 2600 (too late: miss),
    25300 (hit, 300 ms, but after the call was closed). Hand-scored for k1 (stimuli at 2000, 6000, 10000):
    3 stimuli, 1 hit -> hit rate 0.333, mean hit RT 450 ms. NASA-TLX of b-photo: 50, 20, 40, 30, 60, 10 -> raw
    (50+20+40+30+60+10)/6 = 35; weights from choosing the first subscale of every pair (mental 5, physical 4,
    temporal 3, performance 2, effort 1, frustration 0): (50*5+20*4+40*3+30*2+60*1+10*0)/15 = 570/15 = 38."""
    from workbench.domain.instruments import TLX_PAIRS

    clock = FakeClock()
    folder, log = make_session(tmp_path / "rec", "s6", "P06", ["b-photo", "b-video"], clock)
    log.append("runner", ev.BlockStarted("b-photo", "photo", 0))
    created(log, "k1", "p-theft", "b-photo", "photo")
    clock.advance(1.0)
    log.append("console", ev.CallAnswered("st"), call_id="k1")
    for i, onset in enumerate((2000.0, 6000.0, 10000.0)):
        log.append("console", ev.DrtStimulus("r1", i, "visual", onset, onset, 0.0, 1.0))
    for response in (2450.0, 6050.0, 12600.0):
        log.append("console", ev.DrtResponse("r1", 0, response, 0.0, "key"))
    clock.advance(19.0)
    closed(log, "k1", urgency="nu", incident_type="theft", items=[])
    log.append("console", ev.DrtStimulus("r1", 3, "tone", 25000.0, 25000.0, 0.0, 1.0))
    log.append("console", ev.DrtResponse("r1", 3, 25300.0, 300.0, "button"))
    clock.advance(10.0)
    log.append("runner", ev.BlockEnded("b-photo"))
    log.append("console", ev.RatingNasaTlx("b-photo", 50, 20, 40, 30, 60, 10))
    log.append("console", ev.RatingNasaTlxWeights("b-photo", [a for a, _ in TLX_PAIRS]))
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    result = analyze(tmp_path / "rec", tmp_path / "out")
    drt = read_csv(tmp_path / "out" / "drt.csv")
    assert [(d["onset_ms"], d["outcome"], d["rt_ms"], d["early_responses"], d["call_id"], d["block_id"])
            for d in drt] == [("2000.0", "hit", "450.0", "0", "k1", "b-photo"),
                              ("6000.0", "too_early", "", "1", "k1", "b-photo"),
                              ("10000.0", "miss", "", "0", "k1", "b-photo"),
                              ("25000.0", "hit", "300.0", "0", "", "b-photo")]
    (row,) = read_csv(tmp_path / "out" / "trials.csv")
    assert (row["drt_stimuli"], row["drt_hit_rate"], row["drt_hit_rt_ms"]) == ("3", "0.333", "450.0")
    (block,) = read_csv(tmp_path / "out" / "blocks.csv")
    assert (block["modality"], block["raw_tlx"], block["weighted_tlx"], block["source"]) == ("photo", "35.0",
                                                                                           "38.0", "event")
    assert result.blocks is not None and len(result.blocks) == 1


def test_photo_dwell_and_focus_shares(tmp_path: Path) -> None:
    """k1 answered at t = 1 s. Photo p1 opened at 2 s, enlarged, p2 opened at 5 s (p1 dwell 3 s), closed at 6 s
    (p2 dwell 1 s): photo_dwell_s 4.0. Focus (browser_ms): form at 1000, photos at 2000, transcript at 6000,
    call closed at 10000 ms: form 1 s, photos 4 s, transcript 4 s of 9 s -> shares 0.111, 0.444, 0.444, live 0."""
    clock = FakeClock()
    folder, log = make_session(tmp_path / "rec", "s4", "P04", ["b-photo", "b-video"], clock)
    created(log, "k1", "p-theft", "b-photo", "photo")
    clock.advance(1.0)
    log.append("console", ev.CallAnswered("st"), call_id="k1")
    log.append("console", ev.ConsoleFocus("form", "pointer", 1000.0), call_id="k1")
    clock.advance(1.0)
    log.append("console", ev.PhotoOpened("p1"), call_id="k1")
    log.append("console", ev.PhotoEnlarged("p1", True), call_id="k1")
    log.append("console", ev.ConsoleFocus("photos", "pointer", 2000.0), call_id="k1")
    clock.advance(3.0)
    log.append("console", ev.PhotoOpened("p2"), call_id="k1")
    clock.advance(1.0)
    log.append("console", ev.PhotoClosed("p2"), call_id="k1")
    log.append("console", ev.ConsoleFocus("transcript", "focus", 6000.0), call_id="k1")
    clock.advance(4.0)
    closed(log, "k1", urgency="nu", incident_type="theft", items=[])
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    analyze(tmp_path / "rec", tmp_path / "out")
    views = read_csv(tmp_path / "out" / "media_views.csv")
    assert [(v["photo_id"], v["start_s"], v["dwell_s"], v["enlarged"], v["ended_by"]) for v in views] == [
        ("p1", "1.0", "3.0", "True", "photo.opened"), ("p2", "4.0", "1.0", "False", "photo.closed")]
    focus = read_csv(tmp_path / "out" / "focus.csv")
    assert [(f["panel"], f["duration_s"]) for f in focus] == [("form", "1.0"), ("photos", "4.0"),
                                                               ("transcript", "4.0")]
    (row,) = read_csv(tmp_path / "out" / "trials.csv")
    assert (row["photo_dwell_s"], row["focus_form_share"], row["focus_photos_share"], row["focus_transcript_share"],
            row["focus_live_view_share"]) == ("4.0", "0.111", "0.444", "0.444", "0.0")
