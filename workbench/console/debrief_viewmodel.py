"""What the trainer's debrief shows of one recorded session, computed from its folder only (``events.jsonl`` via
the store's reader, ``session.json``, the ``scenario.toml`` copy, the media files): no ingest, no Streamlit.

Per call: what the caller said (transcript), what the image showed (photos, snapshots and the scenario's designed
media facts), what the dispatcher entered against the ground truth (incident type, urgency, location, required
items with the missed ones marked, the disagreement flag against the designed disagreement), RSME and handling
time; the dispatcher's actions in time order; the recording segments for the replay; and a time line
(:func:`timeline_svg`) with the call's utterances, media arrivals, form actions and the RSME.

Times: seconds since the call arrived (``call.created``), from the events' ``t_mono_ns`` (one ingest clock per
session). The recording's time 0 is the call's first recorded video frame (``workbench.ingest.recording``), which
the ingest logs as ``media.first_frame`` (kind video) when it arrives; ``video_offset_s`` maps video time onto the
call's time: ``t_call = video_offset_s + t_video`` (within the few ms between the frame's arrival and its event).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from workbench.domain import events as ev
from workbench.domain.scenario import CallSpec, Scenario
from workbench.domain.session_state import replay
from workbench.domain.taxonomy import DISAGREEMENT_ASPECTS, INCIDENT_TYPES, INFORMATION_ITEMS
from workbench.store.eventlog import read_events
from workbench.store.scenarios import ScenarioError, parse_scenario


class DebriefError(Exception):
    """The folder is not a readable session (no ``events.jsonl``, no session); the message says what to pass."""


@dataclass(frozen=True)
class Mark:
    """One moment of a call: ``t_s`` seconds since its arrival, ``kind`` (``utterance``, ``media``, ``action``,
    ``rating``, ``call``), a short ``label`` and, for an utterance, the ``text`` and ``designed`` (when the scenario
    put it, in the scenario's own reference, e.g. ``designed: 4.5 s after the answer``)."""

    t_s: float
    kind: str
    label: str
    text: str = ""
    designed: str = ""


@dataclass(frozen=True)
class Comparison:
    """One field the dispatcher entered against the ground truth; ``correct`` is None when there is no truth or no
    answer to compare."""

    field: str
    entered: str
    truth: str
    correct: bool | None


@dataclass(frozen=True)
class ItemCheck:
    """A required information item: ``gathered`` when it was in the dispatcher's ``items_gathered`` at close;
    ``missed`` is the opposite (only required items are listed)."""

    key: str
    label: str
    gathered: bool

    @property
    def missed(self) -> bool:
        """Required and not gathered."""
        return not self.gathered


@dataclass(frozen=True)
class Picture:
    """A photo or a snapshot of the live video: absolute ``path``, ``caption``, ``t_s`` since the call arrived."""

    path: Path
    caption: str
    t_s: float


@dataclass
class CallDebrief:
    """Everything the debrief shows of one call (see the module docstring for times)."""

    call_id: str
    scenario_call_id: str
    block_id: str
    modality: str
    caller_label: str
    practice: bool
    answered_s: float | None
    closed_s: float | None
    handling_time_s: float | None
    rsme: float | None
    transcript: list[Mark] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    media_facts: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    items: list[ItemCheck] = field(default_factory=list)
    actions: list[Mark] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    """Every mark of the time line (utterances, media, actions, rating), in time order."""
    segments: list[Path] = field(default_factory=list)
    video_offset_s: float | None = None
    end_s: float = 0.0
    """Last moment of the call on its time line (its end, else its last mark), s."""

    @property
    def missed_items(self) -> list[str]:
        """Keys of the required items not gathered."""
        return [i.key for i in self.items if i.missed]

    @property
    def title(self) -> str:
        """``"house-fire · 06-1234 5678 (video)"`` (``practice`` noted)."""
        name = self.scenario_call_id or self.call_id
        return f"{name} · {self.caller_label} ({self.modality}{', practice' if self.practice else ''})"


@dataclass
class SessionDebrief:
    """A session's debrief: header fields, its calls in arrival order, and what could not be read."""

    session_id: str
    participant: str
    scenario_id: str
    calls: list[CallDebrief]
    problems: list[str] = field(default_factory=list)

    def call(self, call_id: str) -> CallDebrief:
        """The call with ``call_id``; raises ``KeyError`` naming the calls there are."""
        for c in self.calls:
            if c.call_id == call_id:
                return c
        known = ", ".join(c.call_id for c in self.calls)
        raise KeyError(f"no call {call_id!r} in session {self.session_id}; calls: {known}")


def session_dirs(recordings: Path) -> list[Path]:
    """Session folders (with an ``events.jsonl``) directly under ``recordings``, newest name last; ``recordings``
    itself when it is one. Raises :class:`DebriefError` when the folder does not exist."""
    if not recordings.is_dir():
        raise DebriefError(f"{recordings}: no such folder; pass the recordings folder (or one session folder)")
    if (recordings / "events.jsonl").is_file():
        return [recordings]
    return sorted(p for p in recordings.iterdir() if (p / "events.jsonl").is_file())


def load_debrief(session_dir: Path) -> SessionDebrief:
    """Read one session folder into its debrief. Torn or invalid log lines and a missing or invalid scenario copy
    are listed in ``problems`` (the debrief shows what is there); raises :class:`DebriefError` without a log."""
    events_path = session_dir / "events.jsonl"
    if not events_path.is_file():
        raise DebriefError(f"{session_dir}: no events.jsonl; pass a session folder (recordings/<session_id>)")
    events, log_problems = read_events(events_path)
    problems = [f"events.jsonl: {p}" for p in log_problems]
    scenario: Scenario | None = None
    try:
        scenario = parse_scenario((session_dir / "scenario.toml").read_bytes(), "scenario.toml", check_media=False)
    except FileNotFoundError:
        problems.append("no scenario.toml copy: no ground truth to compare against")
    except (OSError, ScenarioError) as exc:
        problems.append(f"scenario.toml unreadable, no ground truth: {exc}")
    state = replay(events)
    calls = [_call_debrief(session_dir, events, state.calls[cid], scenario, state.flow.practice_blocks)
             for cid in state.calls]
    return SessionDebrief(session_dir.name, state.participant, state.scenario_id, calls, problems)


def _spec(scenario: Scenario | None, scenario_call_id: str) -> CallSpec | None:
    if scenario is None or not scenario_call_id:
        return None
    try:
        return scenario.call(scenario_call_id)
    except KeyError:
        return None


ACTION_LABELS = {
    ev.CallAnswered: lambda d: "answered",
    ev.IntakeIncidentType: lambda d: f"incident type: {d.incident_type}",
    ev.IntakeUrgency: lambda d: f"urgency: {d.urgency}",
    ev.IntakeLocation: lambda d: f"location: {d.location or '(cleared)'}",
    ev.IntakeItemChecked: lambda d: f"{'checked' if d.checked else 'unchecked'} {d.item}",
    ev.IntakeDisagreementFlag: lambda d: "flagged disagreement" + (f" ({d.aspect})" if d.aspect else "")
    if d.flagged else "cleared disagreement flag",
    ev.IntakeDisagreementConfidence: lambda d: f"confidence {d.confidence}",
    ev.IntakeUnits: lambda d: f"units: {', '.join(d.units) or 'none'}",
    ev.IntakeNotes: lambda d: "notes edited",
    ev.PhotoOpened: lambda d: f"opened photo {d.photo_id}",
    ev.PhotoEnlarged: lambda d: f"{'enlarged' if d.enlarged else 'shrank'} photo {d.photo_id}",
    ev.PhotoClosed: lambda d: f"closed photo {d.photo_id}",
    ev.CallHeld: lambda d: "put on hold",
    ev.CallResumed: lambda d: "resumed",
    ev.CallClosed: lambda d: "closed the call",
}
"""The dispatcher's events shown as actions, with their label."""


def _call_debrief(session_dir: Path, events: list[ev.Event], call, scenario: Scenario | None,  # noqa: ANN001
                  practice_blocks: set[str]) -> CallDebrief:
    t0 = call.created_ns

    def t(ns: int | None) -> float | None:
        return None if ns is None else round((ns - t0) / 1e9, 3)

    spec = _spec(scenario, call.scenario_call_id)
    out = CallDebrief(
        call_id=call.call_id, scenario_call_id=call.scenario_call_id, block_id=call.block_id,
        modality=call.modality, caller_label=call.caller_label, practice=call.block_id in practice_blocks,
        answered_s=t(call.answered_ns), closed_s=t(call.closed_ns), handling_time_s=call.handling_time_s,
        rsme=call.rsme,
    )
    if call.first_video_frame_ns is not None:
        out.video_offset_s = t(call.first_video_frame_ns)
    marks: list[Mark] = [Mark(0.0, "call", "arrived")]
    first_audio: float | None = None
    for e in events:
        if e.call_id != call.call_id:
            continue
        at = t(e.t_mono_ns) or 0.0
        d = e.data
        if isinstance(d, ev.CallerUtterance):
            # The scenario times lines from the answer, the debrief from the arrival: show both, each labelled.
            mark = Mark(at, "utterance", f"caller line {d.index + 1}", d.text,
                        f"designed: {d.at_s:g} s after the answer")
            out.transcript.append(mark)
            marks.append(mark)
        elif isinstance(d, ev.MediaPhotoReceived):
            out.pictures.append(Picture(session_dir / d.file_display, f"photo {d.photo_id} at {at:.1f} s", at))
            marks.append(Mark(at, "media", f"photo {d.photo_id} arrived"))
        elif isinstance(d, ev.MediaSnapshot):
            out.pictures.append(Picture(session_dir / d.file, f"video snapshot at {at:.1f} s ({d.reason})", at))
        elif isinstance(d, ev.MediaFirstFrame) and d.kind == "video":
            marks.append(Mark(at, "media", f"video started ({d.width}x{d.height})"))
        elif isinstance(d, ev.MediaFirstFrame) and d.kind == "audio" and first_audio is None:
            first_audio = at
        elif isinstance(d, ev.MediaStreamEnded) and d.kind == "video":
            marks.append(Mark(at, "media", "video ended"))
        elif isinstance(d, ev.MediaRecordingSegment):
            out.segments.append(session_dir / d.file)
        elif isinstance(d, ev.RatingRsme):
            marks.append(Mark(at, "rating", f"RSME {d.value:g}"))
        elif type(d) in ACTION_LABELS and e.source in ("console", "simulator"):
            mark = Mark(at, "action", ACTION_LABELS[type(d)](d))
            out.actions.append(mark)
            marks.append(mark)
        elif isinstance(d, ev.CallEnded):
            out.end_s = at
    if out.video_offset_s is None and out.segments:
        out.video_offset_s = first_audio  # an audio-only recording starts at the first audio frame
    out.marks = sorted(marks, key=lambda m: m.t_s)
    out.end_s = max([out.end_s] + [m.t_s for m in out.marks])
    out.segments.sort(key=lambda p: p.name)
    _compare(out, call, spec)
    return out


def _compare(out: CallDebrief, call, spec: CallSpec | None) -> None:  # noqa: ANN001 - CallState
    closed = call.closed
    entered_type = closed.incident_type if closed else call.incident_type
    entered_urgency = closed.urgency if closed else call.urgency
    entered_location = closed.location if closed else call.location
    gathered = set(closed.items_gathered) if closed else set(call.items_checked)
    truth = spec.truth if spec is not None else None

    def cmp(name: str, entered: str, true: str) -> Comparison:
        correct = None if not (entered and true) else entered == true
        return Comparison(name, entered or "(none)", true or "(no ground truth)", correct)

    out.comparisons = [
        cmp("incident type", entered_type, truth.incident_type if truth else ""),
        cmp("urgency", entered_urgency, truth.urgency.value if truth else ""),
        Comparison("location", entered_location or "(none)", truth.location if truth and truth.location else
                   "(no ground truth)", None),
    ]
    if call.units:
        out.comparisons.append(Comparison("units dispatched", ", ".join(call.units), "(no ground truth)", None))
    notes = closed.notes if closed else call.notes
    if notes:
        out.comparisons.append(Comparison("notes", notes, "", None))
    flagged = closed.disagreement_flagged if closed else call.disagreement_flagged
    aspect = closed.disagreement_aspect if closed else call.disagreement_aspect
    designed = sorted(a for a, agree in (truth.congruence.items() if truth else ()) if not agree)
    if truth is not None:
        out.comparisons.append(Comparison(
            "speech/image disagreement", f"flagged ({aspect or 'no aspect'})" if flagged else "not flagged",
            f"designed: {', '.join(designed)}" if designed else "none designed",
            flagged == bool(designed) if out.modality != "audio" else None,
        ))
        out.items = [ItemCheck(k, INFORMATION_ITEMS.get(k, k), k in gathered) for k in truth.required_items]
        out.media_facts = _media_facts(spec, out.modality, out.answered_s)


def _after_arrival(at_s: float, answered_s: float | None) -> str:
    """``designed: N s after arrival`` (the scenario's media reference, docs/scenario-format.md), with where that
    falls against the answer so a trainer need not subtract."""
    text = f"designed: {at_s:g} s after arrival"
    if answered_s is None:
        return text + ", never answered"
    gap = at_s - answered_s
    if abs(gap) < 0.05:
        return text + ", at the answer"
    return text + f", {abs(gap):.1f} s {'after' if gap > 0 else 'before'} the answer at {answered_s:.1f} s"


def _media_facts(spec: CallSpec, modality: str, answered_s: float | None = None) -> list[str]:
    """The designed facts about the image, from the scenario: what agrees or disagrees with the caller's words, which
    media the block let through, manipulations. Media times are the scenario's, counted from the call's arrival
    (as every time in the debrief); ``answered_s`` (call time of the answer, s) places them against the answer."""
    facts = []
    for aspect, agree in sorted(spec.truth.congruence.items()):
        label = DISAGREEMENT_ASPECTS.get(aspect, aspect)
        facts.append(f"{label}: the image {'agrees with' if agree else 'DISAGREES with'} what the caller says")
    media = spec.media
    if modality == "audio":
        facts.append("audio-only block: no photos or video reached the dispatcher")
    else:
        if media.video and modality == "video":
            facts.append(f"live video ({_after_arrival(media.video_at_s, answered_s)})")
        for i, photo in enumerate(media.photos, 1):
            facts.append(f"photo {i} sent ({_after_arrival(photo.at_s + spec.manipulation.photo_delay_s, answered_s)}"
                         + (f", {spec.manipulation.photo_delay_s:g} s delay included" if spec.manipulation.photo_delay_s
                            else "") + ")")
    m = spec.manipulation
    if m.video_start != "ok":
        facts.append(f"manipulation: video fails to start ({m.video_start})")
    if m.video_drop_at_s is not None:
        facts.append(f"manipulation: video drops ({_after_arrival(m.video_drop_at_s, answered_s)})")
    if m.video_scale != 1.0 or m.video_fps:
        facts.append(f"manipulation: low bandwidth (scale {m.video_scale:g}, {m.video_fps:g} fps)")
    if m.blur_px or m.brightness != 1.0 or m.visible != 1.0:
        facts.append(f"manipulation: degraded image (blur {m.blur_px:g} px, brightness {m.brightness:g}, "
                     f"visible {m.visible:g})")
    if m.photo_delay_s:
        facts.append(f"manipulation: photos delayed {m.photo_delay_s:g} s")
    return facts


def incident_label(key: str) -> str:
    """Label of an incident-type key (the key itself when unknown)."""
    return INCIDENT_TYPES.get(key, key)


# --- the time line --------------------------------------------------------------------------------------------------

LANES = ("utterance", "media", "action", "rating")
"""Lanes of the time line, top to bottom."""
LANE_COLOURS = {"utterance": "#1f77b4", "media": "#2ca02c", "action": "#d62728", "rating": "#9467bd", "call": "#555"}


def timeline_svg(call: CallDebrief, width: int = 900, cursor_s: float | None = None) -> str:
    """The call's time line as self-contained SVG: one lane per kind of mark (:data:`LANES`), ticks every 5 s, the
    answer and close as vertical lines, each mark a dot with its label as a tooltip (``<title>``); ``cursor_s``
    draws the replay cursor (``id="cursor"``, moved by the replay's script). Nothing remote."""
    left, right, lane_h, top = 90, 20, 26, 22
    span = max(call.end_s, 1.0) * 1.02
    height = top + lane_h * len(LANES) + 24

    def x(t_s: float) -> float:
        return left + (width - left - right) * max(0.0, t_s) / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" data-span="{span:.3f}" data-left="{left}" data-right="{right}" '
             'font-family="sans-serif" font-size="11" class="timeline">']
    for i, lane in enumerate(LANES):
        y = top + lane_h * i + lane_h / 2
        parts.append(f'<text x="4" y="{y + 4:.1f}" fill="{LANE_COLOURS[lane]}">{lane}</text>')
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
    bottom = top + lane_h * len(LANES)
    step = 5 if span <= 120 else 30
    for tick in range(0, int(span) + 1, step):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#888"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#666">{tick} s</text>')
    for label, at in (("answer", call.answered_s), ("close", call.closed_s)):
        if at is not None:
            # Near the right edge the label ends at its line, else it would be cut off by the SVG's border.
            near_end = x(at) > width - right - 80
            anchor = f'x="{x(at) - 3:.1f}" text-anchor="end"' if near_end else f'x="{x(at) + 3:.1f}"'
            parts.append(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{top - 6}" y2="{bottom}" stroke="#333" '
                         f'stroke-dasharray="3,3"/><text {anchor} y="{top - 8}" fill="#333">{label} '
                         f'{at:.1f} s</text>')
    parts.append(f'<text x="4" y="{bottom + 16}" fill="#666">since arrival</text>')  # the axis' one reference
    for mark in call.marks:
        if mark.kind not in LANES:
            continue
        y = top + lane_h * LANES.index(mark.kind) + lane_h / 2
        tip = html.escape(f"{mark.t_s:.1f} s: {mark.label}" + (f" — {mark.text}" if mark.text else "")
                          + (f" ({mark.designed})" if mark.designed else ""))
        parts.append(f'<circle cx="{x(mark.t_s):.1f}" cy="{y:.1f}" r="5" fill="{LANE_COLOURS[mark.kind]}" '
                     f'data-t="{mark.t_s:.3f}"><title>{tip}</title></circle>')
    if cursor_s is not None:
        parts.append(f'<line id="cursor" x1="{x(cursor_s):.1f}" x2="{x(cursor_s):.1f}" y1="{top - 6}" '
                     f'y2="{bottom}" stroke="#ff7f0e" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


# --- the replay -----------------------------------------------------------------------------------------------------


def time_reference(call: CallDebrief) -> str:
    """The one reference every time of the debrief uses, said in words with the answer marked, e.g.
    ``since the call arrived; answered at 27.9 s``."""
    answered = "never answered" if call.answered_s is None else f"answered at {call.answered_s:.1f} s"
    return f"since the call arrived; {answered}"


def replay_html(call: CallDebrief, media_src: str | None, width: int = 900) -> str:
    """A self-contained replay page (for an iframe): the recording (``media_src``, an URL or a ``data:`` URL; None
    without a recording), the call's time line with a cursor, the transcript and the dispatcher's actions.

    As the recording plays (or is sought) the cursor follows the call's time (``video_offset_s`` + the video's
    ``currentTime``), the caller's current line gets the class ``current``, actions already taken ``done`` and the
    latest of them also ``current``; clicking a line or an action seeks the recording there. Element ids for
    tests: ``video``, ``now`` (call time shown, s), ``cursor``, ``transcript``, ``actions``; each line or action is
    an ``li.cue`` with ``data-t`` (call time, s)."""
    offset = call.video_offset_s or 0.0
    svg = timeline_svg(call, width=width - 20, cursor_s=offset)

    def cue(mark: Mark) -> str:
        text = html.escape(mark.text or mark.label)
        designed = f' <span class="designed">({html.escape(mark.designed)})</span>' if mark.designed else ""
        return (f'<li class="cue {mark.kind}" data-t="{mark.t_s:.3f}"><span class="t">{mark.t_s:5.1f} s</span> '
                f'{text}{designed}</li>')

    transcript = "".join(cue(m) for m in call.transcript) or '<li class="empty">The caller said nothing.</li>'
    actions = "".join(cue(m) for m in call.actions) or '<li class="empty">No actions.</li>'
    if media_src:
        player = (f'<video id="video" controls preload="auto" width="{min(640, width - 20)}" '
                  f'src="{html.escape(media_src)}"></video>')
    else:
        player = '<p id="novideo">No recording of this call (recording off, or no media arrived).</p>'
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font-family: sans-serif; font-size: 14px; margin: 0; padding: 6px; }}
#clock {{ margin: 4px 0; color: #444; }}
.cols {{ display: flex; gap: 16px; }}
.cols > div {{ flex: 1; }}
ol {{ list-style: none; padding: 0; margin: 0; max-height: 230px; overflow-y: auto; }}
li.cue {{ padding: 3px 6px; border-left: 4px solid transparent; cursor: pointer; color: #888; }}
li.cue.done {{ color: #222; }}
li.cue.current {{ background: #fff3cd; border-left-color: #ff7f0e; color: #000; font-weight: 600; }}
li.cue .t {{ font-family: monospace; color: #666; }}
li.cue .designed {{ font-weight: normal; color: #888; font-size: 12px; }}
h4 {{ margin: 8px 0 4px; }}
</style></head><body>
{player}
<div id="clock">Call time <b><span id="now">{offset:.1f}</span> s</b> ({html.escape(time_reference(call))}; the
recording starts at {offset:.1f} s)</div>
{svg}
<div class="cols"><div><h4>What the caller said</h4><ol id="transcript">{transcript}</ol></div>
<div><h4>What the dispatcher did</h4><ol id="actions">{actions}</ol></div></div>
<script>
(function() {{
  const offset = {offset:.3f};
  const video = document.getElementById("video");
  const now = document.getElementById("now");
  const cursor = document.getElementById("cursor");
  const svg = document.querySelector("svg.timeline");
  const span = parseFloat(svg.dataset.span), left = parseFloat(svg.dataset.left), right = parseFloat(svg.dataset.right);
  const width = parseFloat(svg.getAttribute("width"));
  const lines = Array.from(document.querySelectorAll("#transcript li.cue"));
  const actions = Array.from(document.querySelectorAll("#actions li.cue"));
  function mark(list, t, all) {{
    let current = null;
    for (const li of list) {{
      const reached = parseFloat(li.dataset.t) <= t;
      li.classList.toggle("done", reached);
      li.classList.remove("current");
      if (reached) current = li;
    }}
    if (current) {{ current.classList.add("current"); }}
  }}
  function update() {{
    const t = offset + (video ? video.currentTime : 0);
    now.textContent = t.toFixed(1);
    const x = left + (width - left - right) * Math.max(0, t) / span;
    if (cursor) {{ cursor.setAttribute("x1", x.toFixed(1)); cursor.setAttribute("x2", x.toFixed(1)); }}
    mark(lines, t); mark(actions, t);
  }}
  function loop() {{ update(); if (video && !video.paused) requestAnimationFrame(loop); }}
  if (video) {{
    video.addEventListener("play", loop);
    for (const name of ["timeupdate", "seeked", "loadedmetadata", "pause"]) video.addEventListener(name, update);
  }}
  for (const li of lines.concat(actions)) {{
    li.addEventListener("click", () => {{
      if (video) video.currentTime = Math.max(0, parseFloat(li.dataset.t) - offset);
    }});
  }}
  update();
}})();
</script></body></html>"""
