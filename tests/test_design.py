"""Experiment designs: the Williams Latin square, its seeded relabelling (golden orders for seed 1), practice blocks
and the scenario's [design] table, breaks and manipulations as the loader reads them."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from workbench.domain.design import (
    BlockRef,
    DesignError,
    block_order,
    participant_index,
    williams_orders,
    williams_square,
)
from workbench.store.scenarios import ScenarioError, parse_scenario


def test_golden_orders_for_seed_1() -> None:
    # Literal expected orders: a change here changes which participant worked which order; never edit casually.
    assert williams_orders(["audio", "photo", "video"], 1) == [
        ["photo", "video", "audio"],
        ["video", "audio", "photo"],
        ["audio", "photo", "video"],
        ["audio", "video", "photo"],
        ["photo", "audio", "video"],
        ["video", "photo", "audio"],
    ]
    assert williams_orders(["audio", "photo", "video", "video-dark"], 1) == [
        ["video-dark", "audio", "photo", "video"],
        ["audio", "video", "video-dark", "photo"],
        ["video", "photo", "audio", "video-dark"],
        ["photo", "video-dark", "video", "audio"],
    ]


def test_williams_square_first_rows_are_the_textbook_ones() -> None:
    # Bradley (1958) / Williams (1949): first row 0, 1, n-1, 2, n-2, ...
    assert williams_square(4)[0] == [0, 1, 3, 2]
    assert williams_square(6)[0] == [0, 1, 5, 2, 4, 3]
    assert williams_square(1) == [[0]]


@pytest.mark.parametrize("n", range(2, 9))
def test_williams_square_is_latin_and_carry_over_balanced(n: int) -> None:
    rows = williams_square(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    for row in rows:
        assert sorted(row) == list(range(n))
    for position in range(n):  # every treatment equally often at every position
        counts = Counter(row[position] for row in rows)
        assert set(counts.values()) == {len(rows) // n}
    pairs = Counter((a, b) for row in rows for a, b in zip(row, row[1:]))
    assert set(pairs) == set(itertools.permutations(range(n), 2))  # every ordered pair occurs ...
    assert len(set(pairs.values())) == 1  # ... equally often


def test_same_seed_same_square_other_seed_other_labels() -> None:
    ids = ["a", "b", "c", "d"]
    assert williams_orders(ids, 7) == williams_orders(ids, 7)
    assert any(williams_orders(ids, s) != williams_orders(ids, 1) for s in range(2, 10))


def test_block_order_practice_first_then_row_of_participant() -> None:
    blocks = [BlockRef("audio"), BlockRef("practice", practice=True), BlockRef("photo"), BlockRef("video")]
    assert block_order(blocks, "none", 1, 4) == ["practice", "audio", "photo", "video"]
    assert block_order(blocks, "latin_square", 1, 0) == ["practice", "photo", "video", "audio"]
    assert block_order(blocks, "latin_square", 1, 1) == ["practice", "video", "audio", "photo"]
    assert block_order(blocks, "latin_square", 1, 6) == block_order(blocks, "latin_square", 1, 0)  # wraps at 6 rows
    with pytest.raises(DesignError, match="unknown counterbalancing"):
        block_order(blocks, "random", 1, 0)
    with pytest.raises(DesignError, match=">= 0"):
        block_order(blocks, "latin_square", 1, -1)


def test_participant_index() -> None:
    assert participant_index("P01", []) == 0
    assert participant_index("pp-12", []) == 11
    assert participant_index("bob", ["ann", "bob"]) == 1
    with pytest.raises(DesignError, match="not in the design"):
        participant_index("eve", ["ann", "bob"])
    with pytest.raises(DesignError, match="cannot derive"):
        participant_index("anna", [])


SCENARIO = b"""
id = "design-test"
[design]
counterbalance = "latin_square"
participants = ["P01", "P02", "P03"]

[[blocks]]
id = "warm-up"
modality = "video"
practice = true
break_s = 5
calls = ["c0"]

[[blocks]]
id = "audio"
modality = "audio"
calls = ["c1"]

[[calls]]
id = "c0"
arrival_s = 0
manipulation.video_start = "no_frames"
manipulation.video_scale = 0.5
manipulation.video_fps = 5
manipulation.blur_px = 3
manipulation.degrade = ["photos"]
manipulation.photo_delay_s = 4
[calls.truth]
incident_type = "fire"
urgency = "nu"

[[calls]]
id = "c1"
arrival_s = 1
[calls.truth]
incident_type = "fire"
urgency = "nu"
"""


def test_scenario_design_practice_break_and_manipulation_load() -> None:
    scenario = parse_scenario(SCENARIO, check_media=False)
    assert scenario.design.counterbalance == "latin_square"
    assert scenario.design.participants == ("P01", "P02", "P03")
    warm = scenario.block("warm-up")
    assert warm.practice and warm.break_s == 5
    assert not scenario.block("audio").practice and scenario.block("audio").break_s == 0
    m = scenario.call("c0").manipulation
    assert (m.video_start, m.video_scale, m.video_fps, m.blur_px, m.degrade, m.photo_delay_s) == (
        "no_frames", 0.5, 5, 3, ("photos",), 4
    )
    assert m.degrades_images
    clean = scenario.call("c1").manipulation
    assert clean.video_start == "ok" and clean.video_drop_at_s is None and not clean.degrades_images


def test_bad_manipulation_and_design_values_are_named() -> None:
    bad = SCENARIO.replace(b'video_start = "no_frames"', b'video_start = "late"').replace(
        b'counterbalance = "latin_square"', b'counterbalance = "random"'
    )
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(bad, "s.toml", check_media=False)
    text = str(exc.value)
    assert "s.toml: calls.0.manipulation.video_start:" in text
    assert "s.toml: design.counterbalance:" in text


def test_the_documented_example_shift_is_valid_and_counterbalanced() -> None:
    from pathlib import Path

    from workbench.runner.player import planned_block_order

    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenario-format.md").read_text()
    example = doc.split("### Example: a counterbalanced shift")[1].split("```toml\n")[1].split("```")[0]
    scenario = parse_scenario(example.encode(), check_media=False)
    orders = [planned_block_order(scenario, p, 1) for p in scenario.design.participants]
    assert all(order[0] == "practice" for order in orders)
    assert sorted(tuple(o[1:]) for o in orders) == sorted(
        tuple(r) for r in williams_orders(["audio", "photo", "video"], 1))  # the six rows, one per participant
    assert scenario.call("bike-crash").manipulation.photo_delay_s == 20
    assert scenario.call("warm-up").media.voice == "en"
