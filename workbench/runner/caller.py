"""A simulated caller: an aiortc client that opens a one-time caller link like a browser would.

It GETs the caller URL (which binds the link to its cookie jar), offers live video and/or audio read from files,
and uploads photos through the same multipart endpoint the caller page uses. Used by ``workbench caller`` and by
the scenario runner (one ``workbench caller`` process per call, so media encoding spreads over the cores).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from workbench.ice import rtc_configuration

log = logging.getLogger(__name__)


class CallerError(RuntimeError):
    """The ingest refused the caller (bad link, refused offer or photo) or the connection did not come up."""


@dataclass(frozen=True)
class PhotoUpload:
    """A photo to attach ``at_s`` seconds after the caller opened the link."""

    path: Path
    at_s: float = 0.0


@dataclass
class CallerReport:
    """What a simulated caller did: final connection state, media sent and the ingest's answers to photo uploads."""

    connection_state: str = "new"
    video_sent: bool = False
    audio_sent: bool = False
    photos: list[dict] = field(default_factory=list)
    connected_after_s: float | None = None


class SimulatedCaller:
    """One caller on one link. Use as ``async with SimulatedCaller(url) as caller: ...``.

    ``ice_mode`` as in ``workbench.ice.rtc_configuration``; ``loopback`` for a caller on the same machine.
    """

    def __init__(self, caller_url: str, *, ice_mode: str = "loopback", connect_timeout_s: float = 20.0) -> None:
        self.caller_url = caller_url.rstrip("/")
        self.report = CallerReport()
        self._ice_mode = ice_mode
        self._connect_timeout_s = connect_timeout_s
        self._http: aiohttp.ClientSession | None = None
        self._pc: RTCPeerConnection | None = None
        self._players: list[MediaPlayer] = []
        self._t0 = time.monotonic()

    async def __aenter__(self) -> "SimulatedCaller":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    async def open(self) -> None:
        """GET the caller page so the link is bound to this caller's cookie. Raises :class:`CallerError`."""
        # unsafe=True: the ingest is addressed by IP (127.0.0.1), for which aiohttp's default jar drops cookies.
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self._http.get(self.caller_url) as resp:
            if resp.status != 200:
                raise CallerError(f"caller link refused: HTTP {resp.status}: {(await resp.text())[:200]}")
        self._t0 = time.monotonic()

    async def start_media(self, video: Path | None = None, audio: Path | None = None, *, loop_video: bool = True) -> None:
        """Offer the given media files as live tracks and wait until connected.

        ``video`` is any file PyAV reads (played in a loop by default); ``audio`` a sound file played once (or the
        video's own sound when ``audio`` is None). Raises :class:`CallerError` when the offer is refused or the
        connection is not up within ``connect_timeout_s``.
        """
        if self._http is None:
            raise CallerError("open() the link before starting media")
        if video is None and audio is None:
            raise CallerError("start_media needs a video or an audio file")
        await self._close_pc()
        pc = RTCPeerConnection(rtc_configuration(self._ice_mode))
        self._pc = pc
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            self.report.connection_state = pc.connectionState
            if pc.connectionState == "connected":
                connected.set()

        if video is not None:
            player = MediaPlayer(str(video), loop=loop_video)
            self._players.append(player)
            if player.video is None:
                raise CallerError(f"{video} has no video stream")
            pc.addTrack(player.video)
            self.report.video_sent = True
            if audio is None and player.audio is not None:
                pc.addTrack(player.audio)
                self.report.audio_sent = True
        if audio is not None:
            sound = MediaPlayer(str(audio))
            self._players.append(sound)
            if sound.audio is None:
                raise CallerError(f"{audio} has no audio stream")
            pc.addTrack(sound.audio)
            self.report.audio_sent = True
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        async with self._http.post(f"{self.caller_url}/offer", json=offer) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                raise CallerError(f"offer refused: HTTP {resp.status}: {body.get('error', body)}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))
        try:
            await asyncio.wait_for(connected.wait(), self._connect_timeout_s)
        except asyncio.TimeoutError:
            raise CallerError(
                f"no connection within {self._connect_timeout_s:.0f} s (state {pc.connectionState})"
            ) from None
        self.report.connected_after_s = round(time.monotonic() - self._t0, 3)

    async def send_photo(self, path: Path) -> dict:
        """Upload one photo (multipart field ``photo``); returns the ingest's JSON answer. Raises CallerError."""
        if self._http is None:
            raise CallerError("open() the link before sending photos")
        form = aiohttp.FormData()
        form.add_field("photo", path.read_bytes(), filename=path.name, content_type="application/octet-stream")
        async with self._http.post(f"{self.caller_url}/photos", data=form) as resp:
            body = await resp.json(content_type=None)
            if resp.status not in (200, 201):
                raise CallerError(f"photo {path.name} refused: HTTP {resp.status}: {body.get('error', body)}")
        self.report.photos.append(body)
        return body

    async def hang_up(self) -> None:
        """Stop media, close the peer connection and the HTTP session (idempotent)."""
        await self._close_pc()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _close_pc(self) -> None:
        for player in self._players:
            for track in (player.audio, player.video):
                if track is not None:
                    track.stop()
        self._players.clear()
        if self._pc is not None:
            await self._pc.close()
            self.report.connection_state = "closed"
            self._pc = None


async def stream_call(
    caller_url: str,
    *,
    video: Path | None = None,
    audio: Path | None = None,
    photos: Sequence[PhotoUpload] = (),
    video_at_s: float = 0.0,
    duration_s: float | None = None,
    ice_mode: str = "loopback",
    stop: asyncio.Event | None = None,
) -> CallerReport:
    """Play one caller: open the link, start media ``video_at_s`` s after opening, upload ``photos`` at their
    times, and hang up after ``duration_s`` s or when ``stop`` is set (whichever first; forever when neither).

    Raises :class:`CallerError` when the ingest refuses the link, the offer or a photo.
    """
    stop = stop or asyncio.Event()
    caller = SimulatedCaller(caller_url, ice_mode=ice_mode)
    await caller.open()
    try:
        t0 = time.monotonic()

        async def photos_at_their_times() -> None:
            for photo in sorted(photos, key=lambda p: p.at_s):
                await asyncio.sleep(max(0.0, photo.at_s - (time.monotonic() - t0)))
                await caller.send_photo(photo.path)

        async def media_at_its_time() -> None:
            if video is None and audio is None:
                return
            await asyncio.sleep(video_at_s)
            await caller.start_media(video, audio)

        work = asyncio.ensure_future(asyncio.gather(photos_at_their_times(), media_at_its_time()))
        ends = [asyncio.ensure_future(stop.wait())]
        if duration_s is not None:
            ends.append(asyncio.ensure_future(asyncio.sleep(duration_s)))
        try:
            done, _ = await asyncio.wait([work, *ends], return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                work.result()  # a refused photo or offer is raised here
                await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (work, *ends):
                fut.cancel()
            await asyncio.gather(work, *ends, return_exceptions=True)
    finally:
        await caller.hang_up()
    return caller.report
