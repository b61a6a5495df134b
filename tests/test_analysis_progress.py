"""Progress of `workbench analyze`: a bar redrawn in place on a terminal, plain lines in a log."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from analysis.progress import ProgressPrinter
from workbench.simulate import load_effects, simulate
from workbench.store.scenarios import load_scenario

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "experiments" / "effects" / "scenario.toml"
STEPS = ["[1/4] s1", "[2/4] s2", "[3/4] s3", "[4/4] s4", "statistics: rsme", "writing tables", "report"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_in_a_log_bar_on_a_terminal() -> None:
    log = io.StringIO()
    printer = ProgressPrinter(log)
    for step in STEPS:
        printer(step)
    assert log.getvalue() == "".join(f"analyze {s}\n" for s in STEPS)
    tty = Terminal()
    printer = ProgressPrinter(tty, width=8)
    for step in STEPS:
        printer(step)
    text = tty.getvalue()
    # Each session redraws the bar at the line start; 2 of 4 sessions fill 4 of 8 marks; the bar line ends before
    # the next step.
    assert "\ranalyze [##......] 1/4 sessions, " in text and "\ranalyze [####....] 2/4 sessions, " in text
    assert "\ranalyze [########] 4/4 sessions, 0 s\nanalyze statistics: rsme\nanalyze writing tables\n" in text
    assert text.endswith("analyze report\n") and text.count("\n") == 4


def test_workbench_analyze_draws_the_bar_on_a_real_terminal(tmp_path: Path) -> None:
    simulate(load_scenario(SCENARIO), SCENARIO.read_bytes(), load_effects(REPO / "experiments/effects/example.toml"),
             participants=2, seed=2, out=tmp_path / "rec", calls_per_block=1, store_photos=False)
    master, slave = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "workbench.cli", "analyze", str(tmp_path / "rec"), "--out",
                               str(tmp_path / "out")], stderr=slave, stdout=subprocess.PIPE, timeout=600, check=False,
                              cwd=REPO)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the terminal's other side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    assert proc.returncode == 0, proc.stdout
    err = b"".join(chunks).decode()
    assert "analyze [###############...............] 1/2 sessions" in err
    assert "analyze [##############################] 2/2 sessions" in err and "analyze report" in err
