"""Link proposals between reports: are two reports about one incident? A score in [0, 1] with readable reasons.

Pure (no I/O, no state); :func:`colour_histogram` is the only OpenCV step and runs on an image the caller already
decoded. The ingest (``workbench.ingest.automation``) scores each new report against every other report of the
session as evidence arrives, and proposes a link (``link.proposed``) the first time a pair reaches
:data:`PROPOSE_AT`. A proposal is an *aid* for the dispatcher, never ground truth.

Score = sum over components of weight x component score, where a component without evidence counts as 0.5
(uninformative: it neither argues for nor against a link), so the score is always on the same scale whatever
evidence has arrived.

==========  ======  ==========================================================================================
component   weight  component score and why this weight
==========  ======  ==========================================================================================
distance    0.35    ``exp(-d / 400 m)`` between the callers' positions (caller geolocation > photo GPS > the
                    network location that the scenario's caller position stands in for). Callers of one incident
                    stand within sight of it (tens to a few hundred metres); two incidents of the same kind rarely
                    are that close in the same minutes, so distance separates best and weighs most. 400 m allows
                    for a mobile network location's error in a town.
type        0.20    1 same incident type, 0 different (the dispatcher's classification; before that, the type the
                    transcript suggests: fire/smoke words -> fire, vehicles + collision words -> traffic
                    accident). Different types almost always mean different incidents, but many incidents share
                    a type, so it argues against more than for.
text        0.20    cosine similarity of the transcripts' content words plus screening facts (fire, vehicles,
                    injuries, people inside; ``workbench.screening.transcript``); at least 0.9 when both name
                    the same street. Callers describe the same scene with different words, so this is noisy;
                    a shared street name is strong.
image       0.15    ``1 - Bhattacharyya distance`` of hue-saturation histograms of the reports' images. Similar
                    colours mean similar scenes, not the same scene (every fire is orange): weak on its own,
                    which the look-alike fire of ``experiments/multi-caller`` demonstrates.
time        0.10    ``exp(-gap / 900 s)`` between the reports' arrivals. Reports of one incident cluster in the
                    first minutes, but in a busy control room many reports arrive in the same minutes, so time
                    alone says little.
==========  ======  ==========================================================================================

The weights are our design, set from the reasoning above and checked on the designed multi-caller scenario (every
true pair proposed, the look-alike fire and the collision not); they are not fitted to data. A study should report
them (they are in every ``link.proposed`` via the component scores) and can vary them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from workbench.screening.advice import COLLISION_WORDS
from workbench.screening.transcript import TranscriptFacts, extract_facts

WEIGHTS: dict[str, float] = {"distance": 0.35, "type": 0.20, "text": 0.20, "image": 0.15, "time": 0.10}
"""Weight per component (sum 1); see the module table for the reasons."""
PROPOSE_AT = 0.6
"""Score from which a pair is proposed as one incident. With no evidence but arrival time the score stays below
``0.1 + 0.9 x 0.5 = 0.55``: time alone never proposes."""
DISTANCE_SCALE_M = 400.0
"""Distance at which the distance score has fallen to 1/e, metres."""
TIME_SCALE_S = 900.0
"""Arrival gap at which the time score has fallen to 1/e, seconds."""
SAME_STREET_TEXT = 0.9
"""Text score floor when both transcripts name the same street."""
MISSING = 0.5
"""What a component without evidence contributes (times its weight)."""
EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), metres, for the haversine distance."""
HIST_BINS = (30, 32)
"""Hue (of OpenCV's 0-179) and saturation bins of :func:`colour_histogram`."""

STOP_WORDS: frozenset[str] = frozenset(
    """a an and are at be but by can coming from for have here his her i i'm is it it's its just my of on or our
    out please so some that the their there they think this to too up very was we were what with you your
    de het een en is in op van er ik je het dat die daar hier niet wel met voor naar bij uit zijn ben heb hebben
    maar ook nog dan als zo""".split()
)
"""English and Dutch function words left out of the text comparison."""


@dataclass(frozen=True)
class ReportFeatures:
    """What is known about one report when it is compared.

    ``t_s`` is its arrival, seconds on any clock shared by the reports compared (POSIX seconds in the ingest);
    ``position`` ``(lat, lon)`` in degrees WGS84 or None; ``incident_type`` a taxonomy key or empty; ``lines`` the
    caller's lines so far; ``histogram`` a normalised :func:`colour_histogram` (flattened) or None.
    """

    call_id: str
    t_s: float
    position: tuple[float, float] | None = None
    position_source: str = ""
    incident_type: str = ""
    incident_type_source: str = ""
    lines: tuple[str, ...] = ()
    histogram: tuple[float, ...] | None = None


@dataclass(frozen=True)
class LinkScore:
    """The score of one pair: ``score`` in [0, 1], each component's score (None: no evidence) and the reasons."""

    score: float
    components: dict[str, float | None]
    reasons: tuple[str, ...]

    @property
    def proposed(self) -> bool:
        """True when the score reaches :data:`PROPOSE_AT`."""
        return self.score >= PROPOSE_AT


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two ``(lat, lon)`` points in degrees WGS84, metres (spherical Earth)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def colour_histogram(bgr: np.ndarray) -> tuple[float, ...]:
    """Hue-saturation histogram of an 8-bit BGR image (``HIST_BINS``, summing to 1), flattened.

    Raises ``ValueError`` for anything but an ``(h, w, 3)`` uint8 array.
    """
    import cv2

    if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError("colour_histogram expects an (h, w, 3) uint8 BGR image")
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(HIST_BINS), [0, 180, 0, 256]).ravel()
    total = float(hist.sum())
    return tuple(float(v) / total for v in hist) if total else tuple(0.0 for _ in hist)


def image_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """``1 - Bhattacharyya distance`` of two normalised histograms, in [0, 1] (1: identical colour distributions)."""
    p, q = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"histograms differ in size ({p.size} vs {q.size}); make both with colour_histogram")
    bc = float(np.sum(np.sqrt(p * q)))
    return float(1.0 - math.sqrt(max(0.0, 1.0 - min(1.0, bc))))


def inferred_type(facts: TranscriptFacts) -> str:
    """The incident type a transcript suggests (``fire``, ``traffic_accident``) or empty when it suggests none."""
    if facts.fire is not None:
        return "fire"
    text = " ".join(facts.lines).lower()
    if facts.vehicles is not None and any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in COLLISION_WORDS):
        return "traffic_accident"
    return ""


def _tokens(facts: TranscriptFacts) -> Counter[str]:
    words = re.findall(r"[a-zà-ÿ']+", " ".join(facts.lines).lower())
    bag = Counter(w for w in words if len(w) > 2 and w not in STOP_WORDS)
    for name in ("fire", "vehicles", "injuries", "inside"):
        if getattr(facts, name) is not None:
            bag[f"fact:{name}"] += 2  # one fact said in different words ("smoke", "flames") still matches
    return bag


def _street(facts: TranscriptFacts) -> str:
    if facts.location is None:
        return ""
    return str(facts.location.value).split(" ")[0].lower()


def text_similarity(a: TranscriptFacts, b: TranscriptFacts) -> tuple[float, str]:
    """Similarity of two transcripts in [0, 1] and a reason: cosine of content words and facts, at least
    :data:`SAME_STREET_TEXT` when both name the same street."""
    ta, tb = _tokens(a), _tokens(b)
    dot = sum(ta[w] * tb[w] for w in ta.keys() & tb.keys())
    norm = math.sqrt(sum(v * v for v in ta.values())) * math.sqrt(sum(v * v for v in tb.values()))
    cosine = dot / norm if norm else 0.0
    shared = sorted(w.replace("fact:", "") + (" (fact)" if w.startswith("fact:") else "") for w in ta.keys() & tb.keys())
    sa, sb = _street(a), _street(b)
    if sa and sa == sb:
        return max(cosine, SAME_STREET_TEXT), f"both name {a.location.value if a.location else sa}"
    words = ", ".join(shared[:6]) or "nothing"
    street = f"; different streets ({sa} / {sb})" if sa and sb else ""
    return cosine, f"shared words/facts: {words}{street}"


def score_link(a: ReportFeatures, b: ReportFeatures) -> LinkScore:
    """Score whether reports ``a`` and ``b`` are about one incident (see the module table).

    Returns a :class:`LinkScore`; the reasons name every component with evidence, its value and its score.
    """
    components: dict[str, float | None] = {}
    reasons: list[str] = []
    gap = abs(a.t_s - b.t_s)
    components["time"] = math.exp(-gap / TIME_SCALE_S)
    reasons.append(f"arrived {gap / 60:.1f} min apart (time {components['time']:.2f})")
    if a.position is not None and b.position is not None:
        d = haversine_m(a.position, b.position)
        components["distance"] = math.exp(-d / DISTANCE_SCALE_M)
        sources = "/".join(sorted({a.position_source or "?", b.position_source or "?"}))
        reasons.append(f"callers {d:.0f} m apart ({sources}; distance {components['distance']:.2f})")
    else:
        components["distance"] = None
    if a.incident_type and b.incident_type:
        same = a.incident_type == b.incident_type
        components["type"] = 1.0 if same else 0.0
        how = "/".join(sorted({a.incident_type_source or "?", b.incident_type_source or "?"}))
        what = f"same type {a.incident_type}" if same else f"types differ: {a.incident_type} vs {b.incident_type}"
        reasons.append(f"{what} ({how})")
    else:
        components["type"] = None
    if a.lines and b.lines:
        score, why = text_similarity(extract_facts(list(a.lines)), extract_facts(list(b.lines)))
        components["text"] = score
        reasons.append(f"transcripts: {why} (text {score:.2f})")
    else:
        components["text"] = None
    if a.histogram is not None and b.histogram is not None:
        components["image"] = image_similarity(a.histogram, b.histogram)
        reasons.append(f"image colours alike {components['image']:.2f} (similar colours, not proof of one scene)")
    else:
        components["image"] = None
    missing = [k for k, v in components.items() if v is None]
    if missing:
        reasons.append(f"no evidence yet: {', '.join(missing)}")
    total = sum(WEIGHTS[k] * (MISSING if v is None else v) for k, v in components.items())
    return LinkScore(min(1.0, max(0.0, total)), components, tuple(reasons))
