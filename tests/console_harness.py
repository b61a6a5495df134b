"""The pytest side of the console's browser tests: one fixture, ``console_rig``, that every console browser test
uses for its set-up and teardown (:class:`benchmarks.console_rig.ConsoleRig`: the ingest in a loop thread,
simulated callers, the console process, Chromium with the 127.0.0.1-only route guard). After the test body the
fixture tears everything down and fails the test if the page asked any other host for anything.

Use: ``from tests.console_harness import console_rig  # noqa: F401`` in the test module, then take ``console_rig``
as an argument. Screenshots go to :data:`SHOTS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.console_rig import ConsoleRig, LoopThread, make_moving_video, make_photo, stop_ingest  # noqa: F401

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
