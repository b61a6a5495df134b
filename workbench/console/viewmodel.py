"""What the dispatcher console shows, computed from a replayed :class:`SessionState`: pure functions, no Streamlit.

The page script (``app.py``) only fetches events, folds them with :func:`workbench.domain.session_state.apply`,
asks this module what to draw and which payloads to post, and draws it. Everything here is unit-tested without a
server or a browser.

Times: the state holds the ingest's ``time.monotonic_ns()`` stamps. The console runs in another process (possibly
on another machine), so it maps its wall clock onto the ingest's monotonic clock with the offset carried by every
event (``t_wall`` and ``t_mono_ns`` are taken together when the ingest appends): see :func:`clock_offset_ns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence
from urllib.parse import quote

from workbench.domain import events as ev
from workbench.domain import instruments
from workbench.domain.scenario import Scenario
from workbench.domain.session_state import CallState, SessionState
from workbench.domain.taxonomy import (
    DISAGREEMENT_ASPECTS,
    INCIDENT_TYPES,
    INFORMATION_ITEMS,
    RSME_ANCHORS,
    RSME_MAX,
    RSME_MIN,
    Urgency,
)

URGENCY_MEANING: dict[Urgency, str] = {Urgency.SPOED: "urgent", Urgency.NU: "now", Urgency.LATER: "later"}
"""English gloss of each urgency class, shown beside the Dutch key."""


# --- clock ----------------------------------------------------------------------------------------------------------


def clock_offset_ns(event: ev.Event) -> int:
    """Offset that maps the ingest's monotonic clock onto the wall clock: ``wall_ns = t_mono_ns + offset``.

    Taken from one event (its ``t_wall`` and ``t_mono_ns`` are read together when the ingest appends it).
    """
    wall = datetime.fromisoformat(event.t_wall)
    wall_ns = int(wall.timestamp()) * 1_000_000_000 + wall.microsecond * 1_000
    return wall_ns - event.t_mono_ns


def ingest_now_ns(wall_now_ns: int, offset_ns: int) -> int:
    """The ingest's monotonic ``now`` estimated from the console's wall clock (``time.time_ns()``) and the offset."""
    return wall_now_ns - offset_ns


# --- queue ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    """One row of the queue: a call that has not been rated yet.

    ``waiting_s`` is the time from arrival to answer (or to ``now`` while the call still waits), whole seconds
    rounded down; ``status`` is :attr:`CallState.status` (``waiting``, ``active``, ``closed``).
    """

    call_id: str
    caller_label: str
    modality: str
    status: str
    waiting_s: int


def waiting_s(call: CallState, now_ns: int) -> int:
    """Whole seconds the call waited: arrival to answer, or arrival to ``now_ns`` while unanswered (never < 0)."""
    end = call.answered_ns if call.answered_ns is not None else now_ns
    return max(0, (end - call.created_ns) // 1_000_000_000)


def queue_rows(state: SessionState, now_ns: int) -> list[QueueRow]:
    """Rows for every call not yet done: the active or closed call first, then waiting calls oldest first."""
    open_calls = [c for c in state.calls.values() if c.status in ("active", "closed")]
    waiting = sorted(state.queue(), key=lambda c: c.created_ns)
    return [
        QueueRow(c.call_id, c.caller_label, c.modality, "held" if c.held and c.status == "active" else c.status,
                 waiting_s(c, now_ns))
        for c in open_calls + waiting
    ]


def queue_status_text(row: QueueRow) -> str:
    """``"waiting 12 s"`` for a waiting call; ``"active · answered after 3 s"`` (or ``closed · ...``) otherwise."""
    if row.status == "waiting":
        return f"waiting {row.waiting_s} s"
    return f"{row.status} · answered after {row.waiting_s} s"


def next_waiting(state: SessionState) -> CallState | None:
    """The call the dispatcher should answer next: the oldest waiting one, or None."""
    waiting = sorted(state.queue(), key=lambda c: c.created_ns)
    return waiting[0] if waiting else None


# --- which screen ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Screen:
    """What the page shows: ``kind`` is ``active`` (a call is being handled), ``rsme`` (rate the call just closed),
    ``tlx`` (rate the block just ended on the NASA-TLX), ``tlx_weights`` (its 15 pairwise comparisons) or ``queue``
    (wait for / answer the next call, resume a held one); ``call_id`` names the call for the first two, else ``""``;
    ``block_id`` the block for the NASA-TLX screens, else ``""``."""

    kind: str
    call_id: str = ""
    block_id: str = ""


def current_screen(state: SessionState, *, tlx_weights: bool = False) -> Screen:
    """The screen to show: a call awaiting its RSME rating first (the rating follows the close at once), then the
    call being handled (not on hold), then the NASA-TLX of an ended block not rated yet (and its pairwise weights
    when ``tlx_weights``), else the queue. With several calls (a second console), the earliest answered wins."""
    calls = sorted(state.calls.values(), key=lambda c: (c.answered_ns or 0, c.created_ns))
    for call in calls:
        if call.status == "closed":
            return Screen("rsme", call.call_id)
    for call in calls:
        if call.status == "active" and not call.held:
            return Screen("active", call.call_id)
    for block in state.blocks_ended:
        if block not in state.tlx_rated:
            return Screen("tlx", block_id=block)
        if tlx_weights and block not in state.tlx_weighted:
            return Screen("tlx_weights", block_id=block)
    return Screen("queue")


def held_calls(state: SessionState) -> list[CallState]:
    """Calls on hold, in the order they were answered."""
    held = [c for c in state.calls.values() if c.status == "active" and c.held]
    return sorted(held, key=lambda c: (c.answered_ns or 0, c.created_ns))


# --- the active call ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptRow:
    """A transcript line as shown: seconds after the answer (None when it came before) and the text."""

    at_s: float | None
    text: str

    def render(self) -> str:
        """``"[+4 s] text"`` (or ``"[+? s] text"`` when the answer time is unknown)."""
        stamp = "?" if self.at_s is None else f"{self.at_s:.0f}"
        return f"[+{stamp} s] {self.text}"


def transcript_rows(call: CallState) -> list[TranscriptRow]:
    """The caller's lines in arrival order, stamped relative to the answer."""
    rows = []
    for line in call.transcript:
        at = None if call.answered_ns is None else max(0.0, (line.t_mono_ns - call.answered_ns) / 1e9)
        rows.append(TranscriptRow(at, line.text))
    return rows


def checklist_items(scenario: Scenario | None, call: CallState) -> list[tuple[str, str]]:
    """``(key, label)`` of the information items the dispatcher must gather in this call.

    From the scenario's ground truth for a scenario call (only the list of required items is taken from the ground
    truth; nothing else of it reaches the page); the whole taxonomy for an ad-hoc call, or when the scenario is
    unknown or does not list the call.
    """
    keys: Sequence[str] = list(INFORMATION_ITEMS)
    if scenario is not None and call.scenario_call_id:
        try:
            keys = scenario.call(call.scenario_call_id).truth.required_items
        except KeyError:
            pass
    return [(k, INFORMATION_ITEMS[k]) for k in keys]


@dataclass(frozen=True)
class FormState:
    """The intake form as the log knows it (the widgets start from here, so a reloaded page keeps the intake)."""

    incident_type: str | None
    urgency: str | None
    location: str
    items_checked: frozenset[str]
    disagreement_flagged: bool
    disagreement_aspect: str | None
    units: tuple[str, ...] = ()
    confidence: int | None = None
    notes: str = ""


def form_state(call: CallState) -> FormState:
    """The call's intake so far, with ``None`` for choices not made yet."""
    return FormState(
        incident_type=call.incident_type or None,
        urgency=call.urgency or None,
        location=call.location,
        items_checked=frozenset(call.items_checked),
        disagreement_flagged=call.disagreement_flagged,
        disagreement_aspect=call.disagreement_aspect or None,
        units=tuple(call.units),
        confidence=call.disagreement_confidence,
        notes=call.notes,
    )


def widget_key(name: str, call_id: str) -> str:
    """Key of a per-call widget: ``"urgency-<call_id>"``, ``"items-<call_id>"``, ``"rsme-<call_id>"``.

    The call id is part of the key so no widget state, and no callback Streamlit fires late, can carry over from one
    call to the next.
    """
    return f"{name}-{call_id}"


def incident_type_label(key: str) -> str:
    """Label of an incident-type key (the selectbox's ``format_func``)."""
    return INCIDENT_TYPES[key]


def urgency_options() -> list[str]:
    """Urgency keys in order of priority: ``spoed``, ``nu``, ``later``."""
    return [u.value for u in sorted(Urgency, key=lambda u: u.priority)]


def urgency_label(key: str) -> str:
    """``"spoed (urgent, prio 1)"`` and so on."""
    u = Urgency(key)
    return f"{u.value} ({URGENCY_MEANING[u]}, prio {u.priority})"


def aspect_label(key: str) -> str:
    """Label of a disagreement-aspect key."""
    return DISAGREEMENT_ASPECTS[key]


def sync_payloads(call: CallState, form: FormState) -> list[ev.Payload]:
    """Intake events that bring the log up to the widgets' values (``form``), in form order; empty when in step.

    Posted before ``call.closed`` so a value the dispatcher typed but never committed (a text field still focused
    when "Close call" was clicked) is in the log too.
    """
    logged = form_state(call)
    out: list[ev.Payload] = []
    if form.incident_type and form.incident_type != logged.incident_type:
        out.append(ev.IntakeIncidentType(form.incident_type))
    if form.urgency and form.urgency != logged.urgency:
        out.append(ev.IntakeUrgency(form.urgency))
    if form.location != logged.location:
        out.append(ev.IntakeLocation(form.location))
    for item in sorted(form.items_checked ^ logged.items_checked):
        out.append(ev.IntakeItemChecked(item, item in form.items_checked))
    if (form.disagreement_flagged, form.disagreement_aspect or "") != (
        logged.disagreement_flagged,
        logged.disagreement_aspect or "",
    ):
        out.append(ev.IntakeDisagreementFlag(form.disagreement_flagged, form.disagreement_aspect or ""))
    if form.confidence is not None and form.confidence != logged.confidence:
        out.append(ev.IntakeDisagreementConfidence(form.confidence))
    if form.units != logged.units:
        out.append(ev.IntakeUnits(list(form.units)))
    if form.notes != logged.notes:
        out.append(ev.IntakeNotes(form.notes))
    return out


def is_news(call: CallState, payload: ev.Payload) -> bool:
    """Whether posting ``payload`` (an intake event from a widget callback) changes the call as logged.

    False when the call is no longer being handled, or the log already holds that value. Widget callbacks post only
    news: Streamlit can fire a callback again for a value it already reported (for instance when a form's widgets
    leave the page at close), and a repeated event would be a false data point.
    """
    if call.status != "active":
        return False
    if isinstance(payload, ev.IntakeIncidentType):
        return payload.incident_type != call.incident_type
    if isinstance(payload, ev.IntakeUrgency):
        return payload.urgency != call.urgency
    if isinstance(payload, ev.IntakeLocation):
        return payload.location != call.location
    if isinstance(payload, ev.IntakeItemChecked):
        return payload.checked != (payload.item in call.items_checked)
    if isinstance(payload, ev.IntakeDisagreementFlag):
        return (payload.flagged, payload.aspect) != (call.disagreement_flagged, call.disagreement_aspect)
    if isinstance(payload, ev.IntakeUnits):
        return list(payload.units) != call.units
    if isinstance(payload, ev.IntakeDisagreementConfidence):
        return payload.confidence != call.disagreement_confidence
    if isinstance(payload, ev.IntakeNotes):
        return payload.notes != call.notes
    if isinstance(payload, ev.PhotoOpened):
        return payload.photo_id != call.open_photo
    if isinstance(payload, ev.PhotoEnlarged):
        return payload.photo_id == call.open_photo and payload.enlarged != call.photo_enlarged
    if isinstance(payload, ev.PhotoClosed):
        return bool(call.open_photo) and payload.photo_id == call.open_photo
    if isinstance(payload, ev.CallHeld):
        return not call.held
    if isinstance(payload, ev.CallResumed):
        return call.held
    return True


def close_payload(form: FormState, checklist: Sequence[str], notes: str) -> ev.CallClosed:
    """The ``call.closed`` payload from the final form; ``items_gathered`` in checklist order."""
    return ev.CallClosed(
        incident_type=form.incident_type or "",
        urgency=form.urgency or "",
        location=form.location,
        items_gathered=[k for k in checklist if k in form.items_checked],
        disagreement_flagged=form.disagreement_flagged,
        disagreement_aspect=(form.disagreement_aspect or "") if form.disagreement_flagged else "",
        notes=notes,
    )


# --- media ----------------------------------------------------------------------------------------------------------


def viewer_url(public_base: str, call_id: str) -> str:
    """The ingest's live-viewer page of a call, as the dispatcher's browser reaches it."""
    return f"{public_base.rstrip('/')}/api/calls/{quote(call_id, safe='')}/viewer"


def photo_url(public_base: str, call_id: str, photo_id: str) -> str:
    """The display copy of a photo, as the dispatcher's browser reaches it."""
    return f"{public_base.rstrip('/')}/api/calls/{quote(call_id, safe='')}/photos/{quote(photo_id, safe='')}"


@dataclass(frozen=True)
class PhotoView:
    """A photo tile: URL, caption (id and seconds after the answer), display size and the photo's id."""

    url: str
    caption: str
    width: int
    height: int
    photo_id: str = ""


def photo_views(call: CallState, public_base: str) -> list[PhotoView]:
    """Tiles for the call's photos, in arrival order."""
    views = []
    for p in call.photos:
        if call.answered_ns is None or p.t_mono_ns <= call.answered_ns:
            when = "before answer"
        else:
            when = f"+{(p.t_mono_ns - call.answered_ns) / 1e9:.0f} s"
        views.append(PhotoView(photo_url(public_base, call.call_id, p.photo_id), f"{p.photo_id} ({when})",
                               p.width, p.height, p.photo_id))
    return views


def snapshot_url(public_base: str, call_id: str, file: str) -> str:
    """The stored still ``file`` (``media.snapshot``'s session-relative path), as the dispatcher's browser reaches
    it (``GET /api/calls/{id}/snapshots/{name}``)."""
    name = file.rsplit("/", 1)[-1]
    return f"{public_base.rstrip('/')}/api/calls/{quote(call_id, safe='')}/snapshots/{quote(name, safe='')}"


@dataclass(frozen=True)
class SnapshotView:
    """A still the dispatcher asked for: URL and a caption with its quality figures (sharpness = variance of the
    Laplacian, brightness = mean grey 0-255, motion = mean absolute grey difference from the previous frame)."""

    url: str
    caption: str


def snapshot_views(call: CallState, public_base: str) -> list[SnapshotView]:
    """The call's requested stills, newest first, each with ``"#n · WxH · sharpness S · brightness B · motion M"``
    (and ``"blurred"`` below a sharpness of 50, the threshold :class:`~workbench.domain.events.MediaSnapshot`
    gives for a 640x480 still)."""
    views = []
    for n, snap in enumerate(call.requested_snapshots, start=1):
        blur = " (blurred)" if snap.sharpness < 50 else ""
        caption = (f"#{n} · {snap.width}x{snap.height} · sharpness {snap.sharpness:.0f}{blur} · "
                   f"brightness {snap.brightness:.0f} · motion {snap.motion:.1f}")
        views.append(SnapshotView(snapshot_url(public_base, call.call_id, snap.file), caption))
    return views[::-1]


PROMPT_LABELS: dict[str, str] = {
    "photo": "Ask for a photo",
    "switch_camera": "Ask to switch camera",
    "end_video": "End the video",
}
"""What each prompt to the caller (``ev.CALLER_PROMPTS``) asks, in the console's feedback lines."""

PROMPT_BUTTONS: dict[str, str] = {"photo": "Get photo", "switch_camera": "Switch camera", "end_video": "End video"}
"""Short button labels of the prompts (four buttons share the width of the live view)."""


def prompt_lines(call: CallState, now_ns: int) -> list[str]:
    """One line per prompt to the caller, newest first: what was asked, how long ago, and whether the caller's page
    has it yet (``"Ask for a photo · 12 s ago · on the caller's screen"``)."""
    lines = []
    for p in reversed(call.prompts):
        ago = max(0, (now_ns - p.t_mono_ns) // 1_000_000_000)
        seen = "on the caller's screen" if p.delivered_ns is not None else "not yet on the caller's screen"
        lines.append(f"{PROMPT_LABELS.get(p.prompt, p.prompt)} · {ago} s ago · {seen}")
    return lines


def media_status_line(status: dict) -> str:
    """One line on the live view from ``GET /api/calls/{id}``: state, codec, resolution, frames (tolerates gaps)."""
    parts = [str(status.get("state") or "unknown")]
    if status.get("video_codec"):
        parts.append(str(status["video_codec"]))
    if status.get("width") and status.get("height"):
        parts.append(f"{status['width']}x{status['height']}")
    if "frames_received" in status:
        parts.append(f"{status['frames_received']} frames")
    return " · ".join(parts)


# --- RSME -----------------------------------------------------------------------------------------------------------


def rsme_scale_html(value: float | None, height_px: int = 420) -> str:
    """A vertical RSME scale (0 at the bottom, 150 at the top) with the nine anchors from
    :data:`~workbench.domain.taxonomy.RSME_ANCHORS` and a marker at ``value`` (none when None).

    Self-contained HTML and CSS (no script, nothing remote), for ``st.html``.
    """
    span = RSME_MAX - RSME_MIN

    def bottom(pos: float) -> str:
        return f"{(pos - RSME_MIN) / span * 100:.2f}%"

    ticks = []
    for v in range(RSME_MIN, RSME_MAX + 1, 10):
        ticks.append(
            f'<div class="rs-tick" style="bottom:{bottom(v)}"><span class="rs-num">{v}</span></div>'
        )
    anchors = [
        f'<div class="rs-anchor" style="bottom:{bottom(a.position)}" title="{a.position}">'
        f'<span class="rs-dash"></span><span class="rs-label">{a.label}</span></div>'
        for a in RSME_ANCHORS
    ]
    marker = ""
    if value is not None:
        marker = (
            f'<div class="rs-marker" style="bottom:{bottom(value)}"><span class="rs-val">{value:g}</span></div>'
        )
    return f"""
<style>
.rs-wrap {{ position: relative; height: {height_px}px; margin: 12px 0 12px 8px; font-size: 14px; }}
.rs-bar {{ position: absolute; left: 44px; top: 0; bottom: 0; width: 4px; background: #888; }}
.rs-tick {{ position: absolute; left: 36px; width: 20px; height: 0; border-top: 1px solid #888; }}
.rs-num {{ position: absolute; right: 26px; transform: translateY(-50%); color: #777; font-size: 11px; }}
.rs-anchor {{ position: absolute; left: 44px; right: 0; height: 0; }}
.rs-dash {{ position: absolute; left: 0; width: 28px; border-top: 2px solid #333; }}
.rs-label {{ position: absolute; left: 34px; transform: translateY(-50%); white-space: nowrap; }}
.rs-marker {{ position: absolute; left: 30px; width: 32px; height: 0; border-top: 3px solid #d33; }}
.rs-val {{ position: absolute; left: -30px; transform: translateY(-50%); color: #d33; font-weight: 600; }}
</style>
<div class="rs-wrap" role="img" aria-label="Rating Scale Mental Effort">
  <div class="rs-bar"></div>
  {''.join(ticks)}
  {''.join(anchors)}
  {marker}
</div>
"""


def rsme_payload(value: float) -> ev.RatingRsme:
    """The ``rating.rsme`` payload for ``value`` (validated 0-150; raises ``EventValidationError``)."""
    payload = ev.RatingRsme(float(value))
    payload.check()
    return payload


# --- session --------------------------------------------------------------------------------------------------------


def pick_session(sessions: Sequence[dict]) -> str | None:
    """The session to show when none was named: the newest one that has not ended (``GET /api/sessions`` rows).

    Newest is the latest ``started_at`` when the rows carry it, else the last row (the ingest lists sessions in
    creation order); None when every session has ended or there is none.
    """
    live = [s for s in sessions if not s.get("ended")]
    if not live:
        return None
    if all("started_at" in s for s in live):
        live = sorted(live, key=lambda s: str(s["started_at"]))
    return str(live[-1]["session_id"])


# --- units, confidence ----------------------------------------------------------------------------------------------


def unit_label(key: str) -> str:
    """Label of a unit-type key (the multiselect's ``format_func``)."""
    return ev.UNIT_TYPES[key]


CONFIDENCE_LABELS: dict[int, str] = {1: "1 not sure", 2: "2", 3: "3", 4: "4", 5: "5 completely sure"}
"""Labels of the 1-5 confidence rating of the disagreement flag."""


# --- NASA-TLX -------------------------------------------------------------------------------------------------------


def tlx_payload(block_id: str, ratings: dict[str, int]) -> ev.RatingNasaTlx:
    """The ``rating.nasa_tlx`` payload (validated: ints 0-100 in steps of 5; raises ``EventValidationError``)."""
    payload = ev.RatingNasaTlx(block_id, **{name: int(ratings[name]) for name in instruments.TLX_SUBSCALES})
    payload.check()
    return payload


def tlx_weights_payload(block_id: str, choices: Sequence[str]) -> ev.RatingNasaTlxWeights:
    """The ``rating.nasa_tlx_weights`` payload (validated; raises ``EventValidationError``)."""
    payload = ev.RatingNasaTlxWeights(block_id, list(choices))
    payload.check()
    return payload


def tlx_scale_caption(name: str) -> str:
    """``"0 = Low · 100 = High"`` (performance: ``"0 = Good · 100 = Poor"``)."""
    _, _, low, high = instruments.TLX_LABELS[name]
    return f"0 = {low} · 100 = {high}"


def block_label(state: SessionState, block_id: str) -> str:
    """``"block 2 of 3"`` when the block is in the session's order, else the block id."""
    if block_id in state.block_order:
        return f"block {state.block_order.index(block_id) + 1} of {len(state.block_order)}"
    return f"block {block_id}"


# --- DRT ------------------------------------------------------------------------------------------------------------


def drt_performance(state: SessionState) -> instruments.DrtSummary:
    """Live DRT performance of the session so far, all runs together (each run scored on its own with
    :func:`workbench.domain.instruments.score_drt_stimuli`; the newest stimulus of a run still within its
    2500 ms window may count as a miss until its response arrives)."""
    outcomes: list[instruments.DrtOutcome] = []
    for run, onsets in state.drt_onsets.items():
        outcomes += instruments.score_drt_stimuli(onsets, state.drt_responses.get(run, []))
    return instruments.summarize_drt(outcomes)


def drt_line(summary: instruments.DrtSummary) -> str:
    """``"DRT: 12 stimuli · 83% hits · mean RT 412 ms"`` (``"DRT: no stimuli yet"``)."""
    if summary.n_stimuli == 0:
        return "DRT: no stimuli yet"
    rt = "" if summary.hits == 0 else f" · mean RT {summary.mean_hit_rt_ms:.0f} ms"
    return f"DRT: {summary.n_stimuli} stimuli · {summary.hit_rate:.0%} hits{rt}"
