"""Scenario playback: the session clock that turns a scenario into calls, caller speech and media.

The player talks to the ingest over HTTP only (it never writes the log): it creates the session, creates each
call at its arrival offset, starts one simulated caller process per call (the call's media as the block's modality
allows, with the call's manipulations), posts the caller's scripted lines as ``caller.utterance`` events once the
dispatcher has answered, and hangs the caller up when the dispatcher closes the call. It follows the session by
replaying the ingest's events (``workbench.domain.session_state``) and obeys the ``session.control`` events the
ingest's control endpoint writes:

- ``start``: with ``wait_for_start`` the first block begins only then;
- ``pause`` / ``resume``: the session clock (:class:`~workbench.runner.caller.PausableClock`) stops, so arrivals,
  utterances, breaks, photo and video-drop times shift by the paused time (the callers get ``pause``/``resume`` on
  their stdin);
- ``abort`` at checkpoint ``call`` (no new calls; the calls in progress are finished) or ``block`` (at the end of
  the current block); ``abort`` ``now`` is written by the ingest as ``session.ended`` and stops the player at once;
- ``inject``: a scenario call (by id) or an ad-hoc call arrives now, in the current block (``call.injected``).

Restart safety: every request survives an ingest restart (the player waits up to ``reconnect_timeout_s`` for the
ingest to come back); a POST whose answer was lost is not repeated when the log shows it took effect. With
``resume=True`` the player attaches to an existing session, reads what the log says was done (:class:`History`),
writes ``runner.resumed`` and continues with the next call; calls created before the crash are never created again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

import aiohttp

from workbench.domain import events as ev
from workbench.domain.scenario import Block, CallMedia, CallSpec, GroundTruth, Manipulation, Scenario, Utterance
from workbench.domain.session_state import CallState, SessionState, apply
from workbench.domain.taxonomy import Modality, Urgency
from workbench.runner.caller import PausableClock
from workbench.runner.demo_media import resolve_media

log = logging.getLogger(__name__)

ADHOC_LINE_INTERVAL_S = 5.0
"""Seconds between the lines of an ad-hoc injected call (said at 0, 5, 10, ... s after the answer)."""


class IngestApiError(RuntimeError):
    """The ingest answered a runner request with an error (status and the ingest's message)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class IngestUnavailable(IngestApiError):
    """The ingest could not be reached (connection refused or dropped) within the reconnect timeout, or a POST's
    connection broke so its effect is unknown (the player then checks the log before repeating it)."""


class IngestApi:
    """The few ingest endpoints the runner uses (asynchronous, JSON).

    GETs are retried until the ingest answers or ``reconnect_timeout_s`` passes (then :class:`IngestUnavailable`);
    a POST whose connection fails raises :class:`IngestUnavailable` at once, because only the caller knows how to
    check whether it took effect.
    """

    def __init__(self, base_url: str, http: aiohttp.ClientSession, *, reconnect_timeout_s: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self.reconnect_timeout_s = reconnect_timeout_s

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        deadline = time.monotonic() + self.reconnect_timeout_s
        delay = 0.1
        while True:
            try:
                async with self._http.request(
                    method, f"{self.base_url}{path}", json=body, timeout=aiohttp.ClientTimeout(total=30)
                ) as resp:
                    data = await resp.json(content_type=None)
                    if resp.status >= 400:
                        message = data.get("error", data) if isinstance(data, dict) else data
                        raise IngestApiError(f"{method} {path}: HTTP {resp.status}: {message}", resp.status)
                    return data
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                if method != "GET":
                    raise IngestUnavailable(f"{method} {path}: ingest unreachable ({exc})") from exc
                if time.monotonic() > deadline:
                    raise IngestUnavailable(f"{method} {path}: ingest unreachable for {self.reconnect_timeout_s} s") from exc
                log.warning("ingest unreachable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def wait_until_up(self) -> None:
        """Wait for ``GET /healthz``; raises :class:`IngestUnavailable` after ``reconnect_timeout_s``."""
        await self._request("GET", "/healthz")

    async def create_session(self, **fields: Any) -> str:
        """POST /api/sessions; returns the new ``session_id``."""
        return (await self._request("POST", "/api/sessions", fields))["session_id"]

    async def sessions(self) -> list[dict]:
        """GET /api/sessions (one summary row per session)."""
        return (await self._request("GET", "/api/sessions"))["sessions"]

    async def create_call(self, **fields: Any) -> dict:
        """POST /api/calls; returns ``{call_id, session_id, caller_url}``."""
        return await self._request("POST", "/api/calls", fields)

    async def post_event(self, session_id: str, payload: ev.Payload, call_id: str | None = None) -> dict:
        """Append a runner event through the ingest; returns the stored event."""
        body = {"source": "runner", "type": payload.TYPE, "call_id": call_id, "data": dataclasses.asdict(payload)}
        return (await self._request("POST", f"/api/sessions/{session_id}/events", body))["event"]

    async def events(self, session_id: str, after: int = 0) -> list[ev.Event]:
        """Validated events with ``seq > after``."""
        data = await self._request("GET", f"/api/sessions/{session_id}/events?after={after}")
        return [ev.event_from_dict(e) for e in data["events"]]

    async def control(self, session_id: str, action: str, **fields: Any) -> dict:
        """POST /api/sessions/{id}/control with ``action`` (and e.g. ``checkpoint``, ``scenario_call_id``)."""
        return await self._request("POST", f"/api/sessions/{session_id}/control", {"action": action, **fields})


@dataclass
class PlayReport:
    """What a playback did: the session, scenario call id -> ingest call id, and each caller process's exit code."""

    session_id: str = ""
    call_ids: dict[str, str] = field(default_factory=dict)
    caller_exit_codes: dict[str, int] = field(default_factory=dict)
    completed: bool = False
    aborted_at: str = ""
    """Checkpoint at which a trainer's abort took effect (``now``, ``call``, ``block``); ``completed`` when someone
    else ended the session; empty when this player finished it."""
    resumed: bool = False


# --- what the log says was done (resume) ----------------------------------------------------------------------------


def _wall(event: ev.Event) -> float:
    """The event's ``t_wall`` as POSIX seconds (UTC)."""
    return datetime.fromisoformat(event.t_wall).timestamp()


@dataclass
class History:
    """What a session's log says the runner already did, for resuming after a crash (pure; built by
    :meth:`from_events`). Wall times are POSIX seconds from the events' ``t_wall``."""

    started: bool = False
    blocks_started: dict[str, float] = field(default_factory=dict)
    blocks_ended: set[str] = field(default_factory=set)
    breaks_started: dict[str, float] = field(default_factory=dict)
    breaks_ended: set[str] = field(default_factory=set)
    calls: dict[tuple[str, str], str] = field(default_factory=dict)
    """(block id, scenario call id) -> ingest call id of calls created at their scripted arrival."""
    injected: dict[int, str] = field(default_factory=dict)
    """``seq`` of an inject request -> ingest call id."""
    answered: dict[str, float] = field(default_factory=dict)
    """Ingest call id -> wall time of its first ``call.answered``."""
    pauses: list[tuple[float, float | None]] = field(default_factory=list)
    """Paused intervals (wall s), the last open while paused."""
    abort_checkpoint: str = ""

    @classmethod
    def from_events(cls, events: Sequence[ev.Event]) -> "History":
        h = cls()
        created: dict[str, tuple[str, str]] = {}
        injected_ids: set[str] = set()
        for e in events:
            d = e.data
            if isinstance(d, ev.BlockStarted):
                h.blocks_started.setdefault(d.block_id, _wall(e))
            elif isinstance(d, ev.BlockEnded):
                h.blocks_ended.add(d.block_id)
            elif isinstance(d, ev.BreakStarted):
                h.breaks_started.setdefault(d.after_block_id, _wall(e))
            elif isinstance(d, ev.BreakEnded):
                h.breaks_ended.add(d.after_block_id)
            elif isinstance(d, ev.CallCreated) and e.call_id:
                created[e.call_id] = (d.block_id, d.scenario_call_id)
            elif isinstance(d, ev.CallAnswered) and e.call_id:
                h.answered.setdefault(e.call_id, _wall(e))
            elif isinstance(d, ev.CallInjected) and e.call_id:
                h.injected[d.request_seq] = e.call_id
                injected_ids.add(e.call_id)
            elif isinstance(d, ev.SessionControl):
                if d.action == "start":
                    h.started = True
                elif d.action == "pause" and not (h.pauses and h.pauses[-1][1] is None):
                    h.pauses.append((_wall(e), None))
                elif d.action == "resume" and h.pauses and h.pauses[-1][1] is None:
                    h.pauses[-1] = (h.pauses[-1][0], _wall(e))
                elif d.action == "abort" and d.checkpoint in ("call", "block"):
                    h.abort_checkpoint = h.abort_checkpoint or d.checkpoint
        for call_id, key in created.items():
            if call_id not in injected_ids:
                h.calls.setdefault(key, call_id)
        h.started = h.started or bool(h.blocks_started)
        return h

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None

    def session_seconds_since(self, wall_s: float, now_wall_s: float) -> float:
        """Session-clock seconds from ``wall_s`` to ``now_wall_s``: wall time minus the paused time in between."""
        paused = 0.0
        for start, end in self.pauses:
            end = now_wall_s if end is None else end
            paused += max(0.0, min(end, now_wall_s) - max(start, wall_s))
        return max(0.0, now_wall_s - wall_s - paused)


# --- caller processes -----------------------------------------------------------------------------------------------


def manipulation_records(spec: CallSpec, modality: Modality) -> list[ev.ManipulationApplied]:
    """The ``manipulation.applied`` payloads for ``spec`` under ``modality`` (only the manipulations that touch
    something the block lets the caller send; empty for a clean call)."""
    m, media = spec.manipulation, spec.media
    video = modality is Modality.VIDEO and bool(media.video)
    photos = modality is not Modality.AUDIO and bool(media.photos)
    out: list[ev.ManipulationApplied] = []
    if video and m.video_start != "ok":
        out.append(ev.ManipulationApplied("video_start", m.video_start, media.video_at_s))
    if video and m.video_start == "ok" and m.video_drop_at_s is not None:
        out.append(ev.ManipulationApplied("video_drop", "stops", m.video_drop_at_s))
    if video and (m.video_scale < 1 or m.video_fps > 0):
        out.append(ev.ManipulationApplied("bandwidth", f"scale={m.video_scale:g} fps={m.video_fps:g}", media.video_at_s))
    places = [p for p in m.degrade if (p == "video" and video) or (p == "photos" and photos)]
    if m.degrades_images and places:
        value = f"blur={m.blur_px:g} brightness={m.brightness:g} visible={m.visible:g} on={','.join(places)}"
        out.append(ev.ManipulationApplied("image", value, 0.0))
    if photos and m.photo_delay_s > 0:
        out.append(ev.ManipulationApplied("photo_delay", f"+{m.photo_delay_s:g}s", m.photo_delay_s))
    return out


def caller_command(
    caller_url: str,
    spec: CallSpec,
    modality: Modality,
    media_cache: Path,
    ice_mode: str,
    lines: Sequence[Path] = (),
    origin_wall_s: float | None = None,
) -> list[str] | None:
    """The simulated-caller command line for one call under ``modality``, or None when nothing is sent.

    Audio-only blocks withhold video and photos; photo blocks withhold live video (DESIGN.md: the runner applies
    the modality). The call's manipulations become caller options (``python -m workbench.runner.caller --help``);
    the photo delay is added to each photo's time. ``lines`` are the spoken lines (``media.voice``, synthesised by
    ``workbench.runner.speech``), played when the runner writes ``say N``; the caller reads ``pause``/``resume`` on
    stdin too. ``origin_wall_s`` (POSIX s, the call's arrival) is where the caller counts its times from.
    Raises ``ValueError``/``FileNotFoundError`` for media that cannot be resolved.
    """
    media, m = spec.media, spec.manipulation
    video = resolve_media(media.video, media_cache) if modality is Modality.VIDEO else None
    audio = resolve_media(media.audio, media_cache)
    photos = [] if modality is Modality.AUDIO else [(resolve_media(p.file, media_cache), p.at_s) for p in media.photos]
    if video is None and audio is None and not photos and not lines:
        return None
    cmd = [sys.executable, "-m", "workbench.runner.caller", caller_url, "--ice", ice_mode, "--control-stdin"]
    for line in lines:
        cmd += ["--line", str(line)]
    if origin_wall_s is not None:
        cmd += ["--origin", f"{origin_wall_s:.6f}"]
    if video is not None:
        cmd += ["--video", str(video), "--video-at", str(media.video_at_s)]
        if m.video_start != "ok":
            cmd += ["--video-start", m.video_start]
        if m.video_drop_at_s is not None:
            cmd += ["--video-drop-at", str(m.video_drop_at_s)]
        if m.video_scale < 1:
            cmd += ["--video-scale", str(m.video_scale)]
        if m.video_fps > 0:
            cmd += ["--video-fps", str(m.video_fps)]
    if audio is not None:
        cmd += ["--audio", str(audio)]
    for path, at_s in photos:
        cmd += ["--photo", f"{path}@{at_s + m.photo_delay_s}"]
    if m.degrades_images:
        cmd += ["--blur", str(m.blur_px), "--brightness", str(m.brightness), "--visible", str(m.visible)]
        cmd += ["--degrade", ",".join(m.degrade) or "none"]
    return cmd


def adhoc_call(call_id: str, caller_label: str, lines: Sequence[str]) -> CallSpec:
    """A call injected without a scenario definition: no media, lines every :data:`ADHOC_LINE_INTERVAL_S` s, and a
    placeholder ground truth (``other``/``later``; analysis marks it by its ``call.injected`` ``adhoc`` flag)."""
    return CallSpec(
        id=call_id,
        arrival_s=0.0,
        caller_label=caller_label or call_id,
        utterances=tuple(Utterance(i * ADHOC_LINE_INTERVAL_S, text) for i, text in enumerate(lines)),
        media=CallMedia(),
        truth=GroundTruth(incident_type="other", urgency=Urgency.LATER, location="", required_items=()),
        manipulation=Manipulation(),
    )


# --- the player -----------------------------------------------------------------------------------------------------


class _Aborted(Exception):
    """Internal: the session ended (abort now) or an abort checkpoint was reached."""


class ScenarioPlayer:
    """Plays ``scenario`` for one participant through the ingest at ``api``.

    ``block_order`` defaults to the scenario's order (see ``workbench.domain.design.block_order`` for a
    counterbalanced one). ``media_cache`` holds generated demo media. ``wait_for_start`` holds the first block until
    a ``start`` control. ``wait_for_nasa_tlx`` holds the next block (and the end of the session) until the console
    has posted the NASA-TLX of the block just ended (DESIGN.md: NASA-TLX after each block). ``wait_for_questionnaire``
    holds the end of the session until the participant's end questionnaire is in (the console's participant flow). ``resume=True`` with
    ``session_id`` continues an existing session after a runner crash. Each simulated caller's stdout and stderr go
    to ``<caller_logs>/<call_id>.log``; without ``caller_logs`` to a temporary folder removed when :meth:`run` ends
    (the tail of a caller that failed is logged first). Call :meth:`run`; set ``stop`` to end early (the session is
    then ended with reason ``aborted``).
    """

    def __init__(
        self,
        api: IngestApi,
        scenario: Scenario,
        scenario_bytes: bytes,
        *,
        participant: str,
        media_cache: Path,
        seed: int = 0,
        block_order: Sequence[str] | None = None,
        ice_mode: str = "loopback",
        poll_s: float = 0.25,
        session_id: str | None = None,
        on_session: Callable[[str], None] | None = None,
        wait_for_start: bool = False,
        resume: bool = False,
        wait_for_nasa_tlx: bool = False,
        wait_for_questionnaire: bool = False,
        caller_logs: Path | None = None,
    ) -> None:
        if resume and not session_id:
            raise ValueError("resume needs the session_id of the session to continue")
        self.api = api
        self.scenario = scenario
        self.scenario_bytes = scenario_bytes
        self.participant = participant
        self.media_cache = media_cache
        self.seed = seed
        self.block_order = list(block_order or [b.id for b in scenario.blocks])
        for block_id in self.block_order:
            scenario.block(block_id)  # KeyError naming the unknown block
        self.ice_mode = ice_mode
        self.poll_s = poll_s
        self.requested_session_id = session_id
        self.on_session = on_session
        self.wait_for_start = wait_for_start
        self.wait_for_nasa_tlx = wait_for_nasa_tlx
        self.wait_for_questionnaire = wait_for_questionnaire
        self.resume = resume
        self.state = SessionState()
        self.report = PlayReport(resumed=resume)
        self.clock = PausableClock()
        self.history = History()
        self._session_id = ""
        self._current_block: Block | None = None
        self._abort_checkpoint = ""
        self._started = asyncio.Event()
        self._ended = asyncio.Event()
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._injections: set[asyncio.Task[None]] = set()
        self._controls_seen = 0
        self._speech: dict[str, list[Path]] = {}
        self._end_reason = ""
        self._pending_injects: list[tuple[int, ev.SessionControl]] = []
        self.caller_logs = caller_logs
        self._log_dir: Path | None = None  # set by run()

    # --- the session ----------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> PlayReport:
        """Play every block in order until done, aborted or ``stop`` is set; returns the :class:`PlayReport`.

        Raises :class:`IngestApiError` when the ingest refuses the session, :class:`IngestUnavailable` when it stays
        away longer than the API's reconnect timeout.
        """
        stop = stop or asyncio.Event()
        if self.caller_logs is not None:
            self.caller_logs.mkdir(parents=True, exist_ok=True)
            self._log_dir = self.caller_logs
            return await self._run(stop)
        self._log_dir = Path(tempfile.mkdtemp(prefix="workbench-callers-"))
        try:
            return await self._run(stop)
        finally:
            shutil.rmtree(self._log_dir, ignore_errors=True)

    async def _run(self, stop: asyncio.Event) -> PlayReport:
        await asyncio.to_thread(self._synthesise_speech)
        session_id = await (self._attach() if self.resume else self._create())
        self._session_id = self.report.session_id = session_id
        if self.on_session:
            self.on_session(session_id)
        poller = asyncio.create_task(self._follow(session_id))
        playback = asyncio.create_task(self._play(session_id))
        for seq, control in self._pending_injects:
            self._obey(seq, control)
        stopper = asyncio.create_task(stop.wait())
        ended = asyncio.create_task(self._ended.wait())
        try:
            done, _ = await asyncio.wait({playback, stopper, ended, poller}, return_when=asyncio.FIRST_COMPLETED)
            if poller in done:
                poller.result()  # the ingest stayed away: raise
            if playback in done:
                try:
                    playback.result()
                    self.report.completed = not self._abort_checkpoint
                except _Aborted:
                    pass
            if ended in done and not self.report.aborted_at:
                # Ended from outside (a trainer's immediate abort, or an end): not this player's completion.
                self.report.aborted_at = "now" if self._end_reason == "aborted" else self._end_reason
        finally:
            for task in (playback, stopper, poller, ended, *self._injections):
                task.cancel()
            await asyncio.gather(playback, stopper, poller, ended, *self._injections, return_exceptions=True)
            for call_id, proc in list(self._procs.items()):
                await self._stop_caller(proc, call_id)
            if not self.state.ended:
                action = "end" if self.report.completed else "abort"
                await self._post_once(
                    lambda: self.api.control(session_id, action),
                    lambda events: any(isinstance(e.data, ev.SessionEnded) for e in events),
                    ignore_status=(409,),
                )
        return self.report

    def _synthesise_speech(self) -> None:
        """Synthesise (or find cached) the spoken lines of every call with a ``media.voice``, ahead of playback."""
        from workbench.runner.speech import speech_available, synthesise_lines

        voiced = [c for c in self.scenario.calls if c.media.voice and c.utterances]
        if voiced and not speech_available():
            log.warning("espeak-ng is not installed: simulated callers stay silent (the transcript still appears)")
            return
        for spec in voiced:
            paths = synthesise_lines([u.text for u in spec.utterances], spec.media.voice, self.media_cache)
            if paths is not None:
                self._speech[spec.id] = paths

    async def _create(self) -> str:
        session_id = self.requested_session_id or f"s-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        fields: dict[str, Any] = {
            "participant": self.participant,
            "scenario_toml": self.scenario_bytes.decode("utf-8"),
            "seed": self.seed,
            "block_order": self.block_order,
            "session_id": session_id,
        }

        while True:
            try:
                return await self.api.create_session(**fields)
            except IngestUnavailable:  # created or not? the session list says
                await self.api.wait_until_up()
                if any(row["session_id"] == session_id for row in await self.api.sessions()):
                    return session_id

    async def _attach(self) -> str:
        """Resume: read the log, adopt its block order and what was done, write ``runner.resumed``."""
        session_id = self.requested_session_id or ""
        events = await self.api.events(session_id, 0)
        for event in events:
            apply(self.state, event)
        if self.state.ended:
            raise IngestApiError(f"session {session_id!r} has ended; nothing to resume", 409)
        if self.state.block_order:
            self.block_order = list(self.state.block_order)
        self.history = History.from_events(events)
        self._controls_seen = self.state.last_seq
        # Inject requests the crashed runner had not acted on yet are obeyed once playback runs again.
        self._pending_injects = [
            (e.seq, e.data)
            for e in events
            if isinstance(e.data, ev.SessionControl) and e.data.action == "inject" and e.seq not in self.history.injected
        ]
        if self.history.paused:
            self.clock.pause()
        self._abort_checkpoint = self.history.abort_checkpoint
        done = {sc for (_b, sc) in self.history.calls}
        in_progress = sorted(
            self.state.calls[cid].scenario_call_id
            for cid in self.history.calls.values()
            if cid in self.state.calls and self.state.calls[cid].rsme is None
        )
        await self._post_event(session_id, ev.RunnerResumed(sorted(done), in_progress))
        return session_id

    async def _follow(self, session_id: str) -> None:
        while True:
            for event in await self.api.events(session_id, after=self.state.last_seq):
                apply(self.state, event)
                if event.seq > self._controls_seen and isinstance(event.data, ev.SessionControl):
                    self._controls_seen = event.seq
                    self._obey(event.seq, event.data)
                if isinstance(event.data, ev.SessionEnded):
                    self._end_reason = event.data.reason
                    self._ended.set()
            await asyncio.sleep(self.poll_s)

    def _obey(self, seq: int, control: ev.SessionControl) -> None:
        log.info("control %s (seq %d) at session time %.2f s", control.action, seq, self.clock.now())
        if control.action == "start":
            self._started.set()
        elif control.action == "pause":
            self.clock.pause()
            self._tell_callers(b"pause\n")
        elif control.action == "resume":
            self.clock.resume()
            self._tell_callers(b"resume\n")
        elif control.action == "abort":
            self._abort_checkpoint = self._abort_checkpoint or control.checkpoint or "now"
        elif control.action == "inject":
            task = asyncio.create_task(self._inject(seq, control))
            self._injections.add(task)
            task.add_done_callback(self._injections.discard)

    def _say(self, call_id: str, index: int) -> None:
        """Tell the call's caller process (if it has spoken lines) to speak line ``index`` now."""
        proc = self._procs.get(call_id)
        if proc is not None and proc.stdin is not None and proc.returncode is None:
            try:
                proc.stdin.write(f"say {index}\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                pass

    def _tell_callers(self, line: bytes) -> None:
        for proc in self._procs.values():
            if proc.stdin is not None and proc.returncode is None:
                try:
                    proc.stdin.write(line)
                except (BrokenPipeError, ConnectionResetError):
                    pass

    async def _wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await asyncio.sleep(self.poll_s)

    # --- blocks ---------------------------------------------------------------------------------------------------

    async def _play(self, session_id: str) -> None:
        h = self.history
        if self.wait_for_start and not h.started:
            await self._started.wait()
        for position, block_id in enumerate(self.block_order):
            block = self.scenario.block(block_id)
            last = position == len(self.block_order) - 1
            if block_id in h.blocks_ended:
                await self._nasa_tlx_of(block_id)
                if not last and block.break_s > 0 and block_id not in h.breaks_ended:
                    await self._break(session_id, block, h.breaks_started.get(block_id))
                continue
            if self._abort_checkpoint in ("call", "block"):
                self.report.aborted_at = self._abort_checkpoint
                raise _Aborted
            self._current_block = block
            if block_id in h.blocks_started:
                t_block = self.clock.now() - h.session_seconds_since(h.blocks_started[block_id], time.time())
            else:
                await self._post_event(session_id, ev.BlockStarted(block.id, block.modality.value, position))
                if block.practice:
                    await self._post_event(session_id, ev.BlockPractice(block.id))
                t_block = self.clock.now()
            # A TaskGroup (not gather) so that on stop every call's cleanup, hanging up its caller, finishes first.
            async with asyncio.TaskGroup() as calls:
                for call_id in block.call_ids:
                    spec = self.scenario.call(call_id)
                    existing = h.calls.get((block.id, call_id))
                    if existing is not None:
                        calls.create_task(self._follow_resumed_call(session_id, spec, existing))
                    else:
                        calls.create_task(self._play_call(session_id, block, spec, t_block))
            if self._abort_checkpoint in ("call", "block"):
                self.report.aborted_at = self._abort_checkpoint
                await self._wait_until(lambda: not self._injections)
                raise _Aborted
            await self._post_event(session_id, ev.BlockEnded(block.id))
            await self._nasa_tlx_of(block.id)
            if not last and block.break_s > 0:
                await self._break(session_id, block, None)
        await self._wait_until(lambda: not self._injections)
        if self.wait_for_questionnaire:
            await self._wait_until(lambda: self.state.flow.finished)

    async def _nasa_tlx_of(self, block_id: str) -> None:
        if self.wait_for_nasa_tlx:
            await self._wait_until(lambda: block_id in self.state.tlx_rated)

    async def _break(self, session_id: str, block: Block, started_wall: float | None) -> None:
        if started_wall is None:
            await self._post_event(session_id, ev.BreakStarted(block.id, block.break_s))
            elapsed = 0.0
        else:
            elapsed = self.history.session_seconds_since(started_wall, time.time())
        await self.clock.sleep_until(self.clock.now() + block.break_s - elapsed)
        await self._post_event(session_id, ev.BreakEnded(block.id))

    # --- calls ----------------------------------------------------------------------------------------------------

    async def _play_call(
        self, session_id: str, block: Block, spec: CallSpec, t_block: float, *, injected: tuple[int, bool] | None = None
    ) -> None:
        while self.clock.now() < t_block + spec.arrival_s or self.clock.paused:
            if self._abort_checkpoint == "call" and injected is None:
                return
            await asyncio.sleep(min(0.05, max(0.0, t_block + spec.arrival_s - self.clock.now())) or 0.02)
        if self._abort_checkpoint == "call" and injected is None:
            return
        arrived_at = self.clock.now()
        created = await self._create_call(session_id, block, spec, injected)
        if created is None:
            return
        call_id, caller_url = created
        self.report.call_ids[spec.id if injected is None else f"{spec.id}@{injected[0]}"] = call_id
        for record in manipulation_records(spec, block.modality):
            await self._post_event(session_id, record, call_id)
        lines = self._speech.get(spec.id, []) if injected is None or not injected[1] else []
        cmd = (
            caller_command(
                caller_url, spec, block.modality, self.media_cache, self.ice_mode, lines,
                origin_wall_s=time.time() - (self.clock.now() - arrived_at),  # arrival, less any pause since
            )
            if caller_url
            else None
        )
        proc = await self._start_caller(cmd, call_id) if cmd else None
        try:
            await self._script(session_id, spec, call_id, answered_at=None, said=set())
            await self._stop_caller(proc, call_id)
            await self._wait_until(lambda: self._call(call_id).rsme is not None)
        finally:
            await self._stop_caller(proc, call_id)

    async def _follow_resumed_call(self, session_id: str, spec: CallSpec, call_id: str) -> None:
        """A call created before a runner crash: its caller is gone; say its remaining lines and wait for its end."""
        self.report.call_ids[spec.id] = call_id
        await self._wait_until(lambda: self._call(call_id) is not None)
        call = self._call(call_id)
        answered_at = None
        if call_id in self.history.answered:
            since = self.history.session_seconds_since(self.history.answered[call_id], time.time())
            answered_at = self.clock.now() - since
        said = {line.index for line in call.transcript}
        await self._script(session_id, spec, call_id, answered_at=answered_at, said=said)
        await self._wait_until(lambda: self._call(call_id).rsme is not None)

    async def _script(
        self, session_id: str, spec: CallSpec, call_id: str, *, answered_at: float | None, said: set[int]
    ) -> None:
        """Post the caller's lines at their session times after the answer; return when the dispatcher closed."""
        if answered_at is None:
            await self._wait_until(lambda: self._call(call_id) is not None and self._call(call_id).answered_ns is not None)
            answered_at = self.clock.now()
        for index, utterance in enumerate(spec.utterances):
            if index in said:
                continue
            await self.clock.sleep_until(answered_at + utterance.at_s)
            if self._call(call_id).closed is not None:
                break
            await self._post_event(session_id, ev.CallerUtterance(index, utterance.text, utterance.at_s), call_id)
            self._say(call_id, index)
        await self._wait_until(lambda: self._call(call_id).closed is not None)

    async def _create_call(
        self, session_id: str, block: Block, spec: CallSpec, injected: tuple[int, bool] | None
    ) -> tuple[str, str] | None:
        """Create the call (once, even across an ingest restart); returns ``(call_id, caller_url)`` (the URL is
        empty when the answer was lost: the call then goes on without a caller), or None when the session ended."""
        known = set(self.state.calls)
        fields = dict(
            session_id=session_id,
            scenario_call_id=spec.id,
            block_id=block.id,
            modality=block.modality.value,
            caller_label=spec.caller_label,
        )
        while True:
            try:
                created = await self.api.create_call(**fields)
                call_id, caller_url = created["call_id"], created["caller_url"]
                break
            except IngestUnavailable:
                await self.api.wait_until_up()
                events = await self.api.events(session_id, 0)
                lost = [
                    e.call_id
                    for e in events
                    if isinstance(e.data, ev.CallCreated)
                    and e.call_id not in known
                    and e.data.scenario_call_id == spec.id
                    and e.data.block_id == block.id
                ]
                if lost:
                    log.warning("call %s was created but its answer was lost; going on without a caller", spec.id)
                    call_id, caller_url = lost[0], ""
                    break
            except IngestApiError as exc:
                if exc.status == 409:  # the session ended meanwhile
                    return None
                raise
        if injected is not None:
            await self._post_event(session_id, ev.CallInjected(injected[0], injected[1]), call_id)
        return call_id, caller_url

    async def _inject(self, seq: int, control: ev.SessionControl) -> None:
        if seq in self.history.injected:
            return
        block = self._current_block or self.scenario.block(self.block_order[0])
        try:
            spec, adhoc = self.scenario.call(control.scenario_call_id), False
        except KeyError:
            spec, adhoc = adhoc_call(control.scenario_call_id, control.caller_label, control.utterances), True
        spec = dataclasses.replace(spec, arrival_s=0.0)
        await self._play_call(self._session_id, block, spec, self.clock.now(), injected=(seq, adhoc))

    def _call(self, call_id: str) -> CallState | None:
        return self.state.calls.get(call_id)

    # --- posting once -----------------------------------------------------------------------------------------------

    async def _post_event(self, session_id: str, payload: ev.Payload, call_id: str | None = None) -> None:
        """Post a runner event exactly once: after a lost answer, the log is checked for an identical event first."""
        data = dataclasses.asdict(payload)

        def took_effect(events: list[ev.Event]) -> bool:
            return any(
                e.type == payload.TYPE and e.call_id == call_id and dataclasses.asdict(e.data) == data for e in events
            )

        await self._post_once(lambda: self.api.post_event(session_id, payload, call_id), took_effect)

    async def _post_once(
        self,
        action: Callable[[], Awaitable[Any]],
        took_effect: Callable[[list[ev.Event]], bool],
        *,
        ignore_status: tuple[int, ...] = (),
    ) -> None:
        while True:
            try:
                await action()
                return
            except IngestUnavailable:
                await self.api.wait_until_up()
                if took_effect(await self.api.events(self._session_id, 0)):
                    return
            except IngestApiError as exc:
                if exc.status in ignore_status:
                    return
                raise

    # --- caller processes ----------------------------------------------------------------------------------------

    def _caller_log(self, call_id: str) -> Path:
        if self._log_dir is None:
            raise RuntimeError("callers are started by run(), which makes their log folder")
        return self._log_dir / f"{call_id}.log"

    async def _start_caller(self, cmd: list[str], call_id: str) -> asyncio.subprocess.Process:
        log_path = self._caller_log(call_id)
        with open(log_path, "wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=log_file, stderr=log_file
            )
        self._procs[call_id] = proc
        if self.clock.paused and proc.stdin is not None:
            proc.stdin.write(b"pause\n")
        log.info("caller for %s started (pid %s, log %s)", call_id, proc.pid, log_path)
        return proc

    async def _stop_caller(self, proc: asyncio.subprocess.Process | None, call_id: str) -> None:
        if proc is None or call_id in self.report.caller_exit_codes:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        self._procs.pop(call_id, None)
        self.report.caller_exit_codes[call_id] = proc.returncode if proc.returncode is not None else -1
        if proc.returncode not in (0, -signal.SIGTERM):
            tail = self._caller_log(call_id).read_text(errors="replace")[-2000:]
            log.warning("caller for %s exited with %s:\n%s", call_id, proc.returncode, tail)


def planned_block_order(scenario: Scenario, participant: str, seed: int, index: int | None = None) -> list[str]:
    """The block order of ``participant`` under the scenario's ``[design]`` (``workbench.domain.design``): practice
    blocks first, then file order (``counterbalance = "none"``) or the participant's row of the seeded Williams
    square. ``index`` overrides the participant's position. Raises ``design.DesignError``."""
    from workbench.domain import design

    refs = [design.BlockRef(b.id, b.practice) for b in scenario.blocks]
    if scenario.design.counterbalance == "none":
        return design.block_order(refs, "none", seed, 0)
    if index is None:
        index = design.participant_index(participant, scenario.design.participants)
    return design.block_order(refs, scenario.design.counterbalance, seed, index)


async def play_on_ingest(
    ingest_url: str, scenario: Scenario, scenario_bytes: bytes, *, stop: asyncio.Event | None = None, **options: Any
) -> PlayReport:
    """Play ``scenario`` on an ingest that runs elsewhere (``workbench run --ingest URL``); ``options`` go to
    :class:`ScenarioPlayer` (except ``access_token``: the trainer's access code when the ingest enforces roles).
    Waits up to the reconnect timeout for the ingest to answer first."""
    # With roles on (issue 7) the runner acts for the trainer: its code goes in the X-Workbench-Access header.
    access = options.pop("access_token", "")
    async with aiohttp.ClientSession(headers={"X-Workbench-Access": access} if access else None) as http:
        api = IngestApi(ingest_url, http)
        await api.wait_until_up()
        return await ScenarioPlayer(api, scenario, scenario_bytes, **options).run(stop)
