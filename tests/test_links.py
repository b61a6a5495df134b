"""Link proposals between reports (issue 11): the pure score, and the ingest proposing links, taking the
dispatcher's decisions and links by hand (EIDO parent/child/related/unlink) and giving triage advice, over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from tests.conftest import REPO, free_port
from workbench.domain import events as ev
from workbench.domain.links import LinkState
from workbench.ingest.links import AIDS
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.runner.demo_media import resolve_media
from workbench.screening.linking import (
    PROPOSE_AT,
    WEIGHTS,
    ReportFeatures,
    colour_histogram,
    haversine_m,
    inferred_type,
    image_similarity,
    score_link,
)
from workbench.screening.transcript import extract_facts
from workbench.store.scenarios import load_scenario

MULTI = REPO / "experiments" / "multi-caller" / "scenario.toml"


# --- the pure score ------------------------------------------------------------------------------------------------


def test_weights_sum_to_one_and_time_alone_never_proposes() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    alone = score_link(ReportFeatures("a", 0.0), ReportFeatures("b", 0.0))
    assert alone.score == pytest.approx(0.1 + 0.9 * 0.5) and alone.score < PROPOSE_AT
    assert alone.components["distance"] is None
    assert "no evidence yet: distance, type, text, image" in alone.reasons


def test_haversine_against_independent_references() -> None:
    # One degree of latitude on the mean-radius sphere is R * pi / 180 = 111 195 m.
    assert haversine_m((52.0, 4.0), (53.0, 4.0)) == pytest.approx(111_195, abs=1)
    # Short distances: the equirectangular approximation agrees to well under a metre at 2 km.
    a, b = (52.0121, 4.3590), (51.9975, 4.3740)
    dy = (b[0] - a[0]) * 111_195.0
    dx = (b[1] - a[1]) * 111_195.0 * np.cos(np.radians((a[0] + b[0]) / 2))
    assert haversine_m(a, b) == pytest.approx(float(np.hypot(dx, dy)), abs=1)


def test_image_similarity_of_identical_and_different_pictures() -> None:
    red = np.zeros((40, 40, 3), np.uint8)
    red[:] = (0, 0, 255)
    blue = np.zeros((40, 40, 3), np.uint8)
    blue[:] = (255, 0, 0)
    assert image_similarity(colour_histogram(red), colour_histogram(red)) == pytest.approx(1.0)
    assert image_similarity(colour_histogram(red), colour_histogram(blue)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="uint8 BGR"):
        colour_histogram(np.zeros((4, 4), np.uint8))


def _features(tmp_path: Path, *, lines: bool, photos: bool) -> dict[str, ReportFeatures]:
    s = load_scenario(MULTI)
    out = {}
    for c in s.calls:
        hist = None
        if photos and c.media.photos:
            image = cv2.imread(str(resolve_media(c.media.photos[0].file, tmp_path)), cv2.IMREAD_REDUCED_COLOR_4)
            hist = colour_histogram(image)
        text = tuple(u.text for u in c.utterances) if lines else ()
        kind = inferred_type(extract_facts(list(text))) if text else ""
        out[c.id] = ReportFeatures(c.id, c.arrival_s, c.truth.caller_position, "network location",
                                   kind, "from transcript" if kind else "", text, hist)
    return out


@pytest.mark.parametrize(("lines", "photos"), [(False, False), (True, False), (True, True)])
def test_designed_scenario_true_pairs_are_proposed_and_the_look_alike_fire_is_not(
    tmp_path: Path, lines: bool, photos: bool
) -> None:
    s = load_scenario(MULTI)
    feats = _features(tmp_path, lines=lines, photos=photos)
    ids = [c.id for c in s.calls]
    proposed, truth = set(), set()
    for i, a in enumerate(ids):
        for b in ids[:i]:
            if s.incident_of(a) == s.incident_of(b):
                truth.add(frozenset((a, b)))
            if score_link(feats[a], feats[b]).proposed:
                proposed.add(frozenset((a, b)))
    assert len(truth) == 3
    assert proposed == truth  # precision and recall 1 by design, at every stage of evidence


def test_reasons_name_every_component_with_its_evidence(tmp_path: Path) -> None:
    feats = _features(tmp_path, lines=True, photos=True)
    shed = score_link(feats["shed-fire"], feats["fire-neighbour"])
    text = " | ".join(shed.reasons)
    assert "callers 1921 m apart (network location" in text
    assert "image colours alike 1.00" in text  # the same generated fire photo ...
    assert "different streets (schoemakerstraat / kerkstraat)" in text  # ... but not the same place
    assert not shed.proposed
    same = score_link(feats["fire-passerby"], feats["fire-neighbour"])
    assert any("both name Kerkstraat" in r for r in same.reasons)
    assert "same type fire (from transcript)" in same.reasons
    c = same.components
    assert c["type"] == 1.0 and c["text"] == pytest.approx(0.9) and c["image"] == pytest.approx(1.0)
    assert same.score == pytest.approx(0.10 * c["time"] + 0.35 * c["distance"] + 0.20 + 0.20 * 0.9 + 0.15)


# --- the ingest: proposals, decisions, manual links, advice --------------------------------------------------------


async def _post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _events(http: aiohttp.ClientSession, base: str, sid: str, handle: Any = None) -> list[ev.Event]:
    """The session's log; with the ingest's ``handle``, once the aids computed off its loop are written (the
    console's ``GET .../links`` waits for them the same way)."""
    if handle is not None:
        await handle.app[AIDS].settle(sid)
    data = await _get(http, f"{base}/api/sessions/{sid}/events")
    return [ev.event_from_dict(e) for e in data["events"]]


async def _send_photo(base: str, caller_url: str, path: Path) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(caller_url) as resp:
            assert resp.status == 200
        form = aiohttp.FormData()
        form.add_field("photo", path.read_bytes(), filename="fire.jpg", content_type="image/jpeg")
        async with browser.post(f"{caller_url}/photos", data=form) as resp:
            assert resp.status == 201, await resp.text()


def test_ingest_proposes_links_takes_decisions_and_gives_advice(tmp_path: Path) -> None:
    scenario = load_scenario(MULTI)
    photo = resolve_media("builtin:demo_fire_photo", tmp_path / "cache")
    assert photo is not None

    async def main() -> None:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=tmp_path / "rec"))
        base = handle.url
        try:
            async with aiohttp.ClientSession() as http:
                status, data = await _post(http, f"{base}/api/sessions",
                                           {"participant": "P01", "scenario_toml": MULTI.read_text()})
                assert status == 201
                sid = data["session_id"]
                calls: dict[str, str] = {}
                urls: dict[str, str] = {}
                for spec in scenario.calls:
                    status, data = await _post(http, f"{base}/api/calls", {
                        "session_id": sid, "scenario_call_id": spec.id, "block_id": "multi", "modality": "photo",
                        "caller_label": spec.caller_label})
                    assert status == 201
                    calls[spec.id], urls[spec.id] = data["call_id"], data["caller_url"]
                    for u in spec.utterances:
                        body = {"source": "runner", "type": "caller.utterance", "call_id": calls[spec.id],
                                "data": {"index": 0, "text": u.text, "at_s": u.at_s}}
                        assert (await _post(http, f"{base}/api/sessions/{sid}/events", body))[0] == 201
                for spec in scenario.calls:
                    if spec.media.photos:
                        await _send_photo(base, urls[spec.id], photo)
                events = await _events(http, base, sid, handle)
                by_call = {v: k for k, v in calls.items()}
                proposed = {frozenset((by_call[e.call_id or ""], by_call[e.data.other_call_id]))
                            for e in events if isinstance(e.data, ev.LinkProposed)}
                assert proposed == {frozenset(p) for p in [("fire-neighbour", "fire-passerby"),
                                                            ("fire-neighbour", "fire-upstairs"),
                                                            ("fire-passerby", "fire-upstairs")]}
                first = next(e for e in events if isinstance(e.data, ev.LinkProposed))
                assert first.source == "ingest" and first.call_id == calls["fire-passerby"]
                assert first.data.other_call_id == calls["fire-neighbour"] and first.data.score >= 0.6
                assert first.data.image_score == ev.NO_EVIDENCE  # proposed on arrival, before any photo
                assert any("m apart (network location" in r for r in first.data.reasons)
                # The lines and photos that came later raised its score: rescored, with the new reasons.
                rescored = [e for e in events if isinstance(e.data, ev.LinkRescored)
                            and e.data.proposal_id == first.data.proposal_id]
                assert rescored and all(e.call_id == first.call_id for e in rescored)
                latest = LinkState.from_events(events).proposals[first.data.proposal_id]
                assert latest.first_score == first.data.score < 0.7 and latest.score > 0.8
                assert any("both name Kerkstraat" in r for r in latest.reasons)
                written = [first.data.score] + [e.data.score for e in rescored]
                assert all(abs(b - a) >= 0.1 for a, b in zip(written, written[1:]))  # no flicker below the step

                # advice in a block with advice on: fire with people inside -> spoed (T3), with the reasons
                advice = [e for e in events if isinstance(e.data, ev.AdviceGiven)]
                upstairs = [e for e in advice if e.call_id == calls["fire-upstairs"]]
                assert upstairs[-1].data.urgency == "spoed" and "T3" in upstairs[-1].data.rules
                neighbour = [e for e in advice if e.call_id == calls["fire-neighbour"]]
                assert neighbour[-1].data.urgency == "nu" and "M2" in neighbour[-1].data.rules  # the photo's fire

                # the dispatcher's side: GET, accept as child, reject, errors
                view = await _get(http, f"{base}/api/calls/{calls['fire-neighbour']}/links")
                assert {p["other_caller_label"] for p in view["proposals"]} == {"06-2222 3333", "06-6666 7777"}
                assert view["advice"]["urgency"] == "nu"
                pid = next(p["proposal_id"] for p in view["proposals"] if p["other_call_id"] == calls["fire-passerby"])
                decide = f"{base}/api/calls/{calls['fire-neighbour']}/links/decisions"
                status, data = await _post(http, decide, {"proposal_id": pid, "decision": "accept", "relation": "bad"})
                assert status == 400 and "relation" in data["error"]
                status, data = await _post(http, decide, {"proposal_id": pid, "decision": "accept",
                                                          "relation": "child"})
                assert status == 201 and [e["type"] for e in data["events"]] == ["link.decided", "link.set"]
                status, data = await _post(http, decide, {"proposal_id": pid, "decision": "reject"})
                assert status == 409 and "decided already" in data["error"]
                status, data = await _post(http, decide, {"proposal_id": "lp99", "decision": "reject"})
                assert status == 404
                other = next(p["proposal_id"] for p in view["proposals"] if p["proposal_id"] != pid)
                assert (await _post(http, decide, {"proposal_id": other, "decision": "reject"}))[0] == 201
                # seen from the passer-by, the neighbour is its parent
                seen = await _get(http, f"{base}/api/calls/{calls['fire-passerby']}/links")
                assert seen["links"] == [{"other_call_id": calls["fire-neighbour"],
                                          "other_caller_label": "06-1234 5678", "relation": "parent"}]

                # by hand: link the shed fire as related, then unlink it; unlinking twice is a conflict
                manual = f"{base}/api/calls/{calls['shed-fire']}/links"
                status, _ = await _post(http, manual, {"other_call_id": calls["fire-neighbour"],
                                                       "relation": "related"})
                assert status == 201
                assert (await _post(http, manual, {"other_call_id": calls["shed-fire"], "relation": "related"}))[0] == 400
                assert (await _post(http, manual, {"other_call_id": "nope", "relation": "related"}))[0] == 404
                assert (await _post(http, manual, {"other_call_id": calls["fire-neighbour"],
                                                   "relation": "unlink"}))[0] == 201
                status, data = await _post(http, manual, {"other_call_id": calls["fire-neighbour"],
                                                          "relation": "unlink"})
                assert status == 409 and "not linked" in data["error"]

                events = await _events(http, base, sid, handle)
                state = LinkState.from_events(events)
                assert state.links_of(calls["fire-neighbour"]) == [(calls["fire-passerby"], "child")]
                decided = {p.decision for p in state.proposals.values()}
                assert decided == {"accept", "reject", ""}
                kinds = [e.type for e in events if e.type.startswith("link.") and e.source == "console"]
                assert kinds == ["link.decided", "link.set", "link.decided", "link.set", "link.removed"]
        finally:
            await handle.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_after_an_ingest_restart_nothing_is_proposed_twice(tmp_path: Path) -> None:
    scenario = load_scenario(MULTI)

    async def create(http: aiohttp.ClientSession, base: str, name: str) -> str:
        spec = scenario.call(name)
        status, data = await _post(http, f"{base}/api/calls", {
            "session_id": "restart", "scenario_call_id": name, "block_id": "multi", "modality": "photo",
            "caller_label": spec.caller_label})
        assert status == 201, data
        return data["call_id"]

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            handle = await start_ingest(IngestSettings(port=free_port(), recordings=tmp_path / "rec"))
            try:
                await _post(http, f"{handle.url}/api/sessions", {"participant": "P01", "session_id": "restart",
                                                                 "scenario_toml": MULTI.read_text()})
                first = await create(http, handle.url, "fire-neighbour")
                second = await create(http, handle.url, "fire-passerby")
            finally:
                await handle.stop()
            handle = await start_ingest(IngestSettings(port=free_port(), recordings=tmp_path / "rec"))
            try:
                # New evidence on the old pair after the restart, then a third report of the incident.
                body = {"source": "runner", "type": "caller.utterance", "call_id": second,
                        "data": {"index": 0, "text": "Kerkstraat 12 is on fire!", "at_s": 0}}
                assert (await _post(http, f"{handle.url}/api/sessions/restart/events", body))[0] == 201
                third = await create(http, handle.url, "fire-upstairs")
                events = await _events(http, handle.url, "restart", handle)
            finally:
                await handle.stop()
        proposals = [(e.data.proposal_id, e.call_id, e.data.other_call_id) for e in events
                     if isinstance(e.data, ev.LinkProposed)]
        assert proposals == [("lp1", second, first), ("lp2", third, first), ("lp3", third, second)]

    asyncio.run(asyncio.wait_for(main(), 60))


def test_advice_only_in_blocks_with_advice_on(tmp_path: Path) -> None:
    """advice-study: the same kind of fire report gets advice in block "advice" and none in block "no-advice"."""
    from workbench.ingest.automation import Automation
    from workbench.store.eventlog import MemoryEventLog

    folder = tmp_path
    (folder / "scenario.toml").write_bytes((REPO / "experiments/multi-caller/advice-study.toml").read_bytes())
    log = MemoryEventLog("s")
    auto = Automation(lambda sid, p, c: auto.on_event(log.append("ingest", p, c)), lambda sid: log.events(),
                      lambda sid: folder)

    def add(source: str, payload: ev.Payload, call_id: str) -> None:
        auto.on_event(log.append(source, payload, call_id))

    add("ingest", ev.CallCreated("fire-upstairs", "advice", "photo", "a"), "a")
    add("runner", ev.CallerUtterance(0, "Kerkstraat 12 is on fire, two people inside upstairs.", 0), "a")
    add("ingest", ev.CallCreated("shed-fire", "no-advice", "photo", "b"), "b")
    add("runner", ev.CallerUtterance(0, "My neighbour's garden shed is burning, it is on fire.", 0), "b")
    given = [(e.call_id, e.data.urgency, e.data.rules) for e in log.events() if isinstance(e.data, ev.AdviceGiven)]
    assert given == [("a", "spoed", ["T3", "T5"])]


def test_a_failing_aid_never_fails_the_event_that_triggered_it(caplog, tmp_path: Path) -> None:
    from workbench.ingest.automation import Automation
    from workbench.store.eventlog import MemoryEventLog

    folder = tmp_path
    (folder / "scenario.toml").write_bytes(MULTI.read_bytes())
    log = MemoryEventLog("s")
    calls = {"n": 0}

    def broken_append(sid: str, payload: ev.Payload, call_id: str) -> None:
        calls["n"] += 1
        raise OSError("disk full")

    auto = Automation(broken_append, lambda sid: log.events(), lambda sid: folder)
    auto.on_event(log.append("ingest", ev.CallCreated("fire-neighbour", "multi", "photo", "a"), "a"))
    auto.on_event(log.append("ingest", ev.CallCreated("fire-passerby", "multi", "photo", "b"), "b"))  # proposes
    assert calls["n"] == 1 and "rebuilding from the log" in caplog.text
