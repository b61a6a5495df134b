"""Ratings kept outside the workbench (paper RSME or NASA-TLX sheets typed into a spreadsheet), read from CSV.

What a file may look like: UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8" writes one), or, failing
that, Windows-1252 (Excel's plain "CSV" on a Dutch Windows; noted in the result); separator ``;`` with decimal
commas as a Dutch Excel writes them, or ``,`` with decimal points, or a tab; headers quoted or not, in any case,
with spaces or dashes, in English or Dutch (see :data:`ALIASES`). The separator is read from the header line: a
``;`` in it means ``;`` (and decimal commas are accepted), else a tab, else ``,``; nothing is guessed per cell.

A file whose columns cannot be matched is refused with :class:`RatingsImportError` naming the columns expected
(with their accepted spellings) and the columns found; so is a value that is not a number or out of its scale,
with its line number. Empty rating cells are kept as missing values.

NASA-TLX sheets may also carry the weights of the weighted TLX (Hart & Staveland 1988), in either of two forms:

- six weight columns, one per subscale (``weight_mental``, ``w_mental_demand``, ``gewicht_mentaal``,
  ``mentaal_gewicht``, ...: see :func:`weight_headers`), each the tally of the 15 pairwise comparisons that chose the
  subscale: an integer 0-5, the six summing to 15;
- fifteen pairwise-choice columns, each naming one pair (``mental vs physical``, ``Mentaal/Fysiek``,
  ``tijdsdruk of prestatie``, ...) or numbered ``pair_1`` ... ``pair_15`` (``paar_1`` ...) in the order of
  :data:`workbench.domain.instruments.TLX_PAIRS`; each cell names the subscale chosen from that pair.

The weighted TLX is then sum(rating x weight) / 15. A row whose weight cells are all empty has no weighted TLX;
tallies that are not integers 0-5, do not sum to 15, or that no 15 pairwise choices can give (Landau 1953: the
smallest k tallies must sum to at least k(k-1)/2), a choice that is not one of its pair, or a sheet with only some
of the weight columns, are refused with the reason and the line.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from pathlib import Path

import pandas as pd

from analysis.load import AnalysisError
from analysis.rating_columns import (  # pandas-free, so `workbench analyze --help` can list them
    ALIASES,
    OPTIONAL,
    REQUIRED,
    TLX_SUBSCALES,
    accepted_columns_text,  # noqa: F401 - re-exported
)
from analysis.trials import Column
from workbench.domain.taxonomy import RSME_MAX, RSME_MIN

KINDS = ("rsme", "nasa_tlx")
"""Kinds of rating sheets :func:`read_ratings_csv` reads."""


RANGES: dict[str, tuple[float, float]] = {"rsme": (RSME_MIN, RSME_MAX)} | {s: (0.0, 100.0) for s in TLX_SUBSCALES}
"""Valid range of each rating column (inclusive)."""


WEIGHT_PREFIXES: tuple[str, ...] = ("weight", "w", "gewicht", "weging")
"""Words that mark a weight (tally) column when put before or after a subscale's name: ``weight_mental``,
``mental_weight``, ``gewicht_mentaal``."""

PAIR_WORDS: tuple[str, ...] = ("vs", "versus", "or", "of", "tegen", "")
"""Words allowed between the two subscales of a pairwise-choice column's header (``""``: only a separator such as
``/``)."""

PAIR_NUMBERED: tuple[str, ...] = ("pair", "paar", "comparison", "vergelijking")
"""Prefixes of numbered pairwise-choice columns (``pair_1`` ... ``pair_15``, in the order of ``TLX_PAIRS``)."""

WEIGHT_COLUMNS: tuple[str, ...] = tuple(f"weight_{s}" for s in TLX_SUBSCALES)
"""Columns of the imported NASA-TLX table holding the weights (tallies 0-5 summing to 15)."""


def weight_headers(subscale: str) -> tuple[str, ...]:
    """Normalised headers accepted for the weight (tally) column of ``subscale``."""
    out = []
    for alias in ALIASES[subscale]:
        for word in WEIGHT_PREFIXES:
            out += [f"{word}_{alias}", f"{alias}_{word}"]
    return tuple(out)


@functools.cache
def pair_headers() -> dict[str, int]:
    """Normalised header -> index into ``TLX_PAIRS`` for every accepted spelling of a pairwise-choice column."""
    from workbench.domain.instruments import TLX_PAIRS

    out: dict[str, int] = {}
    for i, (a, b) in enumerate(TLX_PAIRS):
        for word in PAIR_NUMBERED:
            out[f"{word}_{i + 1}"] = i
            out[f"{word}{i + 1}"] = i
        for first, second in ((a, b), (b, a)):
            for x in ALIASES[first]:
                for y in ALIASES[second]:
                    for word in PAIR_WORDS:
                        out[f"{x}_{word}_{y}" if word else f"{x}_{y}"] = i
    return out


def _weight_layout(headers: list[str], path: Path) -> tuple[str, dict[str, int]]:
    """How the sheet carries the TLX weights: ``("", {})`` without, ``("tallies", subscale -> column index)`` or
    ``("pairwise", pair index as str -> column index)``; raises :class:`RatingsImportError` for an incomplete or
    mixed layout."""
    from workbench.domain.instruments import TLX_PAIRS

    normalised = [_normalise(h) for h in headers]
    tallies: dict[str, int] = {}
    for subscale in TLX_SUBSCALES:
        accepted = weight_headers(subscale)
        for i, name in enumerate(normalised):
            if name in accepted:
                tallies.setdefault(subscale, i)
    pairs: dict[str, int] = {}
    lookup = pair_headers()
    for i, name in enumerate(normalised):
        if name in lookup:
            key = str(lookup[name])
            if key in pairs:
                raise RatingsImportError(f"{path}: two columns for the pair {' vs '.join(TLX_PAIRS[int(key)])}: "
                                         f"{headers[pairs[key]]!r} and {headers[i]!r}; keep one")
            pairs[key] = i
    if tallies and pairs:
        raise RatingsImportError(f"{path}: the sheet has both weight tallies ({', '.join(headers[i] for i in tallies.values())}) "
                                 f"and pairwise choices ({', '.join(headers[i] for i in pairs.values())}); keep one "
                                 "of the two forms of the NASA-TLX weights")
    if tallies and len(tallies) < len(TLX_SUBSCALES):
        missing = [s for s in TLX_SUBSCALES if s not in tallies]
        raise RatingsImportError(f"{path}: NASA-TLX weight columns for {', '.join(tallies)} but none for "
                                 f"{', '.join(missing)}; expected six weight columns (e.g. weight_{missing[0]}), "
                                 "one tally 0-5 per subscale")
    if pairs and len(pairs) < len(TLX_PAIRS):
        missing_pairs = [" vs ".join(TLX_PAIRS[i]) for i in range(len(TLX_PAIRS)) if str(i) not in pairs]
        raise RatingsImportError(f"{path}: {len(pairs)} of the 15 NASA-TLX pairwise-choice columns; missing "
                                 f"{', '.join(missing_pairs)}")
    if tallies:
        return "tallies", tallies
    if pairs:
        return "pairwise", pairs
    return "", {}


def check_tallies(weights: dict[str, int], where: str) -> None:
    """Raise :class:`RatingsImportError` (message starting with ``where``) unless ``weights`` (subscale -> tally)
    could come from the 15 pairwise comparisons: each 0-5, summing to 15, and the smallest k summing to at least
    k(k-1)/2 for every k (Landau, H. G. (1953). On dominance relations and the structure of animal societies: III.
    The condition for a score structure. *Bulletin of Mathematical Biophysics*, 15, 143-148: the k subscales with
    the fewest wins still win the k(k-1)/2 comparisons among themselves)."""
    for subscale, w in weights.items():
        if not 0 <= w <= 5:
            raise RatingsImportError(f"{where}: weight of {subscale} is {w}; a tally of the 15 pairwise comparisons is "
                                     "0-5 (each subscale is in 5 pairs)")
    total = sum(weights.values())
    if total != 15:
        raise RatingsImportError(f"{where}: the six NASA-TLX weights sum to {total}; they must sum to 15 (one per "
                                 "pairwise comparison): check the tallies")
    ordered = sorted(weights.values())
    for k in range(1, len(ordered) + 1):
        if sum(ordered[:k]) < k * (k - 1) // 2:
            raise RatingsImportError(f"{where}: no 15 pairwise choices give the weights {weights} (the {k} "
                                     f"smallest sum to {sum(ordered[:k])}, less than the {k * (k - 1) // 2} comparison(s) "
                                     "among themselves): check the tallies")


def _row_weights(cells: list[str], layout: str, columns: dict[str, int], where: str) -> dict[str, int] | None:
    """The row's weights (subscale -> tally), None when all its weight cells are empty; raises
    :class:`RatingsImportError` for a partly filled, non-integer or impossible set."""
    from workbench.domain.instruments import TLX_PAIRS, tlx_weights

    raw = {key: (cells[i].strip() if i < len(cells) else "") for key, i in columns.items()}
    if not any(raw.values()):
        return None
    empty = [key for key, v in raw.items() if not v]
    if layout == "tallies":
        if empty:
            raise RatingsImportError(f"{where}: weight(s) of {', '.join(empty)} empty; give all six tallies or none")
        weights = {}
        for subscale, cell in raw.items():
            try:
                number = float(cell.replace(",", "."))
            except ValueError:
                raise RatingsImportError(f"{where}: weight of {subscale} {cell!r} is not a number") from None
            if not number.is_integer():
                raise RatingsImportError(f"{where}: weight of {subscale} {cell!r} is not a whole number; a tally "
                                         "counts pairwise comparisons (0-5)")
            weights[subscale] = int(number)
        check_tallies(weights, where)
        return {s: weights[s] for s in TLX_SUBSCALES}
    if empty:
        names = [" vs ".join(TLX_PAIRS[int(k)]) for k in empty]
        raise RatingsImportError(f"{where}: pairwise choice(s) {', '.join(names)} empty; give all 15 or none")
    choices = []
    for key in sorted(raw, key=int):
        pair = TLX_PAIRS[int(key)]
        name = _normalise(raw[key])
        chosen = next((s for s in pair if name in ALIASES[s]), None)
        if chosen is None:
            raise RatingsImportError(f"{where}: choice {raw[key]!r} for the pair {pair[0]} vs {pair[1]} names "
                                     f"neither; expected one of {', '.join(ALIASES[pair[0]] + ALIASES[pair[1]])}")
        choices.append(chosen)
    return tlx_weights(choices)


def _sheet_columns(kind: str) -> tuple[Column, ...]:
    ids = [Column("participant", "string", "", "Participant pseudonym (sheet column participant, pp, deelnemer, "
                  "...)."),
           Column("session_id", "string", "", "Session id when the sheet has one; else empty.")]
    tail = (Column("source_file", "string", "", "The sheet the line comes from."),
            Column("source_line", "integer", "", "1-based line of the sheet."))
    if kind == "rsme":
        return (*ids, Column("scenario_call_id", "string", "", "Scenario call rated (call, melding, oproep, ...)."),
                Column("rsme", "number", "RSME 0-150", "Rating; empty when the cell is empty."), *tail)
    return (
        *ids, Column("block_id", "string", "", "Block rated (block, blok)."),
        *(Column(s, "number", "0-100", f"NASA-TLX subscale {s}; decimal commas read as points.") for s in TLX_SUBSCALES),
        Column("raw_tlx", "number", "NASA-TLX 0-100", "Mean of the six subscales; empty when one is empty."),
        *(Column(f"weight_{s}", "integer", "count 0-5", f"Weight of {s}: how many of the 15 pairwise comparisons chose "
                 "it (a tally column of the sheet, or counted from its 15 pairwise-choice columns); empty without "
                 "weights.") for s in TLX_SUBSCALES),
        Column("weighted_tlx", "number", "NASA-TLX 0-100", "Sum of subscale x weight / 15 (Hart & Staveland 1988); "
               "empty without weights or with an empty subscale."),
        *tail,
    )


RSME_SHEET_COLUMNS: tuple[Column, ...] = _sheet_columns("rsme")
"""Columns of ``ratings_rsme.csv`` (imported RSME sheets)."""

TLX_SHEET_COLUMNS: tuple[Column, ...] = _sheet_columns("nasa_tlx")
"""Columns of ``ratings_nasa_tlx.csv`` (imported NASA-TLX sheets, with the weights when the sheet has them)."""


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
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise RatingsImportError(f"ratings file {path} {what}; check the path given to --ratings")
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
    subscale is), :data:`WEIGHT_COLUMNS` (Int64 tallies 0-5; empty without weights) and ``weighted_tlx``
    (sum of rating x weight / 15, Hart & Staveland 1988; empty without weights or with an empty subscale); both end
    with ``source_file`` and ``source_line`` (1-based line of the file). ``attrs["notes"]`` lists what was repaired
    or how the weights were read (encoding, decimal commas, weights).

    Raises :class:`RatingsImportError` (an ``AnalysisError``) when ``kind`` is unknown, the file is empty, its
    columns cannot be matched (the message lists the expected and the found columns), a rating is not a number or
    out of range, an identifier cell is empty, or the NASA-TLX weights are incomplete or impossible (see the module
    docstring); ``OSError`` when it cannot be read.
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
    layout, weight_columns = _weight_layout(headers, path) if kind == "nasa_tlx" else ("", {})
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
        if kind == "nasa_tlx":
            weights = _row_weights(cells, layout, weight_columns, f"{path} line {offset}") if layout else None
            for subscale, column in zip(TLX_SUBSCALES, WEIGHT_COLUMNS):
                record[column] = weights[subscale] if weights is not None else None
            ratings = [record[s] for s in TLX_SUBSCALES]
            record["weighted_tlx"] = (
                sum(r * weights[s] for r, s in zip(ratings, TLX_SUBSCALES)) / 15  # type: ignore[operator]
                if weights is not None and all(r is not None for r in ratings) else None
            )
        record["source_file"] = str(path)
        record["source_line"] = offset
        out.append(record)
    if decimal_commas:
        notes.append(f"{decimal_commas} decimal comma(s) read as decimal points")
    id_columns = [c for c in ids]
    extra = list(WEIGHT_COLUMNS) + ["weighted_tlx"] if kind == "nasa_tlx" else []
    frame = pd.DataFrame(out, columns=id_columns + values + extra + ["source_file", "source_line"])
    for column in id_columns + ["source_file"]:
        frame[column] = frame[column].astype("string")
    for column in values:
        frame[column] = frame[column].astype("Float64")
    frame["source_line"] = frame["source_line"].astype("Int64")
    if kind == "nasa_tlx":
        for column in WEIGHT_COLUMNS:
            frame[column] = frame[column].astype("Int64")
        frame["weighted_tlx"] = frame["weighted_tlx"].astype("Float64")
        frame.insert(len(id_columns) + len(values), "raw_tlx", frame[list(TLX_SUBSCALES)].mean(axis=1, skipna=False))
        if layout:
            weighted = int(frame["weighted_tlx"].notna().sum())
            notes.append(f"NASA-TLX weights read as {'tallies' if layout == 'tallies' else '15 pairwise choices'}: "
                         f"weighted TLX for {weighted} of {len(frame)} row(s)")
    frame.attrs["notes"] = notes
    return frame
