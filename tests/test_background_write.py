"""A table written by a forked process while the statistics run (analysis.background_write, issue 9): the files
the analysis' writer makes, and the same files when the process fails."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from analysis import background_write
from analysis.reading import can_fork
from analysis.run import _write

pytestmark = pytest.mark.skipif(not can_fork() or (os.cpu_count() or 1) < 2,
                                reason="tables are written in a forked process only where forking is safe, 2+ CPUs")


def table() -> pd.DataFrame:
    return pd.DataFrame({"session_id": pd.array(["s1", "s1", "s2"], dtype="string"),
                         "seq": pd.array([1, 2, None], dtype="Int64"),
                         "t_s": pd.array([0.5, None, 2.25], dtype="Float64")})


def test_written_by_the_forked_process(tmp_path) -> None:
    parent = os.getpid()

    def writer(t, out_dir, name, files):
        (out_dir / "who").write_text(str(os.getpid()))
        _write(t, out_dir, name, files)

    pending = background_write.start(writer, table(), tmp_path / "out", "events")
    assert pending is not None
    files: list[Path] = ["before"]  # type: ignore[list-item]
    pending.finish(files)
    assert files == ["before", tmp_path / "out" / "events.csv", tmp_path / "out" / "events.parquet"]
    assert int((tmp_path / "out" / "who").read_text()) != parent  # the child wrote them
    assert (tmp_path / "out" / "events.csv").read_text() == "session_id,seq,t_s\ns1,1,0.5\ns1,2,\ns2,,2.25\n"
    assert pd.read_parquet(tmp_path / "out" / "events.parquet")["t_s"].tolist()[0] == 0.5


def test_a_failing_process_leaves_the_writing_to_the_caller(tmp_path) -> None:
    parent = os.getpid()

    def writer(t, out_dir, name, files):
        if os.getpid() != parent:
            raise OSError("disk full (simulated, in the child only)")
        _write(t, out_dir, name, files)

    pending = background_write.start(writer, table(), tmp_path / "out", "events")
    assert pending is not None
    files: list[Path] = []
    pending.finish(files)
    assert files == [tmp_path / "out" / "events.csv", tmp_path / "out" / "events.parquet"]
    assert (tmp_path / "out" / "events.csv").read_text() == "session_id,seq,t_s\ns1,1,0.5\ns1,2,\ns2,,2.25\n"
