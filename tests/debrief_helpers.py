"""A real recorded session for the debrief tests: ``workbench run`` plays the demo scenario (simulated aiortc callers
streaming generated video, audio and photos, recorded by the ingest) while a robot dispatcher works both calls over
the ingest's HTTP API with known intake values, some required items left out on purpose.

``python -m tests.debrief_helpers OUT_DIR`` records one by hand (inside ``scripts/netns-run``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import REPO, free_port
from workbench.domain import events as ev
from workbench.domain.session_state import SessionState, apply

INTAKE = {
    # scenario call id: (incident type, first urgency, final urgency, items checked, lines heard before closing, RSME)
    "house-fire": ("fire", "nu", "spoed", ["location", "caller_safe"], 4, 71.0),
    "collision": ("traffic_accident", "nu", "nu", ["location", "injuries", "vehicles"], 3, 25.0),
}
"""What the robot enters: the house fire misses ``trapped`` and ``fire_size``; the collision misses nothing."""


async def _robot(base: str, stop: asyncio.Event) -> str:
    """Work the demo's calls one at a time as a dispatcher would; return the session id."""
    state = SessionState()
    sid = ""
    steps: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:

        async def post(event_type: str, call_id: str | None, data: dict) -> None:
            body = {"source": "console", "type": event_type, "call_id": call_id, "data": data}
            async with http.post(f"{base}/api/sessions/{sid}/events", json=body) as resp:
                assert resp.status == 201, await resp.text()

        while not stop.is_set() and not state.ended:
            try:
                if not sid:
                    async with http.get(f"{base}/api/sessions") as resp:
                        rows = (await resp.json())["sessions"] if resp.status == 200 else []
                    live = [r for r in rows if not r.get("ended")]
                    sid = live[-1]["session_id"] if live else ""
                if sid:
                    async with http.get(f"{base}/api/sessions/{sid}/events?after={state.last_seq}") as resp:
                        for raw in (await resp.json())["events"]:
                            apply(state, ev.event_from_dict(raw))
                    await _work(state, steps, post)
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.2)
    return sid


async def _work(state: SessionState, steps: dict[str, int], post) -> None:  # noqa: ANN001 - the post closure
    calls = sorted(state.calls.values(), key=lambda c: c.created_ns)
    active = [c for c in calls if c.status in ("active", "closed")]
    if not active:
        waiting = [c for c in calls if c.status == "waiting"]
        if waiting:
            await post("call.answered", waiting[0].call_id, {"station": "robot"})
        return
    call = active[0]
    kind, first_urgency, urgency, items, lines, rsme = INTAKE[call.scenario_call_id]
    step = steps.get(call.call_id, 0)
    heard = len(call.transcript)
    if call.status == "closed":
        await post("rating.rsme", call.call_id, {"value": rsme})
    elif step == 0 and heard >= 1:
        await post("intake.incident_type", call.call_id, {"incident_type": kind})
        await post("intake.urgency", call.call_id, {"urgency": first_urgency})
        steps[call.call_id] = 1
    elif step == 1 and heard >= 2:
        for item in items:
            await post("intake.item_checked", call.call_id, {"item": item, "checked": True})
        steps[call.call_id] = 2
    elif step == 2 and heard >= 3:
        if urgency != first_urgency:
            await post("intake.urgency", call.call_id, {"urgency": urgency})
        steps[call.call_id] = 3
    elif step == 3 and heard >= lines:
        await post("call.closed", call.call_id, {
            "incident_type": kind, "urgency": urgency, "location": "Delft", "items_gathered": items,
            "disagreement_flagged": call.scenario_call_id == "house-fire",
            "disagreement_aspect": "fire_smoke_size" if call.scenario_call_id == "house-fire" else "",
            "notes": "",
        })
        steps[call.call_id] = 4


def record_demo_session(out: Path, timeout_s: float = 240.0) -> Path:
    """Play the demo scenario with the robot dispatcher into ``out/recordings``; return the session folder.

    Raises ``AssertionError`` with the runner's output when the run fails or times out."""
    recordings = out / "recordings"
    port = free_port()
    env = dict(os.environ, XDG_CACHE_HOME=str(out / "cache"))
    cmd = [sys.executable, "-m", "workbench.cli", "run", str(REPO / "experiments/demo/scenario.toml"),
           "--no-console", "--no-nasa-tlx", "--participant", "P03", "--port", str(port),
           "--recordings", str(recordings), "--duration", str(timeout_s)]
    with open(out / "run.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        stop = asyncio.Event()

        async def work() -> str:
            task = asyncio.create_task(_robot(f"http://127.0.0.1:{port}", stop))
            deadline = time.monotonic() + timeout_s + 30
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            stop.set()
            return await task

        try:
            sid = asyncio.run(work())
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
    output = (out / "run.log").read_text(errors="replace")
    assert proc.returncode == 0 and "completed" in output and "verify: OK" in output, output
    return recordings / sid


if __name__ == "__main__":
    print(record_demo_session(Path(sys.argv[1])))
