"""NASA-TLX arithmetic (Hart & Staveland 1988) and the validation of its events; expected values by hand."""

from __future__ import annotations

import pytest

from workbench.domain import events as ev
from workbench.domain.instruments import (
    TLX_PAIRS,
    TLX_SUBSCALES,
    check_tlx_rating,
    raw_tlx,
    tlx_weights,
    weighted_tlx,
)

RATINGS = {"mental_demand": 70, "physical_demand": 10, "temporal_demand": 55, "performance": 30, "effort": 60,
           "frustration": 25}


def test_raw_tlx_is_the_mean():
    assert raw_tlx(RATINGS) == pytest.approx((70 + 10 + 55 + 30 + 60 + 25) / 6)  # 41.667
    with pytest.raises(ValueError, match="missing effort"):
        raw_tlx({k: v for k, v in RATINGS.items() if k != "effort"})


def test_weights_from_15_pairs_and_weighted_tlx():
    assert len(TLX_PAIRS) == 15 and TLX_PAIRS[0] == ("mental_demand", "physical_demand")
    # Always prefer the subscale listed first in TLX_SUBSCALES: weights 5, 4, 3, 2, 1, 0.
    choices = [a for a, _ in TLX_PAIRS]
    assert tlx_weights(choices) == dict(zip(TLX_SUBSCALES, (5, 4, 3, 2, 1, 0)))
    # (70*5 + 10*4 + 55*3 + 30*2 + 60*1 + 25*0) / 15 = 675 / 15 = 45
    assert weighted_tlx(RATINGS, choices) == pytest.approx(45.0)
    with pytest.raises(ValueError, match="need 15 choices"):
        tlx_weights(choices[:14])
    with pytest.raises(ValueError, match="choice 0 must be mental_demand or physical_demand"):
        tlx_weights(["effort"] + choices[1:])


@pytest.mark.parametrize("bad", [-5, 101, 7, 2.5, True, "50"])
def test_ratings_are_ints_0_to_100_in_steps_of_5(bad):
    with pytest.raises(ValueError):
        check_tlx_rating("effort", bad)


def test_nasa_tlx_events_validate():
    payload = ev.payload_from_dict("rating.nasa_tlx", {"block_id": "b1", **RATINGS})
    assert payload == ev.RatingNasaTlx("b1", 70, 10, 55, 30, 60, 25)
    ev.check_envelope(ev.RatingNasaTlx, "console", None)
    with pytest.raises(ev.EventValidationError, match="performance must be 0-100 in steps of 5, got 33"):
        ev.payload_from_dict("rating.nasa_tlx", {"block_id": "b1", **RATINGS, "performance": 33})
    with pytest.raises(ev.EventValidationError, match="rating.nasa_tlx.effort must be integer"):
        ev.payload_from_dict("rating.nasa_tlx", {"block_id": "b1", **RATINGS, "effort": 50.0})
    weights = ev.payload_from_dict("rating.nasa_tlx_weights", {"block_id": "b1", "choices": [b for _, b in TLX_PAIRS]})
    assert len(weights.choices) == 15
    with pytest.raises(ev.EventValidationError, match="choice 14 must be effort or frustration"):
        ev.payload_from_dict("rating.nasa_tlx_weights", {"block_id": "b1", "choices": [b for _, b in TLX_PAIRS][:14] + ["x"]})
