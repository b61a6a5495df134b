"""Each manipulation of the scenario format, checked on what the ingest received from real aiortc callers.

One video block, six calls on the generated demo media (640x480 at 15 fps, a voice, a photo): a clean call as the
reference, live video that never starts (no offer; an offer without frames), video that drops at 2 s, low
bandwidth (half size, 5 fps) and degraded images (blur, dark, partial view) with a delayed photo."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from PIL import Image

from tests.conftest import free_port
from tests.runner_helpers import Robot, assert_sound_log, read_log, scenario_text
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.runner.caller import CallerManipulation, degrade_image
from workbench.runner.demo_media import ensure_demo_media
from workbench.runner.player import IngestApi, ScenarioPlayer
from workbench.store.scenarios import parse_scenario

MEDIA = ('media.video = "builtin:demo_fire_video"\nmedia.audio = "builtin:demo_fire_voice"\n'
         'media.photos = [{ file = "builtin:demo_fire_photo", at_s = 0.5 }]\n')
DROP_AT_S = 6.0  # after the call's arrival; a caller process may take a few seconds to start on a busy machine
CALLS = {
    "clean": "",
    "no-offer": 'manipulation.video_start = "no_offer"',
    "no-frames": 'manipulation.video_start = "no_frames"',
    "drop": f"manipulation.video_drop_at_s = {DROP_AT_S}",
    "lowbw": "manipulation.video_scale = 0.5\nmanipulation.video_fps = 5",
    "degraded": ("manipulation.blur_px = 2\nmanipulation.brightness = 0.3\nmanipulation.visible = 0.5\n"
                 "manipulation.photo_delay_s = 2"),
}
CALL_S = 7.0  # how long the robot dispatcher keeps each call open


def _luma(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=float)


def test_degrade_image_blur_dark_and_partial_view() -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (100, 200, 3), dtype=np.uint8))
    out = np.asarray(degrade_image(image, CallerManipulation(brightness=0.5, visible=0.5)).convert("L"), dtype=float)
    src = np.asarray(image.convert("L"), dtype=float)
    assert out.shape == src.shape
    assert out[:25].max() == 0 and out[:, :50].max() == 0 and out[75:].max() == 0  # outside the centred half
    assert out[25:75, 50:150].mean() == pytest.approx(src[25:75, 50:150].mean() * 0.5, rel=0.05)
    blurred = np.asarray(degrade_image(image, CallerManipulation(blur_px=3)).convert("L"), dtype=float)
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.3 * np.abs(np.diff(src, axis=1)).mean()


@pytest.mark.slow
@pytest.mark.webrtc
def test_what_the_caller_sends_is_what_the_scenario_says(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ensure_demo_media(cache)
    calls = [{"id": cid, "arrival_s": 0 if i < 3 else 4, "toml": MEDIA + extra} for i, (cid, extra) in enumerate(CALLS.items())]
    text = scenario_text(calls, [{"id": "live", "modality": "video", "calls": list(CALLS)}])
    scenario = parse_scenario(text.encode(), check_media=False)
    rec = tmp_path / "rec"

    async def main() -> dict:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=rec))
        try:
            async with aiohttp.ClientSession() as http:
                api = IngestApi(handle.url, http)
                first_seen: dict[str, float] = {}

                def close_when(call) -> bool:  # noqa: ANN001
                    # CALL_S after the caller connected (a caller process takes seconds to start on a busy
                    # machine), or 2 * CALL_S after the answer when it never connects (no offer).
                    first_seen.setdefault(call.call_id, time.monotonic())
                    connected = [e.t_mono_ns for e in robot.events if e.call_id == call.call_id
                                 and e.type == "webrtc.state_changed" and e.data.state == "connected"]
                    if not connected:
                        return time.monotonic() - first_seen[call.call_id] > 2 * CALL_S
                    return (time.monotonic_ns() - connected[0]) / 1e9 > CALL_S

                robot = Robot(handle.url, "manip", close_when=close_when)
                robot_task = asyncio.create_task(robot.run(poll_s=0.2))
                player = ScenarioPlayer(api, scenario, text.encode(), participant="P01", media_cache=cache,
                                        session_id="manip", poll_s=0.2)
                report = await player.run()
                await robot_task
                # The callers' logs lived in a temporary folder of their own, gone with the run.
                log_dir = player._log_dir
                assert log_dir is not None and log_dir.name.startswith("workbench-callers-") and not log_dir.exists()
                return {"report": report, "photos": {
                    cid: await (await http.get(f"{handle.url}/api/calls/{cid}/photos/p1")).read()
                    for cid in report.call_ids.values()}}
        finally:
            await handle.stop()

    result = asyncio.run(asyncio.wait_for(main(), 150))
    report = result["report"]
    assert report.completed, report
    assert set(report.caller_exit_codes.values()) <= {0, -15}, report.caller_exit_codes
    events = read_log(rec / "manip")
    assert_sound_log(events)
    ids = report.call_ids
    of = {name: [e for e in events if e.get("call_id") == cid] for name, cid in ids.items()}

    def typed(name: str, kind: str) -> list[dict]:
        return [e["data"] for e in of[name] if e["type"] == kind]

    def video(name: str, kind: str) -> list[dict]:
        return [d for d in typed(name, kind) if d["kind"] == "video"]

    # Every manipulation is logged on its call.
    assert [(d["kind"], d["value"]) for d in typed("no-offer", "manipulation.applied")] == [("video_start", "no_offer")]
    assert [(d["kind"], d["value"]) for d in typed("no-frames", "manipulation.applied")] == [("video_start", "no_frames")]
    assert [(d["kind"], d["at_s"]) for d in typed("drop", "manipulation.applied")] == [("video_drop", DROP_AT_S)]
    assert [(d["kind"], d["value"]) for d in typed("lowbw", "manipulation.applied")] == [("bandwidth", "scale=0.5 fps=5")]
    assert [d["kind"] for d in typed("degraded", "manipulation.applied")] == ["image", "photo_delay"]
    assert typed("clean", "manipulation.applied") == []

    # The clean reference: 640x480 live video for the whole call, a photo.
    assert [(d["width"], d["height"]) for d in video("clean", "media.first_frame")] == [(640, 480)]
    clean_video = video("clean", "media.stream_ended")[0]
    # Frames lost to a loaded machine vary; how long the picture lasted does not.
    t0 = of["clean"][0]["t_mono_ns"]
    timeline = [(round((e["t_mono_ns"] - t0) / 1e9, 2), e["type"], e["data"]) for e in of["clean"]]
    assert clean_video["duration_s"] > CALL_S - 3 and clean_video["frames_received"] > 20, timeline

    # Video that fails to start: no offer at all (the photo still arrives) ...
    assert typed("no-offer", "webrtc.offer_received") == [] and len(typed("no-offer", "media.photo_received")) == 1
    # ... or an offer with a video track that never carries a frame (the voice does).
    [offer] = typed("no-frames", "webrtc.offer_received")
    assert offer["video_codec"] and offer["has_audio"]
    assert video("no-frames", "media.first_frame") == []
    assert [d["kind"] for d in typed("no-frames", "media.first_frame")] == ["audio"]

    # Video that drops 6 s after the call arrived: the frames stop then, the call goes on.
    t = {e["type"]: e["t_mono_ns"] for e in reversed(of["drop"])}  # first occurrence of each type
    first_video = next(e for e in of["drop"] if e["type"] == "media.first_frame" and e["data"]["kind"] == "video")
    dropped = video("drop", "media.stream_ended")[0]
    last_frame_s = (first_video["t_mono_ns"] - t["call.created"]) / 1e9 + dropped["duration_s"]
    assert last_frame_s == pytest.approx(DROP_AT_S, abs=0.8), (last_frame_s, dropped)
    assert (t["call.ended"] - t["call.created"]) / 1e9 > DROP_AT_S + 2

    # Low bandwidth: half the size, about 5 frames per second.
    assert [(d["width"], d["height"]) for d in video("lowbw", "media.first_frame")] == [(320, 240)]
    low = video("lowbw", "media.stream_ended")[0]
    assert 3.5 < low["frames_received"] / low["duration_s"] < 6.5

    # Degraded images: the photo (and the live picture) are dark, black outside the centred half; photo delayed.
    clean_photo, bad_photo = _luma(result["photos"][ids["clean"]]), _luma(result["photos"][ids["degraded"]])
    assert bad_photo.shape == clean_photo.shape
    h, w = bad_photo.shape
    assert bad_photo[: h // 5].mean() < 3 and bad_photo[:, : w // 5].mean() < 3
    centre = (slice(h // 3, 2 * h // 3), slice(w // 3, 2 * w // 3))
    assert bad_photo[centre].mean() == pytest.approx(0.3 * clean_photo[centre].mean(), rel=0.25)
    created = next(e for e in of["degraded"] if e["type"] == "call.created")
    photo_event = next(e for e in of["degraded"] if e["type"] == "media.photo_received")
    assert (photo_event["t_mono_ns"] - created["t_mono_ns"]) / 1e9 > 2.5 - 0.1
    snap = next(d for d in typed("degraded", "media.snapshot") if d["reason"] == "first_frame")
    frame = _luma((rec / "manip" / snap["file"]).read_bytes())
    fh, fw = frame.shape
    assert frame[: fh // 5].mean() < 6 and frame[:, : fw // 5].mean() < 6
    clean_snap = next(d for d in typed("clean", "media.snapshot") if d["reason"] == "first_frame")
    clean_frame = _luma((rec / "manip" / clean_snap["file"]).read_bytes())
    fcentre = (slice(fh // 3, 2 * fh // 3), slice(fw // 3, 2 * fw // 3))
    assert frame[fcentre].mean() < 0.5 * clean_frame[fcentre].mean()
