"""The screening on the real clips and stills in ../shared/data/real (nobody here made them).

The thresholds in workbench.screening.image were fixed (commit e5a2ef5) on the demo media and synthetic frames
BEFORE this file first ran; they were not changed after seeing these results. Run with ``-s`` to see the table.
Skips when the shared data is missing (``real_data`` fixture in conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from workbench.screening import image as im

FIRE_CLIP = "video/firedetection_test1_outdoor_fire.mp4"
NIGHT_CLIP = "video/firedetection_test7_night_street_negative.mp4"
STILLS = ("still_test1_outdoor_fire_smoke_f000.jpg", "still_test1_outdoor_fire_smoke_f090.jpg",
          "still_test1_outdoor_fire_smoke_f180.jpg", "still_test1_outdoor_fire_smoke_f250.jpg",
          "still_test5_brush_fire_f030.jpg", "still_test5_brush_fire_f300.jpg",
          "still_test7_night_city_lights_negative_f300.jpg")


def row(name: str, c: im.ClipFacts) -> str:
    mf = [f.moving_fire_share for f in c.frames if f.moving_fire_share is not None]
    fs = max(mf) if mf else max(f.fire_share for f in c.frames)
    return (f"{name:50s} n={c.fire.n:3d}  fire {c.fire.value:.2f} [{c.fire.low:.2f}, {c.fire.high:.2f}]  "
            f"smoke {c.smoke.value:.2f} [{c.smoke.low:.2f}, {c.smoke.high:.2f}]  size {c.fire_smoke_size:5s}  "
            f"max fire share {fs:.4f}  people {c.people}  dark {c.dark.value:.2f}  blurred {c.blurred.value:.2f}")


@pytest.fixture(scope="module")
def clips(real_data: Path) -> dict[str, im.ClipFacts]:
    return {name: im.analyse_video(real_data / name, max_fps=3.0, people_every=6) for name in (FIRE_CLIP, NIGHT_CLIP)}


def test_real_clips_scores_with_cis(clips: dict[str, im.ClipFacts]) -> None:
    print("\nreal clips (3 fps, Wilson 95 % CI of the share of fire / smoke frames):")
    for name, clip in clips.items():
        print(row(name, clip))
    fire, night = clips[FIRE_CLIP], clips[NIGHT_CLIP]
    # 25.8 s at 10 fps sampled at <= 3 fps keeps every 4th frame (65, minus the motion reference); 22.1 s at 24 fps
    # keeps every 8th (67, minus one)
    assert (fire.fire.n, night.fire.n) == (64, 66)
    # what does separate the two clips: moving grey smoke (the plume) and darkness
    assert fire.smoke.low > night.smoke.high
    assert night.dark.value == 1.0 and fire.dark.value == 0.0


@pytest.mark.xfail(strict=True, reason=(
    "measured with the thresholds fixed on the demo media (commit e5a2ef5): the night street's moving warm lights "
    "(car lights, the flashing sign) give MORE fire frames (0.33 [0.23, 0.45]) than the real fire (0.20 [0.12, "
    "0.32]), whose flame is small in the frame; not retuned on the real clips, see docs/screening.md"))
def test_real_clips_fire_score_of_the_fire_clip_is_above_the_night_street(clips: dict[str, im.ClipFacts]) -> None:
    assert clips[FIRE_CLIP].fire.low > clips[NIGHT_CLIP].fire.high


def test_real_stills_colour_only(real_data: Path) -> None:
    print("\nreal stills (colour only, n = 1 each):")
    results = {}
    for name in STILLS:
        bgr = cv2.imread(str(real_data / "photos" / name))
        assert bgr is not None, name
        results[name] = im.analyse_still(bgr, people=True)
        print(row(name, results[name]))
    assert all(results[n].fire.k == 1 for n in STILLS if "test5" in n)  # close-up brush fire: large flames
    night = results["still_test7_night_city_lights_negative_f300.jpg"]
    assert night.dark.k == 1
    # colour alone cannot tell the Las Vegas lights from fire: a known false alarm of stills, asserted as measured
    assert night.fire.k == 1


def test_real_clips_with_a_caller_saying_a_little_smoke(clips: dict[str, im.ClipFacts]) -> None:
    """Printed for the record: what the disagreement screening and the advice make of the real clips."""
    from workbench.screening.advice import advise
    from workbench.screening.disagreement import possible_disagreements
    from workbench.screening.transcript import extract_facts

    speech = extract_facts(["Er komt een beetje rook uit het veld", "Het is donker hier"])
    print("\ncaller: 'Er komt een beetje rook uit het veld' / 'Het is donker hier'")
    for name, clip in clips.items():
        result = possible_disagreements(speech, clip)
        scores = {k: (None if d.possible_score is None else round(d.possible_score, 2)) for k, d in result.items()}
        advice = advise(speech, clip)
        print(f"{name}: possible disagreement {scores}; advice {advice.urgency.value} "
              f"({', '.join(r.rule for r in advice.reasons)})")
        for aspect in ("fire_smoke_size", "other"):
            assert 0.0 <= result[aspect].possible_score <= 1.0  # type: ignore[operator]
    # the night clip is dark, as the caller says; the daylight fire clip is not
    assert possible_disagreements(speech, clips[NIGHT_CLIP])["other"].possible_score == 0.0
    assert possible_disagreements(speech, clips[FIRE_CLIP])["other"].possible_score > 0.9
