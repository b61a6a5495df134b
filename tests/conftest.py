"""Shared fixtures: where the real data lies, the browser, and the network-namespace check."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from benchmarks.console_rig import CHROMIUM_ARGS, free_port  # noqa: F401  (free_port: for the tests)

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "data" / "real"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

CHROMIUM_BASE_ARGS = list(CHROMIUM_ARGS)
"""Flags every test browser gets (DESIGN.md: without the networking ones Chromium dials out at start-up); one list
with the benchmarks' browsers (:data:`benchmarks.console_rig.CHROMIUM_ARGS`)."""


def child_pids(pid: int) -> list[int]:
    """The living child processes of ``pid`` (Linux ``/proc``): the ingest's recorder process and its helpers."""
    listings = Path(f"/proc/{pid}/task").glob("*/children")
    return [int(child) for listing in listings for child in listing.read_text().split()]


async def poll(fetch: Callable[[], Awaitable[Any]], predicate: Callable[[Any], bool], timeout_s: float, what: str,
               step_s: float = 0.2) -> Any:
    """Call ``await fetch()`` every ``step_s`` s until ``predicate(value)`` holds and return that value; fail after
    ``timeout_s`` s naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = await fetch()
        if predicate(value):
            return value
        await asyncio.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last value: {value!r}")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real``; skips the test when the shared data is not beside the clone."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of Debian's Chromium; skips when it is not installed (make test installs it as root)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (run make test as root, or apt-get install chromium)")
    return CHROMIUM


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests get one rerun (pytest-rerunfailures; why in pyproject.toml)."""
    for item in items:
        if item.get_closest_marker("browser") is not None and item.get_closest_marker("flaky") is None:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))


def pytest_report_header(config: pytest.Config) -> str:
    isolated = os.environ.get("WORKBENCH_NETNS") == "1"
    return f"network: {'private loopback-only namespace' if isolated else 'HOST network (not isolated)'}"
