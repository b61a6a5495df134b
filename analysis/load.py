"""Read recorded sessions (read side of the store only) into :class:`LoadedSession` values, with their problems.

Nothing here raises for damaged content: every problem (unreadable header, torn or invalid log lines, lines of an
unknown event type or another event schema, ``seq`` gaps, missing or invalid scenario copy, hash mismatch, header
differing from the log, session not ended or aborted, calls unknown to the scenario or missing from it) becomes a
line in ``LoadedSession.problems`` and the session is still returned, so no session is ever dropped silently.
Problems across sessions (software versions that differ) are added by :func:`cross_session_problems`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.domain import events as ev
from workbench.domain.scenario import Scenario
from workbench.domain.session_state import SessionState, replay
from workbench.store.eventlog import LogProblem, read_events
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
    lines_skipped: int = 0
    """Lines of events.jsonl that could not be used (torn, invalid, unknown type, other schema)."""
    _kept: dict[str, Any] | None = field(default=None, repr=False)
    """What :meth:`release_events` kept of the events (None while the events are held)."""
    _practice: tuple[tuple[int, int], frozenset[str]] | None = field(default=None, repr=False, compare=False)
    """:attr:`practice_blocks` of the event list it was computed from ((id, length) of the list): asked for by
    every table of a session, it was a scan of all its events each time (issue 9)."""

    @property
    def n_events(self) -> int:
        """Sound events read from the log (also after :meth:`release_events`)."""
        return self._kept["n_events"] if self._kept is not None else len(self.events)

    def release_events(self) -> None:
        """Drop the event list (a study holds about 1 KB per event) after keeping what the properties below need;
        everything else derived from the events must be computed before. The replayed ``state`` stays."""
        if self._kept is None:
            self._kept = {"n_events": len(self.events), "end_reason": self.end_reason,
                          "practice_blocks": self.practice_blocks, "started": self.started,
                          "covariates": self.covariates}
        self.events = []

    @property
    def covariates(self) -> dict[str, Any]:
        """The participant's covariates for ``sessions.csv`` (:func:`analysis.covariates.covariate_values`)."""
        if self._kept is not None:
            return dict(self._kept["covariates"])
        from analysis.covariates import covariate_values

        return covariate_values(self.events)

    @property
    def end_reason(self) -> str:
        """Reason of the last session.ended event (``completed``, ``aborted``, ``server_stopped``); empty when the
        session has none."""
        if self._kept is not None:
            return self._kept["end_reason"]
        reason = ""
        for event in self.events:
            if isinstance(event.data, ev.SessionEnded):
                reason = event.data.reason
        return reason

    @property
    def practice_blocks(self) -> set[str]:
        """Ids of blocks the log marks as practice (block.practice events): their calls are not analysed."""
        if self._kept is not None:
            return set(self._kept["practice_blocks"])
        key = (id(self.events), len(self.events))
        if self._practice is None or self._practice[0] != key:
            self._practice = (key, frozenset(e.data.block_id for e in self.events
                                             if isinstance(e.data, ev.BlockPractice)))
        return set(self._practice[1])

    @property
    def calls_per_block(self) -> int | None:
        """Calls worked per block when the session says so (``extra.calls_per_block`` in session.json, written by
        ``workbench simulate --calls-per-block``); None when every scenario call of a block is expected once."""
        extra = self.header.get("extra")
        value = extra.get("calls_per_block") if isinstance(extra, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    def _missing(self) -> list[tuple[str, int]]:
        """(description, calls) of what never arrived, in block order; see :attr:`missing_calls`."""
        if self.scenario is None:
            return []
        known = {b.id: b for b in self.scenario.blocks}
        per_block = self.calls_per_block
        missing: list[tuple[str, int]] = []
        for block_id in self.block_order:
            block = known.get(block_id)
            if block is None:
                continue
            arrived = [c for c in self.state.calls.values() if c.block_id == block_id]
            if per_block is not None:
                if len(arrived) < per_block:
                    missing.append((f"{block_id}: {per_block - len(arrived)} of {per_block} calls",
                                    per_block - len(arrived)))
                continue
            ids = {c.scenario_call_id for c in arrived}
            missing += [(c, 1) for c in block.call_ids if c not in ids and (c, 1) not in missing]
        return missing

    @property
    def missing_calls(self) -> list[str]:
        """What never arrived of the blocks in the block order, in block order: scenario call ids, or, when the
        session works a fixed number of calls per block (:attr:`calls_per_block`), ``<block>: <k> of <n> calls``.
        Empty without a scenario."""
        return [text for text, _ in self._missing()]

    @property
    def calls_missing(self) -> int:
        """Number of calls that never arrived (see :attr:`missing_calls`)."""
        return sum(n for _, n in self._missing())

    @property
    def started(self) -> ev.SessionStarted | None:
        """The first session.started payload of the log, or None when there is none."""
        if self._kept is not None:
            return self._kept["started"]
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
    # Hidden folders are never sessions to analyse: ``.withdrawing-<id>`` is a withdrawn participant's data that a
    # crash left mid-removal (workbench.store.privacy), other dot folders are temporary.
    found = sorted((p for p in path.iterdir() if not p.name.startswith(".") and is_session_folder(p)),
                   key=lambda p: p.name)
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
    lines_skipped = 0
    try:
        events, log_problems = read_events(path / "events.jsonl")
        problems.extend(_condense_log_problems(log_problems))
        lines_skipped = sum(1 for p in log_problems if not p.problem.startswith("seq "))
    except FileNotFoundError:
        problems.append("events.jsonl is missing; the session has no calls")
    state = replay(events)

    session = LoadedSession(path.name, path, header, events, state, None, problems, lines_skipped=lines_skipped)
    _check_header_against_log(session)
    session.scenario = _load_scenario_copy(session)
    if not state.ended:
        problems.append("not ended: no session.ended event (the session was cut off or is still running)")
    elif session.end_reason != "completed":
        problems.append(f"{session.end_reason or 'ended'}: session.ended reason {session.end_reason!r} (the session "
                        "did not run to completion; its calls so far are analysed)")
    missing = session.missing_calls
    if missing:
        problems.append(f"missing calls: {session.calls_missing} scenario call(s) of the block order never arrived "
                        f"({', '.join(missing)})")
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


def _condense_log_problems(log_problems: list[LogProblem]) -> list[str]:
    """One line per problem of the log, except that lines of an unknown event type or another event schema are
    summarised per type/schema (a newer or foreign recorder writes many of them) with their line numbers."""
    out: list[str] = []
    grouped: dict[str, list[int]] = {}
    for p in log_problems:
        unknown = re.match(r"unknown event type '([^']*)'", p.problem)
        schema = re.match(r"event schema (\S+) is not supported", p.problem)
        if unknown:
            key = f"unknown event type {unknown.group(1)!r} (not declared in this version)"
        elif schema:
            key = f"event schema {schema.group(1)} (this version reads {ev.EVENT_SCHEMA}): version mismatch"
        else:
            out.append(f"events.jsonl line {p.line}: {p.problem}")
            continue
        grouped.setdefault(key, []).append(p.line)
    for key, lines in grouped.items():
        shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        out.append(f"events.jsonl: {len(lines)} line(s) of {key} skipped (lines {shown})")
    return out


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
        ("software_version", first.software_version),
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


def cross_session_problems(sessions: list[LoadedSession]) -> None:
    """Add, to every session whose software version differs from the most common one among ``sessions``, a
    problem naming both versions (sessions recorded by different versions may not be comparable). Versions come
    from session.json, else session.started. Modifies the sessions' ``problems`` in place."""
    versions: dict[str, str] = {}
    for s in sessions:
        started = s.started
        version = s.header.get("software_version") or (started.software_version if started else "")
        versions[s.session_id] = str(version or "")
    counts: dict[str, int] = {}
    for v in versions.values():
        if v:
            counts[v] = counts.get(v, 0) + 1
    if len(counts) < 2:
        return
    majority = max(counts, key=lambda v: (counts[v], v))
    summary = ", ".join(f"{v} ({n} session(s))" for v, n in sorted(counts.items()))
    for s in sessions:
        v = versions[s.session_id]
        if v and v != majority:
            s.problems.append(f"version mismatch: recorded by software version {v}, most sessions by {majority} "
                              f"(versions: {summary})")
