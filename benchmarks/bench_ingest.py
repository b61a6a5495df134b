"""The ingest under load: N simultaneous 640x480@15 fps aiortc callers (video + a tone), one receiving process.

Receivers, each measured in its own fresh process, in the same run:

* ``bare``: a bare aiortc receiver that only decodes (answers offers, drains ``track.recv()``), the baseline;
* ``ingest``: ``workbench serve --no-console`` with recording off (decode, newest frame, snapshots, the viewer's
  JPEG stream), and ``ingest+rec`` with recording on (plus H.264/Opus re-encoding into Matroska segments).

Callers run in separate processes (``min(N, 4)`` processes, the N callers spread over them), so their VP8 encoding
is not counted against the receiver. Each frame carries its capture time (wall clock, ms) as 48 black/white blocks
in its top 64 rows. Glass-to-glass latency is capture -> the frame decoded and read back: for ``bare`` from the
decoded frame itself; for the ingest from the viewer's WebSocket JPEG stream (one viewer per call, in the benchmark
process; JPEGs decoded at 1/8 scale), i.e. what a dispatcher's viewer would get. Figures per case over a
``measure_s`` window after a ``warmup_s`` warm-up: received fps per stream (mean), frames lost (sent by the callers
minus received, minus one per stream that aiortc never delivers, over the whole run), latency p50/p95, CPU of the
receiver process (% of one core, from ``/proc/<pid>/stat``) and its RSS (MB, ``VmRSS``).

``python -m benchmarks.bench_ingest [--n 1 4 8 16] [--measure-s 10]`` runs it alone; ``workbench bench ingest``
runs it through ``benchmarks/run.py``. Needs loopback ICE: run it under ``scripts/netns-run`` for a clean namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, FPS = 640, 480, 15
BITS = 48
BLOCK_W, BLOCK_H = 26, 32
"""Timestamp blocks: 2 rows of 24 blocks, 26 x 32 px each, in the frame's top-left 624 x 64 px."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the timestamp in the picture ---------------------------------------------------------------------------------


def draw_stamp(image: np.ndarray, value: int) -> None:
    """Write ``value`` (< 2**48) into ``image`` (BGR or grey, uint8) as black/white blocks, most significant first."""
    for i in range(BITS):
        row, col = divmod(i, BITS // 2)
        bit = (value >> (BITS - 1 - i)) & 1
        image[row * BLOCK_H : (row + 1) * BLOCK_H, col * BLOCK_W : (col + 1) * BLOCK_W] = 255 if bit else 0


def read_stamp(grey: np.ndarray, scale: int = 1) -> int:
    """Read back what :func:`draw_stamp` wrote, from a grey image decoded at ``1/scale`` size."""
    value = 0
    for i in range(BITS):
        row, col = divmod(i, BITS // 2)
        y = (row * BLOCK_H + BLOCK_H // 2) // scale
        x = (col * BLOCK_W + BLOCK_W // 2) // scale
        value = (value << 1) | int(grey[y, x] > 127)
    return value


def now_ms() -> int:
    return int(time.time() * 1000)


# --- callers (subprocess) -----------------------------------------------------------------------------------------


def _stamp_track_class() -> Any:
    import cv2
    from aiortc.mediastreams import MediaStreamTrack
    from av import VideoFrame

    class StampTrack(MediaStreamTrack):
        """640x480@15 video: a gradient, a moving square and the capture time in blocks (paced in real time)."""

        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.frames_sent = 0
            self._start: float | None = None
            gradient = np.linspace(40, 200, WIDTH, dtype=np.uint8)
            self._background = np.dstack([np.tile(gradient, (HEIGHT, 1))] * 3)

        async def recv(self) -> Any:
            n = self.frames_sent
            if self._start is None:
                self._start = time.monotonic()
            else:
                delay = self._start + n / FPS - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            image = self._background.copy()
            x = int((n * 12) % (WIDTH - 80))
            cv2.rectangle(image, (x, 200), (x + 80, 280), (0, 0, 255), -1)
            draw_stamp(image, now_ms())
            frame = VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = int(n * 90000 / FPS)
            frame.time_base = fractions.Fraction(1, 90000)
            self.frames_sent += 1
            return frame

    return StampTrack


async def _callers(urls: list[str], seconds: float) -> list[int]:
    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    sys.path.insert(0, str(REPO))
    from tests.helpers_media import ToneTrack
    from workbench.ice import enable_loopback_ice

    enable_loopback_ice()
    StampTrack = _stamp_track_class()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    pcs, tracks = [], []
    try:
        for url in urls:
            async with http.get(url) as resp:
                assert resp.status == 200, resp.status
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            track = StampTrack()
            pc.addTrack(track)
            pc.addTrack(ToneTrack())
            await pc.setLocalDescription(await pc.createOffer())
            async with http.post(url + "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as resp:
                answer = await resp.json()
            await pc.setRemoteDescription(RTCSessionDescription(**answer))
            pcs.append(pc)
            tracks.append(track)
        await asyncio.sleep(seconds)
        return [t.frames_sent for t in tracks]
    finally:
        for pc in pcs:
            await pc.close()
        await http.close()


# --- the bare receiver (subprocess) -------------------------------------------------------------------------------


async def _bare(port: int) -> None:
    from aiohttp import web
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    sys.path.insert(0, str(REPO))
    from workbench.ice import enable_loopback_ice

    enable_loopback_ice()
    state: dict[str, Any] = {"frames": {}, "latencies": [], "pcs": set()}

    async def drain(track: Any, key: str) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    state["frames"][key] = state["frames"].get(key, 0) + 1
                    grey = frame.to_ndarray(format="gray")
                    state["latencies"].append(now_ms() - read_stamp(grey))
                    if len(state["latencies"]) > 100_000:
                        state["latencies"] = state["latencies"][-50_000:]
        except MediaStreamError:
            pass

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        key = request.match_info["key"]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        state["pcs"].add(pc)
        pc.on("track", lambda track: asyncio.ensure_future(drain(track, key)))
        await pc.setRemoteDescription(RTCSessionDescription(**body))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response({"sdp": pc.localDescription.sdp, "type": "answer"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"frames": state["frames"], "latencies": state["latencies"]})

    async def reset(request: web.Request) -> web.Response:
        state["latencies"] = []
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/c/{key}", page)
    app.router.add_post("/c/{key}/offer", offer)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


# --- measuring ----------------------------------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_http(http: Any, url: str, proc: subprocess.Popen[Any]) -> None:
    import aiohttp

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}")
        try:
            async with http.get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def run_case(kind: str, n: int, warmup_s: float, measure_s: float) -> dict[str, Any]:
    """One receiver process (``bare``, ``ingest`` or ``ingest+rec``) with ``n`` callers; returns the figures."""
    import aiohttp
    import cv2

    port = _free_port()
    tmp = tempfile.TemporaryDirectory(prefix="bench-ingest-")
    if kind == "bare":
        cmd = [sys.executable, "-m", "benchmarks.bench_ingest", "--bare", str(port)]
    else:
        cmd = [sys.executable, "-m", "workbench.cli", "serve", "--no-console", "--port", str(port),
               "--recordings", tmp.name]
    log_path = Path(tmp.name) / "receiver.log"
    log_fh = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log_fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    http = aiohttp.ClientSession()
    callers: list[subprocess.Popen[str]] = []
    readers: list[asyncio.Task[None]] = []
    latencies: list[float] = []
    try:
        return await _measure(kind, n, warmup_s, measure_s, proc, base, http, callers, readers, latencies)
    except Exception as exc:
        log_fh.flush()
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{kind} N={n} failed (receiver exit code {proc.poll()}): {exc}\n{tail}") from exc
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for c in callers:
            if c.poll() is None:
                c.kill()
                c.wait()
        await http.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_fh.close()
        tmp.cleanup()


async def _measure(kind: str, n: int, warmup_s: float, measure_s: float, proc: subprocess.Popen[Any], base: str,
                   http: Any, callers: list[subprocess.Popen[str]], readers: list[asyncio.Task[None]],
                   latencies: list[float]) -> dict[str, Any]:
    import aiohttp
    import cv2

    measuring = False
    await _wait_http(http, base + ("/stats" if kind == "bare" else "/healthz"), proc)
    call_ids: list[str] = []
    if kind == "bare":
        urls = [f"{base}/c/{i}" for i in range(n)]
    else:
        async with http.post(base + "/api/sessions", json={"participant": "bench", "record": kind == "ingest+rec"}) as r:
            sid = (await r.json())["session_id"]
        urls = []
        for _ in range(n):
            async with http.post(base + "/api/calls", json={"session_id": sid}) as r:
                call = await r.json()
            urls.append(call["caller_url"])
            call_ids.append(call["call_id"])
    seconds = warmup_s + measure_s + 1.0
    groups = min(n, 4)
    for g in range(groups):
        part = urls[g::groups]
        callers.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_ingest", "--callers", json.dumps(part), str(seconds)],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        ))

    async def read_viewer(cid: str) -> None:
        async with http.ws_connect(f"{base}/api/calls/{cid}/live") as ws:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                if measuring:
                    grey = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
                    latencies.append(now_ms() - read_stamp(grey, 8))

    await asyncio.sleep(warmup_s)
    readers.extend(asyncio.ensure_future(read_viewer(cid)) for cid in call_ids)
    await asyncio.sleep(0.5)
    if kind == "bare":
        await http.post(base + "/reset")
    cpu0, t0 = _cpu_s(proc.pid), time.monotonic()
    frames0 = await _frames(http, base, kind, call_ids)
    measuring = True
    await asyncio.sleep(measure_s)
    measuring = False
    cpu1, t1 = _cpu_s(proc.pid), time.monotonic()
    frames1 = await _frames(http, base, kind, call_ids)
    rss = _rss_mb(proc.pid)
    if kind == "bare":
        async with http.get(base + "/stats") as r:
            latencies = [float(x) for x in (await r.json())["latencies"]]
    sent = 0
    for c in callers:
        out, _ = await asyncio.to_thread(c.communicate, timeout=seconds + 60)
        sent += sum(json.loads(out.strip().splitlines()[-1]))
    await asyncio.sleep(1.5)
    received = await _frames(http, base, kind, call_ids)
    lat = sorted(latencies)
    return {
        "kind": kind, "n": n,
        "fps": (received_window := frames1 - frames0) / (t1 - t0) / n,
        "lost": max(0, sent - received - n), "sent": sent,
        "p50": lat[len(lat) // 2] if lat else float("nan"),
        "p95": lat[int(len(lat) * 0.95)] if lat else float("nan"),
        "cpu": 100 * (cpu1 - cpu0) / (t1 - t0), "rss": rss, "samples": len(lat), "window_frames": received_window,
    }


async def _frames(http: Any, base: str, kind: str, call_ids: list[str]) -> int:
    if kind == "bare":
        async with http.get(base + "/stats") as r:
            return sum((await r.json())["frames"].values())
    total = 0
    for cid in call_ids:
        async with http.get(f"{base}/api/calls/{cid}") as r:
            total += (await r.json())["frames_received"]
    return total


def run(ns: list[int], warmup_s: float = 4.0, measure_s: float = 10.0) -> list[dict[str, Any]]:
    """Every case, bare first at each N; returns the rows (see :func:`run_case`)."""
    rows = []
    for n in ns:
        for kind in ("bare", "ingest", "ingest+rec"):
            try:
                row = asyncio.run(run_case(kind, n, warmup_s, measure_s))
            except RuntimeError as exc:  # a receiver that died is a finding: report it, go on with the next case
                print(f"| {kind} | {n} | FAILED: {str(exc)[:2000]} |||||||", flush=True)
                continue
            rows.append(row)
            print(_line(row), flush=True)
    return rows


HEADER = ("| receiver | N | fps/stream | lost | g2g p50 ms | g2g p95 ms | CPU % core | RSS MB |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")


def _line(r: dict[str, Any]) -> str:
    return (f"| {r['kind']} | {r['n']} | {r['fps']:.1f} | {r['lost']} of {r['sent']} | {r['p50']:.0f} | "
            f"{r['p95']:.0f} | {r['cpu']:.0f} | {r['rss']:.0f} |")


def bench_ingest() -> list[tuple[str, float, str]]:
    """``benchmarks/run.py`` entry: N = 1, 4, 8, 16; rows (label, p50 glass-to-glass ms, the other figures)."""
    print(HEADER)
    rows = run([1, 4, 8, 16])
    return [
        (f"{r['kind']} N={r['n']} (g2g p50)", r["p50"],
         f"p95 {r['p95']:.0f} ms, {r['fps']:.1f} fps/stream, lost {r['lost']}/{r['sent']}, "
         f"CPU {r['cpu']:.0f}% of a core, RSS {r['rss']:.0f} MB")
        for r in rows
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[1, 4, 8, 16])
    p.add_argument("--warmup-s", type=float, default=4.0)
    p.add_argument("--measure-s", type=float, default=10.0)
    p.add_argument("--callers", nargs=2, metavar=("URLS_JSON", "SECONDS"), help=argparse.SUPPRESS)
    p.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.callers:
        print(json.dumps(asyncio.run(_callers(json.loads(args.callers[0]), float(args.callers[1])))), flush=True)
        return 0
    if args.bare:
        asyncio.run(_bare(args.bare))
        return 0
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores")
    print(HEADER)
    run(args.n, args.warmup_s, args.measure_s)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
