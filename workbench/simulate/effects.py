"""The effects file of ``workbench simulate``: true effects, baselines and spread, validated at the edge.

An effects file is TOML (``tomllib``) validated with pydantic into :class:`Effects`; every error names the file, the
field path and what was expected (:class:`EffectsError`). Every table and key is optional; what is left out takes
the default shown below (no effect, a plausible baseline). ``experiments/effects/example.toml`` is a commented
example. All values are in the units of the measures the analysis reports::

    [baseline]                      # an audio-only, congruent call of an average participant
    rsme = 35.0                     # RSME points (0-150)
    handling_time_s = 90.0          # s, the MEDIAN handling time (answer to close); handling time is log-normal
    time_to_first_urgency_s = 20.0  # s, answer to the first urgency classification
    completeness = 0.80             # proportion 0-1 of the required information items gathered
    drt_hit_rt_ms = 450.0           # ms, mean DRT hit response time
    drt_miss_probability = 0.05     # probability that a DRT stimulus gets no response
    photo_dwell_s = 6.0             # s, mean time a photo stays open when the dispatcher views it
    urgency_correct_probability = 0.85
    incident_type_correct_probability = 0.90

    [modality.photo]                # added to the baseline in photo blocks (audio is the reference level)
    rsme = 12.0                     # RSME points
    [modality.video]
    handling_time_ratio = 1.4       # multiplies the handling time (1.0 = no effect)
    completeness = -0.10            # proportion added
    drt_hit_rt_ms = 80.0            # ms added to every DRT hit RT in video blocks
    time_to_first_urgency_s = 0.0   # s added

    [incongruent]                   # same keys as [modality.*]: added for calls whose speech and image disagree
    rsme = 6.0

    [detection]                     # perceived disagreement (the dispatcher's flag at close)
    hit_probability = 0.6           # P(flag | designed disagreement)
    false_alarm_probability = 0.1   # P(flag | congruent call)

    [spread]                        # standard deviations: between participants (random intercepts) and residual
    participant_sd_rsme = 8.0
    residual_sd_rsme = 10.0
    participant_sd_log_handling_time = 0.15   # on the natural-log scale of handling time
    residual_sd_log_handling_time = 0.20
    ...

The generative model that uses these numbers is documented in :mod:`workbench.simulate.simulator`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.store.tomlfiles import validate_toml


class EffectsError(ValueError):
    """An effects file that cannot be used; ``str()`` lists every problem as ``file: field.path: message``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeasureEffects(_Model):
    """Effects of one condition level on each measure, relative to the reference level (audio; congruent)."""

    rsme: float = Field(default=0.0, ge=-150, le=150, description="RSME points added")
    handling_time_ratio: float = Field(default=1.0, gt=0, le=20, description="factor on handling time")
    time_to_first_urgency_s: float = Field(default=0.0, description="seconds added to the time to first urgency")
    completeness: float = Field(default=0.0, ge=-1, le=1, description="proportion added to completeness")
    drt_hit_rt_ms: float = Field(default=0.0, description="ms added to DRT hit response times")
    photo_dwell_s: float = Field(default=0.0, description="seconds added to the dwell time of a call's photo view")


class Baseline(_Model):
    """The reference condition (audio-only block, congruent call) of an average participant, and timing."""

    rsme: float = Field(default=35.0, ge=0, le=150)
    handling_time_s: float = Field(default=90.0, gt=0, le=3600, description="median, s")
    time_to_first_urgency_s: float = Field(default=20.0, gt=0, le=3600)
    completeness: float = Field(default=0.80, ge=0, le=1)
    drt_hit_rt_ms: float = Field(default=450.0, ge=100, le=2500)
    drt_miss_probability: float = Field(default=0.05, ge=0, le=1)
    photo_dwell_s: float = Field(default=6.0, gt=0, le=600, description="mean s a photo stays open when viewed")
    urgency_correct_probability: float = Field(default=0.85, ge=0, le=1)
    incident_type_correct_probability: float = Field(default=0.90, ge=0, le=1)
    pickup_s: float = Field(default=3.0, gt=0, le=600, description="mean wait from arrival (or being free) to answer")
    rating_s: float = Field(default=5.0, gt=0, le=600, description="mean time from close to the RSME rating")
    break_s: float = Field(default=60.0, ge=0, le=7200, description="pause between blocks")


class Detection(_Model):
    """Perceived disagreement: probability of the flag at close given the designed (ground-truth) disagreement."""

    hit_probability: float = Field(default=0.5, ge=0, le=1)
    false_alarm_probability: float = Field(default=0.1, ge=0, le=1)


class Spread(_Model):
    """Standard deviations of the normal random intercepts (``participant_sd_*``) and residuals (``residual_sd_*``)."""

    participant_sd_rsme: float = Field(default=8.0, ge=0)
    residual_sd_rsme: float = Field(default=10.0, ge=0)
    participant_sd_log_handling_time: float = Field(default=0.15, ge=0, le=3)
    residual_sd_log_handling_time: float = Field(default=0.20, ge=0, le=3)
    participant_sd_time_to_first_urgency_s: float = Field(default=3.0, ge=0)
    residual_sd_time_to_first_urgency_s: float = Field(default=4.0, ge=0)
    participant_sd_completeness: float = Field(default=0.05, ge=0, le=1)
    residual_sd_completeness: float = Field(default=0.08, ge=0, le=1)
    participant_sd_drt_hit_rt_ms: float = Field(default=60.0, ge=0)
    residual_sd_drt_hit_rt_ms: float = Field(default=120.0, ge=0)
    participant_sd_photo_dwell_s: float = Field(default=1.5, ge=0)
    residual_sd_photo_dwell_s: float = Field(default=2.0, ge=0)


class Effects(_Model):
    """A whole effects file: baseline, per-modality effects (photo, video; audio is the reference), the effect of
    designed disagreement (``incongruent``), detection probabilities and spread."""

    baseline: Baseline = Baseline()
    modality: dict[str, MeasureEffects] = {}
    incongruent: MeasureEffects = MeasureEffects()
    detection: Detection = Detection()
    spread: Spread = Spread()

    @field_validator("modality")
    @classmethod
    def _levels(cls, v: dict[str, MeasureEffects]) -> dict[str, MeasureEffects]:
        if "audio" in v:
            raise ValueError("audio is the reference level: state effects for photo and video relative to it")
        unknown = [k for k in v if k not in ("photo", "video")]
        if unknown:
            raise ValueError(f"unknown modality {', '.join(unknown)}; expected photo or video")
        return v

    def of(self, modality: str) -> MeasureEffects:
        """Effects of ``modality`` (``audio`` and any level not stated: no effect)."""
        return self.modality.get(modality, MeasureEffects())


def parse_effects(text_bytes: bytes, source: str = "<effects>") -> Effects:
    """Validate effects TOML bytes. Raises :class:`EffectsError` with one line per problem."""
    return validate_toml(text_bytes, source, Effects, EffectsError)


def load_effects(path: Path) -> Effects:
    """Read and validate an effects file. Raises :class:`EffectsError` (also for a missing or unreadable file)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EffectsError(f"{path}: cannot read effects file: {exc.strerror}") from exc
    return parse_effects(data, str(path))
