"""Talk-back in the real dispatcher console: a session with talk-back, a live actor on the caller page (headless
Chromium, fake camera and microphone), and the console in another headless Chromium whose fake microphone plays an
espeak-ng WAV. The dispatcher answers in the console; the embedded live view (no console change: the ingest serves
the WebRTC relay to talk-back sessions) shows "Talk to caller"; pressing it makes the caller's page hear the
dispatcher (WebAudio level). Screenshot of the console while talking: /tmp/talkback-shots/console-talking.png."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import CHROMIUM_BASE_ARGS, REPO, free_port
from tests.helpers_media import make_speech_wav
from tests.test_console_browser import LoopThread, stop_ingest, wait_for
from workbench.console.ingest_client import IngestClient
from workbench.console.launch import start_console, wait_until_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.webrtc]

SHOTS = Path("/tmp/talkback-shots")


@pytest.fixture()
def loop_thread() -> Any:
    lt = LoopThread()
    yield lt
    lt.close()


def test_dispatcher_talks_to_a_live_actor_from_the_console(tmp_path: Path, chromium_path: str, loop_thread: Any) -> None:
    from playwright.sync_api import Route, sync_playwright

    from workbench.ingest.server import start_ingest
    from workbench.ingest.settings import IngestSettings

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is needed for the dispatcher's fake microphone")
    wav = make_speech_wav("Control room here. Help is on the way. Can you tell me what you see?", tmp_path / "d.wav")
    SHOTS.mkdir(parents=True, exist_ok=True)
    recordings = tmp_path / "recordings"
    settings = IngestSettings(host="127.0.0.1", port=free_port(), recordings=recordings, ice_mode="loopback")
    ingest = loop_thread.run(start_ingest(settings))
    client = IngestClient(ingest.url)
    console = None
    try:
        scenario = (REPO / "experiments/demo/scenario.toml").read_text(encoding="utf-8")
        request = urllib.request.Request(
            ingest.url + "/api/sessions", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"participant": "P09", "scenario_toml": scenario, "talkback": True}).encode())
        with urllib.request.urlopen(request, timeout=30) as resp:
            sid = json.loads(resp.read())["session_id"]
        call = client.create_call(sid, scenario_call_id="house-fire", block_id="live-video", modality="video",
                                  caller_label="live actor")
        cid = call["call_id"]
        port = free_port()
        console = start_console(ingest.url, port=port, recordings=recordings, session_id=sid, station="station-2")
        console_url = f"http://127.0.0.1:{port}"
        wait_until_ready(console_url, 120)
        foreign: list[str] = []

        def only_loopback(route: Route) -> None:
            if route.request.url.startswith(("data:", "blob:")) or urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                foreign.append(route.request.url)
                route.abort()

        media = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--allow-loopback-in-peer-connection"]
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
    finally:
        if console is not None:
            console.terminate()
            console.wait(30)
        stop_ingest(loop_thread, ingest)
