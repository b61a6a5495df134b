"""Possible speech/image disagreement, aspect by aspect. Pure: no I/O, no state.

**Never ground truth.** These are *possible* disagreements between two automatic, error-prone screenings (keyword
rules on the transcript, colour/motion rules on the images). A score of 1 means "the screenings contradict each other
and the image screening was sure of its own finding", not "the caller is wrong". The designed disagreement of a
scenario lives in its ground truth (``workbench.domain``); this module is a candidate automated aid to study.

Aspects are the keys of :data:`workbench.domain.taxonomy.DISAGREEMENT_ASPECTS`. Rules (score in [0, 1]):

==================  ===============================================================================================
``people``          speech count ``s`` (transcript) vs the clip's median HOG count ``i``:
                    ``|s - i| / max(s, i)``; halved when the caller says people are inside or trapped (a camera
                    outside cannot see them). Not comparable when either is unknown.
``fire_smoke_size`` speech level (not mentioned 0 / small 1 / large 2; mentioned without a size counts only as
                    "present") vs image level (none 0 / small 1 / large 2, :attr:`ClipFacts.fire_smoke_size`):
                    ``|speech - image| / 2`` (presence only: 1 when they differ), times the image's certainty: the
                    Wilson lower bound of its fire-or-smoke frame share when it sees fire or smoke, one minus the
                    upper bound when it sees none. A single still (n = 1) therefore weighs at most 0.21.
                    Not mentioned and not seen: 0.
``vehicle``         not comparable: the images are not screened for vehicles in this version.
``injuries``        not comparable: not screened in images.
``location``        not comparable: not screened in images (no geolocation of images here).
``other``           darkness: when the caller mentions darkness, ``1 - upper bound`` of the dark frame share
                    (the image is clearly not dark); when the caller does not, not comparable (silence is no
                    claim). Blur is added as evidence (a blurred image weakens every image finding).
==================  ===============================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.domain.taxonomy import DISAGREEMENT_ASPECTS
from workbench.screening.image import ClipFacts
from workbench.screening.transcript import TranscriptFacts

_LEVEL = {"none": 0, "small": 1, "large": 2}

INSIDE_FACTOR = 0.5
"""Factor on the people score when the caller says people are inside or trapped (our convention: half, because
the camera's count is then expected to be lower; not calibrated)."""


@dataclass(frozen=True)
class PossibleDisagreement:
    """A possible speech/image disagreement on one aspect. Not ground truth."""

    aspect: str
    """A key of DISAGREEMENT_ASPECTS."""
    possible_score: float | None
    """0 (the screenings agree) .. 1 (they contradict and the image screening is sure); ``None``: not comparable."""
    evidence: tuple[str, ...]
    """Human-readable reasons: what the transcript said (line index, words) and what the images showed."""


def possible_disagreements(speech: TranscriptFacts, image: ClipFacts | None) -> dict[str, PossibleDisagreement]:
    """Compare transcript facts with image facts into a possible disagreement per aspect (see the module rules).

    Parameters
    ----------
    speech: facts from :func:`workbench.screening.transcript.extract_facts`.
    image: facts from :mod:`workbench.screening.image` (a clip or a still), or ``None`` (no media: nothing is
        comparable).

    Returns
    -------
    dict
        ``{aspect: PossibleDisagreement}`` for every key of DISAGREEMENT_ASPECTS, in that order.
    """
    out = {aspect: PossibleDisagreement(aspect, None, ("no images",)) for aspect in DISAGREEMENT_ASPECTS}
    if image is None:
        return out
    out["people"] = _people(speech, image)
    out["fire_smoke_size"] = _fire(speech, image)
    for aspect in ("vehicle", "injuries", "location"):
        out[aspect] = PossibleDisagreement(aspect, None, ("not screened in images",))
    out["other"] = _other(speech, image)
    return out


def _said(fact_evidence: tuple) -> str:
    return "; ".join(f"line {e.line}: '{e.words}'" for e in fact_evidence)


def _people(speech: TranscriptFacts, image: ClipFacts) -> PossibleDisagreement:
    if speech.people is None or image.people is None:
        why = "caller gave no number of people" if speech.people is None else "people detector not run"
        return PossibleDisagreement("people", None, (why,))
    s, i = int(speech.people.value), image.people  # type: ignore[call-overload]
    score = abs(s - i) / max(s, i) if max(s, i) else 0.0
    evidence = [f"caller: {s} ({_said(speech.people.evidence)})", f"image: median {i} people (HOG)"]
    if speech.inside is not None and score:
        score *= INSIDE_FACTOR
        evidence.append(f"caller says inside/trapped ({_said(speech.inside.evidence)}): camera may not see them")
    return PossibleDisagreement("people", score, tuple(evidence))


def _fire(speech: TranscriptFacts, image: ClipFacts) -> PossibleDisagreement:
    seen = image.fire_smoke_size
    either = image.fire if image.fire.k >= image.smoke.k else image.smoke
    certainty = either.low if seen != "none" else 1.0 - max(image.fire.high, image.smoke.high)
    evidence = [f"image: {seen} (fire frames {image.fire.k}/{image.fire.n}, smoke frames "
                f"{image.smoke.k}/{image.smoke.n}, median fire+smoke share {image.fire_smoke_median_share:.3f}); "
                f"certainty {certainty:.2f}"]
    if speech.fire is None:
        said = 0
        evidence.insert(0, "caller: no fire or smoke mentioned")
    elif speech.fire_size is None:
        evidence.insert(0, f"caller: fire/smoke mentioned without size ({_said(speech.fire.evidence)})")
        return PossibleDisagreement("fire_smoke_size", (0.0 if seen != "none" else 1.0) * certainty, tuple(evidence))
    else:
        said = _LEVEL[str(speech.fire_size.value)]
        evidence.insert(0, f"caller: {speech.fire_size.value} ({_said(speech.fire_size.evidence)})")
    distance = abs(said - _LEVEL[seen]) / 2
    return PossibleDisagreement("fire_smoke_size", distance * certainty, tuple(evidence))


def _other(speech: TranscriptFacts, image: ClipFacts) -> PossibleDisagreement:
    evidence = [f"image: dark frames {image.dark.k}/{image.dark.n}"]
    if image.blurred.k:
        evidence.append(f"image: blurred frames {image.blurred.k}/{image.blurred.n} (weakens image findings)")
    if speech.darkness is None:
        return PossibleDisagreement("other", None, ("caller did not mention darkness", *evidence))
    evidence.insert(0, f"caller: dark ({_said(speech.darkness.evidence)})")
    return PossibleDisagreement("other", 1.0 - image.dark.high, tuple(evidence))
