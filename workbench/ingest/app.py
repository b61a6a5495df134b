"""The ingest's aiohttp application: JSON API, caller page and signalling, photo intake, live viewer.

``create_app(settings, recordings=...)`` builds everything; all state (sessions, calls, peer connections, viewer
sockets) lives in one :class:`Ingest` object stored on the app (``app[INGEST]``), none at module level. Endpoints
are listed in DESIGN.md ("Ingest HTTP") and in :func:`create_app`.

Errors are JSON ``{"error": "..."}`` with a 4xx status, except the caller link itself (``GET /c/{token}``), which
answers a human with an HTML page. A rejected request writes nothing to the recordings tree, except the
``call.link_refused`` event of a refused request on a known caller link (409/410), which the analysis counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

import workbench
from workbench.domain import events as ev
from workbench.domain.taxonomy import Modality
from workbench.ingest import hold, passthrough, remb, roles, webrtc
from workbench.ingest.calls import Call, Calls, Conflict, NotFound, Sessions, new_call_id
from workbench.ingest.live import CallMedia
from workbench.ingest.recorder_process import RecorderProcess
from workbench.ingest.recording import CallRecorder, RecorderFront, SegmentInfo
from workbench.ingest.talkback import Talkback, TalkbackError
from workbench.ingest.qr import qr_svg
from workbench.ingest.settings import IngestSettings
from workbench.store.eventlog import Clock, SystemClock
from workbench.store.recordings import Recordings, RecordingsError, check_id
from workbench.store.scenarios import ScenarioError, parse_scenario

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
COOKIE = "wb_caller"
"""Name of the HttpOnly cookie that binds a caller link to the first browser that opened it."""
RECONNECT_GRACE_S = 10.0
"""After a peer connection fails, the caller has this long to offer again before the call is ended."""
EXTERNAL_SOURCES = ("console", "runner", "simulator")
"""Sources that may post events through the API (the ingest's own events are written only by the ingest)."""
_PHOTO_ID = re.compile(r"^p[0-9]{1,6}$")
_SNAPSHOT_NAME = re.compile(r"^snapshot-[0-9]{4,6}\.jpg$")
CALLER_EVENT_TYPES = (
    ev.CallerPermission,
    ev.CallerGeolocation,
    ev.CallerCameraSwitched,
    ev.CallerConnection,
)
"""The only event types the caller page may post (``POST /c/{token}/events``, source ``caller``)."""
MAX_CALLER_EVENTS = 200
"""Most events one call's page may post; more are refused with 429 (a looping page must not flood the log)."""


class ApiError(Exception):
    """A request the API rejects: HTTP ``status`` and a message saying what was wrong and what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Ingest:
    """Everything one running ingest holds: settings, recordings, sessions, calls and open viewer sockets."""

    def __init__(self, settings: IngestSettings, recordings: Recordings, clock: Clock) -> None:
        self.settings = settings
        self.recordings = recordings
        self.clock = clock
        self.sessions = Sessions(recordings, clock)
        self.calls = Calls()
        self.sessions.listeners.append(self.calls.on_event)
        self.websockets: set[web.WebSocketResponse] = set()
        self.record_policy: dict[str, bool] = {}
        """Session id -> whether its calls are recorded (``media.recording_policy``); issue 4."""
        self.record_video_policy: dict[str, str] = {}
        """Session id -> how its recordings store video, ``h264`` or ``copy`` (``media.recording_video_policy``)."""
        self.talkback_policy: dict[str, bool] = {}
        """Session id -> whether the dispatcher may talk back to its callers (``media.talkback_policy``); issue 4."""
        self.recorder_process: RecorderProcess | None = None
        """Where the calls' recordings are written (``settings.recorder_process``); started with the first recorded
        call, and again should it die."""
        self.stopping = False
        self._background: set[asyncio.Task[Any]] = set()
        self.settlers: list[Callable[[str | None], Awaitable[None]]] = []
        """Work owed to a session's log that runs off the event loop (the link aids): :meth:`settle` awaits it."""

    async def settle(self, session_id: str | None = None) -> None:
        """Wait until the off-loop work (link proposals, advice) owed for events already in the session's log
        (every session's when None) is written: readers and ``session.ended`` then come after it."""
        for settler in self.settlers:
            await settler(session_id)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- calls ----------------------------------------------------------------------------------------------------

    def create_call(
        self, session_id: str, *, scenario_call_id: str, block_id: str, modality: str, caller_label: str
    ) -> Call:
        call_id = new_call_id()

        def emit(payload: ev.Payload) -> None:
            self.sessions.append(session_id, "ingest", payload, call_id)

        def store(name: str, data: bytes) -> tuple[str, str]:
            return self.sessions.get(session_id).store_media(call_id, name, data)

        if session_id not in self.talkback_policy:
            self.set_talkback_policy(session_id, self.settings.talkback, "default")
        talk = self.talkback_policy[session_id]
        if session_id not in self.record_video_policy:
            self.set_record_video_policy(session_id, self.settings.record_video, "default")
        recorder = self._recorder(session_id, call_id, emit, talkback=talk)
        call = Call(
            call_id=call_id,
            session_id=session_id,
            token=secrets.token_urlsafe(24),
            created_ns=self.clock.monotonic_ns(),
            modality=modality,
            media=CallMedia(settings=self.settings, clock=self.clock, emit=emit, store=store, recorder=recorder),
        )
        call.media.peer = lambda: call.pc
        if recorder is not None:
            recorder.request_keyframe = lambda: self.spawn(call.media.request_keyframe("recording"))
        call.media.talkback = Talkback(
            allowed=talk, clock=self.clock,
            emit=lambda payload, source: self.sessions.append(session_id, source, payload, call_id),
            record=(lambda frame, t_ns: recorder.push("talkback", frame, t_ns)) if recorder is not None else None,
        )
        self.sessions.append(
            session_id, "ingest", ev.CallCreated(scenario_call_id, block_id, modality, caller_label), call_id
        )
        self.calls.add(call)
        return call

    def set_record_policy(self, session_id: str, record: bool, origin: str) -> None:
        """Set whether the session's calls are recorded; logged (``media.recording_policy``) when the request set it
        or when it is off. A session without that event records (the default), so existing sessions' event
        sequences stay as they were."""
        self.record_policy[session_id] = record
        if origin == "request" or not record:
            self.sessions.append(session_id, "ingest", ev.MediaRecordingPolicy(record, origin))

    def set_record_video_policy(self, session_id: str, video: str, origin: str) -> None:
        """Set how the session's recordings store video (``h264`` re-encoded, ``copy`` the received VP8 frames);
        logged (``media.recording_video_policy``) when the request set it or when it is not ``h264``."""
        self.record_video_policy[session_id] = video
        if origin == "request" or video != "h264":
            self.sessions.append(session_id, "ingest", ev.MediaRecordingVideoPolicy(video, origin))

    def _choose_recording_video(self, call: Call, pc: RTCPeerConnection) -> None:
        """At each offer: store this connection's VP8 frames as received when the session asks for ``copy`` and it
        can be done (:mod:`workbench.ingest.passthrough`), else re-encode; ``media.recording_video`` when the choice
        changes."""
        recorder = call.media.recorder
        if recorder is None:
            return
        wanted = self.record_video_policy.get(call.session_id, "h264")
        codec = call.codecs.get("video", "")
        mode, reason = wanted, ""
        if wanted == "copy" and codec != "VP8":
            mode, reason = "h264", f"copy needs VP8, the caller sends {codec or 'no video'}"
        elif wanted == "copy":
            try:
                self._tap_receivers(pc, "video", recorder,
                                    lambda message: self.emit(call, ev.MediaRecordingFailed(message)))
            except passthrough.PassthroughUnavailable as exc:
                log.error("call %s: %s", call.call_id, exc)
                mode, reason = "h264", str(exc)
        recorder.video_mode = mode
        # Only sessions that asked for copy get the event: under the default the policy says it all.
        if wanted == "copy" and call.recording_video != (mode, codec, reason):
            call.recording_video = (mode, codec, reason)
            self.emit(call, ev.MediaRecordingVideo(mode, codec, reason))

    def _tap_opus(self, call: Call, pc: RTCPeerConnection) -> None:
        """Store the caller's Opus packets as received, in every recording mode (the recorder then ignores the
        decoded audio); when the audio cannot be tapped, the tap breaks later (aiortc's items changed shape), or a
        reconnect brings audio that is not Opus, the decoded audio is re-encoded as before. Each connection's audio
        receiver is tapped once."""
        recorder = call.media.recorder
        assert recorder is not None
        if call.codecs.get("audio", "").lower() != "opus":
            recorder.audio_copy = False
            return

        def tap_broke(message: str) -> None:  # aiortc changed under the tap: the decoded audio is recorded again
            recorder.audio_copy = False
            log.warning("call %s: caller audio re-encoded from here: %s", call.call_id, message)

        try:
            tapped = self._tap_receivers(pc, "audio", recorder, tap_broke)
        except passthrough.PassthroughUnavailable as exc:
            log.warning("call %s: caller audio re-encoded: %s", call.call_id, exc)
            recorder.audio_copy = False
            return
        recorder.audio_copy = tapped > 0

    def _tap_receivers(self, pc: RTCPeerConnection, kind: str, recorder: RecorderFront,
                       on_error: Callable[[str], Any]) -> int:
        """Hand the encoded frames of ``pc``'s receivers of ``kind`` to ``recorder.push_encoded``, timed on the
        ingest's clock (:func:`passthrough.tap_encoded_frames`); returns how many receivers were tapped. Raises
        :class:`passthrough.PassthroughUnavailable` when aiortc no longer has the path."""
        clock = self.clock
        tapped = 0
        for receiver in pc.getReceivers():
            if receiver.track is not None and receiver.track.kind == kind:
                passthrough.tap_encoded_frames(
                    receiver,
                    lambda name, data, rtp_time: recorder.push_encoded(name, data, clock.monotonic_ns(), rtp_time),
                    on_error,
                )
                tapped += 1
        return tapped

    def set_talkback_policy(self, session_id: str, allowed: bool, origin: str) -> None:
        """Set whether the dispatcher may talk back to the session's callers; logged (``media.talkback_policy``) when
        the request set it or when it is on (a session without that event has talk-back off)."""
        self.talkback_policy[session_id] = allowed
        if origin == "request" or allowed:
            self.sessions.append(session_id, "ingest", ev.MediaTalkbackPolicy(allowed, origin))

    def _recorder(
        self, session_id: str, call_id: str, emit: Callable[[ev.Payload], None], *, talkback: bool = False
    ) -> RecorderFront | None:
        """The recorder of a new call when its session records (issue 4); closed segments are listed in the
        manifest and logged as ``media.recording_segment``."""
        if session_id not in self.record_policy:
            self.set_record_policy(session_id, self.settings.record, "default")
        if not self.record_policy[session_id]:
            return None
        folder = self.sessions.get(session_id)

        def on_segment(info: SegmentInfo) -> None:
            relpath = info.path.relative_to(folder.path).as_posix()
            folder.record_existing(relpath, info.sha256, info.size_bytes)
            emit(ev.MediaRecordingSegment(
                relpath, info.sha256, info.size_bytes, info.index, info.start_s, info.duration_s,
                info.video_frames, info.audio_frames, info.frames_dropped, info.reason,
            ))

        directory = folder.path / "media" / call_id
        on_error = lambda message: emit(ev.MediaRecordingFailed(message))  # noqa: E731
        video_mode = self.record_video_policy.get(session_id, "h264")
        if not self.settings.recorder_process:
            return CallRecorder(
                directory, loop=asyncio.get_running_loop(), on_segment=on_segment, on_error=on_error,
                segment_s=self.settings.record_segment_s, queue_frames=self.settings.record_queue_frames,
                talkback=talkback, video_mode=video_mode,
            )
        if self.recorder_process is None or self.recorder_process.dead:
            self.recorder_process = RecorderProcess(queue_items=self.settings.record_process_queue_items)
        return self.recorder_process.recorder(
            directory, on_segment=on_segment, on_error=on_error, segment_s=self.settings.record_segment_s,
            talkback=talkback, video_mode=video_mode,
        )

    def caller_url(self, call: Call) -> str:
        return f"{self.settings.base_url}/c/{call.token}"

    def link_expired(self, call: Call) -> bool:
        return (self.clock.monotonic_ns() - call.created_ns) / 1e9 > self.settings.link_ttl_s

    def emit(self, call: Call, payload: ev.Payload) -> None:
        self.sessions.append(call.session_id, "ingest", payload, call.call_id)

    async def answer_offer(self, call: Call, offer: RTCSessionDescription, *, listens: bool = False) -> dict[str, str]:
        """Negotiate a new peer connection for ``call`` (closing a previous one: reconnect) and return the answer.

        ``listens``: the caller's client plays what it receives (the caller page says so in its offer); only then,
        and when the session allows talk-back, does the answer carry the dispatcher's voice. Clients that never read
        an incoming track (the simulated aiortc callers) would otherwise pile up its frames in aiortc's unbounded
        receive queue."""
        async with call.lock:
            if call.ended:
                raise ApiError(410, "this call has ended; ask the control room for a new link")
            offer_ns = self.clock.monotonic_ns()
            old, call.pc = call.pc, None
            if old is not None:
                await old.close()  # reconnect: the old connection's streams end, the call goes on
            sdp = offer.sdp
            if self.settings.ice_mode == "loopback":
                sdp = webrtc.keep_loopback_candidates(sdp)  # drops .local candidates too
            else:
                sdp, mdns = await webrtc.resolve_mdns_candidates(sdp)  # bounded: MDNS_TIMEOUT_S
                if mdns:
                    log.info("call %s: mDNS candidates %s", call.call_id, mdns)
            sdp, h264_profiles = webrtc.accept_h264_profiles(sdp)
            pc = RTCPeerConnection(webrtc.rtc_configuration(self.settings))
            tracks: list[Any] = []
            pc.on("track", tracks.append)
            accepted = False  # a refused offer must leave no event behind (not even its "closed" state)

            def on_state() -> None:
                if accepted:
                    self._on_state(call, pc)

            pc.on("connectionstatechange", on_state)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                for receiver in pc.getReceivers():
                    remb.throttle_remb(receiver)  # video only: a REMB per packet while the ingest is behind
                voice = call.media.talkback.caller_track() if call.media.talkback is not None and listens else None
                if voice is not None and webrtc.offer_media(sdp)["audio"]:
                    pc.addTrack(voice)  # the caller's microphone transceiver is sendrecv: it also plays the dispatcher
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception as exc:  # aiortc raises ValueError and others for offers it cannot take
                await pc.close()
                raise ApiError(400, f"the offer could not be negotiated: {exc}") from exc
            accepted = True
            call.pc = pc
            call.offers += 1
            answer_sdp = webrtc.restore_h264_profiles(pc.localDescription.sdp, h264_profiles)
            call.codecs = webrtc.negotiated_codecs(answer_sdp)
            kinds = webrtc.offer_media(sdp)
            self.emit(call, ev.WebrtcOfferReceived(call.codecs.get("video", ""), kinds["audio"], call.offers))
            if kinds["video"]:
                self._choose_recording_video(call, pc)
            if kinds["audio"] and call.media.recorder is not None:
                self._tap_opus(call, pc)
            for track in tracks:
                call.media.consume(track, offer_ns, lambda kind: call.codecs.get(kind, ""))
            return {"sdp": webrtc.add_bitrate_hints(answer_sdp), "type": "answer"}

    def _on_state(self, call: Call, pc: RTCPeerConnection) -> None:
        state = pc.connectionState
        if not (call.ended and state != "closed"):
            self.emit(call, ev.WebrtcStateChanged(state))
        if call.pc is not pc or call.ended or self.stopping:
            return
        if state == "connected" and call.state == "created":
            call.state = "connected"
        elif state == "closed":
            self.spawn(self.end_call(call, "connection_closed"))
        elif state == "failed":
            self.spawn(self._end_after_grace(call, pc))

    async def _end_after_grace(self, call: Call, pc: RTCPeerConnection) -> None:
        await asyncio.sleep(RECONNECT_GRACE_S)
        if call.pc is pc:
            await self.end_call(call, "connection_closed")

    async def end_call(self, call: Call, reason: str) -> None:
        """Close the call's peer connection, wait for its streams' ``media.stream_ended`` and write
        ``call.ended`` (once)."""
        async with call.lock:
            if call.ended:
                return
            pc, call.pc = call.pc, None
            if pc is not None:
                await pc.close()
            await call.media.wait_streams()
            call.end_reason = reason
            call.state = "ended"
            self.emit(call, ev.CallEnded(reason))

    async def stop(self) -> None:
        """Close every viewer socket and peer connection, write the end events, close the logs."""
        if self.stopping:
            return
        self.stopping = True
        for ws in list(self.websockets):
            await ws.close(code=1001, message=b"server stopping")
        for call in self.calls.all():
            await self.end_call(call, "server_stopped")
            await call.media.close()
        if self.recorder_process is not None:  # every call is closed: this only stops the process
            await self.recorder_process.close()
        await self.settle()  # the link aids of the last events, before the logs close
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        adhoc = self.sessions.adhoc_id
        if adhoc is not None and not self.sessions.is_ended(adhoc):
            self.sessions.append(adhoc, "ingest", ev.SessionEnded("server_stopped"))
        self.sessions.close_all()


INGEST = web.AppKey("ingest", Ingest)


def _ingest(request: web.Request) -> Ingest:
    return request.app[INGEST]


# --- helpers -----------------------------------------------------------------------------------------------------


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc}); send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _opt_str(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ApiError(400, f'"{name}" must be a string, got {value!r}')
    return value


def _too_large_message(limit: int) -> str:
    return (
        f"the upload is too large: this server accepts at most {limit} bytes ({limit / 1e6:.1f} MB) per request; "
        "send fewer or smaller photos"
    )


@web.middleware
async def _errors_and_cors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    try:
        response = await handler(request)
    except ApiError as exc:
        response = _error(exc.status, exc.message)
    except NotFound as exc:
        response = _error(404, str(exc))
    except Conflict as exc:
        response = _error(409, str(exc))
    except web.HTTPRequestEntityTooLarge:
        response = _error(413, _too_large_message(_ingest(request).settings.upload_limit_bytes))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            response = _error(404, f"no such endpoint: {request.method} {request.path}")
        elif exc.status == 405:
            response = _error(405, f"{request.method} is not allowed on {request.path}")
        else:
            response = _error(exc.status, exc.text or exc.reason)
    if request.method == "GET" and request.path.startswith(("/api/", "/t/")) and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif request.method in ("POST", "OPTIONS") and _EVENTS_PATH.match(request.path) and not response.prepared:
        # The console page's browser posts its timed events (DRT, panel focus) here directly (issue 6).
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


_EVENTS_PATH = re.compile(r"^(/t/[^/]+)?/api/sessions/[^/]+/events$")  # /t/{ticket}: roles.add_ticket_routes


async def events_preflight(request: web.Request) -> web.Response:
    """CORS preflight of ``POST /api/sessions/{sid}/events`` (JSON from the console page's own scripts)."""
    return web.Response(status=204, headers={"Access-Control-Allow-Methods": "POST",
                                             "Access-Control-Allow-Headers": "Content-Type",
                                             "Access-Control-Max-Age": "600"})


def _page(status: int, title: str, message: str) -> web.Response:
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;font-size:1.2em;max-width:40em}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html")


def _script_json(data: Any) -> str:
    """JSON safe to put inside a ``<script>`` element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- health and sessions -------------------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok", "version": workbench.__version__})


async def get_clock(request: web.Request) -> web.Response:
    """``{"t_mono_ns": ...}``: the ingest's monotonic clock now (the clock of every event's ``t_mono_ns``), for a
    browser to estimate its offset (``performance.now()`` + RTT/2) when it times events itself (issue 6, DRT)."""
    return web.json_response({"t_mono_ns": _ingest(request).clock.monotonic_ns()},
                             headers={"Cache-Control": "no-store"})


async def create_session(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    body = await _json_body(request)
    participant = body.get("participant")
    if not isinstance(participant, str) or not participant.strip():
        raise ApiError(400, '"participant" is required: a non-empty string (a pseudonym, never a name)')
    scenario_toml = body.get("scenario_toml")
    scenario = None
    scenario_bytes = None
    if scenario_toml is not None:
        if not isinstance(scenario_toml, str):
            raise ApiError(400, '"scenario_toml" must be the scenario file\'s text (a string)')
        scenario_bytes = scenario_toml.encode("utf-8")
        try:
            scenario = parse_scenario(scenario_bytes, "scenario_toml", check_media=False)
        except ScenarioError as exc:
            raise ApiError(400, f"the scenario is not valid: {exc}") from None
    session_id = body.get("session_id")
    if session_id is not None:
        if not isinstance(session_id, str):
            raise ApiError(400, '"session_id" must be a string')
        try:
            check_id(session_id, "session_id")
        except RecordingsError as exc:
            raise ApiError(400, str(exc)) from None
        if session_id in ingest.recordings.session_ids() or (ingest.recordings.root / session_id).exists():
            raise ApiError(409, f"session {session_id!r} exists already; choose another session_id or omit it")
    seed = body.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ApiError(400, f'"seed" must be an integer, got {seed!r}')
    record = body.get("record")
    if record is not None and not isinstance(record, bool):
        raise ApiError(400, f'"record" must be true or false (record the calls\' audio and video), got {record!r}')
    record_video = body.get("record_video")
    if record_video is not None and record_video not in ev.RECORDING_VIDEO_MODES:
        raise ApiError(400, f'"record_video" must be "h264" (re-encode) or "copy" (store the received VP8 frames), '
                            f"got {record_video!r}")
    talkback = body.get("talkback")
    if talkback is not None and not isinstance(talkback, bool):
        raise ApiError(400, f'"talkback" must be true or false (the dispatcher may talk to the callers), got {talkback!r}')
    scenario_blocks = [b.id for b in scenario.blocks] if scenario else []
    block_order = body.get("block_order", scenario_blocks)
    if not isinstance(block_order, list) or not all(isinstance(b, str) for b in block_order):
        raise ApiError(400, '"block_order" must be a list of block ids (strings)')
    if scenario is not None and sorted(block_order) != sorted(scenario_blocks):
        raise ApiError(
            400,
            f'"block_order" must list each block of the scenario once ({", ".join(scenario_blocks)}), '
            f"got {block_order!r}",
        )
    try:
        folder = ingest.sessions.create(
            participant=participant,
            scenario_id=scenario.id if scenario else "adhoc",
            scenario_bytes=scenario_bytes,
            scenario_sha256=scenario.sha256 if scenario else "",
            session_id=session_id,
            seed=seed,
            block_order=block_order,
        )
    except RecordingsError as exc:
        raise ApiError(409, str(exc)) from None
    if record is None:
        ingest.set_record_policy(folder.session_id, ingest.settings.record, "default")
    else:
        ingest.set_record_policy(folder.session_id, record, "request")
    if record_video is None:
        ingest.set_record_video_policy(folder.session_id, ingest.settings.record_video, "default")
    else:
        ingest.set_record_video_policy(folder.session_id, record_video, "request")
    if talkback is None:
        ingest.set_talkback_policy(folder.session_id, ingest.settings.talkback, "default")
    else:
        ingest.set_talkback_policy(folder.session_id, talkback, "request")
    return _json({"session_id": folder.session_id}, status=201)


async def list_sessions(request: web.Request) -> web.Response:
    return _json({"sessions": _ingest(request).sessions.summaries()})


def _after(request: web.Request) -> int:
    raw = request.query.get("after", "0")
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f'"after" must be an integer seq, got {raw!r}') from None


async def get_events(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    sid = request.match_info["sid"]
    events = ingest.sessions.events(sid, _after(request))
    return _json({"events": [e.to_dict() for e in events]})


async def post_event(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    sid = request.match_info["sid"]
    ingest.sessions.get(sid)  # 404 before looking at the body
    body = await _json_body(request)
    source, event_type, call_id = body.get("source"), body.get("type"), body.get("call_id")
    if source not in EXTERNAL_SOURCES:
        raise ApiError(
            400,
            f'"source" must be one of {", ".join(EXTERNAL_SOURCES)}, got {source!r} '
            "(the ingest writes its own events itself)",
        )
    if not isinstance(event_type, str):
        raise ApiError(400, f'"type" must be an event type string, got {event_type!r}')
    if call_id is not None and not isinstance(call_id, str):
        raise ApiError(400, f'"call_id" must be a string or null, got {call_id!r}')
    try:
        payload = ev.payload_from_dict(event_type, body.get("data"))
        ev.check_envelope(type(payload), source, call_id)
    except ev.EventValidationError as exc:
        raise ApiError(400, f"invalid event: {exc}") from None
    if isinstance(payload, ev.SessionEnded):
        await ingest.settle(sid)  # the aids of the session's last events come before its end
    event = ingest.sessions.append(sid, source, payload, call_id)
    hold.after_console_event(ingest.calls, sid, call_id, payload)  # Hold stops talk-back
    return _json({"event": event.to_dict()}, status=201)


async def control(request: web.Request) -> web.Response:
    """Steer a session: ``end`` and ``abort`` (checkpoint ``now``, the default) write ``session.ended``; ``start``,
    ``pause``, ``resume``, ``abort`` at checkpoint ``call``/``block`` and ``inject`` (``scenario_call_id``; for an
    ad-hoc call also ``caller_label`` and ``utterances``) write ``session.control``, which the runner obeys."""
    ingest = _ingest(request)
    sid = request.match_info["sid"]
    ingest.sessions.get(sid)
    body = await _json_body(request)
    action = body.get("action")
    reasons = {"end": "completed", "abort": "aborted"}
    actions = ["end", *ev.CONTROL_ACTIONS]
    if action not in actions:
        raise ApiError(400, f'"action" must be one of {", ".join(actions)}, got {action!r}')
    checkpoint = _opt_str(body, "checkpoint")
    if action == "abort" and checkpoint not in ("", *ev.ABORT_CHECKPOINTS):
        raise ApiError(400, f'"checkpoint" must be one of {", ".join(ev.ABORT_CHECKPOINTS)}, got {checkpoint!r}')
    if ingest.sessions.is_ended(sid):
        raise ApiError(409, f"session {sid!r} has ended already")
    if action == "end" or (action == "abort" and checkpoint in ("", "now")):
        await ingest.settle(sid)  # the aids of the session's last events come before its end
        if ingest.sessions.is_ended(sid):
            raise ApiError(409, f"session {sid!r} has ended already")
        event = ingest.sessions.append(sid, "ingest", ev.SessionEnded(reasons[action]))
        return _json({"event": event.to_dict()})
    lines = body.get("utterances", [])
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise ApiError(400, '"utterances" must be a list of strings (the ad-hoc caller\'s lines)')
    try:
        payload = ev.SessionControl(
            action=action,
            checkpoint=checkpoint if action == "abort" else "",
            scenario_call_id=_opt_str(body, "scenario_call_id") if action == "inject" else "",
            caller_label=_opt_str(body, "caller_label") if action == "inject" else "",
            utterances=list(lines) if action == "inject" else [],
        )
        payload.check()
    except ev.EventValidationError as exc:
        raise ApiError(400, f"invalid control: {exc}") from None
    event = ingest.sessions.append(sid, "ingest", payload)
    return _json({"event": event.to_dict()})


# --- calls -----------------------------------------------------------------------------------------------------------


async def create_call(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    body = await _json_body(request, optional=True)
    session_id = _opt_str(body, "session_id")
    modality = _opt_str(body, "modality", "video")
    allowed = [m.value for m in Modality]
    if modality not in allowed:
        raise ApiError(400, f'"modality" must be one of {", ".join(allowed)}, got {modality!r}')
    scenario_call_id = _opt_str(body, "scenario_call_id")
    block_id = _opt_str(body, "block_id")
    caller_label = _opt_str(body, "caller_label")
    if session_id:
        ingest.sessions.get(session_id)
        if ingest.sessions.is_ended(session_id):
            raise ApiError(409, f"session {session_id!r} has ended; create calls in a running session")
    else:
        session_id = ingest.sessions.adhoc().session_id
    call = ingest.create_call(
        session_id, scenario_call_id=scenario_call_id, block_id=block_id, modality=modality, caller_label=caller_label
    )
    return _json(
        {"call_id": call.call_id, "session_id": session_id, "caller_url": ingest.caller_url(call)}, status=201
    )


async def get_call(request: web.Request) -> web.Response:
    call = _ingest(request).calls.by_id(request.match_info["call_id"])
    return _json(call.status())


async def get_photo(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    call = ingest.calls.by_id(request.match_info["call_id"])
    photo_id = request.match_info["photo_id"]
    if not _PHOTO_ID.match(photo_id):
        raise ApiError(404, f"unknown photo {photo_id!r}; photo ids look like p1, p2, ...")
    path = ingest.sessions.get(call.session_id).path / "media" / call.call_id / f"photo-{photo_id}-display.jpg"
    if not path.is_file():
        raise ApiError(404, f"call {call.call_id} has no photo {photo_id!r}")
    return web.Response(body=path.read_bytes(), content_type="image/jpeg")


async def get_frame(request: web.Request) -> web.Response:
    call = _ingest(request).calls.by_id(request.match_info["call_id"])
    data = await call.media.frame_jpeg()
    if data is None:
        raise ApiError(404, f"call {call.call_id} has no video frame yet; try again once the caller is connected")
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def take_snapshot(request: web.Request) -> web.Response:
    """``POST /api/calls/{call_id}/snapshot``: store a still of the newest frame now (``media.snapshot``, reason
    ``request``, with sharpness, brightness and motion); 404 before the first frame, 410 after the call ended."""
    call = _ingest(request).calls.by_id(request.match_info["call_id"])
    if call.ended:
        raise ApiError(410, f"call {call.call_id} has ended; there is no live video to take a still of")
    payload = await call.media.snapshot_now()
    if payload is None:
        raise ApiError(404, f"call {call.call_id} has no video frame yet; try again once the caller is connected")
    return _json({"snapshot": dataclasses.asdict(payload)}, status=201)


async def get_snapshot(request: web.Request) -> web.Response:
    """``GET /api/calls/{call_id}/snapshots/{name}``: a stored still (``snapshot-0001.jpg``, the file name of
    ``media.snapshot``'s ``file``), for the dispatcher's gallery."""
    ingest = _ingest(request)
    call = ingest.calls.by_id(request.match_info["call_id"])
    name = request.match_info["name"]
    if not _SNAPSHOT_NAME.match(name):
        raise ApiError(404, f"unknown snapshot {name!r}; snapshot names look like snapshot-0001.jpg")
    path = ingest.sessions.get(call.session_id).path / "media" / call.call_id / name
    if not path.is_file():
        raise ApiError(404, f"call {call.call_id} has no snapshot {name!r}")
    return web.Response(body=path.read_bytes(), content_type="image/jpeg")


def _viewer_mode(request: web.Request, call: Call) -> str:
    mode = request.query.get("mode", "")
    if mode not in ("", "jpeg", "webrtc"):
        raise ApiError(400, f'"mode" must be jpeg (WebSocket JPEG stream) or webrtc (relay with audio), got {mode!r}')
    talk = call.media.talkback is not None and call.media.talkback.allowed
    return mode or ("webrtc" if talk else "jpeg")


async def viewer_page(request: web.Request) -> web.Response:
    call = _ingest(request).calls.by_id(request.match_info["call_id"])
    page = (STATIC_DIR / "viewer.html").read_text(encoding="utf-8")
    prefix = roles.public_prefix(request)  # a station's ticket travels on to the page's own socket and offer
    config = {
        "callId": call.call_id,
        "liveUrl": f"{prefix}/api/calls/{call.call_id}/live",
        # ?mode=webrtc: the caller's video and audio relayed over WebRTC instead of the JPEG stream (issue 4); without
        # ?mode, a session with talk-back gets WebRTC (it carries both voices), so the console's iframe needs no change.
        "mode": _viewer_mode(request, call),
        "offerUrl": f"{prefix}/api/calls/{call.call_id}/viewer/offer",
        # Talk-back (WebRTC mode only): the page sends the dispatcher's microphone and shows a talk control.
        "talkback": bool(call.media.talkback is not None and call.media.talkback.allowed),
        "talkUrl": f"{prefix}/api/calls/{call.call_id}/talk",
        # With ?dispatcher=1 (the console's embed) the page logs its mute control as console.audio here.
        "eventsUrl": f"{prefix}/api/sessions/{call.session_id}/events",
    }
    return web.Response(text=page.replace("__VIEWER_CONFIG__", _script_json(config)), content_type="text/html")


PROMPT_POLL_S = 25.0
"""How long ``GET /c/{token}/prompts`` waits for a new prompt before answering an empty list, s."""


async def post_prompt(request: web.Request) -> web.Response:
    """``POST /api/calls/{call_id}/prompts`` with ``{"prompt": "photo"|"switch_camera"|"end_video", "message": ""}``:
    the dispatcher asks the caller (``dispatcher.prompt``, source ``console``); the caller's page long-polls
    ``GET /c/{token}/prompts``. 410 once the call has ended, 429 beyond ``live.MAX_PROMPTS``."""
    ingest = _ingest(request)
    call = ingest.calls.by_id(request.match_info["call_id"])
    body = await _json_body(request)
    prompt = body.get("prompt")
    if prompt not in ev.CALLER_PROMPTS:
        raise ApiError(400, f'"prompt" must be one of {", ".join(ev.CALLER_PROMPTS)}, got {prompt!r}')
    message = _opt_str(body, "message")
    if len(message) > 200:
        raise ApiError(400, '"message" is at most 200 characters (it is shown on the caller\'s phone)')
    if call.ended:
        raise ApiError(410, f"call {call.call_id} has ended; the caller can no longer be asked")
    try:
        item = call.media.prompts.add(prompt, message)
    except RuntimeError as exc:
        raise ApiError(429, str(exc)) from None
    ingest.sessions.append(call.session_id, "console", ev.DispatcherPrompt(item.prompt_id, prompt, message), call.call_id)
    return _json({"prompt_id": item.prompt_id}, status=201)


async def caller_prompts(request: web.Request) -> web.Response:
    """``GET /c/{token}/prompts?after=N`` (the caller's page, cookie-bound): the dispatcher's prompts with an id above
    N, waiting up to :data:`PROMPT_POLL_S` for one; ``{"prompts": [{"prompt_id", "prompt", "message"}]}``. The first
    delivery of each is recorded (``caller.prompt_delivered``)."""
    ingest = _ingest(request)
    call = _bound_call(request, "prompts")
    items = await call.media.prompts.after(_after(request), PROMPT_POLL_S)
    now = ingest.clock.monotonic_ns()
    for item in items:
        if not item.delivered:
            item.delivered = True
            ingest.emit(call, ev.CallerPromptDelivered(item.prompt_id, (now - item.t_ns) / 1e6))
    return _json({"prompts": [{"prompt_id": i.prompt_id, "prompt": i.prompt, "message": i.message} for i in items]})


async def viewer_offer(request: web.Request) -> web.Response:
    """``POST /api/calls/{call_id}/viewer/offer`` with a viewer's ``{"sdp", "type": "offer"}`` (receive-only): the
    caller's video (newest frame) and audio relayed to that viewer over WebRTC (:class:`live.RelayTrack`); answers
    ``{"sdp", "type"}``. 410 once the call has ended, 429 beyond ``live.MAX_WEBRTC_VIEWERS`` viewers."""
    ingest = _ingest(request)
    call = ingest.calls.by_id(request.match_info["call_id"])
    if call.ended:
        raise ApiError(410, f"call {call.call_id} has ended; there is nothing to relay")
    try:
        description = webrtc.parse_offer(await _json_body(request))
    except webrtc.OfferError as exc:
        raise ApiError(400, f"malformed offer: {exc}") from None
    try:
        tracks = call.media.relay_tracks()
    except RuntimeError as exc:
        raise ApiError(429, str(exc)) from None
    sdp = description.sdp
    if ingest.settings.ice_mode == "loopback":
        sdp = webrtc.keep_loopback_candidates(sdp)
    else:
        sdp, _mdns = await webrtc.resolve_mdns_candidates(sdp)  # a viewer's browser hides its address behind mDNS
    pc = RTCPeerConnection(webrtc.rtc_configuration(ingest.settings))
    call.media.viewer_pcs.add(pc)

    def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            for track in tracks:
                track.stop()
            call.media.viewer_pcs.discard(pc)
            if pc.connectionState == "failed":
                ingest.spawn(pc.close())

    pc.on("connectionstatechange", on_state)
    if call.media.talkback is not None:
        # The dispatcher's microphone (talk-back); drained even when talk-back is off, so it never piles up.
        pc.on("track", lambda t: call.media.talkback.consume_microphone(t) if t.kind == "audio" else None)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for track in tracks:
            pc.addTrack(track)
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # aiortc raises ValueError and others for offers it cannot take
        for track in tracks:
            track.stop()
        call.media.viewer_pcs.discard(pc)
        await pc.close()
        raise ApiError(400, f"the offer could not be negotiated: {exc}") from exc
    ingest.spawn(call.media.request_keyframe("viewer_joined"))
    return _json({"sdp": pc.localDescription.sdp, "type": "answer"})


async def post_talk(request: web.Request) -> web.Response:
    """``POST /api/calls/{call_id}/talk`` with ``{"on": true|false}``: the dispatcher's talk control (the live view's
    button); ``dispatcher.talk``. Answers ``{"on", "microphone"}``. 403 when the session does not allow talk-back,
    409 to turn on without a dispatcher microphone connected, 410 once the call has ended."""
    ingest = _ingest(request)
    call = ingest.calls.by_id(request.match_info["call_id"])
    body = await _json_body(request)
    on = body.get("on")
    if not isinstance(on, bool):
        raise ApiError(400, f'"on" must be true (talk to the caller) or false (stop), got {on!r}')
    if call.ended:
        raise ApiError(410, f"call {call.call_id} has ended; there is nobody to talk to")
    talk = call.media.talkback
    if talk is None or not talk.allowed:
        raise ApiError(403, 'talk-back is off in this session; create the session with "talkback": true '
                            "(POST /api/sessions) or start the ingest with --talkback")
    try:
        talk.set_talking(on, "toggle")
    except TalkbackError as exc:
        raise ApiError(409, str(exc)) from None
    return _json({"on": talk.talking, "microphone": talk.microphone_live})


async def live_socket(request: web.Request) -> web.StreamResponse:
    ingest = _ingest(request)
    call = ingest.calls.by_id(request.match_info["call_id"])
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    ingest.websockets.add(ws)

    async def read() -> None:
        async for _msg in ws:  # viewers send nothing; reading handles ping/close
            pass

    reader = asyncio.ensure_future(read())
    sender = asyncio.ensure_future(call.media.serve_viewer(ws.send_bytes))
    try:
        await asyncio.wait([reader, sender], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, sender):
            task.cancel()
        await asyncio.gather(reader, sender, return_exceptions=True)
        ingest.websockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


# --- the caller's link -------------------------------------------------------------------------------------------


async def caller_page(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    try:
        call = ingest.calls.by_token(request.match_info["token"])
    except NotFound:
        # No call, so no session to record it in (events are per session): the log says it.
        log.info("caller link refused (404, unknown token) for %s", request.headers.get("User-Agent", ""))
        return _page(404, "Unknown link", "This link is not known. Please ask the control room for a new link.")
    if call.ended:
        _refused(request, call, 410, "ended", "page")
        return _page(410, "This call has ended", "The call has ended. If you still need help, call 112 again.")
    if ingest.link_expired(call):
        _refused(request, call, 410, "expired", "page")
        return _page(410, "This link has expired", "This link is no longer valid. Ask the control room for a new link.")
    cookie = request.cookies.get(COOKIE)
    new_binding = call.browser_secret is None
    if not new_binding and cookie != call.browser_secret:
        _refused(request, call, 409, "other_browser", "page")
        return _page(
            409,
            "Link already in use",
            "This link was already opened on another device or browser. Each link works in one browser only; "
            "ask the control room for a new link.",
        )
    config = {
        "callId": call.call_id,
        "offerUrl": f"/c/{call.token}/offer",
        "photosUrl": f"/c/{call.token}/photos",
        "hangupUrl": f"/c/{call.token}/hangup",
        "eventsUrl": f"/c/{call.token}/events",
        "iceServers": webrtc.browser_ice_servers(ingest.settings),
        "modality": call.modality,
    }
    page = (STATIC_DIR / "caller.html").read_text(encoding="utf-8")
    response = web.Response(text=page.replace("__CALLER_CONFIG__", _script_json(config)), content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    if new_binding:
        call.browser_secret = secrets.token_urlsafe(24)
        ingest.emit(call, ev.CallLinkOpened(request.headers.get("User-Agent", "")))
    response.set_cookie(
        COOKIE,
        call.browser_secret or "",
        path=f"/c/{call.token}",
        httponly=True,
        samesite="Lax",
        secure=bool(ingest.settings.tls_cert),
        max_age=int(ingest.settings.link_ttl_s),
    )
    return response


def _refused(request: web.Request, call: Call, status: int, reason: str, what: str) -> None:
    """Record a refused request on a known caller link (``call.link_refused``)."""
    _ingest(request).emit(call, ev.CallLinkRefused(status, reason, what, request.headers.get("User-Agent", "")))


def _bound_call(request: web.Request, what: str) -> Call:
    """The call of ``/c/{token}/...`` when this browser is bound to it; else raises the :class:`ApiError` to return
    (410 ended or expired, 409 another browser; each recorded as ``call.link_refused`` naming ``what``)."""
    ingest = _ingest(request)
    call = ingest.calls.by_token(request.match_info["token"])
    if call.ended:
        _refused(request, call, 410, "ended", what)
        raise ApiError(410, "this call has ended; ask the control room for a new link")
    if ingest.link_expired(call):
        _refused(request, call, 410, "expired", what)
        raise ApiError(410, "this link has expired; ask the control room for a new link")
    cookie = request.cookies.get(COOKIE)
    if call.browser_secret is None or cookie != call.browser_secret:
        _refused(request, call, 409, "other_browser", what)
        raise ApiError(
            409,
            "this browser is not bound to the link: open the caller link in this browser first "
            "(a link works in the one browser that opened it first)",
        )
    return call


async def offer(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    call = _bound_call(request, "offer")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, 'the offer is not JSON; send {"sdp": "...", "type": "offer"}') from None
    try:
        description = webrtc.parse_offer(body)
    except webrtc.OfferError as exc:
        raise ApiError(400, f"malformed offer: {exc}") from None
    # An optional "talkback": true says the caller's client plays the dispatcher's voice (the caller page does).
    return _json(await ingest.answer_offer(call, description, listens=body.get("talkback") is True))


async def hangup(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    call = _bound_call(request, "hangup")
    await ingest.end_call(call, "caller_hung_up")
    return _json({"state": call.state})


async def caller_event(request: web.Request) -> web.Response:
    """``POST /c/{token}/events`` with ``{"type": ..., "data": {...}}``: an event the caller page reports about
    itself (permission, geolocation, camera switch, its connection), written with source ``caller``.

    Only :data:`CALLER_EVENT_TYPES` are accepted (400 otherwise, or for invalid data); at most
    :data:`MAX_CALLER_EVENTS` per call (429 after that). Same-origin only: the link's cookie is required.
    """
    ingest = _ingest(request)
    call = _bound_call(request, "events")
    body = await _json_body(request)
    event_type = body.get("type")
    allowed = {cls.TYPE: cls for cls in CALLER_EVENT_TYPES}
    if event_type not in allowed:
        raise ApiError(400, f'"type" must be one of {", ".join(allowed)}, got {event_type!r}')
    try:
        payload = ev.payload_from_dict(event_type, body.get("data"))
    except ev.EventValidationError as exc:
        raise ApiError(400, f"invalid event: {exc}") from None
    if call.caller_events >= MAX_CALLER_EVENTS:
        raise ApiError(429, f"this call's page has reported {MAX_CALLER_EVENTS} events already; no more are recorded")
    call.caller_events += 1
    event = ingest.sessions.append(call.session_id, "caller", payload, call.call_id)
    return _json({"seq": event.seq}, status=201)


async def lab_certificate(request: web.Request) -> web.Response:
    """``GET /lab-cert.crt``: the server's own TLS certificate (public, PEM) for phones to install and trust
    (:mod:`workbench.ingest.tls`); 404 when the ingest does not serve HTTPS."""
    cert = _ingest(request).settings.tls_cert
    if not cert:
        raise ApiError(404, "this ingest serves plain HTTP and has no certificate; start it with --tls")
    return web.Response(
        body=Path(cert).read_bytes(),
        content_type="application/x-x509-ca-cert",
        headers={"Content-Disposition": 'attachment; filename="workbench-lab.crt"'},
    )


async def call_qr(request: web.Request) -> web.Response:
    """``GET /api/calls/{call_id}/qr.svg``: the call's caller link as a QR code (SVG), for the dispatcher to show
    to a caller who has the lab phone in hand. 410 once the call has ended (the link no longer works)."""
    ingest = _ingest(request)
    call = ingest.calls.by_id(request.match_info["call_id"])
    if call.ended:
        raise ApiError(410, f"call {call.call_id} has ended; its link no longer works")
    return web.Response(
        text=qr_svg(ingest.caller_url(call)), content_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


async def upload_photos(request: web.Request) -> web.Response:
    ingest = _ingest(request)
    call = _bound_call(request, "photos")
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, 'send the photo as multipart/form-data with the file in the field "photo"')
    form = await request.post()
    parts = form.getall("photo", [])
    if not parts:
        raise ApiError(400, 'no "photo" field in the form; send the image file in a field named "photo"')
    from workbench.ingest.photos import PhotoError, normalise_photo  # the photo developer's module

    accepted = []
    for part in parts:
        if not isinstance(part, web.FileField):
            raise ApiError(400, 'the "photo" field must be a file upload, not a text value')
        data = part.file.read()
        try:
            photo = await asyncio.to_thread(normalise_photo, data)
        except PhotoError as exc:
            raise ApiError(415, f"{part.filename or 'upload'}: {exc}") from None
        accepted.append((part.filename or "", data, photo))
    # Every part is an image: only now is anything written.
    folder = ingest.sessions.get(call.session_id)
    results = []
    for filename, data, photo in accepted:
        call.photos += 1
        photo_id = f"p{call.photos}"
        original, digest = folder.store_media(call.call_id, f"photo-{photo_id}{photo.extension}", data)
        display, _ = folder.store_media(call.call_id, f"photo-{photo_id}-display.jpg", photo.display_jpeg)
        ingest.emit(
            call,
            ev.MediaPhotoReceived(
                photo_id, original, display, digest, len(data), photo.image_format, photo.width, photo.height, filename
            ),
        )
        lat, lon, alt = photo.gps or (0.0, 0.0, 0.0)
        ingest.emit(call, ev.MediaPhotoMetadata(photo_id, photo.gps is not None, lat, lon, alt, photo.taken_at))
        results.append(
            {
                "photo_id": photo_id,
                "image_format": photo.image_format,
                "width": photo.width,
                "height": photo.height,
                "url": f"/api/calls/{call.call_id}/photos/{photo_id}",
            }
        )
    return _json({"photos": results}, status=201)


# --- maps (issue 10): thin handlers, the drawing is workbench/maps.py ----------------------------------------------


def _svg(text: str) -> web.Response:
    return web.Response(text=text, content_type="image/svg+xml", headers={"Cache-Control": "no-store"})


async def session_map(request: web.Request) -> web.Response:
    from workbench import maps

    ingest = _ingest(request)
    sid = request.match_info["sid"]
    folder = ingest.sessions.get(sid)
    try:
        return _svg(maps.session_map_svg(ingest.sessions.events(sid), folder.path, request.query))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


async def heat_map(request: web.Request) -> web.Response:
    from workbench import maps

    ingest = _ingest(request)
    ids = [s for s in request.query.get("sessions", "").split(",") if s] or ingest.recordings.session_ids()
    sessions = [(ingest.sessions.events(sid), ingest.sessions.get(sid).path) for sid in ids]
    try:
        return _svg(maps.sessions_heat_map_svg(sessions, request.query))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


# --- the factory -------------------------------------------------------------------------------------------------


def create_app(settings: IngestSettings, *, recordings: Recordings, clock: Clock | None = None) -> web.Application:
    """The ingest application.

    Endpoints: ``GET /healthz``; ``GET /api/clock``; ``POST|GET /api/sessions``;
    ``GET|POST|OPTIONS /api/sessions/{sid}/events`` (CORS, for the console page's scripts);
    ``GET /api/sessions/{sid}/head`` (the log's last seq, for the console page's change watcher: :mod:`.head`);
    ``POST /api/sessions/{sid}/control``; ``POST /api/calls``; ``GET /api/calls/{call_id}``;
    ``GET /api/calls/{call_id}/photos/{photo_id}``; ``GET /api/calls/{call_id}/frame.jpg``;
    ``GET /api/calls/{call_id}/viewer`` (HTML; ``?mode=webrtc`` for the WebRTC relay) and
    ``GET /api/calls/{call_id}/live`` (WebSocket of JPEGs); ``POST /api/calls/{call_id}/viewer/offer`` (the WebRTC
    relay of the caller's video and audio, and the dispatcher's microphone); ``POST /api/calls/{call_id}/talk``
    (the dispatcher's talk-back control); ``POST /api/calls/{call_id}/snapshot`` (a still now, with quality);
    ``POST /api/calls/{call_id}/prompts`` (ask the caller for a photo, a camera switch, to end the video) and the
    caller page's long poll ``GET /c/{token}/prompts``;
    ``GET /api/calls/{call_id}/qr.svg`` (the caller link as a QR code); ``GET /lab-cert.crt`` (the TLS certificate);
    the caller link ``GET /c/{token}`` (HTML) with ``POST /c/{token}/offer``, ``/photos``, ``/hangup`` and
    ``/events`` (the page's own events, :data:`CALLER_EVENT_TYPES`).

    In ``loopback`` ICE mode this patches aioice once so it gathers 127.0.0.1 (:func:`webrtc.enable_loopback_ice`).
    ``app.on_shutdown`` ends every call (``server_stopped``) and closes the logs.
    """
    if settings.ice_mode == "loopback":
        webrtc.enable_loopback_ice()
    ingest = Ingest(settings, recordings, clock or SystemClock())
    middlewares: list[Any] = [_errors_and_cors]
    if settings.access is not None:  # issue 7: the role boundary (workbench/ingest/roles.py)
        middlewares.append(roles.guard(settings.access, ingest.calls.session_of))
    app = web.Application(client_max_size=settings.upload_limit_bytes, middlewares=middlewares)
    app[INGEST] = ingest

    async def on_shutdown(_app: web.Application) -> None:
        await ingest.stop()

    app.on_shutdown.append(on_shutdown)
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/api/clock", get_clock)
    r.add_route("OPTIONS", "/api/sessions/{sid}/events", events_preflight)
    r.add_post("/api/sessions", create_session)
    r.add_get("/api/sessions", list_sessions)
    r.add_get("/api/sessions/{sid}/events", get_events)
    r.add_post("/api/sessions/{sid}/events", post_event)
    r.add_post("/api/sessions/{sid}/control", control)
    r.add_post("/api/calls", create_call)
    r.add_get("/api/calls/{call_id}", get_call)
    r.add_get("/api/calls/{call_id}/photos/{photo_id}", get_photo)
    r.add_get("/api/calls/{call_id}/frame.jpg", get_frame)
    r.add_post("/api/calls/{call_id}/snapshot", take_snapshot)
    r.add_get("/api/calls/{call_id}/snapshots/{name}", get_snapshot)  # the stills, for the console's gallery
    r.add_get("/api/calls/{call_id}/viewer", viewer_page)
    r.add_get("/api/calls/{call_id}/live", live_socket)
    r.add_post("/api/calls/{call_id}/viewer/offer", viewer_offer)
    r.add_post("/api/calls/{call_id}/prompts", post_prompt)
    r.add_post("/api/calls/{call_id}/talk", post_talk)
    r.add_get("/c/{token}/prompts", caller_prompts)
    r.add_get("/c/{token}", caller_page)
    r.add_post("/c/{token}/offer", offer)
    r.add_post("/c/{token}/photos", upload_photos)
    r.add_post("/c/{token}/hangup", hangup)
    r.add_post("/c/{token}/events", caller_event)
    r.add_get("/api/calls/{call_id}/qr.svg", call_qr)
    r.add_get("/lab-cert.crt", lab_certificate)
    r.add_get("/api/sessions/{sid}/map.svg", session_map)  # ?open=1&width=&height= (issue 10)
    r.add_get("/api/map/heat.svg", heat_map)  # ?sessions=a,b (default: every session)
    from workbench.ingest import links  # link proposals, decisions and triage advice (issue 11)

    links.install(app, ingest)  # before the ticket routes, so a station's ticket reaches the links endpoints too
    from workbench.ingest import head  # the console page's change watcher (issue 6)

    head.install(app, ingest)
    if settings.access is not None:
        roles.add_ticket_routes(r)
    r.add_static("/static", STATIC_DIR, show_index=False)
    return app
