"""Settings of the ingest server, passed in (never read from module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.domain.roles import AccessCodes

ICE_MODES = ("lan", "stun", "loopback")


@dataclass(frozen=True)
class IngestSettings:
    """How the ingest listens, builds caller links and negotiates ICE.

    ``ice_mode``: ``lan`` (host candidates of this machine, no STUN), ``stun`` (the given STUN/TURN servers),
    ``loopback`` (127.0.0.1 only, for tests and a single-machine demo). ``public_url`` is the base of caller links
    (``http(s)://host:port`` as phones reach it); when empty, ``http://{host}:{port}``.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    recordings: Path = Path("recordings")
    public_url: str = ""
    ice_mode: str = "loopback"
    stun_urls: tuple[str, ...] = ()
    turn_url: str = ""
    turn_user: str = ""
    turn_password: str = ""
    upload_limit_bytes: int = 25 * 1024 * 1024
    """Largest accepted request body (photos), bytes. aiohttp's default of 1 MiB is too small for phone photos."""
    link_ttl_s: float = 4 * 3600.0
    """A caller link expires this many seconds after it was issued."""
    snapshot_interval_s: float = 5.0
    """A periodic still of the live video every this many seconds (plus one at the first frame)."""
    viewer_fps: float = 15.0
    """Most JPEG frames per second the live viewer stream sends (one encode per call, shared by all viewers)."""
    record: bool = True
    """Default recording policy of sessions that do not set one (``record`` in ``POST /api/sessions``; the ad-hoc
    session): record each call's audio and video (``workbench.ingest.recording``)."""
    talkback: bool = False
    """Default talk-back policy of sessions that do not set one (``talkback`` in ``POST /api/sessions``; the ad-hoc
    session): whether the dispatcher's live view may send the microphone to the caller's page. Off, because
    simulated callers do not listen."""
    record_video: str = "h264"
    """Default way sessions' recordings store video (``record_video`` in ``POST /api/sessions``): ``h264`` decodes and
    re-encodes with x264 (any codec; ~7% of a core per 640x480@15 stream), ``copy`` stores the received VP8 frames
    (no encode; H.264 callers are still re-encoded). See :mod:`workbench.ingest.passthrough`."""
    record_segment_s: float = 60.0
    """Length of one recording segment (``rec-NNNN.mkv``), s; each closed segment is hashed into the manifest."""
    record_queue_frames: int = 120
    """Frames (video and audio together) the recorder's queue holds before it drops (counted); ~1.6 s of 15 fps
    video with 50 audio frames a second. Used by a writer thread per call (``recorder_process`` off)."""
    recorder_process: bool = True
    """Write the recordings in one recorder process next to the ingest (``workbench.ingest.recorder_process``)
    instead of a writer thread per call inside it: with writer threads the ingest fell behind at 16 recorded callers
    (they compete with the event loop for the GIL)."""
    record_process_queue_items: int = 480
    """Items (video frames, audio packets, all calls together) on their way to the recorder process before it drops
    (counted per call). In H.264 mode the decoded pictures among them each hold a slot of the recorder's shared
    ring (64 slots, ``workbench.ingest.picture_ring``: 0.27 s of 16 callers' 15 fps video, at most 29.5 MB for
    640x480), and only small messages wait here; a picture larger than a slot (3.1 MB, a 1920x1080 picture) is
    pickled whole."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    access: AccessCodes | None = None
    """The lab's access codes (``--access-codes FILE``): when set, the API enforces the role boundary of
    :mod:`workbench.ingest.roles`; when None every endpoint is open (single-person demo)."""

    def __post_init__(self) -> None:
        if self.ice_mode not in ICE_MODES:
            raise ValueError(f"ice_mode must be one of {', '.join(ICE_MODES)}, got {self.ice_mode!r}")
        if self.ice_mode == "stun" and not (self.stun_urls or self.turn_url):
            raise ValueError("ICE mode 'stun' needs at least one STUN URL (--stun) or a TURN server (--turn); "
                             "the workbench never falls back to a public STUN server")
        for url in self.stun_urls:
            if not url.startswith(("stun:", "stuns:")):
                raise ValueError(f"a STUN server must be a stun: or stuns: URL, got {url!r}")
        if self.turn_url and not self.turn_url.startswith(("turn:", "turns:")):
            raise ValueError(f"a TURN server must be a turn: or turns: URL, got {self.turn_url!r}")
        if self.record_video not in ("h264", "copy"):
            raise ValueError(f"record_video must be h264 or copy, got {self.record_video!r}")
        if self.upload_limit_bytes <= 0:
            raise ValueError("upload_limit_bytes must be positive")

    @property
    def base_url(self) -> str:
        """Absolute base URL for links, without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{self.host}:{self.port}"
