"""Helpers of the runner tests: a robot dispatcher that works calls over the ingest's HTTP API, and log checks."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp

from workbench.domain import events as ev
from workbench.domain.session_state import CallState, SessionState, apply

CLOSE = {
    "incident_type": "fire", "urgency": "nu", "location": "", "items_gathered": [], "disagreement_flagged": False,
    "disagreement_aspect": "", "notes": "",
}


def scenario_text(calls: list[dict[str, Any]], blocks: list[dict[str, Any]], extra: str = "") -> str:
    """A scenario TOML built from plain dicts (calls: id, arrival_s, lines, optional media/manipulation TOML)."""
    out = ['id = "runner-test"', extra]
    for b in blocks:
        out.append("[[blocks]]")
        out.append(f'id = "{b["id"]}"\nmodality = "{b.get("modality", "audio")}"\ncalls = {json.dumps(b["calls"])}')
        for key in ("practice", "break_s"):
            if key in b:
                out.append(f"{key} = {json.dumps(b[key])}")
    for c in calls:
        out.append("[[calls]]")
        out.append(f'id = "{c["id"]}"\narrival_s = {c.get("arrival_s", 0)}')
        lines = ", ".join(f'{{ at_s = {at}, text = "{text}" }}' for at, text in c.get("lines", []))
        out.append(f"utterances = [{lines}]")
        out.append(c.get("toml", ""))
        out.append('[calls.truth]\nincident_type = "fire"\nurgency = "nu"')
    return "\n".join(out) + "\n"


TLX = {"mental_demand": 50, "physical_demand": 10, "temporal_demand": 40, "performance": 30, "effort": 45,
       "frustration": 20}
"""The NASA-TLX the robot gives every block."""


@dataclass
class Robot:
    """A dispatcher that answers every call, closes it once ``close_when(call)`` holds and rates it; with
    ``rate_blocks`` it also gives each block its NASA-TLX when it ends (what ``workbench run`` waits for).

    Survives an ingest that goes away (requests are retried on the next round). ``answered_at`` keeps the
    ingest's ``t_mono_ns`` of each answer.
    """

    base_url: str
    session_id: str
    close_when: Callable[[CallState], bool] = lambda call: True
    hold: set[str] = field(default_factory=set)
    """Scenario call ids not to answer (yet)."""
    rate_blocks: bool = False
    state: SessionState = field(default_factory=SessionState)
    events: list[ev.Event] = field(default_factory=list)

    async def post(self, http: aiohttp.ClientSession, event_type: str, call_id: str | None, data: dict) -> None:
        body = {"source": "console", "type": event_type, "call_id": call_id, "data": data}
        async with http.post(f"{self.base_url}/api/sessions/{self.session_id}/events", json=body) as resp:
            assert resp.status == 201, await resp.text()

    async def refresh(self, http: aiohttp.ClientSession) -> None:
        url = f"{self.base_url}/api/sessions/{self.session_id}/events?after={self.state.last_seq}"
        async with http.get(url) as resp:
            if resp.status == 404:  # the runner has not created the session yet
                return
            for raw in (await resp.json())["events"]:
                event = ev.event_from_dict(raw)
                self.events.append(event)
                apply(self.state, event)

    async def run(self, stop: asyncio.Event | None = None, poll_s: float = 0.05) -> None:
        stop = stop or asyncio.Event()
        async with aiohttp.ClientSession() as http:
            while not self.state.ended and not stop.is_set():
                try:
                    await self.refresh(http)
                    for call in list(self.state.calls.values()):
                        if call.scenario_call_id in self.hold:
                            continue
                        if call.answered_ns is None:
                            await self.post(http, "call.answered", call.call_id, {"station": "robot"})
                        elif call.closed is None and self.close_when(call):
                            await self.post(http, "call.closed", call.call_id, CLOSE)
                        elif call.closed is not None and call.rsme is None:
                            await self.post(http, "rating.rsme", call.call_id, {"value": 25})
                        else:
                            continue
                        await self.refresh(http)
                    for block_id in self.state.blocks_ended if self.rate_blocks else ():
                        if block_id not in self.state.tlx_rated:
                            await self.post(http, "rating.nasa_tlx", None, dict(TLX, block_id=block_id))
                            await self.refresh(http)
                except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(poll_s)


def read_log(session_dir: Path) -> list[dict]:
    """Every line of a session's ``events.jsonl`` as dicts."""
    return [json.loads(line) for line in (session_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def assert_sound_log(events: list[dict]) -> None:
    """``seq`` is 1..n without gap or duplicate; no scenario call created twice in a block; no utterance twice."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    injected = {e["call_id"] for e in events if e["type"] == "call.injected"}
    created = [(e["data"]["block_id"], e["data"]["scenario_call_id"]) for e in events
               if e["type"] == "call.created" and e["call_id"] not in injected]
    assert len(created) == len(set(created)), f"a call was created twice: {created}"
    said = [(e["call_id"], e["data"]["index"]) for e in events if e["type"] == "caller.utterance"]
    assert len(said) == len(set(said)), f"an utterance was posted twice: {said}"
    for kind in ("block.started", "block.ended", "session.ended"):
        keys = [json.dumps(e["data"]) for e in events if e["type"] == kind]
        assert len(keys) == len(set(keys)), f"{kind} twice: {keys}"
