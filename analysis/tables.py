"""The ``events`` table: one row per sound event of every session, payload fields flattened into ``data_`` columns.

The columns are generated from the event declarations (:data:`workbench.domain.events.PAYLOAD_TYPES`), so every
declared field has its column whichever events a recording happens to hold, and the codebook describes them. A
field declared by several event types with different JSON types becomes a string column. Lists are written as
JSON arrays (text).
"""

from __future__ import annotations

import functools
import json
from typing import Any, Iterable

import numpy as np
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


@functools.cache
def event_columns() -> tuple[Column, ...]:
    """Envelope columns then one ``data_<field>`` column per declared payload field name (first declaration order),
    with the event types that carry it in its meaning.

    Memoised (an immutable tuple of frozen columns from immutable declarations): it resolved every payload's type
    hints anew, ~65 ms a call, and :func:`_payload_cells` calls it once per payload class in every reading process
    (about 5 s of a 100-session study's reading)."""
    fields: dict[str, list[tuple[str, str]]] = {}
    for cls in ev.PAYLOAD_TYPES:
        for name, hint in ev._field_types(cls):
            fields.setdefault(name, []).append((cls.TYPE, _dtype(hint)))
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
    field). For a whole study use :class:`EventTable`, which builds the same table column by column."""
    table = EventTable()
    table.add_session(session_id, participant, events)
    frame_ = table.frame()
    return [{k: (None if v is pd.NA else v) for k, v in row.items()} for row in frame_.to_dict("records")]


@functools.cache
def _payload_cells(cls: type[ev.Payload]) -> tuple[tuple[str, str, bool], ...]:
    """Per field of a payload class: (field name, ``data_`` column, True when the value is written as JSON text
    because the column is a string column and the field is not declared ``str``)."""
    kinds = {c.name: c.dtype for c in event_columns()}
    out = []
    for name, hint in ev._field_types(cls):
        column = f"data_{name}"
        out.append((name, column, kinds[column] == "string" and hint is not str))
    return tuple(out)


class EventTable:
    """Builds the events table (:func:`event_columns`) session by session, column by column.

    Why not one dict per event: a study's ~425k events x 118 declared columns made 50 million dict cells (about
    2 GB, and 45 s to read back into columns); here each payload field is appended once to its own column, and
    columns a type does not carry are filled with empty cells only when :meth:`frame` builds the table. Values are
    those of :func:`event_rows`: lists, and non-text values in a column shared by types of different JSON types, are
    JSON text; ``t_s`` is seconds since the session's first event rounded to 3 decimals with Python's ``round``.
    """

    def __init__(self) -> None:
        self._columns = event_columns()
        self._envelope: dict[str, list[Any]] = {c.name: [] for c in ENVELOPE_COLUMNS}
        self._data: dict[str, tuple[list[int], list[Any]]] = {}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add_session(self, session_id: str, participant: str, events: Iterable[ev.Event]) -> None:
        """Append one session's sound events (in log order)."""
        env = self._envelope
        data = self._data
        first: int | None = None
        i = self._n
        for event in events:
            t = event.t_mono_ns
            first = t if first is None else first
            env["seq"].append(event.seq)
            env["t_mono_ns"].append(t)
            env["t_s"].append(round((t - first) / 1e9, 3))
            env["t_wall"].append(event.t_wall)
            env["source"].append(event.source)
            env["type"].append(event.type)
            env["call_id"].append(event.call_id)
            payload = event.data
            for name, column, as_text in _payload_cells(type(payload)):
                value = getattr(payload, name)
                if isinstance(value, (list, tuple, dict)):
                    value = json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)
                elif as_text and not isinstance(value, str):
                    value = json.dumps(value)
                cell = data.get(column)
                if cell is None:
                    cell = data[column] = ([], [])
                cell[0].append(i)
                cell[1].append(value)
            i += 1
        added = i - self._n
        env["session_id"] += [session_id] * added
        env["participant"] += [participant] * added
        self._n = i

    def extend(self, other: EventTable) -> None:
        """Append ``other``'s rows after these."""
        for name, values in other._envelope.items():
            self._envelope[name] += values
        for column, (index, given) in other._data.items():
            cell = self._data.setdefault(column, ([], []))
            cell[0].extend(i + self._n for i in index)
            cell[1].extend(given)
        self._n += other._n

    def frame(self) -> pd.DataFrame:
        """The table with exactly :func:`event_columns` (nullable dtypes), rows in the order added."""
        n = self._n
        out: dict[str, Any] = {}
        for c in self._columns:
            if c.name in self._envelope:
                values: Any = self._envelope[c.name]
            else:
                values = np.full(n, None, dtype=object)
                cells = self._data.get(c.name)
                if cells is not None:
                    index, given = cells
                    holder = np.empty(len(given), dtype=object)
                    holder[:] = given
                    values[np.asarray(index, dtype=np.int64)] = holder
            out[c.name] = pd.array(values, dtype=DTYPES[c.dtype])
        return pd.DataFrame(out, columns=[c.name for c in self._columns])


def events_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The events table with exactly :func:`event_columns` (nullable dtypes) from :func:`event_rows` rows."""
    columns = event_columns()
    if not rows:
        return frame(rows, columns)
    return pd.DataFrame({c.name: pd.array([row[c.name] for row in rows], dtype=DTYPES[c.dtype]) for c in columns},
                        columns=[c.name for c in columns])


FORM_CHANGE_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("participant", "string", "", "Participant pseudonym."),
    Column("call_id", "string", "", "Call whose intake form changed."),
    Column("modality", "string", "", "Modality of the call (audio, photo, video)."),
    Column("seq", "integer", "", "seq of the intake event in the session's log."),
    Column("t_since_answer_s", "number", "s", "Time from the call's answer (call.answered) to the change; empty when "
           "the call had not been answered."),
    Column("field", "string", "", "Form field: incident_type, urgency, location, item, disagreement_flag, "
           "disagreement_confidence."),
    Column("value", "string", "", "New value: the key or text; for item '<item>=true|false'; for disagreement_flag "
           "'true|false' with ':<aspect>' when given."),
    Column("after_first_media", "boolean", "", "The change came after the call's first media (photo or video "
           "frame) in log order; empty when no media came."),
)
"""Columns of ``form_changes.csv``: one row per intake event (the dispatcher changing the form), in log order."""


def form_change_rows(session_id: str, participant: str, events: Iterable[ev.Event]) -> list[dict[str, Any]]:
    """Rows of ``form_changes.csv`` for one session's sound events (see :data:`FORM_CHANGE_COLUMNS`)."""
    modality: dict[str, str] = {}
    answered: dict[str, int] = {}
    media_seen: set[str] = set()
    media_calls: set[str] = set()
    events = list(events)
    for event in events:
        if isinstance(event.data, (ev.MediaPhotoReceived,)) or (
                isinstance(event.data, ev.MediaFirstFrame) and event.data.kind == "video"):
            media_calls.add(event.call_id or "")
    rows = []
    for event in events:
        data, call_id = event.data, event.call_id or ""
        if isinstance(data, ev.CallCreated):
            modality[call_id] = data.modality
        elif isinstance(data, ev.CallAnswered):
            answered.setdefault(call_id, event.t_mono_ns)
        elif isinstance(data, ev.MediaPhotoReceived) or (isinstance(data, ev.MediaFirstFrame) and data.kind == "video"):
            media_seen.add(call_id)
        change = None
        if isinstance(data, ev.IntakeIncidentType):
            change = ("incident_type", data.incident_type)
        elif isinstance(data, ev.IntakeUrgency):
            change = ("urgency", data.urgency)
        elif isinstance(data, ev.IntakeLocation):
            change = ("location", data.location)
        elif isinstance(data, ev.IntakeItemChecked):
            change = ("item", f"{data.item}={'true' if data.checked else 'false'}")
        elif isinstance(data, ev.IntakeDisagreementConfidence):
            change = ("disagreement_confidence", str(data.confidence))
        elif isinstance(data, ev.IntakeDisagreementFlag):
            change = ("disagreement_flag", ("true" if data.flagged else "false") + (f":{data.aspect}" if data.aspect
                                                                                      else ""))
        if change is None:
            continue
        start = answered.get(call_id)
        rows.append({
            "session_id": session_id, "participant": participant, "call_id": call_id,
            "modality": modality.get(call_id), "seq": event.seq,
            "t_since_answer_s": round((event.t_mono_ns - start) / 1e9, 3) if start is not None else None,
            "field": change[0], "value": change[1],
            "after_first_media": (call_id in media_seen) if call_id in media_calls else None,
        })
    return rows


DISAGREEMENT_COLUMNS: tuple[Column, ...] = (
    Column("modality", "string", "", "Block condition (audio, photo, video), or all."),
    Column("aspect", "string", "", "Aspect on which speech and image can disagree (taxonomy key), or any."),
    Column("calls", "integer", "count", "Non-practice calls whose ground truth lists the aspect (any: calls with "
           "ground truth)."),
    Column("incongruent", "integer", "count", "Of those, calls on which speech and image disagree by design on the "
           "aspect (any: on at least one aspect)."),
    Column("share_incongruent", "number", "proportion 0-1", "incongruent / calls; empty when calls is 0."),
    Column("closed_incongruent", "integer", "count", "Incongruent calls that were closed (the flag is known)."),
    Column("flagged", "integer", "count", "Of the closed incongruent calls, those closed with the disagreement flag "
           "set."),
    Column("flagged_aspect", "integer", "count", "Of those, flagged with this very aspect (any: with an aspect that "
           "is incongruent by design)."),
)
"""Columns of ``disagreement.csv``: designed disagreement per aspect and modality, and how often it was flagged."""


def disagreement_rows(calls: Iterable[tuple[str, dict[str, bool], bool, bool, str]]) -> list[dict[str, Any]]:
    """``disagreement.csv`` rows from ``(modality, congruence per aspect, closed, flagged at close, aspect flagged)``
    per non-practice call with ground truth: one row per modality x aspect, per modality with aspect ``any``, and
    the same over all modalities (``all``). Modalities and aspects in first-seen order."""
    counts: dict[tuple[str, str], list[int]] = {}

    def add(key: tuple[str, str], incongruent: bool, closed: bool, flagged: bool, right_aspect: bool) -> None:
        c = counts.setdefault(key, [0, 0, 0, 0, 0])
        c[0] += 1
        if incongruent:
            c[1] += 1
            if closed:
                c[2] += 1
                c[3] += int(flagged)
                c[4] += int(flagged and right_aspect)

    for modality, congruence, closed, flagged, aspect_flagged in calls:
        bad = [a for a, agree in congruence.items() if not agree]
        for mod in (modality, "all"):
            add((mod, "any"), bool(bad), closed, flagged, aspect_flagged in bad)
            for aspect, agree in congruence.items():
                add((mod, aspect), not agree, closed, flagged, aspect_flagged == aspect)
    rows = []
    for (modality, aspect), (n, incongruent, closed_n, flagged_n, right) in counts.items():
        rows.append({"modality": modality, "aspect": aspect, "calls": n, "incongruent": incongruent,
                     "share_incongruent": round(incongruent / n, 3) if n else None,
                     "closed_incongruent": closed_n, "flagged": flagged_n, "flagged_aspect": right})
    order = {m: i for i, m in enumerate(dict.fromkeys(m for m, _ in counts))}
    rows.sort(key=lambda r: (r["modality"] == "all", order[r["modality"]], r["aspect"] != "any"))
    return rows
