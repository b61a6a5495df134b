"""The dispatcher's viewer page in a real headless Chromium: a portrait (480x640) aiortc caller is shown whole
(fit to the window, not cropped), and the page measures the WebSocket JPEG stream's latency from the timestamp in
each JPEG. Also: the viewer page requests a keyframe when it joins."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import CHROMIUM_BASE_ARGS, free_port, poll
from tests.helpers_media import MovingPatternTrack
from tests.live_call import Caller, live_call
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.slow]


class PortraitCaller(Caller):
    def make_video(self) -> Any:
        return MovingPatternTrack(480, 640, 15)


def test_viewer_fits_portrait_video_and_measures_its_latency(tmp_path: Path, chromium_path: str) -> None:
    asyncio.run(_viewer(tmp_path, chromium_path))


async def _viewer(tmp_path: Path, chromium: str) -> None:
    from playwright.async_api import async_playwright

    foreign: list[str] = []

    async def guard(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            foreign.append(route.request.url)
            await route.abort()

    async with live_call(tmp_path / "rec", caller_cls=PortraitCaller, viewer_fps=15) as live:
        cid = live.cid
        await poll(live.status, lambda s: s["frames_received"] > 10, 20, "portrait frames")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_BASE_ARGS)
            try:
                context = await browser.new_context(viewport={"width": 800, "height": 600})
                await context.route("**/*", guard)
                page = await context.new_page()
                await page.goto(f"{live.handle.url}/api/calls/{cid}/viewer")
                await page.wait_for_function("window.viewerStats && window.viewerStats.latenciesMs.length >= 40",
                                             timeout=20_000)
                box = await page.evaluate(
                    "(() => { const i = document.getElementById('frame'); const r = i.getBoundingClientRect();"
                    " return {h: r.height, bottom: r.bottom, nw: i.naturalWidth, nh: i.naturalHeight,"
                    " fit: getComputedStyle(i).objectFit}; })()"
                )
                latencies = await page.evaluate("window.viewerStats.latenciesMs.slice(5)")
            finally:
                await browser.close()
        assert (box["nw"], box["nh"]) == (480, 640), box
        assert box["fit"] == "contain" and box["bottom"] <= 600 and box["h"] <= 600, box
        latencies.sort()
        p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
        print(f"viewer WebSocket JPEG latency (ingest arrival -> decoded in Chromium): p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        assert 0 <= p50 < 250 and p95 < 1000, (p50, p95)
        assert not foreign, foreign


# --- glass-to-glass: the WebSocket JPEG stream against the WebRTC relay, in one run -------------------------------

READ_STAMPS_JS = """
async ([selector, count]) => {
  // The capture time the caller drew into the picture (benchmarks/bench_ingest.draw_stamp: 2 rows of 24 blocks,
  // 26 x 32 px, most significant bit first) -> Date.now() minus it, once per new picture.
  const el = document.querySelector(selector);
  const canvas = document.createElement("canvas");
  canvas.width = 640; canvas.height = 64;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const out = [];
  let last = -1;
  const deadline = Date.now() + 20000;
  while (out.length < count && Date.now() < deadline) {
    await new Promise((r) => requestAnimationFrame(r));
    ctx.drawImage(el, 0, 0, 640, 64, 0, 0, 640, 64);
    const px = ctx.getImageData(0, 0, 640, 64).data;
    let value = 0;
    for (let i = 0; i < 48; i++) {
      const row = Math.floor(i / 24), col = i % 24;
      const x = col * 26 + 13, y = row * 32 + 16;
      value = value * 2 + (px[(y * 640 + x) * 4 + 1] > 127 ? 1 : 0);
    }
    if (value !== last) { last = value; out.push(Date.now() - value); }
  }
  return out;
}
"""


def test_glass_to_glass_jpeg_stream_and_webrtc_relay(tmp_path: Path, chromium_path: str) -> None:
    asyncio.run(_glass_to_glass(tmp_path, chromium_path))


async def _glass_to_glass(tmp_path: Path, chromium: str) -> None:
    from playwright.async_api import async_playwright

    from benchmarks.bench_ingest import _stamp_track_class

    StampTrack = _stamp_track_class()

    class StampCaller(Caller):
        def make_video(self) -> Any:
            return StampTrack()

    async with live_call(tmp_path / "rec", caller_cls=StampCaller, viewer_fps=15) as live:
        cid = live.cid
        await poll(live.status, lambda s: s["frames_received"] > 10, 20, "frames")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium,
                args=CHROMIUM_BASE_ARGS + ["--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
                                           "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
            )
            try:
                page = await browser.new_page(viewport={"width": 800, "height": 700})
                await page.goto(f"{live.handle.url}/api/calls/{cid}/viewer")
                await page.wait_for_function("window.viewerStats.framesShown >= 5", timeout=15_000)
                jpeg = await page.evaluate(READ_STAMPS_JS, ["#frame", 60])

                relay = await browser.new_page(viewport={"width": 800, "height": 700})
                console: list[str] = []
                relay.on("console", lambda msg: console.append(msg.text))
                relay.on("pageerror", lambda exc: console.append(str(exc)))
                # Chromium offers host candidates only to pages with media permission (else none at all in a
                # loopback-only namespace); a dispatcher who talks back has granted the microphone anyway.
                await relay.goto(f"{live.handle.url}/api/calls/{cid}/viewer")
                await relay.evaluate("navigator.mediaDevices.getUserMedia({audio: true}).then(s => s.getTracks().forEach(t => t.stop()))")
                await relay.goto(f"{live.handle.url}/api/calls/{cid}/viewer?mode=webrtc")
                try:
                    await relay.wait_for_function("window.viewerStats.connected", timeout=15_000)
                except Exception:
                    diag = await relay.evaluate("window.viewerPc ? [viewerPc.connectionState, viewerPc.iceConnectionState, viewerPc.iceGatheringState, viewerPc.signalingState, viewerPc.localDescription && viewerPc.localDescription.sdp.split('a=candidate').length] : 'no pc'")
                    raise AssertionError(f"relay: {await relay.inner_text('#status')!r} {diag} {console}") from None
                await relay.wait_for_function(
                    "(() => { const v = document.getElementById('video'); return v.readyState >= 2 && v.videoWidth === 640; })()",
                    timeout=20_000,
                )
                webrtc_ms = await relay.evaluate(READ_STAMPS_JS, ["#video", 60])
                audio_packets = await relay.evaluate(
                    "(async () => { let n = 0; (await window.viewerPc.getStats()).forEach((r) => {"
                    " if (r.type === 'inbound-rtp' && r.kind === 'audio') n = r.packetsReceived; }); return n; })()"
                )
            finally:
                await browser.close()
        summary = {}
        for name, values in (("WebSocket JPEG", jpeg[5:]), ("WebRTC relay", webrtc_ms[5:])):
            values = sorted(values)
            summary[name] = (values[len(values) // 2], values[int(len(values) * 0.95)])
            print(f"glass-to-glass, aiortc caller -> ingest -> Chromium viewer, {name}: "
                  f"p50 {summary[name][0]:.0f} ms, p95 {summary[name][1]:.0f} ms ({len(values)} pictures)")
        assert len(jpeg) > 30 and len(webrtc_ms) > 30
        assert summary["WebSocket JPEG"][1] < 1000 and summary["WebRTC relay"][1] < 1000, summary
        assert audio_packets > 20, "the dispatcher's page receives the caller's audio"


def test_the_viewers_count_of_distinct_pictures_stays_bounded(tmp_path: Path, chromium_path: str) -> None:
    """An 8-hour shift at 15 fps is 432,000 pictures: the viewer counts distinct ones (for tests) only up to 1000."""
    from playwright.async_api import async_playwright

    async def run() -> tuple[int, int]:
        root = tmp_path / "rec"
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=root), Recordings(root))
        try:
            async with aiohttp.ClientSession() as api:
                async with api.post(handle.url + "/api/calls", json={}) as resp:
                    call = await resp.json()
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_BASE_ARGS)
                page = await browser.new_page()

                def stream(ws: Any) -> None:  # stands in for the ingest's JPEG stream: 1100 different pictures
                    for i in range(1100):
                        ws.send(b"\xff\xd8" + i.to_bytes(4, "big") + b"\xff\xd9")

                await page.route_web_socket("**/live", stream)
                await page.goto(f"{handle.url}/api/calls/{call['call_id']}/viewer")
                await page.wait_for_function("window.viewerStats && window.viewerStats.framesShown >= 1100",
                                             timeout=30_000)
                await page.wait_for_timeout(300)  # the last hashes are computed asynchronously
                counts = await page.evaluate("[window.viewerStats.framesShown, window.viewerStats.distinctHashes.size]")
                await browser.close()
                return counts[0], counts[1]
        finally:
            await handle.stop()

    assert asyncio.run(asyncio.wait_for(run(), 90)) == (1100, 1000)
