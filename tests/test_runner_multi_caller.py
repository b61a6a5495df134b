"""The multi-caller experiment (issue 11) played by the runner through the real ingest: five simulated callers (real
caller processes uploading the scenario's photos), three of them about one incident; the ingest proposes exactly the
designed links and gives advice; a robot dispatcher accepts every proposal; the session verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import REPO, free_port
from tests.runner_helpers import Robot, assert_sound_log, read_log
from workbench.domain import events as ev
from workbench.domain.links import LinkState
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.runner.player import IngestApi, ScenarioPlayer
from workbench.store.scenarios import load_scenario

MULTI = REPO / "experiments" / "multi-caller" / "scenario.toml"


@pytest.mark.slow
def test_the_multi_caller_scenario_plays_through_the_ingest_with_its_designed_links(tmp_path: Path) -> None:
    scenario = load_scenario(MULTI)
    specs = {c.id: c for c in scenario.calls}

    def done(call) -> bool:  # every line said and every photo in
        spec = specs[call.scenario_call_id]
        return len(call.transcript) == len(spec.utterances) and len(call.photos) == len(spec.media.photos)

    async def accept_proposals(base: str, sid: str, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                async with http.get(f"{base}/api/sessions/{sid}/events") as resp:
                    events = [ev.event_from_dict(e) for e in (await resp.json())["events"]] if resp.status == 200 else []
                for p in LinkState.from_events(events).proposals.values():
                    if not p.decision:
                        body = {"proposal_id": p.proposal_id, "decision": "accept", "relation": "parent"}
                        async with http.post(f"{base}/api/calls/{p.call_id}/links/decisions", json=body) as resp:
                            assert resp.status in (201, 409), await resp.text()
                await asyncio.sleep(0.1)

    async def main() -> None:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=tmp_path / "rec"))
        try:
            async with aiohttp.ClientSession() as http:
                api = IngestApi(handle.url, http, reconnect_timeout_s=20)
                player = ScenarioPlayer(api, scenario, MULTI.read_bytes(), participant="P01",
                                        media_cache=tmp_path / "cache", poll_s=0.05, session_id="multi")
                play = asyncio.create_task(player.run())
                stop = asyncio.Event()
                robot = asyncio.create_task(Robot(handle.url, "multi", close_when=done).run(stop))
                decider = asyncio.create_task(accept_proposals(handle.url, "multi", stop))
                report = await play
                stop.set()
                await asyncio.gather(robot, decider)
                assert report.completed, report
                assert all(code == 0 for code in report.caller_exit_codes.values()), report.caller_exit_codes
        finally:
            await handle.stop()

    asyncio.run(asyncio.wait_for(main(), 150))
    log = read_log(tmp_path / "rec" / "multi")
    assert_sound_log(log)
    events = [ev.event_from_dict(e) for e in log]
    scenario_of = {e.call_id: e.data.scenario_call_id for e in events if isinstance(e.data, ev.CallCreated)}
    assert sorted(scenario_of.values()) == sorted(specs)
    photos = [scenario_of[e.call_id] for e in events if isinstance(e.data, ev.MediaPhotoReceived)]
    assert sorted(photos) == ["collision", "fire-neighbour", "fire-passerby", "shed-fire"]
    proposed = {frozenset((scenario_of[e.call_id], scenario_of[e.data.other_call_id]))
                for e in events if isinstance(e.data, ev.LinkProposed)}
    designed = {frozenset((a.id, b.id)) for a in scenario.calls for b in scenario.calls
                if a.id < b.id and scenario.incident_of(a.id) == scenario.incident_of(b.id)}
    assert proposed == designed and len(designed) == 3  # every true pair, and the look-alike fire not
    state = LinkState.from_events(events)
    groups = state.groups(scenario_of)
    fire = {groups[c] for c, s in scenario_of.items() if s.startswith("fire-")}
    assert len(fire) == 1 and len(set(groups.values())) == 3  # the dispatcher's incidents are the designed ones
    advised = {scenario_of[e.call_id] for e in events if isinstance(e.data, ev.AdviceGiven)}
    assert advised == set(specs)  # advice is on in this block: every report got one
