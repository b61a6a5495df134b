"""The analysis at scale keeps its results: two reading processes give the same tables as one, the events table
built column by column equals the row-by-row table, and a session's released events leave its properties intact.
(Speed itself is measured by benchmarks/bench_analysis.py, never asserted here.)"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.load import find_sessions, load_session
from analysis.reading import can_fork, read_sessions
from analysis.tables import EventTable, event_columns, events_frame
from workbench.simulate import load_effects, simulate
from workbench.store.scenarios import load_scenario

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "experiments" / "effects" / "scenario.toml"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scale") / "rec"
    simulate(load_scenario(SCENARIO), SCENARIO.read_bytes(), load_effects(REPO / "experiments/effects/example.toml"),
             participants=3, seed=11, out=out, calls_per_block=2, store_photos=False)
    return out


def _frames(rows) -> dict[str, pd.DataFrame]:
    return {"trials": pd.DataFrame(rows.trials), "drt": pd.DataFrame(rows.drt),
            "changes": pd.DataFrame(rows.form_changes), "events": rows.events.frame(),
            "blocks": pd.DataFrame(rows.blocks)}


def test_two_reading_processes_give_the_same_rows_in_the_same_order(recordings: Path) -> None:
    assert can_fork(), "this test must run the forked pool (a single-threaded pytest on Linux can fork)"
    paths = find_sessions(recordings)
    one, two = read_sessions(paths, workers=1), read_sessions(paths, workers=2)
    assert [s.session_id for s in two.sessions] == ["sim-11-p001", "sim-11-p002", "sim-11-p003"]
    for name, frame in _frames(one).items():
        pd.testing.assert_frame_equal(frame, _frames(two)[name], obj=name)
    assert len(one.trials) == 3 * 3 * 2  # 3 participants x 3 blocks x 2 calls
    assert [s.n_events for s in one.sessions] == [s.n_events for s in two.sessions]
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        read_sessions(paths, workers=0)


def test_columnar_events_table_equals_the_row_by_row_table(recordings: Path) -> None:
    sessions = [load_session(p) for p in find_sessions(recordings)]
    table = EventTable()
    rows = []
    kinds = {c.name: c.dtype for c in event_columns()}
    for s in sessions:
        table.add_session(s.session_id, s.participant, s.events)
        # The row-by-row construction the table replaced, kept here as the reference: one dict per event.
        first = s.events[0].t_mono_ns
        for e in s.events:
            row = dict.fromkeys(kinds)
            row |= {"session_id": s.session_id, "participant": s.participant, "seq": e.seq,
                    "t_mono_ns": e.t_mono_ns, "t_s": round((e.t_mono_ns - first) / 1e9, 3), "t_wall": e.t_wall,
                    "source": e.source, "type": e.type, "call_id": e.call_id}
            for key, value in vars(e.data).items():
                kind = kinds[f"data_{key}"]
                if isinstance(value, (list, tuple)):
                    value = json.dumps(list(value), ensure_ascii=False)
                elif kind == "string" and not isinstance(value, str):
                    value = json.dumps(value)
                row[f"data_{key}"] = value
            rows.append(row)
    pd.testing.assert_frame_equal(table.frame(), events_frame(rows))
    # Two tables joined equal one table of both.
    a, b = EventTable(), EventTable()
    a.add_session(sessions[0].session_id, sessions[0].participant, sessions[0].events)
    b.add_session(sessions[1].session_id, sessions[1].participant, sessions[1].events)
    both = EventTable()
    for s in sessions[:2]:
        both.add_session(s.session_id, s.participant, s.events)
    a.extend(b)
    pd.testing.assert_frame_equal(a.frame(), both.frame())
    assert len(a) == len(sessions[0].events) + len(sessions[1].events)


def test_released_events_keep_the_session_properties(recordings: Path) -> None:
    s = load_session(find_sessions(recordings)[0])
    before = (s.n_events, s.end_reason, s.practice_blocks, s.started, s.participant, s.block_order)
    assert before[0] > 100 and before[1] == "completed"
    s.release_events()
    assert s.events == []
    assert (s.n_events, s.end_reason, s.practice_blocks, s.started, s.participant, s.block_order) == before


def test_analyze_with_two_processes_and_sliced_csv_writes_the_same_files(recordings: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.run
    from analysis.run import analyze
    from analysis.summary import build_summary

    one = analyze(recordings, tmp_path / "one", workers=1)
    monkeypatch.setattr(analysis.run, "CSV_SLICE_ROWS", 7)  # many slices even for these small tables
    two = analyze(recordings, tmp_path / "two", workers=2)
    names = sorted(p.name for p in (tmp_path / "one").glob("*.csv"))
    assert "events.csv" in names and "summary.csv" in names
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    trials = one.trials[one.trials["practice"] != True]  # noqa: E712 (nullable boolean)
    pd.testing.assert_frame_equal(build_summary(trials, workers=2), build_summary(trials, workers=1))
    pd.testing.assert_frame_equal(one.summary, two.summary)
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        build_summary(trials, workers=0)
