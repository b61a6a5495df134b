"""The Arrow CSV writer (analysis.csv_fast, issue 9) writes the bytes pandas writes: awkward text, numbers,
booleans, missing cells, slices, and every table of a real analysis."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from analysis.csv_fast import fast_csv_possible, write_csv_fast, write_csv_pandas, write_table_csv
from analysis.run import analyze
from workbench.cli import main

REPO = Path(__file__).resolve().parent.parent

AWKWARD_TEXT = ["plain", "", "a,b", 'say "hi"', "two\nlines", "carriage\rreturn", "crlf\r\n", " lead", "tab\there",
                "semi;colon", "é ü 112 ☎", "'quote'", '"', ",", "\n", "#hash", "\x0bvt", "\u2028sep", None]


def awkward_table() -> pd.DataFrame:
    n = len(AWKWARD_TEXT)
    floats = [0.1, 0.1 + 0.2, 1e-05, 1e16, -0.0, 123456789.123, math.inf, -math.inf, 2.5, None, 1.0, 3.0e-300,
              0.001, 1e22, float("nan"), 7.0, 0.5, 100.0, None]
    return pd.DataFrame({
        "text": pd.array(AWKWARD_TEXT, dtype="string"),
        "int": pd.array([0, -1, 2**62, None, 42] + list(range(n - 5)), dtype="Int64"),
        "float": pd.array(floats[:n], dtype="Float64"),
        "flag": pd.array([True, False, None] * (n // 3) + [True] * (n % 3), dtype="boolean"),
        "empty": pd.array([None] * n, dtype="string"),
        "a,b \"name\"": pd.array(["x"] * n, dtype="string"),
    })


@pytest.mark.parametrize("slice_rows", [1, 4, 7, 1000])
def test_awkward_values_are_written_as_pandas_writes_them(tmp_path, slice_rows) -> None:
    table = awkward_table()
    assert fast_csv_possible(table)
    write_table_csv(table, tmp_path / "fast.csv", slice_rows)
    write_csv_pandas(table, tmp_path / "pandas.csv", slice_rows)
    fast = (tmp_path / "fast.csv").read_bytes()
    assert fast == (tmp_path / "pandas.csv").read_bytes()
    # What the bytes say (so that two writers agreeing on nonsense cannot pass).
    assert fast.startswith(b'text,int,float,flag,empty,"a,b ""name"""\nplain,0,0.1,True,,x\n')
    assert b'\n,-1,0.30000000000000004,False,,x\n"a,b",4611686018427387904,1e-05,,,x\n' in fast
    assert b'\n"say ""hi""",,1e+16,True,,x\n' in fast
    assert b'\n"two\nlines",' in fast and b"\ncarriage\rreturn," in fast
    assert b"\n\"\n\",9,,,,x\n" in fast  # a lone newline; the Float64 NaN before it is missing, as pandas has it
    assert fast.endswith(b"\n,13,,True,,x\n")


def test_empty_and_single_column_tables(tmp_path) -> None:
    empty = awkward_table().iloc[:0]
    write_table_csv(empty, tmp_path / "e.csv", 10)
    assert (tmp_path / "e.csv").read_bytes() == b'text,int,float,flag,empty,"a,b ""name"""\n'
    single = pd.DataFrame({"text": pd.array(["", None, "x"], dtype="string")})
    assert not fast_csv_possible(single)  # Python's csv quotes a lone empty field: pandas writes it
    write_table_csv(single, tmp_path / "s.csv", 10)
    assert (tmp_path / "s.csv").read_bytes() == b'text\n""\n""\nx\n'
    with pytest.raises(ValueError, match="to_csv"):
        write_csv_fast(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), open(tmp_path / "n.csv", "wb"))


def test_every_table_of_an_analysis_is_written_as_pandas_writes_it(tmp_path) -> None:
    recordings = tmp_path / "rec"
    assert main(["simulate", "--participants", "3", "--scenario", str(REPO / "experiments/effects/scenario.toml"),
                 "--effects", str(REPO / "experiments/effects/example.toml"), "--seed", "11",
                 "--out", str(recordings)]) == 0
    result = analyze(recordings, tmp_path / "out", workers=1)
    tables = {"trials": result.trials, "sessions": result.sessions, "events": result.events,
              "summary": result.summary, "confusion": result.confusion, "data_quality": result.quality,
              "blocks": result.blocks, "drt": result.drt, "form_changes": result.form_changes,
              "disagreement": result.disagreement, **result.automation}
    fast_route = 0
    for name, table in tables.items():
        fast_route += fast_csv_possible(table)
        write_csv_pandas(table, tmp_path / f"{name}.pandas.csv", 500)
        assert (tmp_path / "out" / f"{name}.csv").read_bytes() == (tmp_path / f"{name}.pandas.csv").read_bytes(), name
    assert fast_csv_possible(result.events) and len(result.events) > 1000
    assert fast_route >= 8
