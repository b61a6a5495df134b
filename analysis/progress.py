"""Progress of a long analysis on a terminal: a bar for the sessions read, then one line per later step.

:func:`analysis.run.analyze` reports each step as a short line (``[i/n] <session folder>`` per session read, then
``statistics: <measure>``, ``writing tables``, ``report``). On a terminal the session lines become one bar redrawn
in place (``\\r``), which a study's hundred sessions would otherwise fill the screen with; elsewhere (a log file, a
pipe, CI) every line is written as it is, so nothing is lost in a log.
"""

from __future__ import annotations

import re
import time
from typing import TextIO

_SESSION = re.compile(r"\[(\d+)/(\d+)\] (.*)")


class ProgressPrinter:
    """Callable that prints :func:`analysis.run.analyze` progress lines to ``stream`` (prefixed ``prefix``).

    ``bar`` None decides by ``stream.isatty()``. The bar is ``<prefix>[#####.....] i/n sessions, s elapsed``,
    ``width`` characters of bar; it is closed with a newline before the next kind of line.
    """

    def __init__(self, stream: TextIO, prefix: str = "analyze ", bar: bool | None = None, width: int = 30) -> None:
        self.stream = stream
        self.prefix = prefix
        self.bar = stream.isatty() if bar is None else bar
        self.width = width
        self._open = False
        self._start = time.monotonic()

    def __call__(self, line: str) -> None:
        match = _SESSION.fullmatch(line)
        if self.bar and match:
            i, n = int(match.group(1)), int(match.group(2))
            filled = self.width * i // max(n, 1)
            elapsed = time.monotonic() - self._start
            self.stream.write(f"\r{self.prefix}[{'#' * filled}{'.' * (self.width - filled)}] {i}/{n} sessions, "
                              f"{elapsed:.0f} s")
            self._open = i < n
            if not self._open:
                self.stream.write("\n")
        else:
            if self._open:
                self.stream.write("\n")
                self._open = False
            self.stream.write(f"{self.prefix}{line}\n")
        self.stream.flush()
