"""Reading a study's sessions into the rows of every table, one session at a time, in one or two processes.

Each session folder is loaded (:func:`analysis.load.load_session`), every table's rows are taken from its events,
and its events are then released (a study holds about 1 KB per event), so memory grows with the rows kept, not
with the logs. With ``workers`` > 1 the sessions are read by a pool of forked processes and put together in the
sessions' order, so the tables are the same whatever the number of workers. Forked, not spawned: a spawned worker
re-runs the caller's main script (a researcher's script without a ``__main__`` guard would start the analysis
again in every worker) and re-imports pandas; but forking a process that runs other threads (the Streamlit
server) can deadlock a child, so the pool is used only while the calling process has a single thread.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any, Callable, Sequence

from analysis.automation import AutomationRows, automation_rows
from analysis.instruments import drt_rows, focus_rows, media_view_rows, tlx_block_rows
from analysis.load import LoadedSession, cross_session_problems, load_session
from analysis.tables import EventTable, form_change_rows
from analysis.trials import trial_rows

PARALLEL_FROM_SESSIONS = 16
"""From this many sessions on, :func:`default_workers` reads with two processes: starting a fresh interpreter
costs a few seconds, which only a study's worth of sessions repays (100 sessions: load 28 s -> about half)."""


@dataclass
class SessionRows:
    """Everything the tables take from the sessions read so far (rows in session order)."""

    sessions: list[LoadedSession] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)
    events: EventTable = field(default_factory=EventTable)
    form_changes: list[dict[str, Any]] = field(default_factory=list)
    drt: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    focus: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    instrument_quality: list[dict[str, Any]] = field(default_factory=list)
    designed: list[tuple[str, dict[str, bool], bool, bool, str]] = field(default_factory=list)
    automation: AutomationRows = field(default_factory=AutomationRows)

    def extend(self, other: SessionRows) -> None:
        """Append ``other``'s sessions and rows after these."""
        self.sessions += other.sessions
        self.trials += other.trials
        self.events.extend(other.events)
        self.form_changes += other.form_changes
        self.drt += other.drt
        self.views += other.views
        self.focus += other.focus
        self.blocks += other.blocks
        self.instrument_quality += other.instrument_quality
        self.designed += other.designed
        self.automation.extend(other.automation)


def designed_disagreement(session: LoadedSession) -> list[tuple[str, dict[str, bool], bool, bool, str]]:
    """Per non-practice call with ground truth: modality, congruence per aspect, closed, flagged, aspect flagged."""
    out: list[tuple[str, dict[str, bool], bool, bool, str]] = []
    if session.scenario is None:
        return out
    practice = session.practice_blocks
    for call in session.state.calls.values():
        if call.block_id in practice or not call.scenario_call_id:
            continue
        try:
            truth = session.scenario.call(call.scenario_call_id).truth
        except KeyError:
            continue
        closed = call.closed
        out.append((call.modality, dict(truth.congruence), closed is not None,
                    bool(closed and closed.disagreement_flagged), closed.disagreement_aspect if closed else ""))
    return out


def read_session(path: Path) -> SessionRows:
    """Load one session folder and take every table's rows from it; its events are released before returning."""
    s = load_session(path)
    out = SessionRows()
    out.trials = trial_rows(
        s.state, s.scenario, session_id=s.session_id, participant=s.participant, scenario_id=s.scenario_id,
        block_order=s.block_order, events=s.events, practice_blocks=s.practice_blocks,
    )
    out.events.add_session(s.session_id, s.participant, s.events)
    out.drt = drt_rows(s)
    out.views = media_view_rows(s)
    out.focus = focus_rows(s)
    out.blocks, tlx_problems = tlx_block_rows(s)
    out.instrument_quality = [{"session_id": s.session_id, "call_id": None, "record": "block", "problem": p,
                               "handling": "reported"} for p in tlx_problems]
    out.form_changes = form_change_rows(s.session_id, s.participant, s.events)
    out.designed = designed_disagreement(s)
    out.automation = automation_rows(s)
    s.release_events()
    out.sessions = [s]
    return out


def default_workers(n_sessions: int) -> int:
    """2 when there are at least :data:`PARALLEL_FROM_SESSIONS` sessions and the machine has 2 or more CPUs,
    else 1."""
    return 2 if n_sessions >= PARALLEL_FROM_SESSIONS and (os.cpu_count() or 1) >= 2 else 1


def can_fork() -> bool:
    """True when a worker process may be forked here: the platform forks and this process runs one thread."""
    return "fork" in get_all_start_methods() and threading.active_count() == 1


def read_sessions(paths: Sequence[Path], workers: int | None = None,
                  progress: Callable[[str], None] | None = None) -> SessionRows:
    """Read ``paths`` (session folders) into one :class:`SessionRows`, in the order given, with
    ``workers`` processes (None: :func:`default_workers`; one whenever :func:`can_fork` is False); then add the problems across sessions
    (:func:`analysis.load.cross_session_problems`). ``progress`` gets ``[i/n] <folder>`` per session read.
    Raises ``ValueError`` for ``workers`` < 1; errors of a worker are raised here as they were raised there."""
    workers = default_workers(len(paths)) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    result = SessionRows()

    def done(i: int, path: Path, rows: SessionRows) -> None:
        if progress is not None:
            progress(f"[{i}/{len(paths)}] {path.name}")
        result.extend(rows)

    if workers == 1 or len(paths) < 2 or not can_fork():
        for i, path in enumerate(paths, start=1):
            done(i, path, read_session(path))
    else:
        # Imported once here, before the fork, instead of once in every worker: the screening of automation_rows
        # pulls in scipy.stats and OpenCV (~4 s of CPU per process on this machine); the caller's statistics need
        # scipy afterwards anyway.
        import workbench.screening.disagreement  # noqa: F401
        import workbench.screening.image  # noqa: F401
        import workbench.screening.transcript  # noqa: F401

        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            # map() yields in submission order: the tables keep the sessions' order.
            for i, (path, rows) in enumerate(zip(paths, pool.map(read_session, paths)), start=1):
                done(i, path, rows)
    cross_session_problems(result.sessions)
    return result
