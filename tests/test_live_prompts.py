"""The dispatcher's prompts to the caller (issue 4): ``POST /api/calls/{id}/prompts`` and the caller page's long
poll ``GET /c/{token}/prompts``, each recorded. No WebRTC needed: the ingest in-process, plain HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from workbench.ingest import app as ingest_app
from workbench.ingest.live import MAX_PROMPTS
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings, verify_session


def test_prompts_reach_the_caller_page_by_long_poll_and_are_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_app, "PROMPT_POLL_S", 1.0)
    asyncio.run(_prompts(tmp_path))


async def _prompts(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    handle = await start_ingest(IngestSettings(port=free_port(), recordings=root), Recordings(root))
    api = aiohttp.ClientSession()
    page = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        async with api.post(handle.url + "/api/calls", json={}) as resp:
            call = await resp.json()
        cid, sid, link = call["call_id"], call["session_id"], call["caller_url"]
        async with page.get(link) as resp:
            assert resp.status == 200
        # Another browser may not read the prompts.
        async with api.get(link + "/prompts") as resp:
            assert resp.status == 409

        async def poll(after: int) -> list[dict]:
            async with page.get(f"{link}/prompts?after={after}") as resp:
                assert resp.status == 200
                return (await resp.json())["prompts"]

        started = time.monotonic()
        assert await poll(0) == []  # nothing yet: answered empty after the long-poll time
        assert 0.9 < time.monotonic() - started < 3

        waiting = asyncio.ensure_future(poll(0))
        await asyncio.sleep(0.2)
        async with api.post(f"{handle.url}/api/calls/{cid}/prompts", json={"prompt": "photo", "message": "Foto van de voordeur?"}) as resp:
            assert resp.status == 201 and (await resp.json()) == {"prompt_id": 1}
        got = await asyncio.wait_for(waiting, 2)
        assert got == [{"prompt_id": 1, "prompt": "photo", "message": "Foto van de voordeur?"}]
        async with api.post(f"{handle.url}/api/calls/{cid}/prompts", json={"prompt": "switch_camera"}) as resp:
            assert resp.status == 201
        assert [p["prompt"] for p in await poll(1)] == ["switch_camera"]
        assert len(await poll(0)) == 2  # a reloaded page gets them all again (delivery is recorded once)

        for body, status in (({"prompt": "dance"}, 400), ({"prompt": "photo", "message": "x" * 201}, 400)):
            async with api.post(f"{handle.url}/api/calls/{cid}/prompts", json=body) as resp:
                assert resp.status == status, await resp.text()
        for _ in range(MAX_PROMPTS - 2):
            async with api.post(f"{handle.url}/api/calls/{cid}/prompts", json={"prompt": "end_video"}) as resp:
                assert resp.status == 201
        async with api.post(f"{handle.url}/api/calls/{cid}/prompts", json={"prompt": "end_video"}) as resp:
            assert resp.status == 429

        async with page.post(link + "/hangup") as resp:
            assert resp.status == 200
        async with api.post(f"{handle.url}/api/calls/{cid}/prompts", json={"prompt": "photo"}) as resp:
            assert resp.status == 410
        async with page.get(link + "/prompts") as resp:
            assert resp.status == 410
    finally:
        await page.close()
        await api.close()
        await handle.stop()
    events = [json.loads(line) for line in (root / sid / "events.jsonl").read_text().splitlines()]
    prompts = [e for e in events if e["type"] == "dispatcher.prompt"]
    assert [p["data"]["prompt"] for p in prompts][:2] == ["photo", "switch_camera"] and len(prompts) == MAX_PROMPTS
    assert all(p["source"] == "console" and p["call_id"] == cid for p in prompts)
    delivered = [e["data"] for e in events if e["type"] == "caller.prompt_delivered"]
    assert [d["prompt_id"] for d in delivered] == [1, 2]
    assert 0 <= delivered[0]["ms_since_prompt"] < 1000
    assert verify_session(root / sid).ok
