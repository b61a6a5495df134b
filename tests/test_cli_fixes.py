"""What a new user found trying the README's commands: busy or invalid ports, a ratings sheet with session ids, a
missing output folder, `run --ingest` against an ingest with access codes, non-positive durations, two simulations
sharing pseudonyms in one folder, and smaller messages. Every refusal names the option and what to do, never a
traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import free_port
from tests.runner_helpers import scenario_text

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "experiments" / "demo" / "scenario.toml"
EFFECTS = ROOT / "experiments" / "effects" / "example.toml"


def workbench(*args: str, timeout: float = 90, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr


class Listener:
    """Another program holding a port on 127.0.0.1 (a plain listening socket, as a second workbench would)."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# --- 1. ports ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--console-port", "--trainer-port", "--port"])
def test_demo_refuses_a_busy_port_before_starting_anything(tmp_path: Path, option: str) -> None:
    recordings = tmp_path / "recordings"
    ports = {"--port": free_port(), "--console-port": free_port(), "--trainer-port": free_port()}
    with Listener() as busy:
        ports[option] = busy
        args = [a for o, p in ports.items() for a in (o, str(p))]
        result = workbench("demo", "--duration", "5", *args, "--recordings", str(recordings))
    no_traceback(result)
    assert result.returncode == 2
    assert f"{option} {busy}" in result.stderr and "already in use" in result.stderr
    # Nothing started: no address printed as ours, no session recorded.
    assert "Console:" not in result.stdout and "Ingest:" not in result.stdout
    assert not recordings.exists() or not any(recordings.iterdir())


@pytest.mark.parametrize("command", ["serve", "run", "trainer", "research", "debrief"])
def test_every_server_command_refuses_a_busy_port(tmp_path: Path, command: str) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    extra = {"serve": ["--console-port", str(free_port()), "--trainer-port", str(free_port())],
             "run": ["--no-console"]}.get(command, [])
    lead = [str(SCENARIO)] if command == "run" else []
    with Listener() as busy:
        result = workbench(command, *lead, "--port", str(busy), "--recordings", str(recordings), *extra)
    no_traceback(result)
    assert result.returncode == 2
    assert f"--port {busy}" in result.stderr and "already in use" in result.stderr
    assert not any(recordings.iterdir())


@pytest.mark.parametrize("command", ["demo", "serve", "run", "trainer", "research", "debrief"])
@pytest.mark.parametrize("value", ["99999", "0", "http"])
def test_port_options_are_checked_for_range(command: str, value: str) -> None:
    lead = [str(SCENARIO)] if command == "run" else []
    result = workbench(command, *lead, "--port", value)
    no_traceback(result)
    assert result.returncode == 2
    assert "argument --port" in result.stderr and "1-65535" in result.stderr


def test_two_servers_on_one_port_are_refused(tmp_path: Path) -> None:
    port = free_port()
    result = workbench("serve", "--port", str(free_port()), "--console-port", str(port), "--trainer-port", str(port),
                       "--recordings", str(tmp_path / "r"))
    assert result.returncode == 2
    assert f"--console-port and --trainer-port are both {port}" in result.stderr


def test_free_ports_pass_the_check() -> None:
    from workbench.cli_checks import ports_problem

    assert ports_problem("127.0.0.1", {"--port": free_port(), "--console-port": free_port()}) == ""
    with Listener() as busy:
        assert f"--console-port {busy}" in ports_problem("127.0.0.1", {"--port": free_port(),
                                                                       "--console-port": busy})


# --- 2. ratings sheets ---------------------------------------------------------------------------------------------


def test_rsme_sheet_with_a_session_id_column_fills_the_matching_call(tmp_path: Path) -> None:
    from analysis.imports import read_ratings_csv
    from analysis.run import merge_rsme

    trials = pd.DataFrame({
        "participant": ["P001", "P001"], "session_id": ["sim-3-p001", "sim-0-p001"],
        "scenario_call_id": ["c1", "c1"], "call_id": ["k1", "k2"],
        "rsme": pd.array([pd.NA, pd.NA], dtype="Float64"), "rsme_source": [None, None],
    })
    sheet = tmp_path / "r.csv"
    sheet.write_text("participant;session_id;call_id;rsme\nP001;sim-3-p001;c1;40,5\nP001;;c1;12\n"
                     "P001;sim-9-p001;c1;30\n", encoding="utf-8")
    merged, quality = merge_rsme(trials, read_ratings_csv(sheet, "rsme"))
    assert merged["rsme"].tolist()[0] == 40.5  # the sheet's session picks one of the two sessions
    assert pd.isna(merged["rsme"].tolist()[1])
    problems = [q["problem"] for q in quality]
    assert any("line 3" in p and "ambiguous" in p for p in problems)  # no session: matches both
    assert any("line 4" in p and "matches no call" in p for p in problems)


def test_analyze_with_a_session_id_sheet_and_a_missing_sheet(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    sim = workbench("simulate", "--participants", "2", "--scenario", str(SCENARIO), "--effects", str(EFFECTS),
                    "--seed", "3", "--out", str(rec))
    assert sim.returncode == 0, sim.stderr
    events = [json.loads(x) for x in (rec / "sim-3-p001" / "events.jsonl").read_text().splitlines()]
    call = next(e["data"]["scenario_call_id"] for e in events if e["type"] == "call.created")
    sheet = tmp_path / "r.csv"
    sheet.write_text(f"participant;session_id;call_id;rsme\nP001;sim-3-p001;{call};40,5\n", encoding="utf-8")
    out = tmp_path / "out"
    result = workbench("analyze", str(rec), "--out", str(out), "--ratings", str(sheet), "--quiet", timeout=240)
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert (out / "trials.csv").is_file()

    missing = workbench("analyze", str(rec), "--out", str(tmp_path / "o2"), "--ratings", str(tmp_path / "nope.csv"))
    no_traceback(missing)
    assert missing.returncode == 2
    assert "nope.csv does not exist" in missing.stderr and "--ratings" in missing.stderr
    assert not (tmp_path / "o2").exists()


def test_analyze_help_lists_the_accepted_columns() -> None:
    out = " ".join(workbench("analyze", "--help", env=dict(os.environ, COLUMNS="400")).stdout.split())
    for spellings in ["participant/participant_id/pp/deelnemer", "session_id/session/sessie",
                      "scenario_call_id/call/call_id/melding", "rsme/rsme_score/score", "block_id/block/blok",
                      "mental_demand/mental/mentaal", "frustration/frustratie", "weight_<subscale>"]:
        assert spellings in out


# --- 3. export-eido ------------------------------------------------------------------------------------------------


def test_export_eido_makes_the_output_folder(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    assert workbench("simulate", "--participants", "1", "--scenario", str(SCENARIO), "--effects", str(EFFECTS),
                     "--out", str(rec)).returncode == 0
    target = tmp_path / "missing" / "dir" / "x.json"
    result = workbench("export-eido", str(rec / "sim-0-p001"), "--out", str(target))
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    documents = json.loads(target.read_text(encoding="utf-8"))
    events = [json.loads(x) for x in (rec / "sim-0-p001" / "events.jsonl").read_text().splitlines()]
    assert len(documents) == sum(e["type"] == "call.created" for e in events) > 0  # one incident per call
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]  # no partial file left beside it


# --- 4. run --ingest with access codes ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.webrtc
def test_run_on_an_ingest_with_access_codes(tmp_path: Path) -> None:
    codes = tmp_path / "codes.json"
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--no-console", "--port", str(port), "--recordings",
         str(tmp_path / "rec"), "--access-codes", str(codes)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (401/404): up
            except OSError:
                assert time.monotonic() < deadline and serve.poll() is None, "serve did not come up"
                time.sleep(0.3)
        scenario = tmp_path / "s.toml"
        scenario.write_text(scenario_text([{"id": "c1", "lines": [(0, "brand")]}], [{"id": "b1", "calls": ["c1"]}]))
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_ACCESS_TOKEN"}
        refused = workbench("run", str(scenario), "--ingest", url, "--duration", "2", "--no-nasa-tlx", env=env)
        no_traceback(refused)
        assert refused.returncode == 1
        assert "HTTP 401" in refused.stderr and "--access-codes FILE" in refused.stderr

        bad = workbench("run", str(scenario), "--ingest", url, "--access-codes", str(tmp_path / "none.json"), env=env)
        assert bad.returncode == 2 and "none.json not found" in bad.stderr

        played = workbench("run", str(scenario), "--ingest", url, "--access-codes", str(codes), "--duration", "3",
                           "--no-nasa-tlx", "--session-id", "with-codes", env=env, timeout=120)
        no_traceback(played)
        assert played.returncode == 0, played.stdout + played.stderr
        assert "Session: with-codes" in played.stdout
        assert (tmp_path / "rec" / "with-codes" / "events.jsonl").is_file()
        code = json.loads(codes.read_text())["trainer"]
        by_code = workbench("run", str(scenario), "--ingest", url, "--access-code", code, "--duration", "2",
                            "--no-nasa-tlx", "--session-id", "with-code", env=env, timeout=120)
        assert by_code.returncode == 0, by_code.stderr
        assert (tmp_path / "rec" / "with-code" / "events.jsonl").is_file()
    finally:
        serve.terminate()
        serve.wait(30)


def test_run_help_documents_the_access_token() -> None:
    out = workbench("run", "--help").stdout
    assert "--access-code CODE" in out and "WORKBENCH_ACCESS_TOKEN" in out
    alone = workbench("run", str(SCENARIO), "--access-code", "x", "--no-console", "--port", str(free_port()))
    assert alone.returncode == 2 and "--access-code is for --ingest URL" in alone.stderr


# --- 5. durations --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["demo", "run", "caller"])
@pytest.mark.parametrize("value", ["-5", "0", "nan"])
def test_non_positive_durations_are_refused(tmp_path: Path, command: str, value: str) -> None:
    lead = {"run": [str(SCENARIO)], "caller": ["http://127.0.0.1:9/c/x"]}.get(command, [])
    rest = ["--recordings", str(tmp_path / "rec")] if command != "caller" else []
    result = workbench(command, *lead, f"--duration={value}", *rest)
    no_traceback(result)
    assert result.returncode == 2
    assert "argument --duration" in result.stderr and "greater than 0" in result.stderr
    assert not (tmp_path / "rec").exists()


# --- 6. simulated pseudonyms ---------------------------------------------------------------------------------------


def test_a_second_simulation_may_not_reuse_pseudonyms_in_one_folder(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    common = ["--participants", "2", "--scenario", str(SCENARIO), "--effects", str(EFFECTS), "--out", str(out)]
    assert workbench("simulate", *common, "--seed", "3").returncode == 0
    before = sorted(p.name for p in out.iterdir())
    clash = workbench("simulate", *common, "--seed", "0")
    no_traceback(clash)
    assert clash.returncode == 2
    assert "P001 (session sim-3-p001)" in clash.stderr and "--participant-prefix" in clash.stderr
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written

    ok = workbench("simulate", *common, "--seed", "0", "--participant-prefix", "S0")
    assert ok.returncode == 0, ok.stderr
    people = {json.loads((p / "session.json").read_text())["participant"]: p.name for p in out.iterdir()}
    assert people == {"P001": "sim-3-p001", "P002": "sim-3-p002", "S0001": "sim-0-s0001", "S0002": "sim-0-s0002"}
    bad = workbench("simulate", *common, "--seed", "1", "--participant-prefix", "../x")
    assert bad.returncode == 2 and "prefix '../x' is not valid" in bad.stderr


def test_simulate_automation_may_not_reuse_pseudonyms_either(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    assert workbench("simulate", "--participants", "1", "--scenario", str(SCENARIO), "--effects", str(EFFECTS),
                     "--out", str(out)).returncode == 0
    clash = workbench("simulate-automation", "--participants", "1", "--scenario", str(SCENARIO), "--out", str(out))
    no_traceback(clash)
    assert clash.returncode == 2 and "P001 (session sim-0-p001)" in clash.stderr and "another --out" in clash.stderr
    assert [p.name for p in out.iterdir()] == ["sim-0-p001"]


# --- 7. smaller messages -------------------------------------------------------------------------------------------


def test_caller_takes_builtin_media(tmp_path: Path) -> None:
    result = workbench("caller", f"http://127.0.0.1:{free_port()}/c/x", "--video", "builtin:demo_street_video",
                       "--photo", "builtin:demo_fire_photo@1", "--duration", "2", timeout=240)
    no_traceback(result)
    assert "file not found" not in result.stderr
    assert result.returncode == 1 and "workbench caller:" in result.stderr  # the link is refused, not the media
    unknown = workbench("caller", "http://127.0.0.1:9/c/x", "--video", "builtin:nope")
    assert unknown.returncode == 2 and "builtin:nope" in unknown.stderr and "demo_street_video" in unknown.stderr
    photo = workbench("caller", "http://127.0.0.1:9/c/x", "--photo", "builtin:nope@2")
    assert photo.returncode == 2 and "builtin:nope" in photo.stderr and "demo_fire_photo" in photo.stderr, photo.stderr


def test_scenario_from_records_names_a_bad_start(tmp_path: Path) -> None:
    result = workbench("scenario-from-records", str(tmp_path / "x.csv"), "--start", "yesterday", "--end",
                       "2016-01-15T13:00", "--out", str(tmp_path / "s.toml"))
    no_traceback(result)
    assert result.returncode == 2
    assert "argument --start" in result.stderr and "'yesterday'" in result.stderr and "2016-01-15T12:00" in result.stderr


def test_caller_outcomes_say_what_happened() -> None:
    import signal

    from workbench.cli import caller_outcome

    assert caller_outcome(None) == "no simulated caller started"
    assert caller_outcome(0) == "caller hung up (exit 0)"
    assert "stopped by the runner" in caller_outcome(-signal.SIGTERM)
    assert "FAILED (exit 3" in caller_outcome(3)


@pytest.mark.slow
@pytest.mark.webrtc
def test_run_verifies_the_session_after_it_has_fully_ended(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(scenario_text([{"id": "c1", "lines": [(0, "brand")]}], [{"id": "b1", "calls": ["c1"]}]))
    rec = tmp_path / "rec"
    result = workbench("run", str(scenario), "--no-console", "--port", str(free_port()), "--recordings", str(rec),
                       "--duration", "3", "--no-nasa-tlx", "--session-id", "v1", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "caller exit running" not in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("verify: OK ("))
    counted = int(line.removeprefix("verify: OK (").split()[0])
    events = (rec / "v1" / "events.jsonl").read_text().splitlines()
    assert counted == len(events)  # the count printed is the log's final one
    assert "session.ended" in [json.loads(x)["type"] for x in events]


# --- 6. the pages' commands (found by the third fresh-user check) ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", ["debrief", "research"])
def test_sigterm_stops_the_page_too(tmp_path: Path, command: str) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", command, "--recordings", str(tmp_path),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    assert resp.status == 200
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the page did not come up"
                time.sleep(0.5)
        proc.terminate()  # SIGTERM, as a service manager or a parent process stops it
        assert proc.wait(30) == 0
        with socket.socket() as probe:  # the Streamlit child is gone with it: nothing listens on the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT left over is no listener
            probe.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()


def test_debrief_names_a_session_folder_given_as_recordings(tmp_path: Path) -> None:
    session = tmp_path / "s-20261129-101010-abcdef"
    session.mkdir()
    (session / "events.jsonl").write_text("")
    result = workbench("debrief", "--recordings", str(session), "--port", str(free_port()))
    no_traceback(result)
    assert result.returncode == 2
    assert f"--recordings {tmp_path} --session {session.name}" in result.stderr, result.stderr
