"""The researcher's page analyses a recordings folder: statistics, trials, data quality, heat map, report."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.console.launch import RESEARCH_PATH
from workbench.simulate.effects import load_effects
from workbench.simulate.simulator import simulate
from workbench.store.scenarios import load_scenario

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_research_page_shows_the_analysis_of_simulated_sessions(tmp_path: Path, monkeypatch) -> None:
    scenario_path = REPO / "experiments" / "effects" / "scenario.toml"
    scenario = load_scenario(scenario_path)
    recordings = tmp_path / "recordings"
    simulate(scenario, scenario_path.read_bytes(), load_effects(REPO / "experiments" / "effects" / "example.toml"),
             participants=4, seed=2, out=recordings)
    monkeypatch.setenv("WORKBENCH_RECORDINGS", str(recordings))
    monkeypatch.setenv("WORKBENCH_RESULTS", str(tmp_path / "results"))
    at = AppTest.from_file(str(RESEARCH_PATH), default_timeout=180).run()
    assert not at.exception
    assert any("Press Analyse" in str(i.value) for i in at.info)
    at.button(key="analyse").click().run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][:2] == ["4", str(4 * sum(len(b.call_ids) for b in scenario.blocks))]
    at.selectbox(key="measure").set_value("rsme").run()
    shown = at.dataframe[0].value  # the first table on the page is the statistics of the chosen measure
    assert set(shown["measure"]) == {"rsme"} and {"paired_t", "mixedlm"} <= set(shown["method"])
    assert (tmp_path / "results" / "report.html").is_file()
    assert (tmp_path / "results" / "summary.csv").is_file()


def test_research_page_explains_an_empty_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_RECORDINGS", str(tmp_path))
    at = AppTest.from_file(str(RESEARCH_PATH), default_timeout=30).run()
    at.button(key="analyse").click().run()
    assert not at.exception
    assert any("no sessions found" in str(e.value) for e in at.error)
