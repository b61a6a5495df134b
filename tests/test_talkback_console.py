"""Talk-back in the real dispatcher console: a session with talk-back, a live actor on the caller page (headless
Chromium, fake camera and microphone), and the console in another headless Chromium whose fake microphone plays an
espeak-ng WAV. The dispatcher answers in the console; the embedded live view (no console change: the ingest serves
the WebRTC relay to talk-back sessions) shows "Talk to caller"; pressing it makes the caller's page hear the
dispatcher (WebAudio level). Screenshot of the console while talking: /tmp/talkback-shots/console-talking.png."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM_BASE_ARGS
from tests.console_harness import FAKE_MEDIA_ARGS, talkback_station
from tests.helpers_media import make_speech_wav
from tests.test_console_browser import LoopThread, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.webrtc]

SHOTS = Path("/tmp/talkback-shots")


@pytest.fixture()
def loop_thread() -> Any:
    lt = LoopThread()
    yield lt
    lt.close()


def test_dispatcher_talks_to_a_live_actor_from_the_console(tmp_path: Path, chromium_path: str, loop_thread: Any) -> None:
    from playwright.sync_api import sync_playwright

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is needed for the dispatcher's fake microphone")
    wav = make_speech_wav("Control room here. Help is on the way. Can you tell me what you see?", tmp_path / "d.wav")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with talkback_station(tmp_path, loop_thread, "P09") as station:
        client, sid, cid, call = station.client, station.session_id, station.call_id, station.call
        console_url, only_loopback, foreign = station.console_url, station.only_loopback, station.foreign
        media = list(FAKE_MEDIA_ARGS)
        with sync_playwright() as pw:
            actor_browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_BASE_ARGS + media)
            console_browser = pw.chromium.launch(
                executable_path=chromium_path,
                args=CHROMIUM_BASE_ARGS + media + [f"--use-file-for-fake-audio-capture={wav}"])
            try:
                actor_ctx = actor_browser.new_context(viewport={"width": 412, "height": 860})
                actor_ctx.route("**/*", only_loopback)
                actor = actor_ctx.new_page()
                actor.goto(call["caller_url"])
                actor.click("#consent-accept")
                actor.wait_for_function("window.callerStatus === 'connected'", timeout=30_000)
                wait_for("the actor's video", lambda: client.call_status(cid).get("frames_received", 0) > 10, 30, 0.25)

                ctx = console_browser.new_context(viewport={"width": 1400, "height": 1000})
                ctx.route("**/*", only_loopback)
                page = ctx.new_page()
                page.set_default_timeout(30_000)
                page.goto(console_url)
                answer = page.locator(".st-key-answer_next button")
                answer.wait_for()
                answer.click()
                page.locator("iframe[src*='/viewer']").wait_for()

                def viewer() -> Any:
                    handle = page.locator("iframe[src*='/viewer']").element_handle()
                    return handle.content_frame() if handle else None

                def viewer_value(expression: str) -> Any:
                    frame = viewer()
                    try:
                        return frame.evaluate(expression) if frame is not None else None
                    except Exception:  # the frame may still be navigating
                        return None

                wait_for("the live view's microphone and relay",
                         lambda: viewer_value("window.viewerTalk && window.viewerTalk.microphone && "
                                              "window.viewerStats.connected && !document.getElementById('talk').disabled"),
                         30, 0.25)
                before = actor.evaluate("window.talkbackStats.loudMs")
                page.frame_locator("iframe[src*='/viewer']").locator("#talk").click()
                wait_for("talk on", lambda: viewer_value("window.viewerTalk.on"), 10, 0.1)
                actor.wait_for_function("window.talkbackStats.loudMs > 1500", timeout=30_000)
                page.screenshot(path=str(SHOTS / "console-talking.png"), full_page=True)
                page.frame_locator("iframe[src*='/viewer']").locator("#talk").click()
                wait_for("talk off", lambda: viewer_value("window.viewerTalk.on === false"), 10, 0.1)
            finally:
                actor_browser.close()
                console_browser.close()
        assert before == 0, "the actor heard the dispatcher before Talk was pressed"
        assert not foreign, foreign
        talks = [(e.source, e.data.on, e.data.origin) for e in client.events(sid) if e.type == "dispatcher.talk"]
        assert talks == [("console", True, "toggle"), ("console", False, "toggle")], talks
