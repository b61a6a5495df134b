"""The scenario runners the trainer's page started: one ``workbench run --ingest URL`` child process per station.

A runner outlives page reruns and browser reloads (the trainer page keeps one :class:`RunnerPool` per server,
``st.cache_resource``); the session itself lives in the ingest's log, so a restarted trainer page still watches and
steers it. Each runner writes its output to ``<runner_logs>/<session_id>.log`` (outside the recordings).
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

MAX_RUNNERS = 16
"""Most runners alive at once (stations of one lab); more are refused rather than queued."""


@dataclass
class RunnerProcess:
    """One started runner: its ``session_id``, process and log file."""

    session_id: str
    process: subprocess.Popen
    log_path: Path

    @property
    def exit_code(self) -> int | None:
        return self.process.poll()

    def log_tail(self, lines: int = 8) -> str:
        """The last ``lines`` lines of the runner's output (empty when none yet)."""
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RunnerPool:
    """The runners this trainer page started; thread-safe (Streamlit runs each browser session in a thread)."""

    def __init__(self, logs: Path) -> None:
        self.logs = Path(logs)
        self._lock = threading.Lock()
        self._runners: dict[str, RunnerProcess] = {}

    def start(self, session_id: str, command: list[str], env: dict[str, str]) -> RunnerProcess:
        """Start ``command`` for ``session_id``; raises ``RuntimeError`` when that session already has a live
        runner or :data:`MAX_RUNNERS` are alive, ``OSError`` when it cannot be started."""
        with self._lock:
            alive = [r for r in self._runners.values() if r.exit_code is None]
            if session_id in self._runners and self._runners[session_id].exit_code is None:
                raise RuntimeError(f"session {session_id} already has a running runner")
            if len(alive) >= MAX_RUNNERS:
                raise RuntimeError(f"{MAX_RUNNERS} runners are running already; end a session first")
            self.logs.mkdir(parents=True, exist_ok=True)
            log_path = self.logs / f"{session_id}.log"
            with open(log_path, "ab") as log_file:
                process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            runner = RunnerProcess(session_id, process, log_path)
            self._runners[session_id] = runner
            return runner

    def get(self, session_id: str) -> RunnerProcess | None:
        with self._lock:
            return self._runners.get(session_id)

    def stop_all(self, timeout_s: float = 10.0) -> None:
        """Terminate every live runner (each ends its callers) and wait; kill what does not stop in time."""
        with self._lock:
            runners = list(self._runners.values())
        for r in runners:
            if r.exit_code is None:
                r.process.terminate()
        for r in runners:
            try:
                r.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                r.process.kill()


def runner_env(base: dict[str, str], trainer_code: str) -> dict[str, str]:
    """The runner's environment: ``base`` plus the trainer's code (``WORKBENCH_ACCESS_TOKEN``) when roles are on."""
    env = dict(base)
    env.pop("WORKBENCH_ACCESS_TOKEN", None)
    if trainer_code:
        env["WORKBENCH_ACCESS_TOKEN"] = trainer_code
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env

