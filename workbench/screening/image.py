"""Facts from images with OpenCV 4.x: fire and smoke by colour (and motion in video), people, darkness, blur.

Screening, not ground truth: every score is a colour/motion heuristic with known false alarms (warm lights, sunsets,
grey walls). Thresholds are named constants below, each with its source; they were fixed on the project's own
generated demo media and on synthetic frames BEFORE the real clips in ``../shared/data/real`` were scored, and were
not changed afterwards (see ``docs/screening.md`` for the results).

Per frame (:func:`analyse_frame`, :class:`FrameFacts`)
    All measures run on the frame resized to :data:`ANALYSIS_WIDTH` px wide (shares are resolution-free).

    - fire pixels: the colour rule of Chen, Wu & Chiou (2004), "An early fire-detection method based on image
      processing", Proc. ICIP 2004, pp. 1707-1710: rule 1 ``R > R_T``; rule 2 ``R >= G > B``; rule 3
      ``S >= (255 - R) * S_T / R_T``, with S the HSV saturation on OpenCV's 0-255 scale (the paper's scale for S is
      not stated unambiguously; we read it on the same 0-255 scale as R). ``R_T`` = 125 and ``S_T`` = 60 are the
      midpoints of the paper's suggested ranges (115-135 and 55-65), not tuned.
    - moving fire pixels (video): fire pixels whose grey level changed by more than :data:`FLICKER_DIFF` between this
      frame and the previous sampled one (flames flicker; Chen et al. 2004 use the growth/disorder of the fire region
      over frames; we use the simpler per-pixel change).
    - smoke pixels: grey-ish pixels after Chen, Yin, Huang & Ye (2006), "The smoke detection for early fire-alarming
      system based on video processing", Proc. IIH-MSP 2006: ``max(R,G,B) - min(R,G,B) <= SMOKE_ALPHA`` and
      intensity between :data:`SMOKE_I_MIN` and :data:`SMOKE_I_MAX`; in video only those that changed by more than
      :data:`SMOKE_DIFF` (smoke moves and grows; a grey wall does not).
    - people: OpenCV's HOG + linear SVM people detector (Dalal & Triggs 2005, "Histograms of oriented gradients for
      human detection", CVPR), ``cv2.HOGDescriptor_getDefaultPeopleDetector()``, boxes with SVM weight above
      :data:`HOG_MIN_WEIGHT`, merged by non-maximum suppression. Runs on the frame resized to :data:`HOG_WIDTH`.
    - brightness: mean of the grey image, 0-255; dark when below :data:`DARK_MEAN`.
    - sharpness: variance of the Laplacian of the grey image (Pech-Pacheco et al. 2000, "Diatom autofocusing in
      brightfield microscopy: a comparative study", Proc. ICPR); blurred when below :data:`BLUR_VAR`.

Per clip (:func:`analyse_frames`, :func:`analyse_video`, :class:`ClipFacts`)
    A frame is a *fire frame* when its fire share (moving fire share for video) is at least
    :data:`FIRE_FRAME_SHARE`, a *smoke frame* likewise with :data:`SMOKE_FRAME_SHARE`. The clip's fire score is the
    share of fire frames with a 95 % **Wilson score interval** (``scipy.stats.binomtest(...).proportion_ci``).
    Wilson because the share is a binomial proportion that is often 0 or 1 on short clips, where the Wald interval
    collapses to a width of zero and the Wilson interval stays honest (Brown, Cai & DasGupta 2001, Statistical
    Science 16(2)). Caveat: neighbouring frames are correlated, so the interval treats them as more independent
    than they are and is too narrow; sampling at <= 3 fps reduces, but does not remove, that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import binomtest

ANALYSIS_WIDTH = 320
"""Frames are resized to this width (px, aspect kept) before colour, motion, brightness and blur measures, so shares
and the Laplacian variance do not depend on the camera's resolution. 320 px is the smaller real clip's width."""

FIRE_R_T = 125
"""Chen et al. (2004) red threshold R_T, 0-255; midpoint of the paper's range 115-135."""
FIRE_S_T = 60
"""Chen et al. (2004) saturation threshold S_T; midpoint of the paper's range 55-65 (read on the 0-255 scale)."""

FLICKER_DIFF = 12
"""Grey-level change (0-255) between two sampled frames above which a fire pixel counts as moving. Chosen on the
demo fire video (flames change by tens of grey levels at 3 fps) and above MPEG/H.264 noise (a few levels)."""

MAX_SHIFT_PX = 20
"""Largest global shift (px at ANALYSIS_WIDTH) compensated as camera shake between two sampled frames."""

SMOKE_ALPHA = 20
"""Chen et al. (2006) grey rule: R, G and B within this many levels of each other (paper: alpha 15-20; upper end, as
thin smoke takes on a little of the background's colour)."""
SMOKE_I_MIN = 80
"""Lowest intensity (mean of R, G, B; 0-255) of a smoke pixel (Chen et al. 2006: dark-grey smoke from about 80)."""
SMOKE_I_MAX = 220
"""Highest intensity of a smoke pixel (Chen et al. 2006: light-grey smoke up to about 220; whiter is sky or wall)."""
SMOKE_DIFF = 4
"""Grey-level change (0-255) between sampled frames above which a grey pixel counts as moving smoke. Smoke drifts
slowly and is soft-edged, so the change per pixel is small; 4 is above codec noise on the demo street video."""

FIRE_OPEN_PX = 3
"""Side (px at ANALYSIS_WIDTH) of the square opening applied to the moving-fire mask: slivers thinner than 3 px are
edge residuals of camera shake, not flames (demo street video: brick walls and the red car)."""
SMOKE_OPEN_PX = 5
"""Side of the square opening of the moving-smoke mask (smoke is a soft blob; thin moving grey lines are edges)."""

FIRE_FRAME_SHARE = 0.004
"""A frame is a fire frame when at least this share of its pixels is fire (moving fire, in video): 0.4 % = about
300 px of a 320x240 frame, a 17x17 px flame. Tuned on the demo media: the demo street video's moving-fire share
(brick, red car, amber light under camera shake) reaches at most 0.32 %, the demo fire video's is 0.37-1.5 %
(median 1.0 %); 0.4 % sits between the street's maximum and the fire's median. For a still (colour only) the same
share is used, so brick and red cars make stills a weak fire signal (see docs/screening.md)."""
SMOKE_FRAME_SHARE = 0.02
"""A frame is a smoke frame when at least this share of its pixels is (moving) smoke: 2 %. Tuned on the demo street
video, whose grey road and walls give moving-smoke shares up to 1.1 % under shake; the demo fire video's dark
smoke (below SMOKE_I_MIN) is hardly detected at all, a known weakness of the grey rule."""
FIRE_SIZE_LARGE_SHARE = 0.03
"""Image fire/smoke size "large" when the clip's median (fire + smoke) share of the fire frames is at least 3 % of
the frame; "small" below. Chosen on the demo media: the demo fire (big flames, thick smoke; 'much more than a
little smoke' by design) is well above it."""

HOG_WIDTH = 640
"""Frames are resized to this width (px) for the HOG people detector, whose window is 64x128 px: people smaller
than about 1/4 of a 480 px tall frame are missed."""
HOG_MIN_WEIGHT = 0.5
"""Minimum linear-SVM score of a HOG detection. OpenCV's default hit threshold is 0. On the demo collision photo the
two drivers score 1.52 and 0.54 and a spurious box 0.40; 0.5 keeps the drivers. Known miss: the demo fire photo
has one spurious box (0.70) in the flames, so the fire scene "shows" one person."""
HOG_NMS_IOU = 0.5
"""Non-maximum suppression overlap (intersection over union) for HOG boxes: 0.5, because the demo's two drivers
stand side by side and their boxes overlap by about 0.35."""

DARK_MEAN = 60.0
"""Mean grey level (0-255) below which a frame is dark. The demo scenes (daylight) are above 100; a night street is
typically below 60. A round number, not tuned on the real clips."""
BLUR_VAR = 100.0
"""Laplacian variance below which a frame is blurred (at ANALYSIS_WIDTH). 100 is the common rule of thumb for
8-bit images; the demo videos are sharp (>> 100) and a Gaussian blur of sigma 3 falls below it (tests)."""

CI_LEVEL = 0.95
"""Confidence level of the per-clip Wilson intervals."""


@dataclass(frozen=True)
class FrameFacts:
    """Facts of one frame. Shares are fractions of the frame's pixels (0-1)."""

    fire_share: float
    """Share of fire-coloured pixels (Chen et al. 2004)."""
    moving_fire_share: float | None
    """Share of fire-coloured pixels that also changed since the previous frame; ``None`` for a single still."""
    smoke_share: float
    """Share of grey smoke-coloured pixels (Chen et al. 2006)."""
    moving_smoke_share: float | None
    """Share of smoke-coloured pixels that also changed; ``None`` for a single still."""
    people: int | None
    """People boxes from the HOG detector; ``None`` when the detector was not run on this frame."""
    brightness: float
    """Mean grey level, 0-255."""
    sharpness: float
    """Variance of the Laplacian of the grey image (at ANALYSIS_WIDTH)."""

    @property
    def fire(self) -> bool:
        """A fire frame: (moving, in video) fire share >= FIRE_FRAME_SHARE."""
        share = self.fire_share if self.moving_fire_share is None else self.moving_fire_share
        return share >= FIRE_FRAME_SHARE

    @property
    def smoke(self) -> bool:
        """A smoke frame: (moving, in video) smoke share >= SMOKE_FRAME_SHARE."""
        share = self.smoke_share if self.moving_smoke_share is None else self.moving_smoke_share
        return share >= SMOKE_FRAME_SHARE

    @property
    def dark(self) -> bool:
        """Mean grey level below DARK_MEAN."""
        return self.brightness < DARK_MEAN

    @property
    def blurred(self) -> bool:
        """Laplacian variance below BLUR_VAR."""
        return self.sharpness < BLUR_VAR


@dataclass(frozen=True)
class Share:
    """A share of frames with its Wilson interval."""

    k: int
    """Frames with the property."""
    n: int
    """Frames analysed."""
    low: float
    """Lower bound of the CI_LEVEL Wilson interval (0-1)."""
    high: float
    """Upper bound (0-1)."""

    @property
    def value(self) -> float:
        """k / n (``nan`` when n == 0)."""
        return self.k / self.n if self.n else math.nan


@dataclass(frozen=True)
class ClipFacts:
    """Facts of a clip (or of one still, then n == 1) from its per-frame facts."""

    frames: tuple[FrameFacts, ...]
    """Per-frame facts, in order."""
    fire: Share
    """Share of fire frames with its Wilson interval: the clip's fire score."""
    smoke: Share
    """Share of smoke frames with its Wilson interval: the clip's smoke score."""
    dark: Share
    """Share of dark frames."""
    blurred: Share
    """Share of blurred frames."""
    people: int | None
    """Median people count over the frames the detector ran on (rounded down); ``None`` when it never ran."""
    fire_smoke_size: str
    """``"none"`` (no fire or smoke frame), ``"small"`` or ``"large"`` (median fire+smoke share of the fire/smoke
    frames >= FIRE_SIZE_LARGE_SHARE)."""
    fire_smoke_median_share: float
    """Median (fire + smoke) share over the fire/smoke frames (0 when there are none)."""


def _resize(bgr: np.ndarray, width: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    if w == width:
        return bgr
    height = max(1, round(h * width / w))
    return cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA if w > width else cv2.INTER_LINEAR)


def _check(bgr: np.ndarray) -> None:
    if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError("expected an H x W x 3 uint8 BGR image, got "
                         f"{getattr(bgr, 'shape', type(bgr))} {getattr(bgr, 'dtype', '')}")
    if bgr.shape[0] < 8 or bgr.shape[1] < 8:
        raise ValueError(f"image too small: {bgr.shape[1]}x{bgr.shape[0]} px")


def fire_mask(bgr: np.ndarray) -> np.ndarray:
    """Fire-coloured pixels by the rule of Chen, Wu & Chiou (2004) with R_T = FIRE_R_T and S_T = FIRE_S_T.

    Parameters
    ----------
    bgr: H x W x 3 uint8 BGR image.

    Returns
    -------
    H x W bool array.

    Raises
    ------
    ValueError
        When ``bgr`` is not an H x W x 3 uint8 array of at least 8x8 px.
    """
    _check(bgr)
    b, g, r = (bgr[..., i].astype(np.int16) for i in range(3))
    s = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)[..., 1].astype(np.int32)
    return (r > FIRE_R_T) & (r >= g) & (g > b) & (s * FIRE_R_T >= (255 - r) * FIRE_S_T)


def smoke_mask(bgr: np.ndarray) -> np.ndarray:
    """Grey, smoke-coloured pixels by the rule of Chen, Yin, Huang & Ye (2006).

    Parameters
    ----------
    bgr: H x W x 3 uint8 BGR image.

    Returns
    -------
    H x W bool array: ``max - min of (R, G, B) <= SMOKE_ALPHA`` and ``SMOKE_I_MIN <= mean(R, G, B) <= SMOKE_I_MAX``.

    Raises
    ------
    ValueError
        As :func:`fire_mask`.
    """
    _check(bgr)
    img = bgr.astype(np.int16)
    spread = img.max(axis=2) - img.min(axis=2)
    intensity = img.sum(axis=2) / 3.0
    return (spread <= SMOKE_ALPHA) & (intensity >= SMOKE_I_MIN) & (intensity <= SMOKE_I_MAX)


def detect_people(bgr: np.ndarray, hog: cv2.HOGDescriptor | None = None) -> list[tuple[int, int, int, int, float]]:
    """People boxes from OpenCV's default HOG people detector (Dalal & Triggs 2005).

    Parameters
    ----------
    bgr: H x W x 3 uint8 BGR image.
    hog: a ``cv2.HOGDescriptor`` with the people SVM set (made by :func:`people_detector`); made here when ``None``
        (pass one to avoid rebuilding it for every frame).

    Returns
    -------
    list of ``(x, y, w, h, weight)`` in the input image's px, weight above HOG_MIN_WEIGHT, after NMS.

    Raises
    ------
    ValueError
        As :func:`fire_mask`.
    """
    _check(bgr)
    hog = hog or people_detector()
    small = _resize(bgr, HOG_WIDTH)
    scale = bgr.shape[1] / small.shape[1]
    rects, weights = hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
    if len(rects) == 0:
        return []
    weights = np.asarray(weights, dtype=float).reshape(-1)
    boxes = [tuple(int(v) for v in r) for r in rects]
    keep = cv2.dnn.NMSBoxes(boxes, weights.tolist(), HOG_MIN_WEIGHT, HOG_NMS_IOU)
    out = []
    for i in np.asarray(keep).reshape(-1):
        x, y, w, h = boxes[int(i)]
        out.append((round(x * scale), round(y * scale), round(w * scale), round(h * scale), float(weights[int(i)])))
    return out


def people_detector() -> cv2.HOGDescriptor:
    """A ``cv2.HOGDescriptor`` with OpenCV 4.x's default people SVM (``HOGDescriptor_getDefaultPeopleDetector``)."""
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def analyse_frame(bgr: np.ndarray, previous: np.ndarray | None = None, *, people: bool = True,
                  hog: cv2.HOGDescriptor | None = None) -> FrameFacts:
    """Facts of one frame (a still, or a video frame with the previous sampled frame for motion).

    Parameters
    ----------
    bgr: H x W x 3 uint8 BGR image.
    previous: the previous sampled frame (any size, H' x W' x 3 uint8 BGR) or ``None`` for a still: then the moving
        shares are ``None`` and the fire/smoke decisions use colour alone.
    people: run the HOG people detector (the slow part: ~0.1-0.3 s per 640 px frame).
    hog: a reusable detector from :func:`people_detector`.

    Returns
    -------
    FrameFacts

    Raises
    ------
    ValueError
        When ``bgr`` or ``previous`` is not an H x W x 3 uint8 image of at least 8x8 px.
    """
    _check(bgr)
    small = _resize(bgr, ANALYSIS_WIDTH)
    fire = fire_mask(small)
    smoke = smoke_mask(small)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    moving_fire = moving_smoke = None
    if previous is not None:
        _check(previous)
        prev = cv2.resize(previous, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
        diff = _stabilised_diff(grey, cv2.cvtColor(prev, cv2.COLOR_BGR2GRAY))
        moving_fire = float(np.mean(_opened(fire & (diff > FLICKER_DIFF), FIRE_OPEN_PX)))
        moving_smoke = float(np.mean(_opened(smoke & (diff > SMOKE_DIFF), SMOKE_OPEN_PX)))
    return FrameFacts(
        fire_share=float(np.mean(fire)),
        moving_fire_share=moving_fire,
        smoke_share=float(np.mean(smoke)),
        moving_smoke_share=moving_smoke,
        people=len(detect_people(bgr, hog)) if people else None,
        brightness=float(grey.mean()),
        sharpness=float(cv2.Laplacian(grey, cv2.CV_64F).var()),
    )


def _opened(mask: np.ndarray, size: int) -> np.ndarray:
    """Morphological opening of an H x W bool mask with a size x size square: removes slivers thinner than ``size``
    px (edges that 'move' by a residual shift, the burned-in timestamp's digits) and keeps blobs."""
    kernel = np.ones((size, size), np.uint8)
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)


def _stabilised_diff(grey: np.ndarray, prev_grey: np.ndarray) -> np.ndarray:
    """|grey - prev_grey| (H x W uint8) after undoing a global camera shift and smoothing both.

    A hand-held phone shakes: without this, every edge of a brick wall "moves". The global translation is estimated by
    phase correlation (``cv2.phaseCorrelate``; Kuglin & Hines 1975) and the previous frame shifted onto this one
    (border replicated); both are smoothed with a 5x5 Gaussian first, so sub-pixel residuals at edges stay below
    FLICKER_DIFF. Only translation is compensated (no rotation or zoom).
    """
    a = cv2.GaussianBlur(grey, (5, 5), 0)
    b = cv2.GaussianBlur(prev_grey, (5, 5), 0)
    (dx, dy), _response = cv2.phaseCorrelate(b.astype(np.float32), a.astype(np.float32))
    if abs(dx) > MAX_SHIFT_PX or abs(dy) > MAX_SHIFT_PX:
        dx = dy = 0.0  # a jump this large is a cut or a pan, not shake: compare unshifted
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    b = cv2.warpAffine(b, shift, (a.shape[1], a.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    return cv2.absdiff(a, b)


def wilson(k: int, n: int, level: float = CI_LEVEL) -> Share:
    """``k`` of ``n`` with its Wilson score interval (scipy ``binomtest(...).proportion_ci(method="wilson")``).

    Raises
    ------
    ValueError
        When not ``0 <= k <= n``. With ``n == 0`` the interval is (0, 1).
    """
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return Share(0, 0, 0.0, 1.0)
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return Share(k, n, float(ci.low), float(ci.high))


def summarise(frames: Sequence[FrameFacts]) -> ClipFacts:
    """Per-clip facts from per-frame facts (see the module docstring).

    Raises
    ------
    ValueError
        When ``frames`` is empty.
    """
    frames = tuple(frames)
    if not frames:
        raise ValueError("no frames to summarise")
    n = len(frames)
    counts = [f.people for f in frames if f.people is not None]
    hot = [f.fire_share + f.smoke_share for f in frames if f.fire or f.smoke]
    median_hot = float(np.median(hot)) if hot else 0.0
    size = "none" if not hot else ("large" if median_hot >= FIRE_SIZE_LARGE_SHARE else "small")
    return ClipFacts(
        frames=frames,
        fire=wilson(sum(f.fire for f in frames), n),
        smoke=wilson(sum(f.smoke for f in frames), n),
        dark=wilson(sum(f.dark for f in frames), n),
        blurred=wilson(sum(f.blurred for f in frames), n),
        people=int(np.median(counts)) if counts else None,
        fire_smoke_size=size,
        fire_smoke_median_share=median_hot,
    )


def analyse_frames(frames: Iterable[np.ndarray], *, people_every: int = 3) -> ClipFacts:
    """Facts of a sequence of video frames (each H x W x 3 uint8 BGR), already sampled (e.g. at <= 3 fps).

    ``people_every``: run the HOG detector on every n-th frame (0: never). The first frame has no predecessor and
    is used only as the motion reference, so a clip of N frames gives N - 1 frame facts (N == 1: one still).

    Raises
    ------
    ValueError
        When there are no frames or a frame is not an H x W x 3 uint8 image.
    """
    hog = people_detector() if people_every else None
    out: list[FrameFacts] = []
    previous: np.ndarray | None = None
    only: np.ndarray | None = None
    for i, frame in enumerate(frames):
        if previous is None:
            previous = only = frame
            continue
        run = bool(people_every) and (len(out) % people_every == 0)
        out.append(analyse_frame(frame, previous, people=run, hog=hog))
        previous = frame
    if not out:
        if only is None:
            raise ValueError("no frames")
        out.append(analyse_frame(only, None, people=bool(people_every), hog=hog))
    return summarise(out)


def analyse_still(bgr: np.ndarray, *, people: bool = True) -> ClipFacts:
    """Facts of one photo (H x W x 3 uint8 BGR), colour only (no motion); n == 1 in every share."""
    return summarise([analyse_frame(bgr, None, people=people)])


def read_frames(path: Path, max_fps: float = 3.0, max_seconds: float | None = None) -> list[np.ndarray]:
    """Decode a video file with PyAV and keep at most ``max_fps`` frames per second (by presentation time).

    Returns
    -------
    list of H x W x 3 uint8 BGR frames.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When ``max_fps`` is not positive or the file has no video stream.
    av.error.FFmpegError
        When the file cannot be decoded.
    """
    import av  # I/O edge: only this function reads files

    if max_fps <= 0:
        raise ValueError(f"max_fps must be > 0, got {max_fps}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    frames: list[np.ndarray] = []
    next_t = 0.0
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else len(frames) / max_fps
            if max_seconds is not None and t > max_seconds:
                break
            if t + 1e-6 >= next_t:
                frames.append(frame.to_ndarray(format="bgr24"))
                next_t = t + 1.0 / max_fps
    return frames


def analyse_video(path: Path, *, max_fps: float = 3.0, people_every: int = 3,
                  max_seconds: float | None = None) -> ClipFacts:
    """Read ``path`` at <= ``max_fps`` (:func:`read_frames`) and analyse it (:func:`analyse_frames`).

    Raises
    ------
    As :func:`read_frames` and :func:`analyse_frames`.
    """
    return analyse_frames(read_frames(path, max_fps, max_seconds), people_every=people_every)
