"""Every event the workbench records, declared once.

An event on disk (one line of ``events.jsonl``) is an :class:`Event`: the envelope (``schema``, ``session_id``,
``seq``, ``t_mono_ns``, ``t_wall``, ``source``, ``type``, ``call_id``) and ``data``, the payload of its type. Each
payload type below is a frozen dataclass whose ``TYPE`` is the event's ``type`` string and whose attributes carry
docstrings; ``codebook.md`` is generated from those docstrings (:func:`describe_event_types`). Nobody invents
event names elsewhere: emit one of these classes.

Errors: :class:`EventValidationError` (a ``ValueError``) for an unknown type, a wrong source, a missing, extra or
mistyped field.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from workbench.domain.taxonomy import (
    DISAGREEMENT_ASPECTS,
    INCIDENT_TYPES,
    INFORMATION_ITEMS,
    Modality,
    Urgency,
    validate_rsme,
)
from workbench.domain.participant import FLOW_STEPS, STEP_PHASES, check_questionnaire

EVENT_SCHEMA = 1
"""Version of the event envelope and payload declarations; bump on any incompatible change."""

SOURCES = ("ingest", "runner", "console", "caller", "simulator")
"""Who can be the ``source`` of an event: the ingest itself, the scenario runner, the dispatcher console, the
caller's page (relayed by the ingest), and the synthetic-participant simulator."""


class EventValidationError(ValueError):
    """An event or payload does not match its declaration; the message says which field and what was expected."""


@dataclass(frozen=True)
class Payload:
    """Base of all payloads. Subclasses set ``TYPE`` (the event type), ``SOURCES`` (who may emit it) and
    ``CALL_SCOPED`` (whether the envelope must carry a ``call_id``)."""

    TYPE: ClassVar[str] = ""
    SOURCES: ClassVar[tuple[str, ...]] = SOURCES
    CALL_SCOPED: ClassVar[bool] = True

    def check(self) -> None:
        """Raise :class:`EventValidationError` when a value is out of its domain (beyond its Python type)."""


# --- session and blocks -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionStarted(Payload):
    """A session's log was opened (first event of every session)."""

    TYPE: ClassVar[str] = "session.started"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    participant: str
    """Participant pseudonym (never a name)."""
    scenario_id: str
    """Id of the scenario played, or ``adhoc`` for calls without a scenario."""
    scenario_sha256: str
    """SHA-256 (hex) of the scenario file's bytes; empty for ad-hoc sessions."""
    seed: int
    """Seed of every random choice in the session (block order, jitter)."""
    block_order: list[str]
    """Block ids in the order this participant works them."""
    software_version: str
    """Version of the workbench that recorded the session."""


@dataclass(frozen=True)
class SessionEnded(Payload):
    """A session ended."""

    TYPE: ClassVar[str] = "session.ended"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest", "runner", "console", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    reason: str
    """``completed``, ``aborted`` or ``server_stopped``."""


@dataclass(frozen=True)
class BlockStarted(Payload):
    """The runner started a block of calls."""

    TYPE: ClassVar[str] = "block.started"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    block_id: str
    """Id of the block in the scenario."""
    modality: str
    """Block condition: ``audio``, ``photo`` or ``video``."""
    position: int
    """0-based position of the block in this session's order."""

    def check(self) -> None:
        _check_enum("modality", self.modality, Modality)


@dataclass(frozen=True)
class BlockEnded(Payload):
    """The runner ended a block."""

    TYPE: ClassVar[str] = "block.ended"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    block_id: str
    """Id of the block in the scenario."""


# --- the call and its media, recorded by the ingest -----------------------------------------------------------------


@dataclass(frozen=True)
class CallCreated(Payload):
    """A call (report) arrived in the queue and its one-time caller link was issued."""

    TYPE: ClassVar[str] = "call.created"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest", "simulator")

    scenario_call_id: str
    """Id of the call in the scenario; empty for an ad-hoc call."""
    block_id: str
    """Block the call belongs to; empty for an ad-hoc call."""
    modality: str
    """Media the dispatcher receives: ``audio``, ``photo`` or ``video``."""
    caller_label: str
    """How the queue shows the caller (for example a phone number or a name from the scenario)."""

    def check(self) -> None:
        _check_enum("modality", self.modality, Modality)


@dataclass(frozen=True)
class CallLinkOpened(Payload):
    """A browser opened the caller link for the first time and was bound to it."""

    TYPE: ClassVar[str] = "call.link_opened"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    user_agent: str
    """The browser's User-Agent header."""


@dataclass(frozen=True)
class WebrtcOfferReceived(Payload):
    """The caller sent an SDP offer and the ingest answered it."""

    TYPE: ClassVar[str] = "webrtc.offer_received"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    video_codec: str
    """Negotiated video codec (``VP8``, ``H264``), empty when the offer had no video."""
    has_audio: bool
    """Whether the offer carried an audio track."""
    attempt: int
    """1 for the first offer of the call, 2 or more for reconnects."""


@dataclass(frozen=True)
class WebrtcStateChanged(Payload):
    """The peer connection's state changed (``connecting``, ``connected``, ``failed``, ``closed``)."""

    TYPE: ClassVar[str] = "webrtc.state_changed"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    state: str
    """New ``RTCPeerConnection.connectionState``."""


@dataclass(frozen=True)
class MediaFirstFrame(Payload):
    """The first decoded frame of a track arrived."""

    TYPE: ClassVar[str] = "media.first_frame"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    kind: str
    """``video`` or ``audio``."""
    codec: str
    """Codec name of the track (``VP8``, ``H264``, ``opus``)."""
    width: int
    """Frame width, px (0 for audio)."""
    height: int
    """Frame height, px (0 for audio)."""
    ms_since_offer: float
    """Time from receiving the offer to this frame, ms."""


@dataclass(frozen=True)
class MediaSnapshot(Payload):
    """A still of the live video was stored."""

    TYPE: ClassVar[str] = "media.snapshot"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    file: str
    """Path of the JPEG relative to the session folder."""
    sha256: str
    """SHA-256 (hex) of the stored file."""
    width: int
    """Width, px."""
    height: int
    """Height, px."""
    frame_index: int
    """1-based index of the video frame the still was taken from."""
    reason: str
    """``first_frame``, ``periodic`` or ``request``."""
    sharpness: float
    """Variance of the Laplacian of the grey image (OpenCV ``CV_64F``), unitless; higher is sharper (below ~50 a
    640x480 still is usually blurred)."""
    brightness: float
    """Mean grey level, 0-255."""
    motion: float
    """Mean absolute grey-level difference from the previous video frame, 0-255 (0.0 at the call's first frame)."""


@dataclass(frozen=True)
class MediaPhotoReceived(Payload):
    """The caller attached a photo; the original bytes and a normalised display copy were stored."""

    TYPE: ClassVar[str] = "media.photo_received"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    photo_id: str
    """Id of the photo within the call (``p1``, ``p2``, ...)."""
    file_original: str
    """Path of the original bytes relative to the session folder."""
    file_display: str
    """Path of the display copy (upright 8-bit RGB JPEG) relative to the session folder."""
    sha256: str
    """SHA-256 (hex) of the original bytes."""
    size_bytes: int
    """Size of the original, bytes."""
    image_format: str
    """Format detected from the bytes (``JPEG``, ``PNG``, ``HEIF``), not from the file name."""
    width: int
    """Display width, px (after orientation)."""
    height: int
    """Display height, px (after orientation)."""
    client_filename: str
    """File name the caller's device gave (untrusted, for display only)."""


@dataclass(frozen=True)
class MediaStreamEnded(Payload):
    """A track of the caller ended (hang-up, disconnect or server stop); its counters."""

    TYPE: ClassVar[str] = "media.stream_ended"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    kind: str
    """``video`` or ``audio``."""
    frames_received: int
    """Decoded frames received (audio frames are 20 ms each for Opus)."""
    frames_dropped: int
    """Frames not processed because a newer one was already waiting."""
    duration_s: float
    """Time from first to last frame, s."""


@dataclass(frozen=True)
class CallEnded(Payload):
    """The caller's side of the call ended (the caller hung up or the connection closed)."""

    TYPE: ClassVar[str] = "call.ended"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest", "runner")

    reason: str
    """``caller_hung_up``, ``connection_closed``, ``dispatcher_closed`` or ``server_stopped``."""


# --- scripted caller ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallerUtterance(Payload):
    """The caller said a scripted line (shown to the dispatcher as transcript)."""

    TYPE: ClassVar[str] = "caller.utterance"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner", "simulator")

    index: int
    """0-based index of the line in the call's script."""
    text: str
    """What the caller says."""
    at_s: float
    """Scripted time after the call was answered, s."""


# --- the dispatcher -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallAnswered(Payload):
    """The dispatcher answered the call (handling time starts here)."""

    TYPE: ClassVar[str] = "call.answered"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    station: str
    """Id of the dispatcher station (console instance)."""


@dataclass(frozen=True)
class IntakeIncidentType(Payload):
    """The dispatcher chose or changed the incident type."""

    TYPE: ClassVar[str] = "intake.incident_type"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    incident_type: str
    """Key from the incident-type taxonomy."""

    def check(self) -> None:
        _check_key("incident_type", self.incident_type, INCIDENT_TYPES)


@dataclass(frozen=True)
class IntakeUrgency(Payload):
    """The dispatcher classified (or re-classified) the urgency."""

    TYPE: ClassVar[str] = "intake.urgency"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    urgency: str
    """``spoed``, ``nu`` or ``later``."""

    def check(self) -> None:
        _check_enum("urgency", self.urgency, Urgency)


@dataclass(frozen=True)
class IntakeLocation(Payload):
    """The dispatcher entered or changed the incident location."""

    TYPE: ClassVar[str] = "intake.location"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    location: str
    """Free-text location as typed."""


@dataclass(frozen=True)
class IntakeItemChecked(Payload):
    """The dispatcher ticked or unticked a required information item."""

    TYPE: ClassVar[str] = "intake.item_checked"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    item: str
    """Key from the information-item taxonomy."""
    checked: bool
    """True when ticked."""

    def check(self) -> None:
        _check_key("item", self.item, INFORMATION_ITEMS)


@dataclass(frozen=True)
class IntakeDisagreementFlag(Payload):
    """The dispatcher set or cleared the flag "what the caller says and what the image shows disagree"."""

    TYPE: ClassVar[str] = "intake.disagreement_flag"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    flagged: bool
    """True when the dispatcher perceives a disagreement."""
    aspect: str
    """Aspect key (``people``, ``fire_smoke_size``, ...), empty when not given."""

    def check(self) -> None:
        if self.aspect:
            _check_key("aspect", self.aspect, DISAGREEMENT_ASPECTS)


@dataclass(frozen=True)
class CallClosed(Payload):
    """The dispatcher closed the call with the final intake (handling time ends here)."""

    TYPE: ClassVar[str] = "call.closed"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    incident_type: str
    """Final incident type key; empty when none was chosen."""
    urgency: str
    """Final urgency (``spoed``, ``nu``, ``later``); empty when none was chosen."""
    location: str
    """Final location text."""
    items_gathered: list[str]
    """Information item keys ticked at close."""
    disagreement_flagged: bool
    """Whether the disagreement flag was set at close."""
    disagreement_aspect: str
    """Aspect flagged; empty when none."""
    notes: str
    """Free notes."""

    def check(self) -> None:
        if self.incident_type:
            _check_key("incident_type", self.incident_type, INCIDENT_TYPES)
        if self.urgency:
            _check_enum("urgency", self.urgency, Urgency)
        for item in self.items_gathered:
            _check_key("items_gathered", item, INFORMATION_ITEMS)
        if self.disagreement_aspect:
            _check_key("disagreement_aspect", self.disagreement_aspect, DISAGREEMENT_ASPECTS)


@dataclass(frozen=True)
class RatingRsme(Payload):
    """The dispatcher rated the mental effort of the call just closed on the RSME."""

    TYPE: ClassVar[str] = "rating.rsme"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    value: float
    """Rating on the RSME scale, 0-150 (stored exactly as given)."""

    def check(self) -> None:
        try:
            validate_rsme(self.value)
        except ValueError as exc:
            raise EventValidationError(str(exc)) from exc


# Each area below declares its own payloads right above its tuple, so work on one area never touches another's.

# --- the caller's side: link lifecycle, permissions, geolocation, camera (issue 3) -----------------------------------

@dataclass(frozen=True)
class CallLinkRefused(Payload):
    """A request on a known caller link was refused (another browser, expired or ended link).

    A request with an unknown token (404) belongs to no call and no session; the ingest only logs it.
    """

    TYPE: ClassVar[str] = "call.link_refused"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    status: int
    """HTTP status returned: 409 (bound to another browser) or 410 (expired or ended)."""
    reason: str
    """``other_browser``, ``expired`` or ``ended``."""
    path: str
    """What was requested: ``page``, ``offer``, ``photos``, ``events`` or ``hangup``."""
    user_agent: str
    """The refused browser's User-Agent header."""


@dataclass(frozen=True)
class CallerPermission(Payload):
    """The caller's browser granted or refused a permission the caller page asked for (reported by the page)."""

    TYPE: ClassVar[str] = "caller.permission"
    SOURCES: ClassVar[tuple[str, ...]] = ("caller",)

    permission: str
    """``camera_microphone`` (one getUserMedia prompt), ``microphone`` (audio-only calls) or ``geolocation``."""
    outcome: str
    """``granted``, ``denied`` (the person or the browser's policy refused) or ``error`` (no device, busy, timeout)."""
    error_name: str
    """The browser's error name (``NotAllowedError``, ``NotFoundError``, ``NotReadableError``, geolocation code
    name ``PERMISSION_DENIED``/``POSITION_UNAVAILABLE``/``TIMEOUT``); empty when granted."""
    ms_since_page_load: float
    """Time from the caller page loading to the answer, ms (the browser's clock: ``performance.now()``)."""

    def check(self) -> None:
        if self.permission not in ("camera_microphone", "microphone", "geolocation"):
            raise EventValidationError(
                f"permission must be camera_microphone, microphone or geolocation, got {self.permission!r}"
            )
        if self.outcome not in ("granted", "denied", "error"):
            raise EventValidationError(f"outcome must be granted, denied or error, got {self.outcome!r}")


@dataclass(frozen=True)
class CallerGeolocation(Payload):
    """The caller's browser reported its position (the caller agreed to share it; reported by the page)."""

    TYPE: ClassVar[str] = "caller.geolocation"
    SOURCES: ClassVar[tuple[str, ...]] = ("caller",)

    latitude: float
    """WGS 84 latitude, decimal degrees (-90 to 90)."""
    longitude: float
    """WGS 84 longitude, decimal degrees (-180 to 180)."""
    accuracy_m: float
    """Radius of 95% confidence around the position as the browser states it, metres."""
    age_ms: float
    """How old the position was when reported (report time minus the position's timestamp), ms."""

    def check(self) -> None:
        if not (-90.0 <= self.latitude <= 90.0 and -180.0 <= self.longitude <= 180.0):
            raise EventValidationError(f"position out of range: {self.latitude}, {self.longitude}")
        if self.accuracy_m < 0:
            raise EventValidationError(f"accuracy_m must be >= 0, got {self.accuracy_m}")


@dataclass(frozen=True)
class CallerCameraSwitched(Payload):
    """The caller switched between the front and the back camera (reported by the page)."""

    TYPE: ClassVar[str] = "caller.camera_switched"
    SOURCES: ClassVar[tuple[str, ...]] = ("caller",)

    facing_mode: str
    """Camera asked for: ``environment`` (back) or ``user`` (front)."""
    reported_facing_mode: str
    """``facingMode`` the new track reports; empty when the browser does not say (desktop webcams)."""
    ok: bool
    """False when the other camera could not be started (the previous one stays on)."""

    def check(self) -> None:
        if self.facing_mode not in ("environment", "user"):
            raise EventValidationError(f"facing_mode must be environment or user, got {self.facing_mode!r}")


@dataclass(frozen=True)
class CallerConnection(Payload):
    """The caller page's view of its connection changed (reported by the page; the ingest's own view is
    ``webrtc.state_changed``)."""

    TYPE: ClassVar[str] = "caller.connection"
    SOURCES: ClassVar[tuple[str, ...]] = ("caller",)

    state: str
    """``connected``, ``disconnected`` (unstable), ``reconnecting`` (the page sends a new offer) or ``failed``."""
    attempt: int
    """1 for the first connection of the page, 2 or more for automatic reconnects."""


@dataclass(frozen=True)
class MediaPhotoMetadata(Payload):
    """Where and when a received photo was taken, from its EXIF (follows its ``media.photo_received``)."""

    TYPE: ClassVar[str] = "media.photo_metadata"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    photo_id: str
    """Id of the photo within the call (``p1``, ...), as in ``media.photo_received``."""
    has_gps: bool
    """Whether the photo carries a usable GPS position (a GPS block without coordinates counts as none)."""
    latitude: float
    """WGS 84 latitude from EXIF GPS, decimal degrees; 0 when ``has_gps`` is false."""
    longitude: float
    """WGS 84 longitude from EXIF GPS, decimal degrees; 0 when ``has_gps`` is false."""
    altitude_m: float
    """Altitude above sea level from EXIF GPS, metres; 0 when absent."""
    taken_at: str
    """Capture time as the camera states it (EXIF DateTimeOriginal, ISO 8601, local time of the camera; with the
    offset when EXIF OffsetTimeOriginal gives one); empty when absent."""


CALLER_SIDE_TYPES: tuple[type[Payload], ...] = (
    CallLinkRefused,
    CallerPermission,
    CallerGeolocation,
    CallerCameraSwitched,
    CallerConnection,
    MediaPhotoMetadata,
)
"""Link lifecycle, what the caller's page reports, and photo metadata (issue 3). Link created, opened, first frame,
photo received and ended are core types (``call.created``, ``call.link_opened``, ``media.first_frame``,
``media.photo_received``, ``call.ended``)."""

# --- the media pipeline: recording, viewers, dispatcher voice, requests to the caller (issue 4) ------------------------

RECORDING_CONTAINER = "matroska"
"""Container of call recordings: Matroska written as a stream in short segments (``rec-0001.mkv``, ...)."""

SEGMENT_END_REASONS = ("rollover", "call_ended", "error")
"""Why a recording segment was closed: see :class:`MediaRecordingSegment`."""

KEYFRAME_REASONS = ("viewer_joined", "stalled", "request", "recording")
"""Why the ingest asked the caller for a keyframe: see :class:`MediaKeyframeRequested`."""


@dataclass(frozen=True)
class MediaRecordingPolicy(Payload):
    """Whether the calls of this session are recorded (audio and video to ``media/<call_id>/rec-*.mkv``).

    Written when ``POST /api/sessions`` sets ``record``, or when the server's default (off) applies. A session
    without this event records its calls (the default)."""

    TYPE: ClassVar[str] = "media.recording_policy"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)
    CALL_SCOPED: ClassVar[bool] = False

    record: bool
    """True when calls are recorded."""
    origin: str
    """``request`` (the ``record`` field of ``POST /api/sessions``) or ``default`` (the server's setting)."""

    def check(self) -> None:
        if self.origin not in ("request", "default"):
            raise EventValidationError(f"media.recording_policy.origin must be request or default, got {self.origin!r}")


@dataclass(frozen=True)
class MediaRecordingSegment(Payload):
    """One segment of a call's recording was closed and listed in the manifest.

    A segment still being written when the ingest crashed has no such event and is not in the manifest;
    ``workbench verify`` reports it as cut by a crash, with the duration it holds."""

    TYPE: ClassVar[str] = "media.recording_segment"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    file: str
    """Path of the segment relative to the session folder (``media/<call_id>/rec-0001.mkv``)."""
    sha256: str
    """SHA-256 (hex) of the closed file."""
    size_bytes: int
    """Size of the closed file, bytes."""
    index: int
    """1-based number of the segment within the call."""
    start_s: float
    """Start of the segment on the call's recording time line (0 = the first recorded frame), s."""
    duration_s: float
    """Time from the segment's first to its last written frame, s."""
    video_frames: int
    """Video frames written (re-encoded H.264)."""
    audio_frames: int
    """Audio frames written (Opus packets as the caller sent them, or re-encoded Opus when they could not be taken
    as received; 20 ms each)."""
    frames_dropped: int
    """Frames not written because the recorder's bounded queue was full (the encoder fell behind)."""
    reason: str
    """``rollover`` (the segment reached its length), ``call_ended`` or ``error`` (the encoder failed)."""

    def check(self) -> None:
        if self.reason not in SEGMENT_END_REASONS:
            raise EventValidationError(
                f"media.recording_segment.reason must be one of {', '.join(SEGMENT_END_REASONS)}, got {self.reason!r}"
            )


@dataclass(frozen=True)
class MediaRecordingFailed(Payload):
    """The recorder of a call stopped on an error; the live view and snapshots go on."""

    TYPE: ClassVar[str] = "media.recording_failed"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    error: str
    """What went wrong (the exception's message)."""


@dataclass(frozen=True)
class MediaKeyframeRequested(Payload):
    """The ingest asked the caller's encoder for a keyframe (RTCP PLI)."""

    TYPE: ClassVar[str] = "media.keyframe_requested"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    reason: str
    """``viewer_joined`` (a live viewer opened), ``stalled`` (no video frame decoded for a while), ``request`` or
    ``recording`` (a recording that stores the received frames needs one to start a segment)."""

    def check(self) -> None:
        if self.reason not in KEYFRAME_REASONS:
            raise EventValidationError(
                f"media.keyframe_requested.reason must be one of {', '.join(KEYFRAME_REASONS)}, got {self.reason!r}"
            )


CALLER_PROMPTS = ("photo", "switch_camera", "end_video")
"""What the dispatcher can ask the caller's page to do: see :class:`DispatcherPrompt`."""


@dataclass(frozen=True)
class DispatcherPrompt(Payload):
    """The dispatcher asked the caller, through a prompt on the caller's page, to send a photo, switch camera or end
    the video (``POST /api/calls/{call_id}/prompts``)."""

    TYPE: ClassVar[str] = "dispatcher.prompt"
    SOURCES: ClassVar[tuple[str, ...]] = ("console",)

    prompt_id: int
    """1-based number of the prompt within the call."""
    prompt: str
    """``photo``, ``switch_camera`` or ``end_video``."""
    message: str
    """Text shown to the caller with the prompt; empty for the page's default wording."""

    def check(self) -> None:
        if self.prompt not in CALLER_PROMPTS:
            raise EventValidationError(
                f"dispatcher.prompt.prompt must be one of {', '.join(CALLER_PROMPTS)}, got {self.prompt!r}"
            )


@dataclass(frozen=True)
class CallerPromptDelivered(Payload):
    """The caller's page fetched a dispatcher prompt (``GET /c/{token}/prompts``); what the caller then did shows in
    the caller's own events (photo received, camera switched, stream ended)."""

    TYPE: ClassVar[str] = "caller.prompt_delivered"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    prompt_id: int
    """The ``prompt_id`` of the ``dispatcher.prompt`` delivered."""
    ms_since_prompt: float
    """Time from the prompt to its delivery to the page, ms."""


RECORDING_VIDEO_MODES = ("h264", "copy")
"""How a recording stores the caller's video: ``h264`` decoded and re-encoded with x264 (any codec), ``copy`` the
received VP8 frames stored as they came (no decode or encode for the recording)."""


@dataclass(frozen=True)
class MediaRecordingVideoPolicy(Payload):
    """How this session's recordings store the caller's video (``record_video`` of ``POST /api/sessions``, or the
    server's ``--record-video``). Written when the request sets it or when it is not the default ``h264``; a session
    without this event re-encodes (``h264``)."""

    TYPE: ClassVar[str] = "media.recording_video_policy"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)
    CALL_SCOPED: ClassVar[bool] = False

    video: str
    """``h264`` (re-encoded) or ``copy`` (received VP8 frames stored without re-encoding)."""
    origin: str
    """``request`` or ``default``."""

    def check(self) -> None:
        if self.video not in RECORDING_VIDEO_MODES:
            raise EventValidationError(
                f"media.recording_video_policy.video must be one of {', '.join(RECORDING_VIDEO_MODES)}, got {self.video!r}")
        if self.origin not in ("request", "default"):
            raise EventValidationError(f"media.recording_video_policy.origin must be request or default, got {self.origin!r}")


@dataclass(frozen=True)
class MediaRecordingVideo(Payload):
    """How this call's video is stored, decided at the caller's first offer: ``copy`` needs VP8 and a working hook
    into aiortc's receiver; otherwise the recording re-encodes (``h264``) and ``reason`` says why."""

    TYPE: ClassVar[str] = "media.recording_video"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)

    video: str
    """``h264`` or ``copy``."""
    codec: str
    """The received video codec (``VP8``, ``H264``)."""
    reason: str
    """Empty when the session's policy applies; else why not (e.g. ``copy needs VP8, the caller sends H264``)."""

    def check(self) -> None:
        if self.video not in RECORDING_VIDEO_MODES:
            raise EventValidationError(
                f"media.recording_video.video must be one of {', '.join(RECORDING_VIDEO_MODES)}, got {self.video!r}")


TALK_ORIGINS = ("toggle", "microphone_ended", "call_ended", "hold")
"""Why the dispatcher's talk control changed: the dispatcher's own control on the live view, the dispatcher's
microphone connection ending, the call ending, or the call being put on hold (``call.held``)."""


@dataclass(frozen=True)
class MediaTalkbackPolicy(Payload):
    """Whether the dispatcher may talk back to the callers of this session (the dispatcher's microphone, relayed by
    the ingest, played on the caller's page; recorded as a second audio track). Written when ``POST /api/sessions``
    sets ``talkback``, or when the server's default (``--talkback``) turns it on; a session without this event has
    talk-back off."""

    TYPE: ClassVar[str] = "media.talkback_policy"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)
    CALL_SCOPED: ClassVar[bool] = False

    allowed: bool
    """True when the dispatcher can talk to the caller."""
    origin: str
    """``request`` (the ``talkback`` field of ``POST /api/sessions``) or ``default`` (the server's setting)."""

    def check(self) -> None:
        if self.origin not in ("request", "default"):
            raise EventValidationError(f"media.talkback_policy.origin must be request or default, got {self.origin!r}")


@dataclass(frozen=True)
class DispatcherTalk(Payload):
    """The dispatcher's talk control changed: from now on the caller hears the dispatcher's microphone (``on``) or
    silence (``POST /api/calls/{call_id}/talk`` from the live view, source ``console``; or the ingest switching it
    off when the microphone or the call ended, source ``ingest``)."""

    TYPE: ClassVar[str] = "dispatcher.talk"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "ingest")

    on: bool
    """True: talking to the caller; False: the caller hears nothing from the dispatcher."""
    origin: str
    """``toggle`` (the dispatcher), ``microphone_ended`` or ``call_ended``."""
    microphone: bool
    """Whether the dispatcher's microphone was connected to the ingest at that moment."""

    def check(self) -> None:
        if self.origin not in TALK_ORIGINS:
            raise EventValidationError(f"dispatcher.talk.origin must be one of {', '.join(TALK_ORIGINS)}, got {self.origin!r}")


MEDIA_PIPELINE_TYPES: tuple[type[Payload], ...] = (
    MediaRecordingPolicy,
    MediaRecordingSegment,
    MediaRecordingFailed,
    MediaKeyframeRequested,
    DispatcherPrompt,
    CallerPromptDelivered,
    MediaTalkbackPolicy,
    DispatcherTalk,
    MediaRecordingVideoPolicy,
    MediaRecordingVideo,
)
"""Recording policy and segments, recorder failures, keyframe requests, the dispatcher's prompts to the caller,
talk-back policy and the dispatcher's talk control (issue 4)."""

# --- the runner: pause/resume, manipulations, checkpoints, breaks (issue 5) --------------------------------------------

CONTROL_ACTIONS = ("start", "pause", "resume", "abort", "inject")
"""Actions of ``POST /api/sessions/{id}/control`` recorded as ``session.control`` (``end`` writes ``session.ended``)."""

ABORT_CHECKPOINTS = ("now", "call", "block")
"""Where an abort takes effect: ``now`` (at once), ``call`` (when the calls in progress are done, no new calls),
``block`` (at the end of the current block)."""

MANIPULATION_KINDS = ("video_start", "video_drop", "bandwidth", "image", "photo_delay")
"""Kinds of ``manipulation.applied``: see :class:`ManipulationApplied`."""


@dataclass(frozen=True)
class SessionControl(Payload):
    """A trainer (or a script) steered the session through the control endpoint; the runner obeys it.

    Pause stops the session clock (arrivals, utterances and photo times shift by the paused time); ``inject`` adds
    a call now (a scenario call id, or an ad-hoc call with ``caller_label`` and ``utterances``).
    """

    TYPE: ClassVar[str] = "session.control"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest",)
    CALL_SCOPED: ClassVar[bool] = False

    action: str
    """``start``, ``pause``, ``resume``, ``abort`` or ``inject``."""
    checkpoint: str
    """For ``abort``: ``now``, ``call`` or ``block`` (see ``ABORT_CHECKPOINTS``); empty for other actions."""
    scenario_call_id: str
    """For ``inject``: the scenario call to add, or the id of an ad-hoc call; empty for other actions."""
    caller_label: str
    """For an ad-hoc ``inject``: how the queue shows the caller; empty otherwise."""
    utterances: list[str]
    """For an ad-hoc ``inject``: the caller's lines, said 0, 5, 10, ... s after the answer; empty otherwise."""

    def check(self) -> None:
        if self.action not in CONTROL_ACTIONS:
            raise EventValidationError(f"action must be one of {', '.join(CONTROL_ACTIONS)}, got {self.action!r}")
        if self.checkpoint and self.checkpoint not in ABORT_CHECKPOINTS:
            raise EventValidationError(
                f"checkpoint must be one of {', '.join(ABORT_CHECKPOINTS)}, got {self.checkpoint!r}"
            )
        if self.action == "inject" and not self.scenario_call_id:
            raise EventValidationError("inject needs a scenario_call_id (a scenario call id or an ad-hoc id)")


@dataclass(frozen=True)
class BlockPractice(Payload):
    """The block just started is a practice block (``practice = true`` in the scenario): exclude its calls from
    analysis. Written right after its ``block.started``."""

    TYPE: ClassVar[str] = "block.practice"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    block_id: str
    """Id of the practice block."""


@dataclass(frozen=True)
class BreakStarted(Payload):
    """A break between blocks began (the block's ``break_s`` option); no calls arrive during it."""

    TYPE: ClassVar[str] = "break.started"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    after_block_id: str
    """Id of the block the break follows."""
    duration_s: float
    """Planned length of the break in session time (pauses lengthen it), s."""


@dataclass(frozen=True)
class BreakEnded(Payload):
    """A break between blocks ended."""

    TYPE: ClassVar[str] = "break.ended"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    after_block_id: str
    """Id of the block the break followed."""


@dataclass(frozen=True)
class ManipulationApplied(Payload):
    """The runner applied a manipulation of the scenario to this call's simulated caller (written when the call is
    created, before the caller starts; the times are scenario times from the call's arrival)."""

    TYPE: ClassVar[str] = "manipulation.applied"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner", "simulator")

    kind: str
    """``video_start`` (live video fails to start), ``video_drop`` (live video stops mid-call), ``bandwidth``
    (reduced resolution and frame rate), ``image`` (degraded photos and/or video frames) or ``photo_delay``."""
    value: str
    """The setting in words, e.g. ``no_offer``, ``no_frames``, ``scale=0.5 fps=5``, ``blur=4 dark=0.3 partial=0.5
    on=photos,video``, ``+20s``."""
    at_s: float
    """When it takes effect after the call arrives, s (0 when from the start)."""

    def check(self) -> None:
        if self.kind not in MANIPULATION_KINDS:
            raise EventValidationError(f"kind must be one of {', '.join(MANIPULATION_KINDS)}, got {self.kind!r}")


@dataclass(frozen=True)
class CallInjected(Payload):
    """The call was added on a trainer's ``inject`` request (not at a scripted arrival); written right after its
    ``call.created``."""

    TYPE: ClassVar[str] = "call.injected"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner", "simulator")

    request_seq: int
    """``seq`` of the ``session.control`` event that asked for it."""
    adhoc: bool
    """True for an ad-hoc call (not defined in the scenario; no ground truth)."""


@dataclass(frozen=True)
class RunnerResumed(Payload):
    """A runner attached to a session it did not create (after a runner crash) and continues it from the log."""

    TYPE: ClassVar[str] = "runner.resumed"
    SOURCES: ClassVar[tuple[str, ...]] = ("runner",)
    CALL_SCOPED: ClassVar[bool] = False

    calls_done: list[str]
    """Scenario call ids already created before the crash (not created again)."""
    calls_in_progress: list[str]
    """Of those, the ones not yet rated: followed to their end without a caller (their caller process is gone)."""


RUNNER_TYPES: tuple[type[Payload], ...] = (
    SessionControl,
    BlockPractice,
    BreakStarted,
    BreakEnded,
    ManipulationApplied,
    CallInjected,
    RunnerResumed,
)

# --- the console and the instruments: hold, focus, photo views, NASA-TLX, DRT (issue 6) -------------------------------

UNIT_TYPES: dict[str, str] = {
    "ambulance": "Ambulance",
    "fire_engine": "Fire engine",
    "aerial_ladder": "Aerial ladder / platform",
    "police": "Police car",
    "medical_helicopter": "Trauma helicopter (MMT)",
    "water_rescue": "Water rescue team",
    "hazmat": "Hazardous materials unit",
    "first_responder": "First responder (AED volunteer)",
    "other": "Other unit",
}
"""Unit types a dispatcher can dispatch (``intake.units``); key -> label shown in the console."""

CONSOLE_PANELS = ("transcript", "live_view", "photos", "form", "queue")
"""Panels of the dispatcher page whose focus ``console.focus`` logs."""

FOCUS_TRIGGERS = ("pointer", "focus", "hover")
"""What moved the focus to a panel: ``pointer`` (press or wheel in it), ``focus`` (keyboard focus entered it, or an
iframe in it took focus), ``hover`` (the pointer rested in it for 300 ms)."""

DRT_STIMULUS_KINDS = ("visual", "tone", "visual_tone")
"""Kinds of DRT stimulus: a red light at the screen edge, a 1 kHz tone (WebAudio), or both."""

DRT_INPUTS = ("key", "button")
"""How a DRT response was given: the response key, or the on-screen button."""


@dataclass(frozen=True)
class CallHeld(Payload):
    """The dispatcher put the call on hold (to answer another one); handling time keeps running."""

    TYPE: ClassVar[str] = "call.held"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    station: str
    """Id of the dispatcher station (console instance)."""


@dataclass(frozen=True)
class CallResumed(Payload):
    """The dispatcher took a held call back."""

    TYPE: ClassVar[str] = "call.resumed"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    station: str
    """Id of the dispatcher station (console instance)."""


CONSOLE_AUDIO_STATES = ("muted", "unmuted")
"""Whether the caller's audio plays in the dispatcher's console (``console.audio.state``)."""
CONSOLE_AUDIO_REASONS = ("hold", "resume", "dispatcher")
"""Why it changed: the call was put on hold (the live view, and with it the caller's audio and any talk-back, is
stopped), taken back (the live view plays the caller again without another click), or the dispatcher's own
"Mute caller" / "Unmute caller" (or "Hear the caller") control on the live view."""


@dataclass(frozen=True)
class ConsoleAudio(Payload):
    """The caller's audio in the dispatcher's console was muted or unmuted, e.g. by Hold and Resume (so the time the
    dispatcher could hear a caller is in the log, not inferred from ``call.held``/``call.resumed``)."""

    TYPE: ClassVar[str] = "console.audio"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    state: str
    """``muted`` or ``unmuted`` (see ``CONSOLE_AUDIO_STATES``)."""
    reason: str
    """``hold``, ``resume`` (posted by the console) or ``dispatcher`` (by the live view; see
    ``CONSOLE_AUDIO_REASONS``)."""

    def check(self) -> None:
        if self.state not in CONSOLE_AUDIO_STATES:
            raise EventValidationError(f"console.audio.state must be one of {', '.join(CONSOLE_AUDIO_STATES)}, "
                                       f"got {self.state!r}")
        if self.reason not in CONSOLE_AUDIO_REASONS:
            raise EventValidationError(f"console.audio.reason must be one of {', '.join(CONSOLE_AUDIO_REASONS)}, "
                                       f"got {self.reason!r}")


@dataclass(frozen=True)
class PhotoOpened(Payload):
    """The dispatcher opened a photo of the call in the photo viewer (dwell time runs until the next
    ``photo.opened`` or ``photo.closed`` of the call)."""

    TYPE: ClassVar[str] = "photo.opened"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    photo_id: str
    """Id of the photo within the call (``p1``, ...), as in ``media.photo_received``."""


@dataclass(frozen=True)
class PhotoEnlarged(Payload):
    """The dispatcher enlarged the open photo to the full page width, or shrank it back."""

    TYPE: ClassVar[str] = "photo.enlarged"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    photo_id: str
    """Id of the open photo."""
    enlarged: bool
    """True when enlarged, False when shrunk back to the panel size."""


@dataclass(frozen=True)
class PhotoClosed(Payload):
    """The dispatcher closed the photo viewer."""

    TYPE: ClassVar[str] = "photo.closed"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    photo_id: str
    """Id of the photo that was open."""


@dataclass(frozen=True)
class IntakeUnits(Payload):
    """The dispatcher changed the units to dispatch (the whole selection after the change)."""

    TYPE: ClassVar[str] = "intake.units"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    units: list[str]
    """Unit type keys selected (see ``UNIT_TYPES``), in selection order; empty when none."""

    def check(self) -> None:
        for unit in self.units:
            _check_key("units", unit, UNIT_TYPES)


@dataclass(frozen=True)
class IntakeDisagreementConfidence(Payload):
    """How sure the dispatcher is that what the caller says and what the image shows disagree (or agree)."""

    TYPE: ClassVar[str] = "intake.disagreement_confidence"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    confidence: int
    """1 (not sure at all) to 5 (completely sure) about the current state of the disagreement flag."""

    def check(self) -> None:
        if not 1 <= self.confidence <= 5:
            raise EventValidationError(f"confidence must be 1-5, got {self.confidence}")


@dataclass(frozen=True)
class IntakeNotes(Payload):
    """The dispatcher changed the free notes (committed on leaving the field); ``call.closed`` repeats the final
    notes."""

    TYPE: ClassVar[str] = "intake.notes"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    notes: str
    """The whole notes text after the change."""


@dataclass(frozen=True)
class ConsoleFocus(Payload):
    """The dispatcher's attention moved to another panel of the active call (from the browser's pointer and focus
    events; logged only on a change of panel, at most a few per second)."""

    TYPE: ClassVar[str] = "console.focus"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    panel: str
    """``transcript``, ``live_view``, ``photos``, ``form`` or ``queue`` (see ``CONSOLE_PANELS``)."""
    trigger: str
    """``pointer``, ``focus`` or ``hover`` (see ``FOCUS_TRIGGERS``)."""
    browser_ms: float
    """When it happened on the ingest's monotonic clock (ms; ``t_mono_ns / 1e6`` scale), estimated in the browser
    (the browser event's time plus the clock offset measured with ``GET /api/clock``)."""

    def check(self) -> None:
        if self.panel not in CONSOLE_PANELS:
            raise EventValidationError(f"panel must be one of {', '.join(CONSOLE_PANELS)}, got {self.panel!r}")
        if self.trigger not in FOCUS_TRIGGERS:
            raise EventValidationError(f"trigger must be one of {', '.join(FOCUS_TRIGGERS)}, got {self.trigger!r}")


@dataclass(frozen=True)
class RatingNasaTlx(Payload):
    """The dispatcher rated the workload of the block just ended on the NASA-TLX (Hart & Staveland 1988): six
    subscales, 0-100 in steps of 5. Raw TLX is their mean (``workbench.domain.instruments.raw_tlx``)."""

    TYPE: ClassVar[str] = "rating.nasa_tlx"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    block_id: str
    """Id of the block rated (as in its ``block.ended``)."""
    mental_demand: int
    """Mental demand, 0 (low) to 100 (high), steps of 5."""
    physical_demand: int
    """Physical demand, 0 (low) to 100 (high), steps of 5."""
    temporal_demand: int
    """Temporal demand, 0 (low) to 100 (high), steps of 5."""
    performance: int
    """Performance, 0 (good) to 100 (poor), steps of 5."""
    effort: int
    """Effort, 0 (low) to 100 (high), steps of 5."""
    frustration: int
    """Frustration, 0 (low) to 100 (high), steps of 5."""

    def check(self) -> None:
        from workbench.domain.instruments import TLX_SUBSCALES, check_tlx_rating

        for name in TLX_SUBSCALES:
            try:
                check_tlx_rating(name, getattr(self, name))
            except ValueError as exc:
                raise EventValidationError(str(exc)) from exc


@dataclass(frozen=True)
class RatingNasaTlxWeights(Payload):
    """The dispatcher's 15 pairwise comparisons of the NASA-TLX subscales for the block just rated (which of two
    contributed more to the workload); weight of a subscale = times chosen (0-5)."""

    TYPE: ClassVar[str] = "rating.nasa_tlx_weights"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    block_id: str
    """Id of the block rated."""
    choices: list[str]
    """The subscale chosen from each of the 15 pairs, in the order of ``workbench.domain.instruments.TLX_PAIRS``
    (``itertools.combinations`` of mental_demand, physical_demand, temporal_demand, performance, effort,
    frustration)."""

    def check(self) -> None:
        from workbench.domain.instruments import check_tlx_choices

        try:
            check_tlx_choices(self.choices)
        except ValueError as exc:
            raise EventValidationError(str(exc)) from exc


@dataclass(frozen=True)
class DrtStimulus(Payload):
    """A Detection Response Task stimulus was presented (ISO 17488:2016; timed in the dispatcher's browser and
    posted by it). Onset-to-log jitter = ``onset_ms - scheduled_onset_ms``."""

    TYPE: ClassVar[str] = "drt.stimulus"
    SOURCES: ClassVar[tuple[str, ...]] = ("console",)
    CALL_SCOPED: ClassVar[bool] = False

    run_id: str
    """Id of the DRT run (one per loaded console page); stimuli and responses pair within a run."""
    stimulus_index: int
    """0-based index of the stimulus in its run."""
    kind: str
    """``visual``, ``tone`` or ``visual_tone`` (see ``DRT_STIMULUS_KINDS``)."""
    scheduled_onset_ms: float
    """When the stimulus was due (3-5 s after the previous one, uniformly at random), ms on the ingest's monotonic
    clock (``t_mono_ns / 1e6`` scale), estimated in the browser."""
    onset_ms: float
    """When it was shown (the first animation frame with it; for a tone alone, when it was started), ms on the same
    clock."""
    clock_offset_ms: float
    """Offset added to the browser's ``performance.now()`` to get the ingest clock, ms."""
    clock_rtt_ms: float
    """Round-trip time of the ``GET /api/clock`` request the offset came from, ms (the offset's error is at most
    half of it)."""

    def check(self) -> None:
        if self.kind not in DRT_STIMULUS_KINDS:
            raise EventValidationError(f"kind must be one of {', '.join(DRT_STIMULUS_KINDS)}, got {self.kind!r}")
        if self.stimulus_index < 0:
            raise EventValidationError(f"stimulus_index must be >= 0, got {self.stimulus_index}")


@dataclass(frozen=True)
class DrtResponse(Payload):
    """The dispatcher gave a DRT response (pressed the response key or the on-screen button; timed in the
    browser from the input event's ``timeStamp``)."""

    TYPE: ClassVar[str] = "drt.response"
    SOURCES: ClassVar[tuple[str, ...]] = ("console",)
    CALL_SCOPED: ClassVar[bool] = False

    run_id: str
    """Id of the DRT run (as in ``drt.stimulus``)."""
    stimulus_index: int
    """Index of the latest stimulus of the run shown before the response; -1 when none was shown yet."""
    response_ms: float
    """When the response was given, ms on the ingest's monotonic clock (as ``drt.stimulus.onset_ms``)."""
    rt_ms: float
    """Response time: ``response_ms`` minus the onset of stimulus ``stimulus_index``, ms (-1 when there is none).
    Scored by ``workbench.domain.instruments.classify_drt_response``: under 100 too early, 100-2500 hit."""
    input: str
    """``key`` (the response key) or ``button`` (the on-screen button); see ``DRT_INPUTS``."""

    def check(self) -> None:
        if self.input not in DRT_INPUTS:
            raise EventValidationError(f"input must be one of {', '.join(DRT_INPUTS)}, got {self.input!r}")


CONSOLE_TYPES: tuple[type[Payload], ...] = (
    CallHeld,
    CallResumed,
    ConsoleAudio,
    PhotoOpened,
    PhotoEnlarged,
    PhotoClosed,
    IntakeUnits,
    IntakeDisagreementConfidence,
    IntakeNotes,
    ConsoleFocus,
    RatingNasaTlx,
    RatingNasaTlxWeights,
    DrtStimulus,
    DrtResponse,
)
"""Hold/resume, photo viewing, more intake, panel focus, NASA-TLX and DRT (issue 6). Widget changes of the older
intake fields are core types (``intake.*``)."""

# --- trainers and participants: consent, questionnaire, withdrawal (issue 7) -------------------------------------------



@dataclass(frozen=True)
class ParticipantConsent(Payload):
    """The participant answered the consent text on the console (before any call). A refusal is the last thing
    recorded of the session: the console ends it at once (``session.ended``, reason ``aborted``)."""

    TYPE: ClassVar[str] = "participant.consent"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    given: bool
    """True when the participant agreed, False when they refused."""
    text_sha256: str
    """SHA-256 (hex) of the consent text shown (UTF-8), so the text agreed to can be identified later."""

    def check(self) -> None:
        if len(self.text_sha256) != 64 or any(c not in "0123456789abcdef" for c in self.text_sha256):
            raise EventValidationError(f"text_sha256 must be 64 lower-case hex digits, got {self.text_sha256!r}")


@dataclass(frozen=True)
class ParticipantStep(Payload):
    """A screen of the participant flow appeared (``shown``) or was left (``done``) on the console; the time between
    the two is the time spent on it (reading the instructions, the break)."""

    TYPE: ClassVar[str] = "participant.step"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    step: str
    """``consent``, ``instructions``, ``practice`` (the practice block's banner), ``break``, ``questionnaire`` or
    ``end`` (the thank-you screen)."""
    phase: str
    """``shown`` or ``done``."""
    block_id: str
    """For ``practice`` the practice block, for ``break`` the block the break follows; empty otherwise."""

    def check(self) -> None:
        if self.step not in FLOW_STEPS:
            raise EventValidationError(f"step must be one of {', '.join(FLOW_STEPS)}, got {self.step!r}")
        if self.phase not in STEP_PHASES:
            raise EventValidationError(f"phase must be one of {', '.join(STEP_PHASES)}, got {self.phase!r}")


@dataclass(frozen=True)
class ParticipantQuestionnaire(Payload):
    """The end questionnaire: the participant's covariates (``sessions.csv`` carries them)."""

    TYPE: ClassVar[str] = "participant.questionnaire"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")
    CALL_SCOPED: ClassVar[bool] = False

    age_band: str
    """Age band: ``18-24``, ``25-34``, ``35-44``, ``45-54``, ``55-64``, ``65+`` or ``no_answer``."""
    experience_years: int
    """Years of experience as a dispatcher (centralist), whole years 0-50."""
    discipline: str
    """``ambulance``, ``fire``, ``police``, ``multidisciplinary`` or ``none`` (not a dispatcher)."""

    def check(self) -> None:
        problems = check_questionnaire(self.age_band, self.experience_years, self.discipline)
        if problems:
            raise EventValidationError("; ".join(problems))


PARTICIPANT_TYPES: tuple[type[Payload], ...] = (ParticipantConsent, ParticipantStep, ParticipantQuestionnaire)
"""Consent, the timing of each screen of the participant flow, and the end questionnaire (issue 7)."""

# --- incidents: links between reports, advice, screening (issues 10, 11) -----------------------------------------------

LINK_RELATIONS = ("parent", "child", "related")
"""EIDO link semantics of a link between two reports, read from the report that carries the event: ``parent`` (the
other report is this one's parent: the incident's leading report), ``child`` (the other report is this one's
child), ``related`` (same incident, no hierarchy). Unlinking is ``link.removed``."""
LINK_DECISIONS = ("accept", "reject")
"""What a dispatcher can do with a link proposal."""
LINK_ORIGINS = ("proposal", "manual")
"""How a link came about: an accepted proposal, or the dispatcher linking by hand."""
NO_EVIDENCE = -1.0
"""Value of a ``link.proposed`` component score that had no evidence (for example no photo on either side)."""


def _check_unit_or_missing(name: str, value: float) -> None:
    if value != NO_EVIDENCE and not 0.0 <= value <= 1.0:
        raise EventValidationError(f"{name} must be in [0, 1] or {NO_EVIDENCE} (no evidence), got {value!r}")


@dataclass(frozen=True)
class LinkScore(Payload):
    """The fields a link proposal and its rescoring share: the pair of reports, the score and its components
    (``workbench.screening.linking``). Not an event type of its own."""

    proposal_id: str
    """Id of the proposal, unique in the session (``lp1``, ``lp2``, ...); decisions and rescorings refer to it."""
    other_call_id: str
    """The earlier report of the pair (``call_id`` carries the newer one)."""
    score: float
    """Link score 0..1 (weighted mean of the component scores, missing evidence counted as 0.5); a rescoring may
    fall below the proposal threshold."""
    reasons: list[str]
    """Human-readable reasons, one per component with evidence (what was compared and what came out)."""
    time_score: float
    """Time-gap component 0..1, or -1 without evidence."""
    distance_score: float
    """Distance component 0..1, or -1 without positions."""
    type_score: float
    """Incident-type component 0..1 (1 same type), or -1 when either type is unknown."""
    text_score: float
    """Transcript-similarity component 0..1, or -1 when either report has no lines yet."""
    image_score: float
    """Image-similarity component 0..1 (colour histograms), or -1 when either report has no image."""

    def check(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise EventValidationError(f"score must be in [0, 1], got {self.score!r}")
        for name in ("time_score", "distance_score", "type_score", "text_score", "image_score"):
            _check_unit_or_missing(name, getattr(self, name))


@dataclass(frozen=True)
class LinkProposed(LinkScore):
    """The workbench proposes that this report (``call_id``, the newer one) and another report are about one
    incident (``workbench.screening.linking``). Written once per pair, when the score first reaches the proposal
    threshold; not ground truth."""

    TYPE: ClassVar[str] = "link.proposed"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest", "simulator")


@dataclass(frozen=True)
class LinkRescored(LinkScore):
    """New evidence changed the score of an undecided link proposal by at least 0.1 (for example the transcripts
    arrived after a proposal made from the callers' positions); the console shows the latest score and reasons.
    Carried by the same report as its ``link.proposed``."""

    TYPE: ClassVar[str] = "link.rescored"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest", "simulator")


@dataclass(frozen=True)
class LinkDecided(Payload):
    """The dispatcher accepted or rejected a link proposal (shown on report ``call_id``). An accept is followed by
    the ``link.set`` it makes."""

    TYPE: ClassVar[str] = "link.decided"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    proposal_id: str
    """The ``link.proposed`` decided on."""
    other_call_id: str
    """The other report of the proposal."""
    decision: str
    """``accept`` or ``reject``."""
    relation: str
    """On accept: the relation set (``parent``, ``child``, ``related``, the other report's role); empty on reject."""

    def check(self) -> None:
        if self.decision not in LINK_DECISIONS:
            raise EventValidationError(f"decision must be one of {', '.join(LINK_DECISIONS)}, got {self.decision!r}")
        if self.decision == "accept" and self.relation not in LINK_RELATIONS:
            raise EventValidationError(f"relation must be one of {', '.join(LINK_RELATIONS)}, got {self.relation!r}")
        if self.decision == "reject" and self.relation:
            raise EventValidationError("a rejected proposal sets no relation; send relation \"\"")


@dataclass(frozen=True)
class LinkSet(Payload):
    """Report ``call_id`` is now linked to another report (EIDO ``linkComponent``); replaces any earlier relation
    of the same pair."""

    TYPE: ClassVar[str] = "link.set"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    other_call_id: str
    """The other report (ingest call id)."""
    relation: str
    """The other report's role relative to this one: ``parent``, ``child`` or ``related``."""
    origin: str
    """``proposal`` (an accepted ``link.proposed``) or ``manual`` (linked by hand)."""
    proposal_id: str
    """The accepted proposal; empty when linked by hand."""

    def check(self) -> None:
        if self.relation not in LINK_RELATIONS:
            raise EventValidationError(f"relation must be one of {', '.join(LINK_RELATIONS)}, got {self.relation!r}")
        if self.origin not in LINK_ORIGINS:
            raise EventValidationError(f"origin must be one of {', '.join(LINK_ORIGINS)}, got {self.origin!r}")


@dataclass(frozen=True)
class LinkRemoved(Payload):
    """The dispatcher unlinked report ``call_id`` from another report (EIDO unlink)."""

    TYPE: ClassVar[str] = "link.removed"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    other_call_id: str
    """The report no longer linked."""


@dataclass(frozen=True)
class AdviceGiven(Payload):
    """The workbench's triage advice for report ``call_id`` (``workbench.screening.advice``) changed; written only
    in blocks with advice switched on. What the dispatcher saw of it is ``advice.shown``."""

    TYPE: ClassVar[str] = "advice.given"
    SOURCES: ClassVar[tuple[str, ...]] = ("ingest", "simulator")

    urgency: str
    """Advised urgency: ``spoed``, ``nu`` or ``later``."""
    rules: list[str]
    """Ids of the rules that fired (T1..T6, M1, M2), most urgent first."""
    reasons: list[str]
    """One human-readable reason per fired rule, with its evidence."""

    def check(self) -> None:
        _check_enum("urgency", self.urgency, Urgency)


@dataclass(frozen=True)
class AdviceShown(Payload):
    """The console showed the dispatcher a triage advice for report ``call_id`` (once per advice it shows)."""

    TYPE: ClassVar[str] = "advice.shown"
    SOURCES: ClassVar[tuple[str, ...]] = ("console", "simulator")

    advice_seq: int
    """``seq`` of the ``advice.given`` shown (0 when the simulator writes it without one)."""
    urgency: str
    """The advised urgency shown: ``spoed``, ``nu`` or ``later``."""
    rules: list[str]
    """Ids of the rules shown as reasons."""

    def check(self) -> None:
        _check_enum("urgency", self.urgency, Urgency)


INCIDENT_EVENT_TYPES: tuple[type[Payload], ...] = (
    LinkProposed,
    LinkRescored,
    LinkDecided,
    LinkSet,
    LinkRemoved,
    AdviceGiven,
    AdviceShown,
)
"""Link proposals between reports and the dispatcher's links (EIDO link semantics), triage advice given and shown
(issue 11)."""

CORE_TYPES: tuple[type[Payload], ...] = (
    SessionStarted,
    SessionEnded,
    BlockStarted,
    BlockEnded,
    CallCreated,
    CallLinkOpened,
    WebrtcOfferReceived,
    WebrtcStateChanged,
    MediaFirstFrame,
    MediaSnapshot,
    MediaPhotoReceived,
    MediaStreamEnded,
    CallEnded,
    CallerUtterance,
    CallAnswered,
    IntakeIncidentType,
    IntakeUrgency,
    IntakeLocation,
    IntakeItemChecked,
    IntakeDisagreementFlag,
    CallClosed,
    RatingRsme,
)
"""The payloads of the first vertical slice (issue 2)."""

PAYLOAD_TYPES: tuple[type[Payload], ...] = (
    CORE_TYPES
    + CALLER_SIDE_TYPES
    + MEDIA_PIPELINE_TYPES
    + RUNNER_TYPES
    + CONSOLE_TYPES
    + PARTICIPANT_TYPES
    + INCIDENT_EVENT_TYPES
)
"""Every declared payload type, in codebook order."""


def payload_class(event_type: str) -> type[Payload]:
    """The payload class declared for ``event_type``; raises :class:`EventValidationError` if unknown."""
    cls = _PAYLOAD_BY_TYPE.get(event_type) if isinstance(event_type, str) else None
    if cls is not None:
        return cls
    known = ", ".join(c.TYPE for c in PAYLOAD_TYPES)
    raise EventValidationError(f"unknown event type {event_type!r}; known types: {known}")


_PAYLOAD_BY_TYPE: dict[str, type[Payload]] = {cls.TYPE: cls for cls in reversed(PAYLOAD_TYPES)}
"""Event type -> payload class: a dict look-up instead of a scan of ~80 classes per event read (the first class
of a type wins, as in the scan; immutable after import, like the classes themselves)."""


@functools.cache
def _field_types(cls: type[Payload]) -> tuple[tuple[str, Any], ...]:
    """``(name, resolved type)`` of each field of a payload class, in declaration order.

    Memoised per class (classes are immutable declarations, so the memo changes no result): resolving the string
    annotations with ``typing.get_type_hints`` costs about 0.2 ms per call and was 85% of the time spent reading a
    log (every append and every line read validates its payload here).
    """
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


_NO_FAST = object()
"""Returned by a fast field converter for a value it does not accept as is (then :func:`_coerce` decides)."""


def _fast_bool(value: Any) -> Any:
    return value if value.__class__ is bool else _NO_FAST


def _fast_int(value: Any) -> Any:
    return value if value.__class__ is int else _NO_FAST


def _fast_float(value: Any) -> Any:
    cls = value.__class__
    return float(value) if cls is float or cls is int else _NO_FAST


def _fast_str(value: Any) -> Any:
    return value if value.__class__ is str else _NO_FAST


def _fast_none(value: Any) -> Any:
    return _NO_FAST


_FAST_CONVERTERS: dict[Any, Callable[[Any], Any]] = {bool: _fast_bool, int: _fast_int, float: _fast_float,
                                                     str: _fast_str}
"""Converters for the exact JSON types ``json.loads`` produces; they return :data:`_NO_FAST` for anything else,
so a subclass, a list or a wrong type takes the general :func:`_coerce` path with its error messages."""


_FieldConverter = tuple[str, Callable[[Any], Any], Any]
"""(field name, fast converter, resolved type) of one payload field."""


@functools.cache
def _converters(cls: type[Payload]) -> tuple[tuple[str, ...], frozenset[str], tuple[_FieldConverter, ...]]:
    """Field names (declaration order), their set, and ``(name, fast converter, type)`` per field of ``cls``.

    Memoised per class like :func:`_field_types`: reading a study validates ~10^5-10^6 payloads, and choosing the
    check per field once instead of per value roughly halves :func:`payload_from_dict` (measured by
    ``benchmarks/bench_analysis.py``); the values accepted and the errors raised are those of :func:`_coerce`.
    """
    fields = _field_types(cls)
    names = tuple(name for name, _ in fields)
    converters = tuple((name, _FAST_CONVERTERS.get(hint, _fast_none), hint) for name, hint in fields)
    return names, frozenset(names), converters


def payload_from_dict(event_type: str, data: Any) -> Payload:
    """Build and validate the payload of ``event_type`` from a JSON object.

    Raises :class:`EventValidationError` naming the field when a field is missing, unexpected or of the wrong type,
    or a value is outside its vocabulary.
    """
    cls = payload_class(event_type)
    if not isinstance(data, dict):
        raise EventValidationError(f"{event_type}: data must be a JSON object, got {type(data).__name__}")
    names, name_set, converters = _converters(cls)
    if len(data) != len(names) or not name_set.issuperset(data):
        missing = [n for n in names if n not in data]
        extra = [k for k in data if k not in names]
        parts = []
        if missing:
            parts.append(f"missing field(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected field(s) {', '.join(sorted(extra))}")
        raise EventValidationError(f"{event_type}: {'; '.join(parts)} (expected fields: {', '.join(names)})")
    values = {}
    for name, convert, hint in converters:
        value = data[name]
        # The precomputed converter accepts the common well-typed value; anything else goes through _coerce, which
        # converts what it may (nested lists) or raises the one error message for that field.
        converted = convert(value)
        values[name] = converted if converted is not _NO_FAST else _coerce(f"{event_type}.{name}", value, hint)
    payload = cls(**values)
    payload.check()
    return payload


@dataclass(frozen=True)
class Event:
    """One recorded event: the envelope and the payload.

    ``t_mono_ns`` is the ingest's ``time.monotonic_ns()`` when the event was appended (ns, comparable within one
    ingest run only); ``t_wall`` is UTC ISO 8601 with microseconds.
    """

    schema: int
    session_id: str
    seq: int
    t_mono_ns: int
    t_wall: str
    source: str
    type: str
    call_id: str | None
    data: Payload

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as one line of ``events.jsonl``."""
        return {
            "schema": self.schema,
            "session_id": self.session_id,
            "seq": self.seq,
            "t_mono_ns": self.t_mono_ns,
            "t_wall": self.t_wall,
            "source": self.source,
            "type": self.type,
            "call_id": self.call_id,
            "data": dataclasses.asdict(self.data),
        }

    def to_json_line(self) -> str:
        """One line of JSON (no newline), UTF-8 safe, keys in declaration order."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


_ENVELOPE: tuple[tuple[str, type], ...] = (
    ("schema", int), ("session_id", str), ("seq", int), ("t_mono_ns", int), ("t_wall", str), ("source", str),
    ("type", str),
)
"""Envelope fields of an event line and their JSON types, in the order they are checked."""


def event_from_dict(obj: Any) -> Event:
    """Validate a decoded line of ``events.jsonl`` into an :class:`Event`.

    Raises :class:`EventValidationError` naming what is wrong (envelope field, unknown type, payload field).
    """
    if not isinstance(obj, dict):
        raise EventValidationError(f"an event must be a JSON object, got {type(obj).__name__}")
    for name, kind in _ENVELOPE:
        if name not in obj:
            raise EventValidationError(f"event is missing envelope field {name!r}")
        if not isinstance(obj[name], kind) or isinstance(obj[name], bool):
            raise EventValidationError(f"envelope field {name!r} must be {kind.__name__}, got {obj[name]!r}")
    if obj["schema"] != EVENT_SCHEMA:
        raise EventValidationError(f"event schema {obj['schema']} is not supported (this version reads {EVENT_SCHEMA})")
    payload = payload_from_dict(obj["type"], obj.get("data"))
    call_id = obj.get("call_id")
    if call_id is not None and not isinstance(call_id, str):
        raise EventValidationError(f"envelope field 'call_id' must be a string or null, got {call_id!r}")
    check_envelope(type(payload), obj["source"], call_id)
    return Event(
        schema=obj["schema"],
        session_id=obj["session_id"],
        seq=obj["seq"],
        t_mono_ns=obj["t_mono_ns"],
        t_wall=obj["t_wall"],
        source=obj["source"],
        type=obj["type"],
        call_id=call_id,
        data=payload,
    )


def check_envelope(cls: type[Payload], source: str, call_id: str | None) -> None:
    """Raise :class:`EventValidationError` if ``source`` may not emit ``cls`` or ``call_id`` is missing/unexpected."""
    if source not in cls.SOURCES:
        raise EventValidationError(
            f"{cls.TYPE}: source {source!r} may not emit this event (allowed: {', '.join(cls.SOURCES)})"
        )
    if cls.CALL_SCOPED and not call_id:
        raise EventValidationError(f"{cls.TYPE}: call_id is required")
    if not cls.CALL_SCOPED and call_id:
        raise EventValidationError(f"{cls.TYPE}: is a session-level event and takes no call_id")


# --- codebook -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldDoc:
    """One documented payload field: name, JSON type and the attribute docstring."""

    name: str
    json_type: str
    doc: str


@dataclass(frozen=True)
class EventTypeDoc:
    """One documented event type: ``type`` string, class docstring, allowed sources and fields."""

    event_type: str
    doc: str
    sources: tuple[str, ...]
    call_scoped: bool
    fields: tuple[FieldDoc, ...]


def describe_event_types() -> list[EventTypeDoc]:
    """Read the declarations above (class and attribute docstrings) into a list for the codebook."""
    tree = ast.parse(inspect.getsource(typing.cast(types.ModuleType, inspect.getmodule(Payload))))
    attribute_docs: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            docs: dict[str, str] = {}
            body = node.body
            for current, following in zip(body, body[1:]):
                if (
                    isinstance(current, ast.AnnAssign)
                    and isinstance(current.target, ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    docs[current.target.id] = inspect.cleandoc(following.value.value)
            attribute_docs[node.name] = docs
    result = []
    for cls in PAYLOAD_TYPES:
        hints = typing.get_type_hints(cls)
        fields = tuple(
            FieldDoc(f.name, _json_type_name(hints[f.name]), _attribute_doc(attribute_docs, cls, f.name))
            for f in dataclasses.fields(cls)
        )
        result.append(EventTypeDoc(cls.TYPE, inspect.cleandoc(cls.__doc__ or ""), cls.SOURCES, cls.CALL_SCOPED, fields))
    return result


# --- helpers --------------------------------------------------------------------------------------------------------


def _attribute_doc(attribute_docs: dict[str, dict[str, str]], cls: type, name: str) -> str:
    """The docstring of field ``name`` from the nearest class in ``cls``'s MRO that declares it here (a field may
    come from a shared base such as :class:`LinkScore`)."""
    for klass in cls.__mro__:
        doc = attribute_docs.get(klass.__name__, {}).get(name)
        if doc is not None:
            return doc
    return ""


def _check_enum(name: str, value: str, enum_cls: type) -> None:
    allowed = [m.value for m in enum_cls]  # type: ignore[attr-defined]
    if value not in allowed:
        raise EventValidationError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _check_key(name: str, value: str, vocabulary: dict[str, str]) -> None:
    if value not in vocabulary:
        raise EventValidationError(f"{name} must be one of {', '.join(vocabulary)}, got {value!r}")


def _json_type_name(hint: Any) -> str:
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if hint is float:
        return "number"
    if hint is str:
        return "string"
    if typing.get_origin(hint) is list:
        return f"array of {_json_type_name(typing.get_args(hint)[0])}"
    return str(hint)


def _coerce(path: str, value: Any, hint: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(hint) is list:
        if isinstance(value, list):
            inner = typing.get_args(hint)[0]
            return [_coerce(f"{path}[{i}]", v, inner) for i, v in enumerate(value)]
    raise EventValidationError(f"{path} must be {_json_type_name(hint)}, got {value!r}")
