"""Benchmarks: each prints its figures next to a baseline measured in the same run, on the same machine.

``workbench bench [NAME ...]`` or ``make bench``. Figures are medians over repeats; nothing here asserts a time
(speed goals are read from these tables, not enforced by unit tests).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.bench_analysis import bench_analysis
from benchmarks.bench_console import bench_console
from benchmarks.bench_ingest import bench_ingest


def _median_ms(fn: Callable[[], None], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def bench_event_append() -> list[tuple[str, float, str]]:
    """Cost of one durable event (FileEventLog.append: validate, JSON, write, flush, fsync) against the baseline of
    writing the same line without fsync. Rows: (label, median ms per event, note)."""
    from workbench.domain import events as ev
    from workbench.store.eventlog import FileEventLog

    payload = ev.CallClosed("fire", "spoed", "Kerkstraat 12", ["location", "trapped"], True, "fire_smoke_size", "")
    n = 200
    with tempfile.TemporaryDirectory() as tmp:
        log = FileEventLog(Path(tmp) / "events.jsonl", "bench")
        durable = _median_ms(lambda: log.append("console", payload, call_id="c-1"), n)
        log.close()
        line = log.events()[-1].to_json_line().encode() + b"\n"
        with open(Path(tmp) / "plain.jsonl", "ab") as fh:
            def plain() -> None:
                fh.write(line)
                fh.flush()
            baseline = _median_ms(plain, n)
    return [
        ("baseline: write+flush one line, no fsync", baseline, f"median of {n}"),
        ("FileEventLog.append (validate+fsync)", durable, f"{durable / max(baseline, 1e-9):.0f}x baseline"),
    ]


def bench_jpeg_encode() -> list[tuple[str, float, str]]:
    """Cost of encoding one 640x480 live frame to JPEG for the viewer stream (OpenCV, quality 80) against the
    baseline of converting the same frame's colour (the least work any consumer does)."""
    import cv2

    rng = np.random.default_rng(1)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), (9, 9), 3)
    baseline = _median_ms(lambda: cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), 100)
    encode = _median_ms(lambda: cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80]), 100)
    return [
        ("baseline: BGR->RGB conversion 640x480", baseline, "median of 100"),
        ("JPEG encode 640x480 q80", encode, f"{encode / max(baseline, 1e-9):.1f}x baseline; at 15 fps = {encode * 15 / 10:.1f}% of a core"),
    ]


BENCHMARKS: dict[str, Callable[[], list[tuple[str, float, str]]]] = {
    "event_append": bench_event_append,
    "jpeg_encode": bench_jpeg_encode,
    "analysis": bench_analysis,
    "console": bench_console,
    "ingest": bench_ingest,
}


def main(names: list[str] | None = None) -> int:
    """Run the named benchmarks (all when empty) and print a table per benchmark; returns 0, or 2 for an unknown name."""
    chosen = names or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in chosen:
        print(f"\n## {name}\n| case | median ms | note |\n|---|---:|---|")
        for label, ms, note in BENCHMARKS[name]():
            print(f"| {label} | {ms:.3f} | {note} |")
    return 0
