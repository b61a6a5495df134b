"""The researcher's page (``workbench research --recordings DIR``): analyse a folder of recorded sessions and look
at the results without leaving the browser.

A thin page over ``analysis.run.analyze`` (the same tables, statistics and report as ``workbench analyze``) and
``workbench.maps.recordings_heat_map_svg``; it reads recordings only and writes its output into ``--out``
(default ``<recordings>/../results``). Settings from the environment: ``WORKBENCH_RECORDINGS`` and
``WORKBENCH_RESULTS``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from analysis.run import AnalysisError, analyze
from workbench.console import access
from workbench.maps import recordings_heat_map_svg

ss = st.session_state
K_RESULT = "wb_research_result"


def folders() -> tuple[Path, Path]:
    """(recordings folder, results folder) from the environment."""
    recordings = Path(os.environ.get("WORKBENCH_RECORDINGS") or "recordings")
    results = Path(os.environ.get("WORKBENCH_RESULTS") or recordings.resolve().parent / "results")
    return recordings, results


def run_analysis(recordings: Path, results: Path) -> None:
    """Analyse every session; the result (or the error) is kept in the page state."""
    try:
        with st.spinner("Analysing the recorded sessions ..."):
            ss[K_RESULT] = analyze(recordings, results)
    except AnalysisError as exc:
        ss[K_RESULT] = str(exc)


def render() -> None:
    st.set_page_config(page_title="Researcher · 112 workbench", layout="wide")
    access.gate("researcher", os.environ)  # issue 7: the researcher's (or trainer's) access code first
    recordings, results = folders()
    st.title("Recorded sessions")
    st.caption(f"Recordings `{recordings}` · results written to `{results}` (the same files as `workbench analyze`)")
    st.button("Analyse", key="analyse", type="primary", on_click=run_analysis, args=(recordings, results))
    result = ss.get(K_RESULT)
    if result is None:
        st.info("Press Analyse to read every session and compute the tables, statistics and report.")
        return
    if isinstance(result, str):
        st.error(result)
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Sessions", result.sessions_loaded)
    c2.metric("Calls analysed", len(result.trials))
    c3.metric("Sessions with problems", len(result.sessions_with_problems))
    for session_id, problems in result.sessions_with_problems.items():
        st.warning(f"**{session_id}**: " + "; ".join(problems))
    summary = result.summary
    if summary is not None and len(summary):
        st.subheader("Statistics (summary.csv)")
        measures = sorted(summary["measure"].unique())
        measure = st.selectbox("Measure", measures, key="measure",
                               index=measures.index("rsme") if "rsme" in measures else 0)
        st.dataframe(summary[summary["measure"] == measure], hide_index=True, key="summary_table")
        plots = sorted((results / "plots").glob(f"{measure}*.png")) if (results / "plots").is_dir() else []
        for column, plot in zip(st.columns(2), plots[:2]):
            column.image(str(plot), caption=plot.name)
    st.subheader("Trials (trials.csv)")
    st.dataframe(result.trials, hide_index=True, key="trials_table")
    if result.quality is not None and len(result.quality):
        st.subheader("Data quality")
        st.dataframe(result.quality, hide_index=True, key="quality_table")
    st.subheader("Where the reports came from")
    try:
        svg, n = recordings_heat_map_svg(recordings, width=800, height=560)
        st.image(svg, caption=f"Heat map of report locations, {n} session(s)")
    except (FileNotFoundError, ValueError) as exc:
        st.caption(f"No heat map: {exc}")
    report = results / "report.html"
    if report.is_file():
        st.download_button("Download report.html", report.read_bytes(), file_name="report.html",
                           mime="text/html", key="download_report")


render()
