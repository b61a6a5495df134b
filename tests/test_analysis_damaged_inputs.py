"""Loader tests for damaged inputs not covered in test_analysis.py: a session.json that is not JSON or not an
object, a missing events.jsonl, a line of binary garbage and a repeated seq inside the log, and a scenario copy that
is not a valid scenario. Each session is reported with its problem and still analysed, never dropped."""

from __future__ import annotations

import csv
from pathlib import Path

from analysis.run import analyze
from tests.test_analysis import FakeClock, closed, created, make_session
from workbench.domain import events as ev


def _one_call_session(root: Path, session_id: str, participant: str):
    clock = FakeClock()
    folder, log = make_session(root, session_id, participant, ["b-photo", "b-video"], clock)
    created(log, "k1", "p-theft", "b-photo", "photo")
    clock.advance(1.0)
    log.append("console", ev.CallAnswered("st"), call_id="k1")
    clock.advance(9.0)
    closed(log, "k1", urgency="nu", incident_type="theft", items=["location"])
    log.append("console", ev.RatingRsme(25), call_id="k1")
    return folder, log


def _sessions_csv(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "sessions.csv", newline="", encoding="utf-8") as fh:
        return {r["session_id"]: r for r in csv.DictReader(fh)}


def test_broken_headers_missing_log_garbage_lines_and_invalid_scenario_copy(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    # a: session.json cut mid-write (not valid JSON).
    folder, log = _one_call_session(rec, "a", "P01")
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    folder.header_path.write_bytes(b'{"session_id": "a", "partic')
    # b: session.json valid JSON but a list, not an object.
    folder, log = _one_call_session(rec, "b", "P02")
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    folder.header_path.write_text("[1, 2, 3]\n", encoding="utf-8")
    # c: events.jsonl missing (session.json and the scenario copy are there).
    folder, log = _one_call_session(rec, "c", "P03")
    folder.close()
    folder.events_path.unlink()
    # d: a line of binary garbage in the middle of the log and a repeated seq; the log goes on after both.
    folder, log = _one_call_session(rec, "d", "P04")
    folder.close()
    lines = folder.events_path.read_bytes().splitlines(keepends=True)
    repeated = lines[-1]  # the RSME rating, seq 5, written again
    folder.events_path.write_bytes(b"".join(lines[:3]) + b"\xff\xfe\x00garbage\n" + b"".join(lines[3:]) + repeated)
    # e: the scenario copy is not a valid scenario (its hash is then also wrong).
    folder, log = _one_call_session(rec, "e", "P05")
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    (folder.path / "scenario.toml").write_text('id = "lab1"\n[[blocks]]\nid = 3\n', encoding="utf-8")

    result = analyze(rec, tmp_path / "out", workers=1)
    assert result.sessions_loaded == 5
    problems = result.sessions_with_problems
    assert problems["a"][0].startswith("session.json is not valid JSON (Unterminated string")
    assert problems["a"][0].endswith("; header fields taken from session.started")
    assert problems["b"][0] == "session.json: not a JSON object; header fields taken from session.started"
    assert problems["c"][:2] == ["events.jsonl is missing; the session has no calls", "no session.started event"]
    assert problems["d"][0].startswith("events.jsonl line 4: not valid JSON")
    assert "events.jsonl line 7: seq duplicate: expected 6, found 5" in problems["d"]
    assert "scenario.toml: SHA-256 differs from scenario_sha256 in session.json (the copy changed); its ground truth " \
           "is used anyway" in problems["e"]
    assert any(p.startswith("scenario.toml is invalid, ground-truth columns are empty:") for p in problems["e"])

    sessions = _sessions_csv(tmp_path / "out")
    assert sorted(sessions) == ["a", "b", "c", "d", "e"]  # none dropped
    # a, b: header fields come from session.started; the call is still a trial row.
    assert (sessions["a"]["participant"], sessions["a"]["calls"], sessions["a"]["started_at"]) == ("P01", "1", "")
    assert (sessions["b"]["participant"], sessions["b"]["block_order"]) == ("P02", "b-photo;b-video")
    # c: no events at all, but the header still names the participant.
    assert (sessions["c"]["participant"], sessions["c"]["events"], sessions["c"]["calls"]) == ("P03", "0", "0")
    # d: 5 events + the repeated one (read and reported), the garbage line skipped.
    assert (sessions["d"]["events"], sessions["d"]["lines_skipped"]) == ("6", "1")
    with open(tmp_path / "out" / "trials.csv", newline="", encoding="utf-8") as fh:
        trials = {(r["session_id"], r["call_id"]): r for r in csv.DictReader(fh)}
    assert trials[("d", "k1")]["handling_time_s"] == "9.0"
    assert trials[("e", "k1")]["urgency_true"] == ""  # no usable ground truth
    assert trials[("a", "k1")]["urgency_true"] == "nu"
    with open(tmp_path / "out" / "data_quality.csv", newline="", encoding="utf-8") as fh:
        quality = [(q["session_id"], q["handling"], q["problem"]) for q in csv.DictReader(fh)]
    assert ("d", "excluded", problems["d"][0]) in quality  # the unreadable line is left out
    assert ("c", "excluded", "events.jsonl is missing; the session has no calls") in quality
