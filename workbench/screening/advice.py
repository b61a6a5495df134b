"""Triage advice: an urgency suggestion (``spoed`` > ``nu`` > ``later``) per report, with its reasons. Pure.

An *advice*, for studying automation bias (issue 11), not a decision. The most urgent rule that fires wins; every
fired rule is a reason. Rules are our own (no validated triage protocol such as the Dutch NTS or MPDS is encoded);
they are written to be readable and easy to change, not clinically validated.

=====  ==========================================================================  =======
rule   condition                                                                   urgency
=====  ==========================================================================  =======
T1     injury reported in the transcript (``injuries`` is True)                    spoed
T2     weapon or violence words (:data:`THREAT_WORDS`)                             spoed
T3     fire/smoke mentioned and people (possibly) inside or trapped                spoed
T4     fire/smoke said to be large                                                 spoed
M1     images: large fire/smoke, fire-or-smoke frame share lower bound >=          spoed
       :data:`MEDIA_SURE_LOW`
T5     fire or smoke mentioned                                                     nu
T6     vehicles and a collision word (:data:`COLLISION_WORDS`): traffic hazard     nu
M2     images: fire or smoke frames, lower bound >= :data:`MEDIA_SEEN_LOW`         nu
—      none of the above                                                           later
=====  ==========================================================================  =======

Media findings are optional; with ``media=None`` only the transcript rules apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.domain.taxonomy import Urgency
from workbench.screening.image import ClipFacts
from workbench.screening.transcript import Evidence, TranscriptFacts

THREAT_WORDS: tuple[str, ...] = (
    "knife", "gun", "weapon", "shooting", "shot", "stabbed", "fighting", "attacking",
    "mes", "wapen", "pistool", "vuurwapen", "schiet", "schieten", "neergestoken", "gestoken", "vechten", "vechtpartij",
)
"""Words of violence or a weapon (English, Dutch)."""

COLLISION_WORDS: tuple[str, ...] = (
    "crash", "crashed", "collision", "collided", "bumped", "hit", "accident", "ran into", "drove into",
    "botsing", "gebotst", "aanrijding", "aangereden", "ongeluk", "ongeval", "ingereden", "klap",
)
"""Words of a collision (English, Dutch); T6 needs one besides a vehicle (a stolen bike is no traffic hazard)."""

MEDIA_SURE_LOW = 0.5
"""M1: the Wilson lower bound of the fire-or-smoke frame share must reach 0.5 (more than half the frames, with 95 %
confidence) before a large image fire makes the advice ``spoed``. A single still (lower bound 0.21) never does."""
MEDIA_SEEN_LOW = 0.2
"""M2: lower bound of 0.2 for "the images show fire or smoke" (``nu``). A single still with fire reaches 0.21."""


@dataclass(frozen=True)
class Reason:
    """One fired rule."""

    rule: str
    """Rule id of the module's table (T1..T6, M1, M2)."""
    urgency: Urgency
    """The urgency this rule asks for."""
    text: str
    """What the rule saw, with the evidence (line index and words, or the image shares)."""


@dataclass(frozen=True)
class Advice:
    """An urgency suggestion with the reasons. ``reasons`` is empty when nothing fired (then ``later``)."""

    urgency: Urgency
    """The most urgent of the fired rules' urgencies, ``later`` when none fired."""
    reasons: tuple[Reason, ...]
    """Every fired rule, most urgent first, then in table order."""


def _ev(evidence: tuple[Evidence, ...]) -> str:
    return "; ".join(f"line {e.line}: '{e.words}'" for e in evidence)


def _words(words: tuple[str, ...], lines: tuple[str, ...]) -> tuple[Evidence, ...]:
    pattern = r"(?<![\w'])(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w'])"
    return tuple(Evidence(i, m.group(0)) for i, line in enumerate(lines) for m in re.finditer(pattern, line.lower()))


def advise(speech: TranscriptFacts, media: ClipFacts | None = None) -> Advice:
    """Suggest an urgency for one report from its transcript facts and, when given, its image facts.

    Parameters
    ----------
    speech: facts from :func:`workbench.screening.transcript.extract_facts`.
    media: facts of the report's clip or photo from :mod:`workbench.screening.image`, or ``None``.

    Returns
    -------
    Advice
    """
    reasons: list[Reason] = []
    if speech.injuries is not None and speech.injuries.value is True:
        reasons.append(Reason("T1", Urgency.SPOED, f"injury reported ({_ev(speech.injuries.evidence)})"))
    threats = _words(THREAT_WORDS, speech.lines)
    if threats:
        reasons.append(Reason("T2", Urgency.SPOED, f"weapon or violence ({_ev(threats)})"))
    if speech.fire is not None and speech.inside is not None:
        reasons.append(Reason("T3", Urgency.SPOED, f"fire/smoke with people possibly inside "
                              f"({_ev(speech.fire.evidence[:1] + speech.inside.evidence)})"))
    if speech.fire_size is not None and speech.fire_size.value == "large":
        reasons.append(Reason("T4", Urgency.SPOED, f"large fire/smoke said ({_ev(speech.fire_size.evidence)})"))
    if media is not None:
        either = media.fire if media.fire.low >= media.smoke.low else media.smoke
        kind = "fire" if either is media.fire else "smoke"
        if media.fire_smoke_size == "large" and either.low >= MEDIA_SURE_LOW:
            reasons.append(Reason("M1", Urgency.SPOED, f"images: large fire/smoke ({kind} frames {either.k}/"
                                  f"{either.n}, 95 % lower bound {either.low:.2f})"))
    if speech.fire is not None:
        reasons.append(Reason("T5", Urgency.NU, f"fire or smoke mentioned ({_ev(speech.fire.evidence)})"))
    collision = _words(COLLISION_WORDS, speech.lines)
    if speech.vehicles is not None and collision:
        reasons.append(Reason("T6", Urgency.NU, f"vehicles in a collision "
                              f"({_ev(collision + speech.vehicles.evidence[:1])})"))
    if media is not None and either.low >= MEDIA_SEEN_LOW and media.fire_smoke_size != "none":
        reasons.append(Reason("M2", Urgency.NU, f"images: {kind} ({kind} frames {either.k}/{either.n}, 95 % lower "
                              f"bound {either.low:.2f})"))
    reasons.sort(key=lambda r: r.urgency.priority)  # stable: table order within one urgency
    urgency = reasons[0].urgency if reasons else Urgency.LATER
    return Advice(urgency, tuple(reasons))
