"""The element-cost diagnostic (``benchmarks.console_widget_cost``): it refuses kinds it cannot draw, and its page
draws every kind it offers. The measurement itself runs a browser and is a benchmark (``python -m
benchmarks.console_widget_cost``)."""

from __future__ import annotations

import pytest

from benchmarks.console_widget_cost import _APP, KINDS, measure


def test_an_unknown_kind_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="unknown kinds \\['sliders'\\]"):
        measure(("none", "sliders"))


@pytest.mark.parametrize("kind", KINDS)
def test_the_page_draws_each_kind_it_offers(kind: str) -> None:
    from streamlit.testing.v1 import AppTest

    page = AppTest.from_string(_APP)
    page.query_params["kind"] = kind
    page.query_params["copies"] = "2"
    page.session_state["show"] = True
    page.run()
    assert not page.exception
    drawn = {"selectbox": page.selectbox, "multiselect": page.multiselect, "radio": page.radio,
             "text_input": page.text_input, "text_area": page.text_area, "checkbox": page.checkbox,
             "markdown": page.markdown, "columns4": page.columns}
    if kind in drawn:
        assert len(drawn[kind]) == (8 if kind == "columns4" else 2)
    assert page.button(key="end_0") is not None  # the marker the browser waits for
