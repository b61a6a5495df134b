"""Closing a call releases everything (issue 4): 50 connect/stream/hang-up cycles, recording on, grow the RSS of
the ingest (a subprocess, ``workbench serve --no-console``) and its recorder process together by under 50 MB."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import child_pids, free_port, poll
from tests.live_call import Caller
from workbench.ice import enable_loopback_ice

pytestmark = [pytest.mark.webrtc, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
CYCLES = 50
PARALLEL = 2
"""Callers at a time (keeps the test near 30-60 s on two shared cores)."""


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB (``VmRSS`` in ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def rss_with_children_mb(pid: int) -> tuple[float, float]:
    """RSS of a process and, summed, of its children (the ingest's recorder process and its helpers), MB."""
    return rss_mb(pid), sum(rss_mb(c) for c in child_pids(pid))


def test_fifty_calls_release_their_memory(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--no-console", "--port", str(port),
         "--recordings", str(tmp_path / "rec")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        before, after, ended = asyncio.run(_cycles(proc, f"http://127.0.0.1:{port}"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"ingest RSS: {before[0]:.1f} MB after 2 warm-up calls, {after[0]:.1f} MB after {CYCLES} more; "
          f"its recorder process: {before[1]:.1f} MB, then {after[1]:.1f} MB")
    assert ended == CYCLES + 2
    assert before[1] > 20, "no recorder process next to the ingest"
    grown = sum(after) - sum(before)
    assert grown < 50, f"RSS of the ingest and its recorder process grew by {grown:.1f} MB over {CYCLES} calls"


async def _cycles(
    proc: subprocess.Popen[bytes], url: str,
) -> tuple[tuple[float, float], tuple[float, float], int]:
    enable_loopback_ice()  # the callers' side, in this process
    api = aiohttp.ClientSession()
    ended = 0
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with api.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the ingest did not start"
            await asyncio.sleep(0.2)

        async def one_call() -> None:
            nonlocal ended
            async with api.post(url + "/api/calls", json={}) as resp:
                call = await resp.json()

            async def status() -> dict[str, Any]:
                async with api.get(f"{url}/api/calls/{call['call_id']}") as resp:
                    return await resp.json()

            caller = Caller(call["caller_url"])
            try:
                await caller.open()
                await caller.connect()
                await poll(status, lambda s: s["frames_received"] >= 5, 20, "frames")
                async with caller.http.post(call["caller_url"] + "/hangup") as resp:
                    assert resp.status == 200
            finally:
                await caller.close()
            st = await poll(status, lambda s: s["state"] == "ended", 10, "the call to end")
            ended += st["state"] == "ended"

        await asyncio.gather(*(one_call() for _ in range(PARALLEL)))
        await asyncio.sleep(0.5)
        before = rss_with_children_mb(proc.pid)
        for _ in range(CYCLES // PARALLEL):
            await asyncio.gather(*(one_call() for _ in range(PARALLEL)))
        await asyncio.sleep(0.5)
        return before, rss_with_children_mb(proc.pid), ended
    finally:
        await api.close()
