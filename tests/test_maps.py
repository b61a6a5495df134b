"""Maps: the projection and the kernel density (exact checks), where a report's position comes from, the SVGs, the
ingest endpoints, and a real headless Chromium that draws each map with no request leaving 127.0.0.1 (screenshots
in /tmp/map-shots/). Sessions are written with the real store code from real Montgomery County records."""

from __future__ import annotations

import asyncio
import math
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import aiohttp
import numpy as np
import pytest

from tests.conftest import CHROMIUM_BASE_ARGS, free_port
from workbench.domain import events as ev
from workbench.domain.session_state import replay
from workbench.maps import (
    EARTH_RADIUS_M,
    URGENCY_COLOURS,
    Projection,
    heat_map_svg,
    kernel_density,
    live_map_svg,
    report_locations,
)
from workbench.records.montco import load_montco
from workbench.records.to_scenario import busiest_window, records_to_scenario
from workbench.store.recordings import Recordings, SessionHeader
from workbench.store.scenarios import parse_scenario

SHOTS = Path("/tmp/map-shots")


def test_projection_is_metres_north_and_east() -> None:
    proj = Projection(40.0, -75.0)
    x, y = proj.to_xy(np.array([41.0, 40.0]), np.array([-75.0, -74.0]))
    one_degree = EARTH_RADIUS_M * math.pi / 180  # 111,195 m
    assert y[0] == pytest.approx(one_degree) and x[0] == pytest.approx(0.0)
    assert x[1] == pytest.approx(one_degree * math.cos(math.radians(40.0))) and y[1] == pytest.approx(0.0)


def test_kernel_density_integrates_to_the_number_of_points() -> None:
    grid = np.arange(-5000.0, 5000.0, 10.0)  # 10 m cells, +-5 km
    density = kernel_density(np.array([0.0, 300.0, -200.0]), np.array([0.0, 100.0, 50.0]), grid, grid, 250.0)
    assert density.shape == (1000, 1000)
    assert density.sum() * 100.0 == pytest.approx(3.0, rel=1e-6)  # cell area 100 m²
    peak = kernel_density(np.array([0.0]), np.array([0.0]), np.array([0.0]), np.array([0.0]), 250.0)[0, 0]
    assert peak == pytest.approx(1 / (2 * math.pi * 250.0**2))
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        kernel_density(np.array([0.0]), np.array([0.0]), grid, grid, 0.0)


SCENARIO = b"""
id = "mapdemo"
[[blocks]]
id = "b"
modality = "video"
calls = ["a", "b", "c"]

[[calls]]
id = "a"
arrival_s = 0
[calls.truth]
incident_type = "fire"
urgency = "spoed"
location = "Kerkstraat 12, Delft"
lat = 52.0116
lon = 4.3571

[[calls]]
id = "b"
arrival_s = 1
[calls.truth]
incident_type = "traffic_accident"
urgency = "nu"
lat = 52.0
lon = 4.37

[[calls]]
id = "c"
arrival_s = 2
[calls.truth]
incident_type = "other"
urgency = "later"
"""


def test_position_sources_in_order_geolocation_then_photo_gps_then_scenario() -> None:
    from workbench.store.eventlog import MemoryEventLog

    scenario = parse_scenario(SCENARIO, "mapdemo.toml", check_media=False)
    log = MemoryEventLog("s")
    for call_id, sc_id in (("k1", "a"), ("k2", "b"), ("k3", "c")):
        log.append("ingest", ev.CallCreated(sc_id, "b", "video", f"caller {sc_id}"), call_id=call_id)
    log.append("ingest", ev.MediaPhotoMetadata("p1", True, 52.02, 4.36, 3.0, ""), call_id="k1")
    log.append("caller", ev.CallerGeolocation(52.03, 4.35, 25.0, 900.0), call_id="k1")
    log.append("ingest", ev.MediaPhotoMetadata("p1", False, 0.0, 0.0, 0.0, ""), call_id="k2")
    log.append("ingest", ev.MediaPhotoMetadata("p1", True, 52.05, 4.40, 0.0, ""), call_id="k3")
    log.append("console", ev.CallAnswered("st1"), call_id="k2")
    log.append("console", ev.IntakeUrgency("spoed"), call_id="k2")
    got = {p.call_id: p for p in report_locations(log.events(), scenario)}
    assert (got["k1"].lat, got["k1"].lon, got["k1"].source, got["k1"].accuracy_m) == (52.03, 4.35, "caller_geolocation", 25.0)
    assert (got["k2"].lat, got["k2"].lon, got["k2"].source) == (52.0, 4.37, "scenario")  # no GPS in its photo
    # The dispatcher sees this map: urgency and address are the dispatcher's entries, never the ground truth.
    assert (got["k3"].lat, got["k3"].source, got["k3"].urgency) == (52.05, "photo_gps", "")
    assert got["k2"].urgency == "spoed" and got["k2"].status == "active"
    assert got["k1"].address == ""
    svg = live_map_svg(got.values())
    assert svg.count('class="report"') == 3
    # Colours: once in the legend each, plus the reports' points (k2 spoed; k1 and k3 grey, not classified yet;
    # k3's true urgency "later" is never drawn).
    assert svg.count(f'fill="{URGENCY_COLOURS["spoed"]}"') == 2
    assert svg.count(f'fill="{URGENCY_COLOURS[""]}"') >= 3
    assert svg.count(f'fill="{URGENCY_COLOURS["later"]}"') == 1
    assert "Kerkstraat" not in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing remote referenced
    assert live_map_svg([], title="x").count("No report locations yet") == 1
    assert heat_map_svg([]).count("No report locations") == 1


# --- sessions written with the real store code from real records ---------------------------------------------------


def record_session(root: Path, session_id: str, scenario_text: str, *, work: bool) -> None:
    """A session of every call of ``scenario_text`` (call.created in arrival order); with ``work``, the dispatcher
    answers and classifies the first few calls, closes some, and one caller shares a (real-looking) geolocation."""
    scenario = parse_scenario(scenario_text.encode(), "s.toml", check_media=False)
    header = SessionHeader(session_id, "P-map", scenario.id, scenario.sha256, ["records"], 0, "0.1.0",
                           "2026-01-01T00:00:00+00:00")
    folder = Recordings(root).create_session(header, scenario_bytes=scenario_text.encode())
    log = folder.event_log()
    log.append("ingest", ev.SessionStarted("P-map", scenario.id, scenario.sha256, 0, ["records"], "0.1.0"))
    for i, call in enumerate(scenario.calls):
        cid = f"c{i:03d}"
        log.append("ingest", ev.CallCreated(call.id, "records", "video", call.caller_label), call_id=cid)
        if not work or i >= 5:
            continue
        log.append("console", ev.CallAnswered("st1"), call_id=cid)
        log.append("console", ev.IntakeUrgency(call.truth.urgency.value), call_id=cid)
        if i == 1:  # the caller's phone puts them 300 m north of the recorded intersection, +-150 m
            log.append("caller", ev.CallerGeolocation(call.truth.lat + 0.0027, call.truth.lon, 150.0, 500.0),
                       call_id=cid)
        if i in (0, 2):
            log.append("console", ev.CallClosed(call.truth.incident_type, call.truth.urgency.value,
                                                call.truth.location, ["location"], False, "", ""), call_id=cid)
    folder.close()


@pytest.fixture(scope="module")
def recordings(real_data: Path, tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("maps") / "recordings"
    canonical = load_montco(real_data / "calls" / "montco_911_sample_5000.csv").records
    start, _ = busiest_window(canonical)
    record_session(root, "busy-hour", records_to_scenario(canonical, start, start + timedelta(hours=1)), work=True)
    reduced = load_montco(real_data / "calls" / "montco_911_reduced_noheader.csv").records
    start, count = busiest_window(reduced)
    assert count == 314  # 2018-11-15 12:33, the snow-storm afternoon
    record_session(root, "storm-hour", records_to_scenario(reduced, start, start + timedelta(hours=1)), work=False)
    return root, ["busy-hour", "storm-hour"]


def test_busy_hour_live_map_has_every_report_and_the_open_filter(recordings) -> None:
    root, _ = recordings
    from workbench.store.eventlog import read_events
    from workbench.maps import scenario_copy

    events, problems = read_events(root / "busy-hour" / "events.jsonl")
    assert not problems
    locations = report_locations(events, scenario_copy(root / "busy-hour"))
    assert len(locations) == 8
    assert sum(p.source == "caller_geolocation" for p in locations) == 1
    state = replay(events)
    assert {p.status for p in locations} == {c.status for c in state.calls.values()} == {"closed", "active", "waiting"}
    svg_all = live_map_svg(locations)
    svg_open = live_map_svg(locations, include_closed=False)
    assert svg_all.count('class="report"') == 8 and svg_open.count('class="report"') == 6
    assert "2 open" not in svg_all and "6 open / 8 reports" in svg_all


def run_ingest_and_browser(root: Path, body) -> None:
    from workbench.ingest.server import start_ingest
    from workbench.ingest.settings import IngestSettings

    async def main() -> None:
        handle = await start_ingest(IngestSettings(port=free_port(), recordings=root), Recordings(root))
        try:
            await body(handle.url)
        finally:
            await handle.stop()

    asyncio.run(main())


def test_ingest_serves_the_maps_as_svg(recordings) -> None:
    root, ids = recordings

    async def body(url: str) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/sessions/busy-hour/map.svg?open=1&width=800&height=600") as r:
                assert r.status == 200 and r.content_type == "image/svg+xml"
                text = await r.text()
                assert 'width="800" height="600"' in text and text.count('class="report"') == 6
            async with http.get(f"{url}/api/map/heat.svg?sessions={','.join(ids)}") as r:
                assert r.status == 200 and "322 reports" in await r.text()
            async with http.get(f"{url}/api/sessions/busy-hour/map.svg?width=huge") as r:
                assert r.status == 400 and "width" in (await r.json())["error"]
            async with http.get(f"{url}/api/sessions/nope/map.svg") as r:
                assert r.status == 404

    run_ingest_and_browser(root, body)


@pytest.mark.browser
def test_maps_render_in_chromium_with_nothing_remote(recordings, chromium_path: str) -> None:
    from playwright.async_api import async_playwright

    root, ids = recordings
    SHOTS.mkdir(parents=True, exist_ok=True)
    foreign: list[str] = []

    async def body(url: str) -> None:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_BASE_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1320, "height": 520})

                async def guard(route) -> None:
                    host = urlparse(route.request.url).hostname
                    if route.request.url.startswith(("about:", "data:")) or host == "127.0.0.1":
                        await route.continue_()
                    else:
                        foreign.append(route.request.url)
                        await route.abort()

                await page.route("**/*", guard)
                # The console's embed (see the report): plain <img> elements pointing at the ingest.
                await page.goto(f"{url}/healthz")
                await page.set_content(
                    f'<body style="margin:0;display:flex;gap:8px">'
                    f'<img id="live" src="{url}/api/sessions/busy-hour/map.svg?width=640&height=480">'
                    f'<img id="heat" src="{url}/api/map/heat.svg?sessions={",".join(ids)}&width=640&height=480">'
                    f"</body>"
                )
                await page.wait_for_function(
                    "['live','heat'].every(id => { const i = document.getElementById(id); "
                    "return i.complete && i.naturalWidth === 640; })"
                )
                await page.locator("#live").screenshot(path=str(SHOTS / "live-map.png"))
                await page.locator("#heat").screenshot(path=str(SHOTS / "heat-map.png"))
                await page.goto(f"{url}/api/sessions/busy-hour/map.svg?open=1&width=640&height=480")
                await page.screenshot(path=str(SHOTS / "live-map-open.png"))
                assert await page.locator("g.report").count() == 6
            finally:
                await browser.close()

    run_ingest_and_browser(root, body)
    assert foreign == [], f"requests left 127.0.0.1: {foreign}"
    for name in ("live-map.png", "heat-map.png", "live-map-open.png"):
        assert (SHOTS / name).stat().st_size > 5000


def test_heat_map_straight_from_the_recordings_folder(recordings, tmp_path: Path) -> None:
    from workbench.maps import recordings_heat_map_svg

    root, _ = recordings
    svg, count = recordings_heat_map_svg(root)
    assert count == 2 and "322 reports" in svg and 'width="960"' in svg
    svg, count = recordings_heat_map_svg(root / "busy-hour", width=400, height=300)
    assert count == 1 and "8 reports" in svg
    with pytest.raises(FileNotFoundError, match="no sessions"):
        recordings_heat_map_svg(tmp_path)
