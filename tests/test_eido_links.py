"""EIDO ``linkComponent`` from the dispatcher's link events (issue 10's last gap, issue 11's events), checked field
by field on a multi-caller session written with the real store code and a fake clock (exact timestamps)."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.eido import DEFAULT_AGENCY, export_eido
from tests.conftest import REPO
from tests.test_eido import FakeClock, at  # the same fake clock and timestamps
from workbench.cli import main as cli_main
from workbench.domain import events as ev
from workbench.store.recordings import Recordings, SessionHeader, sha256_hex

MULTI = (REPO / "experiments" / "multi-caller" / "scenario.toml").read_bytes()
A = DEFAULT_AGENCY


def record_multi_caller_session(root: Path) -> Path:
    """Three reports of the Kerkstraat fire (n1 neighbour, n2 passer-by, n3 upstairs) and the look-alike shed fire
    (n4). t=10: n2 proposed with n1, accepted at t=12 with n1 as parent; t=20: n3 proposed with n1, rejected at
    t=21, then linked by hand at t=22 to n2 as related; t=30: n4 linked by hand to n1 as child, unlinked at t=31."""
    clock = FakeClock()
    header = SessionHeader("multi-s1", "P01", "multi-caller", sha256_hex(MULTI), ["multi"], 0, "0.1.0", at(0))
    folder = Recordings(root, clock=clock).create_session(header, scenario_bytes=MULTI)
    log = folder.event_log()
    log.append("ingest", ev.SessionStarted("P01", "multi-caller", sha256_hex(MULTI), 0, ["multi"], "0.1.0"))
    log.append("runner", ev.BlockStarted("multi", "photo", 0))
    log.append("ingest", ev.CallCreated("fire-neighbour", "multi", "photo", "06-1234 5678"), call_id="n1")
    log.append("console", ev.CallAnswered("st1"), call_id="n1")
    clock.advance(10)  # t=10
    log.append("ingest", ev.CallCreated("fire-passerby", "multi", "photo", "06-2222 3333"), call_id="n2")
    log.append("ingest", ev.LinkProposed("lp1", "n1", 0.65, ["callers 100 m apart"], 1.0, 0.78, -1.0, -1.0, -1.0),
               call_id="n2")
    clock.advance(2)  # t=12
    log.append("console", ev.LinkDecided("lp1", "n2", "accept", "child"), call_id="n1")
    log.append("console", ev.LinkSet("n2", "child", "proposal", "lp1"), call_id="n1")
    clock.advance(8)  # t=20
    log.append("ingest", ev.CallCreated("fire-upstairs", "multi", "photo", "06-6666 7777"), call_id="n3")
    log.append("ingest", ev.LinkProposed("lp2", "n1", 0.68, ["callers 58 m apart"], 1.0, 0.86, -1.0, -1.0, -1.0),
               call_id="n3")
    clock.advance(1)  # t=21
    log.append("console", ev.LinkDecided("lp2", "n1", "reject", ""), call_id="n3")
    clock.advance(1)  # t=22
    log.append("console", ev.LinkSet("n2", "related", "manual", ""), call_id="n3")
    clock.advance(8)  # t=30
    log.append("ingest", ev.CallCreated("shed-fire", "multi", "photo", "06-4444 5555"), call_id="n4")
    log.append("console", ev.LinkSet("n1", "parent", "manual", ""), call_id="n4")
    clock.advance(1)  # t=31
    log.append("console", ev.LinkRemoved("n1"), call_id="n4")
    folder.close()
    return folder.path


def inc(call: str) -> str:
    return f"urn:emergency:uid:incidentid:multi-s1-{call}:{A}"


def callid(call: str) -> str:
    return f"urn:emergency:uid:callid:multi-s1-{call}:{A}"


def test_link_component_field_by_field(tmp_path: Path) -> None:
    docs = {d["callComponent"][0]["callerLabelText"]: d for d in export_eido(record_multi_caller_session(tmp_path))}
    neighbour, passerby, upstairs, shed = (docs[k] for k in ("06-1234 5678", "06-2222 3333", "06-6666 7777",
                                                             "06-4444 5555"))
    # The neighbour accepted the proposal: the passer-by is its child; the rejected proposal is no link.
    assert neighbour["linkComponent"] == [{
        "$id": "urn:workbench112:eido:multi-s1-n1:link-1",
        "lastUpdateTimeStamp": at(12),
        "owningAgencyIdentifier": A,
        "updatedByAgentIdentifier": f"st1@{A}",
        "linkedIncidentTrackingIdentifier": inc("n2"),
        "linkedCallTrackingIdentifier": callid("n2"),
        "linkTypeText": "child",
        "linkOriginText": "proposal",
    }]
    # Seen from the passer-by: the neighbour is its parent; the upstairs caller was linked by hand as related.
    assert passerby["linkComponent"] == [
        {
            "$id": "urn:workbench112:eido:multi-s1-n2:link-1",
            "lastUpdateTimeStamp": at(12),
            "owningAgencyIdentifier": A,
            "updatedByAgentIdentifier": f"st1@{A}",
            "linkedIncidentTrackingIdentifier": inc("n1"),
            "linkedCallTrackingIdentifier": callid("n1"),
            "linkTypeText": "parent",
            "linkOriginText": "proposal",
        },
        {
            "$id": "urn:workbench112:eido:multi-s1-n2:link-2",
            "lastUpdateTimeStamp": at(22),
            "owningAgencyIdentifier": A,
            "updatedByAgentIdentifier": f"console@{A}",  # n3 was never answered: no station to name
            "linkedIncidentTrackingIdentifier": inc("n3"),
            "linkedCallTrackingIdentifier": callid("n3"),
            "linkTypeText": "related",
            "linkOriginText": "manual",
        },
    ]
    assert [(c["linkedIncidentTrackingIdentifier"], c["linkTypeText"]) for c in upstairs["linkComponent"]] == [
        (inc("n2"), "related")]
    assert shed["linkComponent"] == []  # linked by hand, then unlinked
    # Each caller's own position (the scenario's caller position standing in for AML), the incident's address.
    where = [(d["locationInformationComponent"][0]["latitude"], d["locationInformationComponent"][0]["longitude"],
              d["locationInformationComponent"][0]["civicAddressText"]) for d in (neighbour, passerby, upstairs)]
    assert where == [(52.0121, 4.3590, "Kerkstraat 12, Delft"), (52.0114, 4.3581, "Kerkstraat 12, Delft"),
                     (52.0118, 4.3583, "Kerkstraat 12, Delft")]
    assert inc("n4") not in json.dumps(neighbour)


def test_cli_export_carries_the_links(tmp_path: Path) -> None:
    session = record_multi_caller_session(tmp_path / "rec")
    out = tmp_path / "eido.json"
    assert cli_main(["export-eido", str(session), "--out", str(out)]) == 0
    docs = json.loads(out.read_text(encoding="utf-8"))
    assert sum(len(d["linkComponent"]) for d in docs) == 4  # two links, each seen from both reports
