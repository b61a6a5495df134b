"""Analysis of automated aids (issue 11): simulated sessions with known following rates (workbench.simulate.
automation) are analysed (analysis.automation) and the rates are recovered within their 95% CIs; the tables are
written by ``workbench analyze`` as CSV + Parquet with codebook entries and a report section; the screening table
compares possible disagreement with designed disagreement on real images."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.automation import automation_tables
from analysis.load import load_session
from analysis.run import analyze
from tests.conftest import REPO
from workbench.simulate.automation import AutomationRates, simulate_automation
from workbench.store.scenarios import load_scenario

STUDY = REPO / "experiments" / "multi-caller" / "advice-study.toml"
RATES = AutomationRates(proposal_recall=0.8, false_proposal_rate=0.1, accept_true=0.85, accept_false=0.3,
                        advice_accuracy=0.75, follow_advice=0.6, own_accuracy=0.7)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("auto")
    return simulate_automation(load_scenario(STUDY), STUDY.read_bytes(), RATES, participants=60, seed=7, out=out)


def _row(summary: pd.DataFrame, measure: str, level: str) -> dict:
    rows = summary[(summary["measure"] == measure) & (summary["level"] == level)].to_dict("records")
    assert len(rows) == 1, (measure, level)
    return rows[0]


@pytest.mark.slow
def test_the_analysis_recovers_the_simulated_rates_within_their_cis(study: list[Path]) -> None:
    tables = automation_tables([load_session(p) for p in study])
    summary = tables["automation_summary"]
    expected = RATES.expected()
    # true pairs per session: 3 + 3 (two three-caller incidents); false within-block pairs: 7 + 7
    k_true, k_false = 6 * 60 * 0.8, 14 * 60 * 0.1
    checks = {
        ("proposal_recall", "all"): expected["proposal_recall"],
        ("proposal_precision", "all"): k_true / (k_true + k_false),
        ("proposal_accepted", "right"): expected["accept_true"],
        ("proposal_accepted", "wrong"): expected["accept_false"],
        ("advice_agreement", "all"): expected["advice_agreement"],
        ("advice_followed", "wrong"): expected["followed_wrong_advice"],
        ("urgency_accuracy", "no_advice"): expected["accuracy_without_advice"],
        ("urgency_accuracy", "wrong_advice"): expected["accuracy_with_wrong_advice"],
        ("urgency_accuracy", "right_advice"): expected["accuracy_with_right_advice"],
    }
    for (measure, level), truth in checks.items():
        row = _row(summary, measure, level)
        assert row["ci_low"] <= truth <= row["ci_high"], f"{measure}/{level}: {truth:.3f} not in {row}"
        assert row["n"] >= 40, row
    bias = _row(summary, "automation_bias", "no_advice - wrong_advice")
    true_bias = expected["accuracy_without_advice"] - expected["accuracy_with_wrong_advice"]
    assert bias["ci_low"] <= true_bias <= bias["ci_high"] and bias["ci_low"] > 0  # the bias is detected
    kappa = _row(summary, "advice_kappa", "all")
    assert 0.4 < kappa["estimate"] < 0.8 and kappa["ci_low"] < kappa["estimate"] < kappa["ci_high"]
    # per-urgency agreement exists for every true urgency of the design
    assert {_row(summary, "advice_agreement", u)["n"] > 0 for u in ("spoed", "nu", "later")} == {True}
    advice = tables["automation_advice"]
    assert set(advice["advice_on"].astype(bool)) == {True, False}
    assert advice[~advice["advice_on"].astype(bool)]["advice_shown"].isna().all()


def test_analyze_writes_the_tables_codebook_and_report(study: list[Path], tmp_path: Path) -> None:
    result = analyze(study[0].parent / study[0].name, tmp_path / "out")
    out = tmp_path / "out"
    for name in ("automation_proposals", "automation_advice", "automation_screening", "automation_summary"):
        csv = pd.read_csv(out / f"{name}.csv")
        parquet = pd.read_parquet(out / f"{name}.parquet")
        assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet)
        assert f"## {name}.csv" in (out / "codebook.md").read_text()
    assert len(result.automation["automation_advice"]) == 10
    assert "Automated aids: link proposals, triage advice, screening" in (out / "report.html").read_text()


def test_screening_scores_the_designed_disagreement_on_the_generated_fire_photo(tmp_path: Path) -> None:
    """The multi-caller neighbour says 'a little smoke' while the photo shows a large fire (designed disagreement):
    the screening's fire_smoke_size score is higher for that call than for the passer-by who describes it right."""
    import cv2

    from analysis.automation import screening_rows
    from workbench.domain import events as ev
    from workbench.runner.demo_media import resolve_media
    from workbench.store.recordings import Recordings, SessionHeader, sha256_hex

    multi = (REPO / "experiments" / "multi-caller" / "scenario.toml").read_bytes()
    scenario = load_scenario(REPO / "experiments" / "multi-caller" / "scenario.toml")
    header = SessionHeader("scr", "P01", "multi-caller", sha256_hex(multi), ["multi"], 0, "0.1.0",
                           "2026-03-01T09:00:00+00:00")
    folder = Recordings(tmp_path / "rec").create_session(header, scenario_bytes=multi)
    log = folder.event_log()
    log.append("ingest", ev.SessionStarted("P01", "multi-caller", sha256_hex(multi), 0, ["multi"], "0.1.0"))
    photo = resolve_media("builtin:demo_fire_photo", tmp_path / "cache").read_bytes()
    display = cv2.imencode(".jpg", cv2.imread(str(resolve_media("builtin:demo_fire_photo", tmp_path / "cache"))))[1]
    for cid, spec_id in (("k1", "fire-neighbour"), ("k2", "fire-passerby")):
        spec = scenario.call(spec_id)
        log.append("ingest", ev.CallCreated(spec_id, "multi", "photo", spec.caller_label), call_id=cid)
        for i, u in enumerate(spec.utterances):
            log.append("runner", ev.CallerUtterance(i, u.text, u.at_s), call_id=cid)
        orig, sha = folder.store_media(cid, "photo-p1.jpg", photo)
        disp, _ = folder.store_media(cid, "photo-p1-display.jpg", display.tobytes())
        log.append("ingest", ev.MediaPhotoReceived("p1", orig, disp, sha, len(photo), "JPEG", 1280, 960, "f.jpg"),
                   call_id=cid)
    folder.close()
    rows = screening_rows(load_session(folder.path))
    fire = {r["scenario_call_id"]: r for r in rows if r["aspect"] == "fire_smoke_size"}
    assert fire["fire-neighbour"]["designed_disagreement"] is True
    assert fire["fire-passerby"]["designed_disagreement"] is False
    assert fire["fire-neighbour"]["possible_score"] > fire["fire-passerby"]["possible_score"]
    assert "caller: small" in fire["fire-neighbour"]["evidence"]


def test_cli_simulate_automation_then_analyze(tmp_path: Path, capsys) -> None:
    from workbench.cli import main as cli_main

    out = tmp_path / "rec"
    assert cli_main(["simulate-automation", "--participants", "2", "--scenario", str(STUDY), "--seed", "3",
                     "--out", str(out), "--follow-advice", "1", "--advice-accuracy", "0"]) == 0
    assert "2 simulated session(s)" in capsys.readouterr().out
    tables = automation_tables([load_session(p) for p in sorted(out.iterdir())])
    followed = _row(tables["automation_summary"], "advice_followed", "wrong")
    assert (followed["k"], followed["n"]) == (10, 10)  # always wrong advice, always followed
    assert cli_main(["simulate-automation", "--participants", "1", "--scenario", str(STUDY), "--out",
                     str(tmp_path / "x"), "--own-accuracy", "1.5"]) == 2
    assert "own_accuracy must be a probability" in capsys.readouterr().err
