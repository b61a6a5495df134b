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
