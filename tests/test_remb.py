"""REMB throttling (workbench.ingest.remb): libwebrtc's rule, on aiortc's own estimator, in a real ingest."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rate import RemoteBitrateEstimator

from tests.conftest import poll
from tests.live_call import live_call
from workbench.ingest import remb
from workbench.ingest.app import INGEST
from workbench.ingest.remb import REMB_SEND_INTERVAL_MS, RembThrottle, throttle_remb


def test_throttle_sends_the_first_then_one_per_interval_and_decreases_at_once() -> None:
    throttle = RembThrottle()
    assert throttle.passes(1_000_000, 0)
    assert not throttle.passes(1_000_000, 50)  # same estimate, too soon
    assert not throttle.passes(980_000, 100)  # 2 % lower: waits
    assert throttle.passes(960_000, 150)  # 4 % lower than the last sent (1 000 000): at once
    assert not throttle.passes(2_000_000, 300)  # higher, 150 ms after the last sent
    assert throttle.passes(2_000_000, 150 + REMB_SEND_INTERVAL_MS)
    assert throttle.passes(2_000_000, 100)  # the wall clock stepped back: due at once, not held until it catches up
    assert (throttle.sent, throttle.held) == (4, 3)


def _overuse_packets(seconds: float) -> list[dict[str, int]]:
    """A 15 fps, ~1 Mbit/s video stream whose packets queue up more each frame (the receiver falls behind): every
    frame arrives 8 ms later than the last, relative to when it was sent."""
    packets = []
    for frame in range(int(seconds * 15)):
        sent_ms = frame * 1000 / 15
        for i in range(7):
            send_s = (sent_ms + i * 0.5) / 1000
            packets.append({"abs_send_time": int(send_s * (1 << 18)) & 0xFFFFFF,
                            "arrival_time_ms": int(sent_ms + i * 0.5 + 20 + 8 * max(0, frame - 30)),
                            "payload_size": 1100, "ssrc": 1234})
    return packets


def test_aiortc_sends_a_remb_per_packet_under_overuse_and_the_throttle_keeps_libwebrtcs_pace() -> None:
    raw, throttled_estimator = RemoteBitrateEstimator(), RemoteBitrateEstimator()

    class Receiver:  # carries the estimator where aiortc's RTCRtpReceiver does
        pass

    receiver = Receiver()
    setattr(receiver, remb.ESTIMATOR_ATTRIBUTE, throttled_estimator)
    throttle = throttle_remb(receiver)
    assert throttle is not None and throttle_remb(receiver) is None  # once per receiver
    wrapped = getattr(receiver, remb.ESTIMATOR_ATTRIBUTE)

    raw_rembs, sent = [], []
    for packet in _overuse_packets(6.0):
        if (r := raw.add(**packet)) is not None:
            raw_rembs.append((packet["arrival_time_ms"], r[0]))
        if (s := wrapped.add(**packet)) is not None:
            sent.append((packet["arrival_time_ms"], s[0]))
    # aiortc alone: once the delay grows, an estimate for (nearly) every packet.
    late = [t for t, _ in raw_rembs if t > 4000]
    assert len(late) > 100, len(late)
    # Throttled: the same estimator state, but two REMBs closer than 200 ms only when the later is >3 % lower.
    assert 5 <= len(sent) <= len(raw_rembs) // 10, (len(sent), len(raw_rembs))
    for (t0, b0), (t1, b1) in zip(sent, sent[1:]):
        assert t1 - t0 >= REMB_SEND_INTERVAL_MS or b1 * 1.03 < b0, (t0, b0, t1, b1)
    assert throttle.sent == len(sent) and throttle.sent + throttle.held == len(raw_rembs)
    # Every estimate sent is the one aiortc computed at that packet: the estimator itself is untouched.
    assert set(sent) <= set(raw_rembs)


def test_a_receiver_without_an_estimator_is_left_alone() -> None:
    class AudioReceiver:
        pass

    receiver = AudioReceiver()
    setattr(receiver, remb.ESTIMATOR_ATTRIBUTE, None)
    assert throttle_remb(receiver) is None
    assert throttle_remb(object()) is None  # aiortc moved it: aiortc's behaviour stays


def test_aiortc_keeps_the_estimator_where_the_throttle_expects_it() -> None:
    async def run() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            video = pc.addTransceiver("video", direction="recvonly").receiver
            audio = pc.addTransceiver("audio", direction="recvonly").receiver
            assert isinstance(getattr(video, remb.ESTIMATOR_ATTRIBUTE), RemoteBitrateEstimator)
            assert throttle_remb(video) is not None and throttle_remb(audio) is None
        finally:
            await pc.close()

    asyncio.run(run())


def test_the_ingest_throttles_the_video_receiver_of_a_real_call_and_estimates_still_pass(tmp_path: Path) -> None:
    async def run() -> None:
        async with live_call(tmp_path / "rec", session={"participant": "p", "record": False}) as live:
            # aiortc sends its first estimate after 3 s of incoming bitrate (AimdRateControl).
            await poll(live.status, lambda s: s["frames_received"] > 75, 30, "5 s of video")
            ingest_call = live.handle.app[INGEST].calls.by_id(live.cid)
            estimators = {r.track.kind: getattr(r, remb.ESTIMATOR_ATTRIBUTE)
                          for r in ingest_call.pc.getReceivers() if r.track is not None}
            assert estimators["audio"] is None
            video = estimators["video"]
            assert isinstance(video, remb._ThrottledEstimator)
            assert isinstance(video.estimator, RemoteBitrateEstimator)
            assert video.throttle.sent >= 1  # estimates still reach aiortc, which sends them as REMB

    asyncio.run(asyncio.wait_for(run(), 60))
