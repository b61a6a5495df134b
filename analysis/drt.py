"""Detection Response Task scoring (ISO 17488), on tidy data, ready for the DRT events.

ISO 17488:2016, *Road vehicles - Transport information and control systems - Detection-response task (DRT) for
assessing attentional effects of cognitive load in driving*: a stimulus every 3-5 s, shown 1 s or until a response;
a response 100-2500 ms after a stimulus onset is a hit (its response time is the hit RT); a response less than
100 ms after onset is too early to be a reaction to it; a stimulus without a hit is a miss.

The DRT events (``drt.stimulus``, ``drt.response``) are being declared by the console developer; until they exist
in ``workbench/domain/events.py``, :func:`score_drt` is used by tests only and ``drt.csv`` is not written.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

HIT_MIN_MS = 100.0
"""Earliest response after onset that counts as a hit, ms (inclusive; ISO 17488)."""
HIT_MAX_MS = 2500.0
"""Latest response after onset that counts as a hit, ms (inclusive; ISO 17488)."""

SCORED_COLUMNS = ("stimulus", "onset_ms", "outcome", "rt_ms", "early_responses")


def score_drt(onsets_ms: pd.Series | list[float], responses_ms: pd.Series | list[float]) -> pd.DataFrame:
    """Score one stream of DRT stimuli (onset times, ms, one clock) against the responses (times, ms, same clock).

    Each stimulus owns the responses from its onset up to the next stimulus' onset. The first owned response with a
    latency of 100-2500 ms (inclusive) makes it a ``hit`` with ``rt_ms`` = that latency; owned responses under
    100 ms are counted in ``early_responses`` (they are not reactions to it); a stimulus without a hit is a ``miss``
    (``rt_ms`` NaN). Responses before the first onset belong to no stimulus and are not counted.

    Returns one row per stimulus in onset order with columns ``stimulus`` (0-based index), ``onset_ms``,
    ``outcome`` (``hit``/``miss``), ``rt_ms`` (float) and ``early_responses`` (int). Raises ``ValueError`` for a
    missing (NaN) time.
    """
    onsets = np.sort(np.asarray(onsets_ms, dtype=float))
    responses = np.sort(np.asarray(responses_ms, dtype=float))
    if np.isnan(onsets).any() or np.isnan(responses).any():
        raise ValueError("DRT times must not be missing (NaN)")
    rows = []
    for i, onset in enumerate(onsets):
        end = onsets[i + 1] if i + 1 < len(onsets) else math.inf
        owned = responses[(responses >= onset) & (responses < end)] - onset
        early = int((owned < HIT_MIN_MS).sum())
        valid = owned[(owned >= HIT_MIN_MS) & (owned <= HIT_MAX_MS)]
        hit = len(valid) > 0
        rows.append({"stimulus": i, "onset_ms": float(onset), "outcome": "hit" if hit else "miss",
                     "rt_ms": float(valid[0]) if hit else math.nan, "early_responses": early})
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
