"""Dispatcher console benchmark (issue 6): a new call on the dispatcher's screen within 1 s of its arrival, and the
DRT's onset-to-log jitter, in a real headless Chromium against the real ingest and console.

- *Call on screen*: from just before ``POST /api/calls`` (the call's arrival) until its caller label is in the page
  (Playwright waits on the DOM); baseline: the ``POST /api/calls`` request alone.
- *DRT jitter*: for every ``drt.stimulus`` logged meanwhile, ``onset_ms - scheduled_onset_ms`` (the first animation
  frame that draws the stimulus minus the time it was due, both in the browser on the ingest's clock); and the
  logging lag ``t_mono_ns / 1e6 - onset_ms`` (browser onset to the event in the log).

Audio-only calls (no WebRTC): the figure is the console's path (poll, rerun, draw), not the media's. Needs Debian's
Chromium and Playwright; without them it returns one row saying so.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_console(calls: int = 12, spacing_s: float = 2.0) -> list[tuple[str, float, str]]:
    """Rows ``(label, value in ms, note)``: arrival-to-screen latency of ``calls`` calls ``spacing_s`` apart, with
    the POST baseline, and the DRT jitter and logging lag over the same time."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [("skipped: playwright is not installed", 0.0, "")]
    if not os.path.exists(chromium):
        return [("skipped: chromium is not installed", 0.0, "")]
    from workbench.console.ingest_client import IngestClient
    from workbench.console.launch import start_console, wait_until_ready
    from workbench.ingest.server import start_ingest
    from workbench.ingest.settings import IngestSettings

    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = IngestSettings(host="127.0.0.1", port=_free_port(), recordings=Path(tmp), ice_mode="loopback")
        ingest = asyncio.run_coroutine_threadsafe(start_ingest(settings), loop).result(30)
        client = IngestClient(ingest.url)
        sid = client.create_session("BENCH")
        port = _free_port()
        console = start_console(ingest.url, port=port, session_id=sid, drt=True)
        latencies: list[float] = []
        posts: list[float] = []
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", 60)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=args)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})

                def only_loopback(route) -> None:  # nothing may leave the machine
                    host = urlsplit(route.request.url).hostname
                    (route.continue_ if host == "127.0.0.1" or route.request.url.startswith(("data:", "blob:"))
                     else route.abort)()

                page.route("**/*", only_loopback)
                page.goto(f"http://127.0.0.1:{port}")
                page.get_by_text("No calls in the queue.").wait_for(timeout=30_000)
                page.wait_for_timeout(3000)
                for i in range(calls):
                    label = f"bench-caller-{i:03d}"
                    t0 = time.perf_counter()
                    client.create_call(sid, modality="audio", caller_label=label)
                    posts.append((time.perf_counter() - t0) * 1000)
                    page.get_by_text(label).first.wait_for(timeout=10_000)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    page.wait_for_timeout(max(0.0, spacing_s * 1000 - latencies[-1]))
                browser.close()
        finally:
            console.terminate()
            console.wait(15)
            stimuli = [e for e in client.events(sid) if e.type == "drt.stimulus"]
            asyncio.run_coroutine_threadsafe(ingest.stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
    jitter = [e.data.onset_ms - e.data.scheduled_onset_ms for e in stimuli]
    lag = [e.t_mono_ns / 1e6 - e.data.onset_ms for e in stimuli]
    within = sum(1 for v in latencies if v <= 1000)
    rows = [
        ("baseline: POST /api/calls", statistics.median(posts), f"median of {len(posts)}"),
        ("new call on screen (median)", statistics.median(latencies), f"{within}/{len(latencies)} within 1 s"),
        ("new call on screen (max)", max(latencies), "the queue polls the log every 0.5 s"),
    ]
    if jitter:
        rows += [
            ("DRT onset jitter, median |onset - scheduled|", statistics.median(abs(j) for j in jitter),
             f"{len(jitter)} visual stimuli; signed median {statistics.median(jitter):+.1f} ms"),
            ("DRT onset jitter, max |onset - scheduled|", max(abs(j) for j in jitter), "first frame drawing the bar"),
            ("DRT onset to log (median)", statistics.median(lag), "browser POST to the fsynced event"),
        ]
    else:
        rows.append(("DRT: no stimulus logged", 0.0, "the run was shorter than one interval?"))
    return rows
