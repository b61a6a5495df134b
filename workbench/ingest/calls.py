"""Sessions and calls as the ingest keeps them during one server run.

:class:`Sessions` opens session folders (creating them, or lazily re-opening ones from earlier runs) and is the
only place the ingest appends events (``SessionFolder.event_log().append``). :class:`Call` is one caller link
with its browser binding, its peer connection and its live media; :class:`Calls` indexes them by id and token.
Neither keeps module-level state: both live on the aiohttp application made by ``create_app``.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import workbench
from workbench.domain import events as ev
from workbench.ingest.live import CallMedia
from workbench.store.eventlog import Clock
from workbench.store.recordings import Recordings, RecordingsError, SessionFolder, SessionHeader

ADHOC = "adhoc"


class NotFound(LookupError):
    """An unknown session, call or token (HTTP 404)."""


class Conflict(Exception):
    """A request that clashes with the current state (HTTP 409)."""


def new_session_id(clock: Clock) -> str:
    """``s-YYYYmmdd-HHMMSS-xxxx`` (UTC, 4 random hex digits)."""
    return f"s-{clock.now_utc().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def new_call_id() -> str:
    """``c-`` and 8 random hex digits."""
    return f"c-{secrets.token_hex(4)}"


class Sessions:
    """The session folders this ingest writes, opened on first use and closed by :meth:`close_all`."""

    def __init__(self, recordings: Recordings, clock: Clock) -> None:
        self.recordings = recordings
        self._clock = clock
        self._open: dict[str, SessionFolder] = {}
        self._ended: set[str] = set()
        self._writing: set[str] = set()
        self.adhoc_id: str | None = None
        self.listeners: list[Any] = []
        """Callables ``(event) -> None`` told about every appended event (the call registry uses it)."""

    def create(
        self,
        *,
        participant: str,
        scenario_id: str,
        scenario_bytes: bytes | None,
        scenario_sha256: str,
        session_id: str | None,
        seed: int,
        block_order: list[str],
    ) -> SessionFolder:
        """Create the folder and append ``session.started``. Raises ``RecordingsError`` (bad id, exists)."""
        sid = session_id or new_session_id(self._clock)
        header = SessionHeader(
            session_id=sid,
            participant=participant,
            scenario_id=scenario_id,
            scenario_sha256=scenario_sha256,
            block_order=list(block_order),
            seed=seed,
            software_version=workbench.__version__,
            started_at=self._clock.now_utc().isoformat(timespec="microseconds"),
        )
        folder = self.recordings.create_session(header, scenario_bytes)
        self._open[sid] = folder
        self.append(
            sid,
            "ingest",
            ev.SessionStarted(participant, scenario_id, scenario_sha256, seed, list(block_order), workbench.__version__),
        )
        return folder

    def adhoc(self) -> SessionFolder:
        """The one ad-hoc session of this server run (created on first use)."""
        if self.adhoc_id is None:
            folder = self.create(
                participant=ADHOC,
                scenario_id=ADHOC,
                scenario_bytes=None,
                scenario_sha256="",
                session_id=None,
                seed=0,
                block_order=[],
            )
            self.adhoc_id = folder.session_id
        return self._open[self.adhoc_id]

    def get(self, session_id: str) -> SessionFolder:
        """An open session, re-opening one of an earlier run; raises :class:`NotFound`."""
        folder = self._open.get(session_id)
        if folder is None:
            try:
                folder = self.recordings.open_session(session_id)
            except RecordingsError as exc:
                raise NotFound(f"unknown session {session_id!r}; list sessions with GET /api/sessions") from exc
            self._open[session_id] = folder
        return folder

    def exists(self, session_id: str) -> bool:
        try:
            self.get(session_id)
        except NotFound:
            return False
        return True

    def events(self, session_id: str, after: int = 0) -> list[ev.Event]:
        """Events of a session with ``seq > after``."""
        folder = self.get(session_id)
        if session_id in self._writing:
            return folder.event_log().events(after)
        if not folder.events_path.exists():
            return []
        events, _problems = folder.read_events()  # read-only for sessions this run has not written to
        return [e for e in events if e.seq > after]

    def is_ended(self, session_id: str) -> bool:
        if session_id in self._ended:
            return True
        if any(e.type == ev.SessionEnded.TYPE for e in self.events(session_id)):
            self._ended.add(session_id)
            return True
        return False

    def append(self, session_id: str, source: str, payload: ev.Payload, call_id: str | None = None) -> ev.Event:
        """Append one event (validated by the log); tells the listeners."""
        event = self.get(session_id).event_log().append(source, payload, call_id)
        self._writing.add(session_id)
        if isinstance(payload, ev.SessionEnded):
            self._ended.add(session_id)
        for listener in self.listeners:
            listener(event)
        return event

    def summaries(self) -> list[dict[str, Any]]:
        """One row per session folder in the recordings root."""
        rows = []
        for sid in self.recordings.session_ids():
            try:
                folder = self.get(sid)
                header = folder.header()
                events = self.events(sid)
            except (NotFound, ValueError, OSError):
                continue
            rows.append(
                {
                    "session_id": sid,
                    "participant": header.get("participant", ""),
                    "scenario_id": header.get("scenario_id", ""),
                    "last_seq": events[-1].seq if events else 0,
                    "ended": any(e.type == ev.SessionEnded.TYPE for e in events),
                }
            )
        return rows

    def close_all(self) -> None:
        for folder in self._open.values():
            folder.close()
        self._open.clear()


@dataclass
class Call:
    """One call: its link, the browser bound to it, its peer connection and live media."""

    call_id: str
    session_id: str
    token: str
    created_ns: int
    modality: str
    media: CallMedia
    browser_secret: str | None = None
    """Value of the HttpOnly cookie of the browser bound to the link (None until the first GET)."""
    state: str = "created"
    """``created`` -> ``connected`` (first connected peer) -> ``ended``."""
    answered: bool = False
    offers: int = 0
    photos: int = 0
    caller_events: int = 0
    """Events the caller page has posted (``POST /c/{token}/events``), capped by the app."""
    pc: Any = None
    """The current ``RTCPeerConnection`` (None before the first offer and after the end)."""
    codecs: dict[str, str] = field(default_factory=dict)
    recording_video: tuple[str, str, str] | None = None
    """(mode, codec, reason) of the last ``media.recording_video`` written for this call."""
    end_reason: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Serialises offers, hang-up and end of this call."""
    grace_task: Any = None

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    @property
    def connected(self) -> bool:
        return self.pc is not None and self.pc.connectionState == "connected"

    def status(self) -> dict[str, Any]:
        """The JSON of ``GET /api/calls/{call_id}``."""
        m = self.media
        return {
            "call_id": self.call_id,
            "session_id": self.session_id,
            "state": self.state,
            "connected": self.connected,
            "video_codec": m.video_codec or self.codecs.get("video", ""),
            "width": m.width,
            "height": m.height,
            "frames_received": m.frames_received,
            "frames_dropped": m.frames_dropped,
            "audio_frames_received": m.audio_frames_received,
            "photos": self.photos,
            "snapshots": m.snapshots,
            "answered": self.answered,
            "talkback": m.talkback.status() if m.talkback is not None else None,
        }


class Calls:
    """The calls of this server run by id and by link token."""

    def __init__(self) -> None:
        self._by_id: dict[str, Call] = {}
        self._by_token: dict[str, Call] = {}

    def add(self, call: Call) -> None:
        self._by_id[call.call_id] = call
        self._by_token[call.token] = call

    def by_id(self, call_id: str) -> Call:
        try:
            return self._by_id[call_id]
        except KeyError:
            raise NotFound(f"unknown call {call_id!r}; create calls with POST /api/calls") from None

    def session_of(self, call_id: str) -> str | None:
        """The session of call ``call_id``, or None when unknown (the role guard's lookup, issue 7)."""
        call = self._by_id.get(call_id)
        return call.session_id if call is not None else None

    def by_token(self, token: str) -> Call:
        try:
            return self._by_token[token]
        except KeyError:
            raise NotFound("this caller link is not known; ask the control room for a new link") from None

    def all(self) -> list[Call]:
        return list(self._by_id.values())

    def on_event(self, event: ev.Event) -> None:
        """Listener for :class:`Sessions`: notes answers given by the console."""
        if isinstance(event.data, ev.CallAnswered) and event.call_id in self._by_id:
            self._by_id[event.call_id].answered = True
