"""The `workbench` command line: help on every command, and clear errors for bad input."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = ["demo", "serve", "run", "caller", "analyze", "verify", "bench"]


def workbench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, timeout=timeout)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str) -> None:
    result = workbench(command, "--help")
    assert result.returncode == 0
    assert f"usage: workbench {command}" in result.stdout


def test_serve_help_lists_the_contracted_options() -> None:
    out = workbench("serve", "--help").stdout
    for option in ["--host", "--port", "--console-port", "--recordings", "--ice", "--no-console", "--public-url",
                   "--tls", "--cert", "--key", "--stun", "--turn", "--turn-user", "--turn-password"]:
        assert option in out


def test_run_refuses_an_invalid_scenario_naming_file_and_field(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "keep.txt").write_text("already here")
    before = tree_digest(recordings)
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\n[[blocks]]\nid = "b"\nmodality = "smellovision"\ncalls = ["c"]\n'
                   '[[calls]]\nid = "c"\narrival_s = 0\n[calls.truth]\nincident_type = "fire"\nurgency = "asap"\n')
    result = workbench("run", str(bad), "--recordings", str(recordings), "--no-console")
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "blocks.0.modality" in result.stderr and "calls.0.truth.urgency" in result.stderr
    assert tree_digest(recordings) == before


def test_caller_refuses_a_missing_media_file(tmp_path: Path) -> None:
    result = workbench("caller", "http://127.0.0.1:9/c/x", "--video", str(tmp_path / "nope.mp4"))
    assert result.returncode == 2
    assert "nope.mp4: file not found" in result.stderr


def test_caller_reports_a_refused_link(tmp_path: Path) -> None:
    from tests.conftest import free_port

    result = workbench("caller", f"http://127.0.0.1:{free_port()}/c/unknown", "--duration", "1")
    assert result.returncode == 1
    assert "workbench caller: Cannot connect to host 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_fails_on_a_changed_media_file(tmp_path: Path) -> None:
    from workbench.store.recordings import Recordings, SessionHeader

    folder = Recordings(tmp_path).create_session(SessionHeader("s1", "P01", "adhoc", "", [], 0, "0.1.0", "2026-11-29T10:00:00+00:00"))
    folder.event_log().append("ingest", __import__("workbench.domain.events", fromlist=["x"]).SessionEnded("completed"))
    folder.store_media("c-1", "photo-p1.jpg", b"\xff\xd8 original bytes")
    assert workbench("verify", str(folder.path)).returncode == 0
    (folder.path / "media" / "c-1" / "photo-p1.jpg").write_bytes(b"\xff\xd8 changed bytes!")
    result = workbench("verify", str(folder.path))
    assert result.returncode == 1
    assert "media/c-1/photo-p1.jpg: SHA-256 does not match" in result.stdout


def test_analyze_refuses_a_folder_without_sessions(tmp_path: Path) -> None:
    result = workbench("analyze", str(tmp_path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert str(tmp_path) in result.stderr
