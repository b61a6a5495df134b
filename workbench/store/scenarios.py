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


class _Truth(_Model):
    incident_type: str
    urgency: Literal["spoed", "nu", "later"]
    location: str = ""
    required_items: list[str] = []
    congruence: dict[str, bool] = {}
    lat: float | None = Field(default=None, ge=-90, le=90, description="degrees WGS84")
    lon: float | None = Field(default=None, ge=-180, le=180, description="degrees WGS84")

    @model_validator(mode="after")
    def _both_coordinates(self) -> "_Truth":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together: give both (degrees WGS84) or neither")
        return self

    @field_validator("incident_type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in INCIDENT_TYPES:
            raise ValueError(f"unknown incident type {v!r}; expected one of {', '.join(INCIDENT_TYPES)}")
        return v

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
        truth = GroundTruth(
            incident_type=c.truth.incident_type,
            urgency=Urgency(c.truth.urgency),
            location=c.truth.location,
            required_items=tuple(c.truth.required_items),
            congruence=dict(c.truth.congruence),
            lat=c.truth.lat,
            lon=c.truth.lon,
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
        Block(b.id, Modality(b.modality), tuple(b.calls), practice=b.practice, break_s=b.break_s) for b in model.blocks
    )
    return Scenario(
        id=model.id,
        title=model.title,
        description=model.description,
        blocks=blocks,
        calls=tuple(calls),
        sha256=hashlib.sha256(text_bytes).hexdigest(),
        design=Design(model.design.counterbalance, tuple(model.design.participants)),
    )


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file. Raises :class:`ScenarioError` (also for a missing or unreadable file)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario file: {exc.strerror}") from exc
    return parse_scenario(data, str(path), path.parent)
