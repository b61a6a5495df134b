"""The caller page in real headless Chromium under phone emulation (Playwright's "Pixel 7" and "iPhone 13"
descriptors: viewport, device scale, touch, mobile user agent): consent, camera switch, gallery upload of several
photos, geolocation, refused camera and location, automatic reconnect after a network drop, HTTPS with a generated
lab certificate, a portrait camera arriving upright, and VP8 and H264 forced on the caller's side.

Emulation is not a phone: the cameras are Chromium's fake devices fed from y4m files (a "switch" reopens the same
file), the OS permission dialogs are Chromium's, and no iOS Safari (WebKit) runs here. Every browser may talk to
127.0.0.1 only: any other request is aborted and fails the test. Screenshots go to /tmp/caller-shots/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import cv2
import numpy as np
import pytest

from tests.conftest import CHROMIUM_BASE_ARGS, free_port, poll
from tests.helpers_media import make_speech_wav, make_y4m
from workbench.ingest.server import IngestHandle, start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings, verify_session

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.slow]

FIRE_CLIP = "video/firedetection_test1_outdoor_fire.mp4"
GALLERY = [
    "photos/exif_orientation_Landscape_6.jpg",
    "photos/heic_iphone8plus_arrow_irot_exif6.heic",
    "photos/jpeg_gps_nikon_coolpix_p6000_DSCN0010.jpg",
]
SHOTS = Path("/tmp/caller-shots")
GEO = {"latitude": 52.0907, "longitude": 5.1214, "accuracy": 35}
"""Utrecht Centraal, as the emulated phone's position (Playwright context geolocation)."""


# --- media ---------------------------------------------------------------------------------------------------------


def write_portrait_y4m(target: Path, *, width: int = 480, height: int = 640, fps: int = 15, seconds: float = 6) -> Path:
    """A portrait y4m whose orientation can be read back: a white band across the top 15% of the rows, a black band
    across the bottom 15%, a green block at the left edge (catches mirroring), mid-grey elsewhere with a square
    moving down the middle (every frame differs). 4:2:0, BT.601 limited range as Chromium's fake camera reads it."""
    if target.exists():
        return target
    y = np.full((height, width), 128, np.uint8)
    u = np.full((height // 2, width // 2), 128, np.uint8)
    v = np.full((height // 2, width // 2), 128, np.uint8)
    band = int(height * 0.15)
    y[:band] = 235
    y[-band:] = 16
    block = slice(height // 2 - 40, height // 2 + 40)
    y[block, : width // 6] = 145  # green: Y 145, U 54, V 34
    u[height // 4 - 20 : height // 4 + 20, : width // 12] = 54
    v[height // 4 - 20 : height // 4 + 20, : width // 12] = 34
    frames = []
    for n in range(int(fps * seconds)):
        yy = y.copy()
        top = band + (n * 6) % (height - 2 * band - 40)
        yy[top : top + 40, width // 2 - 20 : width // 2 + 20] = 60
        frames.append(b"FRAME\n" + yy.tobytes() + u.tobytes() + v.tobytes())
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode() + b"".join(frames))
    tmp.rename(target)
    return target


@pytest.fixture(scope="module")
def fake_media(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> dict[str, Path]:
    """Fake camera files (fire clip 640x480, portrait 480x640) and a spoken WAV, made once per module."""
    if not (real_data / FIRE_CLIP).is_file():
        pytest.skip(f"real clip {FIRE_CLIP} not found")
    if shutil.which("ffmpeg") is None or shutil.which("espeak-ng") is None:
        pytest.skip("ffmpeg and espeak-ng are needed to make the fake camera and microphone")
    folder = tmp_path_factory.mktemp("caller-media")
    return {
        "fire": make_y4m(real_data / FIRE_CLIP, folder / "fire-640x480-15fps.y4m"),
        "portrait": write_portrait_y4m(folder / "portrait-480x640.y4m"),
        "wav": make_speech_wav("There is smoke coming out of the house across the street.", folder / "voice.wav"),
    }


# --- harness ----------------------------------------------------------------------------------------------------------




class Lab:
    """A running ingest, an API client, and the hosts the browsers tried to reach besides 127.0.0.1."""

    def __init__(self, handle: IngestHandle, root: Path, ssl: Any = None) -> None:
        self.handle, self.root, self.ssl = handle, root, ssl
        self.api = aiohttp.ClientSession()
        self.foreign: list[str] = []

    async def new_call(self, **body: Any) -> dict[str, Any]:
        async with self.api.post(self.handle.url + "/api/calls", json=body, ssl=self.ssl) as resp:
            assert resp.status == 201
            return await resp.json()

    async def status(self, call_id: str) -> dict[str, Any]:
        async with self.api.get(f"{self.handle.url}/api/calls/{call_id}", ssl=self.ssl) as resp:
            return await resp.json()

    def events(self, session_id: str, call_id: str) -> list[dict[str, Any]]:
        lines = (self.root / session_id / "events.jsonl").read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["call_id"] == call_id]

    async def guard(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            self.foreign.append(url)
            await route.abort()


@asynccontextmanager
async def lab(tmp_path: Path, **settings_kw: Any) -> AsyncIterator[Lab]:
    root = tmp_path / "rec"
    settings = IngestSettings(port=free_port(), recordings=root, ice_mode="loopback", **settings_kw)
    handle = await start_ingest(settings, Recordings(root))
    the_lab = Lab(handle, root, ssl=False if settings.tls_cert else None)
    try:
        yield the_lab
    finally:
        await the_lab.api.close()
        await handle.stop()
    assert not the_lab.foreign, f"the browser tried to reach hosts other than 127.0.0.1: {the_lab.foreign}"
    for sid in [p.name for p in root.iterdir() if p.is_dir()]:
        report = verify_session(root / sid)
        assert report.ok, report.problems


def camera_args(y4m: Path, wav: Path, *, grant: bool = True) -> list[str]:
    args = CHROMIUM_BASE_ARGS + [
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
        f"--use-file-for-fake-audio-capture={wav}",
        "--allow-loopback-in-peer-connection",
    ]
    return args + (["--use-fake-ui-for-media-stream"] if grant else [])


async def phone(pw: Any, browser: Any, the_lab: Lab, device: str = "Pixel 7", **context_kw: Any) -> Any:
    """A new page in a context emulating ``device``, with the 127.0.0.1-only guard."""
    descriptor = {k: v for k, v in pw.devices[device].items() if k != "default_browser_type"}
    context = await browser.new_context(**descriptor, **context_kw)
    await context.route("**/*", the_lab.guard)
    return await context.new_page()


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def received_frame(the_lab: Lab, call_id: str) -> np.ndarray:
    async with the_lab.api.get(f"{the_lab.handle.url}/api/calls/{call_id}/frame.jpg", ssl=the_lab.ssl) as resp:
        assert resp.status == 200
        data = await resp.read()
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


# --- tests -------------------------------------------------------------------------------------------------------------


def test_mobile_caller_consent_switch_gallery_location_and_end(
    tmp_path: Path, chromium_path: str, real_data: Path, fake_media: dict[str, Path]
) -> None:
    gallery = [real_data / p for p in GALLERY]
    if not all(p.is_file() for p in gallery):
        pytest.skip("real photos not found")
    asyncio.run(_mobile_caller(tmp_path, chromium_path, gallery, fake_media))


async def _mobile_caller(tmp_path: Path, chromium: str, gallery: list[Path], media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call()
        cid, sid = call["call_id"], call["session_id"]
        browser = await pw.chromium.launch(executable_path=chromium, args=camera_args(media["fire"], media["wav"]))
        try:
            # Granting one permission denies the others unless listed; a page without camera permission gets only
            # mDNS (.local) host candidates from Chromium, which loopback ICE drops.
            page = await phone(pw, browser, the_lab, geolocation=GEO, permissions=["geolocation", "camera", "microphone"])
            response = await page.goto(call["caller_url"])
            assert response is not None and response.status == 200

            # Consent first: nothing is asked or sent before the caller agrees.
            assert await page.is_visible("#consent") and not await page.is_visible("#main")
            assert "research exercise" in await page.text_content("#consent")
            assert await page.evaluate("window.callerStatus") == "consent"
            await shot(page, "1-consent-pixel7")
            assert [e["type"] for e in the_lab.events(sid, cid)] == ["call.created", "call.link_opened"]
            # The page fits the phone's width (no sideways scrolling).
            assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'connected'", timeout=20_000)
            st = await poll(lambda: the_lab.status(cid), lambda s: s["frames_received"] >= 15, 20, "video frames")
            assert (st["width"], st["height"]) == (640, 480)
            await shot(page, "2-connected-pixel7")

            # Back <-> front camera: the same peer connection, the track replaced, frames keep coming.
            assert await page.evaluate("window.facingMode") in ("environment", "user")
            before = st["frames_received"]
            await page.click("#switch-camera")
            await page.wait_for_function("window.cameraSwitches === 1", timeout=10_000)
            await poll(lambda: the_lab.status(cid), lambda s: s["frames_received"] >= before + 20, 20,
                       "frames after the camera switch")
            assert await page.evaluate("window.callerAttempt") == 1, "a camera switch needs no new offer"

            # Location (the emulated phone's position), reported with its accuracy.
            await page.click("#share-location")
            await page.wait_for_function("window.callerLocation !== undefined", timeout=10_000)
            assert "within about 35 m" in await page.text_content("#location-msg")

            # Several photos from the gallery at once (a JPEG, an iPhone HEIC and a JPEG with GPS).
            await page.set_input_files("#gallery-input", [str(p) for p in gallery])
            await page.wait_for_function("window.photosSent === 3", timeout=20_000)
            assert "3 photos sent" in await page.text_content("#photo-msg")
            await shot(page, "3-photos-location-pixel7")

            await page.click("#end")
            await page.wait_for_function("window.callerStatus === 'ended'", timeout=10_000)
            await poll(lambda: the_lab.status(cid), lambda s: s["state"] == "ended", 10, "the call to end")
            await shot(page, "4-ended-pixel7")
        finally:
            await browser.close()

        events = the_lab.events(sid, cid)
        types = [e["type"] for e in events]
        caller = [(e["type"], e["data"]) for e in events if e["source"] == "caller"]
        permissions = [d for t, d in caller if t == "caller.permission"]
        assert [(p["permission"], p["outcome"]) for p in permissions] == [
            ("camera_microphone", "granted"), ("geolocation", "granted")]
        assert permissions[0]["ms_since_page_load"] > 0
        assert types.index("caller.permission") < types.index("webrtc.offer_received") < types.index("media.first_frame")
        connections = [d for t, d in caller if t == "caller.connection"]
        assert connections[0] == {"state": "connected", "attempt": 1}
        switched = [d for t, d in caller if t == "caller.camera_switched"]
        assert len(switched) == 1 and switched[0]["facing_mode"] == "user" and switched[0]["ok"] is True
        geo = next(d for t, d in caller if t == "caller.geolocation")
        assert geo["latitude"] == pytest.approx(GEO["latitude"]) and geo["longitude"] == pytest.approx(GEO["longitude"])
        assert geo["accuracy_m"] == pytest.approx(35)
        photos = [e["data"] for e in events if e["type"] == "media.photo_received"]
        assert [p["client_filename"] for p in photos] == [p.name for p in gallery]
        assert [p["image_format"] for p in photos] == ["JPEG", "HEIF", "JPEG"]
        assert [(p["width"], p["height"]) for p in photos][:2] == [(1800, 1200), (1536, 2048)], "display copies upright"
        metadata = [e["data"] for e in events if e["type"] == "media.photo_metadata"]
        assert [m["has_gps"] for m in metadata] == [False, False, True]
        assert types.count("webrtc.offer_received") == 1
        assert types[-1] == "call.ended" and events[-1]["data"]["reason"] == "caller_hung_up"


def test_refused_camera_and_location_are_explained(
    tmp_path: Path, chromium_path: str, real_data: Path, fake_media: dict[str, Path]
) -> None:
    photo = real_data / GALLERY[0]
    if not photo.is_file():
        pytest.skip("real photo not found")
    asyncio.run(_refused(tmp_path, chromium_path, photo, fake_media))


async def _refused(tmp_path: Path, chromium: str, photo: Path, media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call()
        cid, sid = call["call_id"], call["session_id"]
        # No fake-UI flag and no granted permissions: Chromium refuses the camera and the location, as a person
        # tapping "Block" would.
        browser = await pw.chromium.launch(
            executable_path=chromium, args=camera_args(media["fire"], media["wav"], grant=False)
        )
        try:
            page = await phone(pw, browser, the_lab, device="iPhone 13")
            await page.goto(call["caller_url"])
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'camera-denied'", timeout=10_000)
            text = await page.text_content("#status")
            assert "blocked" in text and "Start video" in text and "still send photos" in text
            assert await page.is_visible("#start"), "the page offers to try again"
            assert await page.evaluate("window.callerAttempt") == 0, "no offer without a camera"
            await shot(page, "5-camera-denied-iphone13")

            await page.set_input_files("#photo-input", str(photo))
            await page.wait_for_function("window.photosSent === 1", timeout=10_000)
            await page.click("#share-location")
            await page.wait_for_function("document.getElementById('location-msg').textContent.includes('blocked')",
                                         timeout=10_000)
            # The page reports without waiting (a lost report must not disturb the call): wait for it here.
            await poll(lambda: asyncio.sleep(0, the_lab.events(sid, cid)),
                       lambda evs: sum(e["type"] == "caller.permission" for e in evs) >= 2, 10,
                       "the refused location to be reported")
        finally:
            await browser.close()
        events = the_lab.events(sid, cid)
        permissions = [e["data"] for e in events if e["type"] == "caller.permission"]
        assert [(p["permission"], p["outcome"], p["error_name"]) for p in permissions] == [
            ("camera_microphone", "denied", "NotAllowedError"), ("geolocation", "denied", "PERMISSION_DENIED")]
        assert "webrtc.offer_received" not in [e["type"] for e in events]
        assert [e["type"] for e in events].count("media.photo_received") == 1


def test_photo_call_shares_the_microphone_only(tmp_path: Path, chromium_path: str, fake_media: dict[str, Path]) -> None:
    asyncio.run(_photo_call(tmp_path, chromium_path, fake_media))


async def _photo_call(tmp_path: Path, chromium: str, media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call(modality="photo")
        cid, sid = call["call_id"], call["session_id"]
        browser = await pw.chromium.launch(executable_path=chromium, args=camera_args(media["fire"], media["wav"]))
        try:
            page = await phone(pw, browser, the_lab)
            await page.goto(call["caller_url"])
            assert await page.text_content("#consent-accept") == "I agree: continue"
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'connected'", timeout=20_000)
            assert "can hear you" in await page.text_content("#status")
            assert not await page.is_visible("#switch-camera") and not await page.is_visible("#video-wrap")
            await poll(lambda: the_lab.status(cid), lambda s: s["audio_frames_received"] >= 20, 20, "audio")
            await shot(page, "8-photo-call-pixel7")
        finally:
            await browser.close()
        events = the_lab.events(sid, cid)
        offer = next(e["data"] for e in events if e["type"] == "webrtc.offer_received")
        assert offer["video_codec"] == "" and offer["has_audio"] is True, "no live video in a photo call"
        permission = next(e["data"] for e in events if e["type"] == "caller.permission")
        assert (permission["permission"], permission["outcome"]) == ("microphone", "granted")


def test_offers_that_never_connect_end_in_a_clear_message(
    tmp_path: Path, chromium_path: str, fake_media: dict[str, Path]
) -> None:
    """Chromium hides its addresses behind mDNS names while the page has no camera *permission* (here: the context
    grants only geolocation, the fake UI still hands out the camera). Loopback ICE drops those candidates, so
    nothing connects: the page retries a bounded number of times, then says so, instead of "Connecting…" forever."""
    asyncio.run(_never_connects(tmp_path, chromium_path, fake_media))


async def _never_connects(tmp_path: Path, chromium: str, media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call()
        cid, sid = call["call_id"], call["session_id"]
        browser = await pw.chromium.launch(executable_path=chromium, args=camera_args(media["fire"], media["wav"]))
        try:
            page = await phone(pw, browser, the_lab, geolocation=GEO, permissions=["geolocation"])
            await page.add_init_script("window.CALLER_CONNECT_TIMEOUT_MS = 2000;")
            await page.goto(call["caller_url"])
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'failed'", timeout=40_000)
            assert "Could not connect" in await page.text_content("#status") and await page.is_visible("#start")
            assert await page.evaluate("window.callerAttempt") == 3
            await shot(page, "9-never-connects-pixel7")
        finally:
            await browser.close()
        events = the_lab.events(sid, cid)
        offers = [e["data"]["attempt"] for e in events if e["type"] == "webrtc.offer_received"]
        assert offers == [1, 2, 3]
        assert [e["data"]["state"] for e in events if e["type"] == "caller.connection"][-1] == "failed"
        assert "media.first_frame" not in [e["type"] for e in events]


@pytest.mark.skipif(os.environ.get("WORKBENCH_NETNS") != "1" or shutil.which("ip") is None,
                    reason="takes the loopback interface down: only inside scripts/netns-run's private namespace")
def test_automatic_reconnect_after_a_network_drop(tmp_path: Path, chromium_path: str, fake_media: dict[str, Path]) -> None:
    asyncio.run(_reconnect(tmp_path, chromium_path, fake_media))


def _set_loopback(up: bool) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up" if up else "down"], check=True, timeout=10)


async def _reconnect(tmp_path: Path, chromium: str, media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call()
        cid, sid = call["call_id"], call["session_id"]
        browser = await pw.chromium.launch(executable_path=chromium, args=camera_args(media["fire"], media["wav"]))
        try:
            page = await phone(pw, browser, the_lab)
            await page.goto(call["caller_url"])
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'connected'", timeout=20_000)
            await poll(lambda: the_lab.status(cid), lambda s: s["frames_received"] >= 10, 20, "video frames")

            # The network drops for 8 s: the only interface of this namespace goes down, then comes back.
            _set_loopback(False)
            try:
                await page.wait_for_function("window.callerStatus === 'reconnecting'", timeout=30_000)
                await shot(page, "6-reconnecting-pixel7")
                await asyncio.sleep(8)
            finally:
                _set_loopback(True)
            await page.wait_for_function("window.callerStatus === 'connected' && window.callerAttempt >= 2",
                                         timeout=40_000)
            st = await the_lab.status(cid)
            before = st["frames_received"]
            st = await poll(lambda: the_lab.status(cid), lambda s: s["frames_received"] >= before + 15, 20,
                            "frames after the reconnect")
            assert st["state"] == "connected" and st["connected"] is True
        finally:
            await browser.close()
        events = the_lab.events(sid, cid)
        types = [e["type"] for e in events]
        assert "call.ended" not in types[:-1] and types.count("webrtc.offer_received") >= 2
        offers = [e["data"]["attempt"] for e in events if e["type"] == "webrtc.offer_received"]
        assert offers == list(range(1, len(offers) + 1))
        states = [e["data"]["state"] for e in events if e["type"] == "caller.connection"]
        assert states[0] == "connected" and "reconnecting" in states and states[-1] == "connected"
        assert types.count("media.first_frame") >= 2, "the new connection's streams were received"


def test_caller_over_https_with_a_generated_lab_certificate(
    tmp_path: Path, chromium_path: str, fake_media: dict[str, Path]
) -> None:
    asyncio.run(_tls(tmp_path, chromium_path, fake_media))


async def _tls(tmp_path: Path, chromium: str, media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    from workbench.ingest.tls import ensure_lab_certificate, lab_names

    cert = ensure_lab_certificate(tmp_path / "tls", lab_names("127.0.0.1"))
    async with lab(tmp_path, tls_cert=cert.cert, tls_key=cert.key) as the_lab, async_playwright() as pw:
        assert the_lab.handle.url.startswith("https://")
        call = await the_lab.new_call()
        assert call["caller_url"].startswith("https://127.0.0.1:")
        cid = call["call_id"]
        args = camera_args(media["fire"], media["wav"]) + ["--ignore-certificate-errors"]
        browser = await pw.chromium.launch(executable_path=chromium, args=args)
        try:
            page = await phone(pw, browser, the_lab)
            await page.goto(call["caller_url"])
            assert await page.evaluate("window.isSecureContext") is True
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'connected'", timeout=20_000)
            await poll(lambda: the_lab.status(cid), lambda s: s["frames_received"] >= 15, 20, "video over HTTPS")
            cookies = await page.context.cookies()
            assert any(c["name"] == "wb_caller" and c["secure"] and c["httpOnly"] for c in cookies)
        finally:
            await browser.close()


def test_portrait_camera_arrives_upright(tmp_path: Path, chromium_path: str, fake_media: dict[str, Path]) -> None:
    asyncio.run(_portrait(tmp_path, chromium_path, fake_media))


async def _portrait(tmp_path: Path, chromium: str, media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call()
        cid = call["call_id"]
        browser = await pw.chromium.launch(executable_path=chromium, args=camera_args(media["portrait"], media["wav"]))
        try:
            page = await phone(pw, browser, the_lab)
            await page.goto(call["caller_url"])
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'connected'", timeout=20_000)
            st = await poll(lambda: the_lab.status(cid), lambda s: s["frames_received"] >= 15, 20, "portrait video")
            await shot(page, "7-portrait-pixel7")
            frame = await received_frame(the_lab, cid)
        finally:
            await browser.close()
    assert (st["width"], st["height"]) == (480, 640), "portrait stays portrait (no rotation, no crop)"
    assert frame.shape[:2] == (640, 480)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(float)
    top, bottom = grey[: int(640 * 0.12)].mean(), grey[-int(640 * 0.12) :].mean()
    assert top > 200 and bottom < 50, f"upright: white band on top ({top:.0f}), black at the bottom ({bottom:.0f})"
    b, g, r = frame[300:340, 5:60].reshape(-1, 3).mean(axis=0)
    assert g > r + 40 and g > b + 40, f"not mirrored: the green block is on the left (BGR {b:.0f},{g:.0f},{r:.0f})"


FORCE_CODEC = """
(() => {
  const wanted = %s;
  const original = RTCPeerConnection.prototype.createOffer;
  RTCPeerConnection.prototype.createOffer = function (...args) {
    const caps = RTCRtpReceiver.getCapabilities("video").codecs;
    const only = caps.filter((c) => c.mimeType.toLowerCase() === "video/" + wanted.toLowerCase());
    if (!only.length) throw new Error("this Chromium has no " + wanted);
    for (const t of this.getTransceivers()) {
      if (t.sender.track && t.sender.track.kind === "video") t.setCodecPreferences(only);
    }
    return original.apply(this, args);
  };
})();
"""
"""Init script: the page's video transceiver offers only the given codec (as iOS Safari offers H264 only)."""


@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_chromium_caller_with_forced_codec(
    codec: str, tmp_path: Path, chromium_path: str, fake_media: dict[str, Path]
) -> None:
    asyncio.run(_forced_codec(codec, tmp_path, chromium_path, fake_media))


async def _forced_codec(codec: str, tmp_path: Path, chromium: str, media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call()
        cid, sid = call["call_id"], call["session_id"]
        browser = await pw.chromium.launch(executable_path=chromium, args=camera_args(media["portrait"], media["wav"]))
        try:
            page = await phone(pw, browser, the_lab)
            has = await page.evaluate(
                "(c) => RTCRtpSender.getCapabilities('video').codecs.some(x => x.mimeType === 'video/' + c)", codec)
            if not has:
                pytest.skip(f"this Chromium cannot send {codec}")
            await page.add_init_script(FORCE_CODEC % json.dumps(codec))
            await page.goto(call["caller_url"])
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'connected'", timeout=20_000)
            st = await poll(lambda: the_lab.status(cid), lambda s: s["frames_received"] >= 15, 20, f"{codec} video")
            frame = await received_frame(the_lab, cid)
        finally:
            await browser.close()
    assert st["video_codec"] == codec
    assert (st["width"], st["height"]) == (480, 640)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(float)
    assert grey[:60].mean() > 200 and grey[-60:].mean() < 50, "decoded upright"
    first = next(e for e in the_lab.events(sid, cid) if e["type"] == "media.first_frame" and e["data"]["kind"] == "video")
    assert first["data"]["codec"] == codec
