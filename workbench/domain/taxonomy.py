"""The fixed vocabularies of the workbench, pinned in one place.

Urgency classes follow the Dutch police chatbot pilot (``spoed`` > ``nu`` > ``later``); the RSME scale follows
Zijlstra (1993), *Efficiency in work behaviour: a design approach for modern tools*, Delft University Press,
anchor positions as given in DESIGN.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Urgency(str, enum.Enum):
    """Urgency class of a report. ``priority`` 1 is most urgent."""

    SPOED = "spoed"
    NU = "nu"
    LATER = "later"

    @property
    def priority(self) -> int:
        """Numeric priority: spoed=1, nu=2, later=3."""
        return {Urgency.SPOED: 1, Urgency.NU: 2, Urgency.LATER: 3}[self]


def triage_change(before: Urgency | None, after: Urgency | None) -> str:
    """Direction of an urgency change: ``"up"`` (more urgent), ``"down"``, ``"none"``, or ``""`` if either is unknown."""
    if before is None or after is None:
        return ""
    if after.priority < before.priority:
        return "up"
    if after.priority > before.priority:
        return "down"
    return "none"


class Modality(str, enum.Enum):
    """Block condition: which media the dispatcher receives besides the caller's voice."""

    AUDIO = "audio"
    PHOTO = "photo"
    VIDEO = "video"


INCIDENT_TYPES: dict[str, str] = {
    "fire": "Fire (building, vehicle, outdoor)",
    "traffic_accident": "Traffic accident",
    "medical": "Medical emergency",
    "violence": "Violence or threat",
    "theft": "Theft or burglary",
    "hazardous_materials": "Hazardous materials",
    "water_rescue": "Water rescue",
    "public_order": "Public order / nuisance",
    "other": "Other",
}
"""Incident types a dispatcher can choose; key -> label shown in the console."""

INFORMATION_ITEMS: dict[str, str] = {
    "location": "Exact location / address",
    "people_involved": "Number of people involved",
    "injuries": "Injuries",
    "trapped": "People trapped or inside",
    "fire_size": "Size of fire or smoke",
    "hazards": "Hazards (gas, chemicals, power lines)",
    "vehicles": "Vehicles involved",
    "suspect": "Suspect description",
    "direction": "Direction of flight",
    "caller_safe": "Caller is safe",
    "callback_number": "Callback number",
    "animals": "Animals involved",
}
"""Information items a scenario may require the dispatcher to gather; key -> checklist label."""

DISAGREEMENT_ASPECTS: dict[str, str] = {
    "people": "Number of people",
    "fire_smoke_size": "Fire or smoke size",
    "vehicle": "Vehicle",
    "injuries": "Injuries",
    "location": "Location",
    "other": "Other",
}
"""Aspects on which what the caller says and what the image shows can disagree."""


@dataclass(frozen=True)
class RsmeAnchor:
    """One verbal anchor of the Rating Scale Mental Effort: ``position`` on the 0-150 scale and its label."""

    position: int
    label: str


RSME_MIN = 0
RSME_MAX = 150
RSME_ANCHORS: tuple[RsmeAnchor, ...] = (
    RsmeAnchor(2, "absolutely no effort"),
    RsmeAnchor(13, "almost no effort"),
    RsmeAnchor(25, "a little effort"),
    RsmeAnchor(37, "some effort"),
    RsmeAnchor(57, "rather much effort"),
    RsmeAnchor(71, "considerable effort"),
    RsmeAnchor(85, "great effort"),
    RsmeAnchor(102, "very great effort"),
    RsmeAnchor(112, "extreme effort"),
)
"""RSME anchors (Zijlstra 1993), position on the 0-150 scale and label."""


def validate_rsme(value: float) -> float:
    """Return ``value`` if it is a valid RSME rating (0-150 inclusive); raise ``ValueError`` otherwise."""
    if not (RSME_MIN <= value <= RSME_MAX):
        raise ValueError(f"RSME must be between {RSME_MIN} and {RSME_MAX}, got {value}")
    return value
