"""Two real peers in one process: an aiortc caller (generated 640x480 video and a tone) and the ingest, loopback ICE.

Polls against deadlines (aiortc never delivers a stream's last frame and releases each frame one interval late).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from tests.conftest import poll
from tests.live_call import live_call
from workbench.store.recordings import verify_session

pytestmark = [pytest.mark.webrtc, pytest.mark.slow]


def events_of(root: Path, session_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / session_id / "events.jsonl").read_text().splitlines()]


def test_aiortc_caller_streams_video_and_audio(tmp_path: Path) -> None:
    asyncio.run(_streams_video_and_audio(tmp_path))


async def _streams_video_and_audio(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    async with live_call(root, snapshot_interval_s=1.0, viewer_fps=10) as live:
        cid, sid = live.cid, live.sid
        video_fmtp = [ln for ln in live.caller.answer_sdp.splitlines()
                      if ln.startswith("a=fmtp:") and "x-google-min-bitrate=1500" in ln]
        assert video_fmtp, "the answer must carry the bitrate hints on the video fmtp line"

        st = await poll(live.status, lambda s: s["frames_received"] > 30 and s["audio_frames_received"] > 50, 20,
                        "video and audio frames")
        assert st["connected"] is True and st["state"] == "connected"
        assert st["video_codec"] == "VP8"
        assert (st["width"], st["height"]) == (640, 480)
        assert st["frames_received"] <= live.caller.video.frames_sent

        # The live viewer stream delivers JPEGs of the caller's picture.
        async with live.api.ws_connect(f"{live.handle.url}/api/calls/{cid}/live") as ws:
            jpegs = []
            while len(jpegs) < 5:
                msg = await asyncio.wait_for(ws.receive(), timeout=5)
                assert msg.type == aiohttp.WSMsgType.BINARY, msg
                jpegs.append(msg.data)
        assert all(j[:2] == b"\xff\xd8" for j in jpegs)
        assert len({hashlib.sha1(j).hexdigest() for j in jpegs}) >= 4, "moving video must give distinct frames"
        image = cv2.imdecode(np.frombuffer(jpegs[-1], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)
        # The red square of the generated pattern survives the VP8 and JPEG round trip.
        red = (image[:, :, 2] > 150) & (image[:, :, 1] < 80) & (image[:, :, 0] < 80)
        assert red.sum() > 3000

        async with live.api.get(f"{live.handle.url}/api/calls/{cid}/frame.jpg") as resp:
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
            assert (await resp.read())[:2] == b"\xff\xd8"

        st = await poll(live.status, lambda s: s["snapshots"] >= 2, 10, "a periodic snapshot")
        # The dispatcher asks for a still (issue 4): stored at once, with its quality figures.
        async with live.api.post(f"{live.handle.url}/api/calls/{cid}/snapshot") as resp:
            assert resp.status == 201
            requested = (await resp.json())["snapshot"]
        assert requested["reason"] == "request" and (requested["width"], requested["height"]) == (640, 480)
        assert requested["sharpness"] > 50 and 40 < requested["brightness"] < 200 and requested["motion"] > 0

        # The caller hangs up by closing its peer connection: the ingest notices, ends the streams and the call.
        await live.caller.pc.close()
        st = await poll(live.status, lambda s: s["state"] == "ended", 15, "the call to end after the caller closed")
        assert st["connected"] is False

        events = events_of(root, sid)
        types = [e["type"] for e in events if e["call_id"] == cid]
        assert types[:3] == ["call.created", "call.link_opened", "webrtc.offer_received"]
        assert types[-1] == "call.ended"
        offer = next(e for e in events if e["type"] == "webrtc.offer_received")
        assert offer["data"] == {"video_codec": "VP8", "has_audio": True, "attempt": 1}
        first = {e["data"]["kind"]: e["data"] for e in events if e["type"] == "media.first_frame"}
        assert first["video"]["codec"] == "VP8" and (first["video"]["width"], first["video"]["height"]) == (640, 480)
        assert 0 < first["video"]["ms_since_offer"] < 10_000
        assert first["audio"]["codec"] == "opus"
        assert types.index("media.first_frame") > types.index("webrtc.offer_received")
        states = [e["data"]["state"] for e in events if e["type"] == "webrtc.state_changed"]
        assert "connected" in states and states[-1] == "closed"

        snapshots = [e["data"] for e in events if e["type"] == "media.snapshot"]
        assert snapshots[0]["reason"] == "first_frame" and snapshots[1]["reason"] == "periodic"
        assert "request" in [s["reason"] for s in snapshots]
        assert snapshots[0]["motion"] == 0.0 and all(s["sharpness"] > 0 for s in snapshots)
        # A viewer joined: the ingest asked the caller for a keyframe (RTCP PLI).
        assert [e["data"]["reason"] for e in events if e["type"] == "media.keyframe_requested"][:1] == ["viewer_joined"]
        # The call was recorded (default policy): one segment, closed when the call ended, listed in the manifest.
        (segment,) = [e["data"] for e in events if e["type"] == "media.recording_segment"]
        assert segment["file"] == f"media/{cid}/rec-0001.mkv" and segment["reason"] == "call_ended"
        assert segment["video_frames"] > 30 and segment["audio_frames"] > 50 and segment["frames_dropped"] == 0
        assert snapshots[0]["file"] == f"media/{cid}/snapshot-0001.jpg"
        manifest = json.loads((root / sid / "manifest.json").read_text())["files"]
        assert manifest[segment["file"]]["sha256"] == segment["sha256"]
        for snap in snapshots:
            data = (root / sid / snap["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == snap["sha256"] == manifest[snap["file"]]["sha256"]
            assert (snap["width"], snap["height"]) == (640, 480)

        ended = {e["data"]["kind"]: e["data"] for e in events if e["type"] == "media.stream_ended"}
        assert ended["video"]["frames_received"] == st["frames_received"] > 30
        assert ended["video"]["frames_dropped"] == st["frames_dropped"]
        assert ended["audio"]["frames_received"] == st["audio_frames_received"] > 50
        assert ended["video"]["duration_s"] > 1.0
        call_ended = [e for e in events if e["type"] == "call.ended"]
        assert len(call_ended) == 1 and call_ended[0]["data"]["reason"] == "connection_closed"
        assert types.index("call.ended") > max(i for i, t in enumerate(types) if t == "media.stream_ended")
    report = verify_session(root / sid)
    assert report.ok, report.problems


def test_reconnect_and_server_stop(tmp_path: Path) -> None:
    asyncio.run(_reconnect_and_server_stop(tmp_path))


async def _reconnect_and_server_stop(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    async with live_call(root, snapshot_interval_s=60) as live:
        first_pc = live.caller.pc
        st = await poll(live.status, lambda s: s["frames_received"] > 10, 20, "frames on the first connection")
        # The same browser offers again (e.g. after a network change): the old connection is replaced.
        await live.caller.connect()
        await first_pc.close()
        st = await poll(live.status, lambda s: s["frames_received"] > st["frames_received"] + 15, 20,
                        "frames after reconnect")
        assert st["state"] == "connected" and st["connected"] is True
        await live.handle.stop()
        events = events_of(root, live.sid)
        attempts = [e["data"]["attempt"] for e in events if e["type"] == "webrtc.offer_received"]
        assert attempts == [1, 2]
        ended = [e["data"] for e in events if e["type"] == "media.stream_ended"]
        assert sorted(d["kind"] for d in ended) == ["audio", "audio", "video", "video"]
        # Frames keep arriving between the last poll and the stop, so the total can only be larger.
        assert sum(d["frames_received"] for d in ended if d["kind"] == "video") >= st["frames_received"]
        call_ended = [e["data"]["reason"] for e in events if e["type"] == "call.ended"]
        assert call_ended == ["server_stopped"], "a reconnect is not the end of the call"
        assert events[-1]["type"] == "session.ended" and events[-1]["data"]["reason"] == "server_stopped"
        assert len([e for e in events if e["type"] == "media.first_frame" and e["data"]["kind"] == "video"]) == 1
