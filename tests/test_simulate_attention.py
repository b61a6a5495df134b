"""workbench simulate models photo views and panel focus (workbench/simulate/simulator.py's docstring): with no
spread, every dwell time and focus share is known by hand; and modelling them changed no other number."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.run import analyze
from workbench.simulate import load_effects, parse_effects, simulate
from workbench.store.scenarios import load_scenario

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "experiments" / "effects" / "scenario.toml"
ATTENTION = ("photo_dwell_s", "focus_photos_share", "focus_live_view_share", "focus_transcript_share",
             "focus_form_share")


def test_dwell_time_and_focus_shares_follow_the_model(tmp_path: Path) -> None:
    # Baseline dwell 6 s, +3 s on incongruent calls, no spread: every view lasts 6 or 9 s.
    effects = parse_effects(b"[spread]\nparticipant_sd_photo_dwell_s = 0.0\nresidual_sd_photo_dwell_s = 0.0\n"
                            b"[incongruent]\nphoto_dwell_s = 3.0\n")
    simulate(load_scenario(SCENARIO), SCENARIO.read_bytes(), effects, participants=3, seed=4, out=tmp_path / "rec",
             calls_per_block=3, store_photos=False)
    result = analyze(tmp_path / "rec", tmp_path / "out", workers=1)
    t = result.trials
    with_photo = t[t["modality"].isin(["photo", "video"]) & (t["photos_received"] > 0)]
    assert len(with_photo) > 0
    expected = with_photo["congruent"].map({True: 6.0, False: 9.0}).astype(float)
    assert with_photo["photo_dwell_s"].astype(float).tolist() == expected.tolist()
    assert t.loc[t["modality"] == "audio", "photo_dwell_s"].isna().all()
    # Share on the photos panel = dwell / handling time (3 decimals); audio blocks: transcript 0.3, form 0.7.
    share = (with_photo["photo_dwell_s"].astype(float) / with_photo["handling_time_s"].astype(float)).round(3)
    assert (with_photo["focus_photos_share"].astype(float) - share).abs().max() <= 0.0015
    audio = t[t["modality"] == "audio"]
    assert audio["focus_transcript_share"].astype(float).eq(0.3).all()
    assert audio["focus_form_share"].astype(float).eq(0.7).all()
    assert audio["focus_photos_share"].astype(float).eq(0.0).all()
    # Video blocks: live view 0.15 H to 0.45 H (0.3), except while a photo is open (the view then takes the focus).
    video = t[t["modality"] == "video"]
    live = video["focus_live_view_share"].astype(float)
    assert (live <= 0.3).all() and (live == 0.3).sum() > len(live) / 2
    shares = t[[c for c in ATTENTION if c.startswith("focus_")]].astype(float).sum(axis=1)
    assert (shares - 1.0).abs().max() <= 0.002  # every second of the call is on one panel
    # The analysis recovers the +3 s exactly: every participant's paired difference is 3.
    s = result.summary
    row = s[(s["measure"] == "photo_dwell_s") & (s["contrast"] == "congruence") & (s["method"] == "paired_t")]
    assert float(row["estimate"].iloc[0]) == pytest.approx(3.0)


def test_modelling_attention_changed_no_other_number(tmp_path: Path) -> None:
    effects = load_effects(REPO / "experiments" / "effects" / "example.toml")
    for name, attention in (("with", True), ("without", False)):
        simulate(load_scenario(SCENARIO), SCENARIO.read_bytes(), effects, participants=2, seed=9,
                 out=tmp_path / name, calls_per_block=2, store_photos=False, attention=attention)
    a = analyze(tmp_path / "with", tmp_path / "out-with", workers=1).trials
    b = analyze(tmp_path / "without", tmp_path / "out-without", workers=1).trials
    assert a["photo_dwell_s"].notna().any() and b["photo_dwell_s"].isna().all()
    others = [c for c in a.columns if c not in ATTENTION]
    pd.testing.assert_frame_equal(a[others], b[others])
