"""The dispatcher's prompts on the real caller page (headless Debian Chromium, "Pixel 7" emulation, fake camera):
``POST /api/calls/{call_id}/prompts`` -> the page's long poll -> a banner with the matching action -> the caller's
own events. Reuses the harness of tests/test_caller_page.py (ingest on loopback, 127.0.0.1-only guard, fake media).
The banner screenshot goes to /tmp/caller-shots/prompt.png.
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.test_caller_page import GEO, Lab, camera_args, fake_media, lab, phone, poll, shot  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.slow]

BANNER_WITHIN_S = 3.0
"""The banner must be on screen this soon after the dispatcher's POST, s."""


async def ask(the_lab: Lab, call_id: str, prompt: str, message: str = "") -> int:
    """POST one prompt as the console would; returns its prompt_id."""
    url = f"{the_lab.handle.url}/api/calls/{call_id}/prompts"
    async with the_lab.api.post(url, json={"prompt": prompt, "message": message}) as resp:
        assert resp.status == 201, await resp.text()
        return (await resp.json())["prompt_id"]


async def banner_for(page: Any, prompt_id: int) -> float:
    """Wait for the banner of ``prompt_id``; returns how long it took, s."""
    t0 = time.monotonic()
    await page.wait_for_function(f"window.promptShown === {prompt_id}", timeout=BANNER_WITHIN_S * 1000)
    assert await page.is_visible("#prompt")
    return time.monotonic() - t0


def test_prompts_show_as_banners_and_their_buttons_act(
    tmp_path: Path, chromium_path: str, fake_media: dict[str, Path]  # noqa: F811
) -> None:
    photo = tmp_path / "scene.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (180, 60, 30)).save(buf, "JPEG")
    photo.write_bytes(buf.getvalue())
    asyncio.run(_prompts(tmp_path, chromium_path, fake_media, photo))


async def _prompts(tmp_path: Path, chromium: str, media: dict[str, Path], photo: Path) -> None:
    from playwright.async_api import async_playwright

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call()
        cid, sid = call["call_id"], call["session_id"]
        browser = await pw.chromium.launch(executable_path=chromium, args=camera_args(media["fire"], media["wav"]))
        try:
            page = await phone(pw, browser, the_lab, geolocation=GEO, permissions=["geolocation", "camera", "microphone"])
            await page.goto(call["caller_url"])
            await page.click("#consent-accept")
            await page.wait_for_function("window.callerStatus === 'connected'", timeout=20_000)
            assert not await page.is_visible("#prompt")

            # 1. A photo: the banner's button opens the photo picker; the chosen photo reaches the ingest.
            pid = await ask(the_lab, cid, "photo")
            await banner_for(page, pid)
            assert await page.text_content("#prompt-action") == "Send a photo"
            async with page.expect_file_chooser() as chooser_info:
                await page.click("#prompt-action")
            chooser = await chooser_info.value
            assert not chooser.is_multiple()
            await chooser.set_files(str(photo))
            await page.wait_for_function("window.photosSent === 1", timeout=15_000)
            assert not await page.is_visible("#prompt"), "the banner is dismissed by its action"

            # 2. Switch camera, with the dispatcher's own words: screenshot, then the button switches.
            pid = await ask(the_lab, cid, "switch_camera", "Please show us the back of the house.")
            await banner_for(page, pid)
            assert await page.text_content("#prompt-text") == "Please show us the back of the house."
            assert await page.text_content("#prompt-action") == "Switch camera"
            assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            await shot(page, "prompt")
            await page.click("#prompt-action")
            await page.wait_for_function("window.cameraSwitches === 1", timeout=10_000)
            assert not await page.is_visible("#prompt")
            # The page reports the switch without waiting for the answer; the log order below needs it logged first.
            async def logged() -> list[dict]:
                return the_lab.events(sid, cid)

            await poll(logged, lambda evs: any(e["type"] == "caller.camera_switched" for e in evs), 10,
                       "the switch logged")

            # 3. "Not now" dismisses without acting.
            pid = await ask(the_lab, cid, "photo")
            await banner_for(page, pid)
            await page.click("#prompt-dismiss")
            assert not await page.is_visible("#prompt")
            assert await page.evaluate("window.photosSent") == 1

            # 4. End the video: the button hangs up; the poll stops with the call.
            pid = await ask(the_lab, cid, "end_video")
            await banner_for(page, pid)
            assert await page.text_content("#prompt-action") == "End video"
            await page.click("#prompt-action")
            await page.wait_for_function("window.callerStatus === 'ended'", timeout=10_000)
            await poll(lambda: the_lab.status(cid), lambda s: s["state"] == "ended", 10, "the call to end")
            assert not await page.is_visible("#prompt")
            assert await page.evaluate("window.promptsShown") == [1, 2, 3, 4]
            await asyncio.sleep(1.0)  # a poll still running would now be refused (call.link_refused)
        finally:
            await browser.close()

        events = the_lab.events(sid, cid)
        types = [e["type"] for e in events]
        asked = [e["data"] for e in events if e["type"] == "dispatcher.prompt"]
        assert [(a["prompt_id"], a["prompt"]) for a in asked] == [
            (1, "photo"), (2, "switch_camera"), (3, "photo"), (4, "end_video")]
        delivered = [e["data"] for e in events if e["type"] == "caller.prompt_delivered"]
        assert [d["prompt_id"] for d in delivered] == [1, 2, 3, 4]
        assert all(0 <= d["ms_since_prompt"] < BANNER_WITHIN_S * 1000 for d in delivered)
        # Each action follows its delivery in the log.
        first = {n: types.index(n) for n in ("media.photo_received", "caller.camera_switched")}
        seq_of = {d["prompt_id"]: i for i, e in enumerate(events) if e["type"] == "caller.prompt_delivered"
                  for d in [e["data"]]}
        assert seq_of[1] < first["media.photo_received"] < seq_of[2] < first["caller.camera_switched"] < seq_of[3]
        switched = [e["data"] for e in events if e["type"] == "caller.camera_switched"]
        assert len(switched) == 1 and switched[0]["ok"] is True
        assert types.count("media.photo_received") == 1
        assert types[-1] == "call.ended" and events[-1]["data"]["reason"] == "caller_hung_up"
        refused = [e for e in events if e["type"] == "call.link_refused"]
        assert refused == [], "the page stops polling once the call has ended"


def test_prompt_poll_backs_off_on_errors_with_one_request_in_flight(
    tmp_path: Path, chromium_path: str, fake_media: dict[str, Path]  # noqa: F811
) -> None:
    asyncio.run(_backoff(tmp_path, chromium_path, fake_media))


async def _backoff(tmp_path: Path, chromium: str, media: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    failing = 3
    starts: list[float] = []
    in_flight = [0, 0]  # now, most

    async def flaky(route: Any) -> None:
        starts.append(time.monotonic())
        if len(starts) <= failing:
            await route.abort("connectionreset")  # the network drops the poll: the page must back off
        else:
            await route.fallback()  # on to the 127.0.0.1-only guard

    def opened(request: Any) -> None:
        if "/prompts?" in request.url:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)

    def closed(request: Any) -> None:
        if "/prompts?" in request.url:
            in_flight[0] -= 1

    async with lab(tmp_path) as the_lab, async_playwright() as pw:
        call = await the_lab.new_call()
        cid, sid = call["call_id"], call["session_id"]
        browser = await pw.chromium.launch(executable_path=chromium, args=camera_args(media["fire"], media["wav"]))
        try:
            page = await phone(pw, browser, the_lab, permissions=["camera", "microphone"])
            await page.route("**/prompts?*", flaky)
            page.on("request", opened)
            page.on("requestfinished", closed)
            page.on("requestfailed", closed)
            await page.goto(call["caller_url"])
            assert starts == [], "no polling before consent"
            await page.click("#consent-accept")
            await poll(lambda: asyncio.sleep(0, len(starts)), lambda n: n > failing, 15, "the poll after 3 errors")
            pid = await ask(the_lab, cid, "switch_camera")
            await banner_for(page, pid)
            await page.click("#prompt-dismiss")
            await asyncio.sleep(0.5)
            await page.click("#end")
            await page.wait_for_function("window.callerStatus === 'ended'", timeout=10_000)
            await asyncio.sleep(1.5)
            polls_at_end = len(starts)
            await asyncio.sleep(2.0)
        finally:
            await browser.close()

        gaps = [b - a for a, b in zip(starts, starts[1:])][:failing]
        assert [round(g) for g in gaps] == [1, 2, 4], f"backoff 1, 2, 4 s after each error; gaps {gaps}"
        assert in_flight[1] == 1, "never more than one prompt request in flight"
        assert len(starts) == polls_at_end, "no polling once the call has ended"
        types = [e["type"] for e in the_lab.events(sid, cid)]
        assert types.count("caller.prompt_delivered") == 1 and "call.link_refused" not in types
