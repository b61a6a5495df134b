"""Where a console click's time goes (issue 6): ``python -m benchmarks.console_trace [--rounds N] [--out F]``.

Works calls through the console like ``workbench bench console`` does (:func:`benchmarks.bench_console.work_calls`:
answer, open photo, urgency, item, close; the Answer also to the whole call screen), without streams
(``baseline``) and with 3 live video streams and the DRT (``loaded``), while recording on one clock (ms since the
epoch, one machine):

- in the console's Streamlit process (:mod:`benchmarks.console_trace_hooks`): when the click's rerun arrived, each
  script and fragment run (thread CPU and wall ms), each message sent to the browser, each ingest request, each
  garbage collection over 2 ms;
- in the page: each websocket frame from Streamlit (a wrapper installed before the page's scripts run) and each
  long task (``PerformanceObserver``, main thread busy > 50 ms).

Prints one line per interaction: click to visible, click to the rerun's arrival at the server, to the server's last
message, to the browser's last frame, and the long tasks (start after the click : duration, ms); writes every
record to ``--out`` (JSON lines, with the clicks in ``<out>.clicks.json``). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

HOOKS = Path(__file__).with_name("console_trace_hooks")

_PAGE_JS = """
(() => {
  window.__wbTrace = {ws: [], longtasks: []};
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__wbTrace.longtasks.push([performance.timeOrigin + e.startTime, e.duration]);
      }
    }).observe({type: "longtask", buffered: true});
  } catch (e) {}
  const Native = window.WebSocket;
  function Traced(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    if (String(url).includes("_stcore/stream")) {
      ws.addEventListener("message", (e) => window.__wbTrace.ws.push(
        [performance.timeOrigin + performance.now(), e.data.byteLength || e.data.size || 0]));
    }
    return ws;
  }
  Traced.prototype = Native.prototype;
  Object.assign(Traced, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Traced;
})();
"""


def trace(out: Path, rounds: int = 3, streams: int = 3) -> list[dict[str, Any]]:
    """Run both phases; return one dict per interaction (``phase``, ``name``, ``ms`` click to visible, ``wall``
    click time in ms since the epoch, ``ws`` and ``longtasks`` of the page in that window). Raises
    ``AssertionError`` when the page does not show a result within 20 s, ``FileNotFoundError`` outside a source
    checkout (the hooks folder is not a package)."""
    from benchmarks.bench_console import work_calls
    from benchmarks.console_rig import ConsoleRig, make_moving_video, make_photo

    if not (HOOKS / "sitecustomize.py").is_file():
        raise FileNotFoundError(f"{HOOKS}/sitecustomize.py is missing: run the trace from a source checkout")
    out.unlink(missing_ok=True)
    saved = {k: os.environ.get(k) for k in ("CONSOLE_TRACE_FILE", "PYTHONPATH")}
    # launch.start_console passes the environment on but the WORKBENCH_* variables: the file's name is not one.
    os.environ["CONSOLE_TRACE_FILE"] = str(out)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HOOKS), saved["PYTHONPATH"]) if p)
    clicks: list[dict[str, Any]] = []
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            video = make_moving_video(work / "moving.mp4", seconds=60.0)
            photo = make_photo(work / "photo.jpg")
            rig = ConsoleRig(work, chromium)
            try:
                client = rig.start_ingest()
                rig.start_console(None, station="trace", drt_kind="tone")
                for phase in ("baseline", "loaded"):
                    loaded = phase == "loaded"
                    sid = client.create_session(f"TRACE-{phase}")
                    page = rig.open_page(1400, 1000, goto=False)
                    page.add_init_script(_PAGE_JS)
                    page.goto(f"{rig.console_url}/?session={sid}" + ("&drt=1" if loaded else ""))
                    page.get_by_text("No calls in the queue.").wait_for(timeout=30_000)
                    page.mouse.click(700, 500)
                    mine = [{"phase": phase, "name": name, "ms": ms, "wall": wall}
                            for _cid, name, ms, wall, _event in work_calls(
                                rig, page, client, sid, phase, rounds=rounds, streams=streams if loaded else 0,
                                video=video, photo=photo)]
                    page_trace = page.evaluate("window.__wbTrace")
                    for c in mine:
                        c["ws"] = [w for w in page_trace["ws"] if c["wall"] - 50 <= w[0] <= c["wall"] + c["ms"] + 50]
                        c["longtasks"] = [w for w in page_trace["longtasks"]
                                          if c["wall"] - 300 <= w[0] <= c["wall"] + c["ms"] + 50]
                    clicks += mine
                    page.context.close()
                    rig.page = None
            finally:
                rig.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    Path(f"{out}.clicks.json").write_text(json.dumps(clicks), encoding="utf-8")
    return clicks


def summary(out: Path, clicks: list[dict[str, Any]]) -> list[str]:
    """One line per interaction from the records in ``out`` (see the module's docstring)."""
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = [f"{'phase':8s} {'interaction':20s} {'visible':>7s} {'at srv':>6s} {'srv last':>8s} {'br last':>7s} "
             f"{'gc ms':>5s}  long tasks (start:duration)"]
    for c in clicks:
        t0, t1 = c["wall"], c["wall"] + c["ms"]
        within = [r for r in records if t0 - 5 <= r["t"] <= t1]
        arrived = next((r["t"] - t0 for r in within if r["k"] == "back" and not r.get("auto")), float("nan"))
        sent = max((r["t"] - t0 for r in within if r["k"] == "send"), default=float("nan"))
        frames = max((w[0] - t0 for w in c["ws"] if w[0] <= t1), default=float("nan"))
        gc_ms = sum(r["ms"] for r in within if r["k"] == "gc")
        tasks = " ".join(f"{w[0] - t0:+.0f}:{w[1]:.0f}" for w in c["longtasks"])
        lines.append(f"{c['phase']:8s} {c['name']:20s} {c['ms']:7.0f} {arrived:6.0f} {sent:8.0f} {frames:7.0f} "
                     f"{gc_ms:5.0f}  {tasks}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="calls per phase (default 3)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "console-trace.jsonl",
                        help="where the records go (JSON lines; default %(default)s)")
    args = parser.parse_args()
    clicks = trace(args.out, rounds=args.rounds)
    print("\n".join(summary(args.out, clicks)))
    print(f"records: {args.out} (clicks: {args.out}.clicks.json); load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
