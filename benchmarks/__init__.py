"""Benchmarks (``workbench bench``, ``make bench``): each prints its figures next to a baseline measured in the same
run."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (``q`` in 0-1) of ``values``: the smallest value with at least ``q`` of them
    at or below it (numpy's ``inverted_cdf``; of 20 values the p95 is the 19th, of 60 the 57th). NaN when empty."""
    import numpy as np

    return float(np.percentile(values, q * 100, method="inverted_cdf")) if len(values) else float("nan")
