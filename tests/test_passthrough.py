"""Recording without re-encoding (``record_video = "copy"``): the tap into aiortc's receiver, VP8 key-frame parsing,
the recorder storing received VP8 frames (segments start at key frames),
and a session asking for it end to end with an aiortc caller. The kill -9 proof is in tests/test_recording.py."""

from __future__ import annotations

import asyncio
import fractions
import queue
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame

from tests.conftest import poll
from tests.live_call import live_call
from tests.test_ingest_webrtc import events_of
from tests.test_recording import ffprobe_streams
from workbench.ingest import passthrough
from workbench.ingest.recording import CallRecorder, SegmentInfo
from workbench.store.recordings import verify_session


class Codec:
    name = "VP8"


def vp8_frames(n: int, *, keyframes_at: tuple[int, ...] = (0,)) -> list[bytes]:
    """``n`` 320x240 VP8 frames of a moving square, encoded by aiortc's own encoder (key frames where asked)."""
    encoder = Vp8Encoder()
    out = []
    for i in range(n):
        image = np.full((240, 320, 3), 60, np.uint8)
        image[100:140, (i * 7) % 280:(i * 7) % 280 + 40] = 255
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = i * 6000, fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=i in keyframes_at)
        out.append(b"".join(vp8_depayload(p) for p in payloads))
    return out


def test_vp8_keyframe_size_from_aiortc_frames() -> None:
    frames = vp8_frames(3)
    assert passthrough.vp8_keyframe_size(frames[0]) == (320, 240)
    assert passthrough.vp8_keyframe_size(frames[1]) is None
    assert passthrough.vp8_keyframe_size(b"\x00\x01") is None


def test_tap_sees_every_frame_of_a_real_aiortc_receiver_and_the_decoder_still_gets_it() -> None:
    async def run() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            pc.addTransceiver("video", direction="recvonly")
            receiver = pc.getReceivers()[0]
            seen: list[tuple[str, bytes]] = []
            passthrough.tap_encoded_frames(receiver, lambda name, data, rtp_time: seen.append((name, data)))
            q = getattr(receiver, passthrough.QUEUE_ATTRIBUTE)
            q.put((Codec(), JitterFrame(b"\x9d frame", 1234)))
            q.put(None)  # aiortc's end-of-stream marker passes untouched
            assert seen == [("VP8", b"\x9d frame")]
            codec, frame = q.get_nowait()
            assert codec.name == "VP8" and frame.data == b"\x9d frame" and q.get_nowait() is None
            with pytest.raises(passthrough.PassthroughUnavailable, match="tapped already"):
                passthrough.tap_encoded_frames(receiver, lambda name, data, rtp_time: None)
        finally:
            await pc.close()

    asyncio.run(run())


def test_tap_fails_loudly_when_aiortc_internals_change() -> None:
    class NoQueue:
        pass

    with pytest.raises(passthrough.PassthroughUnavailable, match="aiortc 1.16"):
        passthrough.tap_encoded_frames(NoQueue(), lambda name, data, rtp_time: None)

    class Receiver:
        pass

    receiver = Receiver()
    setattr(receiver, passthrough.QUEUE_ATTRIBUTE, queue.Queue())
    errors: list[str] = []
    seen: list[Any] = []
    passthrough.tap_encoded_frames(receiver, lambda name, data, rtp_time: seen.append(data), errors.append)
    q = getattr(receiver, passthrough.QUEUE_ATTRIBUTE)
    q.put(("VP8", b"a bare tuple, no codec object"))
    q.put((Codec(), JitterFrame(b"later", 0)))
    assert len(errors) == 1 and "changed shape" in errors[0], errors
    assert seen == []  # the tap stopped ...
    assert q.qsize() == 2  # ... and the decoder still got both items


def test_copy_recorder_starts_at_a_key_frame_and_rolls_over_at_key_frames(tmp_path: Path) -> None:
    frames = vp8_frames(60, keyframes_at=(3, 20, 40))

    async def run() -> tuple[list[SegmentInfo], CallRecorder, int]:
        segments: list[SegmentInfo] = []
        asked: list[int] = []
        recorder = CallRecorder(tmp_path / "call", loop=asyncio.get_running_loop(), on_segment=segments.append,
                                on_error=pytest.fail, segment_s=1.0, video_mode="copy",
                                request_keyframe=lambda: asked.append(1))
        recorder.has_video = True
        t0 = 10**12
        for i, data in enumerate(frames):
            if i == 0:
                continue  # aiortc's encoder starts with a key frame: begin the feed with two delta frames
            recorder.push("video", object(), t0 + i * 66_666_667)  # decoded frames are ignored in copy mode
            recorder.push_encoded("VP8", data, t0 + i * 66_666_667, i * 6000)
            await asyncio.sleep(0.002)
        await recorder.close()
        await asyncio.sleep(0.05)
        return segments, recorder, len(asked)

    segments, recorder, asked = asyncio.run(run())
    # Frames 1-2 are delta frames before any key frame: skipped, a key frame asked for.
    assert recorder.keyframe_waits == 2 and asked >= 1
    # 1 s segments over 60 frames at 15 fps (4 s): a new segment only at the key frames 20 and 40.
    assert [s.video_frames for s in segments] == [17, 20, 20], segments
    for info in segments:
        streams = ffprobe_streams(info.path)
        assert [s["codec_name"] for s in streams] == ["vp8"]
        with av.open(str(info.path)) as container:
            assert sum(1 for _ in container.decode(video=0)) == info.video_frames


def test_a_session_asking_for_copy_records_the_callers_vp8_as_received(tmp_path: Path, monkeypatch) -> None:
    from workbench.ingest.recording import RecorderFront

    received_opus: list[bytes] = []
    push_encoded = RecorderFront.push_encoded  # the ingest's recorders (in its recorder process) are fronts

    def spy(self, codec: str, data: bytes, t_ns: int, rtp_time: int | None = None) -> None:
        if codec.lower() == "opus":
            received_opus.append(bytes(data))
        push_encoded(self, codec, data, t_ns, rtp_time)

    monkeypatch.setattr(RecorderFront, "push_encoded", spy)

    async def run() -> tuple[str, str]:
        async with live_call(tmp_path / "rec", session={"participant": "p", "record_video": "copy"}) as live:
            # A refused session leaves nothing behind, so asking after the good one tests the same refusal.
            async with live.api.post(live.handle.url + "/api/sessions",
                                     json={"participant": "p", "record_video": "x265"}) as r:
                assert r.status == 400 and "record_video" in (await r.json())["error"]
            await poll(live.status, lambda s: s["frames_received"] > 45, 30, "3 s of video")
            await live.caller.http.post(live.call["caller_url"] + "/hangup")
            await poll(live.status, lambda s: s["state"] == "ended", 20, "the end of the call")
        return live.sid, live.cid

    sid, cid = asyncio.run(run())
    root = tmp_path / "rec"
    events = events_of(root, sid)
    assert [e["data"] for e in events if e["type"] == "media.recording_video_policy"] == [
        {"video": "copy", "origin": "request"}]
    assert [e["data"] for e in events if e["type"] == "media.recording_video"] == [
        {"video": "copy", "codec": "VP8", "reason": ""}]
    segments = sorted((root / sid / "media" / cid).glob("rec-*.mkv"))
    assert [s["codec_name"] for s in ffprobe_streams(segments[0])] == ["vp8", "opus"]
    with av.open(str(segments[0])) as container:
        pictures = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(pictures) > 40 and pictures[0].shape == (480, 640)
    assert float(np.abs(pictures[-1].astype(int) - pictures[0].astype(int)).mean()) > 1.0  # the pattern moved
    # The caller's audio too is stored as it came: each Opus packet in the file is one the ingest received ...
    with av.open(str(segments[0])) as container:
        stored = [bytes(p) for p in container.demux(audio=0) if p.size]
    assert len(stored) > 100 and set(stored) <= set(received_opus)  # > 2 s at 50 packets a second
    # ... and it decodes, 20 ms a packet, to the caller's tone (not silence).
    with av.open(str(segments[0])) as container:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert abs(len(pcm) / 2 - 960 * len(stored)) <= 960 * 3 and float(np.abs(pcm).mean()) > 0.01
    assert verify_session(root / sid).ok


def test_copy_falls_back_to_re_encoding_for_an_h264_caller_and_says_why(tmp_path: Path) -> None:
    from tests.test_codecs import call_with_offer, h264_only, video_offer

    result = asyncio.run(call_with_offer(tmp_path, video_offer(h264_only("42e01f")),
                                         settings_kw={"record_video": "copy"}))
    assert result["status"]["video_codec"] == "H264"
    root = tmp_path / "rec"
    (session,) = [p for p in root.iterdir() if p.is_dir()]
    events = events_of(root, session.name)
    assert [e["data"] for e in events if e["type"] == "media.recording_video_policy"] == [
        {"video": "copy", "origin": "default"}]
    assert [e["data"] for e in events if e["type"] == "media.recording_video"] == [
        {"video": "h264", "codec": "H264", "reason": "copy needs VP8, the caller sends H264"}]
    (segment,) = sorted(session.glob("media/*/rec-*.mkv"))
    assert [s["codec_name"] for s in ffprobe_streams(segment)] == ["h264"]
    with av.open(str(segment)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 10


def test_a_copy_recording_replays_in_the_browser_as_webm(tmp_path: Path) -> None:
    from workbench.console.debrief_media import browser_copy, mime_type, video_codec

    frames = vp8_frames(45, keyframes_at=(0, 20))

    async def run() -> list[SegmentInfo]:
        segments: list[SegmentInfo] = []
        recorder = CallRecorder(tmp_path / "call", loop=asyncio.get_running_loop(), on_segment=segments.append,
                                on_error=pytest.fail, segment_s=1.0, video_mode="copy")
        recorder.has_video = True
        for i, data in enumerate(frames):
            recorder.push_encoded("VP8", data, 10**12 + i * 66_666_667, i * 6000)
            await asyncio.sleep(0.002)
        await recorder.close()
        await asyncio.sleep(0.05)
        return segments

    paths = [s.path for s in asyncio.run(run())]
    assert len(paths) == 2 and video_codec(paths) == "vp8"
    copy = browser_copy(paths, tmp_path / "cache")
    # MP4 cannot hold VP8 (the debrief's replay crashed on copy recordings): a WebM the browser plays instead.
    assert copy.suffix == ".webm" and mime_type(copy) == "video/webm"
    with av.open(str(copy)) as container:
        assert container.streams.video[0].codec_context.name == "vp8"
        assert sum(1 for _ in container.decode(video=0)) == 45
    assert browser_copy(paths, tmp_path / "cache") == copy  # made once


def test_the_callers_audio_tap_hands_opus_on_and_falls_back_to_re_encoding_when_it_breaks() -> None:
    """``Ingest._tap_opus`` on an audio receiver: Opus packets reach the recorder with their RTP time; when aiortc's
    items change shape, the recorder goes back to the decoded audio (``audio_copy`` off), so no audio is lost."""
    from types import MethodType, SimpleNamespace

    from workbench.ingest.app import Ingest

    class Opus:
        name = "opus"

    handed: list[tuple[str, bytes, int | None]] = []
    recorder = SimpleNamespace(audio_copy=False,
                               push_encoded=lambda codec, data, t_ns, rtp: handed.append((codec, data, rtp)))
    receiver = SimpleNamespace(track=SimpleNamespace(kind="audio"))
    setattr(receiver, passthrough.QUEUE_ATTRIBUTE, queue.Queue())
    video = SimpleNamespace(track=SimpleNamespace(kind="video"))
    call = SimpleNamespace(call_id="c1", codecs={"audio": "opus", "video": "VP8"},
                           media=SimpleNamespace(recorder=recorder))
    pc = SimpleNamespace(getReceivers=lambda: [video, receiver])
    ingest = SimpleNamespace(clock=SimpleNamespace(monotonic_ns=lambda: 5))
    ingest._tap_receivers = MethodType(Ingest._tap_receivers, ingest)
    Ingest._tap_opus(ingest, call, pc)
    assert recorder.audio_copy is True
    q = getattr(receiver, passthrough.QUEUE_ATTRIBUTE)
    q.put((Opus(), JitterFrame(b"\xf8\x01\x02", 960)))
    assert handed == [("opus", b"\xf8\x01\x02", 960)]
    q.put(("opus", b"a bare tuple, no codec object"))
    assert recorder.audio_copy is False and len(handed) == 1

    call.codecs["audio"] = "PCMU"  # a reconnect with another codec: re-encode
    recorder.audio_copy = True
    Ingest._tap_opus(ingest, call, pc)
    assert recorder.audio_copy is False


def test_a_recorder_with_audio_copy_ignores_the_decoded_audio_until_it_is_switched_off(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        recorder = CallRecorder(tmp_path / "c", loop=loop, on_segment=lambda info: None, on_error=pytest.fail)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        queued: list[str] = []
        put_nowait = recorder._queue.put_nowait
        recorder._queue.put_nowait = lambda item: (queued.append(item[0]), put_nowait(item))  # type: ignore[method-assign]
        recorder.audio_copy = True
        recorder.push("audio", frame, 1)
        assert queued == [] and recorder.has_audio
        recorder.audio_copy = False
        recorder.push("audio", frame, 2)
        assert queued == ["audio"]
        loop.run_until_complete(recorder.close())
    finally:
        loop.close()
