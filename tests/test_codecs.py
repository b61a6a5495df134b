"""Codecs and ICE of the ingest with real aiortc callers: VP8 and H264-only offers (profile-level-ids 42e01f,
42001f as aiortc offers them after ``setCodecPreferences``; 640c1f, High profile as iOS Safari can offer it, by SDP
munging), mDNS (``.local``) candidates resolved or skipped within a bounded time, and an explicit ICE configuration
for every peer connection the ingest makes (never aiortc's default public STUN server)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from tests.conftest import REPO, free_port, poll
from tests.helpers_media import MovingPatternTrack
from workbench.ingest import app as ingest_app
from workbench.ingest import webrtc
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings

MDNS_CANDIDATE = "a=candidate:3 1 udp 2122260223 3f2a6c1e-7b1d-4c55-9a10-1b6bbf1f4a1e.local 54321 typ host generation 0"




def h264_only(profile: str) -> list[Any]:
    """aiortc's video capabilities restricted to H264 with ``profile`` (plus its RTX), as iOS offers H264 only."""
    caps = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in caps if c.mimeType == "video/H264" and c.parameters.get("profile-level-id") == profile]
    assert chosen, f"aiortc offers no H264 {profile}"
    return chosen + [c for c in caps if c.mimeType == "video/rtx"]


async def call_with_offer(tmp_path: Path, make_offer, *, ice_mode: str = "loopback", settings_kw: dict | None = None,
                          fix_answer=lambda sdp: sdp, expect_frames: bool = True) -> dict[str, Any]:
    """Start an ingest, create a call, open the link, post the offer ``make_offer(pc)`` returns, apply the answer
    (after ``fix_answer``) and wait for video frames. Returns the status, the answer SDP and the offer's duration."""
    root = tmp_path / "rec"
    settings = IngestSettings(port=free_port(), recordings=root, ice_mode=ice_mode, **(settings_kw or {}))
    handle = await start_ingest(settings, Recordings(root))
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        async with http.post(handle.url + "/api/calls") as resp:
            call = await resp.json()
        async with http.get(call["caller_url"]) as resp:
            assert resp.status == 200
        offer_sdp = await make_offer(pc)
        started = time.monotonic()
        async with http.post(call["caller_url"] + "/offer", json={"sdp": offer_sdp, "type": "offer"}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        offer_s = time.monotonic() - started
        await pc.setRemoteDescription(RTCSessionDescription(sdp=fix_answer(body["sdp"]), type="answer"))

        async def status() -> dict[str, Any]:
            async with http.get(f"{handle.url}/api/calls/{call['call_id']}") as resp:
                return await resp.json()

        st = await poll(status, lambda s: s["frames_received"] >= 10, 20, "video frames") if expect_frames else await status()
        return {"status": st, "answer": body["sdp"], "offer_s": offer_s}
    finally:
        await pc.close()
        await http.close()
        await handle.stop()


def video_offer(codecs: list[Any] | None = None, munge=lambda sdp: sdp):
    async def make(pc: RTCPeerConnection) -> str:
        transceiver = pc.addTransceiver(MovingPatternTrack(320, 240, 15), direction="sendonly")
        if codecs is not None:
            transceiver.setCodecPreferences(codecs)
        await pc.setLocalDescription(await pc.createOffer())
        return munge(pc.localDescription.sdp)

    return make


def video_rtpmaps(sdp: str) -> list[str]:
    section = sdp[sdp.index("m=video"):]
    return re.findall(r"a=rtpmap:\d+ ([A-Za-z0-9-]+)/", section)


@pytest.mark.webrtc
@pytest.mark.parametrize("profile", ["42e01f", "42001f"])
def test_h264_only_offer_from_codec_preferences(tmp_path: Path, profile: str) -> None:
    async def run() -> dict[str, Any]:
        return await call_with_offer(tmp_path, video_offer(h264_only(profile)))

    offer_check = asyncio.run(run())
    st = offer_check["status"]
    assert st["video_codec"] == "H264" and (st["width"], st["height"]) == (320, 240)
    assert webrtc.h264_profiles(offer_check["answer"]) == [profile], "the answer keeps the offered profile"
    assert set(video_rtpmaps(offer_check["answer"])) <= {"H264", "rtx"}


@pytest.mark.webrtc
def test_vp8_offer(tmp_path: Path) -> None:
    vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in ("video/VP8", "video/rtx")]
    result = asyncio.run(call_with_offer(tmp_path, video_offer(vp8)))
    assert result["status"]["video_codec"] == "VP8"
    assert set(video_rtpmaps(result["answer"])) <= {"VP8", "rtx"}


@pytest.mark.webrtc
def test_h264_high_profile_only_offer_is_answered_with_its_profile(tmp_path: Path) -> None:
    """An offer whose only video codec is H264 High 3.1 (640c1f), as iOS Safari can send: aiortc alone refuses it
    (it lists only baseline profiles); the ingest answers with 640c1f and decodes the stream. The aiortc caller
    cannot encode High, so it sends constrained baseline (a subset any High decoder decodes) under the answer's
    payload type: the caller's side of the munging is the test's, the ingest's side is the product's."""

    def to_high(sdp: str) -> str:
        assert webrtc.h264_profiles(sdp) == ["42e01f"]
        return sdp.replace("profile-level-id=42e01f", "profile-level-id=640c1f")

    def back_to_baseline(sdp: str) -> str:
        return sdp.replace("profile-level-id=640c1f", "profile-level-id=42e01f")

    result = asyncio.run(call_with_offer(tmp_path, video_offer(h264_only("42e01f"), to_high), fix_answer=back_to_baseline))
    assert webrtc.h264_profiles(result["answer"]) == ["640c1f"]
    assert result["status"]["video_codec"] == "H264" and result["status"]["frames_received"] >= 10


def test_h264_profile_rewrite_only_where_needed() -> None:
    base = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\nc=IN IP4 0.0.0.0\r\n"
            "a=rtpmap:96 H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f\r\n"
            "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
            "a=rtpmap:98 H264/90000\r\na=fmtp:98 packetization-mode=1;profile-level-id=4d001f\r\n")
    munged, changed = webrtc.accept_h264_profiles(base)
    assert changed == {"96": "640c1f", "98": "4d001f"}
    assert webrtc.h264_profiles(munged) == ["42e01f", "42e01f"]
    restored = webrtc.restore_h264_profiles(munged, changed)
    assert webrtc.h264_profiles(restored) == ["640c1f", "4d001f"]
    # A section aiortc can already answer (VP8 or a baseline H264 beside High) is left exactly as offered.
    with_vp8 = base.replace("96 97 98", "96 97 98 100") + "a=rtpmap:100 VP8/90000\r\n"
    assert webrtc.accept_h264_profiles(with_vp8) == (with_vp8, {})
    with_baseline = base.replace("96 97 98", "96 97 98 102") + (
        "a=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n")
    assert webrtc.accept_h264_profiles(with_baseline) == (with_baseline, {})
    # packetization-mode 0 (single NAL unit) is something aiortc cannot take at all: untouched, refused later.
    mode0 = base.replace("packetization-mode=1;", "packetization-mode=0;")
    assert webrtc.accept_h264_profiles(mode0)[1] == {}


# --- mDNS candidates ------------------------------------------------------------------------------------------------


def with_candidate(sdp: str, line: str) -> str:
    """``sdp`` with ``line`` added to its first media section (after the section's first attribute)."""
    lines = sdp.splitlines()
    index = next(i for i, ln in enumerate(lines) if ln.startswith("a=")  and i > next(
        j for j, l2 in enumerate(lines) if l2.startswith("m=")))
    return "\r\n".join(lines[:index] + [line] + lines[index:]) + "\r\n"


def test_mdns_candidates_resolved_dropped_or_bounded() -> None:
    sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" + MDNS_CANDIDATE + "\r\n" + (
        "a=candidate:4 1 udp 2122194687 127.0.0.1 40000 typ host\r\n")
    name = MDNS_CANDIDATE.split()[4]
    assert webrtc.mdns_hostnames(sdp) == [name]

    async def resolved(names: list[str], timeout: float) -> dict[str, str | None]:
        return {n: "192.168.1.23" for n in names}

    async def unknown(names: list[str], timeout: float) -> dict[str, str | None]:
        return {n: None for n in names}

    async def broken(names: list[str], timeout: float) -> dict[str, str | None]:
        raise OSError("no multicast route")

    async def hangs(names: list[str], timeout: float) -> dict[str, str | None]:
        await asyncio.sleep(60)
        return {}

    async def run() -> None:
        out, found = await webrtc.resolve_mdns_candidates(sdp, resolve=resolved)
        assert found == {name: "192.168.1.23"} and "192.168.1.23 54321 typ host" in out and ".local" not in out
        for resolver in (unknown, broken):
            out, found = await webrtc.resolve_mdns_candidates(sdp, resolve=resolver)
            assert found == {name: None} and ".local" not in out and "127.0.0.1 40000" in out
        started = time.monotonic()
        out, found = await webrtc.resolve_mdns_candidates(sdp, resolve=hangs, timeout_s=0.3)
        assert time.monotonic() - started < 1.5 and found == {name: None} and ".local" not in out
        assert await webrtc.resolve_mdns_candidates("v=0\r\n") == ("v=0\r\n", {})

    asyncio.run(run())


@pytest.mark.webrtc
@pytest.mark.parametrize("ice_mode", ["lan", "loopback"])
def test_offer_with_an_mdns_candidate(tmp_path: Path, ice_mode: str) -> None:
    """A browser's ``.local`` candidate (here a name nobody answers for) never breaks or stalls an offer: ``lan``
    tries aioice's real mDNS resolver within MDNS_TIMEOUT_S, ``loopback`` drops it; the real candidate connects."""
    result = asyncio.run(call_with_offer(tmp_path, video_offer(munge=lambda s: with_candidate(s, MDNS_CANDIDATE)),
                                         ice_mode=ice_mode, expect_frames=(ice_mode == "loopback")))
    assert result["offer_s"] < webrtc.MDNS_TIMEOUT_S + 1.5
    assert result["answer"].startswith("v=0")


# --- explicit ICE configuration --------------------------------------------------------------------------------------


@pytest.mark.webrtc
@pytest.mark.parametrize(
    ("ice_mode", "settings_kw", "expected"),
    [
        ("loopback", {}, []),
        ("lan", {}, []),
        ("stun", {"stun_urls": ("stun:127.0.0.1:3478",)}, [["stun:127.0.0.1:3478"]]),
        ("stun", {"stun_urls": ("stun:127.0.0.1:3478",), "turn_url": "turn:127.0.0.1:3478", "turn_user": "u",
                  "turn_password": "p"}, [["stun:127.0.0.1:3478"], ["turn:127.0.0.1:3478"]]),
    ],
)
def test_every_peer_connection_gets_an_explicit_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ice_mode: str, settings_kw: dict, expected: list
) -> None:
    made: list[Any] = []

    class Recording(RTCPeerConnection):
        def __init__(self, configuration: Any = None) -> None:
            made.append(configuration)
            super().__init__(configuration)

    monkeypatch.setattr(ingest_app, "RTCPeerConnection", Recording)
    asyncio.run(call_with_offer(tmp_path, video_offer(), ice_mode=ice_mode, settings_kw=settings_kw,
                                expect_frames=False))
    assert made, "the ingest made a peer connection"
    for configuration in made:
        assert isinstance(configuration, RTCConfiguration), "no configuration means aiortc's public STUN server"
        assert [server.urls for server in configuration.iceServers] == expected


def test_no_peer_connection_without_a_configuration_in_the_code() -> None:
    """Every ``RTCPeerConnection(...)`` in the package and its tests names a configuration."""
    offenders = []
    for path in list((REPO / "workbench").rglob("*.py")) + list((REPO / "tests").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"RTCPeerConnection\(\s*\)", line):
                offenders.append(f"{path.relative_to(REPO)}:{number}")
    assert not offenders, offenders
    page = (REPO / "workbench" / "ingest" / "static" / "caller.js").read_text(encoding="utf-8")
    assert "new RTCPeerConnection({ iceServers: cfg.iceServers || [] })" in page, "the browser gets ours too"
