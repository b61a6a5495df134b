"""The maps at the dispatcher sidebar's width (320 px): title, count and legend drawn by a real Chromium, their
boxes measured with getBBox() and required not to overlap each other or leave the map (issue 10's last map bug:
the title ran into the legend). Screenshots in /tmp/map-shots/ (live-map-320.png, heat-map-320.png)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM_BASE_ARGS
from workbench.maps import ReportLocation, heat_map_svg, live_map_svg

SHOTS = Path("/tmp/map-shots")
TITLE = "Reports of session s-20261129-132455-8f3a2c"  # as long as the ingest's own titles

POINTS = [
    ReportLocation("k1", 52.0121, 4.3590, "scenario", 0.0, "spoed", "active", "06-1234 5678", "Kerkstraat 12"),
    ReportLocation("k2", 52.0101, 4.3712, "scenario", 0.0, "nu", "closed", "06-8765 4321", "Oostweg"),
    ReportLocation("k3", 51.9975, 4.3740, "caller_geolocation", 40.0, "", "waiting", "06-4444 5555", "Schoemakerstr."),
]

MEASURE = """() => {
  const svg = document.querySelector('svg');
  const boxes = [...svg.querySelectorAll('.map-title, .map-count, .legend text, .legend circle, .legend rect')]
    .map(el => { const b = el.getBBox(); return {cls: el.getAttribute('class') || el.tagName, text: el.textContent,
                                                 x: b.x, y: b.y, w: b.width, h: b.height}; });
  return {width: svg.width.baseVal.value, boxes};
}"""


def _overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["live", "heat"])
def test_header_and_legend_do_not_overlap_at_320_px(kind: str, chromium_path: str) -> None:
    from playwright.async_api import async_playwright

    svg = (live_map_svg(POINTS, width=320, height=300, title=TITLE) if kind == "live"
           else heat_map_svg(POINTS, width=320, height=300, title="Report density, 12 session(s) of the study"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    foreign: list[str] = []

    async def main() -> dict:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_BASE_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 320, "height": 300})

                async def guard(route) -> None:
                    if route.request.url.startswith(("about:", "data:")):
                        await route.continue_()
                    else:
                        foreign.append(route.request.url)
                        await route.abort()

                await page.route("**/*", guard)
                await page.set_content(f'<body style="margin:0">{svg}</body>')
                await page.screenshot(path=str(SHOTS / f"{kind}-map-320.png"))
                return await page.evaluate(MEASURE)
            finally:
                await browser.close()

    measured = asyncio.run(asyncio.wait_for(main(), 60))
    assert not foreign
    boxes = measured["boxes"]
    title = next(b for b in boxes if b["cls"] == "map-title")
    assert title["text"].endswith("\u2026")  # shortened to fit; the full title is the SVG's tooltip
    texts = [b for b in boxes if b["cls"] != "map-title"]
    for b in boxes:
        assert b["x"] >= 0 and b["x"] + b["w"] <= 320, f"{b} leaves the 320 px map"
    for b in texts:
        if b["cls"] != "rect":  # the heat legend's colour ramp sits inside its own white box
            assert not _overlaps(title, b), f"the title overlaps {b}"
    labels = [b for b in boxes if b["cls"] in ("text", "map-count")]
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert not _overlaps(a, b), f"{a} overlaps {b}"
