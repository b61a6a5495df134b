"""What ``report.html`` says under a measure that has no statistics rows.

"No data" is only true when the measure has no value at all. A measure with values but a single condition (one
modality, one congruence level) has plotted means and nothing to compare them with; a reader who sees a point with
"No data for this measure." under it cannot tell which is meant, so the sentence names the reason and the counts.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

CONTRASTS: tuple[tuple[str, str, str], ...] = (
    ("modality", "modality", "audio"),
    ("congruence", "congruence level", "congruent"),
)
"""``(column of the analysis frame, what a level is called, the reference level)`` for each contrast
:mod:`analysis.summary` computes (a level is compared with the reference only)."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def no_rows_note(analysed: pd.DataFrame, measure: str, contrasts: Sequence[tuple[str, str, str]] = CONTRASTS) -> str:
    """The sentence (plain text, not HTML-escaped) for ``measure`` when ``summary.csv`` has no row for it.

    ``analysed``: the report's analysis frame (one row per non-practice call, with ``participant`` and the contrast
    columns of ``contrasts``). Returns "No data for this measure." when no call has a value; otherwise says why
    there is no comparison, e.g. "No comparison: the calls with a value have one modality only (video) and one
    congruence level only (congruent); n = 1 participant, 1 call." Raises ``KeyError`` when ``measure`` or
    ``participant`` is not a column of ``analysed``.
    """
    valued = analysed[analysed[measure].notna()]
    if valued.empty:
        return "No data for this measure."
    reasons = []
    for column, singular, reference in contrasts:
        if column not in valued:
            continue
        levels = sorted(str(v) for v in valued[column].dropna().unique())
        if not levels:
            reasons.append(f"no {singular}")
        elif len(levels) == 1:
            reasons.append(f"one {singular} only ({levels[0]})")
        else:
            reasons.append(f"no {reference} calls to compare {', '.join(levels)} with" if reference not in levels
                           else f"{', '.join(levels)} but too few participants with both")
    counts = (f"n = {_plural(int(valued['participant'].nunique()), 'participant')}, "
              f"{_plural(len(valued), 'call')} with a value")
    why = " and ".join(reasons) if reasons else "too few calls"
    return f"No comparison: the calls with a value have {why}; {counts}."
