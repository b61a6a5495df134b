"""Scenario playback: the session clock that turns a scenario into calls, caller speech and media.

The player talks to the ingest over HTTP only (it never writes the log): it creates the session, creates each
call at its arrival offset, starts one ``workbench caller`` process per call (the call's media as the block's
modality allows), posts the caller's scripted lines as ``caller.utterance`` events once the dispatcher has
answered, and hangs the caller up when the dispatcher closes the call. It follows the session by replaying the
ingest's events (``workbench.domain.session_state``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import aiohttp

from workbench.domain import events as ev
from workbench.domain.scenario import Block, CallSpec, Scenario
from workbench.domain.session_state import SessionState, apply
from workbench.domain.taxonomy import Modality
from workbench.runner.demo_media import resolve_media

log = logging.getLogger(__name__)


class IngestApiError(RuntimeError):
    """The ingest answered a runner request with an error (status and the ingest's message)."""


class IngestApi:
    """The few ingest endpoints the runner uses (asynchronous, JSON)."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        async with self._http.request(method, f"{self.base_url}{path}", json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise IngestApiError(f"{method} {path}: HTTP {resp.status}: {data.get('error', data)}")
            return data

    async def create_session(self, **fields: Any) -> str:
        """POST /api/sessions; returns the new ``session_id``."""
        return (await self._request("POST", "/api/sessions", fields))["session_id"]

    async def create_call(self, **fields: Any) -> dict:
        """POST /api/calls; returns ``{call_id, session_id, caller_url}``."""
        return await self._request("POST", "/api/calls", fields)

    async def post_event(self, session_id: str, payload: ev.Payload, call_id: str | None = None) -> dict:
        """Append a runner event through the ingest; returns the stored event."""
        body = {"source": "runner", "type": payload.TYPE, "call_id": call_id, "data": _asdict(payload)}
        return (await self._request("POST", f"/api/sessions/{session_id}/events", body))["event"]

    async def events(self, session_id: str, after: int = 0) -> list[ev.Event]:
        """Validated events with ``seq > after``."""
        data = await self._request("GET", f"/api/sessions/{session_id}/events?after={after}")
        return [ev.event_from_dict(e) for e in data["events"]]

    async def control(self, session_id: str, action: str) -> dict:
        """POST /api/sessions/{id}/control with ``action``."""
        return await self._request("POST", f"/api/sessions/{session_id}/control", {"action": action})


def _asdict(payload: ev.Payload) -> dict:
    import dataclasses

    return dataclasses.asdict(payload)


@dataclass
class PlayReport:
    """What a playback did: the session, scenario call id -> ingest call id, and each caller process's exit code."""

    session_id: str = ""
    call_ids: dict[str, str] = field(default_factory=dict)
    caller_exit_codes: dict[str, int] = field(default_factory=dict)
    completed: bool = False


def caller_command(
    caller_url: str, spec: CallSpec, modality: Modality, media_cache: Path, ice_mode: str
) -> list[str] | None:
    """The ``workbench caller`` command line for one call under ``modality``, or None when nothing is sent.

    Audio-only blocks withhold video and photos; photo blocks withhold live video (DESIGN.md: the runner applies
    the modality). Raises ``ValueError``/``FileNotFoundError`` for media that cannot be resolved.
    """
    media = spec.media
    video = resolve_media(media.video, media_cache) if modality is Modality.VIDEO else None
    audio = resolve_media(media.audio, media_cache)
    photos = [] if modality is Modality.AUDIO else [(resolve_media(p.file, media_cache), p.at_s) for p in media.photos]
    if video is None and audio is None and not photos:
        return None
    cmd = [sys.executable, "-m", "workbench.cli", "caller", caller_url, "--ice", ice_mode]
    if video is not None:
        cmd += ["--video", str(video), "--video-at", str(media.video_at_s)]
    if audio is not None:
        cmd += ["--audio", str(audio)]
    for path, at_s in photos:
        cmd += ["--photo", f"{path}@{at_s}"]
    return cmd


class ScenarioPlayer:
    """Plays ``scenario`` for one participant through the ingest at ``api``.

    ``block_order`` defaults to the scenario's order. ``media_cache`` holds generated demo media. Call
    :meth:`run`; set ``stop`` to end early (the session is then ended with reason ``aborted``).
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
    ) -> None:
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
        self.state = SessionState()
        self.report = PlayReport()
        self._log_dir = Path(tempfile.mkdtemp(prefix="workbench-callers-"))

    async def run(self, stop: asyncio.Event | None = None) -> PlayReport:
        """Play every block in order until done or ``stop`` is set; returns the :class:`PlayReport`."""
        stop = stop or asyncio.Event()
        fields: dict[str, Any] = {
            "participant": self.participant,
            "scenario_toml": self.scenario_bytes.decode("utf-8"),
            "seed": self.seed,
            "block_order": self.block_order,
        }
        if self.requested_session_id:
            fields["session_id"] = self.requested_session_id
        session_id = await self.api.create_session(**fields)
        self.report.session_id = session_id
        if self.on_session:
            self.on_session(session_id)
        poller = asyncio.create_task(self._follow(session_id))
        playback = asyncio.create_task(self._play(session_id))
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({playback, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if playback in done:
                playback.result()
                self.report.completed = True
        finally:
            for task in (playback, stopper, poller):
                task.cancel()
            await asyncio.gather(playback, stopper, poller, return_exceptions=True)
            await self.api.control(session_id, "end" if self.report.completed else "abort")
        return self.report

    async def _follow(self, session_id: str) -> None:
        while True:
            for event in await self.api.events(session_id, after=self.state.last_seq):
                apply(self.state, event)
            await asyncio.sleep(self.poll_s)

    async def _wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await asyncio.sleep(self.poll_s)

    async def _play(self, session_id: str) -> None:
        for position, block_id in enumerate(self.block_order):
            block = self.scenario.block(block_id)
            await self.api.post_event(session_id, ev.BlockStarted(block.id, block.modality.value, position))
            t_block = time.monotonic()
            # A TaskGroup (not gather) so that on stop every call's cleanup, hanging up its caller, finishes first.
            async with asyncio.TaskGroup() as calls:
                for call_id in block.call_ids:
                    calls.create_task(self._play_call(session_id, block, self.scenario.call(call_id), t_block))
            await self.api.post_event(session_id, ev.BlockEnded(block.id))

    async def _play_call(self, session_id: str, block: Block, spec: CallSpec, t_block: float) -> None:
        await asyncio.sleep(max(0.0, t_block + spec.arrival_s - time.monotonic()))
        created = await self.api.create_call(
            session_id=session_id,
            scenario_call_id=spec.id,
            block_id=block.id,
            modality=block.modality.value,
            caller_label=spec.caller_label,
        )
        call_id = created["call_id"]
        self.report.call_ids[spec.id] = call_id
        cmd = caller_command(created["caller_url"], spec, block.modality, self.media_cache, self.ice_mode)
        proc = await self._start_caller(cmd, call_id) if cmd else None
        try:
            await self._wait_until(lambda: self._call(call_id) is not None and self._call(call_id).answered_ns is not None)
            answered = time.monotonic()
            for index, utterance in enumerate(spec.utterances):
                await asyncio.sleep(max(0.0, answered + utterance.at_s - time.monotonic()))
                if self._call(call_id).closed is not None:
                    break
                await self.api.post_event(session_id, ev.CallerUtterance(index, utterance.text, utterance.at_s), call_id)
            await self._wait_until(lambda: self._call(call_id).closed is not None)
            await self._stop_caller(proc, call_id)
            await self._wait_until(lambda: self._call(call_id).rsme is not None)
        finally:
            await self._stop_caller(proc, call_id)

    def _call(self, call_id: str):  # noqa: ANN202 - CallState | None
        return self.state.calls.get(call_id)

    async def _start_caller(self, cmd: list[str], call_id: str) -> asyncio.subprocess.Process:
        log_path = self._log_dir / f"{call_id}.log"
        with open(log_path, "wb") as log_file:
            proc = await asyncio.create_subprocess_exec(*cmd, stdout=log_file, stderr=log_file)
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
        self.report.caller_exit_codes[call_id] = proc.returncode if proc.returncode is not None else -1
        if proc.returncode not in (0, -signal.SIGTERM):
            tail = (self._log_dir / f"{call_id}.log").read_text(errors="replace")[-2000:]
            log.warning("caller for %s exited with %s:\n%s", call_id, proc.returncode, tail)
