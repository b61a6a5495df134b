"""analysis.imports: ratings sheets as spreadsheets really write them (bytes written here byte for byte)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.imports import RatingsImportError, detect_kind, read_ratings_csv
from analysis.load import AnalysisError


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_dutch_excel_semicolons_decimal_commas_bom_and_quoted_headers(tmp_path: Path) -> None:
    # What Excel (nl-NL) writes for "CSV UTF-8 (door komma's gescheiden)": BOM, ';', decimal commas, CRLF.
    data = '\ufeff"Deelnemer";"Melding";"RSME"\r\nP01;p-theft;37,5\r\nP01;p-medical;85\r\n;;\r\nP02;p-theft;\r\n'
    table = read_ratings_csv(write(tmp_path, "rsme.csv", data.encode("utf-8")), kind="rsme")
    assert table.columns.tolist() == ["participant", "session_id", "scenario_call_id", "rsme", "source_file",
                                      "source_line"]
    assert table["participant"].tolist() == ["P01", "P01", "P02"]
    assert table["rsme"].tolist()[:2] == [37.5, 85.0] and table["rsme"].isna().tolist() == [False, False, True]
    assert table["source_line"].tolist() == [2, 3, 5]
    assert table.attrs["notes"] == ["1 decimal comma(s) read as decimal points"]


def test_plain_utf8_commas_without_bom_and_windows_1252(tmp_path: Path) -> None:
    table = read_ratings_csv(write(tmp_path, "a.csv", b"participant,session_id,call_id,rsme\nP01,s1,k,13.25\n"))
    assert (table.loc[0, "session_id"], table.loc[0, "scenario_call_id"], table.loc[0, "rsme"]) == ("s1", "k", 13.25)
    assert table.attrs["notes"] == []
    # Excel's plain "CSV" on Dutch Windows is Windows-1252: a participant called "Zoë" is byte 0xEB.
    table = read_ratings_csv(write(tmp_path, "b.csv", "deelnemer;oproep;rsme\nZoë;k;2,0\n".encode("cp1252")))
    assert table.loc[0, "participant"] == "Zoë"
    assert table.attrs["notes"][0].startswith("not UTF-8: read as Windows-1252")


def test_nasa_tlx_sheet_and_kind_detection(tmp_path: Path) -> None:
    data = ("Participant;Blok;Mentaal;Fysiek;Tijdsdruk;Prestatie;Moeite;Frustratie\n"
            "P01;b-photo;55;10;40;25;50;15\n"
            "P01;b-video;70;5;65;30;75;\n").encode("utf-8")
    path = write(tmp_path, "tlx.csv", data)
    assert detect_kind(path) == "nasa_tlx"
    table = read_ratings_csv(path, kind="nasa_tlx")
    # Raw TLX = mean of the six subscales (Hart & Staveland 1988): (55+10+40+25+50+15)/6 = 195/6 = 32.5.
    assert table.loc[0, "raw_tlx"] == pytest.approx(32.5)
    assert table.loc[1, "block_id"] == "b-video" and math.isnan(float(table["raw_tlx"].astype(float)[1]))
    assert detect_kind(write(tmp_path, "r.csv", b"pp;call;score\nP1;k;3\n")) == "rsme"


def test_columns_that_cannot_be_matched_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = write(tmp_path, "wrong.csv", b"name;question;answer\nP01;k;3\n")
    with pytest.raises(RatingsImportError) as info:
        read_ratings_csv(path, kind="rsme")
    message = str(info.value)
    assert isinstance(info.value, AnalysisError)
    assert "missing participant, scenario_call_id, rsme" in message
    assert "expected participant (or participant_id" in message
    assert "found 'name', 'question', 'answer'" in message
    with pytest.raises(RatingsImportError, match="match no ratings sheet"):
        detect_kind(path)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"participant;call;rsme\nP01;k;151\n", "line 2: rsme 151.0 is outside 0-150"),
        (b"participant;call;rsme\nP01;k;veel\n", "line 2: rsme 'veel' is not a number"),
        (b"participant;call;rsme\n;k;3\n", "line 2: participant is empty"),
        (b"", "the file is empty"),
    ],
)
def test_bad_values_are_refused_with_their_line(tmp_path: Path, body: bytes, match: str) -> None:
    with pytest.raises(RatingsImportError, match=match):
        read_ratings_csv(write(tmp_path, "x.csv", body), kind="rsme")


def test_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(RatingsImportError, match="unknown ratings kind 'sus'"):
        read_ratings_csv(write(tmp_path, "x.csv", b"a\n"), kind="sus")
