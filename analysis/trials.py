"""Tidy tables from replayed sessions: one row per call (``trials``) and one per session (``sessions``).

Every output column is declared once, here, as a :class:`Column`; the table builders order and type their columns
from these declarations and ``codebook.md`` is generated from them (:mod:`analysis.codebook`), so the CSV header
and the codebook cannot drift apart.

Missing-data policy: a measure that cannot be computed (call never answered or closed, no ground truth, no video)
is empty (``<NA>`` in the frame, an empty cell in the CSV), never 0 or False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Sequence

import pandas as pd

from analysis.covariates import COVARIATE_SPECS
from workbench.domain import events as ev
from workbench.domain.scenario import Scenario
from workbench.domain.session_state import CallState, SessionState
from workbench.domain.taxonomy import Urgency, triage_change

NS_PER_S = 1_000_000_000
TIME_DECIMALS = 3
"""Durations are written in seconds rounded to this many decimals (1 ms)."""

DTYPES = {"string": "string", "integer": "Int64", "number": "Float64", "boolean": "boolean"}
"""Codebook type -> pandas nullable dtype (so empty cells stay empty instead of turning ints into floats)."""


@dataclass(frozen=True)
class Column:
    """One declared output column: ``name``, codebook ``dtype`` (a key of :data:`DTYPES`), ``unit`` (empty when
    dimensionless) and what it means."""

    name: str
    dtype: str
    unit: str
    meaning: str

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"column {self.name}: dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")


TRIAL_COLUMNS: tuple[Column, ...] = (
    Column("participant", "string", "", "Participant pseudonym from session.json."),
    Column("session_id", "string", "", "Session folder name (`recordings/<session_id>/`)."),
    Column("scenario_id", "string", "", "Id of the scenario played (session.json); 'adhoc' without a scenario."),
    Column("block_id", "string", "", "Block the call belongs to (call.created); empty for an ad-hoc call."),
    Column(
        "block_position",
        "integer",
        "",
        "0-based position of the block in this session's block_order; empty when the block is not in the order.",
    ),
    Column("modality", "string", "", "Media the dispatcher received besides the voice: audio, photo or video."),
    Column(
        "practice",
        "boolean",
        "",
        "The call belongs to a practice block (block.practice): listed here, left out of every statistic.",
    ),
    Column("call_id", "string", "", "Id of the call in the recording (call.created envelope)."),
    Column("scenario_call_id", "string", "", "Id of the call in the scenario; empty for an ad-hoc call."),
    Column(
        "congruent",
        "boolean",
        "",
        "Ground truth: speech and image agree on every aspect listed for the call; empty without ground truth.",
    ),
    Column(
        "incongruent_aspects",
        "string",
        "",
        "Ground truth: aspects on which speech and image disagree by design, ';'-joined in scenario order; "
        "empty when congruent or without ground truth.",
    ),
    Column("answered", "boolean", "", "The dispatcher answered the call (call.answered)."),
    Column("closed", "boolean", "", "The dispatcher closed the call with a final intake (call.closed)."),
    Column(
        "queue_time_s",
        "number",
        "s",
        "Arrival (call.created) to answer (call.answered); empty when not answered.",
    ),
    Column(
        "handling_time_s",
        "number",
        "s",
        "Answer (call.answered) to close (call.closed), from t_mono_ns; empty when not answered or not closed.",
    ),
    Column(
        "time_to_first_urgency_s",
        "number",
        "s",
        "Answer to the first intake.urgency; empty when not answered or never classified.",
    ),
    Column("urgency_given", "string", "", "Urgency at close (spoed, nu, later); empty if not closed or none chosen."),
    Column("urgency_true", "string", "", "Ground-truth urgency; empty without ground truth."),
    Column(
        "urgency_correct",
        "boolean",
        "",
        "urgency_given equals urgency_true (closing without an urgency counts as incorrect); "
        "empty when not closed or without ground truth.",
    ),
    Column(
        "incident_type_given",
        "string",
        "",
        "Incident type key at close; empty if not closed or none chosen.",
    ),
    Column("incident_type_true", "string", "", "Ground-truth incident type key; empty without ground truth."),
    Column(
        "incident_type_correct",
        "boolean",
        "",
        "incident_type_given equals incident_type_true (closing without a type counts as incorrect); "
        "empty when not closed or without ground truth.",
    ),
    Column(
        "items_ticked",
        "integer",
        "count",
        "Information items ticked at close (required or not); empty when not closed.",
    ),
    Column(
        "items_gathered",
        "integer",
        "count",
        "Required information items (ground truth) ticked at close; empty when not closed or without ground truth.",
    ),
    Column(
        "items_required",
        "integer",
        "count",
        "Information items the ground truth requires; empty without ground truth.",
    ),
    Column(
        "completeness",
        "number",
        "proportion 0-1",
        "items_gathered / items_required, rounded to 3 decimals; empty when not closed, without ground truth or "
        "when nothing is required.",
    ),
    Column(
        "disagreement_flagged",
        "boolean",
        "",
        "Perceived disagreement: the flag was set at close; empty when not closed.",
    ),
    Column(
        "disagreement_aspect_flagged",
        "string",
        "",
        "Aspect given with the flag at close; empty when none or not closed.",
    ),
    Column(
        "disagreement_designed",
        "boolean",
        "",
        "Designed disagreement: not congruent (ground truth); empty without ground truth.",
    ),
    Column("disagreement_confidence", "integer", "1-5", "How sure the dispatcher was about the disagreement flag "
           "(last intake.disagreement_confidence of the call: 1 not sure at all, 5 completely sure); empty when not "
           "given."),
    Column("rsme", "number", "RSME 0-150", "Mental-effort rating after the call (rating.rsme, else an imported "
           "--ratings sheet); empty when not rated."),
    Column("rsme_source", "string", "", "Where rsme comes from: event (rating.rsme) or import (a --ratings sheet); "
           "empty when not rated."),
    Column(
        "video_first_frame_s",
        "number",
        "s",
        "Arrival (call.created) to the first decoded video frame (media.first_frame, kind video); empty when no "
        "video frame arrived.",
    ),
    Column("photos_received", "integer", "count", "Photos the caller attached that were stored (media.photo_received)."),
    Column("drt_stimuli", "integer", "count", "DRT stimuli whose onset fell while the call was handled (answer to "
           "close); empty when the session has no DRT."),
    Column("drt_hit_rate", "number", "proportion 0-1", "ISO 17488 hits / drt_stimuli (a too-early-only stimulus "
           "is not a hit); empty without stimuli."),
    Column("drt_hit_rt_ms", "number", "ms", "Mean response time of the hits among drt_stimuli; empty without hits."),
    Column("photo_dwell_s", "number", "s", "Total time photos of the call were open in the viewer (media_views.csv); "
           "empty when none was opened."),
    Column("focus_photos_share", "number", "proportion 0-1", "Share of the call's focus time (focus.csv) on the "
           "photos panel; empty without focus events."),
    Column("focus_live_view_share", "number", "proportion 0-1", "Share of the call's focus time on the live view."),
    Column("focus_transcript_share", "number", "proportion 0-1", "Share of the call's focus time on the transcript."),
    Column("focus_form_share", "number", "proportion 0-1", "Share of the call's focus time on the intake form."),
    Column(
        "first_media_s",
        "number",
        "s",
        "Arrival (call.created) to the first media of the call: the first stored photo (media.photo_received) or "
        "the first decoded video frame (media.first_frame, kind video), whichever came first; empty when none came.",
    ),
    Column(
        "urgency_before_media",
        "string",
        "",
        "Urgency the dispatcher had set (last intake.urgency in log order) before the first media arrived; empty "
        "when no media arrived or no urgency had been set by then (for example media that arrived before the "
        "answer).",
    ),
    Column(
        "triage_change",
        "string",
        "",
        "urgency_before_media -> urgency_given: up (more urgent, spoed > nu > later), down or none; empty when "
        "either is empty.",
    ),
)
"""Columns of ``trials.csv``, in file order. One row per participant x session x block x call."""


SESSION_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("participant", "string", "", "Participant pseudonym from session.json."),
    Column("scenario_id", "string", "", "Id of the scenario played; 'adhoc' without a scenario."),
    Column("scenario_sha256", "string", "", "SHA-256 (hex) of the scenario file's bytes, from session.json."),
    Column("seed", "integer", "", "Seed of the session's random choices (block order, jitter)."),
    Column("block_order", "string", "", "Block ids in the order this participant worked them, ';'-joined."),
    Column("software_version", "string", "", "Workbench version that recorded the session."),
    Column("started_at", "string", "UTC ISO 8601", "Start time from session.json."),
    Column("events", "integer", "count", "Sound (valid) lines of events.jsonl."),
    Column("calls", "integer", "count", "Calls created in the session (rows in trials.csv)."),
    Column("ended", "boolean", "", "A session.ended event was recorded."),
    Column("end_reason", "string", "", "Reason of session.ended (completed, aborted, server_stopped); empty when not "
           "ended."),
    Column("lines_skipped", "integer", "count", "Lines of events.jsonl that could not be used (torn, invalid, unknown "
           "event type, other schema); their problems are in `problems`."),
    Column("calls_missing", "integer", "count", "Scenario calls of the session's block order that never arrived."),
    Column("practice_calls", "integer", "count", "Calls in practice blocks (kept in trials.csv, left out of the "
           "statistics)."),
    Column(
        "problems",
        "string",
        "",
        "What is wrong with the recording (torn or invalid log lines, seq gaps, no scenario copy, not ended, ...), "
        "' | '-joined; empty when nothing is wrong.",
    ),
    *(Column(*spec) for spec in COVARIATE_SPECS),  # the participant's covariates (issue 7)
)
"""Columns of ``sessions.csv``, in file order. One row per session folder found."""


def _seconds(start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None:
        return None
    return round((end_ns - start_ns) / NS_PER_S, TIME_DECIMALS)


@dataclass(frozen=True)
class MediaContext:
    """What the log says about a call's first media: when it arrived (``t_mono_ns``, None when no media came) and
    the urgency the dispatcher had set before it (empty when none)."""

    first_media_ns: int | None
    urgency_before_media: str


def media_contexts(events: Sequence[ev.Event]) -> dict[str, MediaContext]:
    """For every call in ``events`` (in log order): the first media (a stored photo or the first decoded video
    frame) and the last ``intake.urgency`` value set before it in log order. Calls without media map to
    ``MediaContext(None, "")``. Pure; never raises."""
    urgency: dict[str, str] = {}
    result: dict[str, MediaContext] = {}
    for event in events:
        call_id = event.call_id
        if not call_id:
            continue
        data = event.data
        if isinstance(data, ev.IntakeUrgency) and call_id not in result:
            urgency[call_id] = data.urgency
        is_media = isinstance(data, ev.MediaPhotoReceived) or (
            isinstance(data, ev.MediaFirstFrame) and data.kind == "video"
        )
        if is_media and call_id not in result:
            result[call_id] = MediaContext(event.t_mono_ns, urgency.get(call_id, ""))
    return result


def _triage_change(before: str | None, after: str | None) -> str | None:
    if not before or not after:
        return None
    return triage_change(Urgency(before), Urgency(after)) or None


def trial_row(
    call: CallState,
    scenario: Scenario | None,
    *,
    session_id: str,
    participant: str,
    scenario_id: str,
    block_order: Sequence[str],
    media: MediaContext | None = None,
    practice_blocks: Collection[str] = (),
    confidence: int | None = None,
) -> dict[str, Any]:
    """One ``trials.csv`` row (column name -> value or None) for a replayed call.

    ``scenario`` gives the ground truth; with None, or when it has no call ``call.scenario_call_id``, every
    ground-truth column is None. ``media`` (from :func:`media_contexts`) gives the triage-change columns; with None
    they are empty. Times are seconds rounded to :data:`TIME_DECIMALS`. Never raises for missing data.
    """
    truth = None
    if scenario is not None and call.scenario_call_id:
        try:
            truth = scenario.call(call.scenario_call_id).truth
        except KeyError:
            truth = None
    closed = call.closed
    answered = call.answered_ns is not None
    required = set(truth.required_items) if truth is not None else None
    ticked = set(closed.items_gathered) if closed is not None else None
    gathered = len(ticked & required) if ticked is not None and required is not None else None
    completeness = (
        round(gathered / len(required), TIME_DECIMALS) if gathered is not None and required else None
    )
    row: dict[str, Any] = {
        "participant": participant,
        "session_id": session_id,
        "scenario_id": scenario_id,
        "block_id": call.block_id,
        "block_position": list(block_order).index(call.block_id) if call.block_id in block_order else None,
        "modality": call.modality,
        "practice": bool(call.block_id) and call.block_id in practice_blocks,
        "call_id": call.call_id,
        "scenario_call_id": call.scenario_call_id,
        "congruent": truth.congruent if truth is not None else None,
        "incongruent_aspects": ";".join(truth.incongruent_aspects) if truth is not None else None,
        "answered": answered,
        "closed": closed is not None,
        "queue_time_s": _seconds(call.created_ns, call.answered_ns),
        "handling_time_s": _seconds(call.answered_ns, call.closed_ns) if closed is not None else None,
        "time_to_first_urgency_s": _seconds(call.answered_ns, call.first_urgency_ns),
        "urgency_given": (closed.urgency or None) if closed is not None else None,
        "urgency_true": truth.urgency.value if truth is not None else None,
        "urgency_correct": (closed.urgency == truth.urgency.value)
        if closed is not None and truth is not None
        else None,
        "incident_type_given": (closed.incident_type or None) if closed is not None else None,
        "incident_type_true": truth.incident_type if truth is not None else None,
        "incident_type_correct": (closed.incident_type == truth.incident_type)
        if closed is not None and truth is not None
        else None,
        "items_ticked": len(ticked) if ticked is not None else None,
        "items_gathered": gathered,
        "items_required": len(required) if required is not None else None,
        "completeness": completeness,
        "disagreement_flagged": closed.disagreement_flagged if closed is not None else None,
        "disagreement_aspect_flagged": (closed.disagreement_aspect or None) if closed is not None else None,
        "disagreement_designed": (not truth.congruent) if truth is not None else None,
        "disagreement_confidence": confidence,
        "rsme": call.rsme,
        "rsme_source": "event" if call.rsme is not None else None,
        "video_first_frame_s": _seconds(call.created_ns, call.first_video_frame_ns),
        "photos_received": len(call.photos),
        "drt_stimuli": None,
        "photo_dwell_s": None,
        "focus_photos_share": None,
        "focus_live_view_share": None,
        "focus_transcript_share": None,
        "focus_form_share": None,
        "drt_hit_rate": None,
        "drt_hit_rt_ms": None,
        "first_media_s": _seconds(call.created_ns, media.first_media_ns) if media is not None else None,
        "urgency_before_media": (media.urgency_before_media or None) if media is not None else None,
        "triage_change": _triage_change(
            media.urgency_before_media if media is not None else None,
            closed.urgency if closed is not None else None,
        ),
    }
    return row


def trial_rows(
    state: SessionState,
    scenario: Scenario | None,
    *,
    session_id: str,
    participant: str,
    scenario_id: str,
    block_order: Sequence[str],
    events: Sequence[ev.Event] = (),
    practice_blocks: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Rows for every call of a replayed session, in call creation order; see :func:`trial_row`. ``events`` (the
    session's sound events in log order) give the triage-change columns (:func:`media_contexts`)."""
    contexts = media_contexts(events)
    confidences = {e.call_id: e.data.confidence for e in events
                   if isinstance(e.data, ev.IntakeDisagreementConfidence) and e.call_id}
    return [
        trial_row(
            call,
            scenario,
            session_id=session_id,
            participant=participant,
            scenario_id=scenario_id,
            block_order=block_order,
            media=contexts.get(call.call_id, MediaContext(None, "")),
            practice_blocks=practice_blocks,
            confidence=confidences.get(call.call_id),
        )
        for call in state.calls.values()
    ]


def frame(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> pd.DataFrame:
    """A DataFrame with exactly ``columns`` (in declared order, nullable dtypes) from ``rows``.

    Raises ``ValueError`` if a row has a key that is not declared or lacks a declared one, so an undeclared
    column can never reach a CSV.
    """
    names = [c.name for c in columns]
    expected = set(names)
    for i, row in enumerate(rows):
        if row.keys() != expected:
            extra = sorted(set(row) - expected)
            missing = [n for n in names if n not in row]
            raise ValueError(f"row {i}: undeclared column(s) {extra}, missing column(s) {missing}")
    data = {}
    for c in columns:
        values = [row[c.name] for row in rows]
        # A column whose values are all of the plain types its dtype takes is built as it is (_cast would return
        # every value unchanged, or int -> float, which Float64 does the same); anything else goes cell by cell
        # so that a wrong value raises naming the column. Casting 2 million DRT cells one by one took ~10 s.
        if {type(v) for v in values} <= _PLAIN_TYPES[c.dtype]:
            data[c.name] = pd.array(values, dtype=DTYPES[c.dtype])
        else:
            data[c.name] = pd.array([_cast(v, c) for v in values], dtype=DTYPES[c.dtype])
    return pd.DataFrame(data, columns=names)


_PLAIN_TYPES: dict[str, set[type]] = {
    "string": {str, type(None)}, "integer": {int, type(None)}, "number": {float, int, type(None)},
    "boolean": {bool, type(None)},
}
"""Per codebook type, the Python types :func:`_cast` passes through unchanged (bool is not an int here: type()
is exact)."""


def _cast(value: Any, column: Column) -> Any:
    """``value`` as the column's type (None stays None); strings are str() of anything (a header may hold a number).
    Raises ``ValueError`` naming the column when a number or boolean column gets something else."""
    if value is None:
        return None
    if column.dtype == "string":
        return str(value)
    if column.dtype == "boolean" and isinstance(value, bool):
        return value
    if column.dtype == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if column.dtype == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"column {column.name}: expected {column.dtype}, got {value!r}")


QUALITY_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session the record belongs to; empty for a rating sheet line that matched no "
           "call."),
    Column("call_id", "string", "", "Call the record belongs to; empty for session-level problems."),
    Column("record", "string", "", "session (a problem of the recording), call, or rating (an imported sheet)."),
    Column("problem", "string", "", "What is wrong or was changed."),
    Column("handling", "string", "", "excluded (left out of the statistics), repaired (used after a repair: an "
           "imported rating, a decimal comma) or reported (analysed as it is)."),
)
"""Columns of ``data_quality.csv``: every excluded, repaired or reported record, one row each."""
