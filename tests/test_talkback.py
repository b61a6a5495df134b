"""Talk-back with two real aiortc peers and the ingest (loopback ICE): a caller (moving picture + 440 Hz tone) and a
dispatcher viewer whose "microphone" is a 1000 Hz tone. The caller hears silence until the dispatcher's talk
control is on, then the 1000 Hz tone (not an echo of its own 440 Hz), then silence again; each change is a
``dispatcher.talk`` event; the recording holds video, the caller's audio and the dispatcher's voice as a second
Opus track. Sessions without talk-back refuse the talk control (403) and send the caller nothing."""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from tests.conftest import free_port, poll
from tests.helpers_media import MovingPatternTrack, ToneTrack
from tests.live_call import live_call
from tests.test_ingest_webrtc import events_of
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings

pytestmark = [pytest.mark.webrtc, pytest.mark.slow]

DISPATCHER_HZ = 1000.0


class MicTone(MediaStreamTrack):
    """The dispatcher's "microphone": a 1000 Hz tone, 20 ms frames of 48 kHz mono s16, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self.n * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(960) + self.n * 960) / 48000
        frame = AudioFrame.from_ndarray((np.sin(2 * math.pi * DISPATCHER_HZ * t) * 8000).astype(np.int16)[None, :],
                                        format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts, frame.time_base = self.n * 960, fractions.Fraction(1, 48000)
        self.n += 1
        return frame


class Listener:
    """Drains the audio the ingest sends the caller; keeps (arrival time, rms, samples) per frame."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, float, np.ndarray]] = []
        self.task: asyncio.Task[None] | None = None

    def attach(self, track: Any) -> None:
        if track.kind == "audio":
            self.task = asyncio.ensure_future(self._drain(track))

    async def _drain(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                mono = frame.to_ndarray().astype(np.float64).reshape(-1, len(frame.layout.channels))[:, 0] / 32768
                self.frames.append((time.monotonic(), float(np.sqrt(np.mean(mono ** 2))), mono))
        except MediaStreamError:
            pass

    def since(self, t0: float) -> list[tuple[float, float, np.ndarray]]:
        return [f for f in self.frames if f[0] >= t0]


def dominant_hz(samples: np.ndarray, rate: int = 48000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


async def _caller(url: str, listener: Listener) -> tuple[RTCPeerConnection, aiohttp.ClientSession]:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(url) as resp:
        assert resp.status == 200
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.on("track", listener.attach)
    pc.addTrack(MovingPatternTrack(640, 480, 15))
    pc.addTrack(ToneTrack())
    await pc.setLocalDescription(await pc.createOffer())
    # "talkback": true, as the caller page sends it: this client plays what it receives.
    async with http.post(url + "/offer", json={"sdp": pc.localDescription.sdp, "type": "offer", "talkback": True}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    await pc.setRemoteDescription(RTCSessionDescription(**body))
    return pc, http


async def _viewer(api: aiohttp.ClientSession, base: str, cid: str) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver(MicTone(), direction="sendrecv")
    drains: list[asyncio.Task[None]] = []

    async def drain(track: Any) -> None:  # the caller's video and audio to the dispatcher: consumed, not checked
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    pc.on("track", lambda t: drains.append(asyncio.ensure_future(drain(t))))
    await pc.setLocalDescription(await pc.createOffer())
    async with api.post(f"{base}/api/calls/{cid}/viewer/offer",
                        json={"sdp": pc.localDescription.sdp, "type": "offer"}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    await pc.setRemoteDescription(RTCSessionDescription(**body))
    return pc


def test_dispatcher_talks_to_an_aiortc_caller_and_both_voices_are_recorded(tmp_path: Path) -> None:
    asyncio.run(_talk(tmp_path))


async def _talk(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    listener = Listener()
    async with live_call(root, session={"participant": "p01", "talkback": True}, connect=False) as live:
        sid, cid, call, api, status = live.sid, live.cid, live.call, live.api, live.status
        caller_pc = viewer_pc = caller_http = None
        try:
            async def talk(on: Any) -> tuple[int, dict[str, Any]]:
                async with api.post(f"{live.handle.url}/api/calls/{cid}/talk", json={"on": on}) as resp:
                    return resp.status, await resp.json()

            async with api.get(f"{live.handle.url}/api/calls/{cid}/viewer") as resp:
                page = await resp.text()  # what the console's iframe opens: talk-back needs the WebRTC relay
                assert '"mode": "webrtc"' in page and '"talkback": true' in page

            caller_pc, caller_http = await _caller(call["caller_url"], listener)
            await poll(status, lambda s: s["frames_received"] > 10, 30, "caller video at the ingest")
            # Talk before any dispatcher microphone is connected: refused with a reason, nothing logged.
            code, body = await talk(True)
            assert code == 409 and "microphone" in body["error"], body
            assert (await talk("yes"))[0] == 400

            viewer_pc = await _viewer(api, live.handle.url, cid)
            await poll(status, lambda s: s["talkback"]["microphone_frames"] > 25, 30, "the dispatcher's microphone")
            await poll(lambda: asyncio.sleep(0, listener.frames), lambda f: len(f) > 25, 30, "audio at the caller")

            # Talk off: the caller hears digital silence although the microphone is live.
            t_quiet = time.monotonic()
            await asyncio.sleep(1.0)
            quiet = listener.since(t_quiet)
            assert len(quiet) > 25 and max(rms for _, rms, _ in quiet) < 0.002, [round(r, 4) for _, r, _ in quiet]

            code, body = await talk(True)
            assert code == 200 and body == {"on": True, "microphone": True}, body
            t_on = time.monotonic()
            await poll(lambda: asyncio.sleep(0, listener.since(t_on)),
                       lambda f: sum(rms > 0.05 for _, rms, _ in f) >= 50, 20, "the dispatcher's voice at the caller")
            loud = [s for _, rms, s in listener.since(t_on) if rms > 0.05]
            hz = dominant_hz(np.concatenate(loud[-25:]))
            assert abs(hz - DISPATCHER_HZ) < 20, \
                f"the caller hears {hz:.0f} Hz, the dispatcher says {DISPATCHER_HZ:.0f}"

            code, body = await talk(False)
            assert code == 200 and body["on"] is False
            await asyncio.sleep(0.5)  # frames already on their way
            t_off = time.monotonic()
            await asyncio.sleep(1.0)
            after = listener.since(t_off)
            assert len(after) > 25 and max(rms for _, rms, _ in after) < 0.002

            # The dispatcher's page goes away while talking (a console reload, a crash): talk goes off by itself.
            assert (await talk(True))[0] == 200
            await viewer_pc.close()
            st = await poll(status, lambda s: not s["talkback"]["talking"], 30, "talk off after the microphone ended")
            assert st["talkback"]["microphone"] is False

            await caller_http.post(call["caller_url"] + "/hangup")
            await poll(status, lambda s: s["state"] == "ended", 20, "the call ended")
        finally:
            for pc in (viewer_pc, caller_pc):
                if pc is not None:
                    await pc.close()
            if caller_http is not None:
                await caller_http.close()

    events = events_of(root, sid)
    types = [e["type"] for e in events]
    policy = [e["data"] for e in events if e["type"] == "media.talkback_policy"]
    assert policy == [{"allowed": True, "origin": "request"}]
    talks = [(e["source"], e["data"]) for e in events if e["type"] == "dispatcher.talk"]
    assert talks == [("console", {"on": True, "origin": "toggle", "microphone": True}),
                     ("console", {"on": False, "origin": "toggle", "microphone": True}),
                     ("console", {"on": True, "origin": "toggle", "microphone": True}),
                     ("ingest", {"on": False, "origin": "microphone_ended", "microphone": False})], talks
    assert types.index("dispatcher.talk") < types.index("call.ended")

    segments = sorted((root / sid / "media" / cid).glob("rec-*.mkv"))
    assert segments, "no recording"
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(segments[0])],
        capture_output=True, text=True, check=True).stdout)
    streams = [(s["codec_type"], s["codec_name"], s.get("tags", {}).get("title", "")) for s in probe["streams"]]
    assert streams == [("video", "h264", ""), ("audio", "opus", "caller"), ("audio", "opus", "dispatcher")], streams
    # The dispatcher's track holds the 1000 Hz voice for about the time talk was on (~1.5-3 s), silence elsewhere.
    with av.open(str(segments[0])) as container:
        talk_stream = container.streams.audio[1]
        pcm = np.concatenate([first_channel(f) for f in container.decode(talk_stream)])
    window = 960
    pcm = pcm[: len(pcm) // window * window]
    rms = np.sqrt(np.mean(pcm.reshape(-1, window) ** 2, axis=1))
    loud_s = float(np.sum(rms > 0.05) * window / 48000)
    assert 1.0 < loud_s < 6.0, f"{loud_s:.2f} s of the dispatcher's voice in the recording"
    assert abs(dominant_hz(pcm[np.repeat(rms > 0.05, window)][:9600]) - DISPATCHER_HZ) < 20


def first_channel(frame: Any) -> np.ndarray:
    """The first channel of a decoded audio frame as float64 in [-1, 1] (planar float or packed s16)."""
    data = frame.to_ndarray()
    if frame.format.is_planar:
        mono = data[0]
    else:
        mono = data.reshape(-1, len(frame.layout.channels))[:, 0]
    return mono.astype(np.float64) / (32768.0 if mono.dtype == np.int16 else 1.0)


def audio_direction(sdp: str) -> str:
    section = sdp[sdp.index("m=audio"):]
    section = section[: section.index("m=", 2)] if "m=" in section[2:] else section
    return next(d for d in ("sendrecv", "sendonly", "recvonly", "inactive") if f"a={d}" in section)


def test_only_callers_that_listen_get_the_dispatchers_voice(tmp_path: Path) -> None:
    """A simulated aiortc caller never reads incoming tracks: sending it the voice would pile frames up in its
    receive queue. Only an offer that says "talkback": true (the caller page) gets an audio track back."""

    async def run() -> dict[bool, str]:
        root = tmp_path / "rec"
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=root, ice_mode="loopback"),
                                    Recordings(root))
        directions: dict[bool, str] = {}
        try:
            async with aiohttp.ClientSession() as api:
                async with api.post(handle.url + "/api/sessions", json={"participant": "p", "talkback": True}) as r:
                    sid = (await r.json())["session_id"]
                for listens in (False, True):
                    async with api.post(handle.url + "/api/calls", json={"session_id": sid}) as r:
                        url = (await r.json())["caller_url"]
                    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                        async with http.get(url) as resp:
                            assert resp.status == 200
                        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                        pc.addTrack(ToneTrack())
                        await pc.setLocalDescription(await pc.createOffer())
                        offer = {"sdp": pc.localDescription.sdp, "type": "offer"} | ({"talkback": True} if listens else {})
                        async with http.post(url + "/offer", json=offer) as resp:
                            directions[listens] = audio_direction((await resp.json())["sdp"])
                        await pc.close()
        finally:
            await handle.stop()
        return directions

    assert asyncio.run(run()) == {False: "recvonly", True: "sendrecv"}


def test_sessions_without_talkback_refuse_the_talk_control(tmp_path: Path) -> None:
    async def run() -> None:
        root = tmp_path / "rec"
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=root, ice_mode="loopback"),
                                    Recordings(root))
        try:
            async with aiohttp.ClientSession() as api:
                async with api.post(handle.url + "/api/sessions", json={"participant": "p02", "talkback": "on"}) as r:
                    assert r.status == 400 and "talkback" in (await r.json())["error"]
                async with api.post(handle.url + "/api/sessions", json={"participant": "p02"}) as r:
                    sid = (await r.json())["session_id"]
                async with api.post(handle.url + "/api/calls", json={"session_id": sid}) as r:
                    cid = (await r.json())["call_id"]
                async with api.post(f"{handle.url}/api/calls/{cid}/talk", json={"on": True}) as r:
                    assert r.status == 403 and "--talkback" in (await r.json())["error"]
                async with api.get(f"{handle.url}/api/calls/{cid}/viewer?mode=webrtc") as r:
                    assert '"talkback": false' in await r.text()
                async with api.get(f"{handle.url}/api/calls/{cid}/viewer") as r:
                    assert '"mode": "jpeg"' in await r.text()  # the JPEG stream stays the default
                async with api.get(f"{handle.url}/api/calls/{cid}/viewer?mode=mjpeg") as r:
                    assert r.status == 400 and "jpeg" in (await r.json())["error"]
                async with api.get(f"{handle.url}/api/calls/{cid}") as r:
                    assert (await r.json())["talkback"]["allowed"] is False
        finally:
            await handle.stop()
        types = [e["type"] for e in events_of(root, sid)]
        assert "media.talkback_policy" not in types and "dispatcher.talk" not in types

    asyncio.run(run())
