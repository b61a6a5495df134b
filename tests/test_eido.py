"""EIDO export of a demo session written with the real store code (fake clock, so every timestamp is exact),
checked field by field; and the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from analysis.eido import DEFAULT_AGENCY, EXERCISE_NOTE, EidoExportError, export_eido
from tests.conftest import REPO
from workbench.cli import main as cli_main
from workbench.domain import events as ev
from workbench.store.recordings import Recordings, SessionHeader, sha256_hex

DEMO = (REPO / "experiments" / "demo" / "scenario.toml").read_bytes()
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self) -> None:
        self.ns = 0

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)

    def monotonic_ns(self) -> int:
        return self.ns

    def now_utc(self) -> datetime:
        return T0 + timedelta(microseconds=self.ns // 1000)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def record_demo_session(root: Path) -> Path:
    """The demo scenario: k1 (house fire) answered at t=5, photo with GPS at t=3, a snapshot and a recording,
    classified spoed/fire and closed with a note at t=20; k2 (collision) arrives at t=6 and is never answered."""
    clock = FakeClock()
    header = SessionHeader("demo-s1", "P01", "demo", sha256_hex(DEMO), ["live-video"], 0, "0.1.0", at(0))
    folder = Recordings(root, clock=clock).create_session(header, scenario_bytes=DEMO)
    log = folder.event_log()
    log.append("ingest", ev.SessionStarted("P01", "demo", sha256_hex(DEMO), 0, ["live-video"], "0.1.0"))
    log.append("runner", ev.BlockStarted("live-video", "video", 0))
    log.append("ingest", ev.CallCreated("house-fire", "live-video", "video", "06-1234 5678"), call_id="k1")
    clock.advance(1)
    snap, snap_sha = folder.store_media("k1", "snapshot-000001.jpg", b"\xff\xd8snapshot\xff\xd9")
    log.append("ingest", ev.MediaSnapshot(snap, snap_sha, 640, 480, 1, "first_frame", 120.0, 110.0, 0.0), call_id="k1")
    clock.advance(2)  # t=3
    photo = b"\xff\xd8photo-bytes\xff\xd9"
    orig, orig_sha = folder.store_media("k1", "photo-p1.jpg", photo)
    disp, _ = folder.store_media("k1", "photo-p1-display.jpg", b"\xff\xd8display\xff\xd9")
    log.append("ingest", ev.MediaPhotoReceived("p1", orig, disp, orig_sha, len(photo), "JPEG", 640, 480, "IMG.jpg"),
               call_id="k1")
    log.append("ingest", ev.MediaPhotoMetadata("p1", True, 52.0116, 4.3571, 2.0, "2026-03-01T10:00:03"), call_id="k1")
    clock.advance(2)  # t=5
    log.append("console", ev.CallAnswered("st1"), call_id="k1")
    clock.advance(1)  # t=6
    log.append("ingest", ev.CallCreated("collision", "live-video", "video", "06-8765 4321"), call_id="k2")
    clock.advance(2)  # t=8
    log.append("console", ev.IntakeUrgency("spoed"), call_id="k1")
    log.append("console", ev.IntakeIncidentType("fire"), call_id="k1")
    clock.advance(12)  # t=20
    rec, rec_sha = folder.store_media("k1", "recording-video.webm", b"webm-bytes")
    log.append("console", ev.CallClosed("fire", "spoed", "Kerkstraat 12, Delft", ["location", "fire_size"], True,
                                        "fire_smoke_size", "Caller says little smoke; video shows the roof burning."),
               call_id="k1")
    clock.advance(1)  # t=21
    log.append("ingest", ev.CallEnded("dispatcher_closed"), call_id="k1")
    folder.close()
    return folder.path


def common(key: str, kind: str, updated: str, agent: str) -> dict:
    return {
        "$id": f"urn:workbench112:eido:{key}:{kind}",
        "lastUpdateTimeStamp": updated,
        "owningAgencyIdentifier": DEFAULT_AGENCY,
        "updatedByAgentIdentifier": agent,
    }


def test_demo_session_export_field_by_field(tmp_path: Path) -> None:
    session = record_demo_session(tmp_path / "recordings")
    manifest = json.loads((session / "manifest.json").read_text())["files"]
    docs = export_eido(session)
    assert len(docs) == 2
    fire, crash = docs
    agent = f"st1@{DEFAULT_AGENCY}"
    key = "demo-s1-k1"
    assert list(fire) == [
        "$id", "EIDOVersion", "lastUpdateTimeStamp", "agentReference", "issuingElementIdentification",
        "reasonForIssueRegistryText", "incidentTrackingIdentifier", "incidentComponent", "callComponent",
        "locationInformationComponent", "notesComponent", "linkComponent",
    ]
    assert fire["$id"] == f"urn:workbench112:eido:{key}"
    assert fire["EIDOVersion"] == "1.0"
    assert fire["lastUpdateTimeStamp"] == at(21)
    assert fire["agentReference"] == agent
    assert fire["issuingElementIdentification"] == f"ingest.{DEFAULT_AGENCY}"
    assert fire["reasonForIssueRegistryText"] == "Exercise"
    assert fire["incidentTrackingIdentifier"] == f"urn:emergency:uid:incidentid:{key}:{DEFAULT_AGENCY}"
    assert fire["incidentComponent"] == {
        **common(key, "incident", at(21), agent),
        "incidentTrackingIdentifier": fire["incidentTrackingIdentifier"],
        "incidentTypeCommonRegistryText": ["Fire (building, vehicle, outdoor)"],
        "incidentTypeWorkbenchKey": "fire",
        "incidentStatusCommonRegistryText": "Closed",
        "incidentPriorityNumber": 1,
        "incidentUrgencyText": "spoed",
    }
    (call,) = fire["callComponent"]
    media = call.pop("callMediaUrl")
    assert call == {
        **common(key, "call-1", at(21), agent),
        "callTrackingIdentifier": f"urn:emergency:uid:callid:{key}:{DEFAULT_AGENCY}",
        "callStartTimeStamp": at(0),
        "callAnswerTimeStamp": at(5),
        "callEndTimeStamp": at(21),
        "callerLabelText": "06-1234 5678",
    }
    expected_media = [
        ("media/k1/photo-p1.jpg", "photo", "image/jpeg"),
        ("media/k1/snapshot-000001.jpg", "snapshot", "image/jpeg"),
        ("media/k1/recording-video.webm", "recording", "video/webm"),
    ]
    assert [(m["url"], m["mediaKindText"], m["contentType"]) for m in media] == [
        ((session / rel).resolve().as_uri(), kind, ctype) for rel, kind, ctype in expected_media
    ]
    for n, (m, (rel, _, _)) in enumerate(zip(media, expected_media), start=1):
        assert m["$id"] == f"urn:workbench112:eido:{key}:media-{n}"
        assert (m["sha256"], m["sizeBytes"]) == (manifest[rel]["sha256"], manifest[rel]["size"])
        assert m["sha256"] == sha256_hex((session / rel).read_bytes())
    assert fire["locationInformationComponent"] == [{
        **common(key, "location-1", at(21), agent),
        "civicAddressText": "Kerkstraat 12, Delft",
        "latitude": 52.0116,
        "longitude": 4.3571,
        "uncertaintyRadiusMetres": None,
        "locationSourceText": "photo_gps",
    }]
    assert fire["notesComponent"] == [
        {**common(key, "note-1", at(0), agent), "noteDateTimeStamp": at(0), "noteText": EXERCISE_NOTE},
        {**common(key, "note-2", at(20), agent), "noteDateTimeStamp": at(20),
         "noteText": "Caller says little smoke; video shows the roof burning."},
    ]
    assert fire["linkComponent"] == []

    # The collision was never answered: open, unclassified, no media, the scenario's location text, ingest agent.
    ingest_agent = f"ingest@{DEFAULT_AGENCY}"
    assert crash["agentReference"] == ingest_agent
    assert crash["incidentComponent"]["incidentStatusCommonRegistryText"] == "Open"
    assert crash["incidentComponent"]["incidentPriorityNumber"] is None
    assert crash["incidentComponent"]["incidentTypeCommonRegistryText"] == []
    assert crash["callComponent"][0]["callMediaUrl"] == []
    assert crash["callComponent"][0]["callAnswerTimeStamp"] is None
    assert crash["locationInformationComponent"][0]["civicAddressText"] == "Oostweg, traffic lights, Delft"
    # No caller geolocation or photo GPS: the position is the scenario's (experiments/demo/scenario.toml).
    assert crash["locationInformationComponent"][0]["latitude"] == 52.0101
    assert crash["locationInformationComponent"][0]["longitude"] == 4.3712
    assert crash["locationInformationComponent"][0]["locationSourceText"] == "scenario"
    assert crash["notesComponent"][0]["noteText"] == EXERCISE_NOTE
    for doc in docs:  # every component carries the four common keys
        comps = [doc["incidentComponent"], *doc["callComponent"], *doc["locationInformationComponent"],
                 *doc["notesComponent"], *doc["linkComponent"]]
        for comp in comps:
            assert {"$id", "lastUpdateTimeStamp", "owningAgencyIdentifier", "updatedByAgentIdentifier"} <= set(comp)
    json.dumps(docs)  # JSON-ready


def test_media_base_url_and_errors(tmp_path: Path) -> None:
    session = record_demo_session(tmp_path / "recordings")
    docs = export_eido(session, media_base_url="http://lab:8080/recordings/", agency="psap.example.org")
    assert docs[0]["callComponent"][0]["callMediaUrl"][0]["url"] == \
        "http://lab:8080/recordings/demo-s1/media/k1/photo-p1.jpg"
    assert docs[0]["incidentComponent"]["owningAgencyIdentifier"] == "psap.example.org"
    with pytest.raises(EidoExportError, match="not a session folder"):
        export_eido(tmp_path)


def test_cli_writes_the_export(tmp_path: Path, capsys) -> None:
    session = record_demo_session(tmp_path / "recordings")
    out = tmp_path / "eido.json"
    assert cli_main(["export-eido", str(session), "--out", str(out)]) == 0
    docs = json.loads(out.read_text(encoding="utf-8"))
    assert [d["incidentComponent"]["incidentStatusCommonRegistryText"] for d in docs] == ["Closed", "Open"]
    assert "2 incident(s)" in capsys.readouterr().out
    assert cli_main(["export-eido", str(tmp_path), "--out", str(out)]) == 2
