"""analysis.stats against independent reference values; the source of each number is written beside it.

References used:
- Student's sleep data (Cushny & Peebles 1905, as printed by Student 1908; R's ``datasets::sleep``). R 4.x,
  ``t.test(sleep$extra[1:10], sleep$extra[11:20], paired = TRUE)`` prints: t = -4.0621, df = 9,
  p-value = 0.002833, 95 percent confidence interval -2.4598858 -0.7001142, mean difference -1.58;
  ``sd(sleep$extra[1:10] - sleep$extra[11:20])`` = 1.229995.
- Hand computations (Holm, Wilcoxon exact, kappa, log-linear d') shown in the comments.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from analysis import stats as S

SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def long(level_a: list[float], level_b: list[float], names=("a", "b")) -> pd.DataFrame:
    rows = [{"pid": f"P{i}", "cond": names[0], "y": v} for i, v in enumerate(level_a)]
    rows += [{"pid": f"P{i}", "cond": names[1], "y": v} for i, v in enumerate(level_b)]
    return pd.DataFrame(rows)


def test_paired_t_matches_r_on_student_sleep_data() -> None:
    (row,) = S.paired_t(long(SLEEP_1, SLEEP_2), "y", "cond", "pid", "a", "b").to_dict("records")
    assert (row["n_participants"], row["n_obs"]) == (10, 20)
    assert row["mean_diff"] == pytest.approx(-1.58, abs=1e-12)  # R: mean difference -1.58
    assert row["t"] == pytest.approx(-4.0621, abs=5e-5)  # R: t = -4.0621
    assert row["df"] == 9  # R: df = 9
    assert row["p"] == pytest.approx(0.002833, abs=5e-7)  # R: p-value = 0.002833
    assert row["ci_low"] == pytest.approx(-2.4598858, abs=5e-8)  # R: 95 percent CI lower
    assert row["ci_high"] == pytest.approx(-0.7001142, abs=5e-8)  # R: 95 percent CI upper
    # d_z = mean / sd = -1.58 / 1.229995 (R's sd of the differences) = -1.284558
    assert row["d_z"] == pytest.approx(-1.58 / 1.229995, abs=1e-6)
    assert row["note"] == ""


def _nct_cdf_by_definition(t: float, df: int, ncp: float) -> float:
    """P(T <= t) for T = (Z + ncp) / sqrt(V / df), Z standard normal, V chi-square(df), by integrating the
    definition: integral over v of Phi(t * sqrt(v / df) - ncp) * f_chi2(v; df) dv (Johnson, Kotz & Balakrishnan
    1995, Continuous Univariate Distributions vol. 2, ch. 31). Written from math only, not scipy.stats.nct."""

    def integrand(v: float) -> float:
        phi = 0.5 * (1 + math.erf((t * math.sqrt(v / df) - ncp) / math.sqrt(2)))
        log_pdf = (df / 2 - 1) * math.log(v) - v / 2 - (df / 2) * math.log(2) - math.lgamma(df / 2)
        return phi * math.exp(log_pdf)

    return integrate.quad(integrand, 0, np.inf, limit=200)[0]


def _bisect(f, lo: float, hi: float) -> float:
    for _ in range(80):
        mid = (lo + hi) / 2
        if (f(lo) > 0) == (f(mid) > 0):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def test_dz_ci_is_the_noncentral_t_inversion() -> None:
    # Reference: invert the noncentral t CDF computed from its definition (above) by plain bisection.
    n, df = 10, 9
    dz = -1.58 / 1.229995
    t_obs = dz * math.sqrt(n)  # -4.0621 as in R
    ncp_low = _bisect(lambda ncp: _nct_cdf_by_definition(t_obs, df, ncp) - 0.975, -15, 5)
    ncp_high = _bisect(lambda ncp: _nct_cdf_by_definition(t_obs, df, ncp) - 0.025, -15, 5)
    got_dz, low, high = S.cohens_dz_ci(np.array(SLEEP_1) - np.array(SLEEP_2))
    assert got_dz == pytest.approx(dz, abs=1e-6)
    assert low == pytest.approx(ncp_low / math.sqrt(n), abs=1e-4)
    assert high == pytest.approx(ncp_high / math.sqrt(n), abs=1e-4)
    # Sanity against the large-sample approximation se(d_z) ~ sqrt(1/n + d_z^2 / (2n)) (Algina & Keselman 2003,
    # Educational and Psychological Measurement 63(4), 537-553): -1.2846 +- 1.96 * 0.4272 = [-2.122, -0.447].
    assert low == pytest.approx(-2.122, abs=0.05) and high == pytest.approx(-0.447, abs=0.05)
    assert all(map(math.isnan, S.cohens_dz_ci([1.0])))
    assert all(map(math.isnan, S.cohens_dz_ci([2.0, 2.0, 2.0])))


def test_wilcoxon_exact_by_hand() -> None:
    # Differences b - a = 1, 2, 3, 4, 5: every rank positive, W- = 0. Under H0 each of the 2^5 = 32 sign patterns
    # is equally likely and only one gives W- = 0, so the two-sided exact p = 2 * 1/32 = 0.0625.
    (row,) = S.wilcoxon_paired(long([0, 0, 0, 0, 0], [1, 2, 3, 4, 5]), "y", "cond", "pid", "b", "a").to_dict("records")
    assert (row["statistic"], row["p"], row["method"]) == (0.0, pytest.approx(0.0625, abs=1e-12), "exact")
    assert row["median_diff"] == 3.0
    # Differences -1, 2, 3, 4, 5, 6: W- = 1 (rank 1 negative). Patterns with W- <= 1: {} and {1}: 2 of 64,
    # two-sided p = 2 * 2/64 = 0.0625; W = min(W+, W-) = 1.
    (row,) = S.wilcoxon_paired(long([0] * 6, [-1, 2, 3, 4, 5, 6]), "y", "cond", "pid", "b", "a").to_dict("records")
    assert (row["statistic"], row["p"]) == (1.0, pytest.approx(0.0625, abs=1e-12))


def test_holm_by_hand() -> None:
    # p = 0.01, 0.04, 0.03 -> sorted 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06 (Holm 1979, step-down
    # with monotonicity): adjusted in input order 0.03, 0.06, 0.06; a NaN is not a test.
    assert S.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    got = S.holm([0.01, math.nan, 0.04])  # two tests: 0.02, 0.04
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.04)


def test_mixed_model_equals_paired_t_in_a_balanced_two_condition_design() -> None:
    # Textbook identity: with one observation per participant and condition, the random-intercept model's REML
    # estimate of the condition effect is the mean paired difference, and its SE is sd(d)/sqrt(n) (the paired t
    # test is the special case of the mixed model; e.g. Maxwell, Delaney & Kelley 2018, Designing Experiments and
    # Analyzing Data, 3rd ed., ch. 15). Sleep data: coef = +1.58, se = 1.229995 / sqrt(10) = 0.388954,
    # z = 4.0621 (R's |t|).
    (row,) = S.mixed_model(long(SLEEP_1, SLEEP_2), "y", "cond", "pid", reference="a").to_dict("records")
    assert row["level"] == "b" and row["reference"] == "a"
    assert row["coef"] == pytest.approx(1.58, abs=1e-4)
    assert row["se"] == pytest.approx(1.229995 / math.sqrt(10), abs=1e-4)
    assert row["z"] == pytest.approx(4.0621, abs=2e-3)
    assert row["ci_low"] == pytest.approx(1.58 - 1.959964 * 0.388954, abs=5e-4)  # Wald: coef - z(.975) se
    assert row["converged"] is True
    assert (row["n_participants"], row["n_obs"], row["n_items"]) == (10, 20, 0)


def test_mixed_model_log_scale_and_items() -> None:
    # Every participant is exactly twice as slow in b: ln 2 = 0.693147 whatever the participant or item.
    rng = np.random.default_rng(1)
    rows = []
    for p in range(8):
        base = 20 + 5 * p
        for k in range(4):
            noise = float(rng.normal(0, 0.01))
            rows.append({"pid": f"P{p}", "cond": "a", "item": f"i{k}", "y": base * (1 + k / 10) * math.exp(noise)})
            rows.append({"pid": f"P{p}", "cond": "b", "item": f"j{k}", "y": 2 * base * (1 + k / 10) * math.exp(noise)})
    (row,) = S.mixed_model(pd.DataFrame(rows), "y", "cond", "pid", reference="a", item="item", log=True).to_dict(
        "records")
    assert row["coef"] == pytest.approx(math.log(2), abs=0.01)
    assert row["n_items"] == 8 and row["n_obs"] == 64
    assert "crossed" in row["note"]


def test_mixed_model_reports_a_failed_fit_instead_of_raising() -> None:
    # One participant: the participant variance is not identifiable; the row must say so, not raise.
    data = long([1.0], [2.0])
    (row,) = S.mixed_model(data, "y", "cond", "pid", reference="a").to_dict("records")
    assert row["converged"] is False and row["note"]
    # No reference level at all: a row per level with a note.
    (row,) = S.mixed_model(data[data["cond"] == "b"], "y", "cond", "pid", reference="a").to_dict("records")
    assert row["converged"] is False and "needs observations of a" in row["note"]
    with pytest.raises(ValueError, match="column\\(s\\) nope"):
        S.mixed_model(data, "nope", "cond", "pid", reference="a")


def test_signal_detection_loglinear_by_hand() -> None:
    # Hautus (1995) log-linear: H = (hits + 0.5) / (signals + 1), F = (fa + 0.5) / (noise + 1).
    # P1: 19 of 19 hits, 0 of 19 false alarms: H = 19.5/20 = 0.975, F = 0.5/20 = 0.025;
    #     z(0.975) = 1.959964 (normal table), so d' = 3.919928 and c = 0.
    # P2: 5 of 10 hits, 0 of 19 false alarms: H = 5.5/11 = 0.5 (z = 0), F = 0.025 (z = -1.959964):
    #     d' = 1.959964, c = -(0 - 1.959964)/2 = 0.979982.
    rows = [{"pid": "P1", "s": True, "r": True}] * 19 + [{"pid": "P1", "s": False, "r": False}] * 19
    rows += [{"pid": "P2", "s": True, "r": i < 5} for i in range(10)] + [{"pid": "P2", "s": False, "r": False}] * 19
    rows += [{"pid": "P3", "s": True, "r": True}]  # no noise trial: rates but no d'
    out = S.signal_detection(pd.DataFrame(rows), "s", "r", "pid").set_index("subject")
    assert out.loc["P1", "dprime"] == pytest.approx(3.919928, abs=1e-6)
    assert out.loc["P1", "criterion"] == pytest.approx(0.0, abs=1e-9)
    assert (out.loc["P1", "hit_rate"], out.loc["P1", "false_alarm_rate"]) == (1.0, 0.0)
    assert out.loc["P2", "hit_rate_corrected"] == pytest.approx(0.5)
    assert out.loc["P2", "dprime"] == pytest.approx(1.959964, abs=1e-6)
    assert out.loc["P2", "criterion"] == pytest.approx(0.979982, abs=1e-6)
    assert out.loc["P3", "hit_rate"] == 1.0 and math.isnan(out.loc["P3", "dprime"])
    assert math.isnan(out.loc["P3", "false_alarm_rate"])


def test_mean_ci_by_hand() -> None:
    # 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653 (t table): half width 4.302653 / sqrt(3) = 2.484138.
    n, mean, low, high = S.mean_ci([1, 2, 3, math.nan])
    assert (n, mean) == (3, 2.0)
    assert low == pytest.approx(2 - 2.484138, abs=1e-6) and high == pytest.approx(2 + 2.484138, abs=1e-6)


def test_kappa_by_hand() -> None:
    # Cohen (1960): kappa = (po - pe) / (1 - pe). Table [[20, 5], [10, 15]], n = 50: po = 35/50 = 0.7;
    # pe = (25*30 + 25*20) / 50^2 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    table = pd.DataFrame([[20, 5], [10, 15]], index=["x", "y"], columns=["x", "y"])
    (row,) = S.cohens_kappa_table(table).to_dict("records")
    assert row["kappa"] == pytest.approx(0.4) and row["n_obs"] == 50
    assert row["ci_low"] < 0.4 < row["ci_high"]
    single = pd.DataFrame([[4]], index=["x"], columns=["x"])
    assert "undefined" in S.cohens_kappa_table(single).loc[0, "note"]
    with pytest.raises(ValueError, match="square"):
        S.cohens_kappa_table(pd.DataFrame([[1, 2]], index=["x"], columns=["x", "y"]))


def test_paired_t_too_few_and_missing_conditions() -> None:
    data = long([1.0, 2.0], [2.0, 4.0])
    data = data[~((data["pid"] == "P1") & (data["cond"] == "b"))]
    (row,) = S.paired_t(data, "y", "cond", "pid", "b", "a").to_dict("records")
    assert row["n_participants"] == 1 and math.isnan(row["t"])
    assert "1 participant(s) without both b and a left out" in row["note"]
    assert "at least 2 participants" in row["note"]
    (row,) = S.wilcoxon_paired(long([1, 2], [1, 2]), "y", "cond", "pid", "b", "a").to_dict("records")
    assert math.isnan(row["p"]) and "non-zero" in row["note"]


def test_drt_scoring_follows_iso_17488_windows() -> None:
    from analysis.drt import drt_summary, score_drt

    # Onsets at 0, 4000, 8000, 12000, 16000 ms (3-5 s apart). Hand-scored with ISO 17488's 100-2500 ms window:
    #   0 ms: response at 50 (too early), then 450 -> hit, RT 450.
    #   4000: response at 4099 (99 ms: too early), nothing else -> miss.
    #   8000: response at 8100 (exactly 100 ms) -> hit, RT 100; a second response at 8300 is ignored.
    #   12000: response at 14500 (exactly 2500 ms) -> hit, RT 2500.
    #   16000: response at 18501 (2501 ms: too late) -> miss.
    # Hit rate 3/5 = 0.6, mean hit RT (450 + 100 + 2500) / 3 = 1016.667 ms, 2 early responses.
    scored = score_drt([16000, 0, 4000, 8000, 12000], [50, 450, 4099, 8100, 8300, 14500, 18501, -20])
    assert scored["outcome"].tolist() == ["hit", "miss", "hit", "hit", "miss"]
    assert scored["rt_ms"].tolist()[0] == 450 and scored["rt_ms"].tolist()[2:4] == [100, 2500]
    assert scored["early_responses"].tolist() == [1, 1, 0, 0, 0]
    summary = drt_summary(scored)
    assert (summary["n_stimuli"], summary["hits"], summary["misses"], summary["early_responses"]) == (5, 3, 2, 2)
    assert summary["hit_rate"] == 0.6 and summary["mean_hit_rt_ms"] == pytest.approx(1016.6667, abs=1e-3)
    assert math.isnan(drt_summary(score_drt([], []))["hit_rate"])
    with pytest.raises(ValueError, match="missing"):
        score_drt([0, math.nan], [])


def test_mixed_model_refits_without_items_when_the_crossed_fit_is_not_clean(monkeypatch) -> None:
    real = S._fit_mixed
    calls = []

    def crossed_fails(frame, use_item):
        calls.append(use_item)
        result, notes, clean = real(frame, use_item)
        return (result, ["Hessian not positive definite"], False) if use_item else (result, notes, clean)

    monkeypatch.setattr(S, "_fit_mixed", crossed_fails)
    data = long(SLEEP_1, SLEEP_2)
    data["item"] = [f"i{i % 4}" for i in range(len(data))]
    (row,) = S.mixed_model(data, "y", "cond", "pid", reference="a", item="item").to_dict("records")
    assert calls == [True, False]
    assert row["n_items"] == 0 and row["converged"] is True
    assert row["coef"] == pytest.approx(1.58, abs=1e-4)  # the participant-only model: the paired mean difference
    assert "the crossed fit was not clean (Hessian not positive definite): refitted without the scenario-call " \
           "intercept" in row["note"]
    assert row["note"].endswith("random intercepts: participant")
