"""The report's plots drawn ahead, in one forked process, while the analysis goes on (statistics, table writing).

Drawing the report's plots (matplotlib, PNG + SVG, ~22 figures with a line per participant) takes about 20 s of
one core at 100 participants x 60 calls, and depends only on the trials and blocks tables, which exist before the
statistics start. :func:`start_plots` forks one process that draws every plot :func:`planned_plots` lists with the
report's own drawing functions (:mod:`analysis.report`) into ``plots/`` and sends back the base64 PNGs;
:func:`analysis.report.write_report` then takes them from :meth:`PlotDrawer.results` instead of drawing them
itself, so ``report.html`` and the PNG files are the same bytes as when drawn in one process (SVG files carry
their drawing time, as they always did).

A pipe, not a process pool: a pool runs a manager thread in the calling process, and
:func:`analysis.reading.can_fork` then stops the statistics from forking their own workers. Forked, for the
reasons given in :mod:`analysis.reading`, and only when :func:`analysis.reading.can_fork` allows it; otherwise
(and whenever the drawing process fails or dies) the report draws every plot itself, so the outputs never depend
on it.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import pandas as pd

PlotResult = tuple[str, list[Path]]
"""A drawn plot: (base64 of its PNG, [PNG path, SVG path])."""


@dataclass(frozen=True)
class PlannedPlot:
    """One plot of the report: its file stem in ``plots/`` and how to draw it (a function of the report returning
    a matplotlib Figure or None, with its positional arguments)."""

    name: str
    draw: Callable[..., Any]
    args: tuple[Any, ...]


def planned_plots(trials: pd.DataFrame, blocks: pd.DataFrame | None) -> list[PlannedPlot]:
    """Every plot :func:`analysis.report.write_report` draws for an analysis' ``trials`` and ``blocks`` tables, in
    its order, with the same arguments. A plot whose function returns None (no data for it) is not in the report.
    A plot missing here would still be drawn by the report itself."""
    from analysis.report import MODALITY_ORDER, _condition_plot, _triage_plot, condition_plots_of
    from analysis.summary import TRIAL_MEASURES, analysis_frame

    analysed = analysis_frame(trials[trials["practice"] != True])  # noqa: E712 (nullable boolean)
    plots = [PlannedPlot(f"{measure}_{column}", _condition_plot, (analysed, measure, column, order, title))
             for measure in TRIAL_MEASURES for column, order, title in condition_plots_of(analysed, measure)]
    if blocks is not None and len(blocks):
        used = blocks[blocks["practice"] != True]  # noqa: E712 (nullable boolean)
        for measure in ("raw_tlx", "weighted_tlx"):
            if blocks[measure].notna().sum():
                plots.append(PlannedPlot(f"{measure}_modality", _condition_plot,
                                         (used, measure, "modality", MODALITY_ORDER, f"{measure} by modality")))
    if analysed["triage_change"].notna().any():
        plots.append(PlannedPlot("triage_change", _triage_plot, (analysed,)))
    return plots


def draw_planned(plots: list[PlannedPlot], plots_dir: Path) -> dict[str, PlotResult | None]:
    """Draw ``plots`` into ``plots_dir`` (created when missing) with the report's :func:`analysis.report._save`;
    returns name -> (base64 PNG, paths written), or None for a plot without data."""
    from analysis.report import _save

    plots_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, PlotResult | None] = {}
    for plot in plots:
        fig = plot.draw(*plot.args)
        out[plot.name] = None if fig is None else _save(fig, plots_dir, plot.name)
    return out


class PlotDrawer:
    """The process drawing the report's plots (see the module docstring). Use :func:`start_plots`; call
    :meth:`results` once (it waits for the drawing), or :meth:`stop` to abandon it."""

    def __init__(self, process: Any, connection: Any) -> None:
        self._process = process
        self._connection = connection
        self._results: dict[str, PlotResult | None] | None = None

    def results(self) -> dict[str, PlotResult | None]:
        """name -> drawn plot (see :func:`draw_planned`), waiting for the drawing process to finish; an empty dict
        when it failed or died (the report then draws every plot itself)."""
        if self._results is None:
            results: dict[str, PlotResult | None] = {}
            try:
                kind, payload = self._connection.recv()
                if kind == "ok":
                    results = payload
            except (EOFError, OSError):
                pass  # the process died (killed, out of memory): the report draws the plots itself
            self._results = results
            self.stop()  # the child has sent everything: it is joined, not terminated
        return self._results

    def stop(self) -> None:
        """End the drawing process (terminated when still running) and close the pipe; safe to call again."""
        if self._process is None:
            return
        if self._process.is_alive() and self._results is None:
            self._process.terminate()
        self._process.join()
        self._connection.close()
        self._process = None

    def __del__(self) -> None:
        # An analysis that raised before the report leaves its drawer behind: the child, blocked on sending its
        # results, is ended here rather than left waiting for the life of a long-running caller.
        self.stop()


def _draw_in_child(connection: Any, trials: pd.DataFrame, blocks: pd.DataFrame | None, plots_dir: Path) -> None:
    try:
        connection.send(("ok", draw_planned(planned_plots(trials, blocks), plots_dir)))
    except BaseException:  # noqa: BLE001 - reported to the parent, which then draws the plots itself
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def start_plots(trials: pd.DataFrame, blocks: pd.DataFrame | None, out_dir: Path) -> PlotDrawer | None:
    """Fork a process drawing the report's plots of ``trials`` and ``blocks`` (the tables of
    :class:`analysis.run.AnalysisResult`) into ``out_dir/plots``; None when forking is not safe here
    (:func:`analysis.reading.can_fork`) or the machine has a single CPU (nothing would run alongside)."""
    from analysis.reading import can_fork

    if not can_fork() or (os.cpu_count() or 1) < 2:
        return None
    context = get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_draw_in_child, args=(sender, trials, blocks, Path(out_dir) / "plots"),
                              name="report-plots", daemon=True)
    process.start()
    sender.close()  # the child holds its own copy: recv() sees EOF when the child dies
    return PlotDrawer(process, receiver)
