"""The console benchmark's verdict line (``benchmarks.bench_console``): the share of interactions over the limit,
with the exact binomial interval that says how far one run's p95 can be trusted. The benchmark itself runs a
browser (``workbench bench console``)."""

from __future__ import annotations

from benchmarks import percentile
from benchmarks.bench_console import share_over_note


def test_one_slow_click_in_twenty_is_five_percent_with_its_exact_interval() -> None:
    values = [120.0] * 19 + [250.0]
    note = share_over_note(values, 200.0)
    # Clopper-Pearson for 1 of 20: 0.13% to 24.87% (scipy.stats.binomtest, method "exact").
    assert note.startswith("19/20 within 200 ms; over: 5.0% (95% CI 0.1%-24.9%;")
    assert percentile(values, 0.95) == 120.0  # nearest rank: p95 is the 19th of 20, the target holds, barely
    assert percentile(values[:-1] + [250.0, 250.0], 0.95) == 250.0  # 2 of 21 over: the 20th is over
    assert percentile(list(range(1, 61)), 0.95) == 57.0 and percentile(list(range(1, 31)), 0.95) == 29.0


def test_a_value_at_the_limit_is_within_and_none_over_gives_a_zero_lower_bound() -> None:
    note = share_over_note([200.0] * 60, 200.0)
    assert note.startswith("60/60 within 200 ms; over: 0.0% (95% CI 0.0%-6.0%;")
    assert share_over_note([], 200.0) == "no interactions"
