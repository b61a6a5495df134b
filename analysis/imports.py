"""Ratings kept outside the workbench (paper RSME or NASA-TLX sheets typed into a spreadsheet), read from CSV.

What a file may look like: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" writes one), or, failing
that, Windows-1252 (Excel's plain "CSV" on a Dutch Windows; noted in the result); separator ``;`` with decimal
commas as a Dutch Excel writes them, or ``,`` with decimal points, or a tab; headers quoted or not, in any case,
with spaces or dashes, in English or Dutch (see :data:`ALIASES`). The separator is read from the header line: a
``;`` in it means ``;`` (and decimal commas are accepted), else a tab, else ``,``; nothing is guessed per cell.

A file whose columns cannot be matched is refused with :class:`RatingsImportError` naming the columns expected
(with their accepted spellings) and the columns found; so is a value that is not a number or out of its scale,
with its line number. Empty rating cells are kept as missing values.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import pandas as pd

from analysis.load import AnalysisError
from workbench.domain.taxonomy import RSME_MAX, RSME_MIN

KINDS = ("rsme", "nasa_tlx")
"""Kinds of rating sheets :func:`read_ratings_csv` reads."""

TLX_SUBSCALES = ("mental_demand", "physical_demand", "temporal_demand", "performance", "effort", "frustration")
"""NASA-TLX subscales (Hart, S. G., & Staveland, L. E. (1988). Development of NASA-TLX (Task Load Index): Results
of empirical and theoretical research. *Advances in Psychology*, 52, 139-183), each 0-100."""

ALIASES: dict[str, tuple[str, ...]] = {
    "participant": ("participant", "participant_id", "pp", "deelnemer", "proefpersoon", "respondent"),
    "session_id": ("session_id", "session", "sessie"),
    "scenario_call_id": ("scenario_call_id", "call", "call_id", "melding", "oproep"),
    "block_id": ("block_id", "block", "blok"),
    "rsme": ("rsme", "rsme_score", "score", "inspanning"),
    "mental_demand": ("mental_demand", "mental", "mentaal", "mentale_belasting"),
    "physical_demand": ("physical_demand", "physical", "fysiek", "lichamelijk", "fysieke_belasting"),
    "temporal_demand": ("temporal_demand", "temporal", "tijd", "tijdsdruk"),
    "performance": ("performance", "prestatie"),
    "effort": ("effort", "moeite"),
    "frustration": ("frustration", "frustratie"),
}
"""Canonical column -> accepted header spellings (compared after lower-casing and turning every run of
non-alphanumerics into ``_``)."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "rsme": ("participant", "scenario_call_id", "rsme"),
    "nasa_tlx": ("participant", "block_id") + TLX_SUBSCALES,
}
"""Columns a sheet of each kind must have."""

OPTIONAL: tuple[str, ...] = ("session_id",)
"""Columns taken when present."""

RANGES: dict[str, tuple[float, float]] = {"rsme": (RSME_MIN, RSME_MAX)} | {s: (0.0, 100.0) for s in TLX_SUBSCALES}
"""Valid range of each rating column (inclusive)."""


class RatingsImportError(AnalysisError):
    """A ratings file cannot be read as the kind asked for; the message names the file, what was expected and what
    was found."""


def _normalise(header: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", header.strip().strip('"').lower()).strip("_")


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    try:
        return raw.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252"), "not UTF-8: read as Windows-1252 (Excel's plain CSV)"
        except UnicodeDecodeError as exc:
            raise RatingsImportError(f"{path}: neither UTF-8 nor Windows-1252 text ({exc}); save it as CSV UTF-8")\
                from exc


def _match_columns(headers: list[str], kind: str) -> tuple[dict[str, int], list[str]]:
    """Canonical column -> index in the file, and the required columns not found."""
    normalised = [_normalise(h) for h in headers]
    found: dict[str, int] = {}
    for canonical in REQUIRED[kind] + OPTIONAL:
        for i, name in enumerate(normalised):
            if name in ALIASES[canonical]:
                found.setdefault(canonical, i)
    missing = [c for c in REQUIRED[kind] if c not in found]
    return found, missing


def _expected_text(kind: str) -> str:
    return "; ".join(f"{c} (or {', '.join(ALIASES[c][1:])})" if len(ALIASES[c]) > 1 else c for c in REQUIRED[kind])


def _split(text: str, path: Path) -> tuple[list[list[str]], str, int]:
    lines = text.splitlines()
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise RatingsImportError(f"{path}: the file is empty; expected a header line and one line per rating")
    header = lines[header_index]
    sep = ";" if ";" in header else "\t" if "\t" in header else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=sep, quotechar='"'))
    return rows, sep, header_index


def detect_kind(path: Path) -> str:
    """The kind (``nasa_tlx`` or ``rsme``) whose columns the file's header matches; raises
    :class:`RatingsImportError` with both expectations when it matches neither."""
    path = Path(path)
    text, _ = _decode(path.read_bytes(), path)
    rows, _, start = _split(text, path)
    headers = rows[start] if start < len(rows) else []
    reasons = []
    for kind in ("nasa_tlx", "rsme"):
        _, missing = _match_columns(headers, kind)
        if not missing:
            return kind
        reasons.append(f"{kind} needs {_expected_text(kind)} (missing {', '.join(missing)})")
    raise RatingsImportError(f"{path}: columns {headers} match no ratings sheet: " + "; ".join(reasons))


def read_ratings_csv(path: Path | str, kind: str = "rsme") -> pd.DataFrame:
    """Read a ratings sheet of ``kind`` (``rsme`` or ``nasa_tlx``) into a tidy table.

    Returns, for ``rsme``: ``participant``, ``session_id`` (empty when the sheet has none), ``scenario_call_id``,
    ``rsme`` (RSME 0-150, Float64); for ``nasa_tlx``: ``participant``, ``session_id``, ``block_id``, the six
    :data:`TLX_SUBSCALES` (0-100, Float64) and ``raw_tlx`` (their mean, Hart & Staveland 1988; empty when a
    subscale is); both end with ``source_file`` and ``source_line`` (1-based line of the file). ``attrs["notes"]``
    lists what was repaired (encoding, decimal commas).

    Raises :class:`RatingsImportError` (an ``AnalysisError``) when ``kind`` is unknown, the file is empty, its
    columns cannot be matched (the message lists the expected and the found columns), a rating is not a number or
    out of range, or an identifier cell is empty; ``OSError`` when it cannot be read.
    """
    if kind not in KINDS:
        raise RatingsImportError(f"unknown ratings kind {kind!r}; expected one of {', '.join(KINDS)}")
    path = Path(path)
    text, encoding_note = _decode(path.read_bytes(), path)
    rows, sep, start = _split(text, path)
    headers = rows[start]
    found, missing = _match_columns(headers, kind)
    if missing:
        raise RatingsImportError(
            f"{path}: cannot match the columns of a {kind} sheet: missing {', '.join(missing)}; expected "
            f"{_expected_text(kind)}; found {', '.join(repr(h) for h in headers)}"
        )
    notes = [encoding_note] if encoding_note else []
    decimal_commas = 0
    ids = [c for c in ("participant", "session_id", "scenario_call_id", "block_id") if c in REQUIRED[kind] + OPTIONAL]
    values = [c for c in REQUIRED[kind] if c in RANGES]
    out = []
    for offset, cells in enumerate(rows[start + 1:], start=start + 2):
        if not any(c.strip() for c in cells):
            continue
        record: dict[str, object] = {}
        for column in ids:
            index = found.get(column)
            cell = cells[index].strip() if index is not None and index < len(cells) else ""
            if not cell and column != "session_id":
                raise RatingsImportError(f"{path} line {offset}: {column} is empty")
            record[column] = cell or None
        for column in values:
            index = found[column]
            cell = cells[index].strip() if index < len(cells) else ""
            if not cell:
                record[column] = None
                continue
            if sep != "," and "," in cell:
                cell = cell.replace(".", "").replace(",", ".") if cell.count(",") == 1 else cell
                decimal_commas += 1
            try:
                number = float(cell)
            except ValueError:
                raise RatingsImportError(f"{path} line {offset}: {column} {cells[index]!r} is not a number") from None
            low, high = RANGES[column]
            if not (low <= number <= high) or math.isnan(number):
                raise RatingsImportError(f"{path} line {offset}: {column} {number} is outside {low:g}-{high:g}")
            record[column] = number
        record["source_file"] = str(path)
        record["source_line"] = offset
        out.append(record)
    if decimal_commas:
        notes.append(f"{decimal_commas} decimal comma(s) read as decimal points")
    id_columns = [c for c in ids]
    frame = pd.DataFrame(out, columns=id_columns + values + ["source_file", "source_line"])
    for column in id_columns + ["source_file"]:
        frame[column] = frame[column].astype("string")
    for column in values:
        frame[column] = frame[column].astype("Float64")
    frame["source_line"] = frame["source_line"].astype("Int64")
    if kind == "nasa_tlx":
        frame.insert(len(id_columns) + len(values), "raw_tlx", frame[list(TLX_SUBSCALES)].mean(axis=1, skipna=False))
    frame.attrs["notes"] = notes
    return frame
