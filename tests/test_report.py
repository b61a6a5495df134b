"""`workbench analyze` end to end on simulated participants plus a damaged session and a ratings sheet: the files,
the report's content, and the report as headless Chromium renders it."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tests.test_analysis import record_torn_session
from workbench.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    recordings = root / "rec"
    assert main(["simulate", "--participants", "6", "--scenario", str(REPO / "experiments/effects/scenario.toml"),
                 "--effects", str(REPO / "experiments/effects/example.toml"), "--seed", "3",
                 "--out", str(recordings)]) == 0
    record_torn_session(recordings)  # P02: one closed call without an RSME, torn last line, never ended
    sheet = root / "rsme.csv"
    sheet.write_bytes('\ufeff"Deelnemer";"Melding";"RSME"\r\nP02;v-crash;42,5\r\nP99;v-crash;10\r\n'.encode())
    # NASA-TLX typed in from paper: every subscale equal, so raw TLX = that value. Audio 40, photo 50 + p,
    # video 45 for participant p = 1..6: photo - audio differences 11..16, mean 13.5 (hand-computed).
    lines = ["Participant;Blok;Mentaal;Fysiek;Tijdsdruk;Prestatie;Moeite;Frustratie"]
    for p in range(1, 7):
        for block, value in (("audio-block", 40), ("photo-block", 50 + p), ("video-block", 45)):
            lines.append(f"P{p:03d};{block};" + ";".join([f"{value},0"] * 6))
    lines.append("P77;audio-block;1;1;1;1;1;1")
    tlx = root / "tlx.csv"
    tlx.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    assert main(["analyze", str(recordings), "--out", str(root / "out"), "--ratings", str(sheet), str(tlx),
                 "--quiet"]) == 0
    return root / "out"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_outputs_and_ratings_merge(analysed: Path) -> None:
    for name in ("trials", "sessions", "events", "summary", "confusion", "data_quality", "ratings_rsme", "blocks",
                 "ratings_nasa_tlx"):
        assert (analysed / f"{name}.csv").is_file() and (analysed / f"{name}.parquet").is_file(), name
    for plot in ("rsme_modality", "handling_time_s_modality", "completeness_congruence"):
        assert (analysed / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (analysed / "plots" / f"{plot}.svg").read_bytes()[:400]
    torn = [r for r in read_csv(analysed / "trials.csv") if r["participant"] == "P02"]
    assert [(r["rsme"], r["rsme_source"]) for r in torn] == [("42.5", "import")]
    quality = read_csv(analysed / "data_quality.csv")
    problems = [(q["record"], q["handling"], q["problem"]) for q in quality]
    sheet = analysed.parent / "rsme.csv"
    assert ("rating", "repaired", f"{sheet}: 1 decimal comma(s) read as decimal points") in problems
    # The torn session's call was closed without a rating; the sheet supplied it, so it is not reported missing.
    assert [q["problem"] for q in quality if q["session_id"] == "s2" and q["call_id"] == "k1"] == [
        f"RSME 42.5 taken from {analysed.parent / 'rsme.csv'} line 2"]
    assert any(p[1] == "repaired" and p[2].startswith("RSME 42.5 taken from") for p in problems)
    assert any(p[1] == "excluded" and "P99/v-crash matches no call" in p[2] for p in problems)
    assert ("session", "excluded", "events.jsonl line 6: torn last line (the writer stopped mid-line)") in problems
    assert any(p[1] == "excluded" and "NASA-TLX of P77/audio-block matches no recorded block" in p[2]
               for p in problems)


def test_imported_nasa_tlx_gives_blocks_and_summary_rows(analysed: Path) -> None:
    blocks = read_csv(analysed / "blocks.csv")
    assert len(blocks) == 19
    first = blocks[0]
    assert (first["participant"], first["block_id"], first["modality"], first["raw_tlx"], first["source"]) == (
        "P001", "audio-block", "audio", "40.0", "import")
    summary = [r for r in read_csv(analysed / "summary.csv") if r["measure"] == "raw_tlx"]
    assert [(r["level"], r["method"]) for r in summary] == [
        ("photo", "paired_t"), ("photo", "wilcoxon"), ("photo", "mixedlm"),
        ("video", "paired_t"), ("video", "wilcoxon"), ("video", "mixedlm")]
    photo = summary[0]
    assert (photo["n_participants"], photo["n_obs"], photo["unit"]) == ("6", "12", "NASA-TLX 0-100")
    assert float(photo["estimate"]) == pytest.approx(13.5)  # mean of 11..16
    assert float(summary[3]["estimate"]) == pytest.approx(5.0)  # video 45 - audio 40 for everyone
    assert "all paired differences are equal" in summary[3]["note"]


def test_report_is_self_contained_and_says_what_was_computed(analysed: Path) -> None:
    page = (analysed / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "report must not load anything remote"
    assert "<link" not in page and "<script" not in page
    assert page.count("data:image/png;base64,") >= 8
    # Methods generated from what was computed, with n.
    assert "7 session(s) of 7 participant(s) were read" in page
    assert "<code>paired_t</code>" in page and "n = 6 participants" in page
    assert "Holm-corrected (Holm, 1979) across the primary outcomes (rsme, handling_time_s, completeness)" in page
    assert "Hautus, 1995" in page and "noncentral t" in page
    # Data quality lists the damaged session and the repaired rating.
    assert "torn last line" in page and "RSME 42.5 taken from" in page and "P99/v-crash matches no call" in page


@pytest.mark.browser
def test_report_renders_in_chromium(analysed: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto((analysed / "report.html").as_uri())
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            headings = page.evaluate("[...document.querySelectorAll('h2')].map(h => h.textContent)")
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert images and all(done and width > 100 for done, width in images)
    assert overflow <= 0, "a table is wider than the page"
    assert headings == ["Methods", "Results", "Data quality", "References"]
    assert (tmp_path / "report.png").stat().st_size > 50_000
