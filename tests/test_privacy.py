"""Withdrawal and archives (workbench/store/privacy.py and the `workbench withdraw` / `workbench archive` commands),
on sessions written by the real store code (Recordings.create_session, event_log().append, store_media)."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from workbench import cli
from workbench.domain import events as ev
from workbench.store import privacy
from workbench.store.privacy import PrivacyError, archive, check_archive, import_archive, plan_withdrawal, withdraw
from workbench.store.recordings import Recordings, SessionHeader, sha256_hex, verify_session

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
SESSIONS = {"s-p01-a": "P01", "s-p01-b": "P01", "s-p02-a": "P02", "s-p03-a": "P03"}


def make_session(rec: Recordings, session_id: str, participant: str) -> Path:
    header = SessionHeader(session_id, participant, "demo", "0" * 64, ["photo", "video"], 7, "0.1.0",
                           "2026-03-04T05:00:00+00:00")
    folder = rec.create_session(header, scenario_bytes=f"id = 'demo'  # {session_id}\n".encode())
    log = folder.event_log()
    log.append("ingest", ev.CallCreated("b1", "", "photo", "house fire"), call_id="c1")
    log.append("console", ev.IntakeUrgency("spoed"), call_id="c1")
    log.append("console", ev.RatingRsme(57), call_id="c1")
    folder.store_media("c1", "photo-1.jpg", b"\xff\xd8\xff\xe0 photo of " + session_id.encode() + bytes(range(256)))
    folder.store_media("c1", "photo-1.display.jpg", b"\xff\xd8 display copy " + participant.encode())
    folder.close()
    assert verify_session(folder.path).ok
    return folder.path


@pytest.fixture()
def recordings(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    rec = Recordings(root)
    for sid, participant in SESSIONS.items():
        make_session(rec, sid, participant)
    return root


def tree_hash(folder: Path) -> dict[str, str]:
    """{relative path: SHA-256} of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): sha256_hex(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def counts(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# --- withdraw -----------------------------------------------------------------------------------------------------


def test_withdraw_removes_exactly_that_participants_sessions_and_writes_the_audit_line(recordings: Path) -> None:
    others = {sid: tree_hash(recordings / sid) for sid, p in SESSIONS.items() if p != "P01"}
    expected_files = sum(counts(recordings / s)[0] for s in ("s-p01-a", "s-p01-b"))
    expected_bytes = sum(counts(recordings / s)[1] for s in ("s-p01-a", "s-p01-b"))
    manifests = {s: hashlib.sha256((recordings / s / "manifest.json").read_bytes()).hexdigest()
                 for s in ("s-p01-a", "s-p01-b")}

    result = withdraw(recordings, "P01", reason="participant asked by e-mail", now=lambda: WHEN)

    assert result.sessions == ["s-p01-a", "s-p01-b"]
    assert sorted(p.name for p in recordings.iterdir()) == ["s-p02-a", "s-p03-a", "withdrawals.jsonl"]
    assert {sid: tree_hash(recordings / sid) for sid in others} == others, "other sessions byte-for-byte unchanged"
    lines = (recordings / "withdrawals.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "when": "2026-03-04T05:06:07+00:00",
        "participant": "P01",
        "sessions": ["s-p01-a", "s-p01-b"],
        "completed": [],
        "files": expected_files,
        "bytes": expected_bytes,
        "manifest_sha256": manifests,
        "reason": "participant asked by e-mail",
    }
    assert expected_files == 2 * 6  # session.json, events.jsonl, scenario.toml, manifest.json, two photos
    assert b"photo of" not in (recordings / "withdrawals.jsonl").read_bytes(), "never the removed content"
    assert Recordings(recordings).session_ids() == ["s-p02-a", "s-p03-a"]


def test_unknown_pseudonym_is_a_clear_error_and_changes_nothing(recordings: Path) -> None:
    before = tree_hash(recordings)
    with pytest.raises(PrivacyError, match=r"no sessions of participant 'P99'.*nothing changed.*P01, P02, P03"):
        withdraw(recordings, "P99")
    with pytest.raises(PrivacyError, match="no sessions of participant 'p01'"):
        withdraw(recordings, "p01")  # exact match only
    assert tree_hash(recordings) == before and not (recordings / "withdrawals.jsonl").exists()


def test_a_second_run_finishes_an_interrupted_withdrawal(recordings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    others = tree_hash(recordings / "s-p02-a")
    real_rmtree = privacy.shutil.rmtree
    calls: list[Path] = []

    def crash_on_second(path: Path) -> None:
        calls.append(Path(path))
        if len(calls) == 2:  # the first session is gone, the second half-deleted, then the process dies
            (Path(path) / "session.json").unlink()
            raise KeyboardInterrupt("power cut")
        real_rmtree(path)

    monkeypatch.setattr(privacy.shutil, "rmtree", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        withdraw(recordings, "P01", now=lambda: WHEN)
    monkeypatch.setattr(privacy.shutil, "rmtree", real_rmtree)

    marked = recordings / ".withdrawing-s-p01-b"
    assert marked.is_dir() and not (recordings / "s-p01-b").exists(), "the half-deleted session is clearly marked"
    assert Recordings(recordings).session_ids() == ["s-p02-a", "s-p03-a"]
    assert plan_withdrawal(recordings, "P01").completed == ["s-p01-b"]

    again = withdraw(recordings, "P01", now=lambda: WHEN)
    assert again.sessions == [] and again.audit["completed"] == ["s-p01-b"]
    assert not marked.exists()
    lines = [json.loads(x) for x in (recordings / "withdrawals.jsonl").read_text().splitlines()]
    assert [(x["sessions"], x["completed"]) for x in lines] == [(["s-p01-a", "s-p01-b"], []), ([], ["s-p01-b"])]
    assert tree_hash(recordings / "s-p02-a") == others
    with pytest.raises(PrivacyError, match="no sessions of participant 'P01'"):
        withdraw(recordings, "P01")


def test_a_crash_between_rename_and_audit_is_audited_by_the_next_run(recordings: Path) -> None:
    # The state a crash right after step 1 leaves: a renamed, whole folder and no audit line yet.
    os.rename(recordings / "s-p03-a", recordings / ".withdrawing-s-p03-a")
    files, size = counts(recordings / ".withdrawing-s-p03-a")
    result = withdraw(recordings, "P03", now=lambda: WHEN)
    assert result.sessions == ["s-p03-a"] and (result.audit["files"], result.audit["bytes"]) == (files, size)
    assert not (recordings / ".withdrawing-s-p03-a").exists()


# --- archive ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sessions.tar", "sessions.tar.gz"])
def test_archive_round_trip(recordings: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / "archive" / name
    result = archive(recordings, out, sessions=["s-p01-a", "s-p02-a"], now=lambda: WHEN)
    assert result.sessions == ["s-p01-a", "s-p02-a"] and result.files == 12
    assert check_archive(out) == []
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("ARCHIVE-MANIFEST.json").read())  # type: ignore[union-attr]
    assert names[-1] == "ARCHIVE-MANIFEST.json" and "s-p01-a/manifest.json" in names
    assert manifest["files"]["s-p01-a/events.jsonl"] == {
        "sha256": sha256_hex((recordings / "s-p01-a/events.jsonl").read_bytes()),
        "size": (recordings / "s-p01-a/events.jsonl").stat().st_size,
    }
    fresh = tmp_path / "restored"
    imported = import_archive(out, fresh)
    assert imported.sessions == ["s-p01-a", "s-p02-a"]
    for sid in imported.sessions:
        assert verify_session(fresh / sid).ok
        assert tree_hash(fresh / sid) == tree_hash(recordings / sid)
    assert sorted(p.name for p in fresh.iterdir()) == ["s-p01-a", "s-p02-a"], "no staging folders left"
    with pytest.raises(PrivacyError, match="s-p01-a exists already"):
        import_archive(out, fresh)
    with pytest.raises(PrivacyError, match="exists already; archives are never overwritten"):
        archive(recordings, out)


def test_a_tampered_archive_is_reported_naming_the_file(recordings: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.tar"
    archive(recordings, out)
    raw = bytearray(out.read_bytes())
    marker = b"photo of s-p02-a"
    at = raw.index(marker)
    raw[at + len(marker) + 10] ^= 0x01  # one byte of the photo's content, inside the tar
    out.write_bytes(bytes(raw))
    problems = check_archive(out)
    assert problems == [
        "s-p02-a/media/c1/photo-1.jpg: SHA-256 does not match ARCHIVE-MANIFEST.json (changed or damaged)",
        "s-p02-a/media/c1/photo-1.jpg: does not match s-p02-a/manifest.json (SHA-256 or size)",
    ]
    with pytest.raises(PrivacyError, match="nothing imported"):
        import_archive(out, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_a_withdrawn_session_is_not_imported_again_from_an_older_archive(recordings: Path, tmp_path: Path) -> None:
    out = tmp_path / "before.tar.gz"
    archive(recordings, out, sessions=["s-p02-a"])
    withdraw(recordings, "P02")
    with pytest.raises(PrivacyError, match="s-p02-a was withdrawn"):
        import_archive(out, recordings)
    assert not (recordings / "s-p02-a").exists()


def test_archive_refuses_unknown_sessions_and_other_names(recordings: Path, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no session 'nope'"):
        archive(recordings, tmp_path / "x.tar", sessions=["nope"])
    with pytest.raises(PrivacyError, match=r"\.tar, \.tar\.gz or \.tgz"):
        archive(recordings, tmp_path / "x.zip")
    assert not list(tmp_path.glob("*.tar")) and not list(tmp_path.glob(".*.tmp"))


def test_check_reports_an_unreadable_archive(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    [problem] = check_archive(bad)
    assert problem.startswith(f"{bad}: not a readable archive")


# --- CLI ----------------------------------------------------------------------------------------------------------


def test_cli_withdraw_and_archive(recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["withdraw", "P99", "--recordings", str(recordings), "--yes"]) == 2
    assert "no sessions of participant 'P99'" in capsys.readouterr().err

    out = tmp_path / "a.tar"
    assert cli.main(["archive", "--recordings", str(recordings), "--out", str(out), "--session", "s-p03-a"]) == 0
    assert "1 session(s)" in capsys.readouterr().out
    assert cli.main(["archive", "--check", str(out)]) == 0
    assert "OK" in capsys.readouterr().out

    # Not a TTY and no --yes: refuses rather than removing without confirmation.
    assert cli.main(["withdraw", "P03", "--recordings", str(recordings)]) == 2
    captured = capsys.readouterr()
    assert "remove session s-p03-a" in captured.out and "--yes" in captured.err
    assert (recordings / "s-p03-a").is_dir()
    assert cli.main(["withdraw", "P03", "--recordings", str(recordings), "--yes", "--reason", "asked"]) == 0
    assert "withdrew 1 session(s)" in capsys.readouterr().out
    assert not (recordings / "s-p03-a").exists()

    fresh = tmp_path / "fresh"
    assert cli.main(["archive", "--import", str(out), "--recordings", str(fresh)]) == 0
    assert verify_session(fresh / "s-p03-a").ok
    capsys.readouterr()

    raw = bytearray(out.read_bytes())
    raw[raw.index(b"display copy P03") + 3] ^= 0x20
    out.write_bytes(bytes(raw))
    assert cli.main(["archive", "--check", str(out)]) == 1
    assert "s-p03-a/media/c1/photo-1.display.jpg: SHA-256 does not match" in capsys.readouterr().out


def test_cli_withdraw_asks_on_a_terminal(recordings: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["no", "yes"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    before = tree_hash(recordings)
    assert cli.main(["withdraw", "P02", "--recordings", str(recordings)]) == 1
    assert "remove session s-p02-a (6 files" in capsys.readouterr().out
    assert tree_hash(recordings) == before, "a 'no' removes nothing"
    assert cli.main(["withdraw", "P02", "--recordings", str(recordings)]) == 0
    assert not (recordings / "s-p02-a").exists()


def test_a_withdrawal_cut_by_a_crash_is_never_analysed_or_listed(tmp_path: Path) -> None:
    from analysis.load import find_sessions
    from workbench.store.recordings import Recordings, SessionHeader

    recordings = Recordings(tmp_path)
    for sid, who in (("s-keep", "P01"), ("s-gone", "P02")):
        folder = recordings.create_session(SessionHeader(sid, who, "adhoc", "", [], 0, "0.1.0", "2026-11-29T10:00:00+00:00"))
        folder.event_log().append("ingest", __import__("workbench.domain.events", fromlist=["x"]).SessionEnded("completed"))
        folder.close()
    (tmp_path / "s-gone").rename(tmp_path / ".withdrawing-s-gone")  # the first step of withdraw, then a crash
    assert [p.name for p in find_sessions(tmp_path)] == ["s-keep"]
    assert recordings.session_ids() == ["s-keep"]
