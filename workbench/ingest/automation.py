"""The ingest's automated aids (issue 11): link proposals between reports and triage advice, as events.

:class:`Automation` listens to every event the ingest appends (``Sessions.listeners``). It keeps, per session, what
is known of each report (arrival, position, incident type, the caller's lines, an image's colour histogram and
image facts) and, when something new arrives about a report:

- scores that report against every other report of the session (``workbench.screening.linking.score_link``) and
  writes ``link.proposed`` on the newer report the first time a pair reaches ``PROPOSE_AT`` (never for a pair the
  dispatcher has already linked), and ``link.rescored`` when later evidence moves an undecided proposal's score by
  :data:`RESCORE_STEP` or more;
- in blocks whose scenario switches advice on (``[[blocks]] advice = true``), recomputes the triage advice
  (``workbench.screening.advice.advise`` on the transcript facts and the latest photo's image facts) and writes
  ``advice.given`` when its urgency or rules changed.

Positions: the caller's geolocation > a photo's GPS > the scenario's caller position (``truth.caller_lat/lon``, else
the incident's location), which stands in for the network-provided caller location (AML) a control room gets.
After an ingest restart the state of a session is rebuilt from its log the first time one of its events arrives
(nothing is proposed twice: earlier proposals are in the log).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from workbench.domain import events as ev
from workbench.domain.scenario import Scenario
from workbench.screening.linking import ReportFeatures, colour_histogram, inferred_type, score_link
from workbench.screening.transcript import extract_facts

log = logging.getLogger(__name__)

_TRIGGERS = (ev.CallCreated, ev.CallerGeolocation, ev.MediaPhotoMetadata, ev.MediaPhotoReceived, ev.CallerUtterance,
             ev.IntakeIncidentType, ev.LinkProposed, ev.LinkRescored, ev.LinkDecided, ev.LinkSet)
RESCORE_STEP = 0.1
"""An undecided proposal is rescored (``link.rescored``) when new evidence moves its score by at least this much:
smaller changes would flicker in the console without changing what a dispatcher should do."""


@dataclass
class _Report:
    call_id: str
    t_s: float
    scenario_call_id: str
    block_id: str
    position: tuple[float, float] | None = None
    position_source: str = ""
    dispatcher_type: str = ""
    lines: list[str] = field(default_factory=list)
    histogram: tuple[float, ...] | None = None
    image_facts: Any = None
    advice: tuple[str, tuple[str, ...]] | None = None


@dataclass
class _SessionAids:
    scenario: Scenario | None
    reports: dict[str, _Report] = field(default_factory=dict)
    settled: set[frozenset[str]] = field(default_factory=set)
    """Pairs already proposed or linked by the dispatcher: never proposed (again)."""
    open: dict[frozenset[str], tuple[str, str, str, float]] = field(default_factory=dict)
    """Undecided proposals: pair -> (proposal id, carrying report, other report, last score written)."""
    proposals: int = 0


class Automation:
    """Listener that writes ``link.proposed`` and ``advice.given`` (see the module docstring).

    ``append(session_id, payload, call_id)`` writes an ingest event; ``events(session_id)`` reads a session's log;
    ``session_path(session_id)`` is its folder (for the scenario copy and the photos).
    """

    def __init__(
        self,
        append: Callable[[str, ev.Payload, str], Any],
        events: Callable[[str], list[ev.Event]],
        session_path: Callable[[str], Path],
    ) -> None:
        self._append = append
        self._events = events
        self._path = session_path
        self._sessions: dict[str, _SessionAids] = {}
        self._lock = threading.RLock()

    def on_event(self, event: ev.Event) -> None:
        """Take one appended event; may append ``link.proposed`` / ``link.rescored`` / ``advice.given`` events.

        Never raises: the event that triggered it is already stored, and a failing aid must not turn the request
        that stored it into an error (the failure is logged, and that session's aids are rebuilt on its next
        event)."""
        if not isinstance(event.data, _TRIGGERS):
            return
        try:
            self._on_event(event)
        except Exception:  # noqa: BLE001 (see the docstring)
            log.exception("link proposals/advice failed on %s seq %s; rebuilding from the log next time",
                          event.session_id, event.seq)
            with self._lock:
                self._sessions.pop(event.session_id, None)

    def _on_event(self, event: ev.Event) -> None:
        with self._lock:
            aids = self._sessions.get(event.session_id)
            if aids is None:
                aids = self._sessions[event.session_id] = self._open(event.session_id)
                for earlier in self._events(event.session_id):  # includes this event: it was appended already
                    self._take(aids, earlier, emit=earlier.seq == event.seq)
                return
            self._take(aids, event, emit=True)

    def _open(self, session_id: str) -> _SessionAids:
        from workbench.store.scenarios import ScenarioError, parse_scenario

        path = self._path(session_id) / "scenario.toml"
        scenario = None
        if path.is_file():
            try:
                scenario = parse_scenario(path.read_bytes(), str(path), path.parent, check_media=False)
            except ScenarioError as exc:
                log.warning("no link proposals from the scenario's positions: %s", exc)
        return _SessionAids(scenario)

    def _take(self, aids: _SessionAids, event: ev.Event, *, emit: bool) -> None:
        d, cid, sid = event.data, event.call_id or "", event.session_id
        if isinstance(d, ev.LinkProposed):
            pair = frozenset((cid, d.other_call_id))
            aids.settled.add(pair)
            aids.open[pair] = (d.proposal_id, cid, d.other_call_id, d.score)
            aids.proposals += 1
            return
        if isinstance(d, ev.LinkRescored):
            pair = frozenset((cid, d.other_call_id))
            if pair in aids.open:
                aids.open[pair] = (*aids.open[pair][:3], d.score)
            return
        if isinstance(d, (ev.LinkSet, ev.LinkDecided)):
            pair = frozenset((cid, d.other_call_id))
            aids.settled.add(pair)
            aids.open.pop(pair, None)  # decided or linked by hand: the dispatcher has spoken
            return
        if isinstance(d, ev.CallCreated):
            report = aids.reports[cid] = _Report(cid, datetime.fromisoformat(event.t_wall).timestamp(),
                                                 d.scenario_call_id, d.block_id)
            truth = self._truth(aids, d.scenario_call_id)
            if truth is not None and truth.caller_position is not None:
                report.position, report.position_source = truth.caller_position, "network location"
        report = aids.reports.get(cid)
        if report is None:
            return
        advise = False
        if isinstance(d, ev.CallerGeolocation):
            report.position, report.position_source = (d.latitude, d.longitude), "caller geolocation"
        elif isinstance(d, ev.MediaPhotoMetadata):
            if d.has_gps and report.position_source != "caller geolocation":
                report.position, report.position_source = (d.latitude, d.longitude), "photo GPS"
        elif isinstance(d, ev.MediaPhotoReceived):
            self._read_photo(report, self._path(sid) / d.file_display)
            advise = True
        elif isinstance(d, ev.CallerUtterance):
            report.lines.append(d.text)
            advise = True
        elif isinstance(d, ev.IntakeIncidentType):
            report.dispatcher_type = d.incident_type
        if emit:
            self._propose(aids, sid, report)
            if advise:
                self._advise(aids, sid, report)
        elif isinstance(d, (ev.CallerUtterance, ev.MediaPhotoReceived)):
            self._advise(aids, sid, report, write=False)

    @staticmethod
    def _truth(aids: _SessionAids, scenario_call_id: str) -> Any:
        if aids.scenario is None or not scenario_call_id:
            return None
        try:
            return aids.scenario.call(scenario_call_id).truth
        except KeyError:
            return None

    @staticmethod
    def _read_photo(report: _Report, path: Path) -> None:
        import cv2

        from workbench.screening.image import analyse_still

        # A quarter-size decode is plenty for colour histograms and fire/smoke/dark shares, and keeps the event
        # loop free (a 1280x960 display copy decodes in a few ms this way).
        image = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
        if image is None:
            log.warning("cannot read photo %s for link proposals and advice", path)
            return
        report.histogram = colour_histogram(image)
        report.image_facts = analyse_still(image, people=False)

    @staticmethod
    def _features(report: _Report) -> ReportFeatures:
        if report.dispatcher_type:
            kind, how = report.dispatcher_type, "dispatcher"
        else:
            kind = inferred_type(extract_facts(report.lines)) if report.lines else ""
            how = "from transcript" if kind else ""
        return ReportFeatures(report.call_id, report.t_s, report.position, report.position_source, kind, how,
                              tuple(report.lines), report.histogram)

    def _propose(self, aids: _SessionAids, sid: str, report: _Report) -> None:
        mine = self._features(report)
        for other in list(aids.reports.values()):
            pair = frozenset((report.call_id, other.call_id))
            if other.call_id == report.call_id or (pair in aids.settled and pair not in aids.open):
                continue
            result = score_link(mine, self._features(other))
            c = result.components
            common = dict(
                score=round(result.score, 4), reasons=list(result.reasons),
                **{f"{k}_score": ev.NO_EVIDENCE if c[k] is None else round(float(c[k] or 0.0), 4)
                   for k in ("time", "distance", "type", "text", "image")},
            )
            if pair in aids.open:
                pid, carrier, older_id, last = aids.open[pair]
                if abs(result.score - last) >= RESCORE_STEP:
                    self._append(sid, ev.LinkRescored(proposal_id=pid, other_call_id=older_id, **common), carrier)
                continue
            if not result.proposed:
                continue
            newer, older = (report, other) if (report.t_s, report.call_id) >= (other.t_s, other.call_id) else (other, report)
            payload = ev.LinkProposed(proposal_id=f"lp{aids.proposals + 1}", other_call_id=older.call_id, **common)
            self._append(sid, payload, newer.call_id)  # comes back through on_event: settles the pair, counts it

    def _advise(self, aids: _SessionAids, sid: str, report: _Report, *, write: bool = True) -> None:
        from workbench.screening.advice import advise

        if aids.scenario is None or not report.block_id:
            return
        try:
            if not aids.scenario.block(report.block_id).advice:
                return
        except KeyError:
            return
        advice = advise(extract_facts(report.lines), report.image_facts)
        key = (advice.urgency.value, tuple(r.rule for r in advice.reasons))
        if key == report.advice:
            return
        report.advice = key
        if write:
            self._append(sid, ev.AdviceGiven(advice.urgency.value, [r.rule for r in advice.reasons],
                                             [f"{r.rule}: {r.text}" for r in advice.reasons]), report.call_id)
