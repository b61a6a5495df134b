"""LoadedSession.practice_blocks is computed once per event list (issue 9) and still follows the events it is
asked about: a new list, a longer list, released events."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from analysis.load import find_sessions, load_session
from workbench.domain import events as ev
from workbench.simulate import load_effects, simulate
from workbench.store.scenarios import load_scenario

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "experiments" / "effects" / "scenario.toml"


def test_practice_blocks_follow_the_event_list(tmp_path) -> None:
    out = tmp_path / "rec"
    simulate(load_scenario(SCENARIO), SCENARIO.read_bytes(), load_effects(REPO / "experiments/effects/example.toml"),
             participants=1, seed=4, out=out, calls_per_block=1, store_photos=False)
    s = load_session(find_sessions(out)[0])
    started = [e for e in s.events if isinstance(e.data, ev.BlockStarted)]
    assert len(started) >= 2
    assert s.practice_blocks == set()  # this scenario has no practice block
    first = started[0]
    marked = replace(first, seq=first.seq + 100000, data=ev.BlockPractice(block_id=first.data.block_id))
    s.events.append(marked)  # the same list, one longer
    assert s.practice_blocks == {first.data.block_id}
    s.events = [e for e in s.events if e is not marked]  # a new list
    assert s.practice_blocks == set()
    s.events = s.events + [marked]
    result = s.practice_blocks
    result.add("changed by the caller")  # a copy: the cached value stays
    assert s.practice_blocks == {first.data.block_id}
    s.release_events()
    assert s.events == [] and s.practice_blocks == {first.data.block_id}
