"""One live call on an in-process ingest (loopback ICE) for the WebRTC tests: :func:`live_call` starts the ingest,
creates the session and the call, and connects an aiortc :class:`Caller`; it stops them all again afterwards."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.conftest import free_port
from tests.helpers_media import MovingPatternTrack, ToneTrack
from workbench.ingest.server import IngestHandle, start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings


class Caller:
    """An aiortc caller bound to a caller link (cookie jar of its own)."""

    def __init__(self, caller_url: str) -> None:
        self.caller_url = caller_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.pc: RTCPeerConnection | None = None
        self.answer_sdp = ""

    async def open(self) -> None:
        async with self.http.get(self.caller_url) as resp:
            assert resp.status == 200

    def make_video(self) -> Any:
        """The video track offered: a moving 640x480 pattern at 15 fps (subclasses offer other tracks)."""
        return MovingPatternTrack(640, 480, 15)

    def make_audio(self) -> Any:
        """The audio track offered: a 440 Hz tone (subclasses offer other tracks)."""
        return ToneTrack()

    async def connect(self) -> RTCPeerConnection:
        # An explicit configuration: without one aiortc would use a public STUN server.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video, self.audio = self.make_video(), self.make_audio()
        pc.addTrack(self.video)
        pc.addTrack(self.audio)
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
        async with self.http.post(self.caller_url + "/offer", json=offer) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        self.answer_sdp = body["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(**body))
        self.pc = pc
        return pc

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        await self.http.close()


@dataclass
class LiveCall:
    """What :func:`live_call` yields: the running ingest, an API client, the session id, the call as ``POST
    /api/calls`` returned it (``call_id``, ``session_id``, ``caller_url``) and the connected caller (None when the
    test connects its own)."""

    handle: IngestHandle
    api: aiohttp.ClientSession
    sid: str
    call: dict[str, Any]
    caller: Caller | None

    @property
    def cid(self) -> str:
        return self.call["call_id"]

    async def status(self) -> dict[str, Any]:
        """The call's status, ``GET /api/calls/{call_id}`` (what the console polls)."""
        async with self.api.get(f"{self.handle.url}/api/calls/{self.cid}") as resp:
            return await resp.json()


@asynccontextmanager
async def live_call(root: Path, *, session: dict[str, Any] | None = None, call: dict[str, Any] | None = None,
                    caller_cls: Callable[[str], Caller] = Caller, connect: bool = True,
                    **settings: Any) -> AsyncIterator[LiveCall]:
    """Start an ingest recording to ``root`` on a free port with loopback ICE (``settings``: further
    :class:`IngestSettings` fields), create a session with the JSON body ``session`` (None: no session, the call
    gets the ingest's own ad-hoc one), create a call in it (``call``: further fields of the request) and, when
    ``connect``, open the caller link and connect ``caller_cls(caller_url)`` (a :class:`Caller` subclass, or a
    ``functools.partial`` of one for constructor arguments). Yields a :class:`LiveCall`; on leaving, closes the
    caller and the API client and stops the ingest (also when the body raised; a body that stopped the ingest
    itself is fine).

    Raises AssertionError when the ingest refuses the session or the call (not 201), or the caller link or offer
    (:meth:`Caller.open`, :meth:`Caller.connect`)."""
    handle = await start_ingest(IngestSettings(**{"port": free_port(), "recordings": root, "ice_mode": "loopback"}
                                               | settings), Recordings(root))
    api = aiohttp.ClientSession()
    caller = None
    try:
        body = dict(call or {})
        if session is not None:
            async with api.post(handle.url + "/api/sessions", json=session) as resp:
                created = await resp.json()
                assert resp.status == 201, created
            body["session_id"] = created["session_id"]
        async with api.post(handle.url + "/api/calls", json=body) as resp:
            made = await resp.json()
            assert resp.status == 201, made
        if connect:
            caller = caller_cls(made["caller_url"])
            await caller.open()
            await caller.connect()
        yield LiveCall(handle, api, made["session_id"], made, caller)
    finally:
        if caller is not None:
            await caller.close()
        await api.close()
        await handle.stop()
