"""WebRTC helpers of the ingest: ICE configuration, offer checks, SDP edits, the loopback ICE patch.

Everything here is a function of its arguments (the settings are passed in). The only process-wide effect is
:func:`enable_loopback_ice`, which the ingest calls once at start-up in ``loopback`` mode (see its docstring).
"""

from __future__ import annotations

from typing import Any

from aiortc import RTCConfiguration, RTCSessionDescription
from aiortc.sdp import SessionDescription

from workbench import ice
from workbench.ingest.settings import IngestSettings

BITRATE_HINTS = "x-google-min-bitrate=1500;x-google-start-bitrate=1500"
"""Added to every video fmtp line of the answer: aiortc's bandwidth estimate otherwise holds Chromium at about
0.7 Mbit/s, which makes it drop 640x480 to 480x360 (DESIGN.md lesson)."""

_NON_MEDIA_CODECS = {"rtx", "red", "ulpfec", "flexfec-03"}


class OfferError(ValueError):
    """A caller's offer that cannot be answered; the message says what is wrong and what to send instead."""


def rtc_configuration(settings: IngestSettings) -> RTCConfiguration:
    """The explicit ICE configuration for ``settings.ice_mode`` (never aiortc's default public STUN server); see
    :func:`workbench.ice.rtc_configuration`, shared with the simulated callers."""
    return ice.rtc_configuration(
        settings.ice_mode,
        stun_urls=settings.stun_urls,
        turn_url=settings.turn_url,
        turn_user=settings.turn_user,
        turn_password=settings.turn_password,
    )


def browser_ice_servers(settings: IngestSettings) -> list[dict[str, Any]]:
    """The same ICE servers in the shape a browser's ``RTCPeerConnection`` takes (injected into the caller page)."""
    servers: list[dict[str, Any]] = []
    if settings.ice_mode == "stun":
        if settings.stun_urls:
            servers.append({"urls": list(settings.stun_urls)})
        if settings.turn_url:
            servers.append({"urls": [settings.turn_url], "username": settings.turn_user, "credential": settings.turn_password})
    return servers


def enable_loopback_ice() -> None:
    """Make aioice gather a 127.0.0.1 host candidate (process-wide; the ingest calls it once at start-up in
    ``loopback`` mode).

    aioice's ``get_host_addresses`` deliberately skips 127.0.0.1, so with no STUN server and only loopback (tests in
    a private network namespace, a single-machine demo) aiortc would gather no candidate at all and ICE could not
    connect. The patch itself lives in :func:`workbench.ice.enable_loopback_ice`, shared with the simulated callers.
    """
    ice.enable_loopback_ice()


def parse_offer(body: Any) -> RTCSessionDescription:
    """Check a decoded ``POST /offer`` body and return the offer.

    Raises :class:`OfferError` when the body is not an object with string ``sdp`` and ``type == "offer"``, or when
    the SDP does not parse or carries no media section.
    """
    if not isinstance(body, dict):
        raise OfferError('the offer must be a JSON object {"sdp": "...", "type": "offer"}')
    sdp, kind = body.get("sdp"), body.get("type")
    if kind != "offer":
        raise OfferError(f'"type" must be "offer", got {kind!r}; send the SDP from createOffer()')
    if not isinstance(sdp, str) or not sdp.strip():
        raise OfferError('"sdp" must be a non-empty string (the SDP from createOffer())')
    if not sdp.lstrip().startswith("v=0"):
        raise OfferError('"sdp" is not an SDP session description (it must start with "v=0")')
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises assorted errors on bad input
        raise OfferError(f"the SDP could not be parsed: {exc}") from exc
    kinds = [m.kind for m in parsed.media]
    if not any(k in ("audio", "video") for k in kinds):
        raise OfferError("the SDP offer has no audio or video media section; add a camera or microphone track")
    return RTCSessionDescription(sdp=sdp, type="offer")


def offer_media(sdp: str) -> dict[str, bool]:
    """Which kinds (``audio``, ``video``) the offer carries."""
    kinds = {m.kind for m in SessionDescription.parse(sdp).media}
    return {"audio": "audio" in kinds, "video": "video" in kinds}


def keep_loopback_candidates(sdp: str) -> str:
    """Drop every ``a=candidate`` line whose address is not loopback (``loopback`` ICE mode): browsers also offer
    LAN, mDNS (``.local``) and IPv6 candidates, which can only fail there. See :mod:`workbench.ice`."""
    return ice.keep_loopback_candidates(sdp)


def add_bitrate_hints(sdp: str) -> str:
    """Add :data:`BITRATE_HINTS` to every video codec's fmtp line of ``sdp``, creating the line when a codec has
    none (aiortc writes no fmtp for VP8). Retransmission/FEC payload types are left alone."""
    lines = sdp.splitlines()
    out: list[str] = []
    in_video = False
    rtpmap: dict[str, str] = {}
    has_fmtp: set[str] = set()
    # First pass: payload types per video section.
    section_codecs: list[tuple[dict[str, str], set[str]]] = []
    for line in lines:
        if line.startswith("m="):
            in_video = line.startswith("m=video")
            rtpmap, has_fmtp = {}, set()
            section_codecs.append((rtpmap, has_fmtp))
        elif in_video and line.startswith("a=rtpmap:"):
            pt, _, rest = line[len("a=rtpmap:"):].partition(" ")
            rtpmap[pt] = rest.split("/")[0]
        elif in_video and line.startswith("a=fmtp:"):
            has_fmtp.add(line[len("a=fmtp:"):].split(" ")[0])
    section = -1
    in_video = False
    for line in lines:
        if line.startswith("m="):
            section += 1
            in_video = line.startswith("m=video")
        if in_video and section >= 0:
            rtpmap, has_fmtp = section_codecs[section]
            if line.startswith("a=fmtp:"):
                pt, _, params = line[len("a=fmtp:"):].partition(" ")
                if rtpmap.get(pt, "").lower() not in _NON_MEDIA_CODECS and "x-google-min-bitrate" not in params:
                    line = f"a=fmtp:{pt} {params};{BITRATE_HINTS}" if params else f"a=fmtp:{pt} {BITRATE_HINTS}"
                out.append(line)
                continue
            if line.startswith("a=rtpmap:"):
                out.append(line)
                pt = line[len("a=rtpmap:"):].split(" ")[0]
                if pt not in has_fmtp and rtpmap.get(pt, "").lower() not in _NON_MEDIA_CODECS:
                    out.append(f"a=fmtp:{pt} {BITRATE_HINTS}")
                continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def negotiated_codecs(sdp: str) -> dict[str, str]:
    """The codec in use per kind according to an answer SDP (first codec of each active section), e.g.
    ``{"video": "VP8", "audio": "opus"}``."""
    result: dict[str, str] = {}
    for media in SessionDescription.parse(sdp).media:
        if media.kind in ("audio", "video") and media.kind not in result and media.rtp.codecs and media.port != 0:
            for codec in media.rtp.codecs:
                name = codec.mimeType.split("/", 1)[1]
                if name.lower() not in _NON_MEDIA_CODECS:
                    result[media.kind] = name
                    break
    return result

