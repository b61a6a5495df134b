"""The replay of a session's events into its state: pure, so the console, the analysis and the tests agree.

``replay(events)`` folds a sequence of :class:`~workbench.domain.events.Event` into a :class:`SessionState`.
Times kept here are the events' ``t_mono_ns`` (ns) so durations are exact within one ingest run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from workbench.domain import events as ev
from workbench.domain.participant import FlowState


@dataclass
class PhotoState:
    """A photo as the dispatcher sees it: id and the session-relative paths of original and display copy."""

    photo_id: str
    file_display: str
    file_original: str
    width: int
    height: int
    t_mono_ns: int


@dataclass
class PromptState:
    """A dispatcher prompt to the caller (``dispatcher.prompt``) and when the caller's page fetched it
    (``caller.prompt_delivered``; None until then). Times on the ingest's monotonic clock, ns."""

    prompt_id: int
    prompt: str
    t_mono_ns: int
    delivered_ns: int | None = None


@dataclass
class TranscriptLine:
    """One line of the caller's transcript as shown."""

    index: int
    text: str
    t_mono_ns: int


@dataclass
class CallState:
    """Everything known about one call after replaying the log up to some point."""

    call_id: str
    scenario_call_id: str
    block_id: str
    modality: str
    caller_label: str
    created_ns: int
    answered_ns: int | None = None
    closed_ns: int | None = None
    ended_ns: int | None = None
    video_codec: str = ""
    video_width: int = 0
    video_height: int = 0
    first_video_frame_ns: int | None = None
    transcript: list[TranscriptLine] = field(default_factory=list)
    photos: list[PhotoState] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    incident_type: str = ""
    urgency: str = ""
    first_urgency_ns: int | None = None
    location: str = ""
    items_checked: set[str] = field(default_factory=set)
    disagreement_flagged: bool = False
    disagreement_aspect: str = ""
    closed: ev.CallClosed | None = None
    rsme: float | None = None
    held: bool = False
    """On hold (``call.held`` without a later ``call.resumed``); the call stays ``active``."""
    open_photo: str = ""
    """Photo id open in the photo viewer (``photo.opened`` without a later ``photo.closed``); empty when none."""
    photo_enlarged: bool = False
    """Whether the open photo is enlarged (``photo.enlarged``)."""
    units: list[str] = field(default_factory=list)
    """Unit types selected to dispatch (last ``intake.units``)."""
    disagreement_confidence: int | None = None
    """Confidence 1-5 in the disagreement flag (last ``intake.disagreement_confidence``); None when not given."""
    notes: str = ""
    """Free notes (last ``intake.notes``)."""
    requested_snapshots: list[ev.MediaSnapshot] = field(default_factory=list)
    """Stills taken at the dispatcher's request (``media.snapshot`` with reason ``request``), with their quality."""
    prompts: list[PromptState] = field(default_factory=list)
    """The dispatcher's prompts to the caller, in order."""

    @property
    def status(self) -> str:
        """``waiting`` (in the queue), ``active`` (answered), ``closed`` (awaiting RSME) or ``done`` (rated)."""
        if self.rsme is not None:
            return "done"
        if self.closed is not None:
            return "closed"
        if self.answered_ns is not None:
            return "active"
        return "waiting"

    @property
    def handling_time_s(self) -> float | None:
        """Seconds from answer to close, or None while the call is not closed."""
        if self.answered_ns is None or self.closed_ns is None:
            return None
        return (self.closed_ns - self.answered_ns) / 1e9


@dataclass
class SessionState:
    """A session after replay: header fields, calls in arrival order, and the last ``seq`` seen."""

    session_id: str = ""
    participant: str = ""
    scenario_id: str = ""
    block_order: list[str] = field(default_factory=list)
    current_block: str = ""
    ended: bool = False
    last_seq: int = 0
    calls: dict[str, CallState] = field(default_factory=dict)
    blocks_ended: list[str] = field(default_factory=list)
    """Block ids in the order of their ``block.ended``."""
    tlx_rated: set[str] = field(default_factory=set)
    """Block ids with a ``rating.nasa_tlx``."""
    tlx_weighted: set[str] = field(default_factory=set)
    """Block ids with a ``rating.nasa_tlx_weights``."""
    drt_onsets: dict[str, list[float]] = field(default_factory=dict)
    """DRT stimulus onsets (ms, ingest clock) per run id, in log order."""
    drt_responses: dict[str, list[float]] = field(default_factory=dict)
    """DRT response times (ms, ingest clock) per run id, in log order."""
    flow: FlowState = field(default_factory=FlowState)
    """The participant flow: consent, screens shown, breaks, practice blocks, end questionnaire (issue 7)."""

    def queue(self) -> list[CallState]:
        """Calls waiting to be answered, oldest first."""
        return [c for c in self.calls.values() if c.status == "waiting"]


def replay(events: Iterable[ev.Event], state: SessionState | None = None) -> SessionState:
    """Fold ``events`` (in ``seq`` order) into ``state`` (a new one when None) and return it.

    Events for unknown calls are ignored rather than raised: a reader must survive a log cut by a crash.
    """
    state = state or SessionState()
    for event in events:
        apply(state, event)
    return state


def apply(state: SessionState, event: ev.Event) -> None:
    """Apply one event to ``state`` in place."""
    state.last_seq = max(state.last_seq, event.seq)
    state.session_id = state.session_id or event.session_id
    data = event.data
    _apply_flow(state.flow, event)
    if isinstance(data, ev.SessionStarted):
        state.participant = data.participant
        state.scenario_id = data.scenario_id
        state.block_order = list(data.block_order)
        return
    if isinstance(data, ev.SessionEnded):
        state.ended = True
        return
    if isinstance(data, ev.BlockStarted):
        state.current_block = data.block_id
        return
    if isinstance(data, ev.BlockEnded):
        if data.block_id not in state.blocks_ended:
            state.blocks_ended.append(data.block_id)
        return
    if isinstance(data, ev.RatingNasaTlx):
        state.tlx_rated.add(data.block_id)
        return
    if isinstance(data, ev.RatingNasaTlxWeights):
        state.tlx_weighted.add(data.block_id)
        return
    if isinstance(data, ev.DrtStimulus):
        state.drt_onsets.setdefault(data.run_id, []).append(data.onset_ms)
        return
    if isinstance(data, ev.DrtResponse):
        state.drt_responses.setdefault(data.run_id, []).append(data.response_ms)
        return
    if isinstance(data, ev.CallCreated):
        assert event.call_id is not None  # guaranteed by check_envelope for call-scoped events
        state.calls[event.call_id] = CallState(
            call_id=event.call_id,
            scenario_call_id=data.scenario_call_id,
            block_id=data.block_id,
            modality=data.modality,
            caller_label=data.caller_label,
            created_ns=event.t_mono_ns,
        )
        return
    call = state.calls.get(event.call_id or "")
    if call is None:
        return
    t = event.t_mono_ns
    # ``is None`` checks, not ``or``: a monotonic clock may read 0 (a fake clock in tests, a fresh container).
    if isinstance(data, ev.CallAnswered):
        if call.answered_ns is None:
            call.answered_ns = t
    elif isinstance(data, ev.CallerUtterance):
        call.transcript.append(TranscriptLine(data.index, data.text, t))
    elif isinstance(data, ev.MediaFirstFrame) and data.kind == "video":
        call.first_video_frame_ns = t
        call.video_codec, call.video_width, call.video_height = data.codec, data.width, data.height
    elif isinstance(data, ev.MediaPhotoReceived):
        call.photos.append(
            PhotoState(data.photo_id, data.file_display, data.file_original, data.width, data.height, t)
        )
    elif isinstance(data, ev.MediaSnapshot):
        call.snapshots.append(data.file)
        if data.reason == "request":
            call.requested_snapshots.append(data)
    elif isinstance(data, ev.DispatcherPrompt):
        call.prompts.append(PromptState(data.prompt_id, data.prompt, t))
    elif isinstance(data, ev.CallerPromptDelivered):
        for prompt in call.prompts:
            if prompt.prompt_id == data.prompt_id and prompt.delivered_ns is None:
                prompt.delivered_ns = t
    elif isinstance(data, ev.IntakeIncidentType):
        call.incident_type = data.incident_type
    elif isinstance(data, ev.IntakeUrgency):
        call.urgency = data.urgency
        if call.first_urgency_ns is None:
            call.first_urgency_ns = t
    elif isinstance(data, ev.IntakeLocation):
        call.location = data.location
    elif isinstance(data, ev.IntakeItemChecked):
        (call.items_checked.add if data.checked else call.items_checked.discard)(data.item)
    elif isinstance(data, ev.IntakeDisagreementFlag):
        call.disagreement_flagged, call.disagreement_aspect = data.flagged, data.aspect
    elif isinstance(data, ev.CallClosed):
        call.closed, call.closed_ns = data, t
    elif isinstance(data, ev.RatingRsme):
        call.rsme = data.value
    elif isinstance(data, ev.CallEnded):
        if call.ended_ns is None:
            call.ended_ns = t
    elif isinstance(data, (ev.CallHeld, ev.CallResumed)):
        call.held = isinstance(data, ev.CallHeld)
    elif isinstance(data, ev.PhotoOpened):
        call.open_photo, call.photo_enlarged = data.photo_id, False
    elif isinstance(data, ev.PhotoEnlarged):
        if call.open_photo == data.photo_id:
            call.photo_enlarged = data.enlarged
    elif isinstance(data, ev.PhotoClosed):
        call.open_photo, call.photo_enlarged = "", False
    elif isinstance(data, ev.IntakeUnits):
        call.units = list(data.units)
    elif isinstance(data, ev.IntakeDisagreementConfidence):
        call.disagreement_confidence = data.confidence
    elif isinstance(data, ev.IntakeNotes):
        call.notes = data.notes


def _apply_flow(flow: FlowState, event: ev.Event) -> None:
    """Fold the events of the participant flow into ``flow`` (the other branches of :func:`apply` go on after)."""
    data = event.data
    if isinstance(data, ev.ParticipantConsent):
        flow.consent = data.given
    elif isinstance(data, ev.ParticipantStep):
        flow.steps.add((data.step, data.phase, data.block_id))
    elif isinstance(data, ev.ParticipantQuestionnaire):
        flow.questionnaire = {"age_band": data.age_band, "experience_years": data.experience_years,
                              "discipline": data.discipline}
    elif isinstance(data, ev.BlockPractice):
        flow.practice_blocks.add(data.block_id)
    elif isinstance(data, ev.BreakStarted):
        flow.break_after, flow.break_started_ns = data.after_block_id, event.t_mono_ns
        flow.break_duration_s = data.duration_s
    elif isinstance(data, ev.BreakEnded):
        if flow.break_after == data.after_block_id:
            flow.break_after, flow.break_started_ns = "", None
    elif isinstance(data, ev.SessionControl) and data.action == "start":
        flow.started = True
