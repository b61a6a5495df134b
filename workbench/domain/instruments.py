"""The effort instruments' arithmetic: NASA-TLX (raw and weighted) and Detection Response Task scoring. Pure.

Used by the console (validation, live DRT performance) and by the analysis; nothing here does I/O.

NASA-TLX: Hart, S. G., & Staveland, L. E. (1988). Development of NASA-TLX (Task Load Index): Results of empirical
and theoretical research. In P. A. Hancock & N. Meshkati (Eds.), *Human Mental Workload* (pp. 139-183).
North-Holland. Six subscales rated 0-100 in steps of 5; raw TLX = their unweighted mean; weighted TLX = sum of
rating x weight / 15, where a subscale's weight (0-5) is how often it was chosen in the 15 pairwise comparisons.

DRT: ISO 17488:2016, *Road vehicles - Transport information and control systems - Detection-response task (DRT)
for assessing attentional effects of cognitive load in driving*. A stimulus every 3-5 s (uniformly at random),
shown 1 s or until a response; a response 100-2500 ms after a stimulus onset is a hit (its response time is the
hit RT); a response under 100 ms is too early to be a reaction to that stimulus; a stimulus without a hit is a miss.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

# --- NASA-TLX -------------------------------------------------------------------------------------------------------

TLX_SUBSCALES: tuple[str, ...] = (
    "mental_demand",
    "physical_demand",
    "temporal_demand",
    "performance",
    "effort",
    "frustration",
)
"""The six NASA-TLX subscales in the order of the paper form (field names of ``rating.nasa_tlx``)."""

TLX_LABELS: dict[str, tuple[str, str, str, str]] = {
    "mental_demand": ("Mental demand", "How mentally demanding was the task?", "Low", "High"),
    "physical_demand": ("Physical demand", "How physically demanding was the task?", "Low", "High"),
    "temporal_demand": ("Temporal demand", "How hurried or rushed was the pace of the task?", "Low", "High"),
    "performance": ("Performance", "How successful were you in accomplishing what you were asked to do?",
                    "Good", "Poor"),
    "effort": ("Effort", "How hard did you have to work to accomplish your level of performance?",
               "Low", "High"),
    "frustration": ("Frustration", "How insecure, discouraged, irritated, stressed and annoyed were you?",
                    "Low", "High"),
}
"""Per subscale: (title, question, left anchor at 0, right anchor at 100), as on the NASA-TLX form: *low* to *high*,
except performance, which runs from *good* (0) to *poor* (100)."""

TLX_MIN, TLX_MAX, TLX_STEP = 0, 100, 5
"""Range and step of a NASA-TLX subscale rating (the form's 21 marks)."""

TLX_PAIRS: tuple[tuple[str, str], ...] = tuple(itertools.combinations(TLX_SUBSCALES, 2))
"""The 15 pairwise comparisons for the weights, in a fixed order (``itertools.combinations`` of
:data:`TLX_SUBSCALES`); ``rating.nasa_tlx_weights.choices[i]`` is the subscale chosen from ``TLX_PAIRS[i]``."""


def check_tlx_rating(name: str, value: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an int 0-100 and a multiple of 5 (``name`` is put in the message)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer 0-100 in steps of 5, got {value!r}")
    if not (TLX_MIN <= value <= TLX_MAX) or value % TLX_STEP:
        raise ValueError(f"{name} must be 0-100 in steps of 5, got {value}")


def raw_tlx(ratings: Mapping[str, float]) -> float:
    """Raw TLX: the unweighted mean of the six subscale ratings (0-100).

    ``ratings`` maps every name of :data:`TLX_SUBSCALES` to its rating; raises ``ValueError`` if one is missing.
    """
    missing = [s for s in TLX_SUBSCALES if s not in ratings]
    if missing:
        raise ValueError(f"raw TLX needs all six subscales; missing {', '.join(missing)}")
    return sum(float(ratings[s]) for s in TLX_SUBSCALES) / len(TLX_SUBSCALES)


def check_tlx_choices(choices: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``choices`` holds 15 picks, each one of the two subscales of its pair."""
    if len(choices) != len(TLX_PAIRS):
        raise ValueError(f"NASA-TLX weights need {len(TLX_PAIRS)} choices (one per pair), got {len(choices)}")
    for i, (choice, pair) in enumerate(zip(choices, TLX_PAIRS)):
        if choice not in pair:
            raise ValueError(f"choice {i} must be {pair[0]} or {pair[1]}, got {choice!r}")


def tlx_weights(choices: Sequence[str]) -> dict[str, int]:
    """Weights (0-5, summing to 15) from the 15 pairwise choices (see :func:`check_tlx_choices`, which it runs)."""
    check_tlx_choices(choices)
    return {s: sum(1 for c in choices if c == s) for s in TLX_SUBSCALES}


def weighted_tlx(ratings: Mapping[str, float], choices: Sequence[str]) -> float:
    """Weighted TLX (0-100): sum over subscales of rating x weight, divided by 15 (Hart & Staveland 1988)."""
    weights = tlx_weights(choices)
    raw_tlx(ratings)  # the same missing-subscale check
    return sum(float(ratings[s]) * weights[s] for s in TLX_SUBSCALES) / len(TLX_PAIRS)


# --- Detection Response Task ----------------------------------------------------------------------------------------

DRT_HIT_MIN_MS = 100.0
"""Earliest response after onset that counts as a hit, ms (inclusive; ISO 17488)."""
DRT_HIT_MAX_MS = 2500.0
"""Latest response after onset that counts as a hit, ms (inclusive; ISO 17488)."""
DRT_ISI_MIN_MS = 3000.0
"""Shortest interval between two stimulus onsets, ms (ISO 17488)."""
DRT_ISI_MAX_MS = 5000.0
"""Longest interval between two stimulus onsets, ms (ISO 17488)."""
DRT_STIMULUS_MS = 1000.0
"""How long a stimulus is shown when nobody responds, ms (ISO 17488)."""


def classify_drt_response(rt_ms: float) -> str:
    """What one response ``rt_ms`` after a stimulus onset means for that stimulus (ISO 17488).

    ``"too_early"`` under 100 ms (no reaction to it; also a negative ``rt_ms``), ``"hit"`` from 100 to 2500 ms
    inclusive, ``"late"`` after 2500 ms (the stimulus is a miss). Raises ``ValueError`` for NaN.
    """
    if math.isnan(rt_ms):
        raise ValueError("a DRT response time must not be NaN")
    if rt_ms < DRT_HIT_MIN_MS:
        return "too_early"
    if rt_ms <= DRT_HIT_MAX_MS:
        return "hit"
    return "late"


@dataclass(frozen=True)
class DrtOutcome:
    """One scored stimulus.

    ``outcome`` is ``hit`` (a response 100-2500 ms after onset), ``too_early`` (no hit, but a response under
    100 ms) or ``miss`` (no hit and no early response); ``rt_ms`` is the first hit's response time (None unless a
    hit); ``early_responses`` counts responses under 100 ms.
    """

    stimulus_index: int
    onset_ms: float
    outcome: str
    rt_ms: float | None
    early_responses: int


def score_drt_stimuli(onsets_ms: Sequence[float], responses_ms: Iterable[float]) -> list[DrtOutcome]:
    """Score a stream of DRT stimuli against the responses (all times in ms on one clock).

    Each stimulus owns the responses from its onset up to the next onset (the last one owns every later response);
    responses before the first onset are ignored. Returns one :class:`DrtOutcome` per onset, in onset order
    (``stimulus_index`` is the position in that order). A response owned by a stimulus is classified with
    :func:`classify_drt_response`; the first hit makes the stimulus a hit. Raises ``ValueError`` for a NaN time.

    ``analysis.drt.score_drt`` is this function as a DataFrame (there ``too_early`` counts as a miss with
    ``early_responses`` > 0).
    """
    onsets = sorted(float(o) for o in onsets_ms)
    responses = sorted(float(r) for r in responses_ms)
    if any(math.isnan(t) for t in onsets + responses):
        raise ValueError("DRT times must not be missing (NaN)")
    out = []
    for i, onset in enumerate(onsets):
        end = onsets[i + 1] if i + 1 < len(onsets) else math.inf
        # responses are sorted: the ones owned by this stimulus are one slice (bisect, not a scan per stimulus)
        owned = [r - onset for r in responses[bisect.bisect_left(responses, onset):bisect.bisect_left(responses, end)]]
        kinds = [classify_drt_response(rt) for rt in owned]
        early = kinds.count("too_early")
        hit_rt = next((rt for rt, k in zip(owned, kinds) if k == "hit"), None)
        outcome = "hit" if hit_rt is not None else ("too_early" if early else "miss")
        out.append(DrtOutcome(i, onset, outcome, hit_rt, early))
    return out


@dataclass(frozen=True)
class DrtSummary:
    """Hit rate (0-1, NaN without stimuli) and mean hit RT (ms, NaN without hits) of scored stimuli."""

    n_stimuli: int
    hits: int
    misses: int
    too_early: int
    hit_rate: float
    mean_hit_rt_ms: float


def summarize_drt(outcomes: Sequence[DrtOutcome]) -> DrtSummary:
    """Counts, hit rate and mean hit RT of :func:`score_drt_stimuli`'s outcomes (``misses`` includes ``too_early``
    stimuli: neither is a hit)."""
    n = len(outcomes)
    rts = [o.rt_ms for o in outcomes if o.rt_ms is not None]
    early = sum(1 for o in outcomes if o.outcome == "too_early")
    return DrtSummary(
        n_stimuli=n,
        hits=len(rts),
        misses=n - len(rts),
        too_early=early,
        hit_rate=len(rts) / n if n else math.nan,
        mean_hit_rt_ms=sum(rts) / len(rts) if rts else math.nan,
    )
