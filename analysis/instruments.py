"""NASA-TLX per block and DRT per stimulus from the console's instrument events (``rating.nasa_tlx``,
``rating.nasa_tlx_weights``, ``drt.stimulus``, ``drt.response``).

The arithmetic is the domain's (:mod:`workbench.domain.instruments`: raw and weighted TLX after Hart & Staveland
1988; ISO 17488:2016 DRT scoring); this module only places ratings and stimuli in their block and call.

Times: DRT onsets and responses are ms on the ingest's monotonic clock (``t_mono_ns / 1e6`` scale), so a stimulus
is placed in the block running at its onset (``block.started`` to ``block.ended``) and in the call being handled
at its onset (``call.answered`` to ``call.closed``; with several, the one answered last).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from analysis.load import LoadedSession
from analysis.trials import Column
from workbench.domain import events as ev
from workbench.domain.instruments import TLX_SUBSCALES, raw_tlx, score_drt_stimuli, weighted_tlx

DRT_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("participant", "string", "", "Participant pseudonym."),
    Column("run_id", "string", "", "DRT run (one per loaded console page); stimuli and responses pair within it."),
    Column("stimulus_index", "integer", "", "Index of the stimulus in its run (drt.stimulus)."),
    Column("kind", "string", "", "Stimulus kind (visual, auditory, both)."),
    Column("onset_ms", "number", "ms", "Onset on the ingest's monotonic clock."),
    Column("block_id", "string", "", "Block running at the onset; empty between blocks."),
    Column("modality", "string", "", "Modality of that block; empty between blocks."),
    Column("practice", "boolean", "", "The block is a practice block (left out of the statistics)."),
    Column("call_id", "string", "", "Call being handled at the onset (answered, not yet closed); empty when none."),
    Column("outcome", "string", "", "ISO 17488: hit (a response 100-2500 ms after onset), too_early (only "
           "responses under 100 ms), or miss."),
    Column("rt_ms", "number", "ms", "Hit response time; empty unless a hit."),
    Column("early_responses", "integer", "count", "Responses under 100 ms after the onset (before the next one)."),
)
"""Columns of ``drt.csv``: one row per DRT stimulus, scored."""


def _block_intervals(session: LoadedSession) -> list[tuple[float, float, str, str]]:
    """(start_ms, end_ms, block_id, modality) from block.started/ended, in log order."""
    intervals: list[list[Any]] = []
    for event in session.events:
        t = event.t_mono_ns / 1e6
        if isinstance(event.data, ev.BlockStarted):
            intervals.append([t, math.inf, event.data.block_id, event.data.modality])
        elif isinstance(event.data, ev.BlockEnded):
            for interval in reversed(intervals):
                if interval[2] == event.data.block_id and interval[1] == math.inf:
                    interval[1] = t
                    break
    return [tuple(i) for i in intervals]  # type: ignore[misc]


def _block_at(blocks: list[tuple[float, float, str, str]], t_ms: float) -> tuple[float, float, str, str] | None:
    """The last of ``blocks`` (:func:`_block_intervals`) whose interval holds ``t_ms`` (start <= t < end), or None
    (a plain loop: the generator it replaces was ~5% of reading a session with DRT, issue 9)."""
    for i in range(len(blocks) - 1, -1, -1):
        block = blocks[i]
        if block[0] <= t_ms < block[1]:
            return block
    return None


def block_modalities(session: LoadedSession) -> dict[str, str]:
    """Block id -> modality from the session's block.started events."""
    return {e.data.block_id: e.data.modality for e in session.events if isinstance(e.data, ev.BlockStarted)}


def tlx_block_rows(session: LoadedSession) -> tuple[list[dict[str, Any]], list[str]]:
    """``blocks.csv`` rows (columns :data:`analysis.summary.BLOCK_COLUMNS`) from the session's rating.nasa_tlx
    events, with the weighted TLX when a rating.nasa_tlx_weights event for the block exists. A block rated twice
    keeps its last rating (the earlier one is reported). Returns (rows, problems)."""
    ratings: dict[str, ev.RatingNasaTlx] = {}
    weights: dict[str, list[str]] = {}
    problems: list[str] = []
    for event in session.events:
        data = event.data
        if isinstance(data, ev.RatingNasaTlx):
            if data.block_id in ratings:
                problems.append(f"block {data.block_id}: NASA-TLX rated again (seq {event.seq}); the last rating is "
                                "used")
            ratings[data.block_id] = data
        elif isinstance(data, ev.RatingNasaTlxWeights):
            weights[data.block_id] = list(data.choices)
    modality = block_modalities(session)
    practice = session.practice_blocks
    rows = []
    for block_id, rating in ratings.items():
        values = {s: float(getattr(rating, s)) for s in TLX_SUBSCALES}
        weighted = None
        if block_id in weights:
            try:
                weighted = weighted_tlx(values, weights[block_id])
            except ValueError as exc:
                problems.append(f"block {block_id}: NASA-TLX weights unusable ({exc})")
        rows.append({
            "participant": session.participant, "session_id": session.session_id, "block_id": block_id,
            "modality": modality.get(block_id), "practice": block_id in practice, **values,
            "raw_tlx": raw_tlx(values), "weighted_tlx": weighted, "source": "event",
        })
    return rows, problems


class _HandledCalls:
    """Which call was being handled at a time: of the calls answered at or before it and not yet closed, the one
    answered last (ties: the greatest call id). Calls are kept sorted by (answer, id) with the running maximum of
    their close times, so a lookup bisects and walks back only over calls that could still be open (was a scan
    of every call per DRT stimulus)."""

    def __init__(self, calls: dict[str, list[float]]) -> None:
        ordered = sorted((start, cid, end) for cid, (start, end) in calls.items())
        self._starts = [start for start, _, _ in ordered]
        self._ids = [cid for _, cid, _ in ordered]
        self._ends = [end for _, _, end in ordered]
        self._latest_end: list[float] = []
        latest = -math.inf
        for end in self._ends:
            latest = max(latest, end)
            self._latest_end.append(latest)

    def at(self, t_ms: float) -> str | None:
        """Id of the call handled at ``t_ms`` (answer <= t < close), or None."""
        j = bisect.bisect_right(self._starts, t_ms) - 1
        while j >= 0 and self._latest_end[j] > t_ms:
            if self._ends[j] > t_ms:
                return self._ids[j]
            j -= 1
        return None


def drt_rows(session: LoadedSession) -> list[dict[str, Any]]:
    """``drt.csv`` rows (:data:`DRT_COLUMNS`) of the session: every drt.stimulus scored against the drt.response
    events of its run (ISO 17488 via :func:`workbench.domain.instruments.score_drt_stimuli`) and placed in its
    block and call."""
    stimuli: dict[str, list[ev.DrtStimulus]] = {}
    responses: dict[str, list[float]] = {}
    calls: dict[str, list[float]] = {}
    for event in session.events:
        data = event.data
        if isinstance(data, ev.DrtStimulus):
            stimuli.setdefault(data.run_id, []).append(data)
        elif isinstance(data, ev.DrtResponse):
            responses.setdefault(data.run_id, []).append(data.response_ms)
        elif isinstance(data, ev.CallAnswered) and event.call_id not in calls:
            calls[event.call_id or ""] = [event.t_mono_ns / 1e6, math.inf]
        elif isinstance(data, ev.CallClosed) and event.call_id in calls:
            calls[event.call_id or ""][1] = event.t_mono_ns / 1e6
    blocks = _block_intervals(session)
    practice = session.practice_blocks
    handled = _HandledCalls(calls)
    rows = []
    for run_id, shown in stimuli.items():
        shown = sorted(shown, key=lambda s: s.onset_ms)
        outcomes = score_drt_stimuli([s.onset_ms for s in shown], responses.get(run_id, []))
        for stimulus, outcome in zip(shown, outcomes):
            onset = stimulus.onset_ms
            block = _block_at(blocks, onset)
            active = handled.at(onset)
            rows.append({
                "session_id": session.session_id, "participant": session.participant, "run_id": run_id,
                "stimulus_index": stimulus.stimulus_index, "kind": stimulus.kind, "onset_ms": onset,
                "block_id": block[2] if block else None, "modality": block[3] if block else None,
                "practice": (block[2] in practice) if block else None,
                "call_id": active,
                "outcome": outcome.outcome, "rt_ms": outcome.rt_ms, "early_responses": outcome.early_responses,
            })
    return rows


MEDIA_VIEW_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("participant", "string", "", "Participant pseudonym."),
    Column("call_id", "string", "", "Call whose photo was viewed."),
    Column("photo_id", "string", "", "Photo opened (photo.opened)."),
    Column("start_s", "number", "s", "Opening, seconds after the call was answered (empty when not answered)."),
    Column("dwell_s", "number", "s", "Time the photo stayed open: until the next photo.opened or photo.closed of the "
           "call, else the call's close, else the last event of the log."),
    Column("enlarged", "boolean", "", "The photo was enlarged during the view (photo.enlarged)."),
    Column("ended_by", "string", "", "photo.closed, photo.opened (another photo), call.closed or log_end."),
)
"""Columns of ``media_views.csv``: one row per photo view (dwell time), in log order."""

FOCUS_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("participant", "string", "", "Participant pseudonym."),
    Column("call_id", "string", "", "Call whose panel had the dispatcher's attention."),
    Column("panel", "string", "", "transcript, live_view, photos, form or queue (console.focus)."),
    Column("trigger", "string", "", "pointer, focus or hover."),
    Column("start_ms", "number", "ms", "Start on the ingest's monotonic clock (browser_ms of console.focus)."),
    Column("duration_s", "number", "s", "Until the next console.focus of the session or the call's close, whichever "
           "came first; empty for the last interval of a call never closed."),
)
"""Columns of ``focus.csv``: one row per focus interval (attention on one panel of the active call)."""


def media_view_rows(session: LoadedSession) -> list[dict[str, Any]]:
    """``media_views.csv`` rows (:data:`MEDIA_VIEW_COLUMNS`) of the session; times from ``t_mono_ns``."""
    answered: dict[str, int] = {}
    open_view: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    last_ns = session.events[-1].t_mono_ns if session.events else 0

    def finish(call_id: str, t_ns: int, why: str) -> None:
        view = open_view.pop(call_id, None)
        if view is not None:
            view["dwell_s"] = round((t_ns - view.pop("_t")) / 1e9, 3)
            view["ended_by"] = why
            rows.append(view)

    for event in session.events:
        data, call_id, t = event.data, event.call_id or "", event.t_mono_ns
        if isinstance(data, ev.CallAnswered):
            answered.setdefault(call_id, t)
        elif isinstance(data, ev.PhotoOpened):
            finish(call_id, t, "photo.opened")
            start = answered.get(call_id)
            open_view[call_id] = {"session_id": session.session_id, "participant": session.participant,
                                  "call_id": call_id, "photo_id": data.photo_id, "_t": t,
                                  "start_s": round((t - start) / 1e9, 3) if start is not None else None,
                                  "enlarged": False}
        elif isinstance(data, ev.PhotoEnlarged) and call_id in open_view and data.enlarged:
            open_view[call_id]["enlarged"] = True
        elif isinstance(data, ev.PhotoClosed):
            finish(call_id, t, "photo.closed")
        elif isinstance(data, ev.CallClosed):
            finish(call_id, t, "call.closed")
    for call_id in list(open_view):
        finish(call_id, last_ns, "log_end")
    return rows


def focus_rows(session: LoadedSession) -> list[dict[str, Any]]:
    """``focus.csv`` rows (:data:`FOCUS_COLUMNS`) of the session, in log order."""
    closed_ms = {e.call_id: e.t_mono_ns / 1e6 for e in session.events if isinstance(e.data, ev.CallClosed)}
    focus = [(e, e.data) for e in session.events if isinstance(e.data, ev.ConsoleFocus)]
    rows = []
    for i, (event, data) in enumerate(focus):
        start = data.browser_ms
        ends = [closed_ms[event.call_id]] if event.call_id in closed_ms else []
        if i + 1 < len(focus):
            ends.append(focus[i + 1][1].browser_ms)
        end = min(ends) if ends else None
        rows.append({"session_id": session.session_id, "participant": session.participant,
                     "call_id": event.call_id, "panel": data.panel, "trigger": data.trigger, "start_ms": start,
                     "duration_s": round(max(0.0, end - start) / 1000, 3) if end is not None else None})
    return rows
