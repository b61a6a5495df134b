"""The scenario runner against a real in-process ingest: session control (start, pause/resume timing, abort at a
checkpoint, inject), practice blocks and breaks, the design's block order in session.json, and two sessions at once.

Calls here carry no media, so no caller process starts; the dispatcher is a robot posting console events. Timing is
measured on the ingest's own event times (``t_mono_ns``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from tests.runner_helpers import Robot, assert_sound_log, read_log, scenario_text
from workbench.domain import events as ev
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.runner.player import History, IngestApi, IngestApiError, ScenarioPlayer, manipulation_records, planned_block_order
from workbench.domain.design import williams_orders
from workbench.domain.taxonomy import Modality
from workbench.store.scenarios import parse_scenario

POLL = 0.05
TOLERANCE_S = 0.3  # two polls of the player and of the test, plus HTTP round trips on a loaded machine


def _run(body, tmp_path: Path) -> None:
    async def main() -> None:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=tmp_path / "rec"))
        try:
            async with aiohttp.ClientSession() as http:
                await body(handle.url, IngestApi(handle.url, http, reconnect_timeout_s=10), tmp_path / "rec")
        finally:
            await handle.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def _player(api: IngestApi, text: str, tmp_path: Path, **kw) -> ScenarioPlayer:
    scenario = parse_scenario(text.encode(), check_media=False)
    return ScenarioPlayer(api, scenario, text.encode(), participant=kw.pop("participant", "P01"),
                          media_cache=tmp_path / "cache", poll_s=POLL, **kw)


async def _events(api: IngestApi, sid: str) -> list[ev.Event]:
    return await api.events(sid, 0)


async def _wait_for(api: IngestApi, sid: str, predicate, timeout_s: float = 20) -> ev.Event:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            events = await _events(api, sid)
        except IngestApiError as exc:  # 404 until the player has created the session
            assert exc.status == 404, exc
            events = []
        for e in events:
            if predicate(e):
                return e
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting for an event")


def _s(a: ev.Event, b: ev.Event) -> float:
    return (b.t_mono_ns - a.t_mono_ns) / 1e9


def test_pause_shifts_arrivals_and_utterances_by_the_paused_time(tmp_path: Path) -> None:
    text = scenario_text([{"id": "c1", "arrival_s": 1.0, "lines": [(0, "one"), (1.0, "two")]}],
                         [{"id": "b1", "calls": ["c1"]}])

    async def body(url: str, api: IngestApi, rec: Path) -> None:
        player = _player(api, text, tmp_path, session_id="timing")
        play = asyncio.create_task(player.run())
        started = await _wait_for(api, "timing", lambda e: e.type == "block.started")
        await asyncio.sleep(0.3)
        pause = (await api.control("timing", "pause"))["event"]
        await asyncio.sleep(1.5)
        resume = (await api.control("timing", "resume"))["event"]
        paused_s = (resume["t_mono_ns"] - pause["t_mono_ns"]) / 1e9
        created = await _wait_for(api, "timing", lambda e: e.type == "call.created")
        # The arrival at 1.0 s of session time came 1.0 s + the pause after the block started.
        assert _s(started, created) == pytest.approx(1.0 + paused_s, abs=TOLERANCE_S)
        assert _s(started, created) > 1.0 + paused_s - 0.1

        robot = Robot(url, "timing", close_when=lambda c: len(c.transcript) >= 2)
        robot_task = asyncio.create_task(robot.run())
        answered = await _wait_for(api, "timing", lambda e: e.type == "call.answered")
        await asyncio.sleep(0.4)
        pause2 = (await api.control("timing", "pause"))["event"]
        await asyncio.sleep(1.0)
        resume2 = (await api.control("timing", "resume"))["event"]
        paused2_s = (resume2["t_mono_ns"] - pause2["t_mono_ns"]) / 1e9
        two = await _wait_for(api, "timing", lambda e: e.type == "caller.utterance" and e.data.index == 1)
        assert _s(answered, two) == pytest.approx(1.0 + paused2_s, abs=TOLERANCE_S)
        one = await _wait_for(api, "timing", lambda e: e.type == "caller.utterance" and e.data.index == 0)
        assert _s(answered, one) < TOLERANCE_S  # said before the pause: not shifted
        report = await play
        await robot_task
        assert report.completed
        events = read_log(rec / "timing")
        assert_sound_log(events)
        assert [e["data"]["action"] for e in events if e["type"] == "session.control"] == [
            "pause", "resume", "pause", "resume"]
        assert events[-1]["type"] == "session.ended" and events[-1]["data"]["reason"] == "completed"

    _run(body, tmp_path)


def test_start_inject_and_abort_at_call_checkpoint(tmp_path: Path) -> None:
    text = scenario_text(
        [{"id": "c1", "arrival_s": 0.2, "lines": [(0, "first")]},
         {"id": "c2", "arrival_s": 30, "lines": [(0, "never said: aborted before c2 arrives")]},
         {"id": "spare", "arrival_s": 0, "lines": [(0, "spare line")]},
         {"id": "c3", "arrival_s": 0, "lines": [(0, "next block")]}],
        [{"id": "b1", "calls": ["c1", "c2"]}, {"id": "b2", "calls": ["spare", "c3"]}])

    async def body(url: str, api: IngestApi, rec: Path) -> None:
        player = _player(api, text, tmp_path, session_id="ctl", wait_for_start=True)
        play = asyncio.create_task(player.run())
        await asyncio.sleep(1.0)
        assert [e.type for e in await _events(api, "ctl")] == ["session.started"]  # held until start
        await api.control("ctl", "start")
        robot = Robot(url, "ctl", close_when=lambda c: len(c.transcript) >= 1 or not c.scenario_call_id)
        robot_task = asyncio.create_task(robot.run())
        await _wait_for(api, "ctl", lambda e: e.type == "call.created" and e.data.scenario_call_id == "c1")
        inject = (await api.control("ctl", "inject", scenario_call_id="spare"))["event"]
        adhoc = (await api.control("ctl", "inject", scenario_call_id="walk-in", caller_label="Walk-in",
                                   utterances=["Hello?", "Anyone?"]))["event"]
        await _wait_for(api, "ctl", lambda e: e.type == "call.injected" and e.data.adhoc)
        await api.control("ctl", "abort", checkpoint="call")  # no new calls: c2 (30 s) never arrives
        report = await play
        robot_task.cancel()
        assert not report.completed and report.aborted_at == "call"
        events = read_log(rec / "ctl")
        assert_sound_log(events)
        created = {e["call_id"]: e["data"] for e in events if e["type"] == "call.created"}
        assert sorted(d["scenario_call_id"] for d in created.values()) == ["c1", "spare", "walk-in"]
        injected = {e["call_id"]: e["data"] for e in events if e["type"] == "call.injected"}
        assert sorted((created[c]["scenario_call_id"], d["request_seq"], d["adhoc"]) for c, d in injected.items()) == [
            ("spare", inject["seq"], False), ("walk-in", adhoc["seq"], True)]
        walk_in = next(c for c, d in created.items() if d["scenario_call_id"] == "walk-in")
        assert created[walk_in]["caller_label"] == "Walk-in" and created[walk_in]["block_id"] == "b1"
        lines = [e["data"]["text"] for e in events if e["type"] == "caller.utterance" and e["call_id"] == walk_in]
        assert lines[:1] == ["Hello?"]
        assert not any(e["type"] == "block.started" and e["data"]["block_id"] == "b2" for e in events)
        assert events[-1]["type"] == "session.ended" and events[-1]["data"]["reason"] == "aborted"

    _run(body, tmp_path)


def test_abort_now_stops_the_player_at_once(tmp_path: Path) -> None:
    text = scenario_text([{"id": "c1", "arrival_s": 60}], [{"id": "b1", "calls": ["c1"]}])

    async def body(url: str, api: IngestApi, rec: Path) -> None:
        play = asyncio.create_task(_player(api, text, tmp_path, session_id="now").run())
        await _wait_for(api, "now", lambda e: e.type == "block.started")
        await api.control("now", "abort")
        report = await asyncio.wait_for(play, 5)
        assert report.aborted_at == "now" and not report.completed
        events = read_log(rec / "now")
        assert [e["type"] for e in events] == ["session.started", "block.started", "session.ended"]

    _run(body, tmp_path)


def test_control_rejects_bad_requests(tmp_path: Path) -> None:
    async def body(url: str, api: IngestApi, rec: Path) -> None:
        sid = await api.create_session(participant="P01")
        for fields, word in (({"action": "jump"}, "action"), ({"action": "abort", "checkpoint": "lunch"}, "checkpoint"),
                             ({"action": "inject"}, "scenario_call_id"),
                             ({"action": "inject", "scenario_call_id": "x", "utterances": "hi"}, "utterances")):
            with pytest.raises(Exception) as exc:
                await api.control(sid, **fields)
            assert "HTTP 400" in str(exc.value) and word in str(exc.value)
        assert [e.type for e in await _events(api, sid)] == ["session.started"]

    _run(body, tmp_path)


def test_practice_block_break_and_counterbalanced_order_in_session_json(tmp_path: Path) -> None:
    text = scenario_text(
        [{"id": "p1"}, {"id": "a1"}, {"id": "v1"}, {"id": "f1"}],
        [{"id": "warm-up", "calls": ["p1"], "practice": True, "break_s": 1.0},
         {"id": "audio", "calls": ["a1"]}, {"id": "video", "modality": "video", "calls": ["v1"]},
         {"id": "photo", "modality": "photo", "calls": ["f1"]}],
        extra='[design]\ncounterbalance = "latin_square"\nparticipants = ["P07", "P08"]\n')
    scenario = parse_scenario(text.encode(), check_media=False)
    order = planned_block_order(scenario, "P08", 1)
    assert williams_orders(["audio", "video", "photo"], 1)[1] == ["photo", "audio", "video"]
    assert order == ["warm-up", "photo", "audio", "video"]  # practice first, then P08 = row 1

    async def body(url: str, api: IngestApi, rec: Path) -> None:
        player = _player(api, text, tmp_path, session_id="design", participant="P08", seed=1, block_order=order)
        robot = Robot(url, "design")
        robot_task = asyncio.create_task(robot.run())
        report = await player.run()
        await robot_task
        assert report.completed
        header = json.loads((rec / "design" / "session.json").read_text())
        assert (header["seed"], header["block_order"], header["participant"]) == (1, order, "P08")
        events = read_log(rec / "design")
        assert_sound_log(events)
        kinds = [(e["type"], e["data"].get("block_id", e["data"].get("after_block_id", ""))) for e in events
                 if e["type"].startswith(("block.", "break."))]
        assert kinds[:5] == [("block.started", "warm-up"), ("block.practice", "warm-up"), ("block.ended", "warm-up"),
                             ("break.started", "warm-up"), ("break.ended", "warm-up")]
        assert [b for t, b in kinds if t == "block.started"] == order
        assert sum(t == "block.practice" for t, _ in kinds) == 1
        brk = [e for e in events if e["type"].startswith("break.")]
        assert (brk[1]["t_mono_ns"] - brk[0]["t_mono_ns"]) / 1e9 == pytest.approx(1.0, abs=TOLERANCE_S)
        assert brk[0]["data"]["duration_s"] == 1.0

    _run(body, tmp_path)


def test_two_sessions_in_parallel_each_with_its_own_clock_and_log(tmp_path: Path) -> None:
    text = scenario_text([{"id": "c1", "arrival_s": 0.5, "lines": [(0, "a"), (0.5, "b")]},
                          {"id": "c2", "arrival_s": 1.0, "lines": [(0, "c")]}],
                         [{"id": "b1", "calls": ["c1", "c2"]}])

    async def body(url: str, api: IngestApi, rec: Path) -> None:
        one = _player(api, text, tmp_path, session_id="station-1", participant="P01")
        two = _player(api, text, tmp_path, session_id="station-2", participant="P02")
        robots = [Robot(url, sid, close_when=lambda c: len(c.transcript) >= (2 if c.scenario_call_id == "c1" else 1))
                  for sid in ("station-1", "station-2")]
        robot_tasks = [asyncio.create_task(r.run()) for r in robots]
        play_one = asyncio.create_task(one.run())
        await _wait_for(api, "station-1", lambda e: e.type == "call.created")
        await api.control("station-1", "pause")  # pausing one station leaves the other's clock running
        await asyncio.sleep(1.5)
        await api.control("station-1", "resume")
        reports = await asyncio.gather(play_one, two.run())
        await asyncio.gather(*robot_tasks)
        assert all(r.completed for r in reports)
        assert set(reports[0].call_ids.values()).isdisjoint(reports[1].call_ids.values())
        for sid, participant in (("station-1", "P01"), ("station-2", "P02")):
            events = read_log(rec / sid)
            assert_sound_log(events)
            assert {e["session_id"] for e in events} == {sid}
            assert events[0]["data"]["participant"] == participant
            assert sorted(e["data"]["scenario_call_id"] for e in events if e["type"] == "call.created") == ["c1", "c2"]
            assert [e["data"]["text"] for e in events if e["type"] == "caller.utterance"] != []
        paused = [e for e in read_log(rec / "station-1") if e["type"] == "session.control"]
        assert len(paused) == 2 and not any(e["type"] == "session.control" for e in read_log(rec / "station-2"))

    _run(body, tmp_path)


def test_manipulation_records_only_what_the_block_lets_through() -> None:
    text = scenario_text(
        [{"id": "m", "toml": 'media.video = "v.mp4"\nmedia.photos = [{ file = "p.jpg", at_s = 1 }]\n'
                             'manipulation.video_start = "no_frames"\nmanipulation.video_scale = 0.5\n'
                             'manipulation.brightness = 0.3\nmanipulation.photo_delay_s = 4'}],
        [{"id": "b", "modality": "video", "calls": ["m"]}])
    spec = parse_scenario(text.encode(), check_media=False).call("m")
    assert [(r.kind, r.value, r.at_s) for r in manipulation_records(spec, Modality.VIDEO)] == [
        ("video_start", "no_frames", 0.0), ("bandwidth", "scale=0.5 fps=0", 0.0),
        ("image", "blur=0 brightness=0.3 visible=1 on=photos,video", 0.0), ("photo_delay", "+4s", 4.0)]
    assert [r.kind for r in manipulation_records(spec, Modality.PHOTO)] == ["image", "photo_delay"]
    assert manipulation_records(spec, Modality.AUDIO) == []


def test_history_session_seconds_discount_pauses() -> None:
    h = History(pauses=[(100.0, 103.0), (110.0, None)])
    assert h.session_seconds_since(99.0, 112.0) == pytest.approx(13 - 3 - 2)
    assert h.paused


def test_abort_at_block_checkpoint_finishes_the_block_first(tmp_path: Path) -> None:
    text = scenario_text([{"id": "c1", "arrival_s": 0}, {"id": "c2", "arrival_s": 1.0}, {"id": "c3", "arrival_s": 0}],
                         [{"id": "b1", "calls": ["c1", "c2"]}, {"id": "b2", "calls": ["c3"]}])

    async def body(url: str, api: IngestApi, rec: Path) -> None:
        play = asyncio.create_task(_player(api, text, tmp_path, session_id="blk").run())
        robot_task = asyncio.create_task(Robot(url, "blk").run())
        await _wait_for(api, "blk", lambda e: e.type == "call.created")
        await api.control("blk", "abort", checkpoint="block")
        report = await play
        robot_task.cancel()
        assert report.aborted_at == "block" and not report.completed
        events = read_log(rec / "blk")
        assert_sound_log(events)
        assert sorted(e["data"]["scenario_call_id"] for e in events if e["type"] == "call.created") == ["c1", "c2"]
        assert [e["data"]["block_id"] for e in events if e["type"] == "block.started"] == ["b1"]
        assert events[-1]["data"]["reason"] == "aborted"

    _run(body, tmp_path)


def test_pause_holds_the_callers_photo_times_too(tmp_path: Path) -> None:
    # A photo block: the caller process only uploads the photo (no live media), 4 s after the call arrives.
    text = scenario_text([{"id": "c1", "arrival_s": 0,
                           "toml": 'media.photos = [{ file = "builtin:demo_collision_photo", at_s = 4.0 }]'}],
                         [{"id": "b1", "modality": "photo", "calls": ["c1"]}])

    async def body(url: str, api: IngestApi, rec: Path) -> None:
        play = asyncio.create_task(_player(api, text, tmp_path, session_id="photo").run())
        created = await _wait_for(api, "photo", lambda e: e.type == "call.created", timeout_s=30)
        await _wait_for(api, "photo", lambda e: e.type == "call.link_opened", timeout_s=30)  # the caller is up
        pause = (await api.control("photo", "pause"))["event"]
        await asyncio.sleep(2.0)
        resume = (await api.control("photo", "resume"))["event"]
        paused_s = (resume["t_mono_ns"] - pause["t_mono_ns"]) / 1e9
        assert (pause["t_mono_ns"] - created.t_mono_ns) / 1e9 < 3.5, "the caller started too late for this test"
        photo = await _wait_for(api, "photo", lambda e: e.type == "media.photo_received", timeout_s=30)
        robot_task = asyncio.create_task(Robot(url, "photo").run())
        report = await play
        await robot_task
        assert report.completed
        # 4 s after the arrival (not after the caller process came up), plus the pause.
        assert _s(created, photo) == pytest.approx(4.0 + paused_s, abs=0.6)
        assert _s(created, photo) > 4.0 + paused_s - 0.3

    _run(body, tmp_path)
