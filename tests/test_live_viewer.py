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
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.conftest import CHROMIUM_BASE_ARGS, free_port
from tests.helpers_media import MovingPatternTrack, ToneTrack
from tests.test_ingest_webrtc import Caller, poll
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.slow]


class PortraitCaller(Caller):
    async def connect(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video, self.audio = MovingPatternTrack(480, 640, 15), ToneTrack()
        pc.addTrack(self.video)
        pc.addTrack(self.audio)
        await pc.setLocalDescription(await pc.createOffer())
        async with self.http.post(self.caller_url + "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}) as r:
            body = await r.json()
        await pc.setRemoteDescription(RTCSessionDescription(**body))
        self.pc = pc
        return pc


def test_viewer_fits_portrait_video_and_measures_its_latency(tmp_path: Path, chromium_path: str) -> None:
    asyncio.run(_viewer(tmp_path, chromium_path))


async def _viewer(tmp_path: Path, chromium: str) -> None:
    from playwright.async_api import async_playwright

    root = tmp_path / "rec"
    settings = IngestSettings(port=free_port(), recordings=root, ice_mode="loopback", viewer_fps=15)
    handle = await start_ingest(settings, Recordings(root))
    api = aiohttp.ClientSession()
    caller = None
    foreign: list[str] = []

    async def guard(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            foreign.append(route.request.url)
            await route.abort()

    try:
        async with api.post(handle.url + "/api/calls", json={}) as resp:
            call = await resp.json()
        cid = call["call_id"]

        async def status() -> dict[str, Any]:
            async with api.get(f"{handle.url}/api/calls/{cid}") as resp:
                return await resp.json()

        caller = PortraitCaller(call["caller_url"])
        await caller.open()
        await caller.connect()
        await poll(status, lambda s: s["frames_received"] > 10, 20, "portrait frames")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_BASE_ARGS)
            try:
                context = await browser.new_context(viewport={"width": 800, "height": 600})
                await context.route("**/*", guard)
                page = await context.new_page()
                await page.goto(f"{handle.url}/api/calls/{cid}/viewer")
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
    finally:
        if caller is not None:
            await caller.close()
        await api.close()
        await handle.stop()
