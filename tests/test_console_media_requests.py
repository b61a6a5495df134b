"""The ingest client's snapshot and prompt requests against the real ingest, and the still endpoint the console's
gallery uses, on bad input (the happy path runs in tests/test_console_browser.py with a live caller)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.console_harness import ingest_rig  # noqa: F401 (fixture)
from workbench.console.ingest_client import IngestError


def test_snapshot_and_prompt_requests_fail_clearly_and_the_still_endpoint_serves_only_stills(ingest_rig):  # noqa: F811
    client = ingest_rig.start_ingest()
    sid = client.create_session("P31")
    cid = client.create_call(sid, modality="video", caller_label="06-0000")["call_id"]

    with pytest.raises(IngestError) as no_frame:
        client.request_snapshot(cid)
    assert no_frame.value.status == 404 and "no video frame yet" in str(no_frame.value)
    with pytest.raises(IngestError) as bad_prompt:
        client.prompt_caller(cid, "dance")
    assert bad_prompt.value.status == 400 and "photo, switch_camera, end_video" in str(bad_prompt.value)
    assert client.prompt_caller(cid, "switch_camera") == 1
    assert [(e.source, e.data.prompt) for e in client.events(sid) if e.type == "dispatcher.prompt"] == [
        ("console", "switch_camera")]

    def status_of(name: str) -> tuple[int, bytes]:
        url = f"{ingest_rig.ingest.url}/api/calls/{cid}/snapshots/{name}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    for name in ("..%2Fevents.jsonl", "events.jsonl", "photo-p1-display.jpg", "snapshot-1.jpg"):
        code, body = status_of(name)
        assert code == 404 and b"snapshot names look like snapshot-0001.jpg" in body, (name, body)
    code, body = status_of("snapshot-0001.jpg")
    assert code == 404 and b"has no snapshot" in body
