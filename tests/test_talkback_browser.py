"""Talk-back between two real headless Chromiums: a caller page (Chromium's fake camera and microphone) and the
dispatcher's live view (``?mode=webrtc``) whose fake microphone plays an espeak-ng WAV. The caller's page measures
the dispatcher's voice with WebAudio: silence until the dispatcher presses "Talk to caller", then speech; the
recording holds video, the caller's audio and the dispatcher's voice (ffprobe: two Opus tracks). Any request to a
host other than 127.0.0.1 fails the test."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import numpy as np
import pytest

from tests.conftest import CHROMIUM_BASE_ARGS, poll
from tests.helpers_media import make_speech_wav
from tests.live_call import live_call
from tests.test_ingest_webrtc import events_of
from tests.test_talkback import first_channel

pytestmark = [pytest.mark.browser, pytest.mark.webrtc, pytest.mark.slow]

SCREENSHOTS = Path("/tmp/talkback-shots")


def test_dispatcher_in_chromium_talks_to_a_chromium_caller(tmp_path: Path, chromium_path: str) -> None:
    if shutil.which("espeak-ng") is None or shutil.which("ffprobe") is None:
        pytest.skip("espeak-ng (the dispatcher's fake microphone) and ffprobe are needed")
    wav = make_speech_wav("This is the control room. Stay where you are, help is on the way. Is anyone hurt?",
                          tmp_path / "dispatcher.wav")
    asyncio.run(_talk(tmp_path, chromium_path, wav))


async def _talk(tmp_path: Path, chromium: str, wav: Path) -> None:
    from playwright.async_api import async_playwright

    root = tmp_path / "rec"
    foreign: list[str] = []

    async def guard(route: Any) -> None:
        if route.request.url.startswith(("data:", "blob:")) or urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            foreign.append(route.request.url)
            await route.abort()

    common = CHROMIUM_BASE_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                   "--allow-loopback-in-peer-connection"]
    async with live_call(root, session={"participant": "p03", "talkback": True}, connect=False) as live:
        sid, cid = live.sid, live.cid
        async with async_playwright() as pw:
            caller_browser = await pw.chromium.launch(executable_path=chromium, args=common)
            dispatcher_browser = await pw.chromium.launch(
                executable_path=chromium, args=common + [f"--use-file-for-fake-audio-capture={wav}"])
            try:
                caller_ctx = await caller_browser.new_context(viewport={"width": 412, "height": 860})
                await caller_ctx.route("**/*", guard)
                caller = await caller_ctx.new_page()
                await caller.goto(live.call["caller_url"])
                await caller.click("#consent-accept")
                await caller.wait_for_function("window.callerStatus === 'connected'", timeout=20_000)
                await caller.wait_for_function("window.talkbackStats.tracks >= 1", timeout=10_000)
                await poll(live.status, lambda s: s["frames_received"] > 10, 20, "the caller's video")

                viewer_ctx = await dispatcher_browser.new_context(viewport={"width": 800, "height": 640})
                await viewer_ctx.route("**/*", guard)
                viewer = await viewer_ctx.new_page()
                # The URL the console's iframe opens (no ?mode): a talk-back session gets the WebRTC relay.
                await viewer.goto(f"{live.handle.url}/api/calls/{cid}/viewer")
                await viewer.wait_for_function("window.viewerStats.connected && window.viewerTalk.microphone",
                                               timeout=20_000)
                await viewer.wait_for_selector("#talk:not([disabled])", timeout=10_000)
                assert await viewer.inner_text("#talk") == "Talk to caller"
                await poll(live.status, lambda s: s["talkback"]["microphone_frames"] > 50, 20,
                           "the dispatcher's microphone")

                # Talk off: the caller's page measures silence (the ingest sends zeros), although the mic is live.
                await asyncio.sleep(1.5)
                before = await caller.evaluate("({...window.talkbackStats})")
                assert before["loudMs"] == 0 and before["peakRms"] < 0.001, before

                await viewer.click("#talk")
                await viewer.wait_for_function("window.viewerTalk.on === true", timeout=10_000)
                assert await viewer.inner_text("#talk") == "Stop talking"
                await caller.wait_for_function("window.talkbackStats.loudMs > 1500", timeout=20_000)
                heard = await caller.evaluate("({...window.talkbackStats})")
                await caller.wait_for_selector("#dispatcher-speaking:not([hidden])", timeout=10_000)
                SCREENSHOTS.mkdir(exist_ok=True)
                await caller.screenshot(path=str(SCREENSHOTS / "talkback-caller.png"))
                await viewer.screenshot(path=str(SCREENSHOTS / "talkback-dispatcher.png"))

                await viewer.click("#talk")
                await viewer.wait_for_function("window.viewerTalk.on === false && window.viewerTalk.changes === 2",
                                               timeout=10_000)
                await asyncio.sleep(1.0)
                loud_after_off = (await caller.evaluate("window.talkbackStats.loudMs"))
                await asyncio.sleep(1.5)
                assert await caller.evaluate("window.talkbackStats.loudMs") - loud_after_off < 300, \
                    "the caller still hears the dispatcher after 'Stop talking'"

                await caller.click("#end")
                await poll(live.status, lambda s: s["state"] == "ended", 20, "the call to end")
            finally:
                await caller_browser.close()
                await dispatcher_browser.close()

    assert heard["playing"] is True and heard["peakRms"] > 0.02, heard
    assert not foreign, f"requests to other hosts: {foreign}"
    events = events_of(root, sid)
    talks = [(e["source"], e["data"]["on"], e["data"]["origin"]) for e in events if e["type"] == "dispatcher.talk"]
    assert talks == [("console", True, "toggle"), ("console", False, "toggle")], talks

    segment = sorted((root / sid / "media" / cid).glob("rec-*.mkv"))[0]
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(segment)],
                                      capture_output=True, text=True, check=True).stdout)
    kinds = [(s["codec_type"], s["codec_name"], s.get("tags", {}).get("title", "")) for s in probe["streams"]]
    assert kinds == [("video", "h264", ""), ("audio", "opus", "caller"), ("audio", "opus", "dispatcher")], kinds
    with av.open(str(segment)) as container:
        caller_pcm = np.concatenate([first_channel(f) for f in container.decode(container.streams.audio[0])])
    with av.open(str(segment)) as container:
        talk_pcm = np.concatenate([first_channel(f) for f in container.decode(container.streams.audio[1])])
    # Both directions hold sound: Chromium's fake microphone beeps on the caller's side, the WAV speaks on ours.
    assert np.sqrt(np.mean(caller_pcm ** 2)) > 0.005
    window = 960
    talk_pcm = talk_pcm[: len(talk_pcm) // window * window]
    loud_s = float(np.sum(np.sqrt(np.mean(talk_pcm.reshape(-1, window) ** 2, axis=1)) > 0.01) * window / 48000)
    assert loud_s > 1.0, f"only {loud_s:.2f} s of the dispatcher's voice in the recording"
