"""Recording of a call (issue 4): crash-safe Matroska segments with video and audio in sync.

The proof: the ingest runs as a subprocess (``workbench serve --no-console``), an aiortc caller streams ~8 s of
moving video and a tone, the ingest is killed with SIGKILL, and what is on disk is read by ffprobe and PyAV.
The unit tests feed :class:`CallRecorder` generated frames directly.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

from tests.conftest import child_pids, free_port, poll
from tests.helpers_media import BeepTrack, FlashTrack, SyncMarks
from tests.live_call import Caller
from workbench.ice import enable_loopback_ice
from workbench.ingest.recording import CallRecorder, CallWriter, MediaClock, SegmentInfo
from workbench.store.recordings import recording_duration_s, verify_session

REPO = Path(__file__).resolve().parent.parent


def stream_spans(path: Path) -> dict[str, tuple[float, float]]:
    """``{kind: (first packet time, last packet time)}`` of a media file, s, by demuxing with PyAV."""
    spans: dict[str, tuple[float, float]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            first, last = spans.get(packet.stream.type, (t, t))
            spans[packet.stream.type] = (min(first, t), max(last, t))
    return spans


def ffprobe_streams(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,start_time", "-of", "json", str(path)],
        check=True, capture_output=True, text=True, timeout=30,
    )
    return json.loads(out.stdout)["streams"]


# --- the crash proof ----------------------------------------------------------------------------------------------


@pytest.mark.webrtc
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (Debian ffmpeg) is not installed")
@pytest.mark.parametrize("record_video, codec", [("h264", "h264"), ("copy", "vp8")])
def test_recording_survives_kill_9(tmp_path: Path, record_video: str, codec: str) -> None:
    root = tmp_path / "rec"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--no-console", "--port", str(port), "--recordings", str(root),
         "--record-video", record_video],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        marks = SyncMarks()
        sid, cid, streamed_s, children = asyncio.run(_stream_then_kill(proc, f"http://127.0.0.1:{port}", marks))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # The recorder process wrote the segments; it dies with the ingest, leaving them cut where the crash cut them.
    assert any("multiprocessing" in command for command in children.values()), children
    deadline = time.monotonic() + 5
    while (alive := [pid for pid in children if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, {pid: children[pid] for pid in alive}
    session = root / sid
    segments = sorted((session / "media" / cid).glob("rec-*.mkv"))
    assert segments, f"no recording on disk: {sorted(p.name for p in (session / 'media' / cid).iterdir())}"
    last = segments[-1]
    kinds = {s["codec_type"]: s for s in ffprobe_streams(last)}
    assert set(kinds) >= {"video", "audio"}, kinds
    assert (kinds["video"]["codec_name"], kinds["audio"]["codec_name"]) == (codec, "opus")
    # Every stored picture decodes (copy mode: the segment starts at a key frame, no frame is missing).
    with av.open(str(last)) as container:
        decoded = sum(1 for _ in container.decode(container.streams.video[0]))
    assert decoded >= 15 * (streamed_s - 2.0), decoded
    spans = stream_spans(last)
    recorded_s = min(spans["video"][1], spans["audio"][1]) - max(spans["video"][0], spans["audio"][0])
    assert recorded_s >= streamed_s - 2.0, (recorded_s, streamed_s, spans)
    # Both kinds cover the same stretch (they start together and the crash cut both) ...
    assert abs(spans["video"][0] - spans["audio"][0]) <= 0.25 and abs(spans["video"][1] - spans["audio"][1]) <= 0.25, spans
    # ... and are in sync: each clapperboard marker's beep lies where its flash lies, within 100 ms, once the
    # offset the caller itself put between them is taken off.
    errors = av_sync_errors_s(last, marks)
    assert len(errors) >= 5, errors
    assert max(abs(e) for e in errors) <= 0.100, [round(e, 3) for e in errors]

    report = verify_session(session)
    assert report.ok, report.problems
    cut = [w for w in report.warnings if "cut by a crash" in w]
    assert len(cut) == 1 and last.name in cut[0], report.warnings
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "verify", str(session)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "cut by a crash: last segment" in out.stdout and f"holds {recording_duration_s(last):.1f} s" in out.stdout


class ClapperboardCaller(Caller):
    """A caller whose video flashes white and whose audio beeps at the same moments (:class:`SyncMarks`)."""

    def __init__(self, caller_url: str, marks: SyncMarks) -> None:
        super().__init__(caller_url)
        self.marks = marks

    def make_video(self) -> Any:
        return FlashTrack(self.marks)

    def make_audio(self) -> Any:
        return BeepTrack(self.marks)


def av_sync_errors_s(path: Path, marks: SyncMarks) -> list[float]:
    """Per clapperboard marker found in the recording ``path``: (beep onset - flash onset) in the file minus the
    caller's own beep-minus-flash offset (median over the markers it sent), s. A flash onset is the first
    picture whose mean luma crosses mid-grey; a beep onset the first 2.5 ms window whose RMS crosses a third of the
    loudest window's."""
    flashes, beeps = [], []
    with av.open(str(path)) as container:
        was_bright = False
        for frame in container.decode(container.streams.video[0]):
            bright = float(frame.to_ndarray(format="gray").mean()) > 128
            if bright and not was_bright:
                flashes.append(float(frame.time))
            was_bright = bright
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        times, chunks = [], []
        for frame in container.decode(stream):
            samples = frame.to_ndarray().astype(np.float64)
            chunks.append(samples.mean(axis=0) if samples.shape[0] > 1 and not frame.format.is_planar else
                          samples.reshape(len(frame.layout.channels), -1).mean(axis=0))
            times.append(float(frame.time))
    window = 120  # 2.5 ms at 48 kHz
    starts, levels = [], []
    for t0, chunk in zip(times, chunks):
        for i in range(0, len(chunk) - window + 1, window):
            starts.append(t0 + i / 48000)
            levels.append(float(np.sqrt(np.mean(chunk[i:i + window] ** 2))))
    threshold = max(levels) / 3
    loud_before = False
    for t, level in zip(starts, levels):
        loud = level > threshold
        if loud and not loud_before:
            beeps.append(t)
        loud_before = loud
    sent = marks.sent_offsets_s()
    assert sent and max(sent) - min(sent) < 0.025, f"the caller's own A/V offsets vary too much: {sent}"
    caller_offset = float(np.median(sent))
    errors = []
    for flash in flashes:
        nearest = min(beeps, key=lambda b: abs(b - flash), default=None)
        if nearest is not None and abs(nearest - flash) < marks.period_s / 2:
            errors.append(nearest - flash - caller_offset)
    return errors


def _children(pid: int) -> dict[int, str]:
    """``{pid: command line}`` of a process's children (Linux ``/proc``)."""
    return {child: Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            for child in child_pids(pid)}


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def _stream_then_kill(
    proc: subprocess.Popen[str], url: str, marks: SyncMarks,
) -> tuple[str, str, float, dict[int, str]]:
    """Stream ~8 s from a clapperboard caller, then SIGKILL the ingest; returns session id, call id, the streamed
    time (s) and the ingest's child processes just before the kill."""
    enable_loopback_ice()  # the caller's side, in this process (the ingest patches its own process)
    api = aiohttp.ClientSession()
    caller = None
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                async with api.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "the ingest did not start"
            await asyncio.sleep(0.2)
        async with api.post(url + "/api/calls", json={}) as resp:
            call = await resp.json()

        async def status() -> dict[str, Any]:
            async with api.get(f"{url}/api/calls/{call['call_id']}") as resp:
                return await resp.json()

        caller = ClapperboardCaller(call["caller_url"], marks)
        await caller.open()
        await caller.connect()
        await poll(status, lambda s: s["frames_received"] > 0 and s["audio_frames_received"] > 0, 20, "first frames")
        started = time.monotonic()
        await asyncio.sleep(8.0)
        st = await status()
        assert st["frames_received"] > 8 * 10, st
        children = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        streamed_s = time.monotonic() - started
        proc.wait(timeout=10)
        return call["session_id"], call["call_id"], streamed_s, children
    finally:
        if caller is not None:
            await caller.close()
        await api.close()


# --- the recorder alone -------------------------------------------------------------------------------------------


def _video(n: int, fps: float) -> av.VideoFrame:
    """Frame ``n`` of a 320x240 stream at ``fps``, pts on aiortc's 90 kHz RTP clock."""
    image = np.full((240, 320, 3), (n * 7) % 255, np.uint8)
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    frame.pts, frame.time_base = round(n * 90000 / fps), Fraction(1, 90000)
    return frame


def hard_to_encode_frames(count: int = 4) -> list[av.VideoFrame]:
    """``count`` 1280x720 frames of random noise (yuv420p): slow to encode, to overrun a recorder's queue."""
    rng = np.random.default_rng(1)
    return [
        av.VideoFrame.from_ndarray(rng.integers(0, 255, (720, 1280, 3), np.uint8), format="bgr24")
        .reformat(format="yuv420p")
        for _ in range(count)
    ]


def _audio(n: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1920), np.int16), format="s16", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = 48000, n * 960, Fraction(1, 48000)
    return frame


async def _feed(recorder: CallRecorder, seconds: float, *, video_fps: float, t0: int, rtp_jump_at: int = -1) -> None:
    """Feed 20 ms audio frames and video at ``video_fps``, stamped on a synthetic clock from ``t0`` (ns)."""
    n_audio = int(seconds * 50)
    every = max(1, round(50 / video_fps))
    for i in range(n_audio):
        t = t0 + i * 20_000_000
        recorder.push("audio", _audio(i), t)
        if i % every == 0:
            frame = _video(i // every, 50 / every)
            if i // every >= rtp_jump_at >= 0:
                frame.pts += 2**32  # what aiortc has shown below 10 fps: must not reach the file
            recorder.push("video", frame, t)
        if i % 10 == 0:
            await asyncio.sleep(0.005)  # let the writer keep up (the queue is bounded)


def test_media_clock_keeps_held_up_frames_in_place_and_restarts_after_a_timestamp_jump() -> None:
    clock = MediaClock()
    t0 = 10**12
    # 50 audio frames of 20 ms; frames 10-19 are held up 300 ms (a stalled loop) and then come in a burst.
    placed = []
    for i in range(50):
        arrival = t0 + i * 20_000_000 + 5_000_000 + (300_000_000 - (i - 10) * 20_000_000 if 10 <= i < 20 else 0)
        placed.append(clock.place_media_ns(i * 20_000_000, arrival))
    assert placed == [t0 + 5_000_000 + i * 20_000_000 for i in range(50)]
    # A 2^32 jump of the 90 kHz RTP time (what aiortc shows below 10 fps) starts a new offset at the arrival.
    jumped = clock.place_media_ns((2**32 * 1_000_000_000) // 90_000, t0 + 1_005_000_000)
    assert jumped == t0 + 1_005_000_000
    # A frame without a media time is placed at its arrival.
    assert clock.place_media_ns(None, t0 + 7) == t0 + 7


def test_segments_roll_over_listed_in_order_with_one_time_line(tmp_path: Path) -> None:
    async def run() -> list[SegmentInfo]:
        infos: list[SegmentInfo] = []
        errors: list[str] = []
        recorder = CallRecorder(
            tmp_path / "call", loop=asyncio.get_running_loop(), on_segment=infos.append, on_error=errors.append,
            segment_s=2.0, queue_frames=400,
        )
        recorder.has_audio = recorder.has_video = True
        await _feed(recorder, 5.0, video_fps=5, t0=10**12, rtp_jump_at=8)  # 5 fps: below 10 fps, with a 2^32 jump
        await recorder.close()
        await asyncio.sleep(0)
        assert not errors, errors
        return infos

    infos = asyncio.run(run())
    assert [i.index for i in infos] == [1, 2, 3]
    assert [i.reason for i in infos] == ["rollover", "rollover", "call_ended"]
    # The first audio frame was pushed just before the first video frame: audio before video is not recorded.
    assert sum(i.video_frames for i in infos) == 25 and sum(i.audio_frames for i in infos) == 249
    assert all(i.frames_dropped == 0 for i in infos)
    previous_end = -1.0
    for info in infos:
        spans = stream_spans(info.path)
        assert set(spans) == {"video", "audio"}
        assert abs(spans["video"][0] - info.start_s) < 0.05, (spans, info)
        assert spans["video"][0] > previous_end  # monotonic across segments, no 2^32 jump
        assert spans["video"][1] - spans["video"][0] < 2.5
        previous_end = spans["video"][1]
    assert previous_end == pytest.approx(4.8, abs=0.05)


def test_audio_before_video_is_not_recorded_and_queue_drops_are_counted(tmp_path: Path) -> None:
    async def run() -> tuple[list[SegmentInfo], CallRecorder]:
        infos: list[SegmentInfo] = []
        recorder = CallRecorder(
            tmp_path / "call", loop=asyncio.get_running_loop(), on_segment=infos.append, on_error=print,
            queue_frames=5,
        )
        recorder.has_audio = recorder.has_video = True
        t0 = 10**12
        for i in range(10):  # 200 ms of audio before the first video frame
            recorder.push("audio", _audio(i), t0 + i * 20_000_000)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert recorder.frames_dropped == 0
        noise = hard_to_encode_frames()
        started = time.monotonic()
        for i in range(200):  # a burst of hard-to-encode frames far beyond the queue: push never blocks
            recorder.push("video", noise[i % 4], t0 + 200_000_000 + i * 1_000_000)
        assert time.monotonic() - started < 0.5
        await recorder.close()
        await asyncio.sleep(0)
        return infos, recorder

    infos, recorder = asyncio.run(run())
    assert recorder.frames_dropped > 50
    assert len(infos) == 1 and infos[0].audio_frames == 0
    assert infos[0].video_frames + recorder.frames_dropped == 200


def test_drops_before_the_first_segment_count_in_it(tmp_path: Path) -> None:
    infos: list[SegmentInfo] = []
    writer = CallWriter(tmp_path / "call", segment_s=60.0, talkback=False, report_segment=infos.append,
                        want_keyframe=lambda: None)
    t0 = 10**12
    writer.take(("audio", _audio(0), t0, 0, True, True))  # waits for video: no segment yet
    writer.take(("video", _video(0, 15), t0 + 20_000_000, 3, True, True))  # 3 dropped before it: the segment opens
    writer.take(("video", _video(1, 15), t0 + 86_666_667, 5, True, True))  # and 2 more while it is open
    writer.note_dropped(7)  # 2 after the last frame, told at the close
    writer.finish("call_ended")
    assert [(i.video_frames, i.frames_dropped) for i in infos] == [(2, 7)]


def test_verify_reports_a_cut_segment_as_a_warning_and_other_unlisted_files_as_problems(tmp_path: Path) -> None:
    from workbench.store.recordings import Recordings, SessionHeader

    folder = Recordings(tmp_path).create_session(SessionHeader("s1", "P01", "adhoc", "", [], 0, "0", "now"))
    folder.event_log().close()
    infos: list[SegmentInfo] = []

    async def run() -> None:
        recorder = CallRecorder(folder.path / "media" / "c1", loop=asyncio.get_running_loop(),
                                on_segment=infos.append, on_error=print)
        recorder.has_audio = recorder.has_video = True
        await _feed(recorder, 3.0, video_fps=15, t0=10**12)
        await recorder.close()
        await asyncio.sleep(0)

    asyncio.run(run())
    (info,) = infos
    report = verify_session(folder.path)
    assert report.ok, report.problems  # a segment never listed (the writer died) is a warning, not a failure
    cut = folder.path / "media" / "c1" / "rec-0001.mkv"
    assert 2.8 <= recording_duration_s(cut) <= 3.1
    assert any("cut by a crash" in w and f"holds {recording_duration_s(cut):.1f} s" in w for w in report.warnings), report.warnings
    folder.record_existing("media/c1/rec-0001.mkv", info.sha256, info.size_bytes)
    assert verify_session(folder.path).warnings == []
    (folder.path / "media" / "c1" / "notes.txt").write_text("x")
    assert any("notes.txt: media file not in manifest" in p for p in verify_session(folder.path).problems)
    assert cut.is_file()


def test_opus_packet_samples_follow_the_toc_byte() -> None:
    """RFC 6716 3.1: the configuration gives the frame length, the code the number of frames."""
    from workbench.ingest.recording import opus_packet_samples

    assert opus_packet_samples(bytes([31 << 3, 0])) == 960  # CELT 20 ms, one frame (what browsers send)
    assert opus_packet_samples(bytes([3 << 3])) == 2880  # SILK 60 ms
    assert opus_packet_samples(bytes([(13 << 3) | 1])) == 1920  # hybrid 20 ms, two frames
    assert opus_packet_samples(bytes([(16 << 3) | 3, 4])) == 480  # CELT 2.5 ms, four frames (code 3)
    assert opus_packet_samples(b"") == 960
