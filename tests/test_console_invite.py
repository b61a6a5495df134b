"""The dispatcher (or trainer) invites a live actor as caller: a new one-time link shown as URL and QR code."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.console_harness import ingest_rig  # noqa: F401 (fixture)
from workbench.console.launch import APP_PATH


def test_new_caller_link_creates_a_call_and_shows_its_qr_code(tmp_path: Path, ingest_rig, monkeypatch) -> None:  # noqa: F811
    client = ingest_rig.start_ingest()
    ingest = ingest_rig.ingest
    sid = client.create_session("P03")
    monkeypatch.setenv("WORKBENCH_INGEST_URL", ingest.url)
    monkeypatch.setenv("WORKBENCH_SESSION", sid)
    at = AppTest.from_file(str(APP_PATH), default_timeout=30).run()
    assert not at.exception
    at.sidebar.button(key="new_caller_link").click().run()
    assert not at.exception

    created = [e for e in client.events(sid) if e.type == "call.created"]
    assert [(e.data.caller_label, e.data.modality) for e in created] == [("live caller", "video")]
    [code] = [c.value for c in at.sidebar.code]
    assert code.startswith(f"{ingest.url}/c/")
    status = client.call_status(created[0].call_id)
    assert status["state"] == "created"

    # The QR code is the ingest's (its content is tested in tests/test_ingest_api.py); the page shows it.
    assert "<svg" in client.call_qr_svg(created[0].call_id)
    assert not any("No QR code" in str(c.value) for c in at.sidebar.caption)
    [expander] = [b for b in at.sidebar.expander if b.label == "Live caller link (QR)"]
    assert [type(c).__name__ for c in expander.children.values()] == ["Button", "Image", "Code", "Caption"]
