"""Start the dispatcher console (a Streamlit server) as a child process, and wait until it answers.

The console's configuration travels in environment variables (:class:`ConsoleConfig`), so the page script reads
it the same way whether started here, by ``workbench serve`` or by hand (``streamlit run workbench/console/app.py``).
Streamlit runs headless, without usage statistics and without development mode, and loads nothing remote.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Mapping

APP_PATH = pathlib.Path(__file__).with_name("app.py")
RESEARCH_PATH = pathlib.Path(__file__).with_name("research.py")
"""The researcher's page (``workbench research``): analysis of a recordings folder, with the heat map."""
DEBRIEF_PATH = pathlib.Path(__file__).with_name("debrief.py")
"""The trainer's debrief page (``workbench debrief``): per call, ground truth, replay and time line."""
"""The page script Streamlit runs."""


@dataclass(frozen=True)
class ConsoleConfig:
    """The console's settings.

    ``ingest_url`` is how the console's server reaches the ingest; ``public_ingest_url`` how the dispatcher's browser
    reaches it (iframes, images); ``recordings`` the recordings root (to read a session's ``scenario.toml`` copy for
    the checklist), None when not shared; ``session_id`` pins the session (else ``?session=``, else the newest live).
    ``drt`` runs the Detection Response Task (also per page with ``?drt=1``), with stimulus ``drt_kind``
    (``visual``, ``tone``, ``visual_tone``) and response key ``drt_key`` (a ``KeyboardEvent.key``);
    ``tlx_weights`` adds the 15 pairwise comparisons after each NASA-TLX.
    """

    ingest_url: str
    public_ingest_url: str
    recordings: pathlib.Path | None = None
    station: str = "station-1"
    session_id: str | None = None
    drt: bool = False
    drt_kind: str = "visual"
    drt_key: str = "Control"
    tlx_weights: bool = False
    participant_flow: bool = False
    """Lead the participant through consent, instructions, practice, breaks and the end questionnaire
    (``workbench.console.participant_flow``; also per page with ``?flow=1``)."""
    consent_file: pathlib.Path | None = None
    """The lab's consent text (Markdown, UTF-8) shown by the participant flow; None for the built-in text."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "ConsoleConfig":
        """Read ``WORKBENCH_INGEST_URL`` (default ``http://127.0.0.1:8080``), ``WORKBENCH_INGEST_PUBLIC_URL``
        (default: the ingest URL), ``WORKBENCH_RECORDINGS``, ``WORKBENCH_STATION``, ``WORKBENCH_SESSION``,
        ``WORKBENCH_DRT`` (``1`` to run the DRT), ``WORKBENCH_DRT_KIND``, ``WORKBENCH_DRT_KEY`` and
        ``WORKBENCH_TLX_WEIGHTS`` (``1`` for the pairwise comparisons) and ``WORKBENCH_PARTICIPANT_FLOW`` (``1`` for
        the participant flow) with ``WORKBENCH_CONSENT_FILE`` (the lab's consent text)."""
        ingest = environ.get("WORKBENCH_INGEST_URL") or "http://127.0.0.1:8080"
        recordings = environ.get("WORKBENCH_RECORDINGS")
        return cls(
            ingest_url=ingest.rstrip("/"),
            public_ingest_url=(environ.get("WORKBENCH_INGEST_PUBLIC_URL") or ingest).rstrip("/"),
            recordings=pathlib.Path(recordings) if recordings else None,
            station=environ.get("WORKBENCH_STATION") or "station-1",
            session_id=environ.get("WORKBENCH_SESSION") or None,
            drt=environ.get("WORKBENCH_DRT", "") == "1",
            drt_kind=environ.get("WORKBENCH_DRT_KIND") or "visual",
            drt_key=environ.get("WORKBENCH_DRT_KEY") or "Control",
            tlx_weights=environ.get("WORKBENCH_TLX_WEIGHTS", "") == "1",
            participant_flow=environ.get("WORKBENCH_PARTICIPANT_FLOW", "") == "1",
            consent_file=pathlib.Path(environ["WORKBENCH_CONSENT_FILE"]) if environ.get("WORKBENCH_CONSENT_FILE")
            else None,
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that :meth:`from_env` reads back into this configuration."""
        env = {
            "WORKBENCH_INGEST_URL": self.ingest_url,
            "WORKBENCH_INGEST_PUBLIC_URL": self.public_ingest_url,
            "WORKBENCH_STATION": self.station,
        }
        if self.recordings is not None:
            env["WORKBENCH_RECORDINGS"] = str(self.recordings)
        if self.session_id:
            env["WORKBENCH_SESSION"] = self.session_id
        if self.drt:
            env["WORKBENCH_DRT"] = "1"
        if self.drt_kind != "visual":
            env["WORKBENCH_DRT_KIND"] = self.drt_kind
        if self.drt_key != "Control":
            env["WORKBENCH_DRT_KEY"] = self.drt_key
        if self.tlx_weights:
            env["WORKBENCH_TLX_WEIGHTS"] = "1"
        if self.participant_flow:
            env["WORKBENCH_PARTICIPANT_FLOW"] = "1"
        if self.consent_file is not None:
            env["WORKBENCH_CONSENT_FILE"] = str(self.consent_file)
        return env


def streamlit_command(port: int, host: str = "127.0.0.1", script: pathlib.Path | None = None) -> list[str]:
    """The command line that serves ``script`` (default: the dispatcher page) on ``host:port``."""
    return [
        sys.executable, "-m", "streamlit", "run", str(script or APP_PATH),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",  # no "Deploy" button (it links to a remote service)
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        # Streamlit's default full collection after every script or fragment run held the GIL for 55-115 ms on
        # this machine, and so held back the run's own deltas and the next run (a click waited behind one or two
        # of them; see benchmarks/console_trace.py). Python's own generational collection still runs.
        "--runner.postScriptGC", "false",
    ]


def start_console(
    ingest_url: str,
    *,
    port: int,
    host: str = "127.0.0.1",
    public_ingest_url: str | None = None,
    recordings: pathlib.Path | None = None,
    station: str = "station-1",
    session_id: str | None = None,
    drt: bool = False,
    drt_kind: str = "visual",
    tlx_weights: bool = False,
    participant_flow: bool = False,
    consent_file: pathlib.Path | None = None,
    access_file: pathlib.Path | None = None,
) -> subprocess.Popen:
    """Start ``streamlit run app.py`` on ``host:port`` talking to the ingest at ``ingest_url``; returns the process.

    The caller owns the process (``terminate()`` and ``wait()`` it). Use :func:`wait_until_ready` before opening it.
    """
    config = ConsoleConfig(
        ingest_url=ingest_url.rstrip("/"),
        public_ingest_url=(public_ingest_url or ingest_url).rstrip("/"),
        recordings=recordings,
        station=station,
        session_id=session_id,
        drt=drt,
        drt_kind=drt_kind,
        tlx_weights=tlx_weights,
        participant_flow=participant_flow,
        consent_file=consent_file,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_") or k == "WORKBENCH_NETNS"}
    env.update(config.to_env())
    if access_file is not None:  # issue 7: the page's access-code gate (workbench/console/access.py)
        env["WORKBENCH_ACCESS_FILE"] = str(pathlib.Path(access_file).resolve())
    return subprocess.Popen(streamlit_command(port, host), env=env, stdin=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM ``proc`` and, when it has not exited within ``timeout_s`` s, SIGKILL it; returns once it has
    exited (a page, the trainer's page or an ingest run as a child must not be left running on its port)."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until_ready(url: str, timeout_s: float = 30) -> None:
    """Poll ``{url}/_stcore/health`` until it answers 200; raise ``TimeoutError`` after ``timeout_s`` seconds."""
    health = url.rstrip("/") + "/_stcore/health"
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(0.2)
    raise TimeoutError(f"console at {url} not ready after {timeout_s:.0f} s (last: {last})")
