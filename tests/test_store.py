"""The store: append-only event log (file and memory), media files with manifest, and verify_session."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from workbench.domain import events as ev
from workbench.store import eventlog
from workbench.store.eventlog import FileEventLog, MemoryEventLog, read_events
from workbench.store.recordings import (
    Recordings,
    RecordingsError,
    SessionHeader,
    sha256_hex,
    verify_session,
)


class FakeClock:
    def __init__(self) -> None:
        self.ns = 1_000

    def monotonic_ns(self) -> int:
        self.ns += 250_000_000
        return self.ns

    def now_utc(self) -> datetime:
        return datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc) + timedelta(microseconds=self.ns // 1000)


def urgency(value: str = "nu") -> ev.IntakeUrgency:
    return ev.IntakeUrgency(value)


def header(session_id: str = "s1") -> SessionHeader:
    return SessionHeader(session_id, "P01", "demo", "0" * 64, ["b1"], 3, "0.1.0", "2025-01-02T03:04:05+00:00")


# --- event log ------------------------------------------------------------------------------------------------------


def test_file_log_fsyncs_every_event_and_numbers_them_without_gaps(tmp_path: Path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = eventlog.os.fsync
    monkeypatch.setattr(eventlog.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    log = FileEventLog(tmp_path / "events.jsonl", "s1", FakeClock())
    appended = [log.append("console", urgency(), call_id="c1") for _ in range(5)]
    assert [e.seq for e in appended] == [1, 2, 3, 4, 5]
    assert len(synced) == 5
    lines = (tmp_path / "events.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 6
    first = json.loads(lines[0])
    assert first == {
        "schema": 1, "session_id": "s1", "seq": 1, "t_mono_ns": 250_001_000,
        "t_wall": "2025-01-02T03:04:05.250001+00:00", "source": "console", "type": "intake.urgency",
        "call_id": "c1", "data": {"urgency": "nu"},
    }
    events, problems = read_events(tmp_path / "events.jsonl")
    assert problems == [] and [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events == appended
    log.close()


def test_invalid_event_is_rejected_before_writing_and_takes_no_seq(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = FileEventLog(path, "s1", FakeClock())
    log.append("console", urgency(), call_id="c1")
    before = path.read_bytes()
    with pytest.raises(ev.EventValidationError, match="urgency must be one of spoed, nu, later"):
        log.append("console", urgency("asap"), call_id="c1")
    with pytest.raises(ev.EventValidationError, match="source 'ingest' may not emit"):
        log.append("ingest", urgency(), call_id="c1")
    with pytest.raises(ev.EventValidationError, match=r"call\.created\.block_id must be string, got 3"):
        log.append("ingest", ev.CallCreated("x", 3, "audio", "lbl"), call_id="c2")  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert log.append("console", urgency(), call_id="c1").seq == 2
    log.close()


def test_reopen_continues_after_last_sound_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = FileEventLog(path, "s1", FakeClock())
    for _ in range(3):
        log.append("console", urgency(), call_id="c1")
    log.close()
    again = FileEventLog(path, "s1", FakeClock())
    assert [e.seq for e in again.events()] == [1, 2, 3]
    assert again.append("console", urgency("later"), call_id="c1").seq == 4
    again.close()
    events, problems = read_events(path)
    assert problems == [] and [e.seq for e in events] == [1, 2, 3, 4]


def test_torn_last_line_is_isolated_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = FileEventLog(path, "s1", FakeClock())
    log.append("console", urgency(), call_id="c1")
    log.append("console", urgency(), call_id="c1")
    log.close()
    torn = b'{"schema":1,"session_id":"s1","seq":3,"t_mo'
    with open(path, "ab") as fh:
        fh.write(torn)
    sound = path.read_bytes()[: -len(torn)]
    events, problems = read_events(path)
    assert [e.seq for e in events] == [1, 2]
    assert problems == [eventlog.LogProblem(3, "torn last line (the writer stopped mid-line)")]

    again = FileEventLog(path, "s1", FakeClock())
    new = again.append("console", urgency("spoed"), call_id="c1")
    again.close()
    assert new.seq == 3
    raw = path.read_bytes()
    assert raw == sound + torn + b"\n" + new.to_json_line().encode() + b"\n"
    events, problems = read_events(path)
    assert [e.seq for e in events] == [1, 2, 3] and events[-1].data == urgency("spoed")
    assert [p.line for p in problems] == [3] and problems[0].problem.startswith("not valid JSON")


def test_read_events_reports_gaps_duplicates_and_invalid_lines(tmp_path: Path) -> None:
    log = MemoryEventLog("s1", FakeClock())
    lines = [log.append("console", urgency(), call_id="c1").to_dict() for _ in range(3)]
    lines[1]["seq"] = 5  # 1, 5, 3: a gap, then a duplicate-or-earlier seq
    bad = dict(lines[0], type="intake.nonsense")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [*lines, bad]) + "\n", encoding="utf-8")
    events, problems = read_events(path)
    assert [e.seq for e in events] == [1, 5, 3]
    assert [(p.line, p.problem.split(";")[0]) for p in problems] == [
        (2, "seq gap: expected 2, found 5"),
        (3, "seq duplicate: expected 6, found 3"),
        (4, "unknown event type 'intake.nonsense'"),
    ]
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / "nope.jsonl")


def test_memory_log_same_contract() -> None:
    log = MemoryEventLog("m1", FakeClock())
    log.append("ingest", ev.CallCreated("", "", "audio", "lbl"), call_id="c1")
    with pytest.raises(ev.EventValidationError, match="call_id is required"):
        log.append("console", urgency())
    with pytest.raises(ev.EventValidationError, match="takes no call_id"):
        log.append("runner", ev.SessionEnded("completed"), call_id="c1")
    log.append("console", urgency(), call_id="c1")
    log.append("console", ev.RatingRsme(150), call_id="c1")
    assert [e.seq for e in log.events()] == [1, 2, 3]
    assert [e.seq for e in log.events(after_seq=1)] == [2, 3]
    assert log.events(after_seq=3) == []
    assert {e.session_id for e in log.events()} == {"m1"}


# --- recordings, media and manifest -----------------------------------------------------------------------------------


def test_create_and_open_sessions(tmp_path: Path) -> None:
    rec = Recordings(tmp_path)
    folder = rec.create_session(header("s1"), scenario_bytes=b"id = 'x'\n")
    assert folder.header()["status"] == "exercise" and folder.header()["block_order"] == ["b1"]
    assert folder.manifest()["files"]["scenario.toml"] == {"sha256": sha256_hex(b"id = 'x'\n"), "size": 9}
    with pytest.raises(RecordingsError, match="exists already"):
        rec.create_session(header("s1"))
    with pytest.raises(RecordingsError, match="is not valid"):
        rec.create_session(header("../evil"))
    with pytest.raises(RecordingsError, match="no session 's2'"):
        rec.open_session("s2")
    rec.create_session(header("s0"))
    (tmp_path / "not-a-session").mkdir()
    assert rec.session_ids() == ["s0", "s1"]
    assert rec.open_session("s1").path == folder.path


def test_store_media_writes_manifest_and_refuses_overwrite_and_escape(tmp_path: Path) -> None:
    folder = Recordings(tmp_path).create_session(header())
    data = b"\xff\xd8\xff\xe0 a jpeg, roughly"
    rel, digest = folder.store_media("c1", "p1.jpg", data)
    assert rel == "media/c1/p1.jpg"
    assert digest == sha256_hex(data) == __import__("hashlib").sha256(data).hexdigest()
    assert (folder.path / rel).read_bytes() == data
    manifest = json.loads(folder.manifest_path.read_text())
    assert manifest == {"files": {"media/c1/p1.jpg": {"sha256": digest, "size": len(data)}}}
    with pytest.raises(RecordingsError, match="never overwritten"):
        folder.store_media("c1", "p1.jpg", b"other bytes")
    assert (folder.path / rel).read_bytes() == data
    with pytest.raises(RecordingsError, match="media file name '../x' is not valid"):
        folder.store_media("c1", "../x", b"x")
    with pytest.raises(RecordingsError, match="call id '..' is not valid"):
        folder.store_media("..", "x", b"x")
    for escape in ["../x", "media/../../x", str(tmp_path / "abs")]:
        with pytest.raises(RecordingsError, match="outside the session folder"):
            folder.store_file(escape, b"x")
    assert not (tmp_path / "x").exists() and not (tmp_path / "abs").exists()
    assert list(folder.manifest()["files"]) == ["media/c1/p1.jpg"]
    assert not [p for p in folder.path.rglob("*.tmp")]


def good_session(tmp_path: Path):
    folder = Recordings(tmp_path, clock=FakeClock()).create_session(header(), scenario_bytes=b"id = 'x'\n")
    folder.event_log().append("ingest", ev.CallCreated("", "", "photo", "lbl"), call_id="c1")
    folder.store_media("c1", "p1.jpg", b"photo bytes")
    folder.store_media("c1", "p1_display.jpg", b"display bytes")
    folder.close()
    return folder


def test_verify_session_ok(tmp_path: Path) -> None:
    folder = good_session(tmp_path)
    report = verify_session(folder.path)
    assert report.ok, report.problems
    assert (report.files_checked, report.events, report.problems, report.warnings) == (3, 1, [], [])


def test_verify_reports_a_changed_byte(tmp_path: Path) -> None:
    folder = good_session(tmp_path)
    path = folder.path / "media/c1/p1.jpg"
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_session(folder.path)
    assert not report.ok
    assert report.problems == ["media/c1/p1.jpg: SHA-256 does not match the manifest (file changed or damaged)"]


def test_verify_reports_missing_unlisted_and_torn(tmp_path: Path) -> None:
    folder = good_session(tmp_path)
    (folder.path / "media/c1/p1_display.jpg").unlink()
    (folder.path / "media/c1/sneaked.jpg").write_bytes(b"not in the manifest")
    (folder.path / "media/c1/.p9.jpg.abcd.tmp").write_bytes(b"half")
    with open(folder.events_path, "ab") as fh:
        fh.write(b'{"schema":1,"seq":2')
    report = verify_session(folder.path)
    assert report.problems == [
        "events.jsonl line 2: torn last line (the writer stopped mid-line)",
        "media/c1/p1_display.jpg: listed in manifest but missing",
        "media/c1/sneaked.jpg: media file not in manifest",
    ]
    assert report.warnings == ["media/c1/.p9.jpg.abcd.tmp: leftover temporary file from an interrupted write"]
    assert report.files_checked == 2 and report.events == 1


def test_verify_reports_size_header_and_missing_log(tmp_path: Path) -> None:
    folder = good_session(tmp_path)
    (folder.path / "media/c1/p1.jpg").write_bytes(b"photo bytes, longer")
    folder.events_path.unlink()
    hdr = folder.header() | {"status": "actual"}
    folder.header_path.write_text(json.dumps(hdr))
    report = verify_session(folder.path)
    assert report.problems == [
        "session.json: status is not 'exercise'",
        "events.jsonl is missing",
        "media/c1/p1.jpg: size 19 != manifest 11",
        "media/c1/p1.jpg: SHA-256 does not match the manifest (file changed or damaged)",
    ]
    assert verify_session(tmp_path / "nothing").problems == [f"{tmp_path / 'nothing'} is not a folder"]


def test_writer_accepts_what_the_reader_accepts(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = FileEventLog(path, "s1", FakeClock())
    # A tuple becomes a JSON array on disk, which the reader accepts; an int RSME is a JSON number.
    log.append("ingest", ev.SessionStarted("P1", "demo", "", 1, ("b1", "b2"), "0.1"))  # type: ignore[arg-type]
    log.append("ingest", ev.CallCreated("", "", "audio", "x"), call_id="c1")
    log.append("console", ev.RatingRsme(40), call_id="c1")
    log.close()
    events, problems = read_events(path)
    assert problems == []
    assert events[0].data.block_order == ["b1", "b2"]  # type: ignore[attr-defined]
    assert events[2].data == ev.RatingRsme(40.0)
