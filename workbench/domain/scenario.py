"""A scenario: the calls of a simulated shift, their script, media and ground truth, grouped in blocks.

Plain frozen dataclasses; the TOML loader (``workbench.store.scenarios``) validates files into these.
Times are seconds: ``arrival_s`` from the start of the block, utterance ``at_s`` from the moment the dispatcher
answers, media ``at_s`` from the call's arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.domain.taxonomy import Modality, Urgency


@dataclass(frozen=True)
class Utterance:
    """A scripted line of the caller, said ``at_s`` seconds after the dispatcher answers."""

    at_s: float
    text: str


@dataclass(frozen=True)
class PhotoSpec:
    """A photo the caller attaches ``at_s`` seconds after the call arrives. ``file`` is absolute or ``builtin:NAME``."""

    file: str
    at_s: float


@dataclass(frozen=True)
class CallMedia:
    """Media a simulated caller sends. ``video``/``audio`` are absolute paths or ``builtin:NAME`` (generated demo
    media); empty when absent. Live video starts ``video_at_s`` seconds after arrival. ``voice`` (an espeak-ng
    voice such as ``en`` or ``nl``; instead of ``audio``) makes the simulated caller speak each scripted line at its
    time, synthesised ahead of time; empty: no spoken lines."""

    video: str = ""
    audio: str = ""
    video_at_s: float = 0.0
    photos: tuple[PhotoSpec, ...] = ()
    voice: str = ""


@dataclass(frozen=True)
class GroundTruth:
    """What is really going on in a call, for scoring the dispatcher.

    ``congruence`` maps an aspect key (see ``taxonomy.DISAGREEMENT_ASPECTS``) to True when what the caller says and
    what the image shows agree on it, False when they disagree by design.
    """

    incident_type: str
    urgency: Urgency
    location: str
    required_items: tuple[str, ...]
    congruence: dict[str, bool] = field(default_factory=dict)
    lat: float | None = None
    """Latitude of the location, degrees WGS84 (north positive); None when the scenario gives no coordinates."""
    lon: float | None = None
    """Longitude of the location, degrees WGS84 (east positive); None when the scenario gives no coordinates."""
    incident_id: str = ""
    """Id of the scenario incident this call reports (several calls can share one); empty: the call is its own
    incident (see :meth:`Scenario.incident_of`)."""
    caller_lat: float | None = None
    """Where this caller stands (latitude, degrees WGS84): the caller's own viewpoint, which for several callers of
    one incident differs from the incident's location; stands in for the network-provided caller location (AML).
    None: the incident's location."""
    caller_lon: float | None = None
    """Longitude of where the caller stands, degrees WGS84; None together with ``caller_lat``."""
    account_disagrees: tuple[str, ...] = ()
    """Aspects (keys of ``taxonomy.DISAGREEMENT_ASPECTS``) on which this caller's account disagrees with the
    incident's ground truth by design, and so with the other callers of the incident who tell it right."""

    @property
    def caller_position(self) -> tuple[float, float] | None:
        """``(lat, lon)`` of the caller, degrees WGS84: the caller's own position, else the incident's location,
        else None."""
        if self.caller_lat is not None and self.caller_lon is not None:
            return (self.caller_lat, self.caller_lon)
        if self.lat is not None and self.lon is not None:
            return (self.lat, self.lon)
        return None

    @property
    def congruent(self) -> bool:
        """True when speech and image agree on every aspect listed."""
        return all(self.congruence.values())

    @property
    def incongruent_aspects(self) -> tuple[str, ...]:
        """Aspects on which speech and image disagree by design, in file order."""
        return tuple(a for a, agree in self.congruence.items() if not agree)


@dataclass(frozen=True)
class Manipulation:
    """What the simulated caller does differently from a clean call (the study's manipulations). Times are seconds
    after the call arrives; the defaults manipulate nothing.

    ``video_start``: ``ok``; ``no_offer`` (the live video never starts: no WebRTC offer, so no live audio either);
    ``no_frames`` (an offer with a video track that never sends a frame). ``video_drop_at_s``: live video stops at
    this time (None: never). ``video_scale`` (0-1] scales both sides of the picture; ``video_fps`` caps the frame
    rate (0: the source's). ``blur_px`` (Gaussian radius, px), ``brightness`` (factor (0-1]) and ``visible`` (the
    centred share (0-1] of width and height left visible, the rest black) degrade the images named in
    ``degrade`` (``photos``, ``video``). ``photo_delay_s`` is added to every photo's time.
    """

    video_start: str = "ok"
    video_drop_at_s: float | None = None
    video_scale: float = 1.0
    video_fps: float = 0.0
    blur_px: float = 0.0
    brightness: float = 1.0
    visible: float = 1.0
    degrade: tuple[str, ...] = ("photos", "video")
    photo_delay_s: float = 0.0

    @property
    def degrades_images(self) -> bool:
        """True when any image degradation is set."""
        return self.blur_px > 0 or self.brightness < 1 or self.visible < 1


@dataclass(frozen=True)
class CallSpec:
    """One call (report) of a scenario."""

    id: str
    arrival_s: float
    caller_label: str
    utterances: tuple[Utterance, ...]
    media: CallMedia
    truth: GroundTruth
    manipulation: Manipulation = Manipulation()


@dataclass(frozen=True)
class Block:
    """A block of calls worked under one modality condition. A ``practice`` block comes first, is not
    counterbalanced and is excluded from analysis (the runner writes ``block.practice``); ``break_s`` is a break
    after the block, s."""

    id: str
    modality: Modality
    call_ids: tuple[str, ...]
    practice: bool = False
    break_s: float = 0.0
    advice: bool = False
    """Triage advice (``workbench.screening.advice``) is shown to the dispatcher in this block (issue 11)."""


@dataclass(frozen=True)
class Incident:
    """One real-world incident that one or more calls of a scenario report (issue 11). Its ground truth (type,
    urgency, location) is the truth of every call that names it in ``truth.incident_id``."""

    id: str
    incident_type: str
    urgency: Urgency
    location: str
    lat: float | None = None
    """Latitude of the incident, degrees WGS84; None when the scenario gives no coordinates."""
    lon: float | None = None
    """Longitude of the incident, degrees WGS84; None when the scenario gives no coordinates."""
    description: str = ""


@dataclass(frozen=True)
class Design:
    """The experiment design of a scenario: how block order is counterbalanced (``none`` or ``latin_square``, see
    ``workbench.domain.design``) and the participant pseudonyms in assignment order (may be empty)."""

    counterbalance: str = "none"
    participants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A whole scenario. ``sha256`` is the hash of the file's bytes, recorded in ``session.json``."""

    id: str
    title: str
    description: str
    blocks: tuple[Block, ...]
    calls: tuple[CallSpec, ...]
    sha256: str = ""
    design: Design = Design()
    incidents: tuple[Incident, ...] = ()
    """Incidents reported by several calls (issue 11); a call naming none is its own incident."""

    def incident_of(self, call_id: str) -> str:
        """The ground-truth incident id of call ``call_id``: its ``truth.incident_id``, else ``call:<call_id>`` (a
        call of its own incident). Raises ``KeyError`` if the scenario has no such call."""
        return self.call(call_id).truth.incident_id or f"call:{call_id}"

    def call(self, call_id: str) -> CallSpec:
        """The call with id ``call_id``; raises ``KeyError`` if the scenario has none."""
        for c in self.calls:
            if c.id == call_id:
                return c
        raise KeyError(f"scenario {self.id!r} has no call {call_id!r}")

    def block(self, block_id: str) -> Block:
        """The block with id ``block_id``; raises ``KeyError`` if the scenario has none."""
        for b in self.blocks:
            if b.id == block_id:
                return b
        raise KeyError(f"scenario {self.id!r} has no block {block_id!r}")

    def block_of(self, call_id: str) -> Block:
        """The block that contains call ``call_id``; raises ``KeyError`` if none does."""
        for b in self.blocks:
            if call_id in b.call_ids:
                return b
        raise KeyError(f"call {call_id!r} is in no block of scenario {self.id!r}")
