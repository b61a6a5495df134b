"""The participant flow end to end in a real headless Chromium: ``workbench run --participant-flow`` plays a short
two-block scenario (a practice block, a 6 s break, a scored block) with its own ingest and console, and the
participant works through consent, instructions, both blocks, the break and the end questionnaire in the page
only. The test checks what the ingest wrote to ``events.jsonl`` and what ``workbench analyze`` makes of it.

Screenshots go to ``/tmp/flow-shots``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import CHROMIUM_BASE_ARGS, free_port
from workbench.domain import events as ev
from workbench.domain.instruments import TLX_SUBSCALES
from workbench.store.eventlog import read_events

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path("/tmp/flow-shots")

SCENARIO = """\
id = "flow-browser"
title = "Participant flow: a practice block, a break, one scored block"
[[blocks]]
id = "practice"
modality = "audio"
calls = ["p1"]
practice = true
break_s = 6
[[blocks]]
id = "scored"
modality = "audio"
calls = ["s1"]
[[calls]]
id = "p1"
arrival_s = 1
caller_label = "practice caller"
utterances = [{ at_s = 0, text = "This is a practice call about a small fire." }]
[calls.truth]
incident_type = "fire"
urgency = "nu"
required_items = ["location"]
[[calls]]
id = "s1"
arrival_s = 1
caller_label = "scored caller"
utterances = [{ at_s = 0, text = "My neighbour collapsed in the garden." }]
[calls.truth]
incident_type = "medical"
urgency = "spoed"
required_items = ["location", "injuries"]
"""


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def test_participant_walks_the_whole_flow_in_the_browser(tmp_path: Path, chromium_path: str) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    SHOTS.mkdir(exist_ok=True)
    scenario = tmp_path / "flow.toml"
    scenario.write_text(SCENARIO)
    recordings = tmp_path / "recordings"
    port, console_port = free_port(), free_port()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    log_file = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", str(scenario), "--participant-flow", "--participant", "P09",
         "--port", str(port), "--console-port", str(console_port), "--recordings", str(recordings),
         "--duration", "400"],
        stdout=log_file, stderr=subprocess.STDOUT, env=env)

    def run_log() -> str:
        return (tmp_path / "run.log").read_text(errors="replace")

    def session_dir() -> Path | None:
        found = [p for p in recordings.glob("*") if (p / "events.jsonl").exists()] if recordings.exists() else []
        return found[0] if found else None

    def events() -> list[ev.Event]:
        folder = session_dir()
        return read_events(folder / "events.jsonl")[0] if folder else []

    def logged(event_type: str, **data: Any) -> Callable[[], list[ev.Event]]:
        return lambda: [e for e in events() if e.type == event_type
                        and all(getattr(e.data, k) == v for k, v in data.items())]

    foreign: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    try:
        # A fresh cache makes the runner generate the demo media first (slow on a loaded machine).
        wait_for("the session", lambda: "Session: " in run_log() or proc.poll() is not None, 300)
        assert proc.poll() is None, run_log()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_BASE_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.set_default_timeout(30_000)
            try:
                page.goto(f"http://127.0.0.1:{console_port}")

                # --- consent, instructions --------------------------------------------------------------------------
                yes = page.locator(".st-key-flow_consent_yes button")
                yes.wait_for()
                page.screenshot(path=str(SHOTS / "consent.png"), full_page=True)
                assert logged("call.created")() == []  # the runner holds the first block
                yes.click()
                start = page.locator(".st-key-flow_start button")
                start.wait_for()
                expect(start).to_contain_text("Start the practice block")
                page.screenshot(path=str(SHOTS / "instructions.png"), full_page=True)
                start.click()

                def work_call(label: str) -> str:
                    answer = page.locator(".st-key-answer_next button")
                    answer.wait_for(timeout=60_000)
                    expect(answer).to_contain_text(label)
                    answer.click()
                    created = wait_for(f"{label} in the log", lambda: [
                        e for e in logged("call.created")() if e.data.caller_label == label], 10)
                    cid = created[0].call_id
                    page.locator(f".st-key-urgency-{cid}").get_by_text("nu (now, prio 2)").click()
                    wait_for("intake.urgency", lambda: [e for e in logged("intake.urgency")() if e.call_id == cid], 10)
                    page.locator(f".st-key-close_call-{cid} button").click()
                    box = page.locator(f".st-key-rsme_number-{cid} input")
                    box.fill("40")
                    box.press("Enter")
                    submit = page.locator(f".st-key-submit_rsme-{cid} button")
                    expect(submit).to_be_enabled(timeout=10_000)
                    submit.click()
                    wait_for("rating.rsme", lambda: [e for e in logged("rating.rsme")() if e.call_id == cid], 10)
                    return cid

                def rate_block(block: str) -> None:
                    tlx_submit = page.locator(f".st-key-submit_tlx-{block} button")
                    tlx_submit.wait_for(timeout=60_000)
                    for name in TLX_SUBSCALES:
                        thumb = page.locator(f".st-key-tlx_{name}-{block} input[type=range]")
                        thumb.focus()
                        thumb.press("ArrowRight")
                        expect(thumb).to_have_value("55")
                        page.wait_for_timeout(300)
                    expect(tlx_submit).to_be_enabled(timeout=10_000)
                    tlx_submit.click()
                    wait_for("rating.nasa_tlx", logged("rating.nasa_tlx", block_id=block), 10)

                # --- the practice block, marked as such -------------------------------------------------------------
                page.locator(".st-key-flow_practice_banner").wait_for(timeout=60_000)
                page.locator(".st-key-answer_next button").wait_for(timeout=60_000)
                page.screenshot(path=str(SHOTS / "practice.png"), full_page=True)
                work_call("practice caller")
                rate_block("practice")

                # --- the break, then the scored block without the practice banner -----------------------------------
                brk = page.locator(".st-key-flow_screen_break")
                brk.wait_for(timeout=30_000)
                countdown = page.locator(".st-key-flow_break_countdown")
                expect(countdown).to_contain_text("Break after block 1 of 2. The next block starts in about")
                first = countdown.inner_text()
                page.screenshot(path=str(SHOTS / "break.png"), full_page=True)
                wait_for("the countdown to tick", lambda: countdown.count() == 0 or countdown.inner_text() != first, 10)
                page.screenshot(path=str(SHOTS / "break-later.png"), full_page=True)
                work_call("scored caller")
                assert page.locator(".st-key-flow_practice_banner").count() == 0
                rate_block("scored")

                # --- the end questionnaire ----------------------------------------------------------------------------
                page.locator(".st-key-flow_age_band").click()
                page.get_by_role("option", name="35 to 44").click()
                experience = page.locator(".st-key-flow_experience input")
                experience.fill("12")
                experience.press("Enter")
                page.locator(".st-key-flow_discipline").get_by_text("Multidisciplinary control room").click()
                page.wait_for_timeout(500)
                page.screenshot(path=str(SHOTS / "questionnaire.png"), full_page=True)
                page.locator(".st-key-flow_submit_questionnaire button").click()
                page.get_by_text("Thank you for taking part.").wait_for()
                wait_for("the runner to end the session", lambda: "stays up for the participant" in run_log(), 60)
                page.wait_for_timeout(2500)  # the page polls every second or two; it must still say goodbye
                expect(page.get_by_text("Thank you for taking part.")).to_be_visible()
                page.screenshot(path=str(SHOTS / "end.png"), full_page=True)
            except Exception:
                # CI keeps only the output: say what the page and the log showed when a step timed out.
                page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)
                print("--- page text at the failure ---\n" + page.inner_text("body")[:4000])
                print("--- the last events ---\n" + "\n".join(
                    f"{e.seq} {e.type} {e.call_id or ''} {e.data}" for e in events()[-40:]))
                print("--- run log tail ---\n" + run_log()[-3000:])
                raise
            browser.close()
        proc.terminate()  # Ctrl-C, as the researcher does once the participant has left
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        log_file.close()
    assert proc.returncode == 0 and "completed" in run_log(), run_log()
    assert foreign == []

    log = events()
    flow = [(e.type, e.data) for e in log if e.type.startswith("participant.")]
    assert [d.step for t, d in flow if t == "participant.step"] == [
        "consent", "instructions", "instructions", "practice", "break", "questionnaire", "end"]
    assert flow[1] == ("participant.consent", flow[1][1]) and flow[1][1].given is True
    assert ("participant.questionnaire", ev.ParticipantQuestionnaire("35-44", 12, "multidisciplinary")) in flow
    types = [e.type for e in log]
    # Consent and instructions come before anything of the runner; the questionnaire before the end.
    assert types.index("participant.consent") < types.index("block.started")
    assert types.index("participant.questionnaire") < types.index("session.ended")
    assert [e.data for e in log if e.type == "session.ended"] == [ev.SessionEnded("completed")]
    start_ctl = [e for e in log if isinstance(e.data, ev.SessionControl) and e.data.action == "start"]
    assert len(start_ctl) == 1

    out = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "analyze", str(recordings), "--out", str(out)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    import pandas as pd

    row = pd.read_csv(out / "sessions.csv").iloc[0]
    assert (row["participant"], row["consent"], row["age_band"], row["experience_years"], row["discipline"]) == (
        "P09", True, "35-44", 12, "multidisciplinary")
    assert row["instructions_s"] > 0 and row["practice_calls"] == 1
