"""A real headless Chromium as the caller: fake camera from the real fire clip, fake microphone from espeak-ng.

The browser may talk to 127.0.0.1 only: every other request is aborted and fails the test.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import CHROMIUM_BASE_ARGS, free_port, poll
from tests.helpers_media import make_speech_wav, make_y4m
from tests.live_call import live_call
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings, verify_session

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.slow]

FIRE_CLIP = "video/firedetection_test1_outdoor_fire.mp4"
PHOTO = "photos/exif_orientation_Landscape_6.jpg"


@pytest.fixture(scope="session")
def fake_media(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> tuple[Path, Path]:
    """(y4m camera, WAV microphone), made once per test session."""
    if not (real_data / FIRE_CLIP).is_file():
        pytest.skip(f"real clip {FIRE_CLIP} not found")
    if shutil.which("ffmpeg") is None or shutil.which("espeak-ng") is None:
        pytest.skip("ffmpeg and espeak-ng are needed to make the fake camera and microphone")
    folder = tmp_path_factory.mktemp("fake-media")
    y4m = make_y4m(real_data / FIRE_CLIP, folder / "fire-640x480-15fps.y4m")
    wav = make_speech_wav("Hello, there is smoke coming from the house across the street.", folder / "voice.wav")
    return y4m, wav




def test_chromium_caller_video_audio_and_photo(
    tmp_path: Path, chromium_path: str, real_data: Path, fake_media: tuple[Path, Path]
) -> None:
    if not (real_data / PHOTO).is_file():
        pytest.skip(f"real photo {PHOTO} not found")
    asyncio.run(_chromium_caller(tmp_path, chromium_path, real_data / PHOTO, *fake_media))


async def _chromium_caller(tmp_path: Path, chromium: str, photo: Path, y4m: Path, wav: Path) -> None:
    from playwright.async_api import async_playwright

    root = tmp_path / "rec"
    foreign: list[str] = []

    async def guard(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            await route.continue_()
        else:
            foreign.append(route.request.url)
            await route.abort()

    async with live_call(root, call={"caller_label": "browser"}, connect=False, snapshot_interval_s=2.0) as live:
        cid, sid = live.cid, live.sid
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium,
                args=CHROMIUM_BASE_ARGS
                + [
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={y4m}",
                    f"--use-file-for-fake-audio-capture={wav}",
                    "--allow-loopback-in-peer-connection",
                ],
            )
            try:
                context = await browser.new_context()
                await context.route("**/*", guard)
                page = await context.new_page()
                response = await page.goto(live.call["caller_url"])
                assert response is not None and response.status == 200
                await page.click("#consent-accept")
                await page.wait_for_function("window.callerStatus === 'connected'", timeout=15_000)

                st = await poll(
                    live.status,
                    lambda s: s["frames_received"] >= 20 and s["audio_frames_received"] > 0 and s["snapshots"] >= 1,
                    20,
                    "video, audio and a snapshot from Chromium",
                )
                assert st["video_codec"] in ("VP8", "H264")
                assert (st["width"], st["height"]) == (640, 480)
                assert st["connected"] is True

                # The dispatcher's live viewer (another page) shows distinct frames of the moving fire.
                viewer = await context.new_page()
                await viewer.goto(f"{live.handle.url}/api/calls/{cid}/viewer")
                await viewer.wait_for_function("window.viewerStats && window.viewerStats.distinctHashes.size >= 5",
                                               timeout=10_000)
                shown = await viewer.evaluate("window.viewerStats.framesShown")
                assert shown >= 5

                # A real phone photo through the page's file input.
                await page.set_input_files("#photo-input", str(photo))
                await page.wait_for_function("window.photosSent === 1", timeout=10_000)
                assert "sent" in (await page.text_content("#photo-msg"))

                await page.click("#end")
                await page.wait_for_function("window.callerStatus === 'ended'", timeout=5_000)
                st = await poll(live.status, lambda s: s["state"] == "ended", 10, "the call to end after 'End video'")
            finally:
                await browser.close()
        assert not foreign, f"the browser tried to reach hosts other than 127.0.0.1: {foreign}"

        events = [json.loads(line) for line in (root / sid / "events.jsonl").read_text().splitlines()]
        types = [e["type"] for e in events if e["call_id"] == cid and e["type"] != "caller.connection"]
        assert types[:4] == ["call.created", "call.link_opened", "caller.permission", "webrtc.offer_received"]
        user_agent = next(e for e in events if e["type"] == "call.link_opened")["data"]["user_agent"]
        assert "Chrome" in user_agent
        first_frames = [i for i, t in enumerate(types) if t == "media.first_frame"]
        assert len(first_frames) == 2 and first_frames[0] > types.index("webrtc.offer_received")
        assert types.index("media.snapshot") > first_frames[0]
        assert types[-1] == "call.ended"
        assert next(e for e in events if e["type"] == "call.ended")["data"]["reason"] == "caller_hung_up"

        manifest = json.loads((root / sid / "manifest.json").read_text())["files"]
        snapshot = next(e["data"] for e in events if e["type"] == "media.snapshot")
        assert manifest[snapshot["file"]]["sha256"] == hashlib.sha256((root / sid / snapshot["file"]).read_bytes()).hexdigest()

        received = [e["data"] for e in events if e["type"] == "media.photo_received"]
        assert len(received) == 1
        original = photo.read_bytes()
        data = received[0]
        assert data["file_original"] == f"media/{cid}/photo-p1.jpg"
        assert data["sha256"] == hashlib.sha256(original).hexdigest() == manifest[data["file_original"]]["sha256"]
        assert (root / sid / data["file_original"]).read_bytes() == original
        assert data["client_filename"] == photo.name and data["image_format"] == "JPEG"
        assert (root / sid / data["file_display"]).is_file()
        ended = {e["data"]["kind"]: e["data"] for e in events if e["type"] == "media.stream_ended"}
        assert ended["video"]["frames_received"] >= 20 and ended["audio"]["frames_received"] > 0
    report = verify_session(root / sid)
    assert report.ok, report.problems


def test_camera_permission_denied_is_explained(tmp_path: Path, chromium_path: str) -> None:
    """Without the fake-UI flag Playwright's Chromium denies the camera: the page says so, and no offer is sent."""
    asyncio.run(_camera_denied(tmp_path, chromium_path))


async def _camera_denied(tmp_path: Path, chromium: str) -> None:
    from playwright.async_api import async_playwright

    root = tmp_path / "rec"
    handle = await start_ingest(IngestSettings(port=free_port(), recordings=root), Recordings(root))
    try:
        async with aiohttp.ClientSession() as api:
            async with api.post(handle.url + "/api/calls") as resp:
                call = await resp.json()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium, args=CHROMIUM_BASE_ARGS + ["--use-fake-device-for-media-stream"]
            )
            try:
                page = await (await browser.new_context()).new_page()
                await page.goto(call["caller_url"])
                await page.click("#consent-accept")
                await page.wait_for_function("!['consent', 'starting'].includes(window.callerStatus)", timeout=10_000)
                assert await page.evaluate("window.callerStatus") == "camera-denied"
                assert "blocked" in (await page.text_content("#status"))
                assert await page.is_visible("#start"), "the page offers to try again"
            finally:
                await browser.close()
        events = [json.loads(line) for line in (root / call["session_id"] / "events.jsonl").read_text().splitlines()]
        assert "webrtc.offer_received" not in [e["type"] for e in events]
    finally:
        await handle.stop()
