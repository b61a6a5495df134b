"""The ingest's side of the browser-timed console events: ``GET /api/clock`` and CORS on the events POST."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from tests.conftest import free_port
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings


def test_clock_and_cors_for_posting_events(tmp_path):
    async def main() -> None:
        ingest = await start_ingest(IngestSettings(host="127.0.0.1", port=free_port(), recordings=tmp_path,
                                                   ice_mode="loopback"))
        try:
            def requests() -> None:
                def call(method: str, path: str, body: dict | None = None, headers: dict | None = None):
                    data = None if body is None else json.dumps(body).encode()
                    req = urllib.request.Request(ingest.url + path, data=data, method=method, headers=headers or {})
                    with urllib.request.urlopen(req, timeout=5) as resp:
                        return resp.status, dict(resp.headers), resp.read()

                _, _, raw = call("GET", "/api/clock")
                t1 = json.loads(raw)["t_mono_ns"]
                _, _, raw = call("GET", "/api/clock")
                assert json.loads(raw)["t_mono_ns"] >= t1 > 0
                _, _, raw = call("POST", "/api/sessions", {"participant": "P01"},
                                 {"Content-Type": "application/json"})
                sid = json.loads(raw)["session_id"]
                status, headers, _ = call("OPTIONS", f"/api/sessions/{sid}/events", None, {
                    "Origin": "http://127.0.0.1:8501", "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type"})
                assert status == 204 and headers["Access-Control-Allow-Origin"] == "*"
                assert headers["Access-Control-Allow-Methods"] == "POST"
                assert "Content-Type" in headers["Access-Control-Allow-Headers"]
                body = {"source": "console", "type": "drt.response", "call_id": None,
                        "data": {"run_id": "r", "stimulus_index": -1, "response_ms": 5.0, "rt_ms": -1.0,
                                 "input": "key"}}
                status, headers, _ = call("POST", f"/api/sessions/{sid}/events", body,
                                          {"Content-Type": "application/json", "Origin": "http://127.0.0.1:8501"})
                assert status == 201 and headers["Access-Control-Allow-Origin"] == "*"

            await asyncio.to_thread(requests)
        finally:
            await ingest.stop()

    asyncio.run(main())
