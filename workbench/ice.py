"""ICE configuration shared by every WebRTC adapter (the ingest and the simulated callers).

Both sides need the same two facts (DESIGN.md, lessons): aiortc without an explicit ``RTCConfiguration`` silently
uses a public STUN server, so one is always built here; and aioice never gathers 127.0.0.1, so the ``loopback``
mode patches aioice's host-address lookup, once per process, to return only 127.0.0.1.
"""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCIceServer

ICE_MODES = ("lan", "stun", "loopback")


def rtc_configuration(
    mode: str,
    *,
    stun_urls: tuple[str, ...] = (),
    turn_url: str = "",
    turn_user: str = "",
    turn_password: str = "",
) -> RTCConfiguration:
    """An explicit ``RTCConfiguration`` for ``mode``.

    ``lan`` and ``loopback`` use no ICE servers (host candidates only); ``stun`` uses ``stun_urls`` and, when
    given, the TURN server. Raises ``ValueError`` for an unknown mode or ``stun`` without any server.
    """
    if mode not in ICE_MODES:
        raise ValueError(f"ICE mode must be one of {', '.join(ICE_MODES)}, got {mode!r}")
    if mode == "loopback":
        enable_loopback_ice()
    if mode != "stun":
        return RTCConfiguration(iceServers=[])
    servers = [RTCIceServer(urls=list(stun_urls))] if stun_urls else []
    if turn_url:
        servers.append(RTCIceServer(urls=[turn_url], username=turn_user, credential=turn_password))
    if not servers:
        raise ValueError("ICE mode 'stun' needs at least one --stun URL or a --turn URL")
    return RTCConfiguration(iceServers=servers)


def enable_loopback_ice() -> None:
    """Make aioice gather only 127.0.0.1 host candidates, in this process, from now on (idempotent).

    Why a patch: ``aioice.ice.get_host_addresses`` skips 127.0.0.1 by design, so two peers on one machine without a
    network (the tests' private namespace, a laptop demo offline) would have no candidate pair at all.
    """
    import aioice.ice

    def loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback_addresses  # type: ignore[assignment]


def is_loopback_candidate(candidate_line: str) -> bool:
    """True when an SDP ``a=candidate`` line's connection address is 127.0.0.1 (or ::1)."""
    parts = candidate_line.split()
    # a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
    return len(parts) >= 6 and parts[4] in ("127.0.0.1", "::1")


def keep_loopback_candidates(sdp: str) -> str:
    """``sdp`` without its non-loopback ``a=candidate`` lines (the offer of a browser in loopback mode also lists
    LAN and mDNS candidates, which aioice would try to reach or resolve)."""
    lines = sdp.splitlines()
    kept = [ln for ln in lines if not ln.startswith("a=candidate:") or is_loopback_candidate(ln)]
    return "\r\n".join(kept) + "\r\n"
