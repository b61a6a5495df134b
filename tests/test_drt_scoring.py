"""DRT scoring (ISO 17488:2016): a hit is a response 100-2500 ms after onset; earlier is too early; later or none a
miss. Hand-made stimulus streams with the expected outcome beside each."""

from __future__ import annotations

import math

import pytest

from workbench.domain import events as ev
from workbench.domain.instruments import (
    DrtOutcome,
    classify_drt_response,
    score_drt_stimuli,
    summarize_drt,
)


def test_responses_50_300_and_2600_ms_after_onset_are_too_early_hit_and_miss():
    onsets = [10_000.0, 14_000.0, 18_500.0]
    responses = [10_050.0, 14_300.0, 18_500.0 + 2_600.0]
    assert [classify_drt_response(r - o) for o, r in zip(onsets, responses)] == ["too_early", "hit", "late"]
    assert score_drt_stimuli(onsets, responses) == [
        DrtOutcome(0, 10_000.0, "too_early", None, 1),
        DrtOutcome(1, 14_000.0, "hit", 300.0, 0),
        DrtOutcome(2, 18_500.0, "miss", None, 0),
    ]
    summary = summarize_drt(score_drt_stimuli(onsets, responses))
    assert (summary.n_stimuli, summary.hits, summary.misses, summary.too_early) == (3, 1, 2, 1)
    assert summary.hit_rate == pytest.approx(1 / 3) and summary.mean_hit_rt_ms == 300.0


@pytest.mark.parametrize(("rt", "kind"), [(-5.0, "too_early"), (99.999, "too_early"), (100.0, "hit"),
                                          (2500.0, "hit"), (2500.001, "late")])
def test_bounds_are_inclusive(rt, kind):
    assert classify_drt_response(rt) == kind


def test_an_early_press_then_a_real_reaction_is_a_hit_and_responses_belong_to_the_latest_onset():
    outcomes = score_drt_stimuli([0.0, 4000.0], [-300.0, 40.0, 450.0, 3990.0, 4120.0])
    assert outcomes[0] == DrtOutcome(0, 0.0, "hit", 450.0, 1)
    # 3990 ms is after the first stimulus' 2500 ms window, and before the second onset: it counts for neither.
    assert outcomes[1] == DrtOutcome(1, 4000.0, "hit", 120.0, 0)


def test_empty_and_nan():
    s = summarize_drt(score_drt_stimuli([], [100.0]))
    assert s.n_stimuli == 0 and math.isnan(s.hit_rate) and math.isnan(s.mean_hit_rt_ms)
    with pytest.raises(ValueError, match="NaN"):
        score_drt_stimuli([math.nan], [])
    with pytest.raises(ValueError, match="NaN"):
        classify_drt_response(math.nan)


def test_drt_events_validate():
    stim = ev.payload_from_dict("drt.stimulus", {
        "run_id": "r1", "stimulus_index": 0, "kind": "visual", "scheduled_onset_ms": 1000.0, "onset_ms": 1003.5,
        "clock_offset_ms": 12.0, "clock_rtt_ms": 0.8})
    assert stim.onset_ms - stim.scheduled_onset_ms == pytest.approx(3.5)
    ev.check_envelope(ev.DrtStimulus, "console", None)
    with pytest.raises(ev.EventValidationError, match="takes no call_id"):
        ev.check_envelope(ev.DrtStimulus, "console", "c1")
    with pytest.raises(ev.EventValidationError, match="kind must be one of"):
        ev.DrtStimulus("r", 0, "smell", 0.0, 0.0, 0.0, 0.0).check()
    with pytest.raises(ev.EventValidationError, match="input must be one of"):
        ev.DrtResponse("r", 0, 1.0, 1.0, "voice").check()
