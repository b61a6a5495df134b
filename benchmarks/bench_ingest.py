"""The ingest under load: N simultaneous 640x480@15 fps aiortc callers (video + a tone), one receiving process.

Receivers, each measured in its own fresh process, in the same run:

* ``bare``: a bare aiortc receiver that only decodes (answers offers, drains ``track.recv()``), the baseline;
* ``ingest``: ``workbench serve --no-console`` with recording off (decode, newest frame, snapshots, the viewer's
  JPEG stream), ``ingest+rec`` with recording on (plus H.264 re-encoding into Matroska segments; the caller's Opus
  packets are stored as received) and ``ingest+copy`` with recording on without re-encoding the video (the
  received VP8 frames stored as they came, ``record_video = "copy"``).

Callers run in separate processes (``min(N, 4)`` processes, the N callers spread over them), in one of two modes,
named in the table's ``callers`` column (``--caller-mode``; ``auto``, the default, is live below N=8 and
pre-encoded from N=8):

* ``live``: each caller ENCODES VP8 live (aiortc's encoder) and draws its capture time (wall clock, ms) as 48
  black/white blocks in the top 64 rows of each frame; glass-to-glass is read time minus that capture time. On this
  2-core machine the callers' encoders take the cores the receiver is measured on: the bare receiver collapsed from
  N=8 (5.6 fps/stream, p95 6 s).
* ``pre-encoded``: the 640x480@15 sequence (by default the real fire clip, 30 s, VP8 at 500 kbit/s) is encoded
  ONCE before the run with aiortc's own realtime VP8 settings; callers hand the encoded frames to aiortc as
  ``av.Packet`` objects, which aiortc packetizes without re-encoding, and send a pre-encoded Opus tone. A
  pre-encoded frame cannot carry its send time, so the blocks carry the FRAME INDEX (Gray code and its
  complement), each caller records the wall-clock time at which it handed each index to aiortc, and glass-to-glass
  is the time the receiver read the index back minus the send time of that index (callers and receiver on the same
  machine, same clock; it excludes the caller's encoding, which the live mode includes). A picture whose stamp
  does not read back as a valid index is counted in ``unread``. See :mod:`benchmarks.ingest_media`.

Glass-to-glass is read back for ``bare`` from the decoded frame itself (the stamp's pixels straight from the
decoder's Y plane); for the ingest from the viewer's WebSocket JPEG stream, i.e. what a dispatcher's viewer would
get (viewers in the benchmark process, JPEGs decoded at 1/8 scale; ``--viewers``, default
:data:`DEFAULT_VIEWERS`: the first few calls are watched, as a lab's few consoles would, not every call, since each
watched call costs the ingest a JPEG encode per frame; ``--viewers 0`` watches every call). The same viewer pictures
also give the ingest's latency *at decode* (column "at decode"): the stamp's send time to the ``t_wall_ms`` the
ingest wrote into the JPEG when it decoded that frame, read where the bare receiver is read (like for like); the
difference to the viewer's figure is the viewer's JPEG encode, send and decode. Figures per case over a
``measure_s`` window after a ``warmup_s`` warm-up: received fps per stream (mean), frames lost (sent by the callers
minus received, minus one per stream that aiortc never delivers, over the whole run), latency p50/p95, CPU of the
receiver process (% of one core, from ``/proc/<pid>/stat``) and its RSS (MB, ``VmRSS``). The load average is
printed before and after: the machine is shared.

The Chromium caller at 30 fps (:func:`run_caller_comparison`): one real headless Chromium opens a caller link and
streams a 640x480 camera drawn on a canvas at 30 fps (``canvas.captureStream``, put in place of the page's
``getUserMedia`` camera by an init script; the microphone stays Chromium's fake device), each picture carrying
``Date.now()`` in the same blocks; beside it, in the same run, one aiortc caller at 30 fps. Both into the ingest
(recording off), each its own fresh process. Glass-to-glass there is read back in the ingest: capture time in the
picture -> the frame's arrival at the ingest, decoded (the ``t_wall_ms`` the ingest writes into each viewer JPEG),
and, for comparison, -> the viewer JPEG decoded in the benchmark. Frames lost: frames the caller's encoder sent
(Chromium: ``framesSent`` of its outbound video RTP stats) minus frames the ingest received, minus one.

``python -m benchmarks.bench_ingest [--n 1 4 8 16 24 32] [--kinds bare ingest ...] [--caller-mode
{auto,live,pre-encoded}] [--picture {real,drawn}] [--video-kbps 500] [--measure-s 10] [--no-chromium]`` runs it
alone; ``workbench bench ingest`` runs it through ``benchmarks/run.py`` (the whole grid: about 20 minutes). Needs
loopback ICE: run it under ``scripts/netns-run`` for a clean namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import percentile
from benchmarks.console_rig import CHROMIUM_ARGS as BASE_CHROMIUM_ARGS
from benchmarks.console_rig import FAKE_MEDIA_ARGS, free_port
from benchmarks.ingest_media import (
    FPS, HEIGHT, WIDTH, PreEncoded, draw_stamp, g2g_from_indices, pre_encode, read_stamp,
)

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


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

        def __init__(self, fps: float = FPS) -> None:
            super().__init__()
            self.fps = fps
            self.frames_sent = 0
            self._start: float | None = None
            gradient = np.linspace(40, 200, WIDTH, dtype=np.uint8)
            self._background = np.dstack([np.tile(gradient, (HEIGHT, 1))] * 3)

        async def recv(self) -> Any:
            n = self.frames_sent
            if self._start is None:
                self._start = time.monotonic()
            else:
                delay = self._start + n / self.fps - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            image = self._background.copy()
            x = int((n * 12) % (WIDTH - 80))
            cv2.rectangle(image, (x, 200), (x + 80, 280), (0, 0, 255), -1)
            draw_stamp(image, now_ms())
            frame = VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = int(n * 90000 / self.fps)
            frame.time_base = fractions.Fraction(1, 90000)
            self.frames_sent += 1
            return frame

    return StampTrack


async def _callers(urls: list[str], seconds: float, fps: float = FPS,
                   pre_encoded: Path | None = None) -> dict[str, Any]:
    """Stream to each caller link in ``urls`` for ``seconds``: live-encoding :class:`StampTrack` callers with
    aiortc's ToneTrack, or, with ``pre_encoded`` (a :func:`benchmarks.ingest_media.pre_encode` directory), callers
    that send that VP8 sequence and a pre-encoded Opus tone without encoding anything. Returns ``{"sent": [frames
    per stream], "sends": [[[frame index, wall-clock ms] of each frame handed to aiortc] per stream] or None for
    live callers, "keyframes": [keyframe requests answered per stream]}``."""
    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    sys.path.insert(0, str(REPO))
    from benchmarks.ingest_media import opus_tone_packets, pre_encoded_tone_track, pre_encoded_video_track
    from tests.helpers_media import ToneTrack
    from workbench.ice import enable_loopback_ice

    enable_loopback_ice()
    StampTrack = _stamp_track_class()
    tone = opus_tone_packets() if pre_encoded is not None else []
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    pcs, tracks = [], []
    try:
        for url in urls:
            async with http.get(url) as resp:
                assert resp.status == 200, resp.status
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            if pre_encoded is not None:
                track = pre_encoded_video_track(pre_encoded, fps)
                track.answer_keyframe_requests(pc.addTrack(track))
                pc.addTrack(pre_encoded_tone_track(tone))
            else:
                track = StampTrack(fps)
                pc.addTrack(track)
                pc.addTrack(ToneTrack())
            await pc.setLocalDescription(await pc.createOffer())
            async with http.post(url + "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as resp:
                answer = await resp.json()
            await pc.setRemoteDescription(RTCSessionDescription(**answer))
            pcs.append(pc)
            tracks.append(track)
        await asyncio.sleep(seconds)
        return {
            "sent": [t.frames_sent for t in tracks],
            "sends": [t.sends for t in tracks] if pre_encoded is not None else None,
            "keyframes": [getattr(t, "keyframes_sent", 0) for t in tracks],
        }
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
    state: dict[str, Any] = {"frames": {}, "samples": [], "pcs": set()}

    async def drain(track: Any, key: str) -> None:
        stream = int(key)
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    state["frames"][key] = state["frames"].get(key, 0) + 1
                    # The stamp's 48 pixels straight from the decoder's Y plane: no swscale context per frame (which
                    # starved this receiver at N=4 on a loaded machine) and no copy of the picture.
                    if frame.format.name == "yuv420p":
                        plane = frame.planes[0]
                        grey = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
                    else:
                        grey = frame.to_ndarray(format="gray")
                    state["samples"].append((stream, read_stamp(grey), time.time() * 1000))
                    if len(state["samples"]) > 100_000:
                        state["samples"] = state["samples"][-50_000:]
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
        return web.json_response({"frames": state["frames"], "samples": state["samples"]})

    async def reset(request: web.Request) -> web.Response:
        state["samples"] = []
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


def _children_cpu_s(pid: int) -> float:
    """CPU time (s) of ``pid``'s living child processes: the ingest's recorder process."""
    total = 0.0
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            try:
                total += _cpu_s(int(child))
            except FileNotFoundError:  # it ended between the two reads
                pass
    return total


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stop_ingest(proc: subprocess.Popen[Any]) -> None:
    """Stop a case's ingest process: SIGTERM, then SIGKILL if it has not exited within 30 s."""
    from workbench.console.launch import stop_process

    stop_process(proc, 30)


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


async def run_case(kind: str, n: int, warmup_s: float, measure_s: float,
                   pre_encoded: PreEncoded | None = None, viewers: int = 0) -> dict[str, Any]:
    """One receiver process (``kind``, one of :data:`KINDS`) with ``n`` callers, live-encoding ones or, with
    ``pre_encoded``, callers sending that sequence; the ingest's latency is read from the viewer streams of the first
    ``viewers`` calls (0: every call). Returns ``{"kind", "callers" ("live" or "pre-encoded"), "n", "viewers",
    "fps" (received per stream, mean over the window), "lost", "sent", "p50", "p95" (glass-to-glass, ms),
    "unread" (pictures whose stamp did not read back), "cpu" (receiver, % of one core), "recorder_cpu" (its child
    processes: the ingest's recorder process), "rss" (MB), "samples",
    "window_frames", "keyframes" (keyframe requests the pre-encoded callers answered), "callers_cpu" (all caller
    processes together) and "reader_cpu" (this process: the viewer readers), % of one core over the window, "load"
    (the 1-minute load average before and after: the machine is shared)}``.

    Raises RuntimeError (with the receiver's log tail) when the receiver dies or the streams do not start."""
    import aiohttp

    port = free_port()
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
    load_before = os.getloadavg()[0]
    row: dict[str, Any] | None = None
    try:
        row = await _measure(kind, n, warmup_s, measure_s, proc, base, http, callers, readers, pre_encoded, viewers)
        row["load"] = (load_before, os.getloadavg()[0])
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
        _stop_ingest(proc)
        if row is not None:
            row.update(recording_counts(Path(tmp.name)))
        log_fh.close()
        tmp.cleanup()
    return row


def recording_counts(recordings: Path) -> dict[str, int]:
    """What the recordings under ``recordings`` hold, from the ``media.recording_segment`` events of every session
    (the ingest logs a segment when it closes it): ``{"recorded_video", "recorded_audio", "recording_drops" (items
    the recorder's full queue dropped, video and audio)}``; zeros without recording."""
    counts = {"recorded_video": 0, "recorded_audio": 0, "recording_drops": 0}
    for log_file in recordings.glob("*/events.jsonl"):
        for line in log_file.read_text().splitlines():
            event = json.loads(line)
            if event["type"] == "media.recording_segment":
                counts["recorded_video"] += event["data"]["video_frames"]
                counts["recorded_audio"] += event["data"]["audio_frames"]
                counts["recording_drops"] += event["data"]["frames_dropped"]
    return counts


async def _measure(kind: str, n: int, warmup_s: float, measure_s: float, proc: subprocess.Popen[Any], base: str,
                   http: Any, callers: list[subprocess.Popen[str]], readers: list[asyncio.Task[None]],
                   pre_encoded: PreEncoded | None, viewers: int) -> dict[str, Any]:
    import aiohttp
    import cv2

    from workbench.ingest.live import jpeg_comment

    measuring = False
    samples: list[tuple[int, int, float]] = []  # (stream, stamp read back, wall-clock ms when read)
    # The same pictures, timed when the ingest decoded them (the t_wall_ms it writes into each viewer JPEG): read
    # there, as the bare receiver is read, the figure leaves out the viewer's JPEG encode, send and decode.
    at_decode: list[tuple[int, int, float]] = []
    await _wait_http(http, base + ("/stats" if kind == "bare" else "/healthz"), proc)
    call_ids: list[str] = []
    if kind == "bare":
        urls = [f"{base}/c/{i}" for i in range(n)]
    else:
        policy = {"participant": "bench", "record": kind in ("ingest+rec", "ingest+copy")}
        if kind == "ingest+copy":
            policy["record_video"] = "copy"
        async with http.post(base + "/api/sessions", json=policy) as r:
            sid = (await r.json())["session_id"]
        urls = []
        for _ in range(n):
            async with http.post(base + "/api/calls", json={"session_id": sid}) as r:
                call = await r.json()
            urls.append(call["caller_url"])
            call_ids.append(call["call_id"])
    seconds = warmup_s + measure_s + STREAM_MARGIN_S
    groups = min(n, 4)
    extra = [] if pre_encoded is None else ["--pre-encoded", str(pre_encoded.directory)]
    for g in range(groups):
        part = urls[g::groups]
        callers.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_ingest", "--callers", json.dumps(part), str(seconds), *extra],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        ))

    async def read_viewer(stream: int, cid: str) -> None:
        async with http.ws_connect(f"{base}/api/calls/{cid}/live") as ws:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                if measuring:
                    read_ms = time.time() * 1000
                    grey = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
                    stamp = read_stamp(grey, 8)
                    samples.append((stream, stamp, read_ms))
                    decoded_ms = float(jpeg_comment(msg.data).split("t_wall_ms=")[1].split()[0])
                    at_decode.append((stream, stamp, decoded_ms))

    await _wait_streaming(http, base, kind, call_ids, n, proc)
    await asyncio.sleep(warmup_s)
    watched = call_ids[:viewers] if viewers > 0 else call_ids
    readers.extend(asyncio.ensure_future(read_viewer(i, cid)) for i, cid in enumerate(watched))
    await asyncio.sleep(0.5)
    if kind == "bare":
        await http.post(base + "/reset")
    # The callers' and this process's CPU too: on a shared 2-core machine a receiver that idles while frames come
    # late says the senders (or the neighbours) were starved, not the receiver.
    cpu0, t0, recorder_cpu0 = _cpu_s(proc.pid), time.monotonic(), _children_cpu_s(proc.pid)
    callers_cpu0, reader_cpu0 = sum(_cpu_s(c.pid) for c in callers), time.process_time()
    frames0 = await _frames(http, base, kind, call_ids)
    measuring = True
    await asyncio.sleep(measure_s)
    measuring = False
    cpu1, t1, recorder_cpu1 = _cpu_s(proc.pid), time.monotonic(), _children_cpu_s(proc.pid)
    callers_cpu1, reader_cpu1 = sum(_cpu_s(c.pid) for c in callers), time.process_time()
    frames1 = await _frames(http, base, kind, call_ids)
    rss = _rss_mb(proc.pid)
    if kind == "bare":
        async with http.get(base + "/stats") as r:
            samples = [(int(s), int(v), float(t)) for s, v, t in (await r.json())["samples"]]
    # Each caller process streams to urls[g::groups]: put its per-stream send times back in stream order.
    sent, keyframes = 0, 0
    sends: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for g, c in enumerate(callers):
        out, _ = await asyncio.to_thread(c.communicate, timeout=seconds + 60)
        report = json.loads(out.strip().splitlines()[-1])
        sent += sum(report["sent"])
        keyframes += sum(report["keyframes"])
        for j, stream_sends in enumerate(report["sends"] or []):
            sends[g + j * groups] = stream_sends
    await asyncio.sleep(1.5)
    received = await _frames(http, base, kind, call_ids)
    if kind == "bare":
        at_decode = samples  # the bare receiver reads every stamp straight from the decoder
    if pre_encoded is None:
        latencies, unread = [t - v for _, v, t in samples], 0
        decode_latencies = [t - v for _, v, t in at_decode]
    else:
        latencies, unread = g2g_from_indices(samples, sends)
        decode_latencies, _ = g2g_from_indices(at_decode, sends)
    lat, lat_decode = sorted(latencies), sorted(decode_latencies)
    return {
        "kind": kind, "callers": "live" if pre_encoded is None else "pre-encoded", "n": n,
        "viewers": n if kind == "bare" else len(watched),
        "fps": (received_window := frames1 - frames0) / (t1 - t0) / n,
        "lost": max(0, sent - received - n), "sent": sent,
        "p50": percentile(lat, 0.5), "p95": percentile(lat, 0.95), "unread": unread,
        "decode_p50": percentile(lat_decode, 0.5), "decode_p95": percentile(lat_decode, 0.95),
        "cpu": 100 * (cpu1 - cpu0) / (t1 - t0), "rss": rss, "samples": len(lat), "window_frames": received_window,
        "recorder_cpu": 100 * (recorder_cpu1 - recorder_cpu0) / (t1 - t0),
        "keyframes": keyframes, "callers_cpu": 100 * (callers_cpu1 - callers_cpu0) / (t1 - t0),
        "reader_cpu": 100 * (reader_cpu1 - reader_cpu0) / (t1 - t0),
    }


STREAM_MARGIN_S = 4.0
"""Callers stream this much longer than warm-up + window: the window starts only once every stream has arrived, and
a caller process that connects its streams one after another needs that long under load."""
STREAM_START_TIMEOUT_S = 120.0
"""How long caller processes may take to start streaming (importing aiortc, PyAV and OpenCV on a loaded machine)."""


async def _wait_streaming(http: Any, base: str, kind: str, call_ids: list[str], n: int,
                          proc: subprocess.Popen[Any]) -> None:
    """Wait until every one of the ``n`` streams has delivered a frame, so the warm-up and the window measure
    streaming, not caller start-up (on a loaded machine starting the caller processes alone took over 15 s).
    Raises RuntimeError after :data:`STREAM_START_TIMEOUT_S`."""
    deadline = time.monotonic() + STREAM_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}")
        if kind == "bare":
            async with http.get(base + "/stats") as r:
                streaming = sum(1 for v in (await r.json())["frames"].values() if v > 0)
        else:
            streaming = 0
            for cid in call_ids:
                async with http.get(f"{base}/api/calls/{cid}") as r:
                    streaming += (await r.json())["frames_received"] > 0
        if streaming >= n:
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"only {streaming} of {n} streams started within {STREAM_START_TIMEOUT_S:.0f} s")


async def _frames(http: Any, base: str, kind: str, call_ids: list[str]) -> int:
    if kind == "bare":
        async with http.get(base + "/stats") as r:
            return sum((await r.json())["frames"].values())
    total = 0
    for cid in call_ids:
        async with http.get(f"{base}/api/calls/{cid}") as r:
            total += (await r.json())["frames_received"]
    return total


KINDS = ("bare", "ingest", "ingest+rec", "ingest+copy")


DEFAULT_VIEWERS = 4
"""Calls whose viewer stream the benchmark reads in the ingest cases (see the module docstring)."""
CALLER_MODES = ("auto", "live", "pre-encoded")
PRE_ENCODED_FROM_N = 8
"""``auto`` uses live-encoding callers below this N and pre-encoded ones from it: from N=8 the live callers' VP8
encoders took the 2 cores the receiver was measured on (bare receiver 5.6 fps/stream, p95 6 s at N=8)."""


def make_sequence(directory: Path, picture: str = "real", video_kbps: int = 500) -> PreEncoded:
    """The pre-encoded callers' sequence (:func:`benchmarks.ingest_media.pre_encode`) in ``directory``:
    ``picture`` ``"real"`` (the real fire clip, :data:`REAL_CLIP`; the drawn scene when ../shared is missing, and
    the sequence says so) or ``"drawn"`` (the live callers' scene), encoded at ``video_kbps``."""
    from benchmarks.ingest_media import SEQ_FRAMES

    if picture == "real":
        pictures = _real_pictures(SEQ_FRAMES)
        if pictures is not None:
            return pre_encode(directory, picture="real fire clip", target_kbps=video_kbps, pictures=pictures)
        print(f"{REAL_CLIP} missing: pre-encoding the drawn scene instead", flush=True)
    return pre_encode(directory, target_kbps=video_kbps)


def run(ns: list[int], warmup_s: float = 4.0, measure_s: float = 10.0, kinds: tuple[str, ...] = KINDS,
        caller_mode: str = "auto", picture: str = "real", video_kbps: int = 500,
        viewers: int = DEFAULT_VIEWERS) -> list[dict[str, Any]]:
    """Every case of ``kinds``, bare first at each N, with the callers of ``caller_mode`` (:data:`CALLER_MODES`;
    the pre-encoded sequence is made once, before the first case that needs it, from ``picture`` at
    ``video_kbps``); prints the table as it goes and returns the rows (see :func:`run_case`)."""
    if caller_mode not in CALLER_MODES:
        raise ValueError(f"caller mode {caller_mode!r}: expected one of {', '.join(CALLER_MODES)}")
    if viewers < 0:
        raise ValueError(f"viewers must be 0 (every call) or more, got {viewers}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pre-encoded-") as tmp:
        pre: PreEncoded | None = None
        for n in ns:
            if caller_mode == "pre-encoded" or (caller_mode == "auto" and n >= PRE_ENCODED_FROM_N):
                if pre is None:
                    pre = make_sequence(Path(tmp), picture, video_kbps)
                    print(pre.describe(), flush=True)
                case_pre: PreEncoded | None = pre
            else:
                case_pre = None
            for kind in kinds:
                try:
                    row = asyncio.run(run_case(kind, n, warmup_s, measure_s, case_pre, viewers))
                except RuntimeError as exc:  # a receiver that died is a finding: report it, go on with the next
                    print(f"| {kind} | {'live' if case_pre is None else 'pre-encoded'} | {n} | "
                          f"FAILED: {str(exc)[:2000]} ||||||||||||", flush=True)
                    continue
                rows.append(row)
                print(_line(row), flush=True)
    return rows


# --- the Chromium caller at 30 fps, beside an aiortc caller at 30 fps ---------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [*BASE_CHROMIUM_ARGS, *FAKE_MEDIA_ARGS]
"""The test browsers' flags (``benchmarks.console_rig``): nothing dials out; fake camera and microphone; loopback
ICE."""

STAMP_CAMERA_JS = """
(() => {
  // A 640x480 camera drawn on a canvas at %(fps)d fps: grey, a moving red square, and Date.now() as 48 black/white
  // blocks (2 rows of 24, 26 x 32 px, most significant first), as benchmarks/bench_ingest.draw_stamp draws them.
  const W = 640, H = 480, FPS = %(fps)d, BITS = 48, BW = 26, BH = 32;
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  const Pc = window.RTCPeerConnection;
  window.benchPcs = [];
  window.RTCPeerConnection = function (...args) { const pc = new Pc(...args); window.benchPcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = Pc.prototype;
  window.benchFramesDrawn = 0;
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const out = new MediaStream();
    if (constraints && constraints.audio) (await original({ audio: true })).getAudioTracks().forEach((t) => out.addTrack(t));
    if (constraints && constraints.video) {
      const canvas = document.createElement("canvas");
      canvas.width = W; canvas.height = H;
      const ctx = canvas.getContext("2d");
      let n = 0;
      const draw = () => {
        ctx.fillStyle = "#787878"; ctx.fillRect(0, 0, W, H);
        ctx.fillStyle = "#d01010"; ctx.fillRect((n * 12) %% (W - 80), 200, 80, 80);
        const v = Date.now();
        for (let i = 0; i < BITS; i++) {
          const bit = Math.floor(v / Math.pow(2, BITS - 1 - i)) %% 2;
          ctx.fillStyle = bit ? "#ffffff" : "#000000";
          ctx.fillRect((i %% 24) * BW, Math.floor(i / 24) * BH, BW, BH);
        }
        n += 1; window.benchFramesDrawn = n;
      };
      draw();
      setInterval(draw, 1000 / FPS);
      canvas.captureStream(FPS).getVideoTracks().forEach((t) => out.addTrack(t));
    }
    return out;
  };
})();
"""

FRAMES_SENT_JS = """
(async () => {
  let sent = 0;
  for (const pc of window.benchPcs) {
    (await pc.getStats()).forEach((r) => { if (r.type === "outbound-rtp" && r.kind === "video") sent += r.framesSent || 0; });
  }
  return sent;
})()
"""


async def run_caller_comparison(caller: str, fps: int = 30, warmup_s: float = 4.0,
                                measure_s: float = 10.0) -> dict[str, Any]:
    """One caller (``caller`` ``chromium`` or ``aiortc``) at ``fps`` into a fresh ingest (recording off); returns
    ``{"kind", "n", "fps", "lost", "sent", "p50", "p95" (capture -> arrival at the ingest, ms), "viewer_p50",
    "viewer_p95" (capture -> viewer JPEG decoded here, ms), "cpu", "rss", "samples", "size"}``.

    Raises RuntimeError when the ingest or the browser fails (with the ingest's log)."""
    import aiohttp
    import cv2

    from workbench.ingest.live import jpeg_comment

    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix="bench-caller-")
    log_path = Path(tmp.name) / "receiver.log"
    log_fh = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--no-console", "--port", str(port),
                             "--recordings", tmp.name], cwd=REPO, stdout=log_fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    http = aiohttp.ClientSession()
    samples: list[tuple[float, float]] = []
    sizes: set[tuple[int, int]] = set()
    measuring = False
    caller_proc: subprocess.Popen[str] | None = None
    reader: asyncio.Task[None] | None = None
    pw_cm: Any = None
    browser: Any = None
    try:
        await _wait_http(http, base + "/healthz", proc)
        async with http.post(base + "/api/sessions", json={"participant": "bench", "record": False}) as r:
            sid = (await r.json())["session_id"]
        async with http.post(base + "/api/calls", json={"session_id": sid}) as r:
            call = await r.json()
        cid = call["call_id"]
        seconds = warmup_s + measure_s + STREAM_MARGIN_S
        page = None
        if caller == "chromium":
            from playwright.async_api import async_playwright

            pw_cm = async_playwright()
            pw = await pw_cm.__aenter__()
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context()
            await context.add_init_script(STAMP_CAMERA_JS % {"fps": fps})
            page = await context.new_page()
            await page.goto(call["caller_url"])
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'connected'", timeout=30_000)
        else:
            caller_proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bench_ingest", "--callers", json.dumps([call["caller_url"]]),
                 str(seconds), "--caller-fps", str(fps)], cwd=REPO, stdout=subprocess.PIPE, text=True)

        await _wait_streaming(http, base, "ingest", [cid], 1, proc)

        async def read_viewer() -> None:
            async with http.ws_connect(f"{base}/api/calls/{cid}/live") as ws:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        break
                    if not measuring:
                        continue
                    now = now_ms()
                    grey = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_GRAYSCALE)
                    sizes.add((grey.shape[1], grey.shape[0]))
                    if grey.shape != (HEIGHT, WIDTH):  # the browser scaled down under load: read at 640x480
                        grey = cv2.resize(grey, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
                    stamp = read_stamp(grey)
                    arrived = float(jpeg_comment(msg.data).split("t_wall_ms=")[1].split()[0])
                    samples.append((arrived - stamp, now - stamp))

        await asyncio.sleep(warmup_s)
        reader = asyncio.ensure_future(read_viewer())
        await asyncio.sleep(0.5)

        async def received() -> int:
            async with http.get(f"{base}/api/calls/{cid}") as r:
                return int((await r.json())["frames_received"])

        cpu0, t0, frames0 = _cpu_s(proc.pid), time.monotonic(), await received()
        measuring = True
        await asyncio.sleep(measure_s)
        measuring = False
        cpu1, t1, frames1 = _cpu_s(proc.pid), time.monotonic(), await received()
        rss = _rss_mb(proc.pid)
        if page is not None:
            sent = int(await page.evaluate(FRAMES_SENT_JS))
            await page.click("#end")  # the caller hangs up: what was sent is final
            await asyncio.sleep(1.5)
        else:
            assert caller_proc is not None
            out, _ = await asyncio.to_thread(caller_proc.communicate, timeout=seconds + 60)
            sent = sum(json.loads(out.strip().splitlines()[-1])["sent"])
            await asyncio.sleep(1.5)
        total = await received()
        if page is not None:
            # framesSent was read before the hang-up; frames still in flight then arrived since: compare like with like
            total = min(total, frames1 + int((time.monotonic() - t1) * fps))
        ingest = sorted(a for a, _ in samples)
        viewer = sorted(v for _, v in samples)
        return {
            "kind": f"{caller} caller {fps} fps", "n": 1, "fps": (frames1 - frames0) / (t1 - t0),
            "lost": max(0, sent - total - 1), "sent": sent,
            "p50": percentile(ingest, 0.5), "p95": percentile(ingest, 0.95),
            "viewer_p50": percentile(viewer, 0.5), "viewer_p95": percentile(viewer, 0.95),
            "cpu": 100 * (cpu1 - cpu0) / (t1 - t0), "rss": rss, "samples": len(samples),
            "size": sorted(sizes),
        }
    except Exception as exc:
        log_fh.flush()
        raise RuntimeError(f"{caller} caller failed (ingest exit code {proc.poll()}): {exc}\n"
                           f"{log_path.read_text(errors='replace')[-3000:]}") from exc
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if browser is not None:
            await browser.close()
        if pw_cm is not None:
            await pw_cm.__aexit__(None, None, None)
        if caller_proc is not None and caller_proc.poll() is None:
            caller_proc.kill()
            caller_proc.wait()
        await http.close()
        _stop_ingest(proc)
        log_fh.close()
        tmp.cleanup()



# --- the recorder alone: CPU per stream, re-encoding against storing the received VP8 frames ---------------------


REAL_CLIP = REPO.parent / "shared" / "data" / "real" / "video" / "firedetection_test1_outdoor_fire.mp4"
"""A real outdoor fire clip (352x288, 10 fps; ../shared/data/real/video/SOURCES.md), scaled to 640x480: encoders
work much harder on real camera pictures than on a drawn one."""


def _real_pictures(n: int) -> list[np.ndarray] | None:
    """``n`` BGR 640x480 pictures from :data:`REAL_CLIP` (looped), or None when the shared data is not there."""
    import cv2

    if not REAL_CLIP.is_file():
        return None
    capture = cv2.VideoCapture(str(REAL_CLIP))
    clip = []
    while len(clip) < 300:
        ok, image = capture.read()
        if not ok:
            break
        clip.append(cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR))
    capture.release()
    return [clip[i % len(clip)] for i in range(n)] if clip else None


def recorder_cpu(seconds: float = 10.0) -> list[dict[str, Any]]:
    """CPU time the recorder spends per second of one 640x480@15 stream (video only: the real fire clip when
    ``../shared`` is there, else a drawn moving picture), ``h264`` (decoded frames re-encoded by x264 ultrafast) against ``copy`` (the VP8 frames
    aiortc's own encoder made, stored as packets). Frames are made and VP8-encoded beforehand (not timed); the
    figure is this process's CPU time (all threads: the writer thread does the work) while the recorder takes and
    writes ``seconds`` of video as fast as it can, divided by ``seconds``; CPU time, unlike wall time, barely depends
    on what else the machine runs. Returns ``[{"mode", "cpu_pct", "bytes_per_s"}]``."""
    import cv2
    from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
    from av import VideoFrame

    from workbench.ingest.recording import CallRecorder

    n = int(seconds * FPS)
    real = _real_pictures(n)
    gradient = np.linspace(40, 200, WIDTH, dtype=np.uint8)
    background = np.dstack([np.tile(gradient, (HEIGHT, 1))] * 3)
    frames, packets = [], []
    encoder = Vp8Encoder()
    for i in range(n):
        if real is not None:
            image = real[i].copy()
        else:
            image = background.copy()
            x = int((i * 12) % (WIDTH - 80))
            cv2.rectangle(image, (x, 200), (x + 80, 280), (0, 0, 255), -1)
        draw_stamp(image, 1_700_000_000_000 + i * 67)
        frame = VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts, frame.time_base = int(i * 90000 / FPS), fractions.Fraction(1, 90000)
        frames.append(frame)
        payloads, _ = encoder.encode(frame)
        packets.append(b"".join(vp8_depayload(p) for p in payloads))

    async def one(mode: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
            recorder = CallRecorder(Path(tmp), loop=asyncio.get_running_loop(), on_segment=lambda info: None,
                                    on_error=print, segment_s=3600, queue_frames=n + 1, video_mode=mode)
            recorder.has_video = True
            cpu0 = time.process_time()
            for i in range(n):
                t_ns = 10**12 + int(i * 1e9 / FPS)
                if mode == "copy":
                    recorder.push_encoded("VP8", packets[i], t_ns)
                else:
                    recorder.push("video", frames[i], t_ns)
            await recorder.close()
            cpu = time.process_time() - cpu0
            size = sum(f.stat().st_size for f in Path(tmp).glob("rec-*.mkv"))
        return {"mode": mode, "cpu_pct": 100 * cpu / seconds, "bytes_per_s": size / seconds,
                "source": "real fire clip" if real is not None else "drawn picture"}

    return [asyncio.run(one(mode)) for mode in ("h264", "copy")]

CALLERS_HEADER = ("| caller -> ingest (recording off) | fps received | lost | g2g to ingest p50 ms | p95 ms | "
                  "to viewer p50 ms | p95 ms | ingest CPU % core | sizes |\n|---|---:|---:|---:|---:|---:|---:|---:|---|")


def _caller_line(r: dict[str, Any]) -> str:
    return (f"| {r['kind']} | {r['fps']:.1f} | {r['lost']} of {r['sent']} | {r['p50']:.0f} | {r['p95']:.0f} | "
            f"{r['viewer_p50']:.0f} | {r['viewer_p95']:.0f} | {r['cpu']:.0f} | "
            f"{' '.join(f'{w}x{h}' for w, h in r['size'])} |")


def run_callers(fps: int = 30, warmup_s: float = 4.0, measure_s: float = 10.0) -> list[dict[str, Any]]:
    """The aiortc caller, then the Chromium caller, at ``fps``; prints and returns the rows (a failed case is printed
    and skipped)."""
    print(CALLERS_HEADER, flush=True)
    rows = []
    for caller in ("aiortc", "chromium"):
        try:
            row = asyncio.run(run_caller_comparison(caller, fps, warmup_s, measure_s))
        except RuntimeError as exc:
            print(f"| {caller} caller {fps} fps | FAILED: {str(exc)[:2000]} ||||||||", flush=True)
            continue
        rows.append(row)
        print(_caller_line(row), flush=True)
    return rows


HEADER = ("| receiver | callers | N | g2g read on | fps/stream | lost | g2g p50 ms | g2g p95 ms | at decode p50 / p95 ms | "
          "unread | CPU % core (+ recorder process) | recorded video frames, items dropped by the recorder | RSS MB | "
          "callers / reader CPU % | keyframes on request | load 1 min |\n"
          "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---|")


def _line(r: dict[str, Any]) -> str:
    read_on = "every decoded frame" if r["kind"] == "bare" else f"{r['viewers']} viewer(s)"
    recorder = f" + {r['recorder_cpu']:.0f}" if r.get("recorder_cpu") else ""
    recorded = f"{r['recorded_video']}, {r['recording_drops']}" if r.get("recorded_video") else "-"
    return (f"| {r['kind']} | {r['callers']} | {r['n']} | {read_on} | {r['fps']:.1f} | {r['lost']} of {r['sent']} | "
            f"{r['p50']:.0f} | {r['p95']:.0f} | {r['decode_p50']:.0f} / {r['decode_p95']:.0f} | {r['unread']} of {r['samples'] + r['unread']} | {r['cpu']:.0f}{recorder} | {recorded} | "
            f"{r['rss']:.0f} | {r['callers_cpu']:.0f} / {r['reader_cpu']:.0f} | "
            f"{r['keyframes'] if r['callers'] == 'pre-encoded' else '-'} | "
            f"{r['load'][0]:.1f} -> {r['load'][1]:.1f} |")


DEFAULT_NS = (1, 4, 8, 16, 24, 32)


def bench_ingest() -> list[tuple[str, float, str]]:
    """``benchmarks/run.py`` entry: N = :data:`DEFAULT_NS` (live callers below N=8, pre-encoded from it); rows
    (label, p50 glass-to-glass ms, the other figures)."""
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    print(HEADER)
    rows = run(list(DEFAULT_NS))
    callers = run_callers(30)
    recording = recorder_cpu()
    print(f"load average after: {os.getloadavg()}", flush=True)
    return [
        (f"{r['kind']} N={r['n']}, {r['callers']} callers (g2g p50)", r["p50"],
         f"p95 {r['p95']:.0f} ms, {r['fps']:.1f} fps/stream, lost {r['lost']}/{r['sent']}, "
         f"CPU {r['cpu']:.0f}% of a core, RSS {r['rss']:.0f} MB")
        for r in rows
    ] + [
        (f"{r['kind']} (g2g to ingest p50)", r["p50"],
         f"p95 {r['p95']:.0f} ms, to viewer p50/p95 {r['viewer_p50']:.0f}/{r['viewer_p95']:.0f} ms, "
         f"{r['fps']:.1f} fps, lost {r['lost']}/{r['sent']}")
        for r in callers
    ] + [
        (f"recorder alone, video {r['mode']} (CPU % of a core per 640x480@15 stream)", r["cpu_pct"],
         f"{r['bytes_per_s'] / 1000:.0f} kB/s written, {r['source']}")
        for r in recording
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_NS))
    p.add_argument("--warmup-s", type=float, default=4.0)
    p.add_argument("--measure-s", type=float, default=10.0)
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="receivers to measure")
    p.add_argument("--caller-mode", choices=CALLER_MODES, default="auto",
                   help=f"callers that encode VP8 live or send a pre-encoded sequence (auto: live below "
                        f"N={PRE_ENCODED_FROM_N}, pre-encoded from it)")
    p.add_argument("--picture", choices=("real", "drawn"), default="real",
                   help="what the pre-encoded sequence shows: the real fire clip (default) or the live callers' "
                        "drawn scene")
    p.add_argument("--video-kbps", type=int, default=500,
                   help="the pre-encoded sequence's VP8 target bitrate (default 500, aiortc's starting rate)")
    p.add_argument("--viewers", type=int, default=DEFAULT_VIEWERS,
                   help=f"ingest cases: read glass-to-glass from the viewer streams of this many calls (default "
                        f"{DEFAULT_VIEWERS}; 0 = every call, each costing the ingest a JPEG encode per frame)")
    p.add_argument("--no-recorder", action="store_true", help="skip the recorder-alone CPU figures")
    p.add_argument("--no-chromium", action="store_true", help="skip the 30 fps Chromium/aiortc caller comparison")
    p.add_argument("--only-callers", action="store_true", help="run only the 30 fps Chromium/aiortc caller comparison")
    p.add_argument("--callers", nargs=2, metavar=("URLS_JSON", "SECONDS"), help=argparse.SUPPRESS)
    p.add_argument("--caller-fps", type=float, default=FPS, help=argparse.SUPPRESS)
    p.add_argument("--pre-encoded", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.callers:
        report = asyncio.run(_callers(json.loads(args.callers[0]), float(args.callers[1]), args.caller_fps,
                                      args.pre_encoded))
        print(json.dumps(report), flush=True)
        return 0
    if args.bare:
        asyncio.run(_bare(args.bare))
        return 0
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores", flush=True)
    if not args.only_callers:
        print(HEADER)
        run(args.n, args.warmup_s, args.measure_s, tuple(args.kinds), args.caller_mode, args.picture,
            args.video_kbps, args.viewers)
    if not args.no_chromium:
        run_callers(30, args.warmup_s, args.measure_s)
    for r in [] if args.no_recorder else recorder_cpu():
        print(f"recorder alone, video {r['mode']}: {r['cpu_pct']:.1f}% of a core per 640x480@15 stream, "
              f"{r['bytes_per_s'] / 1000:.0f} kB/s written, {r['source']}")
    print(f"load average after: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
