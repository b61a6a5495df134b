"""A table written by a forked process while the statistics run (issue 9).

The events table (~450,000 rows at 100 participants x 60 calls) takes several seconds of one core to write as CSV
and Parquet, and does not depend on the statistics, which keep the other core(s) busy only in bursts. :func:`start`
forks one process that writes it with the analysis' own writer while the main process goes on; :meth:`Pending.finish`
waits for it and, when the process failed or died, writes the table in the calling process instead (the files are
written whole either way: the writer replaces them). Forked for the reasons given in :mod:`analysis.reading`, and
only when :func:`analysis.reading.can_fork` allows it (else :func:`start` returns None and the caller writes as
before); a plain process, not a pool, so the calling process keeps a single thread and the statistics may still
fork their workers.
"""

from __future__ import annotations

import os
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import pandas as pd

Writer = Callable[[pd.DataFrame, Path, str, list[Path]], None]
"""``writer(table, out_dir, name, files)``: writes ``name``'s files into ``out_dir`` and appends their paths."""


def _write_in_child(writer: Writer, table: pd.DataFrame, out_dir: Path, name: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    writer(table, out_dir, name, [])


class Pending:
    """A table being written by a forked process (see :func:`start`)."""

    def __init__(self, process: Any, writer: Writer, table: pd.DataFrame, out_dir: Path, name: str) -> None:
        self._process = process
        self._writer = writer
        self._table = table
        self._out_dir = out_dir
        self.name = name

    def finish(self, files: list[Path]) -> None:
        """Wait for the writing process; when it did not succeed (exit code not 0: an error, killed), write the
        table here. Appends the table's paths to ``files`` as the writer does. Raises what the writer raises here
        (``OSError`` when the folder cannot be written)."""
        if self._process is not None:
            self._process.join()
            ok = self._process.exitcode == 0
            self._process = None
        else:
            ok = False
        written = [self._out_dir / f"{self.name}.csv", self._out_dir / f"{self.name}.parquet"]
        ok = ok and all(p.is_file() for p in written)
        if not ok:
            written = []
            self._writer(self._table, self._out_dir, self.name, written)
        files += written

    def __del__(self) -> None:
        # An analysis that raised before finish(): the child finishes its own two files (not a daemon, so not cut
        # off at exit either) and is reaped here rather than left a zombie.
        if getattr(self, "_process", None) is not None:
            self._process.join()


def start(writer: Writer, table: pd.DataFrame, out_dir: Path, name: str) -> Pending | None:
    """Fork a process writing ``table`` as ``name`` into ``out_dir`` with ``writer`` (which must write exactly
    ``name.csv`` and ``name.parquet``, as :func:`analysis.run._write` does); None when forking is not safe here
    (:func:`analysis.reading.can_fork`) or the machine has a single CPU."""
    from analysis.reading import can_fork

    if not can_fork() or (os.cpu_count() or 1) < 2:
        return None
    process = get_context("fork").Process(target=_write_in_child, args=(writer, table, Path(out_dir), name),
                                          name=f"write-{name}", daemon=False)
    process.start()
    return Pending(process, writer, table, Path(out_dir), name)
