"""``analyze()``: recordings in, ``trials.csv``, ``sessions.csv`` and ``codebook.md`` out.

Reads recordings only (the store's read side); never imports the ingest, runner or console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.codebook import render_codebook
from analysis.load import AnalysisError, AnalysisInputError, LoadedSession, find_sessions, load_session
from analysis.trials import SESSION_COLUMNS, TRIAL_COLUMNS, frame, trial_rows

__all__ = ["AnalysisError", "AnalysisInputError", "AnalysisResult", "analyze", "session_row"]

PROBLEM_SEPARATOR = " | "
"""Joins a session's problems in the ``problems`` column of ``sessions.csv``."""


@dataclass
class AnalysisResult:
    """What :func:`analyze` read and wrote.

    ``sessions_with_problems`` maps a session id to its problems (only sessions with at least one);
    ``trials`` and ``sessions`` are the tables as written; ``files`` the paths written, in writing order.
    """

    sessions_loaded: int
    sessions_with_problems: dict[str, list[str]]
    trials: pd.DataFrame
    sessions: pd.DataFrame
    files: list[Path] = field(default_factory=list)

    @property
    def problems_text(self) -> str:
        """Human-readable problem report for stderr, one line per problem; empty when nothing is wrong."""
        lines = []
        for session_id, problems in self.sessions_with_problems.items():
            lines += [f"{session_id}: {p}" for p in problems]
        return "\n".join(lines)


def session_row(session: LoadedSession) -> dict[str, Any]:
    """The ``sessions.csv`` row of a loaded session (header fields from session.json, else session.started)."""
    header = session.header
    started = session.started
    seed = header.get("seed", getattr(started, "seed", None))
    return {
        "session_id": session.session_id,
        "participant": session.participant,
        "scenario_id": session.scenario_id,
        "scenario_sha256": header.get("scenario_sha256", getattr(started, "scenario_sha256", None)),
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "block_order": ";".join(session.block_order),
        "software_version": header.get("software_version", getattr(started, "software_version", None)),
        "started_at": header.get("started_at"),
        "events": len(session.events),
        "calls": len(session.state.calls),
        "ended": session.state.ended,
        "problems": PROBLEM_SEPARATOR.join(session.problems),
    }


def analyze(recordings: Path, out_dir: Path) -> AnalysisResult:
    """Analyse every session under ``recordings`` (a recordings root or one session folder) into ``out_dir``.

    Writes ``trials.csv`` (columns :data:`analysis.trials.TRIAL_COLUMNS`), ``sessions.csv``
    (:data:`analysis.trials.SESSION_COLUMNS`) and ``codebook.md``, creating ``out_dir`` if needed and replacing
    earlier outputs. Times are seconds (3 decimals). A damaged session is reported, not dropped: its sound calls
    are still rows and its problems go to ``sessions.csv`` and :attr:`AnalysisResult.problems_text`.

    Raises :class:`AnalysisInputError` (an :class:`AnalysisError`, a ``ValueError``) when ``recordings`` is missing or holds no session,
    and ``OSError`` when ``out_dir`` cannot be written.
    """
    loaded = [load_session(path) for path in find_sessions(Path(recordings))]
    rows: list[dict[str, Any]] = []
    for s in loaded:
        rows += trial_rows(
            s.state,
            s.scenario,
            session_id=s.session_id,
            participant=s.participant,
            scenario_id=s.scenario_id,
            block_order=s.block_order,
        )
    trials = frame(rows, TRIAL_COLUMNS)
    sessions = frame([session_row(s) for s in loaded], SESSION_COLUMNS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "trials.csv", out_dir / "sessions.csv", out_dir / "codebook.md"]
    trials.to_csv(files[0], index=False, na_rep="", lineterminator="\n")
    sessions.to_csv(files[1], index=False, na_rep="", lineterminator="\n")
    files[2].write_text(render_codebook(), encoding="utf-8")
    return AnalysisResult(
        sessions_loaded=len(loaded),
        sessions_with_problems={s.session_id: list(s.problems) for s in loaded if s.problems},
        trials=trials,
        sessions=sessions,
        files=files,
    )
