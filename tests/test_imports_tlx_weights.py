"""Weighted NASA-TLX from imported sheets (Hart & Staveland 1988): weights as six tallies or as the 15 pairwise
choices, as a Dutch Excel or a plain CSV writes them; every expected value is computed by hand in the comment
beside it."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from analysis.imports import RatingsImportError, read_ratings_csv
from workbench.cli import main

REPO = Path(__file__).resolve().parent.parent

DUTCH_HEADER = ('\ufeff"Deelnemer";"Blok";"Mentaal";"Fysiek";"Tijdsdruk";"Prestatie";"Moeite";"Frustratie";'
                '"Gewicht mentaal";"Gewicht fysiek";"Gewicht tijdsdruk";"Gewicht prestatie";"Gewicht moeite";'
                '"Gewicht frustratie"')

# The 15 pairs in TLX_PAIRS order, with the subscale chosen from each, giving the tallies mental 5, physical 0,
# temporal 3, performance 2, effort 4, frustration 1 (sum 15): mental wins its 5 pairs; physical loses its 5;
# temporal beats physical, performance, frustration (3); performance beats physical, frustration (2); effort beats
# physical, temporal, performance, frustration (4); frustration beats physical (1).
PAIR_CHOICES = (
    ("Mental vs Physical", "mental"), ("Mental vs Temporal", "mental"), ("Mental vs Performance", "mental"),
    ("Mental vs Effort", "mental"), ("Mental vs Frustration", "mental"), ("Physical vs Temporal", "temporal"),
    ("Physical vs Performance", "performance"), ("Physical vs Effort", "effort"),
    ("Physical vs Frustration", "frustration"), ("Temporal vs Performance", "temporal"),
    ("Temporal vs Effort", "effort"), ("Temporal vs Frustration", "temporal"),
    ("Performance vs Effort", "effort"), ("Performance vs Frustration", "performance"),
    ("Effort vs Frustration", "effort"),
)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_dutch_excel_sheet_with_weight_tallies(tmp_path: Path) -> None:
    # Excel nl-NL "CSV UTF-8": BOM, ';', quoted headers, decimal comma, CRLF.
    data = (DUTCH_HEADER + "\r\n"
            "P01;b-photo;55;10;40;25;50;15;5;0;3;2;4;1\r\n"
            "P01;b-video;70;5;62,5;30;75;20;4;1;4;2;3;1\r\n"
            "P02;b-photo;50;50;50;50;50;50;;;;;;\r\n")
    table = read_ratings_csv(write(tmp_path, "tlx.csv", data.encode("utf-8")), kind="nasa_tlx")
    assert table[[f"weight_{s}" for s in ("mental_demand", "physical_demand", "temporal_demand", "performance",
                                          "effort", "frustration")]].iloc[0].tolist() == [5, 0, 3, 2, 4, 1]
    # (55*5 + 10*0 + 40*3 + 25*2 + 50*4 + 15*1) / 15 = (275 + 0 + 120 + 50 + 200 + 15) / 15 = 660 / 15 = 44
    assert float(table.loc[0, "weighted_tlx"]) == pytest.approx(44.0)
    assert float(table.loc[0, "raw_tlx"]) == pytest.approx(32.5)  # 195 / 6
    # (70*4 + 5*1 + 62.5*4 + 30*2 + 75*3 + 20*1) / 15 = (280 + 5 + 250 + 60 + 225 + 20) / 15 = 840 / 15 = 56
    assert float(table.loc[1, "weighted_tlx"]) == pytest.approx(56.0)
    assert float(table.loc[1, "raw_tlx"]) == pytest.approx(43.75)  # 262.5 / 6
    # A line without weights has a raw TLX only.
    assert pd_isna(table.loc[2, "weighted_tlx"]) and float(table.loc[2, "raw_tlx"]) == 50.0
    assert table.attrs["notes"] == ["1 decimal comma(s) read as decimal points",
                                    "NASA-TLX weights read as tallies: weighted TLX for 2 of 3 row(s)"]


def pd_isna(value) -> bool:
    return value is None or value is getattr(__import__("pandas"), "NA") or (isinstance(value, float)
                                                                             and math.isnan(value))


def test_pairwise_choices_named_or_numbered(tmp_path: Path) -> None:
    header = "participant,block,mental,physical,temporal,performance,effort,frustration," + ",".join(
        name for name, _ in PAIR_CHOICES)
    row = "P02,b-photo,80,20,60,40,70,30," + ",".join(choice for _, choice in PAIR_CHOICES)
    table = read_ratings_csv(write(tmp_path, "pairs.csv", f"{header}\n{row}\n".encode()), kind="nasa_tlx")
    # (80*5 + 20*0 + 60*3 + 40*2 + 70*4 + 30*1) / 15 = (400 + 0 + 180 + 80 + 280 + 30) / 15 = 970 / 15 = 64.667
    assert float(table.loc[0, "weighted_tlx"]) == pytest.approx(970 / 15)
    assert float(table.loc[0, "raw_tlx"]) == pytest.approx(50.0)  # 300 / 6
    assert table.attrs["notes"] == ["NASA-TLX weights read as 15 pairwise choices: weighted TLX for 1 of 1 row(s)"]
    # The same choices in numbered columns (paar_1 ... paar_15, TLX_PAIRS order) with Dutch names, Dutch Excel.
    dutch = {"mental": "Mentaal", "temporal": "Tijdsdruk", "performance": "Prestatie", "effort": "Moeite",
             "frustration": "Frustratie"}
    header = ";".join(["pp", "blok", "mentaal", "fysiek", "tijdsdruk", "prestatie", "moeite", "frustratie"]
                      + [f"Paar {i}" for i in range(1, 16)])
    row = ";".join(["P02", "b-photo", "80", "20", "60", "40", "70", "30"] + [dutch[c] for _, c in PAIR_CHOICES])
    table = read_ratings_csv(write(tmp_path, "paar.csv", ("\ufeff" + header + "\r\n" + row + "\r\n").encode()),
                             kind="nasa_tlx")
    assert float(table.loc[0, "weighted_tlx"]) == pytest.approx(970 / 15)


@pytest.mark.parametrize(("weights", "match"), [
    ("5;0;3;2;4;0", "sum to 14; they must sum to 15"),
    ("6;0;3;2;4;0", "weight of mental_demand is 6; a tally .* is 0-5"),
    ("5;5;5;0;0;0", r"no 15 pairwise choices give .*the 2 smallest sum to 0, less than the 1 comparison"),  # 0+0 < 2*1/2
    ("5;0;3;2,5;4;0,5", "weight of performance '2,5' is not a whole number"),
    ("5;0;3;2;4;", r"line 2: weight\(s\) of frustration empty"),
    ("5;0;drie;2;4;1", "weight of temporal_demand 'drie' is not a number"),
])
def test_impossible_weights_are_refused_with_the_line(tmp_path: Path, weights: str, match: str) -> None:
    data = f"{DUTCH_HEADER}\r\nP01;b-photo;55;10;40;25;50;15;{weights}\r\n".encode()
    with pytest.raises(RatingsImportError, match=match) as info:
        read_ratings_csv(write(tmp_path, "bad.csv", data), kind="nasa_tlx")
    assert "bad.csv" in str(info.value)


def test_incomplete_or_mixed_weight_columns_are_refused(tmp_path: Path) -> None:
    five = DUTCH_HEADER.rsplit(';', 1)[0]  # no frustration weight column
    with pytest.raises(RatingsImportError, match="weight columns for .* but none for frustration"):
        read_ratings_csv(write(tmp_path, "a.csv", f"{five}\r\nP01;b;1;1;1;1;1;1;5;0;3;3;4\r\n".encode()), "nasa_tlx")
    base = "pp,block,mental,physical,temporal,performance,effort,frustration,"
    fourteen = ",".join(name for name, _ in PAIR_CHOICES[:14])
    with pytest.raises(RatingsImportError, match="14 of the 15 NASA-TLX pairwise-choice columns; missing "
                                                 "effort vs frustration"):
        read_ratings_csv(write(tmp_path, "b.csv", f"{base}{fourteen}\n".encode()), "nasa_tlx")
    both = base + ",".join(name for name, _ in PAIR_CHOICES) + ",weight_mental"
    with pytest.raises(RatingsImportError, match="both weight tallies .* and pairwise choices"):
        read_ratings_csv(write(tmp_path, "c.csv", f"{both}\n".encode()), "nasa_tlx")
    header = base + ",".join(n for n, _ in PAIR_CHOICES)
    row = "P01,b,1,1,1,1,1,1," + ",".join(["effort"] + [c for _, c in PAIR_CHOICES[1:]])  # effort is not in pair 1
    with pytest.raises(RatingsImportError, match="line 2: choice 'effort' for the pair mental_demand vs "
                                                 "physical_demand names neither"):
        read_ratings_csv(write(tmp_path, "d.csv", f"{header}\n{row}\n".encode()), "nasa_tlx")


@pytest.mark.slow
def test_weighted_tlx_from_sheets_reaches_blocks_and_summary(tmp_path: Path) -> None:
    recordings = tmp_path / "rec"
    assert main(["simulate", "--participants", "4", "--scenario", str(REPO / "experiments/effects/scenario.toml"),
                 "--effects", str(REPO / "experiments/effects/example.toml"), "--seed", "2", "--calls-per-block", "2",
                 "--out", str(recordings)]) == 0
    # Audio block: every subscale 20, so weighted = raw = 20 whatever the weights. Photo block of participant p:
    # mental 50 + 10p, the other five 20, weights 5, 0, 3, 2, 4, 1: weighted = ((50 + 10p)*5 + 20*10) / 15
    # = 30 + 10p/3; raw = (50 + 10p + 100) / 6 = 25 + 10p/6.
    # P001, P002 on a Dutch Excel sheet with tallies; P003, P004 on a plain CSV with the 15 pairwise choices.
    dutch = [DUTCH_HEADER]
    for p in (1, 2):
        dutch.append(f"P00{p};audio-block;20;20;20;20;20;20;5;0;3;2;4;1")
        dutch.append(f"P00{p};photo-block;{50 + 10 * p},0;20;20;20;20;20;5;0;3;2;4;1")
    plain = ["participant,block,mental,physical,temporal,performance,effort,frustration,"
             + ",".join(name for name, _ in PAIR_CHOICES)]
    choices = ",".join(c for _, c in PAIR_CHOICES)
    for p in (3, 4):
        plain.append(f"P00{p},audio-block,20,20,20,20,20,20,{choices}")
        plain.append(f"P00{p},photo-block,{50 + 10 * p},20,20,20,20,20,{choices}")
    a = write(tmp_path, "tlx-nl.csv", ("\r\n".join(dutch) + "\r\n").encode("utf-8"))
    b = write(tmp_path, "tlx-pairs.csv", ("\n".join(plain) + "\n").encode("utf-8"))
    out = tmp_path / "out"
    assert main(["analyze", str(recordings), "--out", str(out), "--ratings", str(a), str(b), "--quiet"]) == 0
    with open(out / "blocks.csv", newline="", encoding="utf-8") as fh:
        blocks = {(r["participant"], r["block_id"]): r for r in csv.DictReader(fh) if r["source"] == "import"}
    assert float(blocks[("P001", "photo-block")]["weighted_tlx"]) == pytest.approx(30 + 10 / 3)  # 33.333
    assert float(blocks[("P004", "photo-block")]["weighted_tlx"]) == pytest.approx(30 + 40 / 3)  # 43.333
    assert float(blocks[("P004", "audio-block")]["weighted_tlx"]) == pytest.approx(20.0)
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        summary = {(r["measure"], r["level"], r["method"]): r for r in csv.DictReader(fh)}
    t = summary[("weighted_tlx", "photo", "paired_t")]
    # Paired differences photo - audio: 10 + 10p/3 = 13.333, 16.667, 20, 23.333 (p = 1..4). Mean 18.333;
    # sd = (10/3) * sd(1, 2, 3, 4) = (10/3) * sqrt(5/3) = 4.30331; se = 4.30331 / 2 = 2.15166;
    # t = 18.3333 / 2.15166 = 8.5206, df 3; 95% CI 18.3333 -+ 3.182446 * 2.15166 = 11.486 .. 25.181
    # (t(0.975, 3) = 3.182446 from tables).
    assert (t["n_participants"], t["n_obs"], t["unit"]) == ("4", "8", "NASA-TLX 0-100")
    assert float(t["estimate"]) == pytest.approx(18.3333, abs=1e-4)
    assert float(t["statistic"]) == pytest.approx(8.5206, abs=1e-4)
    assert (float(t["ci_low"]), float(t["ci_high"])) == (pytest.approx(11.486, abs=1e-3),
                                                         pytest.approx(25.181, abs=1e-3))
    # Raw TLX differences 5 + 5p/3: mean 5 + 5 * 2.5 / 3 = 9.1667.
    assert float(summary[("raw_tlx", "photo", "paired_t")]["estimate"]) == pytest.approx(9.1667, abs=1e-4)
    # Wilcoxon on 4 positive differences: W = 0 (no negative ranks), exact two-sided p = 2 / 2^4 = 0.125.
    w = summary[("weighted_tlx", "photo", "wilcoxon")]
    assert (float(w["statistic"]), float(w["p"])) == (0.0, pytest.approx(0.125))
