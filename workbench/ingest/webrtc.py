"""WebRTC helpers of the ingest: ICE configuration, offer checks, SDP edits, the loopback ICE patch.

Everything here is a function of its arguments (the settings are passed in). The only process-wide effect is
:func:`enable_loopback_ice`, which the ingest calls once at start-up in ``loopback`` mode (see its docstring).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

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



# --- mDNS candidates -------------------------------------------------------------------------------------------------

MDNS_TIMEOUT_S = 1.5
"""Longest time an offer's ``.local`` (mDNS) candidates may take to resolve before they are skipped, s."""


def mdns_hostnames(sdp: str) -> list[str]:
    """The distinct ``.local`` hostnames of the ``a=candidate`` lines of ``sdp``, in order of appearance.

    Browsers hide their LAN address behind a random ``<uuid>.local`` name until the page has camera permission
    (draft-ietf-mmusic-mdns-ice-candidates)."""
    names: list[str] = []
    for line in sdp.splitlines():
        parts = line.split()
        if line.startswith("a=candidate:") and len(parts) >= 6 and parts[4].lower().endswith(".local"):
            if parts[4] not in names:
                names.append(parts[4])
    return names


async def _aioice_resolve(names: list[str], timeout_s: float) -> dict[str, str | None]:
    """Resolve mDNS ``names`` with aioice's resolver (one multicast query each, answered within ``timeout_s``)."""
    from aioice import mdns

    protocol = await mdns.create_mdns_protocol()
    try:
        results = await asyncio.gather(*(protocol.resolve(n, timeout=timeout_s) for n in names))
    finally:
        await protocol.close()
    return dict(zip(names, results))


async def resolve_mdns_candidates(
    sdp: str,
    *,
    timeout_s: float = MDNS_TIMEOUT_S,
    resolve: Callable[[list[str], float], Awaitable[dict[str, str | None]]] | None = None,
) -> tuple[str, dict[str, str | None]]:
    """``sdp`` with each ``.local`` candidate's hostname replaced by its address, or the line dropped when the name
    does not resolve within ``timeout_s`` (total, not per name).

    Returns ``(sdp, {hostname: address or None})``. Never raises for resolution problems: a network without
    multicast (a loopback-only namespace, a guest Wi-Fi) or a resolver error means every name is skipped, and the
    other candidates still connect. Doing this before aiortc sees the offer bounds the time an offer can take
    (aiortc would otherwise resolve candidates one after another inside ``setRemoteDescription``). ``resolve`` is
    injectable for tests; the default uses aioice's mDNS resolver.
    """
    names = mdns_hostnames(sdp)
    if not names:
        return sdp, {}
    resolver = resolve or _aioice_resolve
    try:
        found = await asyncio.wait_for(resolver(names, timeout_s), timeout_s + 0.5)
    except Exception:  # noqa: BLE001 - OSError without multicast, TimeoutError, resolver bugs: skip the names
        found = {}
    result = {name: found.get(name) for name in names}
    out = []
    for line in sdp.splitlines():
        parts = line.split()
        if line.startswith("a=candidate:") and len(parts) >= 6 and parts[4] in result:
            address = result[parts[4]]
            if address is None:
                continue
            parts[4] = address
            line = " ".join(parts)
        out.append(line)
    return "\r\n".join(out) + "\r\n", result


# --- H264 profiles ---------------------------------------------------------------------------------------------------

_AIORTC_H264_PROFILE = "42e01f"
"""A profile-level-id aiortc negotiates (constrained baseline, level 3.1); it also knows 42001f (baseline)."""


def _video_sections(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) line index ranges of the ``m=video`` sections."""
    starts = [i for i, ln in enumerate(lines) if ln.startswith("m=")] + [len(lines)]
    return [(a, b) for a, b in zip(starts, starts[1:]) if lines[a].startswith("m=video")]


def _aiortc_accepts(codec: str, fmtp: str) -> bool:
    from aiortc.sdp import parse_h264_profile_level_id

    if codec.upper() == "VP8":
        return True
    if codec.upper() != "H264":
        return False
    params = dict(p.split("=", 1) for p in fmtp.split(";") if "=" in p)
    if params.get("packetization-mode", "0") != "1":
        return False
    try:
        profile = parse_h264_profile_level_id(params.get("profile-level-id", "42e01f"))[0]
    except ValueError:
        return False
    return profile in (
        parse_h264_profile_level_id("42e01f")[0],
        parse_h264_profile_level_id("42001f")[0],
    )


def accept_h264_profiles(sdp: str) -> tuple[str, dict[str, str]]:
    """Let aiortc answer a video section whose only H264 codecs use a profile it does not list (High ``640c1f``,
    Main ``4d001f``: iOS Safari can offer such sections).

    aiortc lists only constrained baseline and baseline for H264 and would refuse such an offer, although its
    decoder (FFmpeg's h264) decodes every profile and the ingest only receives. Only in a video section where aiortc
    accepts no codec as offered, each packetization-mode 1 H264 ``profile-level-id`` is rewritten to
    :data:`_AIORTC_H264_PROFILE`. Returns ``(sdp for aiortc, {payload type: original profile-level-id})``; give the
    mapping to :func:`restore_h264_profiles` to put the offered profiles back into the answer (RFC 6184 8.2.2: the
    answer must keep the offered profile).
    """
    lines = sdp.splitlines()
    changed: dict[str, str] = {}
    for start, end in _video_sections(lines):
        rtpmap: dict[str, str] = {}
        fmtp: dict[str, int] = {}
        for i in range(start, end):
            if lines[i].startswith("a=rtpmap:"):
                pt, _, rest = lines[i][len("a=rtpmap:"):].partition(" ")
                rtpmap[pt] = rest.split("/")[0]
            elif lines[i].startswith("a=fmtp:"):
                fmtp[lines[i][len("a=fmtp:"):].split(" ")[0]] = i
        params_of = {pt: lines[i].partition(" ")[2] if pt in fmtp else "" for pt, i in fmtp.items()}
        if any(_aiortc_accepts(name, params_of.get(pt, "")) for pt, name in rtpmap.items()):
            continue
        for pt, name in rtpmap.items():
            if name.upper() != "H264" or pt not in fmtp:
                continue
            params = params_of[pt].split(";")
            if "packetization-mode=1" not in params:
                continue
            for k, p in enumerate(params):
                if p.startswith("profile-level-id="):
                    changed[pt] = p.split("=", 1)[1]
                    params[k] = f"profile-level-id={_AIORTC_H264_PROFILE}"
            lines[fmtp[pt]] = f"a=fmtp:{pt} " + ";".join(params)
    if not changed:
        return sdp, {}
    return "\r\n".join(lines) + "\r\n", changed


def restore_h264_profiles(answer_sdp: str, changed: dict[str, str]) -> str:
    """The answer with each payload type of ``changed`` carrying its offered ``profile-level-id`` again (see
    :func:`accept_h264_profiles`)."""
    if not changed:
        return answer_sdp
    out = []
    for line in answer_sdp.splitlines():
        if line.startswith("a=fmtp:"):
            pt, _, params = line[len("a=fmtp:"):].partition(" ")
            if pt in changed:
                parts = [
                    f"profile-level-id={changed[pt]}" if p.startswith("profile-level-id=") else p
                    for p in params.split(";")
                ]
                line = f"a=fmtp:{pt} " + ";".join(parts)
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def h264_profiles(sdp: str) -> list[str]:
    """The H264 ``profile-level-id`` values of the video sections of ``sdp``, in order (lower case)."""
    result = []
    lines = sdp.splitlines()
    for start, end in _video_sections(lines):
        h264 = set()
        for i in range(start, end):
            if lines[i].startswith("a=rtpmap:") and " H264/" in lines[i].upper():
                h264.add(lines[i][len("a=rtpmap:"):].split(" ")[0])
        for i in range(start, end):
            if lines[i].startswith("a=fmtp:") and lines[i][len("a=fmtp:"):].split(" ")[0] in h264:
                for p in lines[i].partition(" ")[2].split(";"):
                    if p.startswith("profile-level-id="):
                        result.append(p.split("=", 1)[1].lower())
    return result
