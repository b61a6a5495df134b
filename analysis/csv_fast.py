"""Writing a table's CSV with Arrow's vectorised string kernels: the same bytes as pandas' ``to_csv`` (issue 9).

The analysis writes its tables as pandas writes plain Python objects (``to_csv(index=False, na_rep="",
lineterminator="\\n")`` of the columns as objects, a missing value as None): text as it is, quoted only when it
holds a comma, a double quote or a newline (quotes doubled; Python's ``csv`` QUOTE_MINIMAL with ``\\n`` as line
end; a lone ``\\r`` is quoted only where the running ``csv`` module quotes it), integers in decimal, booleans as
``True``/``False``, floats as ``repr``, missing cells empty. For the events table (~450,000 rows x ~150 mostly empty columns) pandas spends ~12 s of CPU
passing every cell through Python's csv module; here each column becomes an Arrow string column of finished
cells (only the floats go through ``repr`` one by one) and the rows are joined by Arrow in C++, about 5x faster.

Only tables whose every column is a pandas nullable text, integer, float or boolean column (what
:func:`analysis.trials.frame` makes) and that have at least two columns take this route (with one column,
Python's csv quotes an empty row as ``""``); :func:`fast_csv_possible` says which. Byte equality with pandas is
checked by tests/test_csv_fast.py on awkward values and on every table of an analysis.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _needs_quotes_pattern() -> str:
    """The characters that make Python's ``csv`` module (which pandas writes through) quote a cell, with ``\\n`` as
    line end: delimiter, quote character and line end, plus ``\\r`` where the running ``csv`` module quotes it too
    (Python versions differ); asked of ``csv`` itself, so the bytes follow pandas on any Python."""
    probe = io.StringIO()
    csv.writer(probe, lineterminator="\n").writerow(["a\rb", "c"])
    return r'[,"\r\n]' if probe.getvalue().startswith('"') else r'[,"\n]'


NEEDS_QUOTES = _needs_quotes_pattern()
"""A cell with one of these characters is quoted (delimiter, quote character, line end; see above)."""


def fast_csv_possible(table: pd.DataFrame) -> bool:
    """True when :func:`write_csv_fast` writes ``table`` byte for byte as pandas would: at least two columns, each
    a nullable ``string``, integer, ``Float64`` or ``boolean`` column, with string column names."""
    if table.shape[1] < 2 or not all(isinstance(c, str) for c in table.columns):
        return False
    return all(isinstance(dtype, (pd.StringDtype, pd.BooleanDtype, pd.Float64Dtype))
               or (isinstance(dtype, pd.api.extensions.ExtensionDtype) and str(dtype) in
                   ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"))
               for dtype in table.dtypes)


def _quoted(cells: pa.Array) -> pa.Array:
    """Text cells as the csv module writes them: quoted, with quotes doubled, when they need it."""
    needs = pc.match_substring_regex(cells, NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return cells
    wrapped = pc.binary_join_element_wise('"', pc.replace_substring(cells, '"', '""'), '"', "")
    return pc.if_else(needs, wrapped, cells)


def _cells(column: pd.Series) -> pa.Array:
    """The finished CSV cells of one column (an Arrow string array; missing cells are empty strings)."""
    present = column.notna().to_numpy(dtype=bool)
    dtype = column.dtype
    if not present.any():  # most of the events table's columns in most slices
        return pa.repeat(pa.scalar("", pa.string()), len(column))
    if isinstance(dtype, pd.StringDtype):
        text = pa.array(column.array, type=pa.string())  # zero-copy for Arrow-backed text
        if text.null_count != int((~present).sum()):  # not the same missing cells as pandas sees: take pandas'
            text = pa.array(column.astype(object).where(present, None).to_numpy(), type=pa.string())
        cells = _quoted(text)
    elif isinstance(dtype, pd.BooleanDtype):
        values = column.to_numpy(dtype=bool, na_value=False)
        cells = pa.array(np.where(values, "True", "False"), type=pa.string())
    elif isinstance(dtype, pd.Float64Dtype):
        objects = column.astype(object).to_numpy()
        out = np.full(len(column), "", dtype=object)
        out[present] = [repr(v) for v in objects[present]]
        cells = pa.array(out, type=pa.string())
    else:  # nullable integers: decimal, as str(int)
        values = column.to_numpy(dtype="int64" if str(dtype).startswith("I") else "uint64", na_value=0)
        cells = pc.cast(pa.array(values), pa.string())
    if not present.all():
        cells = pc.if_else(pa.array(present), cells, "") if cells.null_count == 0 else pc.fill_null(cells, "")
    return cells


def write_csv_fast(table: pd.DataFrame, fh: BinaryIO, header: bool = True) -> None:
    """Write ``table`` (see :func:`fast_csv_possible`, which must be True) to the binary file ``fh`` as UTF-8 CSV,
    with the header line when ``header``; rows end with ``\\n``. Raises ``ValueError`` for a table that cannot
    take this route."""
    if not fast_csv_possible(table):
        raise ValueError("write_csv_fast needs 2+ columns of nullable string/integer/float/boolean dtypes; "
                         "write this table with pandas' to_csv")
    if header:
        names = _quoted(pa.array(list(table.columns), type=pa.string())).to_pylist()
        fh.write((",".join(names) + "\n").encode("utf-8"))
    if len(table) == 0:
        return
    columns = [_cells(table[c]) for c in table.columns]
    # Each row is its cells joined by commas plus an empty last part joined by "\n": the line with its end. The
    # string data buffer of the result is then the rows back to back, written as it is.
    lines = pc.binary_join_element_wise(*columns, ",")
    lines = pc.binary_join_element_wise(lines, "", "\n")
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32 if lines.type == pa.string() else np.int64)
    start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    fh.write(memoryview(lines.buffers()[2])[start:end])


def write_table_csv(table: pd.DataFrame, path: Path, slice_rows: int) -> None:
    """Write ``table`` to ``path`` as the analysis' CSV (see the module docstring), ``slice_rows`` rows at a time
    (so a plain copy of a study's events table never exists whole): by :func:`write_csv_fast` when
    :func:`fast_csv_possible`, else by pandas from plain Python objects. Raises ``OSError`` when ``path`` cannot
    be written."""
    if fast_csv_possible(table):
        with open(path, "wb") as fh:
            for start in range(0, max(len(table), 1), slice_rows):
                write_csv_fast(table.iloc[start:start + slice_rows], fh, header=start == 0)
    else:
        write_csv_pandas(table, path, slice_rows)


def write_csv_pandas(table: pd.DataFrame, path: Path, slice_rows: int) -> None:
    """The pandas route of :func:`write_table_csv` (any table; the reference the fast route is checked against)."""
    # From plain Python objects: pandas formats them as it formats the nullable columns (the same bytes), but
    # converts Arrow-backed text column chunk by chunk otherwise.
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for start in range(0, max(len(table), 1), slice_rows):
            part = table.iloc[start:start + slice_rows]
            plain = pd.DataFrame({c: part[c].astype(object).where(part[c].notna(), None) for c in part.columns},
                                 columns=part.columns)
            plain.to_csv(fh, index=False, header=start == 0, na_rep="", lineterminator="\n")
