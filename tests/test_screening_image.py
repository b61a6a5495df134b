"""workbench.screening.image on synthetic frames and the project's own generated demo media (the tuning set)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.runner.demo_media import ensure_demo_media
from workbench.screening import image as im


def solid(bgr: tuple[int, int, int], h: int = 240, w: int = 320) -> np.ndarray:
    return np.full((h, w, 3), bgr, np.uint8)


@pytest.mark.parametrize(
    ("bgr", "expected"),
    [((30, 140, 250), True),   # orange flame: R 250 > 125, R >= G > B, S = 224 >= (255-250)*60/125
     ((60, 200, 255), True),   # yellow flame core
     ((128, 128, 128), False),  # grey: G > B fails
     ((250, 140, 30), False),  # blue: R too low
     ((90, 110, 120), False),  # dull brown, R 120 <= R_T
     ((80, 100, 160), True)],  # brick: passes Chen's colour rule (known false alarm; motion removes it in video)
)
def test_fire_colour_rule_of_chen_2004(bgr: tuple[int, int, int], expected: bool) -> None:
    assert bool(im.fire_mask(solid(bgr)).all()) is expected


@pytest.mark.parametrize(("value", "expected"), [(150, True), (85, True), (240, False), (40, False)])
def test_smoke_grey_rule(value: int, expected: bool) -> None:
    assert bool(im.smoke_mask(solid((value, value, value))).all()) is expected
    assert not im.smoke_mask(solid((value, value, min(255, value + 40)))).any()  # too colourful


def flame_clip(n: int, flicker: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """A green field with a 40x40 px orange flame; when ``flicker``, its height and brightness change every frame
    (flames flicker at several Hz, so frames sampled at 3 fps differ)."""
    frames = []
    for i in range(n):
        frame = solid((40, 110, 50))
        red = (160 + int(rng.integers(0, 20)) if i % 2 else 235 + int(rng.integers(0, 21))) if flicker else 220
        top = 100 + (int(rng.integers(0, 16)) if flicker else 0)
        frame[top:140, 140:180] = (20, int(red * 0.55), red)
        frames.append(frame)
    return frames


def test_flickering_flame_is_fire_and_a_static_orange_sign_is_not() -> None:
    rng = np.random.default_rng(1)
    fire = im.analyse_frames(flame_clip(10, True, rng), people_every=0)
    sign = im.analyse_frames(flame_clip(10, False, rng), people_every=0)
    assert (fire.fire.k, fire.fire.n) == (9, 9)
    assert (sign.fire.k, sign.fire.n) == (0, 9)
    # colour alone sees the flame in both: 40x40 px of 320x240 for the steady sign
    assert sign.frames[0].fire_share == pytest.approx(1600 / 76800)
    assert all(f.fire_share >= 0.01 for f in fire.frames)
    assert fire.fire.low > sign.fire.high


def test_camera_shake_of_a_static_orange_wall_is_not_fire() -> None:
    base = solid((40, 110, 50), 260, 340)
    base[60:200, 60:280] = (80, 100, 160)  # brick-coloured wall
    frames = [base[10 + dy:250 + dy, 10 + dx:330 + dx].copy() for dx, dy in [(0, 0), (4, -3), (-5, 2), (3, 5), (-2, -4)]]
    clip = im.analyse_frames(frames, people_every=0)
    assert clip.fire.k == 0


def test_darkness_and_blur() -> None:
    rng = np.random.default_rng(2)
    texture = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    sharp = im.analyse_frame(texture, people=False)
    blurred = im.analyse_frame(cv2.GaussianBlur(texture, (0, 0), 3), people=False)
    assert not sharp.blurred and blurred.blurred
    assert sharp.sharpness > im.BLUR_VAR > blurred.sharpness
    night = im.analyse_frame(solid((20, 20, 25)), people=False)
    assert night.dark and night.brightness == pytest.approx((20 * 0.114 + 20 * 0.587 + 25 * 0.299), abs=0.5)
    assert not im.analyse_frame(solid((120, 120, 120)), people=False).dark


def test_wilson_interval_from_scipy() -> None:
    share = im.wilson(0, 10)
    assert (share.k, share.n, share.low) == (0, 10, 0.0)
    assert share.high == pytest.approx(0.2775, abs=1e-4)  # Wilson 95 %: z^2/(n+z^2) = 3.8415/13.8415
    full = im.wilson(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(1 - 0.2775, abs=1e-4)
    assert im.wilson(0, 0).high == 1.0
    with pytest.raises(ValueError):
        im.wilson(3, 2)


def test_wrong_input_is_refused() -> None:
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        im.fire_mask(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        im.analyse_frame(np.zeros((10, 10, 3), np.float32), people=False)
    with pytest.raises(ValueError, match="no frames"):
        im.analyse_frames([], people_every=0)
    with pytest.raises(FileNotFoundError):
        im.read_frames(Path("/nonexistent/clip.mp4"))


def test_hog_people_detector_of_opencv_4_sees_nobody_on_a_blank_frame() -> None:
    assert im.detect_people(solid((128, 128, 128), 480, 640)) == []


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return ensure_demo_media(tmp_path_factory.mktemp("demo_media"))


def test_demo_fire_video_is_fire_and_demo_street_video_is_not(demo: dict[str, Path]) -> None:
    fire = im.analyse_video(demo["demo_fire_video"], max_fps=3, people_every=0, max_seconds=6)
    street = im.analyse_video(demo["demo_street_video"], max_fps=3, people_every=0, max_seconds=6)
    print(f"\ndemo fire video: fire {fire.fire}  size {fire.fire_smoke_size}")
    print(f"demo street video: fire {street.fire}  smoke {street.smoke}")
    assert fire.fire.n == 18 and fire.fire.low > 0.7
    assert street.fire.k == 0 and street.smoke.k == 0
    assert fire.fire_smoke_size == "large" and street.fire_smoke_size == "none"
    assert fire.dark.k == 0 and fire.blurred.k == 0


def test_demo_collision_photo_shows_two_people(demo: dict[str, Path]) -> None:
    photo = im.analyse_still(cv2.imread(str(demo["demo_collision_photo"])))
    assert photo.people == 2 and photo.fire.n == 1
