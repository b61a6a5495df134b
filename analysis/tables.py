"""The ``events`` table: one row per sound event of every session, payload fields flattened into ``data_`` columns.

The columns are generated from the event declarations (:data:`workbench.domain.events.PAYLOAD_TYPES`), so every
declared field has its column whichever events a recording happens to hold, and the codebook describes them. A
field declared by several event types with different JSON types becomes a string column. Lists are written as
JSON arrays (text).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Iterable

import pandas as pd

from analysis.trials import DTYPES, Column, frame
from workbench.domain import events as ev

ENVELOPE_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("participant", "string", "", "Participant pseudonym of the session."),
    Column("seq", "integer", "", "Position of the event in its session's log (1, 2, 3, ...)."),
    Column("t_mono_ns", "integer", "ns", "Monotonic clock of the ingest when the event was appended."),
    Column("t_s", "number", "s", "Seconds since the session's first event (from t_mono_ns, 3 decimals)."),
    Column("t_wall", "string", "UTC ISO 8601", "Wall-clock time of the event."),
    Column("source", "string", "", "Who emitted it: ingest, runner, console, caller, simulator."),
    Column("type", "string", "", "Event type (see the Events section)."),
    Column("call_id", "string", "", "Call the event belongs to; empty for session-level events."),
)


def _dtype(hint: Any) -> str:
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if hint is float:
        return "number"
    return "string"


def event_columns() -> tuple[Column, ...]:
    """Envelope columns then one ``data_<field>`` column per declared payload field name (first declaration order),
    with the event types that carry it in its meaning."""
    fields: dict[str, list[tuple[str, str]]] = {}
    for cls in ev.PAYLOAD_TYPES:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            fields.setdefault(f.name, []).append((cls.TYPE, _dtype(hints[f.name])))
    data_columns = []
    for name, uses in fields.items():
        types = {t for _, t in uses}
        dtype = types.pop() if len(types) == 1 else "string"
        carriers = ", ".join(t for t, _ in uses)
        data_columns.append(Column(f"data_{name}", dtype, "", f"Payload field `{name}` of {carriers} (see Events); "
                                   "empty for other types; lists as JSON arrays."))
    return ENVELOPE_COLUMNS + tuple(data_columns)


def event_rows(session_id: str, participant: str, events: Iterable[ev.Event]) -> list[dict[str, Any]]:
    """Rows of the events table for one session's sound events (declared columns, None where a type has no such
    field)."""
    columns = event_columns()
    names = [c.name for c in columns]
    kinds = {c.name: c.dtype for c in columns}
    rows = []
    first: int | None = None
    for event in events:
        first = event.t_mono_ns if first is None else first
        row: dict[str, Any] = dict.fromkeys(names)
        row |= {"session_id": session_id, "participant": participant, "seq": event.seq,
                "t_mono_ns": event.t_mono_ns, "t_s": round((event.t_mono_ns - first) / 1e9, 3),
                "t_wall": event.t_wall, "source": event.source, "type": event.type, "call_id": event.call_id}
        for key, value in dataclasses.asdict(event.data).items():
            name = f"data_{key}"
            if isinstance(value, (list, tuple, dict)):
                value = json.dumps(value, ensure_ascii=False)
            elif kinds[name] == "string" and not isinstance(value, str):
                value = json.dumps(value)
            row[name] = value
        rows.append(row)
    return rows


def events_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The events table with exactly :func:`event_columns` (nullable dtypes).

    Rows come from :func:`event_rows` (validated payloads, declared columns), so the per-cell checks of
    :func:`analysis.trials.frame` are skipped here: they cost seconds on a study's hundred thousand events."""
    columns = event_columns()
    if not rows:
        return frame(rows, columns)
    return pd.DataFrame({c.name: pd.array([row[c.name] for row in rows], dtype=DTYPES[c.dtype]) for c in columns},
                        columns=[c.name for c in columns])
