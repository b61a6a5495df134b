"""report.html under a measure without statistics rows: with one closed call in one condition it says there is no
comparison and why (the condition, n), not "No data"; "No data" stays for a measure that has no value at all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from analysis.report_notes import no_rows_note
from workbench.cli import main

REPO = Path(__file__).resolve().parent.parent


def _section(report: str, measure: str) -> str:
    match = re.search(rf"<code>{measure}</code>.*?(?=<h3>|$)", report, re.S)
    assert match, measure
    return match.group(0)


def test_one_condition_one_call_says_no_comparison_not_no_data(tmp_path: Path) -> None:
    recordings = tmp_path / "rec"
    assert main(["simulate", "--participants", "1", "--scenario", str(REPO / "experiments/demo/scenario.toml"),
                 "--effects", str(REPO / "experiments/effects/example.toml"), "--seed", "1",
                 "--out", str(recordings)]) == 0
    (session,) = [p for p in recordings.iterdir() if (p / "events.jsonl").is_file()]
    log = session / "events.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    # Cut the session right after the first call's RSME: one closed, rated call of the demo's one video block.
    first_rsme = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "rating.rsme")
    log.write_text("".join(lines[:first_rsme + 1]), encoding="utf-8")
    first = json.loads(lines[first_rsme])
    assert main(["analyze", str(recordings), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    rated = trials[trials["rsme"].notna()]
    assert list(rated["call_id"]) == [first["call_id"]] and list(rated["modality"]) == ["video"]
    congruence = "congruent" if bool(rated["congruent"].iloc[0]) else "incongruent"

    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    for measure in ("rsme", "handling_time_s"):
        section = _section(report, measure)
        assert "No data for this measure" not in section, measure
        assert (f"No comparison: the calls with a value have one modality only (video) and one congruence level "
                f"only ({congruence}); n = 1 participant, 1 call with a value.") in section, section[-400:]
        assert "<img" in section  # the plotted point stays, now with a true sentence under it


def test_no_data_stays_for_a_measure_without_values_and_a_missing_reference_is_named() -> None:
    frame = pd.DataFrame({"participant": ["P1", "P1", "P2", "P2"], "modality": ["photo", "video"] * 2,
                          "congruence": ["congruent", "incongruent"] * 2, "rsme": [10.0, 20.0, 30.0, 40.0],
                          "completeness": [float("nan")] * 4})
    assert no_rows_note(frame, "completeness") == "No data for this measure."
    assert no_rows_note(frame, "rsme") == (
        "No comparison: the calls with a value have no audio calls to compare photo, video with and congruent, "
        "incongruent but too few participants with both; n = 2 participants, 4 calls with a value.")
