"""``report.html``: one self-contained page (inline CSS, plots embedded as base64 PNG) with the methods as they
were actually computed, the results with their n, the plots, and a data-quality section listing every excluded or
repaired record. The plots are also written as PNG and SVG files in ``plots/``.

Plots are drawn with matplotlib's object-oriented API (``matplotlib.figure.Figure``, no pyplot and no display).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from analysis import stats as S
from analysis.summary import MEDIA_MODALITIES, PRIMARY_OUTCOMES, TRIAL_MEASURES, analysis_frame
from analysis.report_notes import no_rows_note
from analysis.trials import TRIAL_COLUMNS
from workbench import __version__

MODALITY_ORDER = ("audio", "photo", "video")
MEASURE_LABELS = {
    "rsme": "Mental effort (RSME, 0-150)",
    "handling_time_s": "Handling time (s)",
    "time_to_first_urgency_s": "Time to first urgency (s)",
    "completeness": "Completeness (proportion of required items)",
    "raw_tlx": "Workload (raw NASA-TLX, 0-100, per block)",
    "weighted_tlx": "Workload (weighted NASA-TLX, 0-100, per block)",
    "drt_hit_rt_ms": "DRT mean hit response time (ms)",
    "drt_hit_rate": "DRT hit rate (ISO 17488)",
    "disagreement_confidence": "Confidence about the disagreement flag (1-5)",
    "photo_dwell_s": "Photo dwell time per call (s)",
    "focus_photos_share": "Share of focus on the photos panel",
    "focus_live_view_share": "Share of focus on the live view",
    "focus_transcript_share": "Share of focus on the transcript",
    "focus_form_share": "Share of focus on the intake form",
}
METHOD_TEXT = {
    "paired_t": "paired t-test on participant-level condition means (estimate: mean paired difference level minus "
                "reference, 95% t CI), with Cohen's d_z and its 95% CI from the noncentral t distribution "
                "(Steiger & Fouladi, 1997; Cumming & Finch, 2001)",
    "wilcoxon": "Wilcoxon signed-rank test on the same paired differences (Wilcoxon, 1945; zero differences "
                "dropped; exact p without ties for n <= 50, else the normal approximation; estimate: median "
                "difference)",
    "mixedlm": "linear mixed model fitted by REML with crossed random intercepts for participant and scenario call "
               "(Baayen, Davidson & Bates, 2008; statsmodels MixedLM), fixed effect of the condition with a Wald "
               "95% CI; convergence problems are reported per row",
    "mixedlm_log": "the same mixed model on log handling time; estimate and CI are exponentiated (the ratio of "
                   "handling times level/reference)",
    "sdt_loglinear": "signal detection of designed speech/image disagreement by the dispatcher's flag, per "
                     "participant: hit and false-alarm rates, d' = z(H) - z(F) and c = -(z(H) + z(F))/2 "
                     "(Macmillan & Creelman, 2005) with the log-linear correction (Hautus, 1995: +0.5 to hit and "
                     "false-alarm counts, +1 to signal and noise trial counts); mean over participants with a 95% "
                     "t CI",
    "cohens_kappa": "Cohen's kappa (Cohen, 1960) between the given and the ground-truth category, asymptotic "
                    "standard error and Wald 95% CI",
}
REFERENCES = (
    "Baayen, R. H., Davidson, D. J., & Bates, D. M. (2008). Mixed-effects modeling with crossed random effects for "
    "subjects and items. Journal of Memory and Language, 59(4), 390-412.",
    "Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and Psychological Measurement, "
    "20(1), 37-46.",
    "Cohen, J. (1988). Statistical power analysis for the behavioral sciences (2nd ed.). Erlbaum.",
    "Cumming, G., & Finch, S. (2001). A primer on the understanding, use, and calculation of confidence intervals "
    "that are based on central and noncentral distributions. Educational and Psychological Measurement, 61(4), "
    "532-574.",
    "Hautus, M. J. (1995). Corrections for extreme proportions and their biasing effects on estimated values of d'. "
    "Behavior Research Methods, Instruments, & Computers, 27(1), 46-51.",
    "Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal of Statistics, "
    "6(2), 65-70.",
    "Macmillan, N. A., & Creelman, C. D. (2005). Detection theory: A user's guide (2nd ed.). Erlbaum.",
    "Seabold, S., & Perktold, J. (2010). Statsmodels: Econometric and statistical modeling with Python. "
    "Proceedings of the 9th Python in Science Conference, 92-96.",
    "Steiger, J. H., & Fouladi, R. T. (1997). Noncentrality interval estimation and the evaluation of statistical "
    "models. In L. L. Harlow, S. A. Mulaik & J. H. Steiger (Eds.), What if there were no significance tests? "
    "(pp. 221-257). Erlbaum.",
    "Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics Bulletin, 1(6), 80-83.",
    "Zijlstra, F. R. H. (1993). Efficiency in work behaviour: A design approach for modern tools. Delft University "
    "Press.",
)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:1.5rem 2rem;
color:#1d232a;line-height:1.45;background:#fff}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:2px solid #d0d7de;padding-bottom:.2rem;
margin-top:2.2rem}h3{font-size:1.05rem;margin-top:1.6rem}
.sub{color:#57606a;margin-top:0}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0 1rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.warn td{background:#fff6e0}.ok{color:#1a7f37}.bad{color:#b42318;font-weight:600}
.cards{display:flex;gap:.8rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:6px;padding:.5rem .9rem}
.card b{display:block;font-size:1.3rem}
figure{margin:.5rem 0 1.2rem}figure img{max-width:100%;border:1px solid #eaeef2}
figcaption{font-size:.85rem;color:#57606a}
.note{font-size:.75rem;color:#57606a}
td:last-child{min-width:12rem}
ol.refs li{font-size:.85rem;margin-bottom:.3rem}
table.compact{width:auto}table.compact td:last-child{min-width:0}
code{background:#f3f5f7;padding:0 .2rem;border-radius:3px}
"""


def _missing(value: Any) -> bool:
    """True for None, pd.NA and NaN (what a nullable cell turns into after ``to_dict``)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    """Escaped text of a cell; empty for a missing value."""
    return "" if _missing(value) else html.escape(str(value))


def _fmt(value: Any, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if math.isnan(v):
        return "–"
    if v != 0 and abs(v) < 0.001:
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def _p(value: Any) -> str:
    if _missing(value):
        return "–"
    v = float(value)
    return "< .001" if v < 0.001 else f"{v:.3f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (),
           row_classes: Sequence[str] | None = None, compact: bool = False) -> str:
    out = [f"<table{' class=compact' if compact else ''}><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="n">{c}</td>' if j in numeric else f"<td>{c}</td>" for j, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def condition_plots_of(analysed: pd.DataFrame, measure: str) -> list[tuple[str, Sequence[str], str]]:
    """The condition plots of a trial measure's section: (column, level order, title) each; none when the measure
    has no section (not a primary outcome and not recorded in these sessions)."""
    if measure not in PRIMARY_OUTCOMES and analysed[measure].notna().sum() == 0:
        return []
    return [(column, order, f"{measure} {title}") for column, order, title in (
        ("modality", MODALITY_ORDER, "by modality"),
        ("congruence", ("congruent", "incongruent"), "by congruence (calls with media)"))]


def _plot(drawn: dict[str, Any] | None, plots: Path, name: str, draw: Any,
          *args: Any) -> tuple[str, list[Path]] | None:
    """A plot drawn ahead (:mod:`analysis.report_plots`) when ``drawn`` has it, else drawn here with ``draw(*args)``
    and saved; None when there is nothing to plot."""
    if drawn is not None and name in drawn:
        return drawn[name]
    fig = draw(*args)
    return None if fig is None else _save(fig, plots, name)


def _save(fig: Any, plots: Path, name: str) -> tuple[str, list[Path]]:
    png, svg = plots / f"{name}.png", plots / f"{name}.svg"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    png.write_bytes(buffer.getvalue())
    fig.savefig(svg, format="svg", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii"), [png, svg]


def _condition_plot(d: pd.DataFrame, measure: str, column: str, order: Sequence[str], title: str) -> Any | None:
    from matplotlib.figure import Figure

    means = S.participant_means(d.dropna(subset=[column]), measure, column, "participant")
    levels = [lv for lv in order if lv in set(means[column])]
    if not levels:
        return None
    fig = Figure(figsize=(4.2, 3.2))
    ax = fig.add_subplot()
    wide = means.pivot(index="participant", columns=column, values="mean").reindex(columns=levels)
    x = np.arange(len(levels))
    for _, row in wide.iterrows():
        ax.plot(x, row.to_numpy(dtype=float), color="#9aa5b1", alpha=0.55, linewidth=0.9, marker="o", markersize=2.5)
    for i, level in enumerate(levels):
        n, mean, low, high = S.mean_ci(wide[level].to_numpy(dtype=float))
        if n:
            err = [[mean - low], [high - mean]] if not math.isnan(low) else None
            ax.errorbar([i], [mean], yerr=err, color="#0b5cad", marker="s", markersize=6, capsize=4, linewidth=2)
    ax.set_xticks(x, [f"{lv}\n(n={int(wide[lv].notna().sum())})" for lv in levels])
    ax.set_ylabel(MEASURE_LABELS.get(measure, measure), fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _triage_plot(trials: pd.DataFrame) -> Any | None:
    from matplotlib.figure import Figure

    d = trials.dropna(subset=["triage_change"])
    if d.empty:
        return None
    counts = pd.crosstab(d["modality"], d["triage_change"]).reindex(columns=["up", "none", "down"], fill_value=0)
    fig = Figure(figsize=(4.2, 2.8))
    ax = fig.add_subplot()
    bottom = np.zeros(len(counts))
    colors = {"up": "#b42318", "none": "#9aa5b1", "down": "#0b5cad"}
    for change in counts.columns:
        ax.bar(counts.index, counts[change], bottom=bottom, label=change, color=colors[change])
        bottom += counts[change].to_numpy()
    ax.set_ylabel("calls", fontsize=8)
    ax.set_title("Urgency change after the first media", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _methods(result: Any, analysed: pd.DataFrame) -> str:
    summary = result.summary
    methods = [m for m in METHOD_TEXT if (summary["method"] == m).any()] if summary is not None else []
    n_part = analysed["participant"].nunique()
    closed = analysed[analysed["closed"] == True]  # noqa: E712
    parts = [
        f"<p>{result.sessions_loaded} session(s) of {n_part} participant(s) were read; {len(analysed)} non-practice "
        f"call(s) entered the analysis, {len(closed)} of them closed by the dispatcher. Trial measures "
        f"({', '.join(TRIAL_MEASURES)}) were averaged per participant and condition; within-participant "
        "comparisons use participants with both conditions of a comparison (complete pairs). Modality contrasts "
        "compare photo and live video blocks with audio-only blocks; the congruence contrast compares calls whose "
        "speech and image disagree by design with congruent calls, among calls with media (photo or video).</p>",
    ]
    if methods:
        parts.append("<p>Computed:</p><ul>" + "".join(
            f"<li><code>{m}</code>: {html.escape(METHOD_TEXT[m])} ({int((summary['method'] == m).sum())} row(s), "
            f"n = {_range(summary[summary['method'] == m]['n_participants'])} participants)</li>" for m in methods)
            + "</ul>")
    paired = summary[summary["method"] == "paired_t"] if summary is not None else pd.DataFrame()
    holm_rows = paired[paired["p_holm"].notna()] if len(paired) else paired
    if len(holm_rows):
        families = holm_rows.groupby(["contrast", "level"]).size()
        parts.append(
            "<p>Multiple comparisons: paired t p values were Holm-corrected (Holm, 1979) across the primary outcomes "
            f"({', '.join(PRIMARY_OUTCOMES)}) within each contrast level: "
            + ", ".join(f"{c} {lv} ({k} test(s))" for (c, lv), k in families.items())
            + ". Wilcoxon and mixed-model p values are not corrected.</p>")
    mixed = summary[summary["method"].isin(["mixedlm", "mixedlm_log"])] if summary is not None else pd.DataFrame()
    if len(mixed):
        bad = mixed[mixed["converged"] != True]  # noqa: E712
        parts.append(f"<p>Mixed models: {len(mixed)} fixed effect(s) reported; {len(bad)} of them from a fit that "
                     "did not converge cleanly (marked in the tables; see the note column of summary.csv).</p>")
    parts.append("<p>Triage change compares the urgency set before the first media arrived (first photo or "
                 "first video frame) with the urgency at close (order spoed &gt; nu &gt; later). Every interval "
                 "is 95%.</p>")
    return "".join(parts)


def _range(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return "0"
    low, high = int(v.min()), int(v.max())
    return str(low) if low == high else f"{low}-{high}"


def _summary_table(rows: pd.DataFrame) -> str:
    body, classes = [], []
    for r in rows.to_dict("records"):
        est = _fmt(r["estimate"])
        ci = "" if _missing(r["ci_low"]) else f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        es = "" if _missing(r["effect_size"]) else (
            f"{_fmt(r['effect_size'])} [{_fmt(r['es_ci_low'])}, {_fmt(r['es_ci_high'])}]")
        conv = "" if _missing(r["converged"]) else ('<span class="ok">yes</span>' if r["converged"]
                                                    else '<span class="bad">no</span>')
        versus = f"{r['level']} vs {r['reference']}" if not _missing(r["reference"]) and r["reference"] else r["level"]
        body.append([_text(r["contrast"]), _text(versus), _text(r["method"]),
                     _fmt(r["n_participants"], 0), _fmt(r["n_obs"], 0), est, ci,
                     _fmt(r["statistic"], 2), _p(r["p"]), "" if _missing(r["p_holm"]) else _p(r["p_holm"]), es, conv,
                     f'<span class="note">{_text(r["note"])}</span>'])
        classes.append("warn" if r["converged"] is False or "needs" in _text(r["note"]) else "")
    return _table(["contrast", "comparison", "method", "n part.", "n obs", "estimate", "95% CI",
                   "statistic", "p", "p Holm", "d_z [95% CI]", "conv.", "note"], body, numeric=(3, 4, 5, 7, 8, 9),
                  row_classes=classes)


def _confusion_html(confusion: pd.DataFrame, variable: str) -> str:
    cells = confusion[(confusion["variable"] == variable) & (confusion["contrast"] == "all")]
    if cells.empty:
        return "<p>No closed calls with ground truth.</p>"
    cats = list(dict.fromkeys(cells["truth"]))
    table = cells.pivot(index="truth", columns="given", values="n").reindex(index=cats, columns=cats)
    rows = [[f"<b>{html.escape(t)}</b>"] + [str(int(table.loc[t, g])) for g in cats] for t in cats]
    return _table(["truth \\ given"] + cats, rows, numeric=tuple(range(1, len(cats) + 1)), compact=True)


def write_report(result: Any, out_dir: Path, drawn: dict[str, Any] | None = None) -> list[Path]:
    """Write ``report.html`` and ``plots/*.png|svg`` for an :class:`analysis.run.AnalysisResult` into ``out_dir``;
    returns the paths written. ``drawn``: plots already drawn into ``out_dir/plots`` by
    :class:`analysis.report_plots.PlotDrawer` (name -> its result); the others are drawn here. Raises ``OSError``
    when they cannot be written."""
    out_dir = Path(out_dir)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    trials = result.trials
    analysed = analysis_frame(trials[trials["practice"] != True])  # noqa: E712
    summary = result.summary
    units = {c.name: c.unit for c in TRIAL_COLUMNS}
    n_participants = analysed["participant"].nunique()
    quality = result.quality
    excluded = int((quality["handling"] == "excluded").sum()) if quality is not None else 0
    repaired = int((quality["handling"] == "repaired").sum()) if quality is not None else 0

    sections = [
        f"<h1>112 multimedia intake: analysis report</h1><p class='sub'>workbench {html.escape(__version__)}; "
        f"status: exercise (simulated records). Tables: summary.csv, trials.csv, sessions.csv, events.csv, "
        f"confusion.csv, disagreement.csv, form_changes.csv, blocks.csv, drt.csv, media_views.csv, focus.csv, "
        "data_quality.csv (and .parquet); columns in codebook.md.</p>",
        "<div class='cards'>" + "".join(
            f"<div class='card'><b>{v}</b>{html.escape(k)}</div>" for k, v in (
                ("sessions", result.sessions_loaded), ("participants", n_participants),
                ("calls analysed", len(analysed)),
                ("sessions with problems", len(result.sessions_with_problems)),
                ("records excluded", excluded), ("records repaired", repaired))) + "</div>",
        "<h2>Methods</h2>" + _methods(result, analysed),
        "<h2>Results</h2>",
    ]
    for measure in TRIAL_MEASURES:
        condition_plots = condition_plots_of(analysed, measure)
        if not condition_plots:
            continue  # not recorded in these sessions (DRT, confidence): no empty section
        rows = summary[summary["measure"] == measure] if summary is not None else pd.DataFrame()
        sections.append(f"<h3>{html.escape(MEASURE_LABELS.get(measure, measure))} <code>{measure}</code>"
                        f"{' (primary)' if measure in PRIMARY_OUTCOMES else ''}</h3>"
                        f"<p class='sub'>Estimates in {html.escape(units.get(measure) or 'units of the measure')}"
                        + ("; mixedlm_log rows: ratio level/reference" if measure == "handling_time_s" else "")
                        + ". Statistic: t (paired_t), W (wilcoxon), z (mixed models).</p>")
        figures = []
        for column, order, title in condition_plots:
            plotted = _plot(drawn, plots, f"{measure}_{column}", _condition_plot, analysed, measure, column, order,
                            title)
            if plotted is None:
                continue
            encoded, written = plotted
            files += written
            figures.append(f"<img alt='{title}' src='data:image/png;base64,{encoded}' "
                           "style='width:48%;min-width:300px'>")
        if figures:
            sections.append("<figure>" + "".join(figures) + "<figcaption>Grey: one participant's condition means; "
                            "blue: mean over participants with 95% t CI; n = participants.</figcaption></figure>")
        sections.append(_summary_table(rows) if len(rows) else f"<p>{html.escape(no_rows_note(analysed, measure))}</p>")

    if all(analysed[m].notna().sum() == 0 for m in TRIAL_MEASURES if m.startswith("drt_")):
        sections.append("<p>No DRT stimuli were recorded in these sessions (drt.csv is empty).</p>")
    blocks = getattr(result, "blocks", None)
    if blocks is not None and len(blocks):
        sources = ", ".join(f"{n} from {src}" for src, n in blocks["source"].value_counts().items())
        for measure in ("raw_tlx", "weighted_tlx"):
            if blocks[measure].notna().sum() == 0:
                continue
            rows = summary[summary["measure"] == measure]
            sections.append(f"<h3>{MEASURE_LABELS[measure]} <code>{measure}</code></h3><p class='sub'>"
                            f"{len(blocks)} block rating(s) ({sources}); estimates in TLX points. Mixed model: "
                            "participant random intercept only (a block's id goes with its modality).</p>")
            plotted = _plot(drawn, plots, f"{measure}_modality", _condition_plot,
                            blocks[blocks["practice"] != True], measure, "modality",  # noqa: E712
                            MODALITY_ORDER, f"{measure} by modality")
            if plotted is not None:
                encoded, written = plotted
                files += written
                sections.append(f"<figure><img alt='{measure} by modality' src='data:image/png;base64,{encoded}' "
                                "style='width:48%;min-width:300px'></figure>")
            sections.append(_summary_table(rows) if len(rows) else "<p>No block comparison possible.</p>")

    sections.append("<h3>Designed speech/image disagreement</h3><p class='sub'>Per modality and aspect over "
                    "non-practice calls with ground truth (disagreement.csv). In audio-only blocks the dispatcher "
                    "sees no image, so a flag there is not counted in the signal-detection measures below.</p>")
    dis = getattr(result, "disagreement", None)
    if dis is not None and len(dis):
        sections.append(_table(
            ["modality", "aspect", "calls", "incongruent", "share", "closed incongruent", "flagged",
             "flagged with this aspect"],
            [[_text(r["modality"]), _text(r["aspect"]) if r["aspect"] != "any" else "<b>any</b>", _fmt(r["calls"], 0),
              _fmt(r["incongruent"], 0), _fmt(r["share_incongruent"]), _fmt(r["closed_incongruent"], 0),
              _fmt(r["flagged"], 0), _fmt(r["flagged_aspect"], 0)] for r in dis.to_dict("records")],
            numeric=(2, 3, 4, 5, 6, 7), compact=True))
    else:
        sections.append("<p>No calls with ground truth.</p>")

    sections.append("<h3>Perceived speech/image disagreement (signal detection)</h3>")
    sdt = summary[summary["method"] == "sdt_loglinear"] if summary is not None else pd.DataFrame()
    sections.append(_table(
        ["measure", "contrast", "level", "n part.", "n obs", "mean", "95% CI", "note"],
        [[r["measure"], r["contrast"], r["level"], _fmt(r["n_participants"], 0), _fmt(r["n_obs"], 0),
          _fmt(r["estimate"]), f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
          f"<span class='note'>{_text(r['note'])}</span>"] for r in sdt.to_dict("records")],
        numeric=(3, 4, 5)) if len(sdt) else "<p>No calls with media and ground truth.</p>")

    sections.append("<h3>Triage change after media</h3>")
    tc = analysed.dropna(subset=["triage_change"])
    if len(tc):
        counts = pd.crosstab(tc["modality"], tc["triage_change"]).reindex(columns=["up", "none", "down"],
                                                                          fill_value=0)
        sections.append(_table(["modality", "up", "none", "down", "n"],
                               [[m] + [str(int(v)) for v in row] + [str(int(row.sum()))]
                                for m, row in counts.iterrows()], numeric=(1, 2, 3, 4)))
        plotted = _plot(drawn, plots, "triage_change", _triage_plot, analysed)
        if plotted is not None:
            encoded, written = plotted
            files += written
            sections.append(f"<figure><img alt='triage change' src='data:image/png;base64,{encoded}' "
                            "style='width:45%;min-width:300px'></figure>")
    else:
        sections.append("<p>No call had an urgency set before its first media arrived.</p>")
    closed_media = analysed[(analysed["closed"] == True) & analysed["first_media_s"].notna()]  # noqa: E712
    no_before = int(closed_media["urgency_before_media"].isna().sum())
    sections.append(f"<p>{no_before} of {len(closed_media)} closed call(s) with media had no urgency set before "
                    "the first media arrived (for example media that arrived before the answer): no triage change "
                    "is defined for them.</p>")

    sections.append("<h3>Urgency and incident type against ground truth</h3>")
    kappa = summary[summary["method"] == "cohens_kappa"] if summary is not None else pd.DataFrame()
    if len(kappa):
        sections.append(_table(
            ["variable", "contrast", "level", "n part.", "n obs", "kappa", "95% CI", "note"],
            [[r["measure"], r["contrast"], r["level"], _fmt(r["n_participants"], 0), _fmt(r["n_obs"], 0),
              _fmt(r["estimate"]), f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
              _text(r["note"])] for r in kappa.to_dict("records")], numeric=(3, 4, 5)))
    for variable in ("urgency", "incident_type"):
        sections.append(f"<p><b>{variable}</b> (all closed calls; rows: ground truth, columns: given)</p>")
        sections.append(_confusion_html(result.confusion, variable))

    from analysis.automation import report_section  # link proposals, advice, screening (issue 11)

    if getattr(result, "automation", None):
        sections.append(report_section(result.automation))
    sections.append("<h2>Data quality</h2>")
    sess = result.sessions
    sections.append(_table(
        ["session", "participant", "software", "events", "calls", "ended", "end reason", "lines skipped",
         "calls missing", "problems"],
        [[_text(r["session_id"]), _text(r["participant"]), _text(r["software_version"]),
          _fmt(r["events"], 0), _fmt(r["calls"], 0), "yes" if r["ended"] is True else "<span class='bad'>no</span>",
          _text(r["end_reason"]), _fmt(r["lines_skipped"], 0), _fmt(r["calls_missing"], 0),
          _text(r["problems"]).replace(" | ", "<br>")]
         for r in sess.to_dict("records")], numeric=(3, 4, 7, 8),
        row_classes=["warn" if _text(r["problems"]) else "" for r in sess.to_dict("records")]))
    if quality is not None and len(quality):
        sections.append(f"<p>Every excluded, repaired or reported record ({len(quality)}):</p>")
        sections.append(_table(
            ["handling", "record", "session", "call", "problem"],
            [[_text(r["handling"]), _text(r["record"]), _text(r["session_id"]), _text(r["call_id"]),
              _text(r["problem"])]
             for r in quality.to_dict("records")]))
    else:
        sections.append("<p>No record was excluded or repaired.</p>")
    sections.append("<p>Photo dwell time and the share of focus time per panel are in trials.csv (photo_dwell_s, "
                    "focus_*_share), media_views.csv and focus.csv; they are not compared between conditions in "
                    "this report yet.</p>")
    sections.append("<h2>References</h2><ol class='refs'>" + "".join(f"<li>{html.escape(r)}</li>" for r in REFERENCES)
                    + "</ol>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Analysis report</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(sections) + "</body></html>\n")
    report = out_dir / "report.html"
    report.write_text(page, encoding="utf-8")
    return files + [report]
