"""Restart safety, with real processes and kill -9: a crashed runner resumed with ``workbench run --resume`` and a
crashed ingest restarted on the same recordings both continue the session at the next call, and the log has no
``seq`` gap or duplicate, no call created twice and no line said twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.runner_helpers import Robot, assert_sound_log, read_log, scenario_text

LINES = [(0, "first line"), (1.5, "second line")]
SCENARIO = scenario_text(
    [{"id": "c1", "arrival_s": 0, "lines": LINES}, {"id": "c2", "arrival_s": 3, "lines": LINES},
     {"id": "c3", "arrival_s": 0, "lines": LINES}, {"id": "c4", "arrival_s": 2, "lines": LINES}],
    [{"id": "b1", "calls": ["c1", "c2"]}, {"id": "b2", "calls": ["c3", "c4"]}],
)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


class Procs:
    """The ingest and runner processes of one test (each killed by its own pid at the end)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rec = tmp_path / "rec"
        self.scenario = tmp_path / "scenario.toml"
        self.scenario.write_text(SCENARIO)
        self.env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
        self.started: list[asyncio.subprocess.Process] = []

    async def _spawn(self, name: str, *args: str) -> asyncio.subprocess.Process:
        log = open(self.tmp / f"{name}-{len(self.started)}.log", "wb")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "workbench.cli", *args,
                                                    stdout=log, stderr=log, env=self.env)
        self.started.append(proc)
        return proc

    async def ingest(self) -> asyncio.subprocess.Process:
        proc = await self._spawn("ingest", "serve", "--no-console", "--port", str(self.port),
                                 "--recordings", str(self.rec))
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(_healthy, self.url):
            assert time.monotonic() < deadline, "the ingest did not come up"
            await asyncio.sleep(0.2)
        return proc

    async def runner(self, *args: str) -> asyncio.subprocess.Process:
        return await self._spawn("runner", "run", str(self.scenario), "--ingest", self.url, *args)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    async def cleanup(self) -> None:
        for proc in self.started:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _created(robot: Robot, scenario_call_id: str) -> bool:
    return any(c.scenario_call_id == scenario_call_id for c in robot.state.calls.values())


def _check_log(procs: Procs, session_id: str) -> list[dict]:
    events = read_log(procs.rec / session_id)
    assert_sound_log(events)
    created = sorted(e["data"]["scenario_call_id"] for e in events if e["type"] == "call.created")
    assert created == ["c1", "c2", "c3", "c4"], created
    for call_id in {e["call_id"] for e in events if e["type"] == "call.created"}:
        said = [e["data"]["index"] for e in events if e["type"] == "caller.utterance" and e["call_id"] == call_id]
        assert sorted(said) == [0, 1], (call_id, said)  # every line said, once
    assert [e["data"]["block_id"] for e in events if e["type"] == "block.started"] == ["b1", "b2"]
    assert events[-1]["type"] == "session.ended" and events[-1]["data"]["reason"] == "completed"
    return events


@pytest.mark.slow
def test_runner_killed_mid_call_resumes_at_the_next_call(tmp_path: Path) -> None:
    procs = Procs(tmp_path)

    async def main() -> None:
        try:
            await procs.ingest()
            first = await procs.runner("--session-id", "crash-runner")
            robot = Robot(procs.url, "crash-runner", close_when=lambda c: len(c.transcript) >= 2, rate_blocks=True)
            robot_task = asyncio.create_task(robot.run())
            # Kill the runner while c2 is in progress: created, answered, its second line not yet said.
            await _until(lambda: any(c.scenario_call_id == "c2" and c.transcript for c in robot.state.calls.values()),
                         30, "c2's first line")
            first.send_signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL
            await asyncio.sleep(1.0)
            second = await procs.runner("--resume", "crash-runner")
            assert await asyncio.wait_for(second.wait(), 60) == 0, procs.logs()
            await asyncio.wait_for(robot_task, 10)
        finally:
            await procs.cleanup()

    asyncio.run(main())
    events = _check_log(procs, "crash-runner")
    [resumed] = [e["data"] for e in events if e["type"] == "runner.resumed"]
    assert resumed["calls_done"] == ["c1", "c2"] and resumed["calls_in_progress"] == ["c2"]
    assert len([e for e in events if e["type"] == "session.started"]) == 1


@pytest.mark.slow
def test_ingest_killed_between_calls_comes_back_and_the_runner_goes_on(tmp_path: Path) -> None:
    procs = Procs(tmp_path)

    async def main() -> None:
        try:
            ingest = await procs.ingest()
            runner = await procs.runner("--session-id", "crash-ingest")
            robot = Robot(procs.url, "crash-ingest", close_when=lambda c: len(c.transcript) >= 2, rate_blocks=True)
            robot_task = asyncio.create_task(robot.run())
            await _until(lambda: _created(robot, "c1"), 30, "c1")
            ingest.send_signal(signal.SIGKILL)
            assert await ingest.wait() == -signal.SIGKILL
            await asyncio.sleep(2.0)  # the runner keeps trying meanwhile
            await procs.ingest()
            assert await asyncio.wait_for(runner.wait(), 90) == 0, procs.logs()
            await asyncio.wait_for(robot_task, 10)
        finally:
            await procs.cleanup()

    asyncio.run(main())
    events = _check_log(procs, "crash-ingest")
    starts = [e for e in events if e["type"] == "session.started"]
    assert len(starts) == 1
