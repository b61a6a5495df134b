"""Detection Response Task scoring (ISO 17488), on tidy data, ready for the DRT events.

ISO 17488:2016, *Road vehicles - Transport information and control systems - Detection-response task (DRT) for
assessing attentional effects of cognitive load in driving*: a stimulus every 3-5 s, shown 1 s or until a response;
a response 100-2500 ms after a stimulus onset is a hit (its response time is the hit RT); a response less than
100 ms after onset is too early to be a reaction to it; a stimulus without a hit is a miss.

The scoring rule itself lives once, in ``workbench.domain.instruments`` (the console scores live with it too).
"""

from __future__ import annotations

import math

import pandas as pd

from workbench.domain.instruments import DRT_HIT_MAX_MS as HIT_MAX_MS
from workbench.domain.instruments import DRT_HIT_MIN_MS as HIT_MIN_MS
from workbench.domain.instruments import score_drt_stimuli

__all__ = ["HIT_MAX_MS", "HIT_MIN_MS", "SCORED_COLUMNS", "drt_summary", "score_drt"]

SCORED_COLUMNS = ("stimulus", "onset_ms", "outcome", "rt_ms", "early_responses")


def score_drt(onsets_ms: pd.Series | list[float], responses_ms: pd.Series | list[float]) -> pd.DataFrame:
    """Score one stream of DRT stimuli (onset times, ms, one clock) against the responses (times, ms, same clock)
    with :func:`workbench.domain.instruments.score_drt_stimuli`, as a table.

    Returns one row per stimulus in onset order with columns ``stimulus`` (0-based index), ``onset_ms``,
    ``outcome`` (``hit``/``miss``: a stimulus answered only too early is a miss here), ``rt_ms`` (float, NaN
    unless a hit) and ``early_responses`` (int). Raises ``ValueError`` for a missing (NaN) time.
    """
    outcomes = score_drt_stimuli(list(onsets_ms), list(responses_ms))
    rows = [
        {"stimulus": o.stimulus_index, "onset_ms": o.onset_ms, "outcome": "hit" if o.outcome == "hit" else "miss",
         "rt_ms": o.rt_ms if o.rt_ms is not None else math.nan, "early_responses": o.early_responses}
        for o in outcomes
    ]
    return pd.DataFrame(rows, columns=list(SCORED_COLUMNS))


def drt_summary(scored: pd.DataFrame) -> dict[str, float | int]:
    """Hit rate and mean hit RT of scored stimuli (:func:`score_drt`): ``n_stimuli``, ``hits``, ``misses``,
    ``hit_rate`` (hits / stimuli, NaN without stimuli), ``mean_hit_rt_ms`` (NaN without hits) and
    ``early_responses``."""
    n = len(scored)
    hits = int((scored["outcome"] == "hit").sum())
    rts = scored.loc[scored["outcome"] == "hit", "rt_ms"]
    return {"n_stimuli": n, "hits": hits, "misses": n - hits, "hit_rate": hits / n if n else math.nan,
            "mean_hit_rt_ms": float(rts.mean()) if hits else math.nan,
            "early_responses": int(scored["early_responses"].sum())}
