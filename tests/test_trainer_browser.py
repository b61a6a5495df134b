"""Issue 7 in a real headless Chromium: ``workbench serve --access-codes FILE`` (ingest, dispatcher console and the
trainer's page as they start in a lab) and the researcher's page.

1. The trainer types the trainer code, sees a second station (P08) waiting and starts it, starts a session for P07 with the demo scenario from the library (a real
   ``workbench run`` runner with simulated aiortc callers), opens the station link as the dispatcher, presses Start,
   watches the queue and the dispatcher's current call, pauses, resumes and injects an ad-hoc call, aborts, and
   opens the ended station's debrief. The test only uses the pages; it checks what the ingest logged.
2. The role boundary: a participant's code opens neither the trainer's nor the researcher's page, and the
   participant's browser cannot fetch the event log (ground truth, manipulations), another session's call or the
   session list, even with its own station ticket; editing ``?session=`` does not switch sessions.

Every request to a host other than 127.0.0.1 fails the test. Screenshots go to ``/tmp/trainer-shots``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import CHROMIUM_BASE_ARGS, REPO, free_port
from workbench.console.ingest_client import IngestClient
from workbench.console.launch import RESEARCH_PATH, streamlit_command, wait_until_ready
from workbench.domain import events as ev
from workbench.domain.roles import AccessCodes
from workbench.store import access_codes

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.webrtc]

SHOTS = Path("/tmp/trainer-shots")


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    result = None
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what} (last: {result!r})")


@dataclass
class Lab:
    ingest: str
    console: str
    trainer: str
    research: str
    codes: AccessCodes
    client: IngestClient
    output: list[str]
    library: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("trainer-lab")
    recordings = tmp / "recordings"
    codes_file = tmp / "lab" / "access.json"
    ports = {name: free_port() for name in ("ingest", "console", "trainer", "research")}
    env = dict(os.environ, WORKBENCH_RUNNER_LOGS=str(tmp / "runner-logs"))
    library = tmp / "library"
    shutil.copytree(REPO / "experiments", library)
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--library", str(library), "--port", str(ports["ingest"]),
         "--console-port", str(ports["console"]), "--trainer-port", str(ports["trainer"]),
         "--recordings", str(recordings), "--access-codes", str(codes_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    research = None
    try:
        wait_for("serve to print the access codes", lambda: any("researcher:" in line for line in output), 120)
        text = "".join(output)
        assert f"Trainer: http://127.0.0.1:{ports['trainer']}" in text, text
        codes = access_codes.load(codes_file)
        assert f"participant: {codes.participant}" in text and f"trainer:     {codes.trainer}" in text
        assert not str(codes_file).startswith(str(recordings))
        research_env = dict(os.environ, WORKBENCH_RECORDINGS=str(recordings),
                            WORKBENCH_RESULTS=str(tmp / "results"), WORKBENCH_ACCESS_FILE=str(codes_file))
        research = subprocess.Popen(streamlit_command(ports["research"], "127.0.0.1", RESEARCH_PATH),
                                    env=research_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        wait_until_ready(f"http://127.0.0.1:{ports['research']}", 60)
        url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        yield Lab(url["ingest"], url["console"], url["trainer"], url["research"], codes,
                  IngestClient(url["ingest"], access=codes.trainer), output, library)
    finally:
        if research is not None:
            research.terminate()
            research.wait(20)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture()
def browser(chromium_path: str) -> Iterator[tuple[Any, list[str]]]:
    from playwright.sync_api import Route, sync_playwright

    foreign: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_BASE_ARGS)

        def new_page() -> Any:
            context = chromium.new_context(viewport={"width": 1400, "height": 1100})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.set_default_timeout(30_000)
            return page

        yield new_page, foreign
        chromium.close()
    assert not foreign, f"requests to other hosts: {foreign}"


def settle(page: Any, timeout_s: float = 15) -> None:
    """Wait until Streamlit shows no stale (greyed, being redrawn) element, so a screenshot shows the result."""
    wait_for("the page to settle", lambda: page.locator("[data-stale='true']").count() == 0, timeout_s)


def enter_code(page: Any, page_name: str, code: str, *, press_enter: bool = False) -> None:
    page.locator(f".st-key-access_code_{page_name} input").fill(code)
    if press_enter:  # as a person would: Enter in the field submits it like the Open button
        page.locator(f".st-key-access_code_{page_name} input").press("Enter")
    else:
        page.locator(f".st-key-access_open_{page_name} button").click()


def no_code_asked(page: Any) -> bool:
    """The dispatcher page is drawn without its access-code form (the station link's ticket was enough)."""
    page.get_by_role("heading", name="Queue").first.wait_for()
    return page.locator(".st-key-access_code_dispatcher").count() == 0


def test_trainer_starts_watches_pauses_resumes_and_injects(lab: Lab, browser: Any) -> None:
    new_page, _foreign = browser
    SHOTS.mkdir(parents=True, exist_ok=True)
    trainer = new_page()
    trainer.goto(lab.trainer)
    enter_code(trainer, "trainer", lab.codes.trainer)
    trainer.get_by_role("heading", name="Trainer", exact=True).wait_for()

    # A second station, already prepared for P08 (a session without its runner yet): several stations at once.
    second = lab.client.create_session("P08", scenario_toml=(REPO / "experiments/demo/scenario.toml").read_text(),
                                       session_id="P08-second-station")
    trainer.locator(f".st-key-station-{second}").get_by_text("waiting for start").wait_for(timeout=30_000)
    trainer.locator(".st-key-participant input").fill("P07")
    trainer.locator(".st-key-participant input").press("Enter")
    trainer.locator(".st-key-start_session button").click()
    sid = wait_for("the runner's session for P07", lambda: next(
        (s["session_id"] for s in lab.client.list_sessions() if s["participant"] == "P07"), None), 60)
    station = trainer.locator(f".st-key-station-{sid}")
    station.get_by_text("waiting for start").wait_for(timeout=30_000)
    link = station.locator("[data-testid='stCode'] pre").first.inner_text().strip()
    assert link == f"{lab.console}/?session={sid}&ticket={lab.codes.session_ticket(sid)}"
    trainer.screenshot(path=str(SHOTS / "1-trainer-waiting.png"), full_page=True)

    dispatcher = new_page()
    dispatcher.goto(link)
    assert no_code_asked(dispatcher)  # the station link carries the session's ticket: no code to type

    trainer.locator(f".st-key-start-{sid} button").click()
    settle(trainer)  # the stations redraw every 2 s: click the drawn button, not a stale copy
    trainer.locator(f".st-key-start-{second} button").first.click()  # the other station's own Start
    wait_for("P08's start", lambda: [e.data.action for e in lab.client.events(second)
                                     if isinstance(e.data, ev.SessionControl)] == ["start"], 30)
    answer = dispatcher.locator(".st-key-answer_next button")
    answer.wait_for(timeout=60_000)
    station.get_by_text("running").first.wait_for(timeout=30_000)
    answer.click()
    dispatcher.locator("iframe[src*='/viewer']").wait_for()
    assert f"/t/{lab.codes.session_ticket(sid)}/api/calls/" in dispatcher.locator(
        "iframe[src*='/viewer']").get_attribute("src")
    station.get_by_text("On the dispatcher's screen:").wait_for(timeout=30_000)
    label = station.get_by_text("On the dispatcher's screen:").inner_text()
    assert "06-1234 5678" in label and "house-fire" in label
    station.get_by_text("live video (newest frame)").wait_for(timeout=30_000)
    # The demo caller's 640x480 frame (the image may still be loading, or redrawn, when its caption shows).
    wait_for("the newest frame at 640 px", lambda: station.locator("img").first.evaluate("i => i.naturalWidth") == 640,
             30)
    # The collision arrives 6 s after the block starts and waits in the queue while the fire is handled.
    wait_for("the collision in the trainer's queue count",
             lambda: station.locator("[data-testid='stMetricValue']").first.inner_text().strip() == "1", 60)
    # The dispatcher classifies: the server posts intake.urgency, the station's browser its panel focus (through
    # the ticket route, CORS preflight included); the trainer sees the entry against the ground truth.
    fire = next(e.call_id for e in lab.client.events(sid)
                if isinstance(e.data, ev.CallCreated) and e.data.scenario_call_id == "house-fire")
    dispatcher.locator(f".st-key-urgency-{fire}").get_by_text("spoed (urgent, prio 1)").click()
    wait_for("intake.urgency spoed", lambda: [e for e in lab.client.events(sid)
                                              if isinstance(e.data, ev.IntakeUrgency) and e.data.urgency == "spoed"], 30)
    # The station's browser posts its own timed events (DRT, panel focus) through its ticket route, CORS preflight
    # included: the same request the console's scripts send, made here directly so it does not depend on when
    # those scripts flush (see the report: a focus change was sometimes not posted).
    status = dispatcher.evaluate(
        "async ([u, body]) => (await fetch(u, {method: 'POST', headers: {'Content-Type': 'application/json'}, "
        "body: body})).status",
        [f"{lab.ingest}/t/{lab.codes.session_ticket(sid)}/api/sessions/{sid}/events",
         json.dumps({"source": "console", "type": "console.focus", "call_id": fire,
                     "data": {"panel": "transcript", "trigger": "pointer", "browser_ms": 1.0}})])
    assert status == 201
    assert [e.data.panel for e in lab.client.events(sid) if isinstance(e.data, ev.ConsoleFocus)
            and e.data.browser_ms == 1.0] == ["transcript"]
    station.get_by_text("spoed ✓").wait_for(state="attached", timeout=30_000)  # a grid cell
    settle(trainer)
    trainer.screenshot(path=str(SHOTS / "2-trainer-watching.png"), full_page=True)
    dispatcher.screenshot(path=str(SHOTS / "3-dispatcher-station.png"), full_page=True)

    trainer.locator(f".st-key-pause-{sid} button").click()
    station.get_by_text("paused").first.wait_for(timeout=30_000)
    trainer.screenshot(path=str(SHOTS / "4-trainer-paused.png"), full_page=True)
    trainer.locator(f".st-key-resume-{sid} button").click()
    station.get_by_text("running").first.wait_for(timeout=30_000)

    station.get_by_text("Inject a call").click()
    trainer.locator(f".st-key-adhoc_id-{sid} input").fill("extra-1")
    trainer.locator(f".st-key-adhoc_label-{sid} input").fill("06-5555 0000")
    lines = trainer.locator(f".st-key-adhoc_lines-{sid} textarea")
    lines.fill("Help, my neighbour fell down the stairs.")
    lines.press("Control+Enter")
    trainer.locator(f".st-key-inject_adhoc-{sid} button").click()
    injected = wait_for("the injected call in the log", lambda: [
        e for e in lab.client.events(sid) if isinstance(e.data, ev.CallInjected)], 60)
    assert injected[0].data.adhoc
    dispatcher.locator("[data-testid='stSidebar']").get_by_text("06-5555 0000").wait_for(timeout=30_000)
    station.get_by_text("06-5555 0000 (extra-1)").wait_for(state="attached", timeout=30_000)  # a grid cell
    settle(trainer)
    trainer.screenshot(path=str(SHOTS / "5-trainer-injected.png"), full_page=True)

    controls = [(e.data.action, e.data.scenario_call_id) for e in lab.client.events(sid)
                if isinstance(e.data, ev.SessionControl)]
    assert controls == [("start", ""), ("pause", ""), ("resume", ""), ("inject", "extra-1")]
    answered = [e for e in lab.client.events(sid) if isinstance(e.data, ev.CallAnswered)]
    assert len(answered) == 1 and answered[0].source == "console"

    trainer.locator(f".st-key-abort-{sid} button").click()
    wait_for("session.ended", lambda: any(isinstance(e.data, ev.SessionEnded) for e in lab.client.events(sid)), 30)
    # The ended station stays with its Debrief button, which opens the session's debrief in the Debrief tab.
    station.get_by_text("ended").first.wait_for(timeout=30_000)
    settle(trainer)  # the station's fragment redraws every 2 s: click the drawn button, not a stale copy
    trainer.locator(f".st-key-debrief-{sid} button").first.click()
    trainer.get_by_role("heading", name=f"Debrief of session {sid}").wait_for(timeout=60_000)
    assert trainer.get_by_role("tab", name="Debrief").get_attribute("aria-selected") == "true"
    debrief = trainer.locator("[data-testid='stMarkdownContainer']").filter(has_text="ground truth")
    fire_row = debrief.locator("tr").filter(has_text="urgency").first
    assert "spoed" in fire_row.inner_text()  # what the dispatcher entered, against the truth (spoed): correct
    settle(trainer)
    trainer.screenshot(path=str(SHOTS / "9-trainer-debrief.png"), full_page=True)
    # The replay of the answered call (its recording, the transcript and the dispatcher's actions) below it.
    replay = trainer.locator(".st-key-trainer_debrief_replay iframe")
    replay.scroll_into_view_if_needed()
    trainer.frame_locator(".st-key-trainer_debrief_replay iframe").locator("#transcript li").first.wait_for()
    trainer.wait_for_timeout(1000)
    trainer.screenshot(path=str(SHOTS / "10-trainer-debrief-replay.png"))
    # The station's browser reached everything it needed through its ticket: the ingest refused nothing.
    assert not [line for line in lab.output if "access refused" in line], lab.output


def test_participant_cannot_reach_trainer_or_researcher_pages_nor_other_sessions(lab: Lab, browser: Any) -> None:
    new_page, _foreign = browser
    SHOTS.mkdir(parents=True, exist_ok=True)
    mine = lab.client.create_session("P21", session_id="P21-boundary")
    other = lab.client.create_session("P22", session_id="P22-boundary")
    other_call = lab.client.create_call(other, caller_label="06-2222 2222")["call_id"]
    ticket = lab.codes.session_ticket(mine)

    page = new_page()
    page.goto(lab.trainer)
    enter_code(page, "trainer", lab.codes.participant)
    page.get_by_text("A participant's code does not open the trainer's page").wait_for()
    assert page.get_by_role("heading", name="Trainer", exact=True).count() == 0
    page.screenshot(path=str(SHOTS / "6-participant-on-trainer-page.png"), full_page=True)

    page.goto(lab.research)
    enter_code(page, "researcher", lab.codes.participant, press_enter=True)
    page.get_by_text("A participant's code does not open the researcher's page").wait_for()
    assert page.get_by_role("heading", name="Recorded sessions").count() == 0

    # The station link alone opens the participant's own session, and a reload does not ask for a code either.
    page.goto(f"{lab.console}/?session={mine}&ticket={ticket}")
    assert no_code_asked(page)
    page.reload()
    assert no_code_asked(page)
    page.screenshot(path=str(SHOTS / "6b-station-link-reloaded.png"), full_page=True)
    for other_page, name in ((lab.trainer, "trainer"), (lab.research, "researcher")):  # a ticket opens no other page
        page.goto(f"{other_page}/?session={mine}&ticket={ticket}")
        page.locator(f".st-key-access_code_{name} input").wait_for()
    page.goto(f"{lab.console}/?session={mine}&ticket={ticket}")
    assert no_code_asked(page)

    def fetch(url: str) -> int:
        return page.evaluate("async (u) => (await fetch(u, {cache: 'no-store'})).status", url)

    base = f"{lab.ingest}/t/{ticket}"
    statuses = {
        "own event log (ground truth, manipulations)": fetch(f"{base}/api/sessions/{mine}/events"),
        "other session's event log": fetch(f"{base}/api/sessions/{other}/events"),
        "other session's call": fetch(f"{base}/api/calls/{other_call}"),
        "other session's map": fetch(f"{base}/api/sessions/{other}/map.svg"),
        "session list": fetch(f"{base}/api/sessions"),
        "heat map of every session": fetch(f"{base}/api/map/heat.svg"),
        "session list without a ticket": fetch(f"{lab.ingest}/api/sessions"),
        "own session's map": fetch(f"{base}/api/sessions/{mine}/map.svg"),
    }
    assert statuses == {
        "own event log (ground truth, manipulations)": 403,
        "other session's event log": 403,
        "other session's call": 403,
        "other session's map": 403,
        "session list": 403,
        "heat map of every session": 403,
        "session list without a ticket": 401,
        "own session's map": 200,
    }
    # A control request is sent (no-cors: the browser does not show the answer) but refused: nothing is logged.
    sent = page.evaluate(
        "async (u) => (await fetch(u, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, "
        "body: JSON.stringify({action: 'pause'})})).type", f"{base}/api/sessions/{mine}/control")
    assert sent == "opaque"

    # Editing the link to another session keeps the station on its own session.
    page.goto(f"{lab.console}/?session={other}&ticket={ticket}")
    assert no_code_asked(page)
    page.wait_for_timeout(3000)
    assert page.get_by_text("06-2222 2222").count() == 0
    # Without a ticket the code is asked for again, and a ticket of another run (or a forged one) opens nothing.
    page.goto(f"{lab.console}/?session={other}")
    enter_code(page, "dispatcher", lab.codes.participant, press_enter=True)
    page.get_by_text("This station has no session yet").wait_for()
    page.screenshot(path=str(SHOTS / "7-participant-without-station-link.png"), full_page=True)
    forged = ticket.replace(mine, other, 1)
    page.goto(f"{lab.console}/?session={other}&ticket={forged}")
    page.locator(".st-key-access_code_dispatcher input").wait_for()
    assert page.get_by_role("heading", name="Queue").count() == 0
    page.screenshot(path=str(SHOTS / "7b-forged-ticket-asks-for-the-code.png"), full_page=True)
    assert not [e for e in lab.client.events(mine) if isinstance(e.data, ev.SessionControl)]
    refused = [line for line in lab.output if "access refused" in line]
    assert any("(403, sessions_read) GET /t/" in line for line in refused), refused
    assert any("(401, sessions_read) GET /api/sessions" in line for line in refused), refused


def test_trainer_adds_a_scenario_from_uploaded_media(lab: Lab, browser: Any, real_data: Path) -> None:
    new_page, _foreign = browser
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page()
    page.goto(lab.trainer)
    enter_code(page, "trainer", lab.codes.trainer)
    page.get_by_role("tab", name="Scenario library").click()
    page.locator(".st-key-new_id input").fill("outdoor-fire")
    page.locator(".st-key-new_title input").fill("Outdoor fire filmed by a passer-by")
    page.locator(".st-key-new_video input[type=file]").set_input_files(
        str(real_data / "video" / "firedetection_test1_outdoor_fire.mp4"))
    page.locator(".st-key-new_photos input[type=file]").set_input_files(
        str(real_data / "photos" / "still_test1_outdoor_fire_smoke_f090.jpg"))
    # The uploader shows a chip per uploaded file (its name shortened; the full name in its title).
    page.locator(".st-key-new_video [data-testid='stFileChipName']"
                 "[title='firedetection_test1_outdoor_fire.mp4']").wait_for()
    page.locator(".st-key-new_photos [data-testid='stFileChipName']"
                 "[title='still_test1_outdoor_fire_smoke_f090.jpg']").wait_for()
    page.locator(".st-key-new_caller input").fill("06-3333 4444")
    page.locator(".st-key-new_lines textarea").fill("There is a fire by the road!\n6: It is only small.")
    page.locator(".st-key-new_location input").fill("Rijksweg 4, Delft")
    page.get_by_role("button", name="Add scenario").click()
    page.get_by_text("Scenario 'outdoor-fire' added").wait_for()
    page.get_by_role("tab", name="Scenario library").click()
    page.get_by_text("✓ · outdoor-fire — Outdoor fire filmed by a passer-by").wait_for()
    settle(page)
    page.screenshot(path=str(SHOTS / "8-library-added.png"), full_page=True)
    added = lab.library / "outdoor-fire"
    assert (added / "media" / "firedetection_test1_outdoor_fire.mp4").read_bytes() == (
        real_data / "video" / "firedetection_test1_outdoor_fire.mp4").read_bytes()
    text = (added / "scenario.toml").read_text(encoding="utf-8")
    assert 'text = "It is only small."' in text and 'location = "Rijksweg 4, Delft"' in text

    # The same id again is refused on the page and the scenario stays as it was.
    page.get_by_role("button", name="Add scenario").click()
    page.get_by_text("The scenario was not added").wait_for()
    assert (added / "scenario.toml").read_text(encoding="utf-8") == text


def test_a_refused_new_scenario_keeps_the_library_tab_the_fields_and_the_uploads(lab: Lab, browser: Any,
                                                                                  real_data: Path) -> None:
    new_page, _foreign = browser
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page()
    page.goto(lab.trainer)
    enter_code(page, "trainer", lab.codes.trainer)
    page.get_by_role("tab", name="Scenario library").click()
    page.locator(".st-key-new_id input").fill("my-test-scn")
    page.locator(".st-key-new_title input").fill("My long title typed by the trainer")
    photo = "still_test1_outdoor_fire_smoke_f090.jpg"
    page.locator(".st-key-new_photos input[type=file]").set_input_files(str(real_data / "photos" / photo))
    page.locator(f".st-key-new_photos [data-testid='stFileChipName'][title='{photo}']").wait_for()
    page.get_by_role("button", name="Add scenario").click()  # no caller lines, no video: refused
    page.get_by_text("write at least one caller line").wait_for()
    settle(page)
    page.screenshot(path=str(SHOTS / "9-library-refused.png"), full_page=True)
    assert page.get_by_role("tab", selected=True).inner_text().strip() == "Scenario library"
    assert page.locator(".st-key-new_id input").input_value() == "my-test-scn"
    assert page.locator(".st-key-new_title input").input_value() == "My long title typed by the trainer"
    assert page.locator(f".st-key-new_photos [data-testid='stFileChipName'][title='{photo}']").count() == 1
    errors = page.locator(".st-key-new_scenario_message")  # next to the form, inside the library tab
    assert "write at least one caller line" in errors.inner_text()
    assert "scenario id" not in errors.inner_text()  # the id typed was read, not lost
    assert not (lab.library / "my-test-scn").exists()
    # Adding the missing line and choosing photo now adds it, with the photo uploaded before the refusal.
    page.locator(".st-key-new_lines textarea").fill("Er brandt iets langs de weg!")
    page.locator(".st-key-new_modality").click()
    page.get_by_role("option", name="photo", exact=True).click()
    page.get_by_role("button", name="Add scenario").click()
    page.get_by_text("Scenario 'my-test-scn' added").wait_for()
    assert page.get_by_role("tab", selected=True).inner_text().strip() == "Scenario library"
    (added,) = (lab.library / "my-test-scn" / "media").glob(f"photo-*-{photo}")
    assert added.read_bytes() == (real_data / "photos" / photo).read_bytes()
