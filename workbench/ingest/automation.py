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

The ingest runs it through :class:`OffLoopAids`: reading the scenario copy and photos and scoring happen on a worker
thread, never on the event loop that carries live WebRTC; :meth:`Automation.on_event` is the same work done
synchronously, for tools and tests without a loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

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


SETTLE_TIMEOUT_S = 30.0
"""Longest a reader (:meth:`OffLoopAids.settle`) waits for a session's pending aids; then it reads what is there
(logged), so a stuck photo read can never hang the console's polls."""


@dataclass(frozen=True)
class Output:
    """One aid event to write: ``payload`` (``link.proposed``, ``link.rescored`` or ``advice.given``) on the report
    ``call_id``."""

    payload: ev.Payload
    call_id: str


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
        self._out: list[Output] | None = None
        self._writing = False

    def on_event(self, event: ev.Event) -> None:
        """Take one appended event synchronously; may append ``link.proposed`` / ``link.rescored`` /
        ``advice.given`` events (for tests and tools with no event loop; the ingest runs :class:`OffLoopAids`).

        Never raises: the event that triggered it is already stored, and a failing aid must not turn the request
        that stored it into an error (the failure is logged, and that session's aids are rebuilt on its next
        event)."""
        if not isinstance(event.data, _TRIGGERS) or self._writing:
            return  # our own event coming back through the listener: its state was applied when it was made
        sid = event.session_id
        try:
            history = None if self.knows(sid) else self._events(sid)  # includes this event: appended already
            outputs = self.process(sid, history if history is not None else [event], emit_from_seq=event.seq)
            self._writing = True
            try:
                for out in outputs:
                    self._append(sid, out.payload, out.call_id)
            finally:
                self._writing = False
        except Exception:  # noqa: BLE001 (see the docstring)
            log.exception("link proposals/advice failed on %s seq %s; rebuilding from the log next time",
                          sid, event.seq)
            self.forget(sid)

    def knows(self, session_id: str) -> bool:
        """Whether the session's state is built (else :meth:`process` needs its whole log so far).

        Takes no lock (one dict lookup is atomic): the event loop asks while the worker thread may hold the lock
        for another session's :meth:`process`."""
        return session_id in self._sessions

    def forget(self, session_id: str) -> None:
        """Drop the session's state (after a failure): it is rebuilt from its log on its next event. Takes no lock,
        like :meth:`knows`; never called while the same session's :meth:`process` runs."""
        self._sessions.pop(session_id, None)

    def process(self, session_id: str, events: Sequence[ev.Event], *, emit_from_seq: int) -> list[Output]:
        """Take ``events`` (in ``seq`` order; the session's whole log so far when :meth:`knows` is false) and return
        the aids' events to write, in order. Events with ``seq < emit_from_seq`` only rebuild the state (they were
        handled before a restart or a failure). The returned events are already applied to the state: the caller
        must write them and must not feed them back. Blocking (reads the scenario copy and photos, scores): the
        ingest calls it off its event loop. Raises whatever reading or scoring raises; the state may then be
        partial, so call :meth:`forget`."""
        with self._lock:
            aids = self._sessions.get(session_id)
            if aids is None:
                aids = self._sessions[session_id] = self._open(session_id)
            out: list[Output] = []
            self._out = out
            try:
                for event in events:
                    if isinstance(event.data, _TRIGGERS):
                        self._take(aids, event, emit=event.seq >= emit_from_seq)
            finally:
                self._out = None
            return out

    def _emit(self, aids: _SessionAids, payload: ev.Payload, call_id: str) -> None:
        """Queue one aid event for writing and apply it to the state now, as the old synchronous listener did when
        the written event came back (the next proposal's id and the pairs settled depend on it)."""
        assert self._out is not None, "aids are emitted only inside process()"
        self._out.append(Output(payload, call_id))
        if isinstance(payload, (ev.LinkProposed, ev.LinkRescored)):
            self._settle(aids, payload, call_id)

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

    @staticmethod
    def _settle(aids: _SessionAids, d: ev.Payload, cid: str) -> None:
        if isinstance(d, ev.LinkProposed):
            pair = frozenset((cid, d.other_call_id))
            aids.settled.add(pair)
            aids.open[pair] = (d.proposal_id, cid, d.other_call_id, d.score)
            aids.proposals += 1
        elif isinstance(d, ev.LinkRescored):
            pair = frozenset((cid, d.other_call_id))
            if pair in aids.open:
                aids.open[pair] = (*aids.open[pair][:3], d.score)
        elif isinstance(d, (ev.LinkSet, ev.LinkDecided)):
            pair = frozenset((cid, d.other_call_id))
            aids.settled.add(pair)
            aids.open.pop(pair, None)  # decided or linked by hand: the dispatcher has spoken

    def _take(self, aids: _SessionAids, event: ev.Event, *, emit: bool) -> None:
        d, cid, sid = event.data, event.call_id or "", event.session_id
        if isinstance(d, (ev.LinkProposed, ev.LinkRescored, ev.LinkSet, ev.LinkDecided)):
            self._settle(aids, d, cid)
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
                    self._emit(aids, ev.LinkRescored(proposal_id=pid, other_call_id=older_id, **common), carrier)
                continue
            if not result.proposed:
                continue
            newer, older = (report, other) if (report.t_s, report.call_id) >= (other.t_s, other.call_id) else (other, report)
            payload = ev.LinkProposed(proposal_id=f"lp{aids.proposals + 1}", other_call_id=older.call_id, **common)
            self._emit(aids, payload, newer.call_id)  # settles the pair and counts it at once

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
            self._emit(aids, ev.AdviceGiven(advice.urgency.value, [r.rule for r in advice.reasons],
                                            [f"{r.rule}: {r.text}" for r in advice.reasons]), report.call_id)


@dataclass
class _Pending:
    """The off-loop work of one session: the log is the queue (nothing is copied), ``done_seq`` how far it has been
    taken and its aids written, ``wanted_seq`` the newest trigger seen."""

    emit_from_seq: int
    done_seq: int = 0
    wanted_seq: int = 0
    task: asyncio.Task[None] | None = None
    own: set[int] = field(default_factory=set)
    """Seqs of aid events written here and not yet passed: skipped when read back (already in the state)."""
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)


class OffLoopAids:
    """Runs :class:`Automation` for the ingest without blocking its event loop, which also carries live WebRTC.

    :meth:`on_event` (a ``Sessions`` listener, on the loop) only notes that a session has new triggers and starts
    that session's drain task. The task hands the new events, read from the session's log (in memory), to
    :meth:`Automation.process` on a single worker thread (scenario copy, photo decoding, scoring), then writes the
    returned aid events on the loop, where every event of the log is written (one writer assigns ``seq``).

    Order guarantees, as before: one session's events are taken one at a time in ``seq`` order with the state as it
    was at that event, so the same aid events are written in the same order with the same proposal ids; each
    follows the event that triggered it, although events of other requests may now come in between. Proposals
    and rescores of a pair the dispatcher linked or decided in the meantime are not written (never propose what
    the dispatcher already settled). :meth:`settle` waits until the aids of every event already in a session's
    log are written: ``GET /api/calls/{id}/links`` (what the console shows) awaits it, and so does every
    ``session.ended`` (the aids of a session's last events come before its end, as before). ``GET
    .../events`` does not wait (the runner times the caller's lines from what it reads there): a reader of the
    raw log may see a trigger a moment before its aids. Sessions run concurrently with each other but share one
    worker thread, so the aids never take more than one core from live video. :meth:`close` finishes the pending
    work (on shutdown, before the logs close).

    ``append(session_id, payload, call_id)`` writes an ingest event and returns it; ``events(session_id, after)``
    reads a session's log after a seq.
    """

    def __init__(
        self,
        automation: Automation,
        append: Callable[[str, ev.Payload, str], ev.Event],
        events: Callable[[str, int], list[ev.Event]],
    ) -> None:
        self.automation = automation
        self._append = append
        self._events = events
        self._pending: dict[str, _Pending] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="link-aids")
        self._closed = False
        self._writing = False

    def on_event(self, event: ev.Event) -> None:
        """Listener: start (or keep) the session's drain task when ``event`` can change an aid. Never blocks."""
        if not isinstance(event.data, _TRIGGERS) or self._closed or self._writing:
            return
        sid = event.session_id
        work = self._pending.get(sid)
        if work is None:
            # The first event of this session in this run: earlier ones only rebuild the state (after a restart).
            work = self._pending[sid] = _Pending(emit_from_seq=event.seq, done_seq=event.seq - 1)
        work.wanted_seq = max(work.wanted_seq, event.seq)
        if work.task is None:
            work.task = asyncio.get_running_loop().create_task(self._drain(sid, work), name=f"link-aids-{sid}")

    async def _drain(self, sid: str, work: _Pending) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                read = self._events(sid, work.done_seq)
                new = [e for e in read if e.seq not in work.own]
                if not new:
                    if read:
                        work.done_seq = read[-1].seq
                    work.own.clear()
                    return
                last = new[-1].seq
                emit_from = max(work.emit_from_seq, new[0].seq)
                history = new if self.automation.knows(sid) else [e for e in self._events(sid, 0) if e.seq <= last]
                try:
                    outputs = await loop.run_in_executor(
                        self._executor, lambda: self.automation.process(sid, history, emit_from_seq=emit_from))
                except Exception:  # noqa: BLE001 (a failing aid never fails the ingest; rebuilt from the log)
                    log.exception("link proposals/advice failed on %s up to seq %s; rebuilding from the log next time",
                                  sid, last)
                    self.automation.forget(sid)
                    outputs = []
                self._write(sid, work, outputs, last)
                work.done_seq = last
                work.own = {s for s in work.own if s > last}
                async with work.progress:
                    work.progress.notify_all()
        finally:
            work.task = None
            async with work.progress:
                work.progress.notify_all()

    def _write(self, sid: str, work: _Pending, outputs: list[Output], last: int) -> None:
        """Write the aid events on the loop, skipping proposals and rescores of pairs the dispatcher settled after
        the events they were computed from (``link.set`` / ``link.decided`` written meanwhile)."""
        settled = {frozenset((e.call_id or "", e.data.other_call_id)) for e in self._events(sid, last)
                   if isinstance(e.data, (ev.LinkSet, ev.LinkDecided))}
        for out in outputs:
            p = out.payload
            pair = frozenset((out.call_id, getattr(p, "other_call_id", "")))
            if isinstance(p, (ev.LinkProposed, ev.LinkRescored)) and pair in settled:
                log.info("%s: not writing %s for %s/%s: the dispatcher settled that pair meanwhile", sid, p.TYPE,
                         out.call_id, p.other_call_id)
                continue
            self._writing = True  # the listener hears our own event now: it is in the state already
            try:
                written = self._append(sid, p, out.call_id)
            except Exception:  # noqa: BLE001 (as above)
                log.exception("link proposals/advice: writing %s failed on %s; rebuilding from the log next time",
                              p.TYPE, sid)
                self.automation.forget(sid)
                return
            finally:
                self._writing = False
            work.own.add(written.seq)

    async def settle(self, session_id: str | None = None, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Wait until the aids of every trigger already in the session's log (every session's when None) are
        written; gives up after ``timeout_s`` (logged) so a reader is never held for good."""
        sids = list(self._pending) if session_id is None else [session_id]
        for sid in sids:
            work = self._pending.get(sid)
            if work is None:
                continue
            target = work.wanted_seq

            async def caught_up(work: _Pending = work, target: int = target) -> None:
                async with work.progress:
                    await work.progress.wait_for(lambda: work.done_seq >= target or work.task is None)

            try:
                await asyncio.wait_for(caught_up(), timeout_s)
            except asyncio.TimeoutError:
                log.warning("%s: link proposals/advice still pending after %.0f s; answering without them", sid,
                            timeout_s)

    async def close(self) -> None:
        """Finish the pending work (up to :data:`SETTLE_TIMEOUT_S`), then take no more events."""
        await self.settle(None)
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
