"""What the trainer's page shows, computed from a session's events: pure functions, no Streamlit, no HTTP.

The page (``trainer.py``) fetches each station's events from the ingest, asks :func:`station_view` what to draw
(status, the dispatcher's current call and queue, the dispatcher's entries against the ground truth, DRT
performance, data-quality warnings, which controls apply) and draws it. Everything here is unit-tested with
hand-made event logs.

Times are the ingest's monotonic ``t_mono_ns``; ``now_ns`` is the ingest's clock now (``GET /api/clock``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import urlencode

from workbench.domain import events as ev
from workbench.domain import instruments
from workbench.domain.scenario import CallSpec, Scenario
from workbench.domain.session_state import CallState, SessionState, replay

NO_FRAMES_AFTER_S = 15.0
"""A live-video call whose caller has sent no video frame this long after opening the link is flagged, s."""
PHOTO_GRACE_S = 20.0
"""A planned photo not received this long after its planned time (after the answer) is flagged, s."""
DRT_LOW_HIT_RATE = 0.5
"""Below this hit rate (after :data:`DRT_MIN_STIMULI` stimuli) the trainer is warned: the dispatcher may have
stopped doing the DRT, or the key does not reach the page."""
DRT_MIN_STIMULI = 10


@dataclass(frozen=True)
class TrainerConfig:
    """The trainer page's settings (environment variables, so it reads them the same way however started).

    ``ingest_url`` how the page's server reaches the ingest; ``console_url`` the dispatcher console as the stations'
    browsers reach it (for station links); ``recordings`` the recordings root (each session's scenario copy, for
    ground truth); ``library`` the scenario library folder; ``access_file`` the access-codes file (None: no
    roles); ``runner_logs`` where each started runner's output goes (outside the recordings); ``ice`` the ICE mode
    the runner's simulated callers use (the ingest's).
    """

    ingest_url: str
    console_url: str
    recordings: Path
    library: Path
    access_file: Path | None = None
    runner_logs: Path = Path("runner-logs")
    ice: str = "loopback"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "TrainerConfig":
        """Read ``WORKBENCH_INGEST_URL`` (default ``http://127.0.0.1:8080``), ``WORKBENCH_CONSOLE_URL`` (default
        ``http://127.0.0.1:8501``), ``WORKBENCH_RECORDINGS`` (default ``recordings``), ``WORKBENCH_LIBRARY``
        (default ``experiments``), ``WORKBENCH_ACCESS_FILE``, ``WORKBENCH_RUNNER_LOGS`` (default
        ``~/.cache/workbench112/runner-logs``) and ``WORKBENCH_ICE``."""
        cache = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench112" / "runner-logs"
        access = environ.get("WORKBENCH_ACCESS_FILE")
        return cls(
            ingest_url=(environ.get("WORKBENCH_INGEST_URL") or "http://127.0.0.1:8080").rstrip("/"),
            console_url=(environ.get("WORKBENCH_CONSOLE_URL") or "http://127.0.0.1:8501").rstrip("/"),
            recordings=Path(environ.get("WORKBENCH_RECORDINGS") or "recordings"),
            library=Path(environ.get("WORKBENCH_LIBRARY") or "experiments"),
            access_file=Path(access) if access else None,
            runner_logs=Path(environ.get("WORKBENCH_RUNNER_LOGS") or cache),
            ice=environ.get("WORKBENCH_ICE") or "loopback",
        )


# --- starting a session ---------------------------------------------------------------------------------------------

_PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")


def check_pseudonym(value: str) -> str:
    """The pseudonym stripped, or ``ValueError`` saying what a pseudonym looks like (a code such as ``P07``, never
    a name: letters, digits, ``-``/``_``, at most 32)."""
    value = value.strip()
    if not _PSEUDONYM.match(value):
        raise ValueError(f"participant pseudonym {value!r}: use a code such as P07 (letters, digits, - or _; at most "
                         "32), never a name")
    return value


def new_session_id(participant: str, now: datetime) -> str:
    """``{participant}-{YYYYmmdd-HHMMSS}`` (UTC): readable and unique per participant per second."""
    return f"{participant}-{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}"


def runner_command(python: str, scenario_path: Path, cfg: TrainerConfig, *, participant: str, session_id: str,
                   seed: int) -> list[str]:
    """The ``workbench run`` command that plays ``scenario_path`` on the running ingest for one station, holding
    the first block until the trainer presses Start (``--wait-start``). The trainer's access code travels in the
    environment (``WORKBENCH_ACCESS_TOKEN``), never on the command line."""
    return [python, "-m", "workbench.cli", "run", str(scenario_path), "--ingest", cfg.ingest_url,
            "--participant", participant, "--session-id", session_id, "--seed", str(seed), "--wait-start",
            "--ice", cfg.ice]


def station_link(console_url: str, session_id: str, ticket: str | None) -> str:
    """The dispatcher console's URL for one station: the session and, with roles on, its ticket."""
    query = {"session": session_id}
    if ticket:
        query["ticket"] = ticket
    return f"{console_url.rstrip('/')}/?{urlencode(query)}"


def adhoc_caption(scenario_calls_left: bool) -> str:
    """The line above the inject panel's ad-hoc fields: an alternative to the scenario calls offered above it, or,
    when every scenario call has been played (nothing offered above), the panel's only choice."""
    if scenario_calls_left:
        return "Or an ad-hoc call (no ground truth):"
    return "Every scenario call has been played. Inject an ad-hoc call (no ground truth):"


# --- watching a station ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryRow:
    """One call as the dispatcher has worked it so far, against the ground truth (when the scenario defines it)."""

    call: str
    status: str
    truth: str
    """Ground truth in short (``fire · spoed``), ``—`` for an ad-hoc call."""
    incident_type: str
    incident_type_ok: bool | None
    urgency: str
    urgency_ok: bool | None
    items: str
    flagged: str
    rsme: str
    handling_s: str


@dataclass(frozen=True)
class CurrentCall:
    """The dispatcher's active call as the dispatcher sees it: caller, for how long, what has come in so far."""

    call_id: str
    label: str
    scenario_call_id: str
    held: bool
    answered_s: float
    transcript: tuple[str, ...]
    photos: int
    video: str


@dataclass(frozen=True)
class DrtView:
    """DRT performance so far (ISO 17488 scoring of :mod:`workbench.domain.instruments`)."""

    stimuli: int
    hits: int
    hit_rate: float
    mean_hit_rt_ms: float

    def text(self) -> str:
        if not self.stimuli:
            return "no stimuli yet"
        rt = "—" if math.isnan(self.mean_hit_rt_ms) else f"{self.mean_hit_rt_ms:.0f} ms"
        return f"hit rate {self.hit_rate:.0%} ({self.hits}/{self.stimuli}), mean hit RT {rt}"


@dataclass(frozen=True)
class StationView:
    """Everything the trainer's page draws for one station (session).

    ``status``: ``waiting for start``, ``running``, ``paused``, ``break``, ``ended`` or ``ad hoc`` (a session
    without a scenario: live actors' calls, no runner, so only ``abort`` applies). ``controls``: the actions
    that apply now (subset of ``start``, ``pause``, ``resume``, ``abort``, ``inject``). ``injectable``: scenario
    call ids not yet played (``inject`` adds them now).
    """

    session_id: str
    participant: str
    scenario_id: str
    status: str
    block: str
    blocks_done: int
    blocks_total: int
    queue_length: int
    current: CurrentCall | None
    entries: tuple[EntryRow, ...]
    drt: DrtView | None
    warnings: tuple[str, ...]
    controls: tuple[str, ...]
    injectable: tuple[str, ...]
    last_seq: int
    controls_log: tuple[str, ...] = field(default_factory=tuple)
    flow: str = ""
    """Where the participant is in the participant flow (:func:`flow_text`); empty when the flow is off."""


def _status(events: Sequence[ev.Event], state: SessionState) -> str:
    if state.ended:
        return "ended"
    if state.scenario_id == "adhoc":
        return "ad hoc"  # live actors' calls (POST /api/calls): no runner obeys start, pause or inject
    started = any(isinstance(e.data, ev.BlockStarted) for e in events) or any(
        isinstance(e.data, ev.SessionControl) and e.data.action == "start" for e in events)
    paused = False
    in_break = False
    for e in events:
        if isinstance(e.data, ev.SessionControl) and e.data.action in ("pause", "resume"):
            paused = e.data.action == "pause"
        elif isinstance(e.data, ev.BreakStarted):
            in_break = True
        elif isinstance(e.data, (ev.BreakEnded, ev.BlockStarted)):
            in_break = False
    if paused:
        return "paused"
    if not started:
        return "waiting for start"
    return "break" if in_break else "running"


def _controls(status: str) -> tuple[str, ...]:
    return {
        "waiting for start": ("start", "abort"),
        "running": ("pause", "inject", "abort"),
        "break": ("pause", "inject", "abort"),
        "paused": ("resume", "inject", "abort"),
        "ad hoc": ("abort",),
        "ended": (),
    }[status]


def _entry(call: CallState, spec: CallSpec | None) -> EntryRow:
    truth = spec.truth if spec is not None else None
    required = truth.required_items if truth is not None else ()
    got = len(call.items_checked & set(required))

    def ok(value: str, expected: str | None) -> bool | None:
        if not value or expected is None:
            return None
        return value == expected

    status = call.status + (" (on hold)" if call.held else "")
    return EntryRow(
        call=f"{call.caller_label} ({call.scenario_call_id or 'ad hoc'})",
        status=status,
        truth=f"{truth.incident_type} · {truth.urgency.value}" if truth is not None else "—",
        incident_type=call.incident_type or "—",
        incident_type_ok=ok(call.incident_type, truth.incident_type if truth else None),
        urgency=call.urgency or "—",
        urgency_ok=ok(call.urgency, truth.urgency.value if truth else None),
        items=f"{got}/{len(required)}" if required else f"{len(call.items_checked)} checked",
        flagged=(call.disagreement_aspect or "yes") if call.disagreement_flagged else "no",
        rsme="—" if call.rsme is None else f"{call.rsme:g}",
        handling_s="—" if call.handling_time_s is None else f"{call.handling_time_s:.0f}",
    )


def _drt(state: SessionState) -> DrtView | None:
    if not state.drt_onsets:
        return None
    outcomes = []
    for run_id, onsets in state.drt_onsets.items():
        outcomes += instruments.score_drt_stimuli(onsets, state.drt_responses.get(run_id, []))
    s = instruments.summarize_drt(outcomes)
    return DrtView(s.n_stimuli, s.hits, s.hit_rate, s.mean_hit_rt_ms)


def _warnings(events: Sequence[ev.Event], state: SessionState, scenario: Scenario | None, now_ns: int,
              no_frames_after_s: float, photo_grace_s: float, drt: DrtView | None) -> list[str]:
    specs = {c.id: c for c in scenario.calls} if scenario else {}
    link_opened: dict[str, int] = {}
    designed: dict[str, list[str]] = {}
    problems: list[str] = []
    for e in events:
        d, cid = e.data, e.call_id or ""
        label = state.calls[cid].caller_label if cid in state.calls else cid
        if isinstance(d, ev.CallLinkOpened):
            link_opened.setdefault(cid, e.t_mono_ns)
        elif isinstance(d, ev.ManipulationApplied):
            designed.setdefault(cid, []).append(f"{d.kind} {d.value}")
        elif isinstance(d, ev.WebrtcStateChanged) and d.state == "failed":
            problems.append(f"{label}: the caller's connection failed")
        elif isinstance(d, ev.MediaRecordingFailed):
            problems.append(f"{label}: recording failed ({d.message})")
        elif isinstance(d, ev.CallLinkRefused):
            problems.append(f"{label}: caller link refused ({d.status} {d.reason}) — another device opened it?")
    for cid, call in state.calls.items():
        if call.ended_ns is not None or call.status == "done":
            continue
        spec = specs.get(call.scenario_call_id)
        note = f" (designed: {', '.join(designed[cid])})" if cid in designed else ""
        if call.modality == "video" and call.first_video_frame_ns is None:
            since = link_opened.get(cid, call.created_ns)
            waited = (now_ns - since) / 1e9
            if waited >= no_frames_after_s:
                where = "after opening the link" if cid in link_opened else "since the call arrived"
                problems.append(f"{call.caller_label}: no video frames {waited:.0f} s {where}{note}")
        if spec is not None and call.modality != "audio" and call.answered_ns is not None:
            after_answer = (now_ns - call.answered_ns) / 1e9
            delay = spec.manipulation.photo_delay_s
            due = [p for p in spec.media.photos if after_answer >= p.at_s + delay + photo_grace_s]
            if len(call.photos) < len(due):
                problems.append(f"{call.caller_label}: {len(due) - len(call.photos)} planned photo(s) not received "
                                f"{photo_grace_s:.0f} s after they were due{note}")
    if drt is not None and drt.stimuli >= DRT_MIN_STIMULI and drt.hit_rate < DRT_LOW_HIT_RATE:
        problems.append(f"DRT: hit rate {drt.hit_rate:.0%} over {drt.stimuli} stimuli — is the dispatcher "
                        "responding (key or button)?")
    return problems


FLOW_SCREENS = {"consent": "consent", "instructions": "instructions", "practice": "practice block",
                "break": "break", "questionnaire": "end questionnaire", "end": "thank-you screen"}
"""How the trainer's page names each screen of the participant flow (``participant.step``'s ``step``)."""


def flow_text(events: Sequence[ev.Event], now_ns: int) -> str:
    """The participant flow so far, for the trainer: the consent answer, how long the instructions were read, the
    end questionnaire, and the screen the participant is on now with how long it has been up, e.g. ``consent given
    · instructions read (39 s) · now: break after block live-video (12 s)``. Empty when the session has no flow
    events (flow off). Times from ``t_mono_ns``; ``now_ns`` is the ingest's clock now."""
    parts: list[str] = []
    current: tuple[str, str, int] | None = None
    for e in events:
        d = e.data
        if isinstance(d, ev.ParticipantConsent):
            parts.append("consent given" if d.given else "consent REFUSED")
        elif isinstance(d, ev.ParticipantQuestionnaire):
            parts.append("questionnaire answered")
        elif isinstance(d, ev.ParticipantStep):
            if d.phase == "shown":
                current = (d.step, d.block_id, e.t_mono_ns)
            elif current is not None and current[0] == d.step:
                if d.step == "instructions":
                    parts.append(f"instructions read ({(e.t_mono_ns - current[2]) / 1e9:.0f} s)")
                current = None
    if current is not None:
        step, block, since = current
        where = FLOW_SCREENS.get(step, step) + (f" after block {block}" if step == "break" and block else "")
        parts.append(f"now: {where} ({max(0.0, (now_ns - since) / 1e9):.0f} s)")
    return " · ".join(parts)


def station_view(events: Sequence[ev.Event], scenario: Scenario | None, now_ns: int, *,
                 no_frames_after_s: float = NO_FRAMES_AFTER_S, photo_grace_s: float = PHOTO_GRACE_S) -> StationView:
    """The trainer's view of one session from its whole log (``events`` in ``seq`` order) and its scenario (None
    for an ad-hoc session: no ground truth). Raises nothing for a log cut by a crash (unknown calls are skipped)."""
    state = replay(events)
    specs = {c.id: c for c in scenario.calls} if scenario else {}
    status = _status(events, state)
    active = [c for c in state.calls.values() if c.status == "active" and not c.held]
    current = None
    if active:
        c = active[-1]
        video = "—"
        if c.first_video_frame_ns is not None:
            video = f"{c.video_codec} {c.video_width}x{c.video_height}"
        current = CurrentCall(
            call_id=c.call_id, label=c.caller_label, scenario_call_id=c.scenario_call_id, held=c.held,
            answered_s=max(0.0, (now_ns - (c.answered_ns or now_ns)) / 1e9),
            transcript=tuple(line.text for line in c.transcript), photos=len(c.photos), video=video,
        )
    drt = _drt(state)
    played = {c.scenario_call_id for c in state.calls.values()}
    injectable = tuple(c.id for c in scenario.calls if c.id not in played) if scenario else ()
    controls_log = tuple(
        f"{e.data.action}" + (f" {e.data.scenario_call_id}" if e.data.scenario_call_id else "")
        for e in events if isinstance(e.data, ev.SessionControl))
    return StationView(
        session_id=state.session_id,
        participant=state.participant,
        scenario_id=state.scenario_id,
        status=status,
        block=state.current_block or "—",
        blocks_done=len(state.blocks_ended),
        blocks_total=len(state.block_order),
        queue_length=len(state.queue()),
        current=current,
        entries=tuple(_entry(c, specs.get(c.scenario_call_id)) for c in state.calls.values()),
        drt=drt,
        warnings=tuple(_warnings(events, state, scenario, now_ns, no_frames_after_s, photo_grace_s, drt)),
        controls=_controls(status),
        injectable=injectable,
        last_seq=state.last_seq,
        controls_log=controls_log,
        flow=flow_text(events, now_ns),
    )


def control_body(action: str, *, scenario_call_id: str = "", caller_label: str = "",
                 lines: str = "") -> dict[str, object]:
    """The JSON body of ``POST /api/sessions/{sid}/control`` for a trainer's button. ``inject`` takes a scenario
    call id, or for an ad-hoc call an id, a caller label and the caller's lines (one per line). Raises
    ``ValueError`` saying what is missing."""
    if action not in ev.CONTROL_ACTIONS:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ev.CONTROL_ACTIONS)}")
    body: dict[str, object] = {"action": action}
    if action == "abort":
        body["checkpoint"] = "now"
    if action == "inject":
        if not scenario_call_id.strip():
            raise ValueError("inject needs a call: choose a scenario call, or give an ad-hoc call an id")
        body["scenario_call_id"] = scenario_call_id.strip()
        utterances = [x.strip() for x in lines.splitlines() if x.strip()]
        if caller_label or utterances:
            if not utterances:
                raise ValueError("an ad-hoc call needs at least one caller line")
            body["caller_label"] = caller_label.strip() or scenario_call_id.strip()
            body["utterances"] = utterances
    return body
