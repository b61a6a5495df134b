"""Read recorded sessions (read side of the store only) into :class:`LoadedSession` values, with their problems.

Nothing here raises for damaged content: every problem (unreadable header, torn or invalid log lines, ``seq``
gaps, missing or invalid scenario copy, hash mismatch, session not ended, calls unknown to the scenario) becomes a
line in ``LoadedSession.problems`` and the session is still returned, so no session is ever dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.domain import events as ev
from workbench.domain.scenario import Scenario
from workbench.domain.session_state import SessionState, replay
from workbench.store.eventlog import read_events
from workbench.store.recordings import sha256_hex
from workbench.store.scenarios import ScenarioError, parse_scenario

SESSION_MARKERS = ("session.json", "events.jsonl")
"""A folder holding either of these files is a session folder (a session whose header was lost still counts)."""


class AnalysisError(ValueError):
    """Base of the analysis' own errors (the ``workbench analyze`` command prints the message and exits 2)."""


class AnalysisInputError(AnalysisError):
    """The path given to the analysis holds no session to analyse (missing, not a folder, or no session folders).
    The message says which path and what was expected."""


@dataclass
class LoadedSession:
    """One session folder after reading: header fields, sound events, replayed state, ground truth, problems."""

    session_id: str
    path: Path
    header: dict[str, Any]
    events: list[ev.Event]
    state: SessionState
    scenario: Scenario | None
    problems: list[str] = field(default_factory=list)

    @property
    def started(self) -> ev.SessionStarted | None:
        """The first session.started payload of the log, or None when there is none."""
        for event in self.events:
            if isinstance(event.data, ev.SessionStarted):
                return event.data
        return None

    @property
    def participant(self) -> str:
        """Participant pseudonym: session.json, else the session.started event."""
        return str(self.header.get("participant") or self.state.participant)

    @property
    def scenario_id(self) -> str:
        """Scenario id: session.json, else the session.started event."""
        return str(self.header.get("scenario_id") or self.state.scenario_id)

    @property
    def block_order(self) -> list[str]:
        """Block order: session.json, else the session.started event."""
        order = self.header.get("block_order")
        if isinstance(order, list) and all(isinstance(b, str) for b in order):
            return list(order)
        return list(self.state.block_order)


def is_session_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding ``session.json`` or ``events.jsonl``."""
    return path.is_dir() and any((path / name).is_file() for name in SESSION_MARKERS)


def find_sessions(path: Path) -> list[Path]:
    """Session folders at ``path``: the folder itself when it is a session, else its session sub-folders (sorted
    by name).

    Raises :class:`AnalysisInputError` when ``path`` does not exist, is not a folder, or holds no session.
    """
    if not path.exists():
        raise AnalysisInputError(f"{path}: no such folder; expected a recordings folder or one session folder")
    if not path.is_dir():
        raise AnalysisInputError(f"{path}: is a file; expected a recordings folder or one session folder")
    if is_session_folder(path):
        return [path]
    found = sorted((p for p in path.iterdir() if is_session_folder(p)), key=lambda p: p.name)
    if not found:
        raise AnalysisInputError(
            f"{path}: no sessions found; expected session folders (each with session.json and events.jsonl) "
            "in it, or a session folder itself"
        )
    return found


def load_session(path: Path) -> LoadedSession:
    """Read one session folder: ``session.json``, ``events.jsonl`` (replayed), and ``scenario.toml`` (the copy
    of the scenario played, parsed for its ground truth without checking media files). Never raises for content;
    see the module docstring for the problems it reports."""
    problems: list[str] = []
    header: dict[str, Any] = {}
    try:
        loaded = json.loads((path / "session.json").read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            header = loaded
        else:
            problems.append("session.json: not a JSON object; header fields taken from session.started")
    except FileNotFoundError:
        problems.append("session.json is missing; header fields taken from session.started")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"session.json is not valid JSON ({exc}); header fields taken from session.started")

    events: list[ev.Event] = []
    try:
        events, log_problems = read_events(path / "events.jsonl")
        problems.extend(f"events.jsonl line {p.line}: {p.problem}" for p in log_problems)
    except FileNotFoundError:
        problems.append("events.jsonl is missing; the session has no calls")
    state = replay(events)

    session = LoadedSession(path.name, path, header, events, state, None, problems)
    _check_header_against_log(session)
    session.scenario = _load_scenario_copy(session)
    if not state.ended:
        problems.append("not ended: no session.ended event (the session was cut off or is still running)")
    if session.scenario is not None:
        known = {c.id for c in session.scenario.calls}
        for call in state.calls.values():
            if call.scenario_call_id and call.scenario_call_id not in known:
                problems.append(
                    f"call {call.call_id}: scenario call {call.scenario_call_id!r} is not in scenario.toml; "
                    "its ground-truth columns are empty"
                )
    order = session.block_order
    for call in state.calls.values():
        if call.block_id and call.block_id not in order:
            problems.append(f"call {call.call_id}: block {call.block_id!r} is not in the block order {order}")
    return session


def _check_header_against_log(session: LoadedSession) -> None:
    first = session.started
    if first is None:
        session.problems.append("no session.started event")
        return
    if not session.header:
        return
    for name, logged in (
        ("participant", first.participant),
        ("scenario_id", first.scenario_id),
        ("scenario_sha256", first.scenario_sha256),
        ("seed", first.seed),
        ("block_order", first.block_order),
    ):
        if name in session.header and session.header[name] != logged:
            session.problems.append(
                f"session.json {name} {session.header[name]!r} differs from session.started {logged!r}; "
                "session.json is used"
            )


def _load_scenario_copy(session: LoadedSession) -> Scenario | None:
    copy = session.path / "scenario.toml"
    if not copy.is_file():
        if session.scenario_id == "adhoc":
            session.problems.append("ad-hoc session (no scenario): ground-truth columns are empty")
        else:
            session.problems.append("no scenario.toml copy: ground-truth columns are empty")
        return None
    data = copy.read_bytes()
    started = session.started
    expected = session.header.get("scenario_sha256") or (started.scenario_sha256 if started else "")
    if expected and sha256_hex(data) != expected:
        session.problems.append(
            "scenario.toml: SHA-256 differs from scenario_sha256 in session.json (the copy changed); "
            "its ground truth is used anyway"
        )
    try:
        return parse_scenario(data, f"{session.session_id}/scenario.toml", session.path, check_media=False)
    except ScenarioError as exc:
        session.problems.append(f"scenario.toml is invalid, ground-truth columns are empty: {exc}")
        return None
