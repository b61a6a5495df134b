"""Issue 7, privacy: withdrawing a participant also deletes the debrief's browser copies of their recordings, which
live outside the recordings (``~/.cache/workbench112/debrief``), and leaves other participants' copies alone."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.test_analysis import FakeClock, make_session
from workbench import cli
from workbench.console.debrief_media import browser_copy, default_cache_dir
from workbench.console.debrief_viewmodel import load_debrief
from workbench.domain import events as ev
from workbench.store.recordings import Recordings


def _segment(path: Path, shade: int) -> None:
    """A real two-second H.264 Matroska segment, as the ingest's recorder writes one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 10)
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (shade + 5 * i) % 256, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _recorded(root: Path, session_id: str, participant: str, shade: int) -> Path:
    """A session whose one call has a recording segment (logged like the ingest logs it)."""
    folder, log = make_session(root, session_id, participant, ["b-photo"], FakeClock())
    log.append("ingest", ev.CallCreated("p-theft", "b-photo", "photo", "06-11"), call_id="k1")
    relpath = "media/k1/rec-0001.mkv"
    _segment(folder.path / relpath, shade)
    data = (folder.path / relpath).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    folder.record_existing(relpath, digest, len(data))
    log.append("ingest", ev.MediaRecordingSegment(relpath, digest, len(data), 1, 0.0, 2.0, 20, 0, 0, "call_ended"),
               call_id="k1")
    log.append("runner", ev.SessionEnded("completed"))
    folder.close()
    return folder.path


def test_withdraw_deletes_the_debrief_copies_of_that_participants_recordings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_DEBRIEF_CACHE", raising=False)
    root = tmp_path / "recordings"
    mine = _recorded(root, "s-p07", "P07", 40)
    other = _recorded(root, "s-p08", "P08", 160)
    # The trainer debriefed both: each call's recording was remuxed into the cache.
    copies = {p.name: browser_copy(load_debrief(p).calls[0].segments, default_cache_dir()) for p in (mine, other)}
    assert all(c.is_file() and c.stat().st_size > 0 for c in copies.values())
    assert copies["s-p07"] != copies["s-p08"]

    assert cli.main(["withdraw", "P07", "--recordings", str(root), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 replay copy made for the debrief" in out
    assert not copies["s-p07"].exists(), "the withdrawn participant's video stayed in the debrief cache"
    assert copies["s-p08"].is_file()
    assert sorted(p.name for p in root.iterdir()) == ["s-p08", "withdrawals.jsonl"]
    assert Recordings(root).session_ids() == ["s-p08"]
