"""Statistics as functions on tidy data: a long DataFrame plus column names in, a documented DataFrame out.

Nothing here prints, reads files or keeps state between calls. Every function returns a DataFrame whose columns are
listed in its docstring; a result that cannot be computed (too few participants, no variance, a model that does not
fit) is a row with empty (NaN) numbers and a ``note`` saying why, never an exception, so one bad measure never
stops a whole analysis. Input that is wrong in kind (a column that does not exist, an unknown level) raises
``ValueError`` naming it.

Within-participant comparisons work on participant-level condition means (:func:`participant_means`): each
participant contributes one mean per condition, and only participants with both conditions of a comparison enter
it (complete pairs; the others are counted in the ``note``).

Methods and sources
-------------------
- Paired t-test on participant means: Student (1908), via ``scipy.stats.ttest_rel``; CI of the mean difference
  from the t distribution with n - 1 degrees of freedom.
- Wilcoxon signed-rank test on the same paired differences: Wilcoxon, F. (1945). Individual comparisons by ranking
  methods. *Biometrics Bulletin*, 1(6), 80-83; via ``scipy.stats.wilcoxon`` (zero differences dropped, the
  "wilcox" method; exact null distribution when n <= 50 without ties, else the normal approximation).
- Cohen's d_z (mean of the differences over their standard deviation): Cohen, J. (1988). *Statistical power
  analysis for the behavioral sciences* (2nd ed.), Erlbaum, p. 48; Lakens, D. (2013). Calculating and reporting
  effect sizes to facilitate cumulative science. *Frontiers in Psychology*, 4, 863. Its CI inverts the noncentral t
  distribution: Steiger, J. H., & Fouladi, R. T. (1997). Noncentrality interval estimation and the evaluation of
  statistical models. In L. L. Harlow, S. A. Mulaik & J. H. Steiger (Eds.), *What if there were no significance
  tests?* (pp. 221-257). Erlbaum; Cumming, G., & Finch, S. (2001). A primer on the understanding, use, and
  calculation of confidence intervals that are based on central and noncentral distributions. *Educational and
  Psychological Measurement*, 61(4), 532-574.
- Linear mixed model with crossed random intercepts for participant and scenario call (stimulus): Baayen, R. H.,
  Davidson, D. J., & Bates, D. M. (2008). Mixed-effects modeling with crossed random effects for subjects and items.
  *Journal of Memory and Language*, 59(4), 390-412; fitted by REML with ``statsmodels`` ``MixedLM`` (Seabold, S., &
  Perktold, J. (2010). Statsmodels: Econometric and statistical modeling with Python. *Proc. 9th Python in Science
  Conference*, 92-96), crossed effects as variance components within one group, as statsmodels documents them.
  Fixed-effect CIs are Wald intervals (normal quantiles).
- Holm correction: Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian Journal
  of Statistics*, 6(2), 65-70; via ``statsmodels.stats.multitest.multipletests(method="holm")``.
- Signal detection: d' = z(H) - z(F) and criterion c = -(z(H) + z(F)) / 2 (Macmillan, N. A., & Creelman, C. D.
  (2005). *Detection theory: A user's guide* (2nd ed.). Erlbaum), with the log-linear correction of Hautus, M. J.
  (1995). Corrections for extreme proportions and their biasing effects on estimated values of d'. *Behavior
  Research Methods, Instruments, & Computers*, 27(1), 46-51: 0.5 is added to the hit and false-alarm counts and 1
  to the numbers of signal and noise trials before the rates enter z.
- Cohen's kappa: Cohen, J. (1960). A coefficient of agreement for nominal scales. *Educational and Psychological
  Measurement*, 20(1), 37-46; via ``statsmodels.stats.inter_rater.cohens_kappa`` (asymptotic CI).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

CONFIDENCE = 0.95
"""Confidence level of every interval reported by this module."""

SPARSE_FROM_ROWS = 1000
"""From this many rows on, :func:`mixed_model` gives statsmodels sparse variance-component matrices (same fit,
faster for large data, slower for small; break-even measured near 1000 rows by benchmarks/bench_analysis.py)."""


def _require_columns(data: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(missing)} not in the data (columns: {', '.join(map(str, data.columns))})")


def participant_means(data: pd.DataFrame, dv: str, within: str, subject: str) -> pd.DataFrame:
    """Mean of ``dv`` per participant and condition, over the rows where ``dv`` is not missing.

    Parameters: ``data`` long table (one row per observation); ``dv`` numeric column; ``within`` condition column;
    ``subject`` participant column.

    Returns a DataFrame with columns ``subject``, ``within``, ``mean`` (float, unit of ``dv``) and ``n_obs`` (int,
    observations averaged), one row per participant x condition that has at least one observation.
    Raises ``ValueError`` when a column is missing.
    """
    _require_columns(data, [dv, within, subject])
    d = data[[subject, within, dv]].copy()
    d[dv] = pd.to_numeric(d[dv], errors="coerce").astype(float)
    d = d.dropna()
    grouped = d.groupby([subject, within], sort=True, observed=True)[dv]
    out = grouped.agg(["mean", "size"]).reset_index().rename(columns={"size": "n_obs"})
    out["n_obs"] = out["n_obs"].astype(int)
    return out


def paired_differences(
    data: pd.DataFrame, dv: str, within: str, subject: str, level: str, reference: str
) -> tuple[pd.Series, int, str]:
    """Participant-level differences ``mean(level) - mean(reference)`` for participants with both conditions.

    Returns ``(differences indexed by participant, observations in those participants' two conditions, note)``;
    the note counts participants left out for lacking a condition ("" when none were).
    """
    means = participant_means(data, dv, within, subject)
    wide = means.pivot(index=subject, columns=within, values="mean")
    counts = means.pivot(index=subject, columns=within, values="n_obs")
    if level not in wide.columns or reference not in wide.columns:
        return pd.Series(dtype=float), 0, f"no observations of {level if level not in wide.columns else reference}"
    both = wide[[level, reference]].dropna()
    dropped = len(wide) - len(both)
    note = f"{dropped} participant(s) without both {level} and {reference} left out" if dropped else ""
    n_obs = int(counts.loc[both.index, [level, reference]].sum().sum())
    return (both[level] - both[reference]).astype(float), n_obs, note


def cohens_dz_ci(differences: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Cohen's d_z of paired differences with its noncentral-t confidence interval.

    d_z = mean(d) / sd(d) (sd with n - 1). The CI inverts the noncentral t distribution of t = d_z * sqrt(n) with
    n - 1 degrees of freedom (Steiger & Fouladi 1997; Cumming & Finch 2001; see the module docstring): the bounds
    are the noncentrality parameters whose distribution puts the observed t at the upper and lower
    (1 - confidence) / 2 tails, divided by sqrt(n).

    Returns ``(d_z, ci_low, ci_high)``; all NaN for fewer than 2 differences or zero variance.
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    n = len(d)
    if n < 2:
        return math.nan, math.nan, math.nan
    sd = float(np.std(d, ddof=1))
    if sd == 0 or not math.isfinite(sd):
        return math.nan, math.nan, math.nan
    dz = float(np.mean(d)) / sd
    df = n - 1
    t_obs = dz * math.sqrt(n)
    tail = (1 - confidence) / 2

    def solve(target: float) -> float:
        # nct.cdf(t_obs, df, ncp) falls monotonically in ncp. Step out from t_obs in growing steps until the
        # target is bracketed (small steps first: scipy's nct.cdf returns NaN far out in the tails).
        def f(ncp: float) -> float:
            return float(stats.nct.cdf(t_obs, df, ncp)) - target

        lo = hi = t_obs
        step = 0.5
        for _ in range(60):
            f_lo, f_hi = f(lo), f(hi)
            if math.isnan(f_lo) or math.isnan(f_hi):
                return math.nan
            if f_lo >= 0 >= f_hi:
                if f_lo == f_hi:
                    return lo
                try:
                    return float(optimize.brentq(f, lo, hi, xtol=1e-12))
                except ValueError:
                    # scipy's nct.cdf can be NaN inside a bracket whose ends are finite (a huge t from differences
                    # that are nearly equal): the bound is then unknown, not an error of the whole analysis.
                    return math.nan
            if f_lo < 0:
                lo -= step
            if f_hi > 0:
                hi += step
            step *= 1.5
        return math.nan

    low = solve(1 - tail) / math.sqrt(n)
    high = solve(tail) / math.sqrt(n)
    return dz, low, high


PAIRED_COLUMNS = (
    "level", "reference", "n_participants", "n_obs", "mean_diff", "ci_low", "ci_high", "t", "df", "p",
    "d_z", "d_z_ci_low", "d_z_ci_high", "note",
)


def paired_t(
    data: pd.DataFrame, dv: str, within: str, subject: str, level: str, reference: str,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Paired t-test of participant-level means, ``level`` minus ``reference``, with Cohen's d_z.

    Returns one row with columns: ``level``, ``reference``; ``n_participants`` (complete pairs); ``n_obs``
    (observations averaged into those pairs); ``mean_diff`` (mean paired difference, unit of ``dv``) with its t CI
    ``ci_low``/``ci_high``; ``t``, ``df`` (n - 1), ``p`` (two-sided); ``d_z`` with its noncentral-t CI
    ``d_z_ci_low``/``d_z_ci_high`` (:func:`cohens_dz_ci`); ``note`` (why numbers are missing, who was left out).
    Fewer than 2 pairs, or differences without variance, give NaN statistics and a note.
    """
    diffs, n_obs, note = paired_differences(data, dv, within, subject, level, reference)
    n = len(diffs)
    row = dict.fromkeys(PAIRED_COLUMNS, math.nan) | {
        "level": level, "reference": reference, "n_participants": n, "n_obs": n_obs, "note": note,
    }
    if n >= 1:
        row["mean_diff"] = float(diffs.mean())
    notes = [note] if note else []
    if n < 2:
        notes.append(f"paired t needs at least 2 participants with both conditions, found {n}")
    elif float(np.std(diffs, ddof=1)) == 0:
        notes.append("all paired differences are equal: t and d_z undefined")
    else:
        res = stats.ttest_rel(diffs.to_numpy() + 0.0, np.zeros(n))
        ci = res.confidence_interval(confidence)
        dz, dz_lo, dz_hi = cohens_dz_ci(diffs.to_numpy(), confidence)
        row |= {
            "ci_low": float(ci.low), "ci_high": float(ci.high), "t": float(res.statistic), "df": float(res.df),
            "p": float(res.pvalue), "d_z": dz, "d_z_ci_low": dz_lo, "d_z_ci_high": dz_hi,
        }
    row["note"] = "; ".join(notes)
    return pd.DataFrame([row], columns=list(PAIRED_COLUMNS))


WILCOXON_COLUMNS = ("level", "reference", "n_participants", "n_obs", "median_diff", "statistic", "p", "method", "note")


def wilcoxon_paired(data: pd.DataFrame, dv: str, within: str, subject: str, level: str, reference: str) -> pd.DataFrame:
    """Wilcoxon signed-rank test of participant-level means, ``level`` minus ``reference``.

    Returns one row: ``level``, ``reference``, ``n_participants`` (complete pairs, zero differences included),
    ``n_obs``, ``median_diff`` (median paired difference, unit of ``dv``), ``statistic`` (W, the smaller of the
    positive and negative rank sums, zero differences dropped), ``p`` (two-sided), ``method`` (``exact`` or
    ``approx``, as scipy chose it), ``note``. Fewer than 1 non-zero difference gives NaN and a note.
    """
    diffs, n_obs, note = paired_differences(data, dv, within, subject, level, reference)
    row: dict[str, object] = dict.fromkeys(WILCOXON_COLUMNS, math.nan) | {
        "level": level, "reference": reference, "n_participants": len(diffs), "n_obs": n_obs, "method": "",
    }
    notes = [note] if note else []
    nonzero = diffs[diffs != 0]
    if len(diffs):
        row["median_diff"] = float(diffs.median())
    if len(nonzero) < 1:
        notes.append("Wilcoxon needs at least 1 non-zero paired difference")
    else:
        values = nonzero.to_numpy()
        ties = len(np.unique(np.abs(values))) < len(values)
        method = "exact" if len(values) <= 50 and not ties else "approx"
        res = stats.wilcoxon(values, zero_method="wilcox", method=method)
        row |= {"statistic": float(res.statistic), "p": float(res.pvalue), "method": method}
        if len(nonzero) < len(diffs):
            notes.append(f"{len(diffs) - len(nonzero)} zero difference(s) dropped (Wilcoxon's method)")
    row["note"] = "; ".join(notes)
    return pd.DataFrame([row], columns=list(WILCOXON_COLUMNS))


MIXED_COLUMNS = (
    "level", "reference", "n_participants", "n_items", "n_obs", "coef", "se", "ci_low", "ci_high", "z", "p",
    "converged", "note",
)


def mixed_model(
    data: pd.DataFrame,
    dv: str,
    within: str,
    subject: str,
    reference: str,
    item: str | None = None,
    log: bool = False,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Linear mixed model ``dv ~ within`` (treatment coding against ``reference``) with a random intercept per
    participant and, when ``item`` is given and has at least 2 values, a crossed random intercept per item.

    Fitted by REML with statsmodels ``MixedLM``; crossed effects are variance components in a single group
    (Baayen et al. 2008; see the module docstring). With ``log=True`` the model is fitted to ``ln(dv)``, rows with
    ``dv <= 0`` are left out (counted in the note) and ``coef``/``ci`` are on the log scale (exponentiate for the
    ratio level/reference).

    Returns one row per non-reference level: ``level``, ``reference``, ``n_participants``, ``n_items`` (0 when no
    item effect was fitted), ``n_obs`` (rows in the model), ``coef`` (fixed effect, unit of ``dv`` or log units),
    ``se``, Wald ``ci_low``/``ci_high``, ``z``, ``p``, ``converged`` (False when the optimiser reported a problem or
    the fit failed) and ``note`` (the warnings or error, the random-effect structure). Never raises for a fit that
    fails; raises ``ValueError`` for a missing column.

    ``converged`` is True when the final optimisation converged (statsmodels retries with other optimisers when
    the first fails; its warnings about the first attempt stay in the note) and the Hessian at the optimum is
    positive definite (finite standard errors). A variance component estimated at zero ("on the boundary") is
    noted but is not a convergence failure. A crossed fit that is not clean is refitted without the item intercept
    (Bates et al. 2015, parsimonious mixed models); the refit is used when it is clean, and the note says so
    (``n_items`` is then 0).
    """
    _require_columns(data, [dv, within, subject] + ([item] if item else []))
    cols = [dv, within, subject] + ([item] if item else [])
    d = data[cols].copy()
    d[dv] = pd.to_numeric(d[dv], errors="coerce").astype(float)
    d = d.dropna()
    notes: list[str] = []
    if log:
        positive = d[dv] > 0
        if (~positive).any():
            notes.append(f"{int((~positive).sum())} row(s) with {dv} <= 0 left out of the log model")
        d = d[positive]
        d[dv] = np.log(d[dv])
    levels = sorted(str(v) for v in d[within].unique() if v != reference)
    frame = pd.DataFrame({
        "y": d[dv].to_numpy(dtype=float),
        "cond": pd.Categorical(d[within].astype(str), categories=[reference] + levels),
        "subj": d[subject].astype(str).to_numpy(),
        "grp": np.zeros(len(d), dtype=int),
    })
    use_item = bool(item) and d[item].nunique() >= 2
    if use_item:
        frame["item"] = d[item].astype(str).to_numpy()
    n_items = int(frame["item"].nunique()) if use_item else 0
    rows = []
    base = {"reference": reference, "n_participants": int(frame["subj"].nunique()), "n_items": n_items,
            "n_obs": len(frame)}
    if not levels or (frame["cond"] == reference).sum() == 0:
        notes.append(f"needs observations of {reference} and at least one other level")
        return _mixed_rows(levels or [], base, None, notes, confidence)
    if item and not use_item:
        notes.append(f"fewer than 2 values of {item}: no item random effect")
    result, fit_notes, clean = _fit_mixed(frame, use_item)
    if use_item and not clean:
        # A crossed fit that is singular (usually an item variance estimated at 0) or does not converge is refitted
        # without the item intercept: the parsimonious model the data support (Bates, D., Kliegl, R., Vasishth, S.,
        # & Baayen, H. (2015). Parsimonious mixed models. arXiv:1506.04967). Kept only when that fit is clean.
        simpler, simpler_notes, simpler_clean = _fit_mixed(frame, False)
        if simpler_clean:
            notes.append(f"the crossed fit was not clean ({fit_notes[0] if fit_notes else 'no result'}): refitted "
                         "without the scenario-call intercept")
            result, fit_notes, clean, use_item = simpler, simpler_notes, True, False
            base["n_items"] = 0
    notes += fit_notes
    notes.append("random intercepts: participant" + (" and scenario call (crossed)" if use_item else ""))
    return _mixed_rows(levels, base, result, notes, confidence, clean=clean)


def _fit_mixed(frame: pd.DataFrame, use_item: bool) -> tuple[Any, list[str], bool]:
    """Fit ``y ~ C(cond)`` with participant (and item) variance components; returns (result or None, notes,
    clean), where clean means converged with a positive-definite Hessian."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    result = None
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # use_sparse: the crossed effects live in one group, so the variance-component design is n x q; sparse
            # matrices give the same fit (estimates and SEs equal to 5 digits) ~8x faster at 6000 rows x 112 levels,
            # but ~8x slower at 150 rows (measured break-even near 1000 rows), hence the threshold.
            model = _crossed_model(frame, use_item, use_sparse=len(frame) >= SPARSE_FROM_ROWS)
            # Powell first, then L-BFGS: statsmodels' default gradient optimisers stall on these variance-component
            # models (11.5 s per fit at 6000 rows, often unconverged); Powell reaches the same fixed effects in
            # ~0.5 s and converges where they don't (measured by benchmarks/bench_analysis.py).
            result = model.fit(reml=True, method=["powell", "lbfgs"])
        except Exception as exc:  # noqa: BLE001 - third-party numerics fail in many ways (ValueError,
            # LinAlgError, scipy's "Factor is exactly singular" RuntimeError, ...); each is reported in the row.
            notes.append(f"fit failed: {type(exc).__name__}: {exc}")
    messages = []
    for w in caught:
        text = " ".join(str(w.message).split())
        if text not in messages and (issubclass(w.category, (ConvergenceWarning, RuntimeWarning, UserWarning))):
            messages.append(text)
    hessian_bad = any("Hessian" in m for m in messages)
    if result is not None and not result.converged:
        notes.append("the optimiser did not converge (every method statsmodels tried)")
    elif result is not None and hessian_bad:
        notes.append("converged to a point whose Hessian is not positive definite: SEs are unreliable")
    notes += _plain_fit_messages(messages)
    clean = result is not None and bool(result.converged) and not hessian_bad
    return result, notes, clean


def _crossed_model(frame: pd.DataFrame, use_item: bool, use_sparse: bool) -> Any:
    """The statsmodels ``MixedLM`` of ``y ~ C(cond)`` with participant (and item) variance components in one group,
    built from the columns of ``frame`` (``y``, categorical ``cond``, ``subj``, ``grp`` all 0, ``item``) without
    patsy.

    The matrices, names and order are those ``smf.mixedlm("y ~ C(cond)", frame, groups="grp", re_formula="0",
    vc_formula={"participant": "0 + C(subj)", "item": "0 + C(item)"}, use_sparse=...)`` builds (checked by
    tests/test_stats_model_build.py, fit for fit to the last bit), so the fits are the same; the formula route
    spent ~10% of the statistics building 6000 x 160 dummy matrices through patsy (issue 9).
    """
    from scipy import sparse
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    n = len(frame)
    # Treatment coding against the first category, as patsy codes a pandas Categorical.
    cond = frame["cond"]
    exog = pd.DataFrame({"Intercept": np.ones(n)}, index=frame.index)
    for level in cond.cat.categories[1:]:
        exog[f"C(cond)[T.{level}]"] = (cond == level).to_numpy(dtype=float)
    names, colnames, mats = [], [], []
    # statsmodels orders the variance components by name; patsy orders a string factor's levels by sorting.
    for name, column in sorted({"participant": "subj", **({"item": "item"} if use_item else {})}.items()):
        levels, codes = np.unique(frame[column].to_numpy(dtype=str), return_inverse=True)
        dummies = np.zeros((n, len(levels)))
        dummies[np.arange(n), codes] = 1.0
        names.append(name)
        colnames.append([[f"C({column})[{level}]" for level in levels]])
        mats.append([sparse.csr_array(dummies) if use_sparse else dummies])
    model = MixedLM(frame["y"], exog, groups=frame["grp"].to_numpy(), exog_re=np.zeros((n, 0)),
                    exog_vc=VCSpec(names, colnames, mats))
    param_names, exog_re_names, exog_re_names_full = model._make_param_names([])
    model.data.param_names = param_names
    model.data.exog_re_names = exog_re_names
    model.data.exog_re_names_full = exog_re_names_full
    model.data.vcomp_names = model.exog_vc.names
    return model


_FIT_MESSAGES = (
    ("Maximum Likelihood optimization failed to converge", "the first optimiser did not converge"),
    ("Retrying MixedLM optimization with", "statsmodels retried with another optimiser"),
    ("on the boundary of the parameter space", "a variance component is estimated at its boundary (0)"),
    ("Hessian matrix at the estimated parameter values is not positive definite",
     "Hessian not positive definite"),
    ("MixedLM optimization failed, trying a different optimizer", ""),  # says no more than the retry note
)


def _plain_fit_messages(messages: list[str]) -> list[str]:
    """statsmodels' fit warnings in short plain words (known ones), others as they are, without repeats."""
    out: list[str] = []
    for message in messages:
        text = next((short for key, short in _FIT_MESSAGES if key in message), f"statsmodels: {message}")
        if text and text not in out:
            out.append(text)
    return out


def _mixed_rows(levels, base, result, notes, confidence, clean: bool = False) -> pd.DataFrame:
    rows = []
    for level in levels:
        row = dict.fromkeys(MIXED_COLUMNS, math.nan) | base | {"level": level, "converged": False}
        if result is not None:
            name = f"C(cond)[T.{level}]"
            with warnings.catch_warnings():
                # A singular fit has a covariance with negative diagonal: statsmodels warns on its sqrt. The NaN
                # standard error that results marks the row not converged.
                warnings.simplefilter("ignore", RuntimeWarning)
                ci = result.conf_int(alpha=1 - confidence)
                se = float(result.bse_fe[name])
                z, p = float(result.tvalues[name]), float(result.pvalues[name])
            row |= {
                "coef": float(result.fe_params[name]),
                "se": se,
                "ci_low": float(ci.loc[name, 0]),
                "ci_high": float(ci.loc[name, 1]),
                "z": z,
                "p": p,
                "converged": clean and math.isfinite(se),
            }
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(MIXED_COLUMNS))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p values (Holm 1979) in the input order; NaN inputs stay NaN and are not counted as tests."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out.tolist()


SDT_COLUMNS = (
    "subject", "n_signal", "n_noise", "hits", "false_alarms", "hit_rate", "false_alarm_rate",
    "hit_rate_corrected", "false_alarm_rate_corrected", "dprime", "criterion",
)


def signal_detection(data: pd.DataFrame, signal: str, response: str, subject: str) -> pd.DataFrame:
    """Hit and false-alarm rates, d' and criterion c per participant, with the log-linear correction.

    ``signal`` is a boolean column (True: a signal trial, here a designed disagreement), ``response`` a boolean
    column (True: the participant said "signal", here set the disagreement flag); rows where either is missing are
    left out.

    Returns one row per participant with columns ``subject``, ``n_signal``, ``n_noise`` (trial counts),
    ``hits``, ``false_alarms`` (counts), ``hit_rate`` = hits / n_signal and ``false_alarm_rate`` =
    false_alarms / n_noise (raw proportions; NaN without such trials), ``hit_rate_corrected`` =
    (hits + 0.5) / (n_signal + 1) and ``false_alarm_rate_corrected`` = (false_alarms + 0.5) / (n_noise + 1)
    (Hautus 1995), ``dprime`` = z(H) - z(F) and ``criterion`` = -(z(H) + z(F)) / 2 from the corrected rates
    (Macmillan & Creelman 2005), NaN unless the participant had at least one signal and one noise trial.
    """
    _require_columns(data, [signal, response, subject])
    d = data[[subject, signal, response]].dropna()
    rows = []
    for participant, g in d.groupby(subject, sort=True):
        s = g[signal].astype(bool).to_numpy()
        r = g[response].astype(bool).to_numpy()
        n_signal, n_noise = int(s.sum()), int((~s).sum())
        hits, fas = int((s & r).sum()), int((~s & r).sum())
        h_corr = (hits + 0.5) / (n_signal + 1)
        f_corr = (fas + 0.5) / (n_noise + 1)
        usable = n_signal > 0 and n_noise > 0
        zh, zf = stats.norm.ppf(h_corr), stats.norm.ppf(f_corr)
        rows.append({
            "subject": participant, "n_signal": n_signal, "n_noise": n_noise, "hits": hits, "false_alarms": fas,
            "hit_rate": hits / n_signal if n_signal else math.nan,
            "false_alarm_rate": fas / n_noise if n_noise else math.nan,
            "hit_rate_corrected": h_corr, "false_alarm_rate_corrected": f_corr,
            "dprime": float(zh - zf) if usable else math.nan,
            "criterion": float(-(zh + zf) / 2) if usable else math.nan,
        })
    return pd.DataFrame(rows, columns=list(SDT_COLUMNS))


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[int, float, float, float]:
    """``(n, mean, ci_low, ci_high)`` of the non-missing ``values`` with a t interval (n - 1 df); the CI is NaN
    for fewer than 2 values, the mean NaN for none."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return 0, math.nan, math.nan, math.nan
    mean = float(v.mean())
    if n < 2:
        return n, mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
    return n, mean, mean - half, mean + half


KAPPA_COLUMNS = ("n_obs", "kappa", "se", "ci_low", "ci_high", "note")


def cohens_kappa_table(table: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Cohen's kappa (Cohen 1960) of a square confusion table (rows: truth, columns: given, same categories in
    the same order), with the asymptotic standard error from statsmodels and a Wald CI (kappa +- z * se, clipped to
    [-1, 1], the range of kappa).

    Returns one row: ``n_obs`` (table total), ``kappa``, ``se``, ``ci_low``, ``ci_high``, ``note``. An empty table
    or one whose chance agreement is 1 (a single category) gives NaN and a note. Raises ``ValueError`` when the
    table is not square with matching labels.
    """
    if list(table.index) != list(table.columns):
        raise ValueError(f"kappa needs a square table with the same categories on both axes, got rows "
                         f"{list(table.index)} and columns {list(table.columns)}")
    counts = table.to_numpy(dtype=float)
    n = int(counts.sum())
    row = dict.fromkeys(KAPPA_COLUMNS, math.nan) | {"n_obs": n, "note": ""}
    if n == 0:
        row["note"] = "no observations"
    else:
        expected = (counts.sum(1) * counts.sum(0)).sum() / n**2
        if expected >= 1:
            row["note"] = "a single category: chance agreement is 1, kappa undefined"
        else:
            from statsmodels.stats.inter_rater import cohens_kappa

            with warnings.catch_warnings():
                # statsmodels divides by the null-hypothesis SE, which is 0 for some perfect tables; that z is
                # not used here.
                warnings.simplefilter("ignore", RuntimeWarning)
                res = cohens_kappa(counts)
            # statsmodels fixes its own bounds at 95 %; the Wald bounds are rebuilt here for ``confidence``.
            half = float(stats.norm.ppf(0.5 + confidence / 2)) * float(res.std_kappa)
            row |= {"kappa": float(res.kappa), "se": float(res.std_kappa),
                    "ci_low": max(-1.0, float(res.kappa) - half), "ci_high": min(1.0, float(res.kappa) + half)}
            if float(res.std_kappa) == 0:
                row["note"] = "perfect agreement: the asymptotic SE is 0, so the CI is degenerate"
    return pd.DataFrame([row], columns=list(KAPPA_COLUMNS))
