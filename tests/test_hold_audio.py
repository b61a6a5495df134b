"""Hold and Resume with the caller's audio in the real dispatcher console (issue 6).

Unit tests for :mod:`workbench.console.call_audio` (which events, in which order, posted once) and the
``console.audio`` payload; then one browser test: a talk-back session, a live actor on the caller page in headless
Chromium whose fake microphone plays a known 440 Hz tone, and the console in another headless Chromium (its fake
microphone a continuous tone too) *without* any autoplay flag, so Chromium's real autoplay policy applies. The
audio the dispatcher hears is measured in the viewer with WebAudio, counted only while the media element plays it
unmuted (``viewerStats.audio.heardMs``); then the dispatcher mutes and unmutes the caller on the live view
(``console.audio`` reason ``dispatcher``). Screenshots: /tmp/hold-audio-shots/.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM_BASE_ARGS
from tests.console_harness import FAKE_MEDIA_ARGS, talkback_station
from tests.test_console_browser import LoopThread, wait_for
from workbench.console import call_audio
from workbench.domain import events as ev
from workbench.domain.session_state import CallState

SHOTS = Path("/tmp/hold-audio-shots")
TONE_HZ = 440.0


def make_tone_wav(target: Path, *, hz: float = TONE_HZ, seconds: float = 4.0, rate: int = 48000) -> Path:
    """A mono 16-bit sine of ``hz`` Hz at half full scale (Chromium loops a fake-capture file, so it never ends)."""
    n = int(seconds * rate)
    samples = b"".join(struct.pack("<h", int(16000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(n))
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return target


# --- unit: what Hold and Resume post ----------------------------------------------------------------------------------


class RecordingClient:
    """Stands in for :class:`IngestClient`: keeps what was posted."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str | None, ev.Payload]] = []

    def post_event(self, session_id: str, call_id: str | None, payload: ev.Payload) -> None:
        self.posted.append((session_id, call_id, payload))


def active_call(held: bool) -> CallState:
    call = CallState(call_id="c1", scenario_call_id="house-fire", block_id="b1", modality="video", caller_label="x",
                     created_ns=0, answered_ns=1, held=held)
    assert call.status == "active"
    return call


def test_hold_posts_held_then_audio_muted_once() -> None:
    client = RecordingClient()
    assert call_audio.hold(client, "s1", active_call(held=False), "station-2") is True  # type: ignore[arg-type]
    assert [(sid, cid, p) for sid, cid, p in client.posted] == [
        ("s1", "c1", ev.CallHeld("station-2")), ("s1", "c1", ev.ConsoleAudio("muted", "hold"))]
    # A second click before the page redrew: the log already says held, nothing more is posted.
    assert call_audio.hold(client, "s1", active_call(held=True), "station-2") is False  # type: ignore[arg-type]
    assert call_audio.hold(client, "s1", None, "station-2") is False  # type: ignore[arg-type]
    assert len(client.posted) == 2


def test_resume_posts_resumed_then_audio_unmuted_only_when_held() -> None:
    client = RecordingClient()
    assert call_audio.resume(client, "s1", active_call(held=False), "station-2") is False  # type: ignore[arg-type]
    assert client.posted == []
    assert call_audio.resume(client, "s1", active_call(held=True), "station-2") is True  # type: ignore[arg-type]
    assert [p for _, _, p in client.posted] == [ev.CallResumed("station-2"), ev.ConsoleAudio("unmuted", "resume")]


def test_console_embeds_the_viewer_as_the_dispatcher() -> None:
    assert call_audio.viewer_url("http://h:1/", "c 1") == "http://h:1/api/calls/c%201/viewer?dispatcher=1"


def test_ingest_hold_hook_ignores_other_events_and_unknown_calls() -> None:
    from workbench.ingest.calls import Calls
    from workbench.ingest.hold import after_console_event

    calls = Calls()
    assert after_console_event(calls, "s1", "c1", ev.CallHeld("station-2")) is None  # unknown call
    assert after_console_event(calls, "s1", None, ev.CallHeld("station-2")) is None
    assert after_console_event(calls, "s1", "c1", ev.CallResumed("station-2")) is None


def test_console_audio_rejects_unknown_state_and_reason() -> None:
    assert ev.payload_from_dict("console.audio", {"state": "unmuted", "reason": "resume"}) == ev.ConsoleAudio(
        "unmuted", "resume")
    with pytest.raises(ev.EventValidationError, match="state must be one of muted, unmuted"):
        ev.payload_from_dict("console.audio", {"state": "quiet", "reason": "hold"})
    with pytest.raises(ev.EventValidationError, match="reason must be one of hold, resume, dispatcher"):
        ev.payload_from_dict("console.audio", {"state": "muted", "reason": "lunch"})


# --- browser: hear, hold (silence, talk-back off), resume (heard again without a click) -------------------------------


@pytest.fixture()
def loop_thread() -> Any:
    lt = LoopThread()
    yield lt
    lt.close()


# Whether any frame of the page plays media with sound right now (the held call's viewer must be gone or silent).
AUDIBLE_MEDIA_JS = ("Array.from(document.querySelectorAll('video, audio')).some("
                    "(m) => !m.paused && !m.muted && m.volume > 0 && m.srcObject && m.srcObject.getAudioTracks()"
                    ".some((t) => t.readyState === 'live'))")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.webrtc
def test_hold_silences_the_caller_and_talkback_resume_plays_again_without_a_click(
    tmp_path: Path, chromium_path: str, loop_thread: Any,
) -> None:
    from playwright.sync_api import sync_playwright

    caller_tone = make_tone_wav(tmp_path / "caller-tone.wav")
    dispatcher_tone = make_tone_wav(tmp_path / "dispatcher-tone.wav", hz=660.0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with talkback_station(tmp_path, loop_thread, "P10") as station:
        client, sid, cid, call = station.client, station.session_id, station.call_id, station.call
        console_url, only_loopback, foreign = station.console_url, station.only_loopback, station.foreign
        media = list(FAKE_MEDIA_ARGS)
        assert not any(a.startswith("--autoplay-policy") for a in CHROMIUM_BASE_ARGS + media)
        with sync_playwright() as pw:
            actor_browser = pw.chromium.launch(
                executable_path=chromium_path,
                args=CHROMIUM_BASE_ARGS + media + [f"--use-file-for-fake-audio-capture={caller_tone}"])
            console_browser = pw.chromium.launch(
                executable_path=chromium_path,
                args=CHROMIUM_BASE_ARGS + media + [f"--use-file-for-fake-audio-capture={dispatcher_tone}"])
            try:
                actor_ctx = actor_browser.new_context(viewport={"width": 412, "height": 860})
                actor_ctx.route("**/*", only_loopback)
                actor = actor_ctx.new_page()
                actor.goto(call["caller_url"])
                actor.click("#consent-accept")
                actor.wait_for_function("window.callerStatus === 'connected'", timeout=60_000)

                ctx = console_browser.new_context(viewport={"width": 1400, "height": 1000})
                ctx.route("**/*", only_loopback)
                page = ctx.new_page()
                page.set_default_timeout(60_000)
                page.goto(console_url)
                page.locator(".st-key-answer_next button").click()

                def viewer() -> Any:
                    handle = page.locator("iframe[src*='/viewer']").element_handle(timeout=1000)
                    return handle.content_frame() if handle else None

                def viewer_value(expression: str) -> Any:
                    try:
                        frame = viewer()
                        return frame.evaluate(expression) if frame is not None else None
                    except Exception:  # no viewer yet, or it is still navigating
                        return None

                def heard_ms() -> float:
                    return float(viewer_value("window.viewerStats && window.viewerStats.audio.heardMs") or 0)

                def viewer_audio() -> Any:
                    """What the viewer shows of its audio (for failure messages)."""
                    return viewer_value("({audio: window.viewerStats.audio, connected: window.viewerStats.connected, "
                                        "muted: document.getElementById('video').muted, "
                                        "paused: document.getElementById('video').paused, "
                                        "button: !document.getElementById('unmute').hidden, "
                                        "autoplay: window.viewerStats.autoplay, "
                                        "status: document.getElementById('status').textContent})")

                def wait_heard(what: str, min_ms: float = 1500, timeout_s: float = 60) -> None:
                    """Poll until the viewer has heard the caller for ``min_ms``; fail with its audio state."""
                    deadline = time.monotonic() + timeout_s
                    while heard_ms() < min_ms:
                        if time.monotonic() > deadline:
                            pytest.fail(f"timed out after {timeout_s} s waiting for {what}: {viewer_audio()}")
                        page.wait_for_timeout(250)

                def audible_frames() -> list[str]:
                    out = []
                    for frame in page.frames:
                        try:
                            if frame.evaluate(AUDIBLE_MEDIA_JS):
                                out.append(frame.url)
                        except Exception:  # a frame going away
                            pass
                    return out

                # 1. Answered: the caller's tone is heard, with no click but Answer.
                wait_heard("the caller's tone heard in the console")
                on_answer = viewer_audio()
                wait_for("the talk control ready",
                         lambda: viewer_value("window.viewerTalk.microphone && window.viewerStats.connected && "
                                              "!document.getElementById('talk').disabled"), 30, 0.25)
                page.frame_locator("iframe[src*='/viewer']").locator("#talk").click()
                actor.wait_for_function("window.talkbackStats.loudMs > 1000", timeout=30_000)
                page.screenshot(path=str(SHOTS / "1-active-talking.png"), full_page=True)

                # 2. Hold: the viewer goes, nothing in the page plays sound, and the caller stops hearing us.
                page.locator(f".st-key-hold-{cid} button").click()
                page.locator(f".st-key-resume-{cid} button").wait_for()
                wait_for("no viewer in the page", lambda: page.locator("iframe[src*='/viewer']").count() == 0, 30, 0.2)
                on_hold_audible = audible_frames()
                actor.wait_for_timeout(1500)  # what was in flight to the caller plays out
                loud_at_hold = actor.evaluate("window.talkbackStats.loudMs")
                actor.wait_for_timeout(3000)
                loud_during_hold = actor.evaluate("window.talkbackStats.loudMs") - loud_at_hold
                on_hold_audible += audible_frames()
                page.screenshot(path=str(SHOTS / "2-on-hold.png"), full_page=True)

                # 3. Resume (the button is the only click): heard again, the viewer never asks for a click.
                page.locator(f".st-key-resume-{cid} button").click()
                wait_heard("the caller's tone heard again after Resume")
                after_resume = viewer_value("({muted: document.getElementById('video').muted, "
                                            "button: !document.getElementById('unmute').hidden, "
                                            "autoplay: window.viewerStats.autoplay, "
                                            "heardMs: window.viewerStats.audio.heardMs})")
                page.screenshot(path=str(SHOTS / "3-resumed.png"), full_page=True)

                # 4. The dispatcher's own mute on the live view: silent while muted, heard again after, both logged.
                mute = page.frame_locator("iframe[src*='/viewer']").locator("#mute")
                mute.click()
                wait_for("the mute logged", lambda: viewer_value("window.viewerStats.audio.logged") == 1, 20, 0.2)
                page.wait_for_timeout(300)  # the measurement's 50 ms tick has seen the muted element
                heard_at_mute = heard_ms()
                page.screenshot(path=str(SHOTS / "4-dispatcher-muted.png"), full_page=True)
                page.wait_for_timeout(2000)
                heard_while_muted = heard_ms() - heard_at_mute
                mute_label = mute.text_content()
                mute.click()
                wait_heard("the caller heard again after Unmute", min_ms=heard_ms() + 1000)
                logged = viewer_value("window.viewerStats.audio.logged")
            finally:
                actor_browser.close()
                console_browser.close()
        assert not foreign, foreign
        assert on_answer["autoplay"] == "allowed" and on_answer["button"] is False, on_answer
        assert on_hold_audible == [], f"media still audible on hold in {on_hold_audible}"
        assert loud_during_hold < 200, f"the caller heard the dispatcher for {loud_during_hold} ms while on hold"
        assert after_resume["muted"] is False and after_resume["button"] is False, after_resume
        assert after_resume["autoplay"] == "allowed", after_resume
        assert after_resume["heardMs"] >= 1500, after_resume  # level x playing x unmuted, not one rms sample
        assert heard_while_muted == 0, f"heard {heard_while_muted} ms while the dispatcher had muted the caller"
        assert mute_label == "Unmute caller" and logged == 2, (mute_label, logged)
        trail = [(e.type, e.source, dataclasses.asdict(e.data)) for e in client.events(sid)
                 if e.call_id == cid and e.type in ("call.held", "call.resumed", "console.audio", "dispatcher.talk")]
        kinds = [(t, s, d.get("state") or d.get("origin") or "") for t, s, d in trail]
        # The ingest switches talk-back off while it logs call.held, before the console posts console.audio.
        assert kinds == [
            ("dispatcher.talk", "console", "toggle"),
            ("call.held", "console", ""),
            ("dispatcher.talk", "ingest", "hold"),
            ("console.audio", "console", "muted"),
            ("call.resumed", "console", ""),
            ("console.audio", "console", "unmuted"),
            ("console.audio", "console", "muted"),
            ("console.audio", "console", "unmuted"),
        ], kinds
        assert [d["reason"] for t, _, d in trail if t == "console.audio"] == ["hold", "resume", "dispatcher", "dispatcher"]
