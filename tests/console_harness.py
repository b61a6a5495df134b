"""The pytest side of the console's browser tests: one fixture, ``console_rig``, that every console browser test
uses for its set-up and teardown (:class:`benchmarks.console_rig.ConsoleRig`: the ingest in a loop thread,
simulated callers, the console process, Chromium with the 127.0.0.1-only route guard). After the test body the
fixture tears everything down and fails the test if the page asked any other host for anything.

Use: ``from tests.console_harness import console_rig  # noqa: F401`` in the test module, then take ``console_rig``
as an argument. Screenshots go to :data:`SHOTS`.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from benchmarks.console_rig import (  # noqa: F401
    FAKE_MEDIA_ARGS, ConsoleRig, LoopThread, make_moving_video, make_photo, stop_ingest,
)
from workbench.console.ingest_client import IngestClient

SHOTS = Path("/tmp/console-shots")
"""Where the console's browser tests save their screenshots (looked at by whoever changes the page)."""


@pytest.fixture()
def console_rig(tmp_path: Path, chromium_path: str) -> Iterator[ConsoleRig]:
    """A :class:`ConsoleRig` in ``tmp_path``; closed after the test, which then fails on any non-loopback request."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    rig = ConsoleRig(tmp_path, chromium_path)
    try:
        yield rig
    finally:
        rig.close()
    assert rig.foreign == [], f"the console asked hosts other than 127.0.0.1: {rig.foreign}"


@pytest.fixture()
def ingest_rig(tmp_path: Path) -> Iterator[ConsoleRig]:
    """A :class:`ConsoleRig` without a browser (for AppTests against the real ingest); closed after the test."""
    rig = ConsoleRig(tmp_path)
    try:
        yield rig
    finally:
        rig.close()


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 0.1) -> Any:
    """Poll ``check`` (sleeping ``interval_s`` s) until it returns something truthy and return that; fail the test
    naming ``what`` after ``timeout_s`` s. With a Playwright page open prefer :meth:`ConsoleRig.wait` (a bare sleep
    holds back the page's routed requests)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what} (last: {result!r})")
        time.sleep(interval_s)


@pytest.fixture()
def loop_thread() -> Iterator[LoopThread]:
    """A bare asyncio loop thread (for tests that start the ingest themselves); closed after the test."""
    lt = LoopThread()
    yield lt
    lt.close()


@dataclass
class TalkbackStation:
    """A talk-back session of the demo scenario with one live-actor call (``house-fire``, video) waiting, and a
    dispatcher console serving that session at ``console_url``."""

    client: IngestClient
    session_id: str
    call: dict[str, Any]
    """``POST /api/calls``'s answer: ``call_id``, ``caller_url``, ..."""
    console_url: str
    foreign: list[str] = field(default_factory=list)
    """Requests :meth:`only_loopback` refused (any host but 127.0.0.1); a test asserts it stays empty."""

    @property
    def call_id(self) -> str:
        return str(self.call["call_id"])

    def only_loopback(self, route: Any) -> None:
        """A Playwright route handler: let data:, blob: and 127.0.0.1 through, refuse and note anything else."""
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()


@contextmanager
def talkback_station(tmp_path: Path, loop_thread: LoopThread, participant: str) -> Iterator[TalkbackStation]:
    """Start an ingest (loopback ICE) on ``loop_thread``, a session with ``"talkback": true`` for ``participant``,
    one waiting live-actor call and a console on it; yield them, then stop the console and the ingest."""
    from tests.conftest import REPO, free_port
    from workbench.console.launch import start_console, wait_until_ready
    from workbench.ingest.server import start_ingest
    from workbench.ingest.settings import IngestSettings

    recordings = tmp_path / "recordings"
    settings = IngestSettings(host="127.0.0.1", port=free_port(), recordings=recordings, ice_mode="loopback")
    ingest = loop_thread.run(start_ingest(settings))
    console = None
    try:
        client = IngestClient(ingest.url)
        scenario = (REPO / "experiments/demo/scenario.toml").read_text(encoding="utf-8")
        request = urllib.request.Request(
            ingest.url + "/api/sessions", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"participant": participant, "scenario_toml": scenario, "talkback": True}).encode())
        with urllib.request.urlopen(request, timeout=30) as resp:
            sid = json.loads(resp.read())["session_id"]
        call = client.create_call(sid, scenario_call_id="house-fire", block_id="live-video", modality="video",
                                  caller_label="live actor")
        port = free_port()
        console = start_console(ingest.url, port=port, recordings=recordings, session_id=sid, station="station-2")
        console_url = f"http://127.0.0.1:{port}"
        wait_until_ready(console_url, 120)
        yield TalkbackStation(client, sid, call, console_url)
    finally:
        if console is not None:
            console.terminate()
            console.wait(30)
        stop_ingest(loop_thread, ingest)
