"""The append-only event log of one session.

:class:`FileEventLog` writes ``events.jsonl``: one JSON object per line, flushed and fsynced per event, ``seq``
assigned here and nowhere else (1, 2, 3, ... without gaps). Re-opening an existing log continues after its last
sound line; a line torn by a crash is isolated behind a newline and reported by :func:`read_events`, never
rewritten. :class:`MemoryEventLog` is the same port in memory, for tests.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import orjson

from workbench.domain import events as ev


class Clock(Protocol):
    """Time source of the log: monotonic ns for durations, aware UTC datetime for the wall clock."""

    def monotonic_ns(self) -> int: ...

    def now_utc(self) -> datetime: ...


class SystemClock:
    """The real clock: ``time.monotonic_ns()`` and ``datetime.now(timezone.utc)``."""

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def now_utc(self) -> datetime:
        return datetime.now(timezone.utc)


class EventLog(Protocol):
    """Port of a session's event log."""

    session_id: str

    def append(self, source: str, payload: ev.Payload, call_id: str | None = None) -> ev.Event: ...

    def events(self, after_seq: int = 0) -> list[ev.Event]: ...


class _LogBase:
    def __init__(self, session_id: str, clock: Clock) -> None:
        self.session_id = session_id
        self._clock = clock
        self._events: list[ev.Event] = []
        self._lock = threading.Lock()

    def _make(self, source: str, payload: ev.Payload, call_id: str | None) -> ev.Event:
        ev.check_envelope(type(payload), source, call_id)
        # Validate the JSON that will be written exactly as the reader will (field types, vocabularies, ranges),
        # so nothing is written that read_events would later reject: dataclasses do not check types themselves.
        ev.payload_from_dict(payload.TYPE, json.loads(json.dumps(dataclasses.asdict(payload))))
        seq = self._events[-1].seq + 1 if self._events else 1
        return ev.Event(
            schema=ev.EVENT_SCHEMA,
            session_id=self.session_id,
            seq=seq,
            t_mono_ns=self._clock.monotonic_ns(),
            t_wall=self._clock.now_utc().isoformat(timespec="microseconds"),
            source=source,
            type=payload.TYPE,
            call_id=call_id,
            data=payload,
        )

    def events(self, after_seq: int = 0) -> list[ev.Event]:
        """Events with ``seq > after_seq``, in order."""
        with self._lock:
            if after_seq <= 0:
                return list(self._events)
            # seq is 1-based and gapless, so the index is seq - 1 when the log was read whole.
            return [e for e in self._events if e.seq > after_seq]


class MemoryEventLog(_LogBase):
    """An in-memory event log (same contract as :class:`FileEventLog`, nothing written)."""

    def __init__(self, session_id: str, clock: Clock | None = None) -> None:
        super().__init__(session_id, clock or SystemClock())

    def append(self, source: str, payload: ev.Payload, call_id: str | None = None) -> ev.Event:
        """Validate and append; raises :class:`~workbench.domain.events.EventValidationError`."""
        with self._lock:
            event = self._make(source, payload, call_id)
            self._events.append(event)
            return event


@dataclass(frozen=True)
class LogProblem:
    """A line of ``events.jsonl`` that could not be read: 1-based line number and what is wrong."""

    line: int
    problem: str


_LONG_DIGITS = re.compile(rb"[0-9]{19}")
"""19 digits in a row: possibly an integer outside orjson's 64-bit range (any such line is decoded by ``json``)."""


def decode_line(line: bytes) -> object:
    """One line of ``events.jsonl`` (UTF-8 bytes, no newline) decoded as JSON.

    orjson decodes the well-formed lines (about 3x faster than ``json``, a third of the time of reading a study);
    a line orjson refuses is decoded again with ``json.loads``, so what is accepted and the errors raised
    (``UnicodeDecodeError``, ``json.JSONDecodeError`` with its message) are those of the standard library:
    ``json`` also accepts ``NaN``/``Infinity``, ``1e400`` and lone surrogate escapes, which orjson refuses. A line
    with a run of 19 or more digits goes to ``json`` at once: orjson turns an integer beyond 64 bits into a float
    where ``json`` keeps the ``int`` (and validation would then differ).
    """
    if _LONG_DIGITS.search(line) is None:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    return json.loads(line.decode("utf-8"))


def read_events(path: Path) -> tuple[list[ev.Event], list[LogProblem]]:
    """Read and validate every line of an ``events.jsonl``.

    Returns the sound events and the problems found (a torn last line after a crash, an invalid line, a ``seq``
    gap or duplicate); never raises for content. Raises ``FileNotFoundError`` if the file is missing.
    """
    events: list[ev.Event] = []
    problems: list[LogProblem] = []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    ends_clean = raw.endswith(b"\n") or raw == b""
    expected_seq = 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        is_last = number == len(lines) and not ends_clean
        try:
            event = ev.event_from_dict(decode_line(line))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            what = "torn last line (the writer stopped mid-line)" if is_last else f"not valid JSON: {exc}"
            problems.append(LogProblem(number, what))
            continue
        except ev.EventValidationError as exc:
            problems.append(LogProblem(number, str(exc)))
            continue
        if event.seq != expected_seq:
            kind = "duplicate" if event.seq < expected_seq else "gap"
            problems.append(LogProblem(number, f"seq {kind}: expected {expected_seq}, found {event.seq}"))
        expected_seq = event.seq + 1
        events.append(event)
    return events, problems


class FileEventLog(_LogBase):
    """The session's ``events.jsonl``, written only by the ingest process.

    Each :meth:`append` writes one line, flushes and fsyncs before returning, so an event the caller saw returned
    survives ``kill -9`` and power loss (as far as the disk honours fsync).

    ``fsync`` chooses when the file is fsynced: ``"event"`` (the default, and the only policy the ingest uses) after
    every append; ``"close"`` only in :meth:`close`. With ``"close"`` each append is still written and flushed to the
    operating system (it survives ``kill -9`` of the writer, not a power loss before close). It exists for bulk
    writers that produce a whole log at once and can simply redo it, such as the synthetic-participant simulator
    (``workbench simulate``), where an fsync per event would dominate the run time. Raises ``ValueError`` for any
    other value.
    """

    FSYNC_POLICIES = ("event", "close")
    """Allowed values of the ``fsync`` argument."""

    def __init__(self, path: Path, session_id: str, clock: Clock | None = None, *, fsync: str = "event") -> None:
        if fsync not in self.FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(self.FSYNC_POLICIES)}, got {fsync!r}")
        super().__init__(session_id, clock or SystemClock())
        self._fsync_each = fsync == "event"
        self.path = path
        if path.exists():
            self._events, _ = read_events(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab")
        if path.stat().st_size and not _ends_with_newline(path):
            # A crash tore the last line; keep it byte-for-byte and start the next event on a new line.
            self._fh.write(b"\n")
            self._flush()

    def append(self, source: str, payload: ev.Payload, call_id: str | None = None) -> ev.Event:
        """Validate, assign ``seq``, write, flush and fsync; raises ``EventValidationError`` before writing."""
        with self._lock:
            event = self._make(source, payload, call_id)
            self._fh.write(event.to_json_line().encode("utf-8") + b"\n")
            if self._fsync_each:
                self._flush()
            else:
                self._fh.flush()
            self._events.append(event)
            return event

    def _flush(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Fsync (under the ``"close"`` policy) and close the file; further appends raise ``ValueError``."""
        with self._lock:
            if not self._fh.closed and not self._fsync_each:
                self._flush()
            self._fh.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
