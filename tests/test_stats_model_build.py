"""The mixed model built without patsy (analysis.stats._crossed_model, issue 9) is the formula's model: the same
matrices, names and, fitted the same way, the same estimates to the last bit (sparse and dense)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from analysis import stats as S


def crossed_frame(n_subj: int, n_item: int, seed: int, levels=("audio", "photo", "video")) -> pd.DataFrame:
    """Every participant answers every item; the condition of an item rotates with the participant (a Latin
    square, as counterbalanced blocks give); participant and item intercepts plus noise."""
    rng = np.random.default_rng(seed)
    subj_effect = rng.normal(0, 3, n_subj)
    item_effect = rng.normal(0, 2, n_item)
    effect = {"audio": 0.0, "photo": 1.5, "video": -2.0}
    rows = []
    for s in range(n_subj):
        for i in range(n_item):
            cond = levels[(i // max(1, n_item // len(levels)) + s) % len(levels)]
            rows.append({"y": 10 + effect[cond] + subj_effect[s] + item_effect[i] + rng.normal(0, 1.5),
                         "cond": cond, "subj": f"P{s + 1:03d}", "item": f"sc/c{i + 1:02d}"})
    d = pd.DataFrame(rows)
    return pd.DataFrame({
        "y": d["y"].to_numpy(float),
        "cond": pd.Categorical(d["cond"], categories=list(levels)),
        "subj": d["subj"].to_numpy(),
        "grp": np.zeros(len(d), dtype=int),
        "item": d["item"].to_numpy(),
    })


def _formula_model(frame: pd.DataFrame, use_item: bool, use_sparse: bool):
    vc = {"participant": "0 + C(subj)"} | ({"item": "0 + C(item)"} if use_item else {})
    return smf.mixedlm("y ~ C(cond)", frame, groups="grp", re_formula="0", vc_formula=vc, use_sparse=use_sparse)


@pytest.mark.parametrize(("n_subj", "n_item", "use_item", "use_sparse"), [
    (12, 9, True, False), (12, 9, False, False), (40, 30, True, True), (40, 30, False, True),
])
def test_direct_model_fits_exactly_like_the_formula(n_subj, n_item, use_item, use_sparse) -> None:
    frame = crossed_frame(n_subj, n_item, seed=n_subj + n_item)
    direct = S._crossed_model(frame, use_item, use_sparse=use_sparse)
    formula = _formula_model(frame, use_item, use_sparse)
    assert direct.exog_names == formula.exog_names
    assert direct.exog_vc.names == formula.exog_vc.names
    assert direct.exog_vc.colnames == formula.exog_vc.colnames
    assert np.array_equal(direct.exog, formula.exog) and np.array_equal(direct.endog, formula.endog)
    for a, b in zip(direct.exog_vc.mats, formula.exog_vc.mats):
        a0, b0 = a[0], b[0]
        assert type(a0) is type(b0)
        dense = (lambda m: m.toarray()) if use_sparse else np.asarray
        assert np.array_equal(dense(a0), dense(b0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_direct = direct.fit(reml=True, method=["powell", "lbfgs"])
        fit_formula = formula.fit(reml=True, method=["powell", "lbfgs"])
    # Bit for bit: the same numbers go through the same optimiser path.
    assert fit_direct.fe_params.to_dict() == fit_formula.fe_params.to_dict()
    assert fit_direct.bse_fe.to_dict() == fit_formula.bse_fe.to_dict()
    assert list(fit_direct.vcomp) == list(fit_formula.vcomp)
    assert fit_direct.llf == fit_formula.llf
    assert list(fit_direct.params.index) == list(fit_formula.params.index)
    assert fit_direct.converged == fit_formula.converged
    # And the effects are recovered (a test of the data, so that a model of nothing cannot pass).
    assert abs(fit_direct.fe_params["C(cond)[T.photo]"] - 1.5) < 1.0
    assert abs(fit_direct.fe_params["C(cond)[T.video]"] + 2.0) < 1.0


def test_mixed_model_rows_use_the_direct_model_and_keep_the_formula_numbers() -> None:
    frame = crossed_frame(30, 24, seed=7)
    data = frame.rename(columns={"subj": "pid"}).drop(columns="grp")
    data["cond"] = data["cond"].astype(str)
    rows = S.mixed_model(data, "y", "cond", "pid", reference="audio", item="item").set_index("level")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = _formula_model(frame, True, use_sparse=len(frame) >= S.SPARSE_FROM_ROWS).fit(
            reml=True, method=["powell", "lbfgs"])
    for level in ("photo", "video"):
        assert rows.loc[level, "coef"] == float(fit.fe_params[f"C(cond)[T.{level}]"])
        assert rows.loc[level, "se"] == float(fit.bse_fe[f"C(cond)[T.{level}]"])
    assert rows.loc["photo", "n_items"] == 24
