"""The report's plots drawn ahead in a forked process (analysis.report_plots, issue 9) give the same report.html and
the same PNG files as plots drawn by the report itself; a drawing process that dies costs nothing but time."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import analysis.report as report_module
from analysis.reading import can_fork
from analysis.report import write_report
from analysis.report_plots import planned_plots, start_plots
from analysis.run import analyze
from workbench.cli import main

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not can_fork() or (os.cpu_count() or 1) < 2,
                                reason="plots are drawn ahead only where a process may be forked, with 2+ CPUs")


@pytest.fixture(scope="module")
def inline(tmp_path_factory) -> tuple[Path, object]:
    """An analysis of 4 simulated participants with every plot drawn by the report itself (workers=1)."""
    root = tmp_path_factory.mktemp("plots")
    recordings = root / "rec"
    assert main(["simulate", "--participants", "4", "--scenario", str(REPO / "experiments/effects/scenario.toml"),
                 "--effects", str(REPO / "experiments/effects/example.toml"), "--seed", "5",
                 "--out", str(recordings)]) == 0
    # NASA-TLX sheet (every subscale equal), so the report has its block plot too.
    lines = ["Participant;Blok;Mentaal;Fysiek;Tijdsdruk;Prestatie;Moeite;Frustratie"]
    for p in range(1, 5):
        for block, value in (("audio-block", 40), ("photo-block", 50 + p), ("video-block", 45 - p)):
            lines.append(f"P{p:03d};{block};" + ";".join([f"{value},0"] * 6))
    tlx = root / "tlx.csv"
    tlx.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    result = analyze(recordings, root / "inline", ratings=[tlx], workers=1)
    return root / "inline", result


def _pngs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "plots").glob("*.png"))}


def test_plots_drawn_ahead_give_the_same_report_and_pngs(inline, tmp_path, monkeypatch) -> None:
    out, result = inline
    drawer = start_plots(result.trials, result.blocks, tmp_path)
    assert drawer is not None
    drawn = drawer.results()
    planned = [p.name for p in planned_plots(result.trials, result.blocks)]
    assert set(drawn) == set(planned)
    assert {"rsme_modality", "handling_time_s_congruence", "raw_tlx_modality"} <= set(drawn)

    def no_inline_drawing(*args, **kwargs):
        raise AssertionError("a plot was drawn by the report although it was drawn ahead")

    monkeypatch.setattr(report_module, "_save", no_inline_drawing)
    files = write_report(result, tmp_path, drawn=drawn)
    assert (tmp_path / "report.html").read_bytes() == (out / "report.html").read_bytes()
    assert _pngs(tmp_path) == _pngs(out) and len(_pngs(out)) == sum(v is not None for v in drawn.values())
    assert {p.name for p in files if p.suffix == ".svg"} == {f"{n}.svg" for n, v in drawn.items() if v is not None}


def test_a_drawing_process_that_dies_leaves_the_report_to_draw_the_plots(inline, tmp_path) -> None:
    out, result = inline
    drawer = start_plots(result.trials, result.blocks, tmp_path)
    assert drawer is not None
    os.kill(drawer._process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while drawer._process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert drawer.results() == {}
    write_report(result, tmp_path, drawn=drawer.results())
    assert (tmp_path / "report.html").read_bytes() == (out / "report.html").read_bytes()
    assert _pngs(tmp_path) == _pngs(out)


def test_analyze_with_plots_drawn_ahead_writes_what_one_process_writes(inline, tmp_path) -> None:
    out, result = inline
    recordings = out.parent / "rec"
    # workers=None: the drawer runs beside the statistics
    ahead = analyze(recordings, tmp_path / "ahead", ratings=[out.parent / "tlx.csv"])
    assert (tmp_path / "ahead" / "report.html").read_bytes() == (out / "report.html").read_bytes()
    assert _pngs(tmp_path / "ahead") == _pngs(out)
    for name in ("trials.csv", "summary.csv", "events.csv", "codebook.md"):
        assert (tmp_path / "ahead" / name).read_bytes() == (out / name).read_bytes(), name
    assert [p.name for p in ahead.files] == [p.name for p in result.files]
