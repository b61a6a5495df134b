"""The ingest benchmark's pre-encoded callers (benchmarks/ingest_media.py): the frame index drawn into the picture
survives VP8 and the viewer's JPEG, a real pre-encoded caller's frames come out of a real aiortc receiver carrying
the indices it sent, glass-to-glass is the read time minus that index's send time, a keyframe request restarts the
sequence at its keyframe, and the benchmark's own case (callers in their own process, the bare receiver in its own)
returns figures computed that way."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from benchmarks.ingest_media import (
    FPS, g2g_from_indices, index_from_stamp, index_stamp, is_vp8_keyframe, pre_encode,
    pre_encoded_video_track, read_ivf, read_stamp, write_ivf,
)
from workbench.ice import enable_loopback_ice


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory):
    """45 frames (3 s) of the drawn scene, pre-encoded once for the module."""
    return pre_encode(tmp_path_factory.mktemp("pre-encoded"), frames=45)


def test_index_stamp_round_trip_and_damage_detection() -> None:
    for i in (0, 1, 2, 449, 450, 12345, (1 << 24) - 1):
        assert index_from_stamp(index_stamp(i)) == i
    # consecutive indices differ in one block of the code and the same block of the complement (Gray code)
    assert all(bin(index_stamp(i) ^ index_stamp(i + 1)).count("1") == 2 for i in range(1000))
    assert index_from_stamp(index_stamp(77) ^ 1) is None  # one block read wrong: refused, not a wrong index
    assert index_from_stamp(0) is None  # an all-black strip is not index 0
    with pytest.raises(ValueError, match="outside"):
        index_stamp(1 << 24)


def test_ivf_round_trip_and_bad_files(tmp_path: Path) -> None:
    frames = [b"\x10abc", b"\x11" * 300, b""]
    write_ivf(tmp_path / "x.ivf", frames)
    assert read_ivf(tmp_path / "x.ivf") == frames
    (tmp_path / "bad.ivf").write_bytes(b"RIFF" + bytes(40))
    with pytest.raises(ValueError, match="not a VP8 IVF"):
        read_ivf(tmp_path / "bad.ivf")
    (tmp_path / "cut.ivf").write_bytes((tmp_path / "x.ivf").read_bytes()[:-200])
    with pytest.raises(ValueError, match="cut short"):
        read_ivf(tmp_path / "cut.ivf")


def test_pre_encoded_sequence_decodes_to_its_indices_at_full_size_and_through_the_viewer_jpeg(sequence) -> None:
    frames = read_ivf(sequence.directory / "video.ivf")
    assert len(frames) == 45 and is_vp8_keyframe(frames[0]) and sequence.keyframes == 1
    assert 20 < sequence.bitrate_kbps < 2000
    decoder = av.CodecContext.create("libvpx", "r")
    full, viewer = [], []
    for data in frames:
        for frame in decoder.decode(av.Packet(data)):
            full.append(index_from_stamp(read_stamp(frame.to_ndarray(format="gray"))))
            # as the benchmark reads the ingest's viewer: a JPEG (q80, as workbench/ingest/live.py) decoded at 1/8
            ok, jpeg = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 80])
            small = cv2.imdecode(jpeg, cv2.IMREAD_REDUCED_GRAYSCALE_8)
            viewer.append(index_from_stamp(read_stamp(small, 8)))
    assert full == list(range(45))
    assert viewer == list(range(45))


def test_pre_encode_refuses_bad_pictures(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected"):
        pre_encode(tmp_path, frames=2, pictures=[np.zeros((240, 320, 3), np.uint8)])
    with pytest.raises(ValueError, match="frames must be"):
        pre_encode(tmp_path, frames=0)


def test_g2g_matches_each_read_to_the_latest_send_of_its_index() -> None:
    # stream 0 sent 0,1,2 then (a keyframe request) 0,1 again; stream 1 sent 0,1
    sends = [[(0, 1000.0), (1, 1066.0), (2, 1133.0), (0, 1200.0), (1, 1266.0)], [(0, 5000.0), (1, 5066.0)]]
    samples = [
        (0, index_stamp(1), 1100.0),  # the first 1: 34 ms
        (0, index_stamp(2), 1250.0),  # 117 ms
        (0, index_stamp(0), 1290.0),  # the second 0 (sent at 1200): 90 ms, not 290
        (1, index_stamp(1), 5100.0),  # the other stream's own send times: 34 ms
        (1, index_stamp(1) ^ 4, 5150.0),  # damaged: unread
        (1, index_stamp(7), 5200.0),  # never sent on that stream: unread
        (0, index_stamp(2), 1100.0),  # read before it was sent: unread (would mean the clocks disagree)
    ]
    latencies, unread = g2g_from_indices(samples, sends)
    assert latencies == [34.0, 117.0, 90.0, 34.0]
    assert unread == 3


@pytest.mark.webrtc
def test_real_pre_encoded_caller_round_trip_through_aiortc(sequence) -> None:
    """One pre-encoded caller into a real aiortc receiver in this process for ~2.5 s: every decoded picture carries
    an index the caller sent, in order, and the latency is read time minus that send's time."""
    enable_loopback_ice()

    async def run() -> tuple[list[tuple[int, int, float]], object]:
        sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        track = pre_encoded_video_track(sequence.directory)
        samples: list[tuple[int, int, float]] = []
        started = asyncio.Event()

        async def drain(remote) -> None:
            try:
                while True:
                    frame = await remote.recv()
                    samples.append((0, read_stamp(frame.to_ndarray(format="gray")), time.time() * 1000))
                    started.set()
            except MediaStreamError:
                pass

        tasks = []
        receiver_pc.on("track", lambda remote: tasks.append(asyncio.ensure_future(drain(remote))))
        try:
            track.answer_keyframe_requests(sender_pc.addTrack(track))
            await sender_pc.setLocalDescription(await sender_pc.createOffer())
            await receiver_pc.setRemoteDescription(sender_pc.localDescription)
            await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
            await sender_pc.setRemoteDescription(receiver_pc.localDescription)
            await asyncio.wait_for(started.wait(), timeout=60)
            deadline = time.monotonic() + 60
            while len(samples) < 30 and time.monotonic() < deadline:  # ~2 s of video at 15 fps
                await asyncio.sleep(0.1)
        finally:
            await sender_pc.close()
            await receiver_pc.close()
            await asyncio.gather(*tasks, return_exceptions=True)
        return samples, track

    samples, track = asyncio.run(run())
    assert len(samples) >= 30
    sent_indices = [i for i, _ in track.sends]
    read_indices = [index_from_stamp(v) for _, v, _ in samples]
    assert None not in read_indices
    # what came out is what went in, in order (a subsequence of the sends: the receiver may miss the very first)
    it = iter(sent_indices)
    assert all(any(i == s for s in it) for i in read_indices)
    latencies, unread = g2g_from_indices(samples, [track.sends])
    assert unread == 0 and len(latencies) == len(samples)
    send_time = {}
    for index, t in track.sends:
        send_time.setdefault(index, t)  # 45 frames, 2-3 s: no index was sent twice unless the sequence restarted
    for (_, value, read_ms), latency in zip(samples, latencies):
        assert latency >= 0
        if sent_indices.count(index_from_stamp(value)) == 1:
            assert latency == pytest.approx(read_ms - send_time[index_from_stamp(value)])
    assert track.frames_sent == len(track.sends) >= len(samples)


def test_keyframe_request_restarts_the_sequence_at_its_keyframe(sequence) -> None:
    track = pre_encoded_video_track(sequence.directory, fps=1000)
    frames = read_ivf(sequence.directory / "video.ivf")

    async def take(k: int) -> list[bytes]:
        return [bytes(await track.recv()) for _ in range(k)]

    async def run() -> None:
        first = await take(5)
        track.request_keyframe()
        after = await take(3)
        assert first == frames[:5] and after == frames[:3]

    asyncio.run(run())
    assert [i for i, _ in track.sends] == [0, 1, 2, 3, 4, 0, 1, 2]
    assert track.keyframes_sent == 1
    send_times = [t for _, t in track.sends]
    assert send_times == sorted(send_times)


@pytest.mark.slow
@pytest.mark.webrtc
def test_benchmark_case_bare_receiver_n1_with_a_pre_encoded_caller(sequence) -> None:
    """The benchmark's own path: the bare receiver and one pre-encoded caller, each in its own process, for a few
    seconds; the figures come from the frame indices read back."""
    from benchmarks.bench_ingest import HEADER, _line, run_case

    row = asyncio.run(run_case("bare", 1, warmup_s=1.0, measure_s=3.0, pre_encoded=sequence))
    assert row["callers"] == "pre-encoded" and row["n"] == 1
    assert row["samples"] >= 10  # ~45 pictures in the window, however loaded the machine
    assert row["unread"] <= row["samples"] // 10
    assert 0 <= row["p50"] <= row["p95"] < 30_000  # matched to a send of this run, not a loop apart
    assert row["sent"] > 0 and 0 < row["fps"] <= FPS + 1
    assert (row["decode_p50"], row["decode_p95"]) == (row["p50"], row["p95"])  # the bare receiver reads at decode
    line = _line(row)  # the table says which callers were used, in a row as wide as its header
    assert "| bare | pre-encoded | 1 | every decoded frame |" in line
    assert line.count("|") == HEADER.splitlines()[0].count("|")


@pytest.mark.slow
@pytest.mark.webrtc
@pytest.mark.parametrize("kind", ["ingest", "ingest+copy"])
def test_benchmark_case_ingest_reads_latency_at_decode_and_at_the_viewer(sequence, kind: str) -> None:
    """The ingest's latency is read twice from the same viewer pictures: where the ingest decoded the frame (the
    JPEG's ``t_wall_ms``) and where the viewer read it; the viewer's JPEG encode, send and decode come after. With
    recording, the row also says what the recording holds and what the recorder process cost."""
    from benchmarks.bench_ingest import HEADER, _line, run_case

    row = asyncio.run(run_case(kind, 1, warmup_s=1.0, measure_s=3.0, pre_encoded=sequence))
    assert row["samples"] >= 10
    assert 0 < row["decode_p50"] < row["p50"] < 30_000
    assert row["decode_p95"] <= row["p95"]
    line = _line(row)
    assert f"| {row['decode_p50']:.0f} / {row['decode_p95']:.0f} |" in line
    assert line.count("|") == HEADER.splitlines()[0].count("|")
    if kind == "ingest":
        assert (row["recorded_video"], row["recording_drops"], row["recorder_cpu"]) == (0, 0, 0)
    else:  # every received frame from the first key frame on is in the recording, nothing dropped
        assert row["recorded_video"] >= row["window_frames"] and row["recording_drops"] == 0
        assert row["recorder_cpu"] > 0
        assert f"| {row['recorded_video']}, 0 |" in line


@pytest.mark.slow
@pytest.mark.webrtc
def test_caller_comparison_reads_an_aiortc_callers_latency_at_the_ingest_and_the_viewer() -> None:
    from benchmarks.bench_ingest import run_caller_comparison

    row = asyncio.run(run_caller_comparison("aiortc", fps=30, warmup_s=1.0, measure_s=3.0))
    assert row["kind"] == "aiortc caller 30 fps" and row["samples"] >= 10
    assert 20 < row["fps"] < 35 and row["sent"] > 60
    assert 0 < row["p50"] <= row["p95"] < row["viewer_p95"] < 30_000
    assert row["p50"] < row["viewer_p50"]
