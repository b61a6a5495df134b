"""The element-cost diagnostic (``benchmarks.console_widget_cost``): it refuses kinds it cannot draw, and its page
draws every kind it offers. The measurement itself runs a browser and is a benchmark (``python -m
benchmarks.console_widget_cost``)."""

from __future__ import annotations

import pytest

from benchmarks.console_widget_cost import _APP, KINDS, measure


def test_an_unknown_kind_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="unknown kinds \\['sliders'\\]"):
        measure(("none", "sliders"))


def test_the_page_draws_every_kind_it_offers() -> None:
    compile(_APP, "widgets.py", "exec")
    for kind in KINDS[1:]:
        assert f'kind == "{kind}"' in _APP, kind
