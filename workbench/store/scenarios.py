"""Load a scenario TOML file, validated at the edge, into the domain's plain dataclasses.

The file format is documented in ``docs/scenario-format.md`` and by ``experiments/demo/scenario.toml``. Validation
uses pydantic; every error names the file, the field path and what was expected (:class:`ScenarioError`).
Media paths are resolved relative to the scenario file; ``builtin:NAME`` names generated demo media.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workbench.domain.scenario import (
    Block,
    CallMedia,
    CallSpec,
    Design,
    GroundTruth,
    Incident,
    Manipulation,
    PhotoSpec,
    Scenario,
    Utterance,
)
from workbench.domain.taxonomy import DISAGREEMENT_ASPECTS, INCIDENT_TYPES, INFORMATION_ITEMS, Modality, Urgency
from workbench.store.tomlfiles import validate_toml

IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``str()`` lists every problem as ``file: field: message``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Utterance(_Model):
    at_s: float = Field(ge=0, description="seconds after the dispatcher answers")
    text: str = Field(min_length=1)


class _Photo(_Model):
    file: str = Field(min_length=1)
    at_s: float = Field(default=0.0, ge=0)


class _Media(_Model):
    video: str = ""
    audio: str = ""
    video_at_s: float = Field(default=0.0, ge=0)
    photos: list[_Photo] = []
    voice: str = Field(default="", pattern=r"^[A-Za-z0-9_+-]{0,32}$", description="espeak-ng voice")

    @model_validator(mode="after")
    def _voice_or_audio(self) -> "_Media":
        if self.voice and self.audio:
            raise ValueError("give media.audio (a recorded voice) or media.voice (lines spoken by espeak-ng), not both")
        return self


def _known_incident_type(v: str | None) -> str | None:
    if v is not None and v not in INCIDENT_TYPES:
        raise ValueError(f"unknown incident type {v!r}; expected one of {', '.join(INCIDENT_TYPES)}")
    return v


def _known_aspect_list(v: list[str]) -> list[str]:
    unknown = [a for a in v if a not in DISAGREEMENT_ASPECTS]
    if unknown:
        raise ValueError(f"unknown aspect(s) {', '.join(unknown)}; expected from {', '.join(DISAGREEMENT_ASPECTS)}")
    return v


class _Incident(_Model):
    id: str = Field(pattern=IDENT)
    incident_type: str
    urgency: Literal["spoed", "nu", "later"]
    location: str = ""
    lat: float | None = Field(default=None, ge=-90, le=90, description="degrees WGS84")
    lon: float | None = Field(default=None, ge=-180, le=180, description="degrees WGS84")
    description: str = ""

    @model_validator(mode="after")
    def _both_coordinates(self) -> "_Incident":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together: give both (degrees WGS84) or neither")
        return self

    @field_validator("incident_type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        return str(_known_incident_type(v))


class _Truth(_Model):
    # incident_type and urgency are required unless the call names an incident, whose ground truth it then takes
    # (checked in _cross_reference_errors, where the incidents are known).
    incident_type: str | None = None
    urgency: Literal["spoed", "nu", "later"] | None = None
    location: str = ""
    required_items: list[str] = []
    congruence: dict[str, bool] = {}
    lat: float | None = Field(default=None, ge=-90, le=90, description="degrees WGS84")
    lon: float | None = Field(default=None, ge=-180, le=180, description="degrees WGS84")
    incident: str = Field(default="", description="id of an [[incidents]] entry")
    caller_lat: float | None = Field(default=None, ge=-90, le=90, description="degrees WGS84")
    caller_lon: float | None = Field(default=None, ge=-180, le=180, description="degrees WGS84")
    account_disagrees: list[str] = []

    @model_validator(mode="after")
    def _both_coordinates(self) -> "_Truth":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together: give both (degrees WGS84) or neither")
        if (self.caller_lat is None) != (self.caller_lon is None):
            raise ValueError("caller_lat and caller_lon go together: give both (degrees WGS84) or neither")
        return self

    @field_validator("incident_type")
    @classmethod
    def _known_type(cls, v: str | None) -> str | None:
        return _known_incident_type(v)

    @field_validator("account_disagrees")
    @classmethod
    def _known_account_aspects(cls, v: list[str]) -> list[str]:
        return _known_aspect_list(v)

    @field_validator("required_items")
    @classmethod
    def _known_items(cls, v: list[str]) -> list[str]:
        unknown = [i for i in v if i not in INFORMATION_ITEMS]
        if unknown:
            raise ValueError(f"unknown item(s) {', '.join(unknown)}; expected from {', '.join(INFORMATION_ITEMS)}")
        if len(set(v)) != len(v):
            raise ValueError("required_items lists an item twice")
        return v

    @field_validator("congruence")
    @classmethod
    def _known_aspects(cls, v: dict[str, bool]) -> dict[str, bool]:
        unknown = [a for a in v if a not in DISAGREEMENT_ASPECTS]
        if unknown:
            raise ValueError(f"unknown aspect(s) {', '.join(unknown)}; expected from {', '.join(DISAGREEMENT_ASPECTS)}")
        return v


class _Manipulation(_Model):
    video_start: Literal["ok", "no_offer", "no_frames"] = "ok"
    video_drop_at_s: float | None = Field(default=None, ge=0, description="seconds after the call arrives")
    video_scale: float = Field(default=1.0, gt=0, le=1)
    video_fps: float = Field(default=0.0, ge=0, description="0: the source's frame rate")
    blur_px: float = Field(default=0.0, ge=0, le=50)
    brightness: float = Field(default=1.0, gt=0, le=1)
    visible: float = Field(default=1.0, gt=0, le=1)
    degrade: list[Literal["photos", "video"]] = ["photos", "video"]
    photo_delay_s: float = Field(default=0.0, ge=0)


class _Call(_Model):
    id: str = Field(pattern=IDENT)
    arrival_s: float = Field(ge=0, description="seconds after the block starts")
    caller_label: str = ""
    utterances: list[_Utterance] = []
    media: _Media = _Media()
    truth: _Truth
    manipulation: _Manipulation = _Manipulation()


class _Block(_Model):
    id: str = Field(pattern=IDENT)
    modality: Literal["audio", "photo", "video"]
    calls: list[str] = Field(min_length=1)
    practice: bool = False
    break_s: float = Field(default=0.0, ge=0, description="break after the block, s")
    advice: bool = False


class _Design(_Model):
    counterbalance: Literal["none", "latin_square"] = "none"
    participants: list[str] = []

    @field_validator("participants")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a participant is listed twice; expected unique pseudonyms")
        return v


class _Scenario(_Model):
    id: str = Field(pattern=IDENT)
    title: str = ""
    description: str = ""
    blocks: list[_Block] = Field(min_length=1)
    calls: list[_Call] = Field(min_length=1)
    design: _Design = _Design()
    incidents: list[_Incident] = []


def _cross_reference_errors(model: _Scenario, source: str) -> list[str]:
    """Problems between blocks and calls, each as ``source: field.path: message (expected ...)``."""
    errors: list[str] = []
    call_ids = [c.id for c in model.calls]
    seen: set[str] = set()
    for i, cid in enumerate(call_ids):
        if cid in seen:
            errors.append(f"{source}: calls.{i}.id: call id {cid!r} is used twice; expected unique call ids")
        seen.add(cid)
    seen = set()
    for i, b in enumerate(model.blocks):
        if b.id in seen:
            errors.append(f"{source}: blocks.{i}.id: block id {b.id!r} is used twice; expected unique block ids")
        seen.add(b.id)
    placed: dict[str, str] = {}
    for i, b in enumerate(model.blocks):
        for j, cid in enumerate(b.calls):
            where = f"{source}: blocks.{i}.calls.{j}"
            if cid not in call_ids:
                errors.append(
                    f"{where}: block {b.id!r} lists call {cid!r}, which is not defined under [[calls]]; "
                    f"expected one of {', '.join(call_ids)}"
                )
            elif cid in placed:
                errors.append(
                    f"{where}: call {cid!r} is listed again (already in block {placed[cid]!r}); "
                    "expected each call in exactly one block"
                )
            else:
                placed[cid] = b.id
    for i, cid in enumerate(call_ids):
        if cid not in placed:
            errors.append(
                f"{source}: calls.{i}.id: call {cid!r} is in no block; expected it in the calls of one [[blocks]] entry"
            )
    errors += _incident_errors(model, source)
    return errors


def _incident_errors(model: _Scenario, source: str) -> list[str]:
    """Problems of ``[[incidents]]`` and the calls' ``truth.incident`` references (issue 11)."""
    errors: list[str] = []
    incidents: dict[str, _Incident] = {}
    for i, inc in enumerate(model.incidents):
        if inc.id in incidents:
            errors.append(f"{source}: incidents.{i}.id: incident id {inc.id!r} is used twice; expected unique ids")
        incidents[inc.id] = inc
    used: set[str] = set()
    for i, c in enumerate(model.calls):
        t, where = c.truth, f"{source}: calls.{i}.truth"
        if not t.incident:
            for name in ("incident_type", "urgency"):
                if getattr(t, name) is None:
                    errors.append(f"{where}.{name}: missing; give it, or name an incident (truth.incident) whose "
                                  "ground truth this call takes")
            continue
        inc = incidents.get(t.incident)
        if inc is None:
            known = ", ".join(incidents) or "none defined"
            errors.append(f"{where}.incident: call {c.id!r} names incident {t.incident!r}, which is not defined "
                          f"under [[incidents]]; expected one of: {known}")
            continue
        used.add(inc.id)
        for name in ("incident_type", "urgency", "location", "lat", "lon"):
            mine, theirs = getattr(t, name), getattr(inc, name)
            if mine not in (None, "") and mine != theirs:
                errors.append(f"{where}.{name}: {mine!r} contradicts incident {inc.id!r} ({theirs!r}); leave it out: "
                              "a call takes its incident's ground truth (what this caller says wrongly goes in "
                              "truth.account_disagrees)")
    for i, inc in enumerate(model.incidents):
        if inc.id not in used:
            errors.append(f"{source}: incidents.{i}.id: incident {inc.id!r} is reported by no call; expected at "
                          "least one call with truth.incident = this id")
    return errors


def _resolve(base: Path, ref: str, where: str, errors: list[str], source: str, check_media: bool) -> str:
    if not ref or ref.startswith("builtin:"):
        return ref
    path = Path(ref)
    if not path.is_absolute():
        path = (base / path).resolve()
    if check_media and not path.is_file():
        errors.append(f"{source}: {where}: media file {ref!r} not found (looked for {path})")
    return str(path)


def parse_scenario(
    text_bytes: bytes, source: str = "<scenario>", base_dir: Path | None = None, *, check_media: bool = True
) -> Scenario:
    """Validate scenario TOML bytes; ``base_dir`` resolves relative media paths. With ``check_media`` False, media
    files need not exist (the analysis reads a session's scenario copy only for its ground truth).

    Raises :class:`ScenarioError` with one line per problem (``source: field.path: message``).
    """
    model = validate_toml(text_bytes, source, _Scenario, ScenarioError)
    errors = _cross_reference_errors(model, source)
    if errors:
        raise ScenarioError("\n".join(errors))
    base = base_dir or Path.cwd()
    incidents = {inc.id: inc for inc in model.incidents}
    calls = []
    for i, c in enumerate(model.calls):
        where = f"calls.{i}.media"
        media = CallMedia(
            video=_resolve(base, c.media.video, f"{where}.video", errors, source, check_media),
            audio=_resolve(base, c.media.audio, f"{where}.audio", errors, source, check_media),
            video_at_s=c.media.video_at_s,
            voice=c.media.voice,
            photos=tuple(
                PhotoSpec(_resolve(base, p.file, f"{where}.photos.{j}.file", errors, source, check_media), p.at_s)
                for j, p in enumerate(c.media.photos)
            ),
        )
        t = c.truth
        inc = incidents.get(t.incident)
        truth = GroundTruth(
            incident_type=inc.incident_type if inc else str(t.incident_type),
            urgency=Urgency(inc.urgency if inc else t.urgency),
            location=inc.location if inc else t.location,
            required_items=tuple(t.required_items),
            congruence=dict(t.congruence),
            lat=inc.lat if inc else t.lat,
            lon=inc.lon if inc else t.lon,
            incident_id=t.incident,
            caller_lat=t.caller_lat,
            caller_lon=t.caller_lon,
            account_disagrees=tuple(t.account_disagrees),
        )
        utterances = tuple(Utterance(u.at_s, u.text) for u in sorted(c.utterances, key=lambda u: u.at_s))
        m = c.manipulation
        manipulation = Manipulation(
            video_start=m.video_start,
            video_drop_at_s=m.video_drop_at_s,
            video_scale=m.video_scale,
            video_fps=m.video_fps,
            blur_px=m.blur_px,
            brightness=m.brightness,
            visible=m.visible,
            degrade=tuple(m.degrade),
            photo_delay_s=m.photo_delay_s,
        )
        calls.append(CallSpec(c.id, c.arrival_s, c.caller_label or c.id, utterances, media, truth, manipulation))
    if errors:
        raise ScenarioError("\n".join(errors))
    blocks = tuple(
        Block(b.id, Modality(b.modality), tuple(b.calls), practice=b.practice, break_s=b.break_s, advice=b.advice)
        for b in model.blocks
    )
    return Scenario(
        id=model.id,
        title=model.title,
        description=model.description,
        blocks=blocks,
        calls=tuple(calls),
        sha256=hashlib.sha256(text_bytes).hexdigest(),
        design=Design(model.design.counterbalance, tuple(model.design.participants)),
        incidents=tuple(
            Incident(i.id, i.incident_type, Urgency(i.urgency), i.location, i.lat, i.lon, i.description)
            for i in model.incidents
        ),
    )


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file. Raises :class:`ScenarioError` (also for a missing or unreadable file)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario file: {exc.strerror}") from exc
    return parse_scenario(data, str(path), path.parent)
