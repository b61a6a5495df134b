"""Real Montgomery County 911 records: both real files, the refusal of what cannot be read, and the scenario made
from a real busy hour (loaded, and replayed through a real ingest)."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from workbench.cli import main as cli_main
from workbench.domain.taxonomy import INCIDENT_TYPES, Urgency
from workbench.records.montco import (
    CANONICAL_HEADER,
    MUNICIPALITIES,
    CallRecord,
    MontcoFormatError,
    load_montco,
)
from workbench.records.to_scenario import (
    SUBTYPE_MAP,
    RecordsWindowError,
    busiest_window,
    caller_line,
    map_record,
    records_to_scenario,
    select_window,
)
from workbench.store.scenarios import load_scenario, parse_scenario

CANONICAL = "montco_911_sample_5000.csv"
REDUCED = "montco_911_reduced_noheader.csv"


@pytest.fixture(scope="module")
def calls_dir(real_data: Path) -> Path:
    return real_data / "calls"


@pytest.fixture(scope="module")
def canonical(calls_dir: Path):
    return load_montco(calls_dir / CANONICAL)


@pytest.fixture(scope="module")
def reduced(calls_dir: Path):
    return load_montco(calls_dir / REDUCED)


def test_canonical_file_row_count_and_types(canonical) -> None:
    assert canonical.layout == "canonical"
    assert len(canonical.records) == 5000
    first = canonical.records[0]
    # The first data row of the real file, line 2 (line 1 is the header).
    assert first == CallRecord(
        lat=40.143927,
        lon=-75.1400212,
        timestamp=datetime(2016, 4, 6, 13, 37, 1),
        category="Fire",
        subtype="GAS-ODOR/LEAK",
        township="UPPER DUBLIN",
        address="ALBA RD & NORTH HILLS AVE",
        zip="19090",
        desc="ALBA RD & NORTH HILLS AVE; UPPER DUBLIN; 2016-04-06 @ 13:32:46-Station:STA88;",
        line=2,
    )
    cats = {c: sum(r.category == c for r in canonical.records) for c in ("EMS", "Traffic", "Fire")}
    assert cats == {"EMS": 2436, "Traffic": 1830, "Fire": 734}  # SOURCES.md
    assert sum(r.zip == "" for r in canonical.records) == 655  # SOURCES.md: empty zip kept as ""
    assert all(isinstance(r.lat, float) and isinstance(r.lon, float) for r in canonical.records)
    times = [r.timestamp for r in canonical.records]
    assert min(times) == datetime(2015, 12, 10, 19, 12, 1) and max(times) == datetime(2016, 8, 24, 9, 16, 48)
    assert not any(r.subtype.endswith("-") for r in canonical.records)  # Traffic's trailing " -" is dropped
    assert canonical.records[-1].line == 5001


def test_header_less_variant_is_mapped_explicitly(reduced) -> None:
    assert reduced.layout == "reduced6"
    assert len(reduced.records) == 3051
    assert reduced.records[0] == CallRecord(
        lat=40.0883549, lon=-75.3821004, timestamp=datetime(2016, 1, 15, 12, 1), category="EMS",
        subtype="ABDOMINAL PAINS", township="UPPER MERION", address="DEKALB PIKE & ALLENDALE RD", zip="", desc="",
        line=1,
    )
    last = reduced.records[-1]
    assert (last.line, last.timestamp, last.title) == (3051, datetime(2018, 11, 15, 14, 56), "EMS: HEAD INJURY")
    assert all(r.timestamp.second == 0 for r in reduced.records)
    assert all(r.township in MUNICIPALITIES for r in reduced.records)
    assert not any(r.address in MUNICIPALITIES for r in reduced.records)  # why twp/addr cannot be confused


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "records.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_header_less_row_with_swapped_free_text_is_refused_not_guessed(tmp_path: Path) -> None:
    path = write(tmp_path, "40.08,-75.38,EMS: FALL VICTIM,2016-01-15 12:01,UPPER MERION,MAIN ST\n"
                           "40.08,-75.38,EMS: FALL VICTIM,2016-01-15 12:02,MAIN ST,UPPER MERION\n")
    with pytest.raises(MontcoFormatError) as exc:
        load_montco(path)
    assert f"{path}: line 2, column 'twp': 'MAIN ST' is not a known municipality" in str(exc.value)


def test_header_less_row_with_swapped_coordinates_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "-75.38,40.08,EMS: FALL VICTIM,2016-01-15 12:01,UPPER MERION,MAIN ST\n")
    with pytest.raises(MontcoFormatError, match=r"line 1, column 'lat': .* outside the county area"):
        load_montco(path)


def test_header_less_nine_columns_and_other_headers_are_refused(tmp_path: Path, calls_dir: Path) -> None:
    body = (calls_dir / CANONICAL).read_text(encoding="utf-8").splitlines()
    path = write(tmp_path, "\n".join(body[1:4]) + "\n")  # the canonical rows without their header
    with pytest.raises(MontcoFormatError, match=r"line 1: 9 columns and no header; expected the header"):
        load_montco(path)
    path = write(tmp_path, "lat,lng,title,timeStamp,twp,addr\n" + "\n".join(body[1:3]))
    with pytest.raises(MontcoFormatError, match=r"line 1: a header row .* that is not the canonical one"):
        load_montco(path)


def test_canonical_errors_name_file_line_and_column(tmp_path: Path) -> None:
    header = ",".join(CANONICAL_HEADER)
    good = "40.1,-75.1,X,19090.0,Fire: FIRE ALARM,2016-04-06 13:37:01,AMBLER,MAIN ST,1"
    rows = [
        good,
        "north,-75.1,X,19090.0,Fire: FIRE ALARM,2016-04-06 13:37:01,AMBLER,MAIN ST,1",
        "40.1,-75.1,X,1909,Police: THEFT,2016-04-06 13:37,AMBLER,MAIN ST,1",
        "40.1,-75.1,X,,Fire: FIRE ALARM,2016-04-06 13:37:01,AMBLER",
    ]
    path = write(tmp_path, header + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(MontcoFormatError) as exc:
        load_montco(path)
    lines = str(exc.value).splitlines()
    assert lines == [
        f"{path}: line 3, column 'lat': 'north' is not a number (degrees WGS84)",
        f"{path}: line 4, column 'title': 'Police: THEFT' is not 'Category: SUBTYPE' with a category in EMS, Fire, "
        "Traffic",
        f"{path}: line 4, column 'timeStamp': '2016-04-06 13:37'; expected YYYY-MM-DD HH:MM:SS",
        f"{path}: line 4, column 'zip': '1909' is not a 5-digit ZIP code (optionally written as a float, 19090.0)",
        f"{path}: line 5: 7 columns; expected 9 (lat,lng,desc,zip,title,timeStamp,twp,addr,e)",
    ]


def test_every_real_subtype_maps_to_a_known_type(canonical, reduced) -> None:
    for record in canonical.records + reduced.records:
        mapping = map_record(record)
        assert mapping.incident_type in INCIDENT_TYPES
        assert isinstance(mapping.urgency, Urgency)
    assert not {r.subtype for r in canonical.records} - set(SUBTYPE_MAP)  # all explicit, no fallbacks needed
    crash = next(r for r in canonical.records if r.title == "Traffic: VEHICLE ACCIDENT")
    assert map_record(crash).incident_type == "traffic_accident"
    assert caller_line(crash).startswith("There's a vehicle accident at ")
    assert caller_line(crash).endswith(f" in {crash.township.title()}.")


def test_busiest_hour_becomes_a_scenario_that_loads(canonical, tmp_path: Path) -> None:
    start, count = busiest_window(canonical.records)
    assert (start, count) == (datetime(2015, 12, 14, 17, 37), 8)
    text = records_to_scenario(canonical.records, start, start + timedelta(hours=1), source_name=CANONICAL)
    path = tmp_path / "busy.toml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    chosen = select_window(canonical.records, start, start + timedelta(hours=1))
    assert [c.id for c in scenario.calls] == [f"L{r.line}" for r in chosen]
    assert [c.arrival_s for c in scenario.calls] == [(r.timestamp - start).total_seconds() for r in chosen]
    assert scenario.calls[0].arrival_s == 0.0 and scenario.calls[-1].arrival_s < 3600
    for call, record in zip(scenario.calls, chosen):
        assert (call.truth.lat, call.truth.lon) == (record.lat, record.lon)
        assert call.truth.location.endswith(record.township)
        assert call.truth.incident_type == map_record(record).incident_type
        assert call.truth.urgency == map_record(record).urgency
        assert call.utterances[0].text == caller_line(record)
        assert call.media.video.startswith("builtin:")
    raw = tomllib.loads(text)
    assert raw["blocks"] == [{"id": "records", "modality": "video", "calls": [c.id for c in scenario.calls]}]


def test_window_errors_and_aware_bounds(canonical) -> None:
    start = datetime(2015, 12, 14, 17, 37)
    with pytest.raises(RecordsWindowError, match="ends .* before it starts"):
        records_to_scenario(canonical.records, start, start)
    with pytest.raises(RecordsWindowError, match="no records between"):
        records_to_scenario(canonical.records, datetime(2030, 1, 1), datetime(2030, 1, 2))
    aware = datetime(2015, 12, 14, 22, 37, tzinfo=timezone.utc)  # 17:37 EST
    assert select_window(canonical.records, aware, aware + timedelta(hours=1)) == select_window(
        canonical.records, start, start + timedelta(hours=1)
    )


def test_cli_writes_a_loadable_scenario_and_refuses_a_bad_file(calls_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.toml"
    code = cli_main(["scenario-from-records", str(calls_dir / REDUCED), "--start", "2016-01-15T12:00",
                     "--end", "2016-01-15T13:00", "--out", str(out), "--modality", "audio", "--time-scale", "0.5"])
    assert code == 0
    scenario = load_scenario(out)
    assert scenario.blocks[0].modality.value == "audio"
    assert all(c.arrival_s <= 1800 for c in scenario.calls) and len(scenario.calls) >= 2
    bad = write(tmp_path, "a,b,c\n")
    assert cli_main(["scenario-from-records", str(bad), "--start", "2016-01-15T12:00", "--end",
                     "2016-01-15T13:00", "--out", str(tmp_path / "x.toml")]) == 2
    assert "3 columns and no header" in capsys.readouterr().err
    assert not (tmp_path / "x.toml").exists()


@pytest.mark.slow
def test_busiest_hour_replays_through_a_real_ingest(canonical, tmp_path: Path) -> None:
    """The real busiest hour, compressed 1000x, played by the real ScenarioPlayer against a real ingest: every
    record arrives as a call, in order, with the real spacing (audio modality: no media processes needed)."""
    from workbench.ingest.server import start_ingest
    from workbench.ingest.settings import IngestSettings
    from workbench.runner.player import IngestApi, ScenarioPlayer
    from workbench.store.recordings import Recordings

    start, _ = busiest_window(canonical.records)
    text = records_to_scenario(canonical.records, start, start + timedelta(hours=1), modality="audio",
                               time_scale=0.001)
    scenario = parse_scenario(text.encode(), "busy.toml")
    root = tmp_path / "recordings"

    async def main() -> tuple[str, list]:
        settings = IngestSettings(port=free_port(), recordings=root)
        handle = await start_ingest(settings, Recordings(root))
        try:
            async with aiohttp.ClientSession() as http:
                api = IngestApi(handle.url, http)
                player = ScenarioPlayer(api, scenario, text.encode(), participant="P-replay",
                                        media_cache=tmp_path / "cache", poll_s=0.05)
                stop = asyncio.Event()
                asyncio.get_running_loop().call_later(scenario.calls[-1].arrival_s + 1.5, stop.set)
                report = await player.run(stop)
                return report.session_id, await api.events(report.session_id)
        finally:
            await handle.stop()

    session_id, events = asyncio.run(main())
    created = [e for e in events if e.type == "call.created"]
    assert [e.data.scenario_call_id for e in created] == [c.id for c in scenario.calls]
    t0 = created[0].t_mono_ns
    for event, call in zip(created, scenario.calls):
        assert abs((event.t_mono_ns - t0) / 1e9 - call.arrival_s) < 0.3
    assert (root / session_id / "scenario.toml").read_text(encoding="utf-8") == text
