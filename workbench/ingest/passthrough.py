"""The received encoded video frames, for a recording without re-encoding (issue 4).

aiortc hands on decoded frames only (``track.recv()``); the encoded frames exist inside its receiver, on the way
from the jitter buffer to the decoder thread: ``RTCRtpReceiver._handle_rtp_packet`` puts ``(codec, JitterFrame)``
(``JitterFrame.data``: one whole depayloaded frame; ``.timestamp``: its RTP time) on the receiver's private
``__decoder_queue`` (a ``queue.Queue``; aiortc 1.16, ``aiortc/rtcrtpreceiver.py``). :func:`tap_encoded_frames`
wraps that queue's ``put`` on one receiver so a copy of each frame's bytes also goes to the recorder; the decoder
still gets every frame, unchanged.

This is the only place that touches that private path. When aiortc changes it, :func:`tap_encoded_frames` raises
:class:`PassthroughUnavailable` at the offer (no attribute, not a queue) or, when the items change shape, the tap
reports the error once and passes frames on untouched; the ingest then records the call re-encoded and says why
(``media.recording_video``). ``tests/test_passthrough.py`` checks both against the installed aiortc.

Only VP8 is stored as received: a VP8 frame is self-delimiting and Matroska needs no codec header for it, while
aiortc's H.264 depayloader yields Annex B with in-band parameter sets that Matroska wants as an ``avcC`` header
(doable, not done); H.264 calls are re-encoded.
"""

from __future__ import annotations

import logging
import queue
from typing import Any, Callable

log = logging.getLogger(__name__)

QUEUE_ATTRIBUTE = "_RTCRtpReceiver__decoder_queue"
"""Name-mangled private attribute of aiortc's ``RTCRtpReceiver`` holding the decoder thread's input queue."""


class PassthroughUnavailable(RuntimeError):
    """The installed aiortc no longer exposes the encoded frames where this module expects them (or the codec
    cannot be stored as received); the message says what was found."""


def tap_encoded_frames(
    receiver: Any, on_frame: Callable[[str, bytes, int | None], Any], on_error: Callable[[str], Any] | None = None
) -> None:
    """Call ``on_frame(codec_name, data, rtp_time)`` (on the event loop's thread, where aiortc assembles frames) with
    every encoded frame ``receiver`` hands to its decoder, before the decoder sees it. ``codec_name`` is aiortc's codec
    name (``VP8``, ``H264``); ``data`` the whole frame's bytes; ``rtp_time`` its RTP time on the 90 kHz video clock as
    aiortc hands it to the decoder (from 0 at the stream's first frame), or None when the frame carries none.

    Raises :class:`PassthroughUnavailable` when ``receiver`` has no such queue (aiortc changed). If a later item
    does not look like ``(codec with .name, frame with bytes .data)``, ``on_error(message)`` is called once and the tap
    stops (frames still reach the decoder). ``on_frame`` must not block; its exceptions are logged, never raised into
    aiortc."""
    q = getattr(receiver, QUEUE_ATTRIBUTE, None)
    if not isinstance(q, queue.Queue):
        raise PassthroughUnavailable(
            f"aiortc's RTCRtpReceiver has no queue at {QUEUE_ATTRIBUTE} (found {type(q).__name__}); this recorder "
            "was written against aiortc 1.16: record re-encoded (record_video h264) or update "
            "workbench/ingest/passthrough.py"
        )
    if getattr(q.put, "_workbench_tap", False):
        raise PassthroughUnavailable("this receiver is tapped already")
    original = q.put
    broken = False

    def put(item: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal broken
        if item is not None and not broken:
            try:
                codec, frame = item
                name, data = codec.name, frame.data
                if not isinstance(name, str) or not isinstance(data, (bytes, bytearray)):
                    raise TypeError(f"codec.name {type(name).__name__}, frame.data {type(data).__name__}")
            except (TypeError, ValueError, AttributeError) as exc:
                broken = True
                message = f"aiortc's decoder queue items changed shape ({exc}); stored video stops here"
                log.error(message)
                if on_error is not None:
                    on_error(message)
            else:
                rtp_time = getattr(frame, "timestamp", None)
                try:
                    on_frame(name, bytes(data), rtp_time if isinstance(rtp_time, int) else None)
                except Exception:  # noqa: BLE001 - the recording's problem must never break the live call
                    log.exception("passing an encoded frame to the recorder failed")
        original(item, *args, **kwargs)

    put._workbench_tap = True  # type: ignore[attr-defined]
    q.put = put  # type: ignore[method-assign]


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` when ``data`` is a VP8 key frame, else None (RFC 6386 9.1: bit 0 of the first byte is 0
    for a key frame, whose header carries the start code 9d 01 2a and two 14-bit little-endian sizes)."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height
