"""The console trace's summary (``benchmarks.console_trace``): one line per interaction from the server's and the
page's records, on one clock. The trace itself runs a browser and is a benchmark (``python -m
benchmarks.console_trace``)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.console_trace import HOOKS, summary


def test_summary_puts_server_and_page_records_in_the_clicks_window(tmp_path: Path) -> None:
    t0 = 1_000_000.0
    records = [
        {"k": "back", "t": t0 - 500, "auto": True},  # before the click: not this click's
        {"k": "back", "t": t0 + 4, "auto": False},
        {"k": "gc", "t": t0 + 20, "ms": 70.0},
        {"k": "send", "t": t0 + 90},
        {"k": "send", "t": t0 + 130},
        {"k": "send", "t": t0 + 900},  # after the result was visible
    ]
    out = tmp_path / "trace.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    clicks = [{"phase": "loaded", "name": "answer", "ms": 300.0, "wall": t0,
               "ws": [[t0 + 100, 200], [t0 + 150, 90]], "longtasks": [[t0 + 160, 120.0]]}]
    header, line = summary(out, clicks)
    assert header.split()[:3] == ["phase", "interaction", "visible"]
    assert line.split() == ["loaded", "answer", "300", "4", "130", "150", "70", "+160:120"]


def test_the_hooks_are_beside_the_trace() -> None:
    assert (HOOKS / "sitecustomize.py").is_file()
