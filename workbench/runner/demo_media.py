"""Demo media the workbench generates itself, so ``make demo`` runs on a fresh clone without external files.

Six items, referred to from scenarios as ``builtin:NAME`` (see :data:`DEMO_MEDIA_NAMES`):

========================  ==========================================================================================
``demo_fire_video``       640x480, 15 fps, 24 s, H.264 in MP4 (yuv420p; VP8 in WebM when libx264 is missing): a
                          corner house on Kerkstraat whose roof and upstairs window burn, flames growing over the first
                          12 s, thick smoke rising and drifting. Much more than "a little bit of smoke": the image
                          disagrees with the caller on fire size, on purpose (scenario ground truth).
``demo_street_video``     same format: the Oostweg with two cars that bumped at the traffic lights, hazard lights
                          and the traffic light's amber blinking, the drivers gesturing, a car passing, a little
                          camera shake.
``demo_fire_voice``       WAV, mono, 48 kHz, 16-bit: the fire caller's lines (:data:`DEMO_VOICE_TEXTS`).
``demo_collision_voice``  same format: the collision caller's lines.
``demo_fire_photo``       1280x960 JPEG of the fire scene at its height (big flames).
``demo_collision_photo``  1280x960 JPEG of the two cars touching.
========================  ==========================================================================================

Every video frame carries a timestamp and a frame counter (top left), so motion in a received stream is provably
live. Voices are spoken by ``espeak-ng`` when it is on ``PATH``; otherwise a speech-like tone sequence (voiced
syllables with formants and a falling pitch, one per syllable of the text) is synthesised with numpy, and a log
line says which. Everything is deterministic (fixed seeds).

Caching: files are named ``NAME.KEY.EXT`` in the cache folder, where ``KEY`` hashes this module's source, the item's
name and how it was made (voice backend, video codec). A second call finds them and returns at once; a change of the
code (or espeak-ng appearing) gives a new key, and the item is regenerated and its stale files removed. Files are
written under a temporary name and renamed into place, so an interrupted run leaves no half file.

Errors: :func:`resolve_media` raises ``ValueError`` for an unknown ``builtin:`` name and ``FileNotFoundError`` for a
missing file; generation raises ``OSError`` when the cache folder cannot be written.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

import av
import cv2
import numpy as np

logger = logging.getLogger(__name__)

DEMO_MEDIA_NAMES: tuple[str, ...] = (
    "demo_fire_video",
    "demo_street_video",
    "demo_fire_voice",
    "demo_collision_voice",
    "demo_fire_photo",
    "demo_collision_photo",
)
"""Names usable as ``builtin:NAME`` in scenarios."""

DEMO_VOICE_TEXTS: Mapping[str, str] = MappingProxyType(
    {
        "demo_fire_voice": (
            "Hello, I'm calling because there is some smoke coming from the house across the street. "
            "It's the corner house on Kerkstraat, number 12, in Delft. "
            "It's only a little bit of smoke I think, from the back of the roof. "
            "I don't know if anyone is inside. I'm standing on the pavement, I'm safe."
        ),
        "demo_collision_voice": (
            "Two cars bumped into each other at the traffic lights on the Oostweg. "
            "Nobody seems hurt, the drivers are out of their cars and talking. The cars are blocking the right lane."
        ),
    }
)
"""What each demo voice says (read-only)."""

VIDEO_SIZE = (640, 480)
"""Width, height of the demo videos, px."""
VIDEO_FPS = 15
"""Frame rate of the demo videos, frames per second."""
VIDEO_SECONDS = 24
"""Length of the demo videos, s."""
PHOTO_SIZE = (1280, 960)
"""Width, height of the demo photos, px."""
AUDIO_RATE = 48_000
"""Sample rate of the demo voices, Hz (mono, 16-bit PCM)."""

_SCENE = (640, 480)  # logical scene coordinates; photos draw the same scene at scale 2


def ensure_demo_media(cache_dir: Path) -> dict[str, Path]:
    """Generate the demo media into ``cache_dir`` (once) and return where each item is.

    Parameters
    ----------
    cache_dir:
        Folder for the generated files; created when missing. Files of an older version of this code are replaced.

    Returns
    -------
    dict
        ``{name: path}`` for every name in :data:`DEMO_MEDIA_NAMES` (``.mp4``/``.webm``, ``.wav``, ``.jpg`` files).

    Raises
    ------
    OSError
        When ``cache_dir`` cannot be created or written.

    Notes
    -----
    A fresh generation of all six takes a few seconds (two 360-frame videos dominate); a cached call only hashes
    this module's source and checks six files.
    """
    return {name: _ensure_one(name, cache_dir) for name in DEMO_MEDIA_NAMES}


def resolve_media(ref: str, cache_dir: Path) -> Path | None:
    """Turn a scenario's media reference into a file.

    Parameters
    ----------
    ref:
        ``""`` (no media), ``"builtin:NAME"`` (generated demo media, NAME in :data:`DEMO_MEDIA_NAMES`) or a path.
    cache_dir:
        Where generated demo media live (see :func:`ensure_demo_media`); only that one item is generated.

    Returns
    -------
    pathlib.Path or None
        None for ``""``; otherwise an existing file.

    Raises
    ------
    ValueError
        ``builtin:NAME`` with an unknown NAME; the message lists the known names.
    FileNotFoundError
        A path that is not an existing file.
    """
    if not ref:
        return None
    if ref.startswith("builtin:"):
        name = ref.removeprefix("builtin:")
        if name not in DEMO_MEDIA_NAMES:
            raise ValueError(f"unknown built-in media {ref!r}; known: {', '.join(DEMO_MEDIA_NAMES)}")
        return _ensure_one(name, cache_dir)
    path = Path(ref)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"media file {ref!r} {what} (looked for {path.resolve()}); give an existing file or builtin:NAME "
            f"with NAME one of {', '.join(DEMO_MEDIA_NAMES)}"
        )
    return path


# --- caching ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipe:
    """How one item is made: its file extension, a tag of the method (part of the key) and the writer."""

    extension: str
    method: str
    write: Callable[[Path], str]
    """Writes the file at the given path; returns the method actually used (may differ, e.g. espeak-ng failed)."""


def _recipe(name: str) -> _Recipe:
    if name.endswith("_video"):
        codec, extension = _video_codec()
        scene = _fire_scene if name == "demo_fire_video" else _street_scene
        return _Recipe(extension, codec, lambda path: _write_video(path, scene(1.0, True), codec, name))
    if name.endswith("_voice"):
        text = DEMO_VOICE_TEXTS[name]
        method = "espeak-ng" if shutil.which("espeak-ng") else "tones"
        return _Recipe(".wav", method, lambda path: _write_voice(path, text, method, name))
    photo_scene = _fire_scene if name == "demo_fire_photo" else _street_scene
    moment = 20.0 if name == "demo_fire_photo" else 0.25  # fire at its height; lights lit, passing car away
    scale = PHOTO_SIZE[0] / _SCENE[0]
    return _Recipe(".jpg", "opencv", lambda path: _write_photo(path, photo_scene(scale, False)(moment)))


def _source_fingerprint() -> bytes:
    """This module's source: any change to how media are made changes every key."""
    return Path(__file__).read_bytes()


def _key(name: str, method: str) -> str:
    digest = hashlib.sha256(_source_fingerprint())
    digest.update(f"\0{name}\0{method}".encode())
    return digest.hexdigest()[:12]


def _ensure_one(name: str, cache_dir: Path) -> Path:
    recipe = _recipe(name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{name}.{_key(name, recipe.method)}{recipe.extension}"
    if target.is_file():
        return target
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=recipe.extension, dir=cache_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        used = recipe.write(tmp)
        if used != recipe.method:  # fell back: file it under what it is, so the preferred method is retried later
            target = cache_dir / f"{name}.{_key(name, used)}{recipe.extension}"
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    stale = re.compile(rf"^{re.escape(name)}\.[0-9a-f]{{12}}\.[a-z0-9]+$")
    for old in cache_dir.iterdir():
        if old != target and stale.match(old.name):
            old.unlink(missing_ok=True)
    return target


# --- video --------------------------------------------------------------------------------------------------------


def _video_codec() -> tuple[str, str]:
    """(encoder, extension): H.264 in MP4 when PyAV has libx264, else VP8 in WebM (both play in aiortc)."""
    return ("libx264", ".mp4") if "libx264" in av.codecs_available else ("libvpx", ".webm")


def _write_video(path: Path, draw: Callable[[float], np.ndarray], codec: str, name: str) -> str:
    """Encode ``VIDEO_SECONDS`` of frames ``draw(t)`` (BGR, 640x480) at ``VIDEO_FPS``, stamped with time and index."""
    width, height = VIDEO_SIZE
    with av.open(str(path), "w", format="mp4" if codec == "libx264" else "webm") as container:
        stream = container.add_stream(codec, rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            # veryfast: ~3x quicker than the default preset at a small size cost; a key frame every 2 s so a
            # player (or aiortc relay) can start anywhere
            stream.options = {"preset": "veryfast", "crf": "23", "g": str(2 * VIDEO_FPS), "bf": "0"}
        else:
            stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "1500k", "g": str(2 * VIDEO_FPS)}
        time_base = Fraction(1, VIDEO_FPS)
        for index in range(VIDEO_SECONDS * VIDEO_FPS):
            t = index / VIDEO_FPS
            image = draw(t)
            _stamp(image, t, index)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = index, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    logger.info("demo media: %s drawn with OpenCV, encoded with %s (%dx%d, %d fps, %d s)", name, codec, width, height,
                VIDEO_FPS, VIDEO_SECONDS)
    return codec


def _write_photo(path: Path, image: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OSError(f"OpenCV could not encode {path.name}")
    path.write_bytes(encoded.tobytes())
    return "opencv"


def _stamp(image: np.ndarray, t: float, index: int) -> None:
    """Timestamp and frame counter, white on a black box, top left; a blinking red REC dot."""
    text = f"{int(t // 60):02d}:{t % 60:05.2f}  frame {index:04d}"
    cv2.rectangle(image, (8, 8), (290, 36), (0, 0, 0), -1)
    cv2.putText(image, text, (36, 29), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    if int(t * 2) % 2 == 0:
        cv2.circle(image, (22, 22), 7, (0, 0, 230), -1, cv2.LINE_AA)


@dataclass(frozen=True)
class _View:
    """Maps logical scene coordinates (640x480) to pixels: ``scale`` px per unit, camera offset ``dx``/``dy``."""

    scale: float
    dx: float = 0.0
    dy: float = 0.0

    def p(self, x: float, y: float) -> tuple[int, int]:
        return round((x + self.dx) * self.scale), round((y + self.dy) * self.scale)

    def pts(self, points: np.ndarray | list[tuple[float, float]]) -> np.ndarray:
        array = (np.asarray(points, dtype=np.float64) + (self.dx, self.dy)) * self.scale
        return np.rint(array).astype(np.int32).reshape(-1, 1, 2)

    def n(self, length: float) -> int:
        return max(1, round(length * self.scale))

    def canvas(self) -> np.ndarray:
        return np.zeros((round(_SCENE[1] * self.scale), round(_SCENE[0] * self.scale), 3), np.uint8)


def _rect(img: np.ndarray, v: _View, x0: float, y0: float, x1: float, y1: float, colour: tuple[int, int, int]) -> None:
    cv2.rectangle(img, v.p(x0, y0), v.p(x1, y1), colour, -1)


def _poly(img: np.ndarray, v: _View, points: list[tuple[float, float]] | np.ndarray, colour: tuple[int, ...]) -> None:
    cv2.fillPoly(img, [v.pts(points)], colour, cv2.LINE_AA)


def _text(img: np.ndarray, v: _View, text: str, x: float, y: float, size: float, colour: tuple[int, int, int]) -> None:
    cv2.putText(img, text, v.p(x, y), cv2.FONT_HERSHEY_SIMPLEX, size * v.scale, colour, v.n(1.5), cv2.LINE_AA)


def _vertical_gradient(img: np.ndarray, v: _View, y0: float, y1: float, top: tuple[int, ...], bottom: tuple[int, ...]
                       ) -> None:
    a, b = max(0, v.p(0, y0)[1]), min(img.shape[0], v.p(0, y1)[1])
    ramp = np.linspace(0.0, 1.0, max(1, b - a))[:, None]
    img[a:b] = (np.asarray(top) * (1 - ramp) + np.asarray(bottom) * ramp).astype(np.uint8)[:, None, :]


# --- the fire scene -------------------------------------------------------------------------------------------------

_ROOF_LEFT, _ROOF_APEX, _ROOF_RIGHT = (196.0, 200.0), (340.0, 112.0), (484.0, 200.0)


def _roof_y(x: float) -> float:
    """Height of the roof line at ``x`` (logical px)."""
    (lx, ly), (ax, ay), (rx, ry) = _ROOF_LEFT, _ROOF_APEX, _ROOF_RIGHT
    if x <= ax:
        return ly + (ay - ly) * (x - lx) / (ax - lx)
    return ay + (ry - ay) * (x - ax) / (rx - ax)


def _fire_background(v: _View) -> np.ndarray:
    img = v.canvas()
    _vertical_gradient(img, v, 0, 345, (225, 175, 120), (240, 220, 200))  # afternoon sky (BGR)
    # neighbours, left and right
    _rect(img, v, -10, 170, 170, 340, (95, 110, 140))
    _poly(img, v, [(-10, 170), (80, 110), (170, 170)], (60, 60, 75))
    _rect(img, v, 510, 180, 650, 340, (120, 130, 150))
    _poly(img, v, [(510, 180), (590, 125), (650, 160), (650, 180)], (65, 65, 80))
    for x in (20, 100, 540, 600):
        _rect(img, v, x, 220, x + 36, 260, (90, 80, 60))
    # the corner house, Kerkstraat 12
    _rect(img, v, 200, 200, 480, 340, (55, 75, 150))  # brick
    _poly(img, v, [_ROOF_LEFT, _ROOF_APEX, _ROOF_RIGHT], (45, 45, 60))
    _rect(img, v, 246, 280, 306, 322, (70, 60, 50))  # downstairs window
    _rect(img, v, 368, 268, 404, 340, (30, 45, 70))  # door
    _rect(img, v, 412, 282, 440, 300, (230, 230, 230))  # house number plaque
    _text(img, v, "12", 416, 297, 0.45, (20, 20, 20))
    # pavement, kerb, road
    _rect(img, v, -10, 340, 650, 362, (150, 150, 150))
    _rect(img, v, -10, 362, 650, 366, (90, 90, 90))
    _rect(img, v, -10, 366, 650, 490, (70, 70, 70))
    for x in range(0, 640, 80):
        _rect(img, v, x, 420, x + 44, 426, (220, 220, 220))
    # street sign on a pole
    _rect(img, v, 176, 250, 180, 352, (60, 60, 60))
    _rect(img, v, 120, 240, 236, 262, (140, 60, 20))
    _text(img, v, "Kerkstraat", 126, 256, 0.42, (255, 255, 255))
    return img


@dataclass(frozen=True)
class _Particles:
    """Seeded parameters of the smoke puffs and flame tongues (drawn from a fixed RNG, never changed)."""

    puff_x: np.ndarray
    puff_drift: np.ndarray
    puff_size: np.ndarray
    tongue_x: np.ndarray
    tongue_phase: np.ndarray
    tongue_freq: np.ndarray
    tongue_width: np.ndarray


_PUFF_INTERVAL = 0.1  # s between smoke puffs
_PUFF_LIFE = 9.0  # s a puff stays visible; puffs start this long before t=0, so smoke is there from frame 0


def _fire_particles() -> _Particles:
    rng = np.random.default_rng(112)
    puffs = int((VIDEO_SECONDS + _PUFF_LIFE) / _PUFF_INTERVAL) + 2
    tongues = 16
    return _Particles(
        puff_x=rng.uniform(260, 430, puffs),
        puff_drift=rng.uniform(0.6, 1.4, puffs),
        puff_size=rng.uniform(0.8, 1.3, puffs),
        tongue_x=np.sort(rng.uniform(250, 440, tongues)),
        tongue_phase=rng.uniform(0, 2 * math.pi, tongues),
        tongue_freq=rng.uniform(1.5, 3.5, tongues),
        tongue_width=rng.uniform(18, 34, tongues),
    )


def _fire_scene(scale: float, moving: bool) -> Callable[[float], np.ndarray]:
    """``draw(t)``: the burning corner house at ``t`` s, BGR, ``640*scale`` x ``480*scale``. ``moving`` is there
    for symmetry with the street scene and unused: the caller films the fire steadily."""
    view = _View(scale)
    background, parts = _fire_background(view), _fire_particles()
    return lambda t: _draw_fire(t, view, background, parts)


def _draw_fire(t: float, v: _View, background: np.ndarray, parts: _Particles) -> np.ndarray:
    img = background.copy()
    growth = min(1.0, 0.45 + t / 12.0)  # the fire grows over the first ~7 s, then rages
    flicker = 0.75 + 0.25 * math.sin(t * 9.0) * math.sin(t * 4.3 + 1.0)
    # upstairs windows glow from the fire inside
    for x0 in (236, 392):
        glow = (0, int(110 + 80 * flicker), 255) if x0 == 392 else (0, int(50 + 50 * flicker), int(120 + 110 * growth))
        _rect(img, v, x0, 220, x0 + 40, 260, glow)
        cv2.rectangle(img, v.p(x0, 220), v.p(x0 + 40, 260), (40, 40, 40), v.n(2))

    # smoke: soft Gaussian puffs summed on a 1/8-resolution grid (logical px), upscaled and blended
    clock = t + _PUFF_LIFE
    first = max(0, int((clock - _PUFF_LIFE) / _PUFF_INTERVAL))
    k = np.arange(first, int(clock / _PUFF_INTERVAL) + 1)
    age = clock - k * _PUFF_INTERVAL
    k, age = k[(age >= 0) & (age < _PUFF_LIFE)], age[(age >= 0) & (age < _PUFF_LIFE)]
    px = parts.puff_x[k] + 16 * age * parts.puff_drift[k] + 8 * np.sin(age * 1.7 + k)
    py = np.interp(parts.puff_x[k], [_ROOF_LEFT[0], _ROOF_APEX[0], _ROOF_RIGHT[0]],
                   [_ROOF_LEFT[1], _ROOF_APEX[1], _ROOF_RIGHT[1]]) - 30 - 20 * age
    radius = (14 + 11 * age) * parts.puff_size[k]
    strength = 0.75 * np.exp(-age / 5.0) * np.minimum(1.0, age * 2)
    gx = (np.arange(_SCENE[0] // 8) + 0.5) * 8
    gy = (np.arange(_SCENE[1] // 8) + 0.5) * 8
    dx2 = (gx[None, :] - px[:, None]) ** 2 / (2 * radius[:, None] ** 2)  # puffs x columns
    dy2 = (gy[None, :] - py[:, None]) ** 2 / (2 * radius[:, None] ** 2)  # puffs x rows
    density = np.einsum("p,pr,pc->rc", strength, np.exp(-dy2), np.exp(-dx2)).astype(np.float32)
    alpha = np.clip(cv2.resize(density, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR), 0, 0.9)
    smoke = np.array([55, 55, 60], np.float32)
    img[:] = (img * (1 - alpha[..., None]) + smoke * alpha[..., None]).astype(np.uint8)

    # flames along the roof and out of the right upstairs window: red outer, orange, yellow core
    tongues = [(float(x), _roof_y(float(x)) + 8, 1.0) for x in parts.tongue_x]
    tongues += [(402.0, 244.0, 0.55), (418.0, 244.0, 0.6)]
    for i, (x, base, size) in enumerate(tongues):
        j = i % len(parts.tongue_x)
        wave_ = 0.7 + 0.3 * math.sin(2 * math.pi * parts.tongue_freq[j] * t + parts.tongue_phase[j])
        height = (95 + 60 * math.sin(math.pi * (x - 240) / 210)) * growth * wave_ * size
        width = parts.tongue_width[j] * size * (0.7 + 0.5 * growth)
        sway = 10 * math.sin(1.3 * t + parts.tongue_phase[j]) * size
        for colour, shrink in (((0, 40, 210), 1.0), ((0, 140, 255), 0.7), ((90, 230, 255), 0.42)):
            _poly(img, v, _tongue(x, base, width * shrink, height * shrink, sway * shrink), colour)
    # sparks
    for k in range(12):
        age = (t * 0.8 + k / 12) % 1.0
        x = 260 + (k * 37) % 180 + 15 * math.sin(k + t * 2)
        y = _roof_y(x) - 20 - 170 * age * growth
        cv2.circle(img, v.p(x, y), v.n(2), (120, 240, 255), -1, cv2.LINE_AA)
    return img


def _tongue(x: float, base: float, width: float, height: float, sway: float) -> np.ndarray:
    """A flame tongue as a closed outline: round base, tip bent by ``sway``."""
    s = np.linspace(0, 1, 12)
    half = width / 2 * np.sqrt(np.sin(np.pi * (1 - s) / 2 + 1e-9)) * (1 - s) ** 0.6
    ys = base - height * s
    xs_mid = x + sway * s**2
    left = np.stack([xs_mid - half, ys], 1)
    right = np.stack([xs_mid + half, ys], 1)[::-1]
    return np.concatenate([left, right])


# --- the street scene ---------------------------------------------------------------------------------------------

_SHAKE_MARGIN = 12  # logical px of scene drawn beyond each edge, for camera shake


def _street_background(v: _View) -> np.ndarray:
    """The static street, drawn ``_SHAKE_MARGIN`` beyond every edge (the frame is cut from it with the shake)."""
    m = _SHAKE_MARGIN
    big = _View(v.scale, m, m)
    h, w = round((_SCENE[1] + 2 * m) * v.scale), round((_SCENE[0] + 2 * m) * v.scale)
    img = np.zeros((h, w, 3), np.uint8)
    _vertical_gradient(img, _View(v.scale), 0, 120, (200, 190, 180), (215, 210, 205))  # overcast
    img[round(120 * v.scale):] = (210, 205, 200)
    # a row of buildings
    for i, x in enumerate(range(-20, 680, 110)):
        top = 70 + (i * 37) % 60
        colour = ((70, 90, 130), (120, 120, 125), (90, 110, 150), (140, 135, 120))[i % 4]
        _rect(img, big, x, top, x + 108, 262, colour)
        for wy in range(top + 18, 240, 40):
            for wx in (x + 14, x + 46, x + 78):
                _rect(img, big, wx, wy, wx + 18, wy + 22, (150, 130, 110))
    # pavement, road with perspective lanes
    _rect(img, big, -20, 262, 660, 292, (165, 165, 160))
    _rect(img, big, -20, 292, 660, 500, (80, 80, 82))
    _rect(img, big, -20, 292, 660, 296, (60, 60, 60))
    for x in range(-20, 660, 70):
        _rect(img, big, x, 376, x + 40, 381, (225, 225, 225))  # lane divider
    # traffic light on the right
    _rect(img, big, 571, 150, 579, 300, (50, 50, 50))
    _rect(img, big, 556, 80, 594, 170, (30, 30, 30))
    for y in (96, 125, 154):
        cv2.circle(img, big.p(575, y), big.n(11), (45, 45, 45), -1, cv2.LINE_AA)
    # street sign
    _rect(img, big, 40, 200, 44, 290, (60, 60, 60))
    _rect(img, big, 0, 186, 92, 206, (140, 60, 20))
    _text(img, big, "Oostweg", 6, 201, 0.42, (255, 255, 255))
    return img


def _street_scene(scale: float, moving: bool) -> Callable[[float], np.ndarray]:
    """``draw(t)``: the bumped cars on the Oostweg at ``t`` s, BGR, ``640*scale`` x ``480*scale``; ``moving`` adds
    camera shake (the video; the photo is steady)."""
    background = _street_background(_View(scale))
    return lambda t: _draw_street(t, scale, background, moving)


def _draw_street(t: float, scale: float, background: np.ndarray, shake: bool) -> np.ndarray:
    m = _SHAKE_MARGIN
    if shake:  # a hand-held phone: slow wander plus a small tremor, whole pixels
        dx = round(4 * math.sin(0.9 * t) + 1.5 * math.sin(7.1 * t + 1))
        dy = round(3 * math.sin(0.7 * t + 2) + 1.2 * math.sin(8.3 * t))
    else:
        dx = dy = 0
    h, w = round(_SCENE[1] * scale), round(_SCENE[0] * scale)
    top, left = round((m - dy) * scale), round((m - dx) * scale)
    img = background[top : top + h, left : left + w].copy()
    v = _View(scale, dx, dy)

    blink = int(t * 2) % 2 == 0  # 1 Hz
    cv2.circle(img, v.p(575, 125), v.n(10), (0, 190, 255) if blink else (40, 70, 90), -1, cv2.LINE_AA)
    # drivers on the pavement, talking, arms moving
    for i, (x, colour) in enumerate(((470.0, (140, 60, 40)), (500.0, (40, 40, 40)))):
        _person(img, v, x, 292, colour, t + i * 1.3)
    # a car passing in the far lane, right to left, every 8 s
    phase = (t % 8.0) / 8.0
    _car(img, v, 700 - 900 * phase, 352, 150, (60, 130, 60), facing=-1, hazards=False, t=t)
    # the two bumped cars in the near lane: grey one hit the red one from behind
    _car(img, v, 300, 452, 210, (40, 40, 190), facing=1, hazards=blink, t=t)
    _car(img, v, 86, 452, 214, (150, 150, 150), facing=1, hazards=blink, t=t, dented=True)
    # a few bits of broken light on the road
    for x, y in ((296, 458), (308, 462), (290, 465), (316, 456)):
        cv2.circle(img, v.p(x, y), v.n(2), (30, 60, 200), -1, cv2.LINE_AA)
    return img


def _car(img: np.ndarray, v: _View, x: float, ground: float, length: float, colour: tuple[int, int, int], *,
         facing: int, hazards: bool, t: float, dented: bool = False) -> None:
    """A car seen from the side; ``x`` its left end, ``ground`` where the wheels touch, ``facing`` +1 right."""
    height = length * 0.26
    body_top = ground - 12 - height
    _rect(img, v, x, body_top, x + length, ground - 12, colour)
    cab = [(x + length * 0.22, body_top), (x + length * 0.32, body_top - height * 0.85),
           (x + length * 0.68, body_top - height * 0.85), (x + length * 0.8, body_top)]
    if facing < 0:
        cab = [(2 * x + length - px, py) for px, py in cab]
    _poly(img, v, cab, colour)
    inset = [(px + (5 if i in (0, 1) else -5), py + (4 if i in (1, 2) else 0)) for i, (px, py) in enumerate(cab)]
    _poly(img, v, inset, (170, 140, 120))  # windows
    for wx in (x + length * 0.2, x + length * 0.8):
        cv2.circle(img, v.p(wx, ground - 14), v.n(length * 0.09), (20, 20, 20), -1, cv2.LINE_AA)
        cv2.circle(img, v.p(wx, ground - 14), v.n(length * 0.04), (150, 150, 150), -1, cv2.LINE_AA)
    front, back = (x + length, x) if facing > 0 else (x, x + length)
    lamp_y = body_top + 8
    cv2.circle(img, v.p(front - 4 * facing, lamp_y), v.n(5), (200, 240, 255), -1, cv2.LINE_AA)
    cv2.circle(img, v.p(back + 4 * facing, lamp_y), v.n(5), (30, 30, 160), -1, cv2.LINE_AA)
    if hazards:
        for end in (front - 5 * facing, back + 5 * facing):
            cv2.circle(img, v.p(end, lamp_y + 12), v.n(5), (0, 170, 255), -1, cv2.LINE_AA)
    if dented:  # crumpled bonnet where it hit the car in front
        crease = [(front - 30 * facing, body_top), (front - 20 * facing, body_top + 10),
                  (front - 12 * facing, body_top + 3), (front - 4 * facing, body_top + 16), (front, body_top + 9)]
        cv2.polylines(img, [v.pts(crease)], False, (60, 60, 60), v.n(2), cv2.LINE_AA)


def _person(img: np.ndarray, v: _View, x: float, feet: float, colour: tuple[int, int, int], t: float) -> None:
    """A standing figure, gesturing (one arm swings)."""
    grey = (50, 50, 50)
    cv2.line(img, v.p(x - 6, feet), v.p(x, feet - 30), grey, v.n(4), cv2.LINE_AA)
    cv2.line(img, v.p(x + 6, feet), v.p(x, feet - 30), grey, v.n(4), cv2.LINE_AA)
    _rect(img, v, x - 8, feet - 62, x + 8, feet - 28, colour)
    cv2.circle(img, v.p(x, feet - 70), v.n(8), (120, 160, 210), -1, cv2.LINE_AA)
    angle = 0.6 + 0.5 * math.sin(3.0 * t)
    cv2.line(img, v.p(x + 8, feet - 58), v.p(x + 8 + 20 * math.sin(angle), feet - 58 + 20 * math.cos(angle)),
             colour, v.n(4), cv2.LINE_AA)
    cv2.line(img, v.p(x - 8, feet - 58), v.p(x - 12, feet - 38), colour, v.n(4), cv2.LINE_AA)


# --- voice --------------------------------------------------------------------------------------------------------


def _write_voice(path: Path, text: str, method: str, name: str) -> str:
    samples: np.ndarray | None = None
    if method == "espeak-ng":
        samples = _espeak(text)
        if samples is None:
            method = "tones"
    if samples is None:
        samples = _speech_like_tones(text)
    pad = np.zeros(int(0.3 * AUDIO_RATE), np.int16)
    samples = np.concatenate([pad, samples, pad])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(AUDIO_RATE)
        out.writeframes(samples.astype("<i2").tobytes())
    how = "spoken by espeak-ng" if method == "espeak-ng" else "speech-like tones (espeak-ng not available)"
    logger.info("demo media: %s %s, %.1f s", name, how, len(samples) / AUDIO_RATE)
    return method


def _espeak(text: str) -> np.ndarray | None:
    """``espeak-ng -v en`` at 150 words/min, resampled to 48 kHz mono int16; None (and a warning) when it fails."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        try:
            subprocess.run([exe, "-v", "en", "-s", "150", "-w", str(wav), text], check=True, capture_output=True,
                           timeout=60)
            with wave.open(str(wav), "rb") as src:
                channels, width, rate = src.getnchannels(), src.getsampwidth(), src.getframerate()
                raw = src.readframes(src.getnframes())
        except (OSError, subprocess.SubprocessError, wave.Error, EOFError) as exc:
            logger.warning("demo media: espeak-ng failed (%s); using speech-like tones instead", exc)
            return None
    if width != 2 or not raw:
        logger.warning("demo media: espeak-ng wrote %d-byte samples; using speech-like tones instead", width)
        return None
    samples = np.frombuffer(raw, "<i2").reshape(-1, channels).mean(axis=1).astype(np.int16)
    return _resample(samples, rate)


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono int16 at ``rate`` Hz to ``AUDIO_RATE`` with libswresample (through PyAV)."""
    if rate == AUDIO_RATE:
        return samples
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
    chunks = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16)


_VOWEL_FORMANTS = ((730, 1090), (270, 2290), (300, 870), (530, 1840), (570, 840), (660, 1720))
"""(F1, F2) in Hz of a few English vowels (Peterson & Barney 1952, male averages)."""


def _iter_syllables(text: str) -> Iterator[tuple[str, int, str]]:
    """(word, syllable count, punctuation after it) for each word."""
    for match in re.finditer(r"([A-Za-z0-9']+)([,.!?]?)", text):
        word, punct = match.groups()
        count = len(re.findall(r"[aeiouy]+", word.lower())) or (len(word) if word.isdigit() else 1)
        yield word, max(1, count), punct


def _speech_like_tones(text: str) -> np.ndarray:
    """A voiced tone per syllable of ``text``: harmonics of a falling pitch shaped by two vowel formants.

    Not speech, but it has speech's rhythm (syllables, word gaps, longer pauses at commas and full stops) and
    spectrum (100-4000 Hz), so audio paths, level meters and voice-activity detectors get something realistic.
    """
    rng = np.random.default_rng(12)
    rate = AUDIO_RATE
    pieces: list[np.ndarray] = []
    words = list(_iter_syllables(text))
    total = sum(count for _, count, _ in words)
    done = 0
    for _word, count, punct in words:
        for _ in range(count):
            duration = rng.uniform(0.13, 0.2)
            n = int(duration * rate)
            start_f0 = 185 - 50 * done / max(1, total)  # declination across the utterance
            f0 = start_f0 * (1 + 0.06 * np.sin(np.linspace(0, np.pi, n))) * rng.uniform(0.95, 1.05)
            phase = 2 * np.pi * np.cumsum(f0) / rate
            f1, f2 = _VOWEL_FORMANTS[int(rng.integers(len(_VOWEL_FORMANTS)))]
            mean_f0 = float(f0.mean())
            signal = np.zeros(n)
            for k in range(1, int(4000 // mean_f0) + 1):
                freq = k * mean_f0
                gain = math.exp(-(((freq - f1) / 130) ** 2)) + 0.6 * math.exp(-(((freq - f2) / 180) ** 2)) + 0.02 / k
                signal += gain * np.sin(k * phase)
            envelope = np.sin(np.linspace(0, np.pi, n)) ** 0.7
            pieces.append(signal * envelope)
            pieces.append(np.zeros(int(0.03 * rate)))
            done += 1
        gap = {",": 0.25, ".": 0.45, "?": 0.45, "!": 0.45}.get(punct, 0.07)
        pieces.append(np.zeros(int(gap * rate)))
    audio = np.concatenate(pieces)
    audio *= 0.5 * 32767 / max(1e-9, float(np.abs(audio).max()))
    return audio.astype(np.int16)
