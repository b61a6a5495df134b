"""``summary.csv`` and ``confusion.csv`` from ``trials.csv``: every statistic of the analysis, one row each, with its n.

``summary.csv`` is a contract (the ``workbench simulate`` recovery tests read it): its columns are exactly
:data:`SUMMARY_COLUMNS`, in that order; rows are added, never renamed. What the rows are:

- For each trial measure in :data:`TRIAL_MEASURES` and each contrast:
  - ``modality``: level ``photo`` and level ``video`` against reference ``audio`` (each where it has data);
  - ``congruence``: level ``incongruent`` against reference ``congruent``, on calls with media (photo or video
    blocks: without an image, speech and image cannot disagree);

  methods ``paired_t`` (estimate = mean of participant-level paired differences level minus reference, t CI,
  statistic = t, effect_size = Cohen's d_z with its noncentral-t CI, p_holm = Holm across the primary outcomes
  :data:`PRIMARY_OUTCOMES` within the contrast level), ``wilcoxon`` (estimate = median paired difference, statistic =
  W, p), ``mixedlm`` (estimate = fixed effect of level vs reference with Wald CI, statistic = z, converged) and, for
  ``handling_time_s``, ``mixedlm_log`` (model on ln seconds; estimate and CI are exp(coef), the ratio
  level/reference).
- Signal detection of designed disagreement by the dispatcher's flag (calls with media, closed, with ground truth):
  measures ``hit_rate``, ``false_alarm_rate``, ``dprime``, ``criterion``; contrast ``all`` level ``all`` and contrast
  ``modality`` per media level; method ``sdt_loglinear``; estimate = mean over participants with a t CI.
- NASA-TLX per block (rating.nasa_tlx events and imported sheets): measures ``raw_tlx`` and ``weighted_tlx``,
  contrast ``modality``, methods
  ``paired_t``, ``wilcoxon``, ``mixedlm`` (participant random intercept only).
- Agreement with the ground truth: measures ``urgency`` and ``incident_type``, method ``cohens_kappa``, contrast
  ``all`` level ``all`` and contrast ``modality`` per level; the confusion matrices themselves are ``confusion.csv``.

Methods and their sources: :mod:`analysis.stats`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from analysis import stats as S
from analysis.reading import can_fork
from analysis.trials import TRIAL_COLUMNS, Column

TRIAL_MEASURES: tuple[str, ...] = (
    "rsme", "handling_time_s", "time_to_first_urgency_s", "completeness", "drt_hit_rt_ms", "drt_hit_rate",
    "disagreement_confidence", "photo_dwell_s", "focus_photos_share", "focus_live_view_share",
    "focus_transcript_share", "focus_form_share",
)
"""Trial measures compared between conditions (a measure without data gives no rows)."""

PARALLEL_FROM_TRIALS = 1000
"""From this many trials on, :func:`build_summary` fits the models in two processes (a fork costs ~0.1 s; one
crossed mixed model at 1000 rows about as much, at 6000 rows 0.5-0.7 s of CPU)."""

PRIMARY_OUTCOMES: tuple[str, ...] = ("rsme", "handling_time_s", "completeness")
"""Outcomes that share one Holm correction within each contrast level (paired_t rows)."""

MEDIA_MODALITIES: tuple[str, ...] = ("photo", "video")
"""Modalities in which the dispatcher sees an image (so speech and image can disagree)."""

CONTRASTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "modality": ("audio", ("photo", "video")),
    "congruence": ("congruent", ("incongruent",)),
}
"""Contrast name -> (reference level, levels compared with it)."""

SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("measure", "string", "", "What was measured: a trials.csv column (rsme, handling_time_s, ...), a signal "
           "detection measure (hit_rate, false_alarm_rate, dprime, criterion) or an agreement (urgency, "
           "incident_type)."),
    Column("contrast", "string", "", "modality, congruence, or all (no comparison)."),
    Column("level", "string", "", "Condition compared (photo, video, incongruent) or described (all, a modality)."),
    Column("reference", "string", "", "Condition it is compared with (audio, congruent); empty for descriptions."),
    Column("method", "string", "", "paired_t, wilcoxon, mixedlm, mixedlm_log, sdt_loglinear or cohens_kappa "
           "(see the report's methods)."),
    Column("n_participants", "integer", "count", "Participants whose data entered this number (complete pairs for "
           "paired methods)."),
    Column("n_obs", "integer", "count", "Trials (calls) whose data entered this number."),
    Column("estimate", "number", "see unit", "paired_t: mean paired difference level - reference; wilcoxon: median "
           "paired difference; mixedlm: fixed effect level vs reference; mixedlm_log: ratio level/reference "
           "(exp of the log-scale effect); sdt_loglinear: mean over participants; cohens_kappa: kappa."),
    Column("ci_low", "number", "see unit", "Lower bound of the 95% CI of estimate (t for paired_t and "
           "sdt_loglinear, Wald for mixedlm and cohens_kappa, exp of the Wald bound for mixedlm_log)."),
    Column("ci_high", "number", "see unit", "Upper bound of the 95% CI of estimate."),
    Column("unit", "string", "", "Unit of estimate and its CI."),
    Column("statistic", "number", "", "Test statistic: t (paired_t), W (wilcoxon, smaller rank sum), z (mixedlm, "
           "mixedlm_log, cohens_kappa: kappa / se)."),
    Column("p", "number", "", "Two-sided p value of the test."),
    Column("p_holm", "number", "", "Holm-adjusted p across the primary outcomes (rsme, handling_time_s, "
           "completeness) within one contrast level; paired_t rows only."),
    Column("effect_size", "number", "d_z", "Cohen's d_z of the paired differences (paired_t rows)."),
    Column("es_ci_low", "number", "d_z", "Lower bound of the 95% noncentral-t CI of d_z."),
    Column("es_ci_high", "number", "d_z", "Upper bound of the 95% noncentral-t CI of d_z."),
    Column("converged", "boolean", "", "mixedlm rows: the optimiser converged without warnings; empty otherwise."),
    Column("note", "string", "", "Why a number is missing, who was left out, df, warnings of the model fit."),
)
"""Columns of ``summary.csv``, in file order (a contract: see the module docstring)."""

CONFUSION_COLUMNS: tuple[Column, ...] = (
    Column("variable", "string", "", "urgency or incident_type."),
    Column("contrast", "string", "", "all, or modality."),
    Column("level", "string", "", "all, or the modality (audio, photo, video)."),
    Column("truth", "string", "", "Ground-truth category (urgency_true / incident_type_true)."),
    Column("given", "string", "", "Category the dispatcher gave at close; (none) when closed without one."),
    Column("n", "integer", "count", "Closed calls with ground truth in this cell (zeros included)."),
)
"""Columns of ``confusion.csv`` (long format: one row per cell of each confusion matrix)."""

BLOCK_COLUMNS: tuple[Column, ...] = (
    Column("participant", "string", "", "Participant pseudonym."),
    Column("session_id", "string", "", "Session of the block (from the sheet, else the session in which the "
           "participant worked the block); empty when no recorded block matches."),
    Column("block_id", "string", "", "Block id in the scenario."),
    Column("modality", "string", "", "Block condition (audio, photo, video) from the recording; empty when no "
           "recorded block matches."),
    Column("practice", "boolean", "", "The block is a practice block (left out of the statistics)."),
    Column("mental_demand", "number", "0-100", "NASA-TLX subscale."),
    Column("physical_demand", "number", "0-100", "NASA-TLX subscale."),
    Column("temporal_demand", "number", "0-100", "NASA-TLX subscale."),
    Column("performance", "number", "0-100", "NASA-TLX subscale (0 = perfect, 100 = failure)."),
    Column("effort", "number", "0-100", "NASA-TLX subscale."),
    Column("frustration", "number", "0-100", "NASA-TLX subscale."),
    Column("raw_tlx", "number", "NASA-TLX 0-100", "Raw TLX: mean of the six subscales (Hart & Staveland 1988); "
           "empty when a subscale is."),
    Column("weighted_tlx", "number", "NASA-TLX 0-100", "Weighted TLX: sum of rating x weight / 15, weights from "
           "the 15 pairwise comparisons (rating.nasa_tlx_weights); empty when they were not collected."),
    Column("source", "string", "", "Where the ratings come from: event (rating.nasa_tlx) or import (a --ratings "
           "sheet)."),
)
"""Columns of ``blocks.csv``: one row per participant x block with a NASA-TLX rating, from the console's
rating.nasa_tlx events and from imported NASA-TLX sheets."""

NO_ANSWER = "(none)"
"""Category for a call closed without an urgency or incident type."""


def _units() -> dict[str, str]:
    return {c.name: c.unit for c in TRIAL_COLUMNS}


def _empty_row(measure: str, contrast: str, level: str, reference: str, method: str) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: None for c in SUMMARY_COLUMNS}
    row |= {"measure": measure, "contrast": contrast, "level": level, "reference": reference, "method": method,
            "note": ""}
    return row


def _num(value: Any) -> float | None:
    """A float, or None for NaN/None (so the CSV cell is empty)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _int(value: Any) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def analysis_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with the columns the models need: ``congruence`` (``congruent``/``incongruent`` on calls with
    media, else missing) and ``item`` (``scenario_id/scenario_call_id``, the stimulus; missing for ad-hoc calls)."""
    d = trials.copy()
    media = d["modality"].isin(MEDIA_MODALITIES).fillna(False).astype(bool)
    congruent = d["congruent"]
    d["congruence"] = pd.Series(pd.NA, index=d.index, dtype="string")
    d.loc[media & (congruent == True), "congruence"] = "congruent"  # noqa: E712 (nullable boolean)
    d.loc[media & (congruent == False), "congruence"] = "incongruent"  # noqa: E712
    item = d["scenario_id"].astype("string") + "/" + d["scenario_call_id"].astype("string")
    d["item"] = item.where(d["scenario_call_id"].fillna("").astype(str) != "")
    return d


def _contrast_rows(d: pd.DataFrame, measure: str, contrast: str, reference: str, levels: Sequence[str],
                   unit: str, item: str | None = "item") -> list[dict[str, Any]]:
    columns = ["participant", contrast, measure] + ([item] if item else [])
    data = d[columns].dropna(subset=["participant", contrast, measure])
    data = data.astype({measure: float})
    present = set(data[contrast].astype(str))
    if reference not in present:
        return []
    wanted = [lv for lv in levels if lv in present]
    rows: list[dict[str, Any]] = []
    mixed = S.mixed_model(data, measure, contrast, "participant", reference, item=item)
    mixed = mixed.set_index("level") if len(mixed) else mixed
    logged = None
    if measure == "handling_time_s":
        logged = S.mixed_model(data, measure, contrast, "participant", reference, item=item, log=True)
        logged = logged.set_index("level") if len(logged) else logged
    for level in wanted:
        pt = S.paired_t(data, measure, contrast, "participant", level, reference).iloc[0]
        row = _empty_row(measure, contrast, level, reference, "paired_t")
        df_note = f"df={int(pt['df'])}" if not math.isnan(pt["df"]) else ""
        row |= {
            "n_participants": _int(pt["n_participants"]), "n_obs": _int(pt["n_obs"]),
            "estimate": _num(pt["mean_diff"]), "ci_low": _num(pt["ci_low"]), "ci_high": _num(pt["ci_high"]),
            "unit": unit, "statistic": _num(pt["t"]), "p": _num(pt["p"]),
            "effect_size": _num(pt["d_z"]), "es_ci_low": _num(pt["d_z_ci_low"]), "es_ci_high": _num(pt["d_z_ci_high"]),
            "note": "; ".join(x for x in (df_note, pt["note"]) if x),
        }
        rows.append(row)
        wx = S.wilcoxon_paired(data, measure, contrast, "participant", level, reference).iloc[0]
        row = _empty_row(measure, contrast, level, reference, "wilcoxon")
        method_note = f"{wx['method']} p" if wx["method"] else ""
        row |= {
            "n_participants": _int(wx["n_participants"]), "n_obs": _int(wx["n_obs"]),
            "estimate": _num(wx["median_diff"]), "unit": unit, "statistic": _num(wx["statistic"]),
            "p": _num(wx["p"]), "note": "; ".join(x for x in (method_note, wx["note"]) if x),
        }
        rows.append(row)
        for method, table, transform, row_unit in (
            ("mixedlm", mixed, lambda v: v, unit),
            ("mixedlm_log", logged, math.exp, f"ratio {level}/{reference}"),
        ):
            if table is None:
                continue
            row = _empty_row(measure, contrast, level, reference, method)
            if level in table.index:
                m = table.loc[level]
                coef, low, high = _num(m["coef"]), _num(m["ci_low"]), _num(m["ci_high"])
                row |= {
                    "n_participants": _int(m["n_participants"]), "n_obs": _int(m["n_obs"]),
                    "estimate": transform(coef) if coef is not None else None,
                    "ci_low": transform(low) if low is not None else None,
                    "ci_high": transform(high) if high is not None else None,
                    "unit": row_unit, "statistic": _num(m["z"]), "p": _num(m["p"]),
                    "converged": bool(m["converged"]), "note": str(m["note"]),
                }
            rows.append(row)
    return rows


def _sdt_rows(d: pd.DataFrame) -> list[dict[str, Any]]:
    media = d[d["modality"].isin(MEDIA_MODALITIES).fillna(False).astype(bool)]
    data = media[["participant", "modality", "disagreement_designed", "disagreement_flagged"]].dropna()
    rows: list[dict[str, Any]] = []
    groups: list[tuple[str, str, pd.DataFrame]] = [("all", "all", data)]
    groups += [("modality", m, data[data["modality"] == m]) for m in MEDIA_MODALITIES if (data["modality"] == m).any()]
    units = {"hit_rate": "proportion 0-1", "false_alarm_rate": "proportion 0-1", "dprime": "d' (z units)",
             "criterion": "c (z units)"}
    for contrast, level, g in groups:
        per = S.signal_detection(g, "disagreement_designed", "disagreement_flagged", "participant")
        counts = g.groupby("participant").size()
        for measure, unit in units.items():
            values = per.set_index("subject")[measure].astype(float) if len(per) else pd.Series(dtype=float)
            used = values.dropna()
            n, mean, low, high = S.mean_ci(used.to_numpy())
            row = _empty_row(measure, contrast, level, "", "sdt_loglinear")
            left_out = len(values) - len(used)
            notes = []
            if left_out:
                lacking = {"hit_rate": "designed-disagreement (signal) trials",
                           "false_alarm_rate": "agreement (noise) trials"}.get(
                    measure, "both designed-disagreement and agreement trials")
                notes.append(f"{left_out} participant(s) without {lacking} left out")
            if n == 0:
                notes.append("no participant with closed, ground-truthed calls with media for this measure")
            elif n < 2:
                notes.append(f"CI needs at least 2 participants, found {n}")
            row |= {"n_participants": n, "n_obs": int(counts.loc[used.index].sum()) if n else 0,
                    "estimate": _num(mean), "ci_low": _num(low), "ci_high": _num(high), "unit": unit,
                    "note": "; ".join(notes)}
            rows.append(row)
    return rows


def confusion_tables(trials: pd.DataFrame) -> pd.DataFrame:
    """Confusion matrices of urgency and incident type (truth x given), over all closed calls with ground truth and
    per modality, in long format with columns :data:`CONFUSION_COLUMNS` (every cell, zeros included). Categories
    are those observed on either axis of the variable (sorted; urgency in spoed, nu, later order), plus
    :data:`NO_ANSWER` when a call was closed without one."""
    rows: list[dict[str, Any]] = []
    closed = trials[trials["closed"].fillna(False).astype(bool)]
    for variable in ("urgency", "incident_type"):
        truth_col, given_col = f"{variable}_true", f"{variable}_given"
        d = closed[closed[truth_col].notna()][["modality", truth_col, given_col]].copy()
        d[given_col] = d[given_col].fillna(NO_ANSWER)
        cats = sorted(set(d[truth_col].astype(str)) | set(d[given_col].astype(str)))
        if variable == "urgency":
            order = ["spoed", "nu", "later", NO_ANSWER]
            cats = [c for c in order if c in cats] + [c for c in cats if c not in order]
        groups = [("all", "all", d)] + [("modality", m, d[d["modality"] == m])
                                        for m in ("audio", "photo", "video") if (d["modality"] == m).any()]
        for contrast, level, g in groups:
            table = pd.crosstab(g[truth_col].astype(str), g[given_col].astype(str)).reindex(
                index=cats, columns=cats, fill_value=0)
            for t in cats:
                for gv in cats:
                    rows.append({"variable": variable, "contrast": contrast, "level": level, "truth": t,
                                 "given": gv, "n": int(table.loc[t, gv])})
    return pd.DataFrame(rows, columns=[c.name for c in CONFUSION_COLUMNS])


def _kappa_rows(trials: pd.DataFrame, confusion: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    closed = trials[trials["closed"].fillna(False).astype(bool)]
    for (variable, contrast, level), cells in confusion.groupby(["variable", "contrast", "level"], sort=False):
        table = cells.pivot(index="truth", columns="given", values="n")
        cats = list(dict.fromkeys(cells["truth"]))
        table = table.reindex(index=cats, columns=cats)
        k = S.cohens_kappa_table(table).iloc[0]
        sub = closed[closed[f"{variable}_true"].notna()]
        if contrast == "modality":
            sub = sub[sub["modality"] == level]
        row = _empty_row(variable, contrast, level, "", "cohens_kappa")
        se = _num(k["se"])
        kappa = _num(k["kappa"])
        row |= {"n_participants": int(sub["participant"].nunique()), "n_obs": _int(k["n_obs"]),
                "estimate": kappa, "ci_low": _num(k["ci_low"]), "ci_high": _num(k["ci_high"]), "unit": "kappa",
                "statistic": kappa / se if kappa is not None and se else None, "note": str(k["note"])}
        rows.append(row)
    return rows


def _expected_cost(d: pd.DataFrame, measure: str, contrast: str) -> int:
    """Rough cost of a (measure, contrast) task for ordering: the rows its mixed models fit (x2 for handling time,
    which also has the log model)."""
    rows = int((d[measure].notna() & d[contrast].notna() & d["participant"].notna()).sum())
    return rows * (2 if measure == "handling_time_s" else 1)


def build_summary(trials: pd.DataFrame, progress: Callable[[str], None] | None = None,
                  blocks: pd.DataFrame | None = None, workers: int | None = None) -> pd.DataFrame:
    """Every row of ``summary.csv`` (see the module docstring) from a ``trials`` table with the columns of
    :data:`analysis.trials.TRIAL_COLUMNS`, and, when ``blocks`` (columns :data:`BLOCK_COLUMNS`) is given, the
    modality rows of the block measure ``raw_tlx`` (paired_t, wilcoxon, mixedlm with a participant random
    intercept only: a block's id goes with its modality), and of ``weighted_tlx`` where weights were collected.
    ``progress`` (optional) is called with a short text
    before each measure. ``workers`` processes compute the trial measures' rows (None: two from
    :data:`PARALLEL_FROM_TRIALS` trials on a machine with two CPUs, else one; one whenever
    :func:`analysis.reading.can_fork` is False); the rows do not depend on it. Returns a DataFrame with exactly :data:`SUMMARY_COLUMNS` (nullable dtypes); empty (with
    the columns) when there is nothing to compare. Never raises for data that cannot be analysed: such rows carry a
    note."""
    from analysis.trials import frame

    d = analysis_frame(trials)
    units = _units()
    rows: list[dict[str, Any]] = []
    tasks = [(measure, contrast, reference, levels) for measure in TRIAL_MEASURES
             for contrast, (reference, levels) in CONTRASTS.items()]
    if workers is None:
        workers = 2 if len(d) >= PARALLEL_FROM_TRIALS and (os.cpu_count() or 1) >= 2 else 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers > 1 and can_fork():
        # The mixed models are ~90% of this function at 6000 trials; each (measure, contrast) is independent and
        # computed by the same code on the same columns, so the rows are the same as in one process, in the same
        # order. Forked for the reasons given in analysis.reading.
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            # Longest first (rows in the model, twice for the two models of handling time), so the two workers
            # finish together instead of one fitting the last large model alone (issue 9); read in task order.
            futures: dict[int, Any] = {}
            for i in sorted(range(len(tasks)), key=lambda i: -_expected_cost(d, *tasks[i][:2])):
                measure, contrast, reference, levels = tasks[i]
                futures[i] = pool.submit(_contrast_rows, d[["participant", contrast, measure, "item"]], measure,
                                         contrast, reference, levels, units.get(measure, ""))
            for (measure, contrast, _, _), future in zip(tasks, (futures[i] for i in range(len(tasks)))):
                if progress is not None and contrast == tasks[0][1]:
                    progress(f"statistics: {measure}")
                rows += future.result()
    else:
        for measure, contrast, reference, levels in tasks:
            if progress is not None and contrast == tasks[0][1]:
                progress(f"statistics: {measure}")
            rows += _contrast_rows(d, measure, contrast, reference, levels, units.get(measure, ""))
    if blocks is not None and len(blocks):
        if progress is not None:
            progress("statistics: raw_tlx")
        b = blocks[blocks["practice"] != True]  # noqa: E712 (nullable boolean)
        reference, levels = CONTRASTS["modality"]
        for measure in ("raw_tlx", "weighted_tlx"):
            rows += _contrast_rows(b, measure, "modality", reference, levels, "NASA-TLX 0-100", item=None)
    # Holm across the primary outcomes of one contrast level (paired_t rows).
    index = {}
    for i, row in enumerate(rows):
        if row["method"] == "paired_t" and row["measure"] in PRIMARY_OUTCOMES:
            index.setdefault((row["contrast"], row["level"]), []).append(i)
    for positions in index.values():
        adjusted = S.holm([rows[i]["p"] if rows[i]["p"] is not None else math.nan for i in positions])
        for i, value in zip(positions, adjusted):
            rows[i]["p_holm"] = _num(value)
    if progress is not None:
        progress("statistics: signal detection, agreement")
    rows += _sdt_rows(d)
    rows += _kappa_rows(trials, confusion_tables(trials))
    for row in rows:
        for key in ("estimate", "ci_low", "ci_high", "statistic", "p", "p_holm", "effect_size", "es_ci_low",
                    "es_ci_high"):
            value = row[key]
            if value is not None and not np.isfinite(value):
                row[key] = None
    return frame(rows, SUMMARY_COLUMNS)
