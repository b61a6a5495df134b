"""Issue 7, roles: access codes, session tickets, and the ingest's HTTP status per role per endpoint class.

The ingest runs for real on a free port with access codes; every endpoint class is called without a token, with a
participant's ticket for its own session, with that ticket on another session, and with the console's, trainer's and
researcher's codes. Expected statuses are written out per row (not derived from the policy table under test).
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import REPO, free_port
from workbench.domain.roles import AccessCodes, AccessError, Credential, Role
from workbench.ingest.roles import HEADER, endpoint_class
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store import access_codes
from workbench.store.recordings import Recordings

DEMO_SCENARIO = (REPO / "experiments" / "demo" / "scenario.toml").read_text(encoding="utf-8")
CODES = AccessCodes(participant="part-code-1", trainer="train-code-1", researcher="research-code-1",
                    console="console-code-0123456789", secret="s" * 32)


# --- codes and tickets (pure) -------------------------------------------------------------------------------------


def test_codes_map_to_roles_and_tickets_to_one_session() -> None:
    assert CODES.role_of("train-code-1") is Role.TRAINER
    assert CODES.role_of(" research-code-1 ") is Role.RESEARCHER
    assert CODES.role_of("nope-nope") is None
    ticket = CODES.session_ticket("S-2026.1")
    assert ticket.startswith("S-2026.1~") and len(ticket) == len("S-2026.1~") + 32
    assert CODES.credential(ticket) == Credential(Role.PARTICIPANT, "S-2026.1")
    forged = "S-2026.2" + ticket[len("S-2026.1"):]
    assert CODES.credential(forged) is None
    other_secret = AccessCodes(participant="part-code-1", trainer="train-code-1", researcher="research-code-1",
                               console="console-code-0123456789", secret="t" * 32)
    assert other_secret.credential(ticket) is None
    # A bare participant code proves nothing at the ingest: the browser needs its station's ticket.
    assert CODES.credential("part-code-1") is None
    assert CODES.credential("") is None


def test_unusable_codes_are_refused_with_what_to_do() -> None:
    with pytest.raises(AccessError, match="trainer access code must be .* at least 6"):
        AccessCodes(participant="part-code-1", trainer="123", researcher="research-code-1",
                    console="console-code-0123456789", secret="s" * 32)
    with pytest.raises(AccessError, match="share one access code"):
        AccessCodes(participant="same-code", trainer="same-code", researcher="research-code-1",
                    console="console-code-0123456789", secret="s" * 32)


def test_codes_file_created_private_outside_recordings_and_reread(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    with pytest.raises(AccessError, match="inside the recordings folder"):
        access_codes.load_or_create(recordings / "access.json", recordings=recordings)
    assert not (recordings / "access.json").exists()
    path = tmp_path / "lab" / "access.json"
    codes, created = access_codes.load_or_create(path, recordings=recordings)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = access_codes.load_or_create(path, recordings=recordings)
    assert again == codes and not created_again
    assert len({codes.participant, codes.trainer, codes.researcher, codes.console}) == 4
    path.write_text(json.dumps({"trainer": "x"}), encoding="utf-8")
    with pytest.raises(AccessError, match="expected a JSON object with the keys participant, trainer"):
        access_codes.load(path)


def test_refusals_are_logged_without_the_code(tmp_path: Path) -> None:
    path = tmp_path / "access.json"
    access_codes.load_or_create(path)
    access_codes.log_refusal(path, page="trainer", wanted=Role.TRAINER, reason="wrong code")
    lines = (tmp_path / "access-log.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert (row["page"], row["wanted"], row["reason"]) == ("trainer", "trainer", "wrong code")


def test_endpoint_classes() -> None:
    assert endpoint_class("GET", "/healthz") == "public"
    assert endpoint_class("POST", "/c/{token}/offer") == "public"
    assert endpoint_class("GET", "/t/{access}/api/calls/{call_id}/live") == "call"
    assert endpoint_class("GET", "/api/sessions/{sid}/events") == "sessions_read"
    assert endpoint_class("POST", "/api/sessions/{sid}/events") == "own_session"
    assert endpoint_class("POST", "/api/sessions/{sid}/control") == "control"
    assert endpoint_class("GET", "/api/map/heat.svg") == "analysis"
    assert endpoint_class("GET", "/t/{access}/api/sessions/{sid}/head") == "own_session"
    assert endpoint_class("GET", "/api/something/new") == "other"


# --- the HTTP boundary ----------------------------------------------------------------------------------------------


async def _status(http: aiohttp.ClientSession, method: str, url: str, token: str | None, body=None) -> int:
    headers = {HEADER: token} if token else {}
    async with http.request(method, url, json=body, headers=headers) as resp:
        await resp.read()
        return resp.status


def test_http_status_per_role_per_endpoint_class(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        root = tmp_path / "rec"
        settings = IngestSettings(port=port, recordings=root, access=CODES)
        handle = await start_ingest(settings, Recordings(root))
        base = handle.url
        try:
            async with aiohttp.ClientSession() as http:
                trainer = CODES.trainer

                async def post(path: str, body: dict) -> dict:
                    async with http.post(base + path, json=body, headers={HEADER: trainer}) as resp:
                        assert resp.status in (200, 201), await resp.text()
                        return await resp.json()

                own = (await post("/api/sessions", {"participant": "P01", "scenario_toml": DEMO_SCENARIO}))["session_id"]
                other = (await post("/api/sessions", {"participant": "P02"}))["session_id"]
                own_call = (await post("/api/calls", {"session_id": own}))["call_id"]
                other_call = (await post("/api/calls", {"session_id": other}))["call_id"]
                ticket = CODES.session_ticket(own)
                focus = {"source": "console", "type": "console.focus", "call_id": own_call,
                         "data": {"panel": "form", "trigger": "pointer", "browser_ms": 1.0}}
                runner_event = {"source": "runner", "type": "block.practice", "call_id": None,
                                "data": {"block_id": "b1"}}
                control = {"action": "pause"}
                # (what, method, path, body, {token name: expected status})
                rows = [
                    ("health", "GET", "/healthz", None,
                     dict(none=200, ticket=200, console=200, trainer=200, researcher=200)),
                    ("clock", "GET", "/api/clock", None,
                     dict(none=401, ticket=200, console=200, trainer=200, researcher=200)),
                    ("own call status", "GET", f"/api/calls/{own_call}", None,
                     dict(none=401, ticket=200, console=200, trainer=200, researcher=200)),
                    ("other session's call", "GET", f"/api/calls/{other_call}", None,
                     dict(none=401, ticket=403, console=200, trainer=200, researcher=200)),
                    ("other call's viewer", "GET", f"/api/calls/{other_call}/viewer", None,
                     dict(none=401, ticket=403, console=200, trainer=200, researcher=200)),
                    ("own session's map", "GET", f"/api/sessions/{own}/map.svg", None,
                     dict(none=401, ticket=200, console=200, trainer=200, researcher=200)),
                    ("other session's map", "GET", f"/api/sessions/{other}/map.svg", None,
                     dict(none=401, ticket=403, console=200, trainer=200, researcher=200)),
                    ("own session's head (the console page's change watcher)", "GET",
                     f"/api/sessions/{own}/head", None,
                     dict(none=401, ticket=200, console=200, trainer=200, researcher=200)),
                    ("other session's head", "GET", f"/api/sessions/{other}/head", None,
                     dict(none=401, ticket=403, console=200, trainer=200, researcher=200)),
                    ("own event log (ground truth, manipulations)", "GET", f"/api/sessions/{own}/events", None,
                     dict(none=401, ticket=403, console=200, trainer=200, researcher=200)),
                    ("session list", "GET", "/api/sessions", None,
                     dict(none=401, ticket=403, console=200, trainer=200, researcher=200)),
                    ("post own console event", "POST", f"/api/sessions/{own}/events", focus,
                     dict(none=401, ticket=201, console=201, trainer=201, researcher=403)),
                    ("post a runner event as a station", "POST", f"/api/sessions/{own}/events", runner_event,
                     dict(none=401, ticket=403, console=201, trainer=201, researcher=403)),
                    ("post to another session", "POST", f"/api/sessions/{other}/events",
                     {**focus, "call_id": other_call},
                     dict(none=401, ticket=403, console=201, trainer=201, researcher=403)),
                    ("control", "POST", f"/api/sessions/{own}/control", control,
                     dict(none=401, ticket=403, console=403, trainer=200, researcher=403)),
                    ("create session", "POST", "/api/sessions", {"participant": "P09"},
                     dict(none=401, ticket=403, console=403, trainer=201, researcher=403)),
                    ("create call", "POST", "/api/calls", {"session_id": own},
                     dict(none=401, ticket=403, console=201, trainer=201, researcher=403)),
                    ("heat map of every session", "GET", "/api/map/heat.svg", None,
                     dict(none=401, ticket=403, console=403, trainer=200, researcher=200)),
                ]
                tokens = {"none": None, "ticket": ticket, "console": CODES.console, "trainer": trainer,
                          "researcher": CODES.researcher}
                got = {}
                for what, method, path, body, expected in rows:
                    for name, token in tokens.items():
                        got[(what, name)] = await _status(http, method, base + path, token, body)
                expected_all = {(what, name): exp[name] for what, _m, _p, _b, exp in rows for name in tokens}
                wrong = {k: (got[k], expected_all[k]) for k in got if got[k] != expected_all[k]}
                assert not wrong, f"(endpoint, role): (got, expected) {wrong}"

                # The browser's ticket in the path prefix: photos, viewer and events without headers.
                async with http.get(f"{base}/t/{ticket}/api/calls/{own_call}/viewer") as resp:
                    page = await resp.text()
                    assert resp.status == 200
                    assert f"/t/{ticket}/api/calls/{own_call}/live" in page
                async with http.get(f"{base}/t/{ticket}/api/calls/{other_call}") as resp:
                    assert resp.status == 403
                async with http.get(f"{base}/t/{ticket}/api/sessions/{own}/events") as resp:
                    assert resp.status == 403
                # The console page's change watcher polls its own session's head through the station link.
                async with http.get(f"{base}/t/{ticket}/api/sessions/{own}/head?watch=call.") as resp:
                    assert resp.status == 200 and (await resp.json())["last"]["call."] > 0
                async with http.get(f"{base}/t/not-a-ticket/api/clock") as resp:
                    assert resp.status == 401
                    assert "access code" in (await resp.json())["error"]
                async with http.get(f"{base}/api/clock?access={ticket}") as resp:
                    assert resp.status == 200
                # A participant code typed at the API proves nothing.
                assert await _status(http, "GET", base + "/api/clock", CODES.participant) == 401
                # The caller's one-time link stays as it was: no token needed.
                async with http.post(base + "/api/calls", json={"session_id": own},
                                     headers={HEADER: trainer}) as resp:
                    caller_url = (await resp.json())["caller_url"]
                async with http.get(caller_url) as resp:
                    assert resp.status == 200
        finally:
            await handle.stop()

    asyncio.run(main())


def test_without_codes_everything_stays_open(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        settings = IngestSettings(port=port, recordings=tmp_path)
        handle = await start_ingest(settings, Recordings(tmp_path))
        try:
            async with aiohttp.ClientSession() as http:
                assert await _status(http, "GET", handle.url + "/api/sessions", None) == 200
                assert await _status(http, "GET", handle.url + "/t/x/api/sessions", None) == 404
        finally:
            await handle.stop()

    asyncio.run(main())
