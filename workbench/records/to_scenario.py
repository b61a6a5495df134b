"""Turn a time window of real dispatch records into a scenario file (TOML text) a trainer can replay.

``records_to_scenario(records, start, end)`` keeps the records with ``start <= timestamp < end`` in time order and
writes one call per record: ``arrival_s`` is the record's offset from ``start`` in seconds (times ``time_scale``),
``truth.location`` is ``ADDRESS, TOWNSHIP`` with ``truth.lat``/``truth.lon`` (degrees WGS84), the incident type and
urgency come from :data:`SUBTYPE_MAP` (falling back to :data:`CATEGORY_DEFAULT`), the caller says one line built from
the record, and the media are builtin demo media chosen by incident type (:data:`MEDIA_BY_TYPE`).

Urgency mapping (the records carry none; this is our documented judgement, ``spoed`` = life or property at
immediate risk, ``nu`` = needs a unit now, ``later`` = can wait). Unlisted subtypes take the category default.

=========================================  ==========================  =======
Montgomery County subtype (any category)   incident type               urgency
=========================================  ==========================  =======
CARDIAC ARREST, CARDIAC EMERGENCY,         medical                     spoed
RESPIRATORY EMERGENCY, UNCONSCIOUS /
UNRESPONSIVE SUBJECT, CVA/STROKE,
HEMORRHAGING, OVERDOSE, SEIZURES, CHOKING,
POISONING, AMPUTATION, ALLERGIC REACTION,
DIABETIC EMERGENCY, ALTERED MENTAL STATUS
GENERAL WEAKNESS, FEVER, DEHYDRATION,      medical                     later
NAUSEA/VOMITING, DIZZINESS, BACK
PAINS/INJURY, ANIMAL BITE
other EMS subtypes (FALL VICTIM, ...)      medical                     nu
SHOOTING, STABBING                         violence                    spoed
ASSAULT VICTIM                             violence                    nu
VEHICLE ACCIDENT                           traffic_accident            nu
PLANE CRASH                                traffic_accident            spoed
BUILDING FIRE, VEHICLE FIRE                fire                        spoed
FIRE ALARM, WOODS/FIELD FIRE, APPLIANCE    fire                        nu
FIRE, ELECTRICAL FIRE OUTSIDE, UNKNOWN
TYPE FIRE
TRASH/DUMPSTER FIRE, FIRE INVESTIGATION    fire                        later
GAS-ODOR/LEAK                              hazardous_materials         spoed
CARBON MONOXIDE DETECTOR, VEHICLE          hazardous_materials         nu
LEAKING FUEL
RESCUE - WATER                             water_rescue                spoed
RESCUE - TECHNICAL                         other                       spoed
RESCUE - ELEVATOR, RESCUE - GENERAL        other                       nu
FIRE POLICE NEEDED                         public_order                later
DISABLED VEHICLE, ROAD OBSTRUCTION,        other                       later
HAZARDOUS ROAD CONDITIONS, DEBRIS/FLUIDS
ON HIGHWAY, FIRE SPECIAL SERVICE, ...
category default EMS / Fire / Traffic      medical / fire / other      nu / nu / later
=========================================  ==========================  =======

Errors: :class:`RecordsWindowError` (a ``ValueError``) for an empty or inverted window.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from workbench.domain.taxonomy import INCIDENT_TYPES, Urgency
from workbench.records.montco import CallRecord

RECORDS_TIMEZONE = "America/New_York"
"""IANA name of the wall clock of the Montgomery County records; aware window bounds are converted to it."""


class RecordsWindowError(ValueError):
    """A time window that selects no records, or whose end is not after its start."""


@dataclass(frozen=True)
class Mapping:
    """Incident type (key of ``INCIDENT_TYPES``) and urgency for a record subtype."""

    incident_type: str
    urgency: Urgency


_S, _N, _L = Urgency.SPOED, Urgency.NU, Urgency.LATER


def _table(incident_type: str, urgency: Urgency, subtypes: str) -> dict[str, Mapping]:
    return {s.strip(): Mapping(incident_type, urgency) for s in subtypes.split(";") if s.strip()}


SUBTYPE_MAP: dict[str, Mapping] = {
    **_table("medical", _S, "CARDIAC ARREST; CARDIAC EMERGENCY; RESPIRATORY EMERGENCY; UNCONSCIOUS SUBJECT; "
             "UNRESPONSIVE SUBJECT; CVA/STROKE; HEMORRHAGING; OVERDOSE; SEIZURES; CHOKING; POISONING; AMPUTATION; "
             "ALLERGIC REACTION; DIABETIC EMERGENCY; ALTERED MENTAL STATUS"),
    **_table("medical", _L, "GENERAL WEAKNESS; FEVER; DEHYDRATION; NAUSEA/VOMITING; DIZZINESS; BACK PAINS/INJURY; "
             "ANIMAL BITE"),
    **_table("medical", _N, "BURN VICTIM; FALL VICTIM; HEAD INJURY; SUBJECT IN PAIN; ABDOMINAL PAINS; FRACTURE; "
             "LACERATIONS; MATERNITY; HEAT EXHAUSTION; SYNCOPAL EPISODE; EYE INJURY; MEDICAL ALERT ALARM; "
             "UNKNOWN MEDICAL EMERGENCY"),
    **_table("violence", _S, "SHOOTING; STABBING"),
    **_table("violence", _N, "ASSAULT VICTIM"),
    **_table("traffic_accident", _N, "VEHICLE ACCIDENT"),
    **_table("traffic_accident", _S, "PLANE CRASH"),
    **_table("fire", _S, "BUILDING FIRE; VEHICLE FIRE"),
    **_table("fire", _N, "FIRE ALARM; WOODS/FIELD FIRE; APPLIANCE FIRE; ELECTRICAL FIRE OUTSIDE; UNKNOWN TYPE FIRE"),
    **_table("fire", _L, "TRASH/DUMPSTER FIRE; FIRE INVESTIGATION"),
    **_table("hazardous_materials", _S, "GAS-ODOR/LEAK"),
    **_table("hazardous_materials", _N, "CARBON MONOXIDE DETECTOR; VEHICLE LEAKING FUEL"),
    **_table("water_rescue", _S, "RESCUE - WATER"),
    **_table("other", _S, "RESCUE - TECHNICAL"),
    **_table("other", _N, "RESCUE - ELEVATOR; RESCUE - GENERAL"),
    **_table("public_order", _L, "FIRE POLICE NEEDED"),
    **_table("other", _L, "DISABLED VEHICLE; ROAD OBSTRUCTION; HAZARDOUS ROAD CONDITIONS; DEBRIS/FLUIDS ON HIGHWAY; "
             "FIRE SPECIAL SERVICE; EMS SPECIAL SERVICE; S/B AT HELICOPTER LANDING; POLICE INFORMATION; "
             "TRANSFERRED CALL; PUMP DETAIL"),
}
"""Record subtype (upper case, as in ``title`` after ``Category: ``) -> incident type and urgency (table above)."""

CATEGORY_DEFAULT: dict[str, Mapping] = {
    "EMS": Mapping("medical", _N),
    "Fire": Mapping("fire", _N),
    "Traffic": Mapping("other", _L),
}
"""Fallback for subtypes not in :data:`SUBTYPE_MAP`, by record category."""

REQUIRED_ITEMS: dict[str, tuple[str, ...]] = {
    "fire": ("location", "trapped", "fire_size", "caller_safe"),
    "traffic_accident": ("location", "injuries", "vehicles"),
    "medical": ("location", "people_involved", "injuries"),
    "violence": ("location", "injuries", "suspect", "caller_safe"),
    "hazardous_materials": ("location", "hazards", "caller_safe"),
    "water_rescue": ("location", "people_involved", "caller_safe"),
}
"""The dispatcher's checklist by incident type; other types need ``location`` and ``callback_number``."""

MEDIA_BY_TYPE: dict[str, tuple[str, str]] = {
    "fire": ("builtin:demo_fire_video", "builtin:demo_fire_photo"),
    "traffic_accident": ("builtin:demo_street_video", "builtin:demo_collision_photo"),
}
"""Incident type -> (live video, photo) from the generated demo media; other types get the street video only.
No voice: the builtin voices speak the demo's own lines, so the caller's line is shown as transcript only."""


def map_record(record: CallRecord) -> Mapping:
    """Incident type and urgency of ``record`` (:data:`SUBTYPE_MAP`, else :data:`CATEGORY_DEFAULT`)."""
    mapping = SUBTYPE_MAP.get(record.subtype) or CATEGORY_DEFAULT[record.category]
    if mapping.incident_type not in INCIDENT_TYPES:  # a broken table is a programming error, say so loudly
        raise RuntimeError(f"records mapping uses unknown incident type {mapping.incident_type!r}")
    return mapping


def caller_line(record: CallRecord) -> str:
    """What the simulated caller says first, built from the record, e.g. ``There's a vehicle accident at
    HAWS AVE & W MARSHALL ST in Norristown.``"""
    where = _where(record)
    what = record.subtype.lower().replace("/", " or ")
    if record.category == "EMS":
        return f"I need an ambulance{where}: {what}."
    if record.category == "Traffic" or what.endswith(("fire", "accident", "alarm", "leak", "obstruction")):
        return f"There's a {what}{where}."
    return f"I'm calling about a {what}{where}."


def _where(record: CallRecord) -> str:
    address = " ".join(record.address.split()).title().replace(" & ", " and ")
    township = record.township.title()
    parts = (f" at {address}" if address else "") + (f" in {township}" if township else "")
    return parts


def to_local_naive(moment: datetime) -> datetime:
    """``moment`` on the records' wall clock (America/New_York), naive; naive input is taken as that clock."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(ZoneInfo(RECORDS_TIMEZONE)).replace(tzinfo=None)


def select_window(records: Sequence[CallRecord], start: datetime, end: datetime) -> list[CallRecord]:
    """Records with ``start <= timestamp < end``, sorted by time (then file line). Aware bounds are converted to the
    records' clock. Raises :class:`RecordsWindowError` when ``end <= start``."""
    start, end = to_local_naive(start), to_local_naive(end)
    if end <= start:
        raise RecordsWindowError(f"the window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    return sorted((r for r in records if start <= r.timestamp < end), key=lambda r: (r.timestamp, r.line))


def busiest_window(records: Sequence[CallRecord], width: timedelta = timedelta(hours=1)) -> tuple[datetime, int]:
    """The start of the ``width`` window (starting at a record) holding the most records, and that count.
    Ties go to the earliest window. Raises :class:`RecordsWindowError` for no records."""
    times = sorted(r.timestamp for r in records)
    if not times:
        raise RecordsWindowError("no records")
    best_start, best_count, j = times[0], 0, 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + width:
            j += 1
        if j - i > best_count:
            best_start, best_count = t, j - i
    return best_start, best_count


def records_to_scenario(
    records: Sequence[CallRecord],
    start: datetime,
    end: datetime,
    *,
    scenario_id: str = "",
    modality: str = "video",
    time_scale: float = 1.0,
    source_name: str = "",
) -> str:
    """The scenario TOML text for the records in ``[start, end)``.

    ``time_scale`` multiplies the real offsets (0.1 plays an hour in 6 minutes); ``modality`` is the one block's
    condition (``audio``, ``photo``, ``video``); ``scenario_id`` defaults to ``montco-YYYYmmdd-HHMM``;
    ``source_name`` (the file name) goes into the description. The text loads with
    :func:`workbench.store.scenarios.parse_scenario`. Raises :class:`RecordsWindowError` for an inverted window
    or one without records, ``ValueError`` for a bad ``time_scale`` or ``modality``.
    """
    if not time_scale > 0:
        raise ValueError(f"time_scale must be > 0, got {time_scale}")
    if modality not in ("audio", "photo", "video"):
        raise ValueError(f"modality must be audio, photo or video, got {modality!r}")
    chosen = select_window(records, start, end)
    start, end = to_local_naive(start), to_local_naive(end)
    if not chosen:
        raise RecordsWindowError(
            f"no records between {start.isoformat(sep=' ')} and {end.isoformat(sep=' ')} (local time); "
            "choose another window"
        )
    sid = scenario_id or f"montco-{start:%Y%m%d-%H%M}"
    call_ids = [f"L{r.line}" for r in chosen]
    lines = [
        f"# Generated by `workbench scenario-from-records` from real Montgomery County 911 records",
        f"# ({source_name or 'records'}), window {start.isoformat(sep=' ')} .. {end.isoformat(sep=' ')} local time.",
        f"# Incident types and urgencies follow the table in workbench/records/to_scenario.py.",
        f"id = {_q(sid)}",
        f"title = {_q(f'Montgomery County 911, {start:%Y-%m-%d %H:%M} to {end:%H:%M} ({len(chosen)} calls)')}",
        f"description = {_q(_description(chosen, start, end, source_name, time_scale))}",
        "",
        "[[blocks]]",
        'id = "records"',
        f"modality = {_q(modality)}",
        f"calls = [{', '.join(_q(c) for c in call_ids)}]",
    ]
    for call_id, record in zip(call_ids, chosen):
        mapping = map_record(record)
        arrival = (record.timestamp - start).total_seconds() * time_scale
        video, photo = MEDIA_BY_TYPE.get(mapping.incident_type, ("builtin:demo_street_video", ""))
        location = ", ".join(" ".join(p.split()) for p in (record.address, record.township) if p)
        lines += [
            "",
            "[[calls]]",
            f"id = {_q(call_id)}",
            f"arrival_s = {round(arrival, 3)!r}",
            f"caller_label = {_q(f'{record.title} {record.timestamp:%H:%M:%S}')}",
            f"utterances = [{{ at_s = 0, text = {_q(caller_line(record))} }}]",
            f"media.video = {_q(video)}",
        ]
        if photo:
            lines.append(f'media.photos = [{{ file = {_q(photo)}, at_s = 2 }}]')
        items = REQUIRED_ITEMS.get(mapping.incident_type, ("location", "callback_number"))
        lines += [
            "[calls.truth]",
            f"incident_type = {_q(mapping.incident_type)}",
            f"urgency = {_q(mapping.urgency.value)}",
            f"location = {_q(location)}",
            f"lat = {record.lat!r}",
            f"lon = {record.lon!r}",
            f"required_items = [{', '.join(_q(i) for i in items)}]",
        ]
    return "\n".join(lines) + "\n"


def _description(chosen: list[CallRecord], start: datetime, end: datetime, source: str, scale: float) -> str:
    speed = "" if scale == 1.0 else f" Arrival times are scaled by {scale:g}."
    return (
        f"Real dispatch records of Montgomery County, PA ({source or 'montcoalert'}): the {len(chosen)} calls "
        f"between {start.isoformat(sep=' ')} and {end.isoformat(sep=' ')} local time, in their real order and "
        f"spacing, with their real locations.{speed} Call ids are L<line in the records file>."
    )


def _q(text: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for the characters it produces)."""
    return json.dumps(re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text), ensure_ascii=True)
