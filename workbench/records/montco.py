"""Loader for the Montgomery County (PA) 911 dispatch records ("montcoalert", the Kaggle "Emergency - 911 Calls").

Two layouts are accepted, detected from the file's first line, and every row is checked at the edge.

``canonical``: 9 columns with a header row::

    lat,lng,desc,zip,title,timeStamp,twp,addr,e
    40.143927,-75.1400212,ALBA RD & ...; UPPER DUBLIN; 2016-04-06 @ 13:32:46-Station:STA88;,19090.0,Fire: GAS-ODOR/LEAK,...

``reduced6``: 6 columns, no header, ``timeStamp`` without seconds (a public copy of the same data)::

    40.0883549,-75.3821004,EMS: ABDOMINAL PAINS,2016-01-15 12:01,UPPER MERION,DEKALB PIKE & ALLENDALE RD

The 6-column variant is mapped explicitly as :data:`REDUCED6_COLUMNS` (``lat,lng,title,timeStamp,twp,addr``), and
only because every column can be identified from its content, row by row, without guessing (checked on the real
file, all 3,051 rows): ``lat`` and ``lng`` are numbers inside :data:`AREA` (latitudes near 40 N and longitudes near
75 W cannot be swapped), ``title`` matches ``Category: SUBTYPE`` with a category in :data:`CATEGORIES`,
``timeStamp`` matches ``YYYY-MM-DD HH:MM``, and ``twp`` is one of the municipality names of the canonical data
(:data:`MUNICIPALITIES`; no address in either file is such a name). The two free-text columns are the only ones
that could be confused, and the township vocabulary tells them apart. A 6-column row that fails any check is an
error, never a guess; any other layout (another column count without a header, a header that differs from the
canonical one) is refused with :class:`MontcoFormatError`.

Timestamps are the county's local wall-clock time (America/New_York) and stay naive, as in the files.

Errors: :class:`MontcoFormatError` (a ``ValueError``) naming the file, the 1-based line and the column of each
problem (the first :data:`MAX_REPORTED_ERRORS`); ``OSError`` for an unreadable file.

Source of the format: the files and ``SOURCES.md`` in ``../shared/data/real/calls/``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

CANONICAL_HEADER = ("lat", "lng", "desc", "zip", "title", "timeStamp", "twp", "addr", "e")
"""The header row of the canonical 9-column file, in order."""

REDUCED6_COLUMNS = ("lat", "lng", "title", "timeStamp", "twp", "addr")
"""The explicit mapping of the header-less 6-column variant (see the module docstring for why it is unambiguous)."""

CATEGORIES = ("EMS", "Fire", "Traffic")
"""The ``Category`` part of ``title``."""

AREA = (39.5, 41.0, -76.5, -74.5)
"""(lat_min, lat_max, lon_min, lon_max), degrees WGS84: a generous box around Montgomery County and its neighbours
(the real files span 39.97..40.45 N, 75.71..75.02 W). Required in the header-less variant, where it proves which
column is the latitude; the canonical file only needs valid WGS84 coordinates."""

MUNICIPALITIES = frozenset(
    name.strip()
    for name in """
    ABINGTON|AMBLER|BERKS COUNTY|BRIDGEPORT|BRYN ATHYN|BUCKS COUNTY|CHELTENHAM|CHESTER COUNTY|COLLEGEVILLE|
    CONSHOHOCKEN|DELAWARE COUNTY|DOUGLASS|EAST GREENVILLE|EAST NORRITON|FRANCONIA|GREEN LANE|HATBORO|HATFIELD BORO|
    HATFIELD TOWNSHIP|HORSHAM|JENKINTOWN|LANSDALE|LEHIGH COUNTY|LIMERICK|LOWER FREDERICK|LOWER GWYNEDD|LOWER MERION|
    LOWER MORELAND|LOWER POTTSGROVE|LOWER PROVIDENCE|LOWER SALFORD|MARLBOROUGH|MONTGOMERY|NARBERTH|NEW HANOVER|
    NORRISTOWN|NORTH WALES|PENNSBURG|PERKIOMEN|PHILA COUNTY|PLYMOUTH|POTTSTOWN|RED HILL|ROCKLEDGE|ROYERSFORD|SALFORD|
    SCHWENKSVILLE|SKIPPACK|SOUDERTON|SPRINGFIELD|TELFORD|TOWAMENCIN|TRAPPE|UPPER DUBLIN|UPPER FREDERICK|UPPER GWYNEDD|
    UPPER HANOVER|UPPER MERION|UPPER MORELAND|UPPER POTTSGROVE|UPPER PROVIDENCE|UPPER SALFORD|WEST CONSHOHOCKEN|
    WEST NORRITON|WEST POTTSGROVE|WHITEMARSH|WHITPAIN|WORCESTER
    """.split("|")
)
"""The ``twp`` values of the canonical file (68 municipalities and neighbouring counties), exact spelling."""

MAX_REPORTED_ERRORS = 20
"""How many row problems one :class:`MontcoFormatError` lists before it says how many more there were."""

_TITLE = re.compile(r"^(?P<category>[A-Za-z]+): (?P<subtype>.*?)(?: -)?\s*$")
_TS_SECONDS = "%Y-%m-%d %H:%M:%S"
_TS_MINUTES = "%Y-%m-%d %H:%M"
_TS_MINUTES_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
_ZIP = re.compile(r"^(?P<zip>\d{5})(?:\.0)?$")


class MontcoFormatError(ValueError):
    """A records file that cannot be read as Montgomery County 911 data; ``str()`` names file, line and column."""


@dataclass(frozen=True)
class CallRecord:
    """One real dispatch record.

    ``lat``/``lon`` in degrees WGS84; ``timestamp`` naive local time (America/New_York), seconds are 0 in the
    header-less variant; ``category`` one of :data:`CATEGORIES`; ``subtype`` upper-case as in the file without the
    trailing ``" -"`` of Traffic titles; ``zip`` five digits or empty; ``desc`` empty in the header-less variant;
    ``line`` the 1-based line in the source file.
    """

    lat: float
    lon: float
    timestamp: datetime
    category: str
    subtype: str
    township: str
    address: str
    zip: str
    desc: str
    line: int

    @property
    def title(self) -> str:
        """``Category: SUBTYPE`` (without the trailing `` -`` of Traffic titles)."""
        return f"{self.category}: {self.subtype}"


@dataclass(frozen=True)
class LoadedRecords:
    """The result of :func:`load_montco`: records in file order and the layout detected
    (``"canonical"`` or ``"reduced6"``)."""

    path: Path
    layout: str
    records: tuple[CallRecord, ...]


def detect_layout(first_row: list[str]) -> str:
    """``"canonical"`` for the canonical header, ``"reduced6"`` for a 6-field data row; else raise
    :class:`MontcoFormatError` (without a file name; :func:`load_montco` adds it)."""
    stripped = [c.strip() for c in first_row]
    if tuple(stripped) == CANONICAL_HEADER:
        return "canonical"
    if stripped and set(stripped) & set(CANONICAL_HEADER):
        raise MontcoFormatError(
            f"line 1: a header row {','.join(stripped)!r} that is not the canonical one; "
            f"expected exactly {','.join(CANONICAL_HEADER)!r}"
        )
    if len(stripped) == len(REDUCED6_COLUMNS):
        return "reduced6"
    raise MontcoFormatError(
        f"line 1: {len(stripped)} columns and no header; expected the header {','.join(CANONICAL_HEADER)!r} "
        f"or header-less rows of 6 columns {','.join(REDUCED6_COLUMNS)!r}"
    )


def load_montco(path: Path) -> LoadedRecords:
    """Read and validate a Montgomery County 911 CSV file (either layout, see the module docstring).

    Returns :class:`LoadedRecords`. Raises :class:`MontcoFormatError` listing every problem as
    ``file: line N, column NAME: message`` (up to :data:`MAX_REPORTED_ERRORS`), or ``OSError``.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MontcoFormatError(f"{path}: not UTF-8 text ({exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = [(reader.line_num, row) for row in reader]  # line_num: last line of the row
    if not rows:
        raise MontcoFormatError(f"{path}: the file is empty; expected the header {','.join(CANONICAL_HEADER)!r}")
    try:
        layout = detect_layout(rows[0][1])
    except MontcoFormatError as exc:
        raise MontcoFormatError(f"{path}: {exc}") from None
    columns = CANONICAL_HEADER if layout == "canonical" else REDUCED6_COLUMNS
    first_data = 1 if layout == "canonical" else 0
    errors: list[str] = []
    records: list[CallRecord] = []
    for line, row in rows[first_data:]:
        if not row or row == [""]:
            continue
        if len(row) != len(columns):
            errors.append(f"{path}: line {line}: {len(row)} columns; expected {len(columns)} ({','.join(columns)})")
            continue
        values = dict(zip(columns, row))
        where = f"{path}: line {line}"
        record = _parse_row(values, line, layout, lambda col, msg: errors.append(f"{where}, column {col!r}: {msg}"))
        if record is not None:
            records.append(record)
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        tail = [f"... and {more} more problem(s)"] if more else []
        raise MontcoFormatError("\n".join(shown + tail))
    if not records:
        raise MontcoFormatError(f"{path}: no records after the header")
    return LoadedRecords(path, layout, tuple(records))


def _parse_row(
    values: dict[str, str], line: int, layout: str, error: Callable[[str, str], None]
) -> CallRecord | None:
    """One row into a :class:`CallRecord`, or None after reporting each problem through ``error(column, msg)``."""
    before = _ErrorCount(error)
    lat = _coordinate(values["lat"], "lat", -90.0, 90.0, before)
    lon = _coordinate(values["lng"], "lng", -180.0, 180.0, before)
    if layout == "reduced6" and lat is not None and lon is not None:
        lat_min, lat_max, lon_min, lon_max = AREA
        if not (lat_min <= lat <= lat_max and lon_min <= lon <= lon_max):
            before("lat", f"({lat}, {lon}) is outside the county area {AREA}; in a header-less file the coordinate "
                          "columns are identified only by lying there, so this row is refused rather than guessed")
    title = values["title"].strip()
    match = _TITLE.match(title)
    category = subtype = ""
    if not match or match["category"] not in CATEGORIES or not match["subtype"].strip():
        before("title", f"{title!r} is not 'Category: SUBTYPE' with a category in {', '.join(CATEGORIES)}")
    else:
        category, subtype = match["category"], match["subtype"].strip()
    timestamp = _timestamp(values["timeStamp"].strip(), layout, before)
    township = values["twp"].strip()
    if layout == "reduced6" and township not in MUNICIPALITIES:
        before("twp", f"{township!r} is not a known municipality; in a header-less file this column is identified "
                      "only by its township names, so the row is refused rather than guessed")
    zip_code = ""
    if layout == "canonical":
        raw_zip = values["zip"].strip()
        if raw_zip:
            zm = _ZIP.match(raw_zip)
            if zm is None:
                before("zip", f"{raw_zip!r} is not a 5-digit ZIP code (optionally written as a float, 19090.0)")
            else:
                zip_code = zm["zip"]
        if values["e"].strip() != "1":
            before("e", f"{values['e']!r}; expected 1 (every record counts one call)")
    if before.count or lat is None or lon is None or timestamp is None:
        return None
    return CallRecord(
        lat=lat,
        lon=lon,
        timestamp=timestamp,
        category=category,
        subtype=subtype,
        township=township,
        address=values["addr"].strip(),
        zip=zip_code,
        desc=values.get("desc", "").strip(),
        line=line,
    )


class _ErrorCount:
    """Forwards ``(column, message)`` to the error sink and counts, so a row with any problem yields no record."""

    def __init__(self, sink: Callable[[str, str], None]) -> None:
        self.sink = sink
        self.count = 0

    def __call__(self, column: str, message: str) -> None:
        self.count += 1
        self.sink(column, message)


def _coordinate(raw: str, column: str, low: float, high: float, error: _ErrorCount) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        error(column, f"{raw!r} is not a number (degrees WGS84)")
        return None
    if not math.isfinite(value) or not low <= value <= high:
        error(column, f"{value} is outside {low}..{high} degrees")
        return None
    return value


def _timestamp(raw: str, layout: str, error: _ErrorCount) -> datetime | None:
    fmt, shape = (_TS_SECONDS, "YYYY-MM-DD HH:MM:SS") if layout == "canonical" else (_TS_MINUTES, "YYYY-MM-DD HH:MM")
    if layout == "reduced6" and not _TS_MINUTES_RE.match(raw):
        error("timeStamp", f"{raw!r}; expected YYYY-MM-DD HH:MM (the header-less variant has no seconds)")
        return None
    try:
        return datetime.strptime(raw, fmt)
    except ValueError:
        error("timeStamp", f"{raw!r}; expected {shape}")
        return None
