"""The analysis at scale: ``workbench analyze`` on 100 synthetic participants x 60 calls, from load to report.

Compared in the same run with the least any analysis must do: ``pandas.read_json(lines=True)`` of the same
``events.jsonl`` files, concatenated. Each case runs in a fresh subprocess (same interpreter), so its time and peak
memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which includes the interpreter and the imports) are its own.
The analyze run also reports its stages (from its progress lines: time, share and peak RSS at the end of each).
A third subprocess runs ``analyze`` under ``cProfile`` in one process (``workers=1``: no reading or model
workers, plots and tables drawn and written in order) and reports where the time goes (cumulative seconds of the
main steps; profiling inflates the total, the shares are what count). The 1-minute load average before and after
each case is printed too: the machine may be shared.

The data set is generated once with :func:`workbench.simulate.simulate` (``experiments/effects/scenario.toml``,
three blocks x ``calls_per_block`` calls, ``experiments/effects/example.toml``) and cached under
``<tmp>/workbench-bench-analysis/<key>/`` where the key hashes the seed, the sizes, the scenario and effects bytes
and the simulator's source, so a change to any of them regenerates it. ``python -m benchmarks.bench_analysis
[--participants N] [--calls-per-block M] [--seed K]`` runs it alone. With ``WORKBENCH_BENCH_KEEP_OUT=DIR`` in the
environment the unprofiled run writes its outputs to ``DIR`` (kept), so two versions' tables can be compared byte
for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "experiments" / "effects" / "scenario.toml"
EFFECTS = REPO / "experiments" / "effects" / "example.toml"
COMPLETE = ".complete"
"""Marker file written after the whole data set was generated (an interrupted generation is redone)."""

_ANALYZE = """
import json, os, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from analysis.run import analyze
t_import = time.perf_counter() - t0
marks = []

def mark(line):
    # Stage boundaries from analyze's own progress lines: time and peak RSS so far (children: the reading workers).
    marks.append((line, time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))

t0 = time.perf_counter()
c0 = time.process_time()
result = analyze(Path(sys.argv[1]), Path(sys.argv[2]), progress=mark)
elapsed = time.perf_counter() - t0
mark("end")
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"s": elapsed, "cpu_s": time.process_time() - c0, "import_s": t_import, "t0": t0,
                  "children_cpu_s": children.ru_utime + children.ru_stime,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "children_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "marks": marks, "rows": len(result.trials), "sessions": result.sessions_loaded,
                  "problems": len(result.sessions_with_problems)}))
"""

STAGES: tuple[tuple[str, str], ...] = (
    ("reading sessions (load, validate, replay, rows of every table; the events table)", "statistics:"),
    ("statistics (summary.csv: paired t, Wilcoxon, MixedLM, SDT, kappa) and the other tables; meanwhile forked "
     "processes draw the plots and write the events table", "writing tables"),
    ("writing tables (CSV + Parquet; waits for the events table's files)", "report"),
    ("report (waits for the plots drawn ahead; report.html)", "end"),
)
"""Stages of the unprofiled run: label and the progress line that ends it (each starts where the previous ended)."""


def stage_rows(full: dict) -> list[tuple[str, float, str]]:
    """(label, ms, note) per :data:`STAGES` from the marks of the unprofiled analyze run: share of the whole run
    and the peak RSS reached by its end."""
    rows = []
    start = full["t0"]
    total = full["s"]
    marks = full["marks"]
    for label, until in STAGES:
        end = next(((t, rss, child) for line, t, rss, child in marks if line.startswith(until) and t >= start), None)
        if end is None:
            continue
        ms = (end[0] - start) * 1000
        rows.append((f"  stage: {label}", ms, f"{100 * (end[0] - start) / total:.0f}% of the run; peak RSS "
                     f"{end[1] / 1024:.0f} MB by its end (worker processes {end[2] / 1024:.0f} MB)"))
        start = end[0]
    return rows


_READ_JSON = """
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
import pandas as pd
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
files = sorted(Path(sys.argv[1]).glob("*/events.jsonl"))
frame = pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
elapsed = time.perf_counter() - t0
print(json.dumps({"s": elapsed, "import_s": t_import, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows": len(frame), "files": len(files)}))
"""

_PROFILE = """
import cProfile, json, pstats, sys
from pathlib import Path
from analysis.run import analyze
profile = cProfile.Profile()
profile.enable()
analyze(Path(sys.argv[1]), Path(sys.argv[2]), workers=1)  # one process, so cProfile sees the reading too
profile.disable()
stats = pstats.Stats(profile)
total = sum(v[2] for v in stats.stats.values())  # total internal time
wanted = json.loads(sys.argv[3])
found = {}
for (filename, line, name), (cc, nc, tt, ct, callers) in stats.stats.items():
    for label, (file_part, func) in wanted.items():
        if name == func and filename.endswith(file_part):
            found[label] = max(found.get(label, 0.0), ct)
top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:8]
print(json.dumps({"total_s": total, "steps": found,
                  "top_self": [[f"{k[0].split('/')[-1]}:{k[2]}", v[2]] for k, v in top]}))
"""

PROFILE_STEPS: dict[str, tuple[str, str]] = {
    "load_session (all of loading)": ("analysis/load.py", "load_session"),
    "read_events (JSON + validation)": ("workbench/store/eventlog.py", "read_events"),
    "event_from_dict (validation)": ("workbench/domain/events.py", "event_from_dict"),
    "replay": ("workbench/domain/session_state.py", "replay"),
    "trial_rows": ("analysis/trials.py", "trial_rows"),
    "drt_rows (DRT scoring and placing)": ("analysis/instruments.py", "drt_rows"),
    "score_drt_stimuli": ("workbench/domain/instruments.py", "score_drt_stimuli"),
    "_with_drt (DRT columns into trials)": ("analysis/run.py", "_with_drt"),
    "EventTable.add_session (events table columns)": ("analysis/tables.py", "add_session"),
    "EventTable.frame (events table)": ("analysis/tables.py", "frame"),
    "read_sessions (all of reading)": ("analysis/reading.py", "read_sessions"),
    "build_summary (statistics)": ("analysis/summary.py", "build_summary"),
    "mixed_model (statsmodels)": ("analysis/stats.py", "mixed_model"),
    "MixedLM.fit (statsmodels, all fits)": ("statsmodels/regression/mixed_linear_model.py", "fit"),
    "MixedLM.loglike (Powell's evaluations)": ("statsmodels/regression/mixed_linear_model.py", "loglike"),
    "MixedLM.hessian (standard errors)": ("statsmodels/regression/mixed_linear_model.py", "hessian"),
    "_write (CSV and Parquet files)": ("analysis/run.py", "_write"),
    "write_table_csv (CSV)": ("analysis/csv_fast.py", "write_table_csv"),
    "report": ("analysis/report.py", "write_report"),
}
"""Steps reported from the profile: label -> (file suffix, function name); steps not found are left out."""


def dataset_key(participants: int, calls_per_block: int, seed: int) -> str:
    """Cache key of a data set: SHA-256 (16 hex) of the sizes, seed, scenario, effects and simulator source."""
    from workbench.simulate import effects as effects_module
    from workbench.simulate import simulator as simulator_module

    h = hashlib.sha256(f"{participants}/{calls_per_block}/{seed}".encode())
    for path in (SCENARIO, EFFECTS, Path(simulator_module.__file__), Path(effects_module.__file__)):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def ensure_dataset(participants: int, calls_per_block: int, seed: int, cache_root: Path | None = None) -> tuple[Path, float]:
    """The cached recordings folder of the data set (generated when missing); returns (folder, seconds spent
    generating now, 0 when cached)."""
    from workbench.simulate import load_effects, simulate
    from workbench.store.scenarios import load_scenario

    root = (cache_root or Path(tempfile.gettempdir()) / "workbench-bench-analysis") / dataset_key(
        participants, calls_per_block, seed
    )
    recordings = root / "recordings"
    if (root / COMPLETE).is_file():
        return recordings, 0.0
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    simulate(load_scenario(SCENARIO), SCENARIO.read_bytes(), load_effects(EFFECTS), participants=participants,
             seed=seed, out=recordings, calls_per_block=calls_per_block)
    (root / COMPLETE).write_text("ok\n")
    return recordings, time.perf_counter() - t0


def _child(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_analysis(participants: int = 100, calls_per_block: int = 20, seed: int = 1,
                   profile: bool = True) -> list[tuple[str, float, str]]:
    """Rows (label, ms, note): the read_json baseline, ``analyze`` load-to-report, and (with ``profile``) where the
    time goes. One run each (a run takes tens of seconds; the figures are not medians)."""
    recordings, generated_s = ensure_dataset(participants, calls_per_block, seed)
    files = sorted(recordings.glob("*/events.jsonl"))
    n_events = sum(sum(1 for _ in open(f, "rb")) for f in files)
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        base = _child(_READ_JSON, str(recordings))
        loads.append(os.getloadavg()[0])
        out = os.environ.get("WORKBENCH_BENCH_KEEP_OUT") or str(Path(tmp) / "out")
        full = _child(_ANALYZE, str(recordings), out)
        loads.append(os.getloadavg()[0])
        prof = _child(_PROFILE, str(recordings), str(Path(tmp) / "prof"), json.dumps(PROFILE_STEPS)) if profile else None
        loads.append(os.getloadavg()[0])
    gen = f"generated in {generated_s:.0f} s" if generated_s else "cached"
    rows = [
        ("data set", 0.0, f"{participants} participants x {3 * calls_per_block} calls, {n_events} events, "
                          f"{size_mb:.0f} MB of events.jsonl in {len(files)} files ({gen})"),
        ("baseline: pandas.read_json(lines=True) + concat", base["s"] * 1000,
         f"peak RSS {base['rss_kb'] / 1024:.0f} MB; {base['rows']} rows"),
        ("workbench analyze (load -> report)", full["s"] * 1000,
         f"peak RSS {full['rss_kb'] / 1024:.0f} MB; {full['rows']} trial rows, {full['sessions']} sessions, "
         f"{full['problems']} with problems; {full['s'] / max(base['s'], 1e-9):.1f}x baseline; "
         f"CPU {full['cpu_s']:.0f} s in the main process + {full['children_cpu_s']:.0f} s in the worker processes "
         f"(reading, models; their peak RSS {full['children_rss_kb'] / 1024:.0f} MB); "
         f"target < 30 s: {'met' if full['s'] < 30 else 'NOT met'}"),
        *stage_rows(full),
        ("load average (1 min) before / after each case", 0.0,
         " / ".join(f"{v:.1f}" for v in loads) + f" on {os.cpu_count()} CPUs (other work on the machine slows "
         "every case alike)"),
    ]
    if prof is not None:
        total = prof["total_s"]
        for label, seconds in prof["steps"].items():
            rows.append((f"  profile: {label}", seconds * 1000, f"{100 * seconds / total:.0f}% of the profiled run"))
        top = ", ".join(f"{name} {s:.1f}s" for name, s in prof["top_self"][:5])
        rows.append(("  profile: total (cProfile overhead included)", total * 1000, f"top self time: {top}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--calls-per-block", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args(argv)
    print("| case | ms | note |\n|---|---:|---|")
    for label, ms, note in bench_analysis(args.participants, args.calls_per_block, args.seed, not args.no_profile):
        print(f"| {label} | {ms:.0f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
