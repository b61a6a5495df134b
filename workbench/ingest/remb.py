"""Fewer REMB packets while the ingest is behind (issue 4).

aiortc's receiver feeds each video RTP packet to its remote bitrate estimator (``aiortc/rate.py``,
``RemoteBitrateEstimator.add``) and sends an RTCP REMB whenever ``add`` returns an estimate. While the estimator
detects overuse, ``add`` returns one for every packet. Overuse is what the estimator sees when the ingest's event
loop falls behind, so a loaded ingest then spends its time protecting and sending a REMB per packet (a py-spy
profile at 24 callers: about 29 % of the loop's samples) and falls further behind.

libwebrtc sends REMB through a throttle (``modules/congestion_controller/remb_throttler.cc``): at most one every
200 ms, except that a new estimate more than 3 % below the last one sent goes at once, so a sender still hears of
congestion immediately. :class:`RembThrottle` is that rule; :func:`throttle_remb` puts it between one aiortc
receiver and its estimator. The estimator still sees every packet; only what reaches the wire changes.

This touches one private attribute of aiortc 1.16's ``RTCRtpReceiver`` (``__remote_bitrate_estimator``). When
aiortc changes it, :func:`throttle_remb` returns None and the receiver keeps aiortc's behaviour;
``tests/test_remb.py`` checks the installed aiortc still has it.
"""

from __future__ import annotations

from typing import Any

ESTIMATOR_ATTRIBUTE = "_RTCRtpReceiver__remote_bitrate_estimator"
"""Name-mangled private attribute of aiortc's ``RTCRtpReceiver`` holding its ``RemoteBitrateEstimator`` (video)."""

REMB_SEND_INTERVAL_MS = 200
"""Least time between two REMBs that do not lower the estimate (libwebrtc ``kRembSendInterval``)."""

REMB_DECREASE_SENT_AT_ONCE = 0.03
"""A new estimate below the last one sent by more than this fraction goes at once (libwebrtc's 103 % rule)."""


class RembThrottle:
    """Decides which of a receiver's REMB estimates are sent: the first; any at least :data:`REMB_SEND_INTERVAL_MS`
    after the last one sent; and any lower than the last one sent by more than :data:`REMB_DECREASE_SENT_AT_ONCE`
    (libwebrtc's ``RembThrottler``). Times in ms on aiortc's arrival clock, which is wall-clock time: a clock that
    stepped backwards makes the next estimate due at once rather than holding estimates until it catches up. Bitrates
    in bit/s. Counts what it passed (``sent``) and held back (``held``)."""

    def __init__(self) -> None:
        self.last_sent_ms: int | None = None
        self.last_sent_bps = 0
        self.sent = 0
        self.held = 0

    def passes(self, bitrate_bps: int, now_ms: int) -> bool:
        """True when the estimate ``bitrate_bps`` at ``now_ms`` is to be sent (and it is then the last one sent)."""
        due = self.last_sent_ms is None or not 0 <= now_ms - self.last_sent_ms < REMB_SEND_INTERVAL_MS
        lower = bitrate_bps * (1 + REMB_DECREASE_SENT_AT_ONCE) < self.last_sent_bps
        if due or lower:
            self.last_sent_ms, self.last_sent_bps = now_ms, bitrate_bps
            self.sent += 1
            return True
        self.held += 1
        return False


class _ThrottledEstimator:
    """Stands in for aiortc's ``RemoteBitrateEstimator`` on one receiver: every packet still updates the estimator;
    ``add`` returns the estimate only when :class:`RembThrottle` lets it through."""

    def __init__(self, estimator: Any, throttle: RembThrottle) -> None:
        self.estimator = estimator
        self.throttle = throttle

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int) -> Any:
        remb = self.estimator.add(arrival_time_ms=arrival_time_ms, abs_send_time=abs_send_time,
                                  payload_size=payload_size, ssrc=ssrc)
        if remb is None or not self.throttle.passes(remb[0], arrival_time_ms):
            return None
        return remb

    def __getattr__(self, name: str) -> Any:  # anything else aiortc may read stays the estimator's
        return getattr(self.estimator, name)


def throttle_remb(receiver: Any) -> RembThrottle | None:
    """Throttle the REMBs of one aiortc ``RTCRtpReceiver`` (see the module's docstring); returns the throttle, or
    None when the receiver has no estimator (audio), is throttled already, or aiortc no longer keeps the estimator
    where this module expects it (the receiver then sends as aiortc does). Call it once the receiver exists (after
    ``setRemoteDescription``) and before media flows."""
    estimator = getattr(receiver, ESTIMATOR_ATTRIBUTE, None)
    if estimator is None or isinstance(estimator, _ThrottledEstimator) or not callable(getattr(estimator, "add", None)):
        return None
    throttle = RembThrottle()
    setattr(receiver, ESTIMATOR_ATTRIBUTE, _ThrottledEstimator(estimator, throttle))
    return throttle
