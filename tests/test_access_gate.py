"""Issue 7: the access-code gate of the dispatcher and researcher pages under AppTest (no ingest needed: a page
stops before it talks to one), and the dispatcher page's station binding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.console.launch import APP_PATH, RESEARCH_PATH
from workbench.store import access_codes


@pytest.fixture()
def codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "lab" / "access.json"
    codes = access_codes.load_or_create(path)[0]
    monkeypatch.setenv("WORKBENCH_ACCESS_FILE", str(path))
    monkeypatch.setenv("WORKBENCH_INGEST_URL", "http://127.0.0.1:9")  # nothing listens: the gate comes first
    monkeypatch.setenv("WORKBENCH_RECORDINGS", str(tmp_path / "recordings"))
    return codes, path


def _enter(at: AppTest, page: str, code: str) -> AppTest:
    at.text_input(key=f"access_code_{page}").input(code)
    return at.button(key=f"access_open_{page}").click().run()


def test_researcher_page_takes_researcher_or_trainer_codes_only(codes) -> None:
    codes, path = codes
    at = AppTest.from_file(str(RESEARCH_PATH), default_timeout=30).run()
    assert "analyse" not in [b.key for b in at.button]
    _enter(at, "researcher", codes.participant)
    assert [e.value for e in at.error] == [
        "A participant's code does not open the researcher's page. This page is for: researcher, trainer."]
    assert "analyse" not in [b.key for b in at.button]
    _enter(at, "researcher", codes.researcher)
    assert "analyse" in [b.key for b in at.button] and not at.error
    row = json.loads((path.parent / "access-log.jsonl").read_text().splitlines()[-1])
    assert (row["page"], row["wanted"], row["reason"]) == ("researcher", "researcher",
                                                          "participant code on the researcher page")


def test_dispatcher_page_needs_the_participant_code_and_a_valid_station_link(codes) -> None:
    codes, path = codes
    at = AppTest.from_file(str(APP_PATH), default_timeout=30).run()
    _enter(at, "dispatcher", codes.researcher)
    assert [e.value for e in at.error] == [
        "A researcher's code does not open the dispatcher console. This page is for: participant, trainer."]
    _enter(at, "dispatcher", codes.participant)
    assert any("This station has no session yet" in i.value for i in at.info)

    forged = AppTest.from_file(str(APP_PATH), default_timeout=30)
    forged.query_params["session"] = "S2"
    forged.query_params["ticket"] = codes.session_ticket("S1").replace("S1", "S2", 1)
    forged.run()
    _enter(forged, "dispatcher", codes.participant)
    assert [e.value for e in forged.error] == [
        "This station link is not valid (it may be from another workbench run). Ask the trainer for the current "
        "station link."]
    reasons = [json.loads(x)["reason"] for x in (path.parent / "access-log.jsonl").read_text().splitlines()]
    assert reasons == ["researcher code on the dispatcher page", "invalid station ticket"]


def test_debrief_page_shows_ground_truth_to_the_trainer_only(codes, tmp_path: Path, monkeypatch) -> None:
    from tests.test_debrief import write_session
    from workbench.console.launch import DEBRIEF_PATH

    codes, path = codes
    write_session(tmp_path / "recordings")  # s1, with its ground truth
    monkeypatch.setenv("WORKBENCH_DEBRIEF_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_DEBRIEF_SESSION", raising=False)
    at = AppTest.from_file(str(DEBRIEF_PATH), default_timeout=30).run()
    for role, code in (("participant", codes.participant), ("researcher", codes.researcher)):
        _enter(at, "trainer", code)
        assert [e.value for e in at.error] == [
            f"A {role}'s code does not open the trainer's page. This page is for: trainer."]
        assert not at.subheader and not at.selectbox, "the debrief showed something before the trainer's code"
    _enter(at, "trainer", codes.trainer)
    assert [s.value for s in at.subheader] == ["Debrief of session s1"] and not at.error
    reasons = [json.loads(x)["reason"] for x in (path.parent / "access-log.jsonl").read_text().splitlines()]
    assert reasons == ["participant code on the trainer page", "researcher code on the trainer page"]


def _station_page() -> None:
    """The dispatcher page's gate and station binding alone (the real page goes on to the ingest)."""
    import os

    import streamlit as st

    from workbench.console import access
    from workbench.console.launch import ConsoleConfig

    cfg, token = access.dispatcher_config(ConsoleConfig.from_env(os.environ), os.environ)
    st.markdown(f"station session {cfg.session_id} via {cfg.public_ingest_url}")


def test_a_valid_station_ticket_opens_the_dispatcher_page_without_a_code_for_its_session_only(codes) -> None:
    codes, path = codes
    ticket = codes.session_ticket("S1")
    opened = []
    for _ in range(2):  # the first visit and a reload (a new browser session): neither asks for the code
        at = AppTest.from_function(_station_page, default_timeout=30)
        at.query_params["session"] = "S2"  # edited by hand: the ticket's session wins
        at.query_params["ticket"] = ticket
        at.run()
        assert not at.exception and not at.error
        assert [t.key for t in at.text_input] == []
        opened.append(at.markdown[0].value)
    assert opened == [f"station session S1 via http://127.0.0.1:9/t/{ticket}"] * 2

    forged = AppTest.from_function(_station_page, default_timeout=30)
    forged.query_params["ticket"] = ticket.replace("S1", "S2", 1)
    forged.run()
    assert [t.key for t in forged.text_input] == ["access_code_dispatcher"] and not forged.markdown

    # The ticket does not open the trainer's or the researcher's page.
    from workbench.console.trainer_launch import TRAINER_PATH
    for page, name in ((TRAINER_PATH, "trainer"), (RESEARCH_PATH, "researcher")):
        other = AppTest.from_file(str(page), default_timeout=30)
        other.query_params["ticket"] = ticket
        other.run()
        assert [t.key for t in other.text_input] == [f"access_code_{name}"]
