"""Garbage collection in the console's Streamlit process (issue 6): no full collection after every run, and the
objects loaded at start-up frozen once, so Python's own full collections stay short."""

from __future__ import annotations

import subprocess
import sys

from workbench.console.launch import streamlit_command


def test_streamlit_runs_without_a_collection_after_every_run() -> None:
    cmd = streamlit_command(8599)
    assert cmd[cmd.index("--runner.postScriptGC") + 1] == "false"


def test_the_loaded_objects_are_frozen_once_per_process() -> None:
    code = ("import gc, streamlit; from workbench.console import gc_tuning; first = gc_tuning.freeze_loaded_objects(); "
            "n = gc.get_freeze_count(); again = gc_tuning.freeze_loaded_objects(); "
            "print(first, n > 10000, again, gc.get_freeze_count() == n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True", "True", "False", "True"], out


def test_the_page_asks_for_the_freeze_count_at_most_once_per_process(monkeypatch) -> None:
    """``gc.get_freeze_count`` walks every frozen object (O(n)): a page that asked on every rerun spent ~15 ms of
    each full rerun on it."""
    import gc

    from streamlit.testing.v1 import AppTest

    from tests.conftest import free_port
    from workbench.console.launch import APP_PATH

    asked: list[int] = []
    real = gc.get_freeze_count
    monkeypatch.setattr(gc, "get_freeze_count", lambda: asked.append(1) or real())
    monkeypatch.setenv("WORKBENCH_INGEST_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens: the error page
    at = AppTest.from_file(str(APP_PATH), default_timeout=30)
    for _ in range(3):
        at.run()
        assert "not reachable" in " ".join(str(e.value) for e in at.error)
    assert len(asked) <= 1, f"asked {len(asked)} times in 3 runs"
