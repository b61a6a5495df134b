"""Synthetic participants (workbench.simulate): effects file validation, session folders, Latin square, CLI, and the
event log's optional one-fsync-per-file policy the simulator uses."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from analysis.run import analyze
from workbench.cli import main as cli_main
from workbench.simulate import EffectsError, latin_square_orders, load_effects, parse_effects, simulate
from workbench.store.eventlog import FileEventLog, read_events
from workbench.store.recordings import RecordingsError, verify_session
from workbench.store.scenarios import load_scenario

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "experiments" / "effects" / "scenario.toml"
EXAMPLE = REPO / "experiments" / "effects" / "example.toml"


def _run(out: Path, participants: int = 3, seed: int = 5, **kw) -> list[Path]:
    scenario = load_scenario(SCENARIO)
    return simulate(scenario, SCENARIO.read_bytes(), load_effects(EXAMPLE), participants=participants, seed=seed,
                    out=out, **kw)


# --- effects file ---------------------------------------------------------------------------------------------------


def test_example_effects_file_loads_with_its_values() -> None:
    effects = load_effects(EXAMPLE)
    assert effects.of("photo").rsme == 12.0
    assert effects.of("video").handling_time_ratio == 1.4
    assert effects.of("video").completeness == -0.10
    assert effects.of("audio").rsme == 0.0  # the reference level
    assert effects.detection.hit_probability == 0.6


def test_empty_effects_file_means_no_effects() -> None:
    effects = parse_effects(b"")
    assert effects.of("video").handling_time_ratio == 1.0
    assert effects.incongruent.rsme == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[modality.audio]\nrsme = 3\n", "modality: audio is the reference level"),
        ("[modality.radio]\nrsme = 3\n", "unknown modality radio"),
        ("[modality.video]\nhandling_time_ratio = 0\n", "modality.video.handling_time_ratio: Input should be greater than 0"),
        ("[modality.video]\nrsme_points = 3\n", "modality.video.rsme_points: unknown key 'rsme_points'; expected one of rsme,"),
        ("[detection]\nhit_probability = 1.5\n", "detection.hit_probability: Input should be less than or equal to 1"),
        ("[spread]\nresidual_sd_rsme = -1\n", "spread.residual_sd_rsme: Input should be greater than or equal to 0"),
        ("[baseline\n", "not valid TOML"),
    ],
)
def test_effects_errors_name_file_field_and_expectation(text: str, expected: str) -> None:
    with pytest.raises(EffectsError) as err:
        parse_effects(text.encode(), "fx.toml")
    assert str(err.value).startswith("fx.toml: ")
    assert expected in str(err.value)


def test_missing_effects_file_is_an_effects_error(tmp_path: Path) -> None:
    with pytest.raises(EffectsError, match="cannot read effects file"):
        load_effects(tmp_path / "nope.toml")


# --- Latin square ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_latin_square_rows_and_positions_hold_each_block_once(k: int) -> None:
    blocks = [f"b{j}" for j in range(k)]
    rows = latin_square_orders(blocks, seed=11)
    assert len(rows) == k
    for row in rows:
        assert sorted(row) == blocks
    for position in range(k):
        assert sorted(row[position] for row in rows) == blocks
    assert rows == latin_square_orders(blocks, seed=11)


# --- session folders ------------------------------------------------------------------------------------------------


def test_simulated_sessions_verify_and_follow_the_simulated_timeline(tmp_path: Path) -> None:
    paths = _run(tmp_path / "rec", participants=3)
    assert [p.name for p in paths] == ["sim-5-p001", "sim-5-p002", "sim-5-p003"]
    orders = []
    for path in paths:
        report = verify_session(path)
        assert report.ok, report.problems
        assert report.files_checked > 1  # scenario.toml + photo originals and display copies
        header = json.loads((path / "session.json").read_text())
        assert header["status"] == "exercise" and header["extra"]["simulated"] is True
        events, problems = read_events(path / "events.jsonl")
        assert problems == []
        assert events[0].type == "session.started" and events[0].source == "simulator"
        assert events[-1].type == "session.ended"
        monos = [e.t_mono_ns for e in events]
        assert monos == sorted(monos)
        assert events[0].t_wall == header["started_at"]
        types = Counter(e.type for e in events)
        assert types["call.created"] == types["call.closed"] == types["rating.rsme"] == 12
        assert types["block.started"] == types["block.ended"] == 3
        # Photos only in photo and video blocks; video first frames only in the video block.
        by_call = {e.call_id: e.data for e in events if e.type == "call.created"}
        for e in events:
            if e.type == "media.photo_received":
                assert by_call[e.call_id].modality in ("photo", "video")
                assert (path / e.data.file_display).is_file()
            if e.type == "media.first_frame" and e.data.kind == "video":
                assert by_call[e.call_id].modality == "video"
        orders.append(tuple(header["block_order"]))
    assert len(set(orders)) == 3  # three participants, three rows of the Latin square


def test_same_arguments_give_identical_folders(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", participants=2)
    b = _run(tmp_path / "b", participants=2)
    for pa, pb in zip(a, b):
        assert (pa / "events.jsonl").read_bytes() == (pb / "events.jsonl").read_bytes()
        assert (pa / "manifest.json").read_bytes() == (pb / "manifest.json").read_bytes()
    # A participant's data do not depend on how many participants are simulated.
    c = _run(tmp_path / "c", participants=1)
    assert (c[0] / "events.jsonl").read_bytes() == (a[0] / "events.jsonl").read_bytes()


def test_drt_follows_iso_17488_timing(tmp_path: Path) -> None:
    (path,) = _run(tmp_path, participants=1)
    events, _ = read_events(path / "events.jsonl")
    stimuli = [e for e in events if e.type == "drt.stimulus"]
    responses = [e for e in events if e.type == "drt.response"]
    assert stimuli and responses and {e.source for e in stimuli + responses} == {"console"}
    assert [s.data.stimulus_index for s in stimuli] == list(range(len(stimuli)))
    blocks = [(s.t_mono_ns, e.t_mono_ns) for s, e in zip(
        [e for e in events if e.type == "block.started"], [e for e in events if e.type == "block.ended"])]
    onsets = [s.data.onset_ms for s in stimuli]
    for earlier, later in zip(onsets, onsets[1:]):
        same_block = any(a / 1e6 <= earlier and later < b / 1e6 for a, b in blocks)
        if same_block:
            assert 3000 <= later - earlier <= 5000
    for s in stimuli:  # every stimulus inside a block, logged just after its onset
        assert any(a / 1e6 <= s.data.onset_ms < b / 1e6 for a, b in blocks)
        assert 0 < s.t_mono_ns / 1e6 - s.data.onset_ms <= 30
    by_index = {s.data.stimulus_index: s.data.onset_ms for s in stimuli}
    for r in responses:
        assert abs(r.data.response_ms - by_index[r.data.stimulus_index] - r.data.rt_ms) < 0.01
        assert r.data.rt_ms <= 2900
    assert 0.85 <= len(responses) / len(stimuli) <= 1.0  # drt_miss_probability 0.05


def test_calls_per_block_repeats_the_scenario_calls(tmp_path: Path) -> None:
    (path,) = _run(tmp_path, participants=1, calls_per_block=10)
    events, _ = read_events(path / "events.jsonl")
    created = [e.data for e in events if e.type == "call.created"]
    assert len(created) == 30
    per_block = Counter(c.block_id for c in created)
    assert set(per_block.values()) == {10}
    scenario_calls = Counter(c.scenario_call_id for c in created)
    assert max(scenario_calls.values()) == 3 and min(scenario_calls.values()) == 2  # 10 = 4 + 4 + 2


def test_analyze_reads_simulated_sessions_without_problems(tmp_path: Path) -> None:
    _run(tmp_path / "rec", participants=3)
    result = analyze(tmp_path / "rec", tmp_path / "out")
    assert result.sessions_with_problems == {}
    trials = result.trials
    assert len(trials) == 36
    assert trials["closed"].all() and trials["rsme"].notna().all()
    assert trials.loc[trials["modality"] == "audio", "photos_received"].eq(0).all()
    assert trials.loc[trials["modality"] == "photo", "video_first_frame_s"].isna().all()
    assert trials.loc[trials["modality"] == "video", "video_first_frame_s"].notna().all()


def test_invalid_arguments_and_existing_sessions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="participants"):
        _run(tmp_path, participants=0)
    with pytest.raises(ValueError, match="calls_per_block"):
        _run(tmp_path, participants=1, calls_per_block=0)
    with pytest.raises(ValueError, match="seed"):
        _run(tmp_path, participants=1, seed=-1)
    _run(tmp_path, participants=1)
    with pytest.raises(RecordingsError, match="exists already"):
        _run(tmp_path, participants=1)


def test_scenario_bytes_must_match_the_scenario(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        simulate(load_scenario(SCENARIO), b"other", load_effects(EXAMPLE), participants=1, seed=0, out=tmp_path)


# --- CLI ------------------------------------------------------------------------------------------------------------


def test_cli_simulate_writes_sessions_and_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--participants", "2", "--scenario", str(SCENARIO), "--effects", str(EXAMPLE),
            "--seed", "9", "--out", str(tmp_path / "rec"), "--calls-per-block", "5"]
    assert cli_main(args) == 0
    assert "2 simulated session(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["sim-9-p001", "sim-9-p002"]
    assert cli_main(args) == 2  # the sessions exist already
    assert "exists already" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[modality.audio]\nrsme = 1\n")
    assert cli_main(args[:6] + [str(bad)] + args[7:]) == 2
    assert "audio is the reference level" in capsys.readouterr().err


# --- event log fsync policy -----------------------------------------------------------------------------------------


def test_fsync_policy_close_fsyncs_once_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.domain import events as ev

    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    log = FileEventLog(tmp_path / "close.jsonl", "s1", fsync="close")
    for _ in range(5):
        log.append("ingest", ev.SessionEnded("completed"))
    assert calls == []
    assert len((tmp_path / "close.jsonl").read_bytes().splitlines()) == 5  # written and flushed before the fsync
    log.close()
    assert len(calls) == 1
    default = FileEventLog(tmp_path / "event.jsonl", "s1")
    for _ in range(3):
        default.append("ingest", ev.SessionEnded("completed"))
    default.close()
    assert len(calls) == 4  # the default still fsyncs every event (and close adds none)
    with pytest.raises(ValueError, match="fsync must be one of"):
        FileEventLog(tmp_path / "x.jsonl", "s1", fsync="never")
