"""Issue 7, scenario library: listing with validation errors, the per-call preview, and a new scenario from
uploaded media (the real fire clip and a real phone photo) that validates, plays its media paths, and never
overwrites an existing scenario."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from workbench.store.scenario_library import (
    LibraryError,
    NewScenario,
    Upload,
    add_scenario,
    list_library,
    parse_lines,
    preview,
)
from workbench.store.scenarios import load_scenario


def _library(tmp_path: Path) -> Path:
    lib = tmp_path / "experiments"
    shutil.copytree(REPO / "experiments", lib)
    broken = lib / "broken"
    broken.mkdir()
    text = (REPO / "experiments" / "demo" / "scenario.toml").read_text(encoding="utf-8")
    (broken / "scenario.toml").write_text(
        text.replace('urgency = "spoed"', 'urgency = "asap"').replace('id = "demo"', 'id = "broken"'),
        encoding="utf-8")
    (lib / "syntax.toml").write_text("id = 'x'\n[[calls]\n", encoding="utf-8")
    return lib


def test_library_lists_valid_and_invalid_scenarios_with_their_errors(tmp_path: Path) -> None:
    entries = {e.relpath: e for e in list_library(_library(tmp_path))}
    # experiments/effects/example.toml is an effects file, not a scenario: not listed.
    assert set(entries) == {"broken/scenario.toml", "demo/scenario.toml", "effects/scenario.toml", "syntax.toml",
                            "multi-caller/scenario.toml", "multi-caller/advice-study.toml"}
    assert entries["multi-caller/scenario.toml"].ok and entries["multi-caller/advice-study.toml"].ok
    assert entries["demo/scenario.toml"].ok and entries["demo/scenario.toml"].scenario.id == "demo"
    broken = entries["broken/scenario.toml"]
    assert not broken.ok
    assert any("calls.0.truth.urgency" in line and "spoed" in line for line in broken.errors), broken.errors
    assert not entries["syntax.toml"].ok and entries["syntax.toml"].errors
    with pytest.raises(LibraryError, match="not a folder"):
        list_library(tmp_path / "missing")


def test_preview_shows_timeline_media_and_ground_truth() -> None:
    calls = preview(load_scenario(REPO / "experiments" / "demo" / "scenario.toml"))
    assert [c.call_id for c in calls] == ["house-fire", "collision"]
    fire = calls[0]
    assert (fire.block_id, fire.modality, fire.arrival_s) == ("live-video", "video", 0)
    assert [(t.at_s, t.kind) for t in fire.timeline] == [
        (0, "speech"), (0, "video"), (3, "photo"), (4, "speech"), (8, "speech"), (12, "speech")]
    assert "photo 1 at 3 s: builtin:demo_fire_photo" in fire.media
    assert fire.truth["urgency"] == "spoed"
    assert fire.truth["speech vs image"] == "Fire or smoke size: DISAGREE, Location: agree"
    assert fire.truth["coordinates"] == "52.01190, 4.35860"


def test_parse_lines_times_and_order() -> None:
    assert parse_lines(["Hello", "", "7: second", "third"]) == [(0, "Hello"), (7, "second"), (12, "third")]
    with pytest.raises(LibraryError, match="before the previous line"):
        parse_lines(["10: a", "5: b"])


def _new(real_data: Path, **changes) -> NewScenario:
    fields = dict(
        scenario_id="outdoor-fire",
        title="Outdoor fire filmed by a passer-by",
        modality="video",
        caller_label="06-1111 2222",
        lines=("There is a fire next to the road!", "6: Only a small one, I think."),
        incident_type="fire",
        urgency="spoed",
        location="Rijksweg 4, Delft",
        required_items=("location", "fire_size"),
        congruence={"fire_smoke_size": False},
        video=Upload("firedetection test1.mp4",
                     (real_data / "video" / "firedetection_test1_outdoor_fire.mp4").read_bytes()),
        photos=(Upload("IMG_0001.jpg", (real_data / "photos" / "jpeg_phone_jolla.jpg").read_bytes()),),
        photo_times_s=(4.0,),
        lat=52.0,
        lon=4.36,
    )
    fields.update(changes)
    return NewScenario(**fields)


def test_add_scenario_from_uploaded_media(tmp_path: Path, real_data: Path) -> None:
    lib = _library(tmp_path)
    path = add_scenario(lib, _new(real_data))
    assert path == lib / "outdoor-fire" / "scenario.toml"
    scenario = load_scenario(path)
    call = scenario.calls[0]
    assert Path(call.media.video).read_bytes() == (real_data / "video" / "firedetection_test1_outdoor_fire.mp4").read_bytes()
    assert Path(call.media.video).name == "firedetection-test1.mp4"
    assert [(Path(p.file).name, p.at_s) for p in call.media.photos] == [("photo-1-IMG_0001.jpg", 4.0)]
    assert [(u.at_s, u.text) for u in call.utterances] == [
        (0, "There is a fire next to the road!"), (6, "Only a small one, I think.")]
    assert call.truth.congruence == {"fire_smoke_size": False}
    assert (call.truth.lat, call.truth.lon) == (52.0, 4.36)
    assert "outdoor-fire/scenario.toml" in {e.relpath for e in list_library(lib) if e.ok}
    # Never overwritten: same id again is refused and the first scenario is unchanged.
    before = path.read_bytes()
    with pytest.raises(LibraryError, match="is taken"):
        add_scenario(lib, _new(real_data, title="other"))
    assert path.read_bytes() == before
    assert not [p for p in lib.iterdir() if p.name.startswith(".new-")]


def test_add_scenario_refuses_bad_input_and_writes_nothing(tmp_path: Path, real_data: Path) -> None:
    lib = _library(tmp_path)
    before = sorted(p.relative_to(lib) for p in lib.rglob("*"))
    with pytest.raises(LibraryError) as info:
        add_scenario(lib, _new(
            real_data, scenario_id="has space", incident_type="flood",
            photos=(Upload("broken.jpg", (real_data / "photos" / "jpeg_truncated_progressive.jpg").read_bytes()),
                    Upload("notes.txt", b"hello")),
            video=Upload("clip.mp4", b"not a video")))
    message = str(info.value)
    assert "scenario id 'has space'" in message
    assert "incident type 'flood'" in message
    assert "photo 'notes.txt': expected a file ending in" in message
    assert "video 'clip.mp4': cannot be read as a video" in message
    with pytest.raises(LibraryError, match="a video block needs a video"):
        add_scenario(lib, _new(real_data, scenario_id="novideo", video=None))
    assert sorted(p.relative_to(lib) for p in lib.rglob("*")) == before


@pytest.mark.slow
@pytest.mark.webrtc
def test_a_scenario_made_from_uploads_plays_its_real_video_and_photo(tmp_path: Path, real_data: Path) -> None:
    """The added scenario is not only valid: ``workbench run`` streams the uploaded clip (352x288) and sends the
    uploaded photo (2048x1536), and the session verifies."""
    import json
    import subprocess
    import sys

    from tests.conftest import free_port

    path = add_scenario(tmp_path / "lib", _new(real_data, voice="en"))
    recordings = tmp_path / "rec"
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "run", str(path), "--no-console", "--port", str(free_port()),
         "--recordings", str(recordings), "--duration", "15", "--no-nasa-tlx"],
        capture_output=True, text=True, timeout=240)
    assert "verify: OK" in proc.stdout, proc.stdout + proc.stderr
    [session] = [p for p in recordings.iterdir() if (p / "events.jsonl").exists()]
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    frames = [e["data"] for e in events if e["type"] == "media.first_frame" and e["data"]["kind"] == "video"]
    assert [(f["width"], f["height"]) for f in frames] == [(352, 288)]
    photos = [e["data"] for e in events if e["type"] == "media.photo_received"]
    assert [(p["width"], p["height"]) for p in photos] == [(2048, 1536)]
