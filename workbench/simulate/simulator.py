"""Synthetic participants with known effects: complete session folders as if N dispatchers had worked a scenario.

:func:`simulate` writes one session folder per participant through the store the ingest uses (``Recordings``,
``SessionFolder``, ``FileEventLog``), with a simulated :class:`SimulatedClock`, so ``t_mono_ns`` and ``t_wall``
follow the simulated timeline and ``workbench verify`` and ``workbench analyze`` read the folders like any other.
Every session is marked as simulated: ``session.started`` comes from source ``simulator``, ``session.json`` carries
``extra.simulated = true`` with the effects used, and ``status`` is ``exercise`` as for every record.

Generative model
----------------
Participant ``i`` (0-based) draws every random number from ``numpy.random.default_rng([seed, i])``, so a
participant's data depend on ``seed`` and ``i`` only, never on how many participants are simulated. Block order:
a cyclic Latin square over the scenario's ``k`` blocks, its columns (blocks) and rows shuffled once from ``seed``;
participant ``i`` works row ``i mod k`` (balanced when N is a multiple of ``k``).

Notation: ``m`` the block's modality (audio is the reference, effect 0 / ratio 1), ``g`` = 1 when the call's ground
truth has a designed disagreement (any aspect with ``congruence = false``), else 0; ``b`` baselines, ``d_m`` modality
effects, ``d_g`` the ``[incongruent]`` effects, ``s_p``/``s_e`` the participant and residual SDs of ``[spread]``.
Participant intercepts ``u_i ~ N(0, s_p^2)`` are drawn once per participant and measure; residuals
``e ~ N(0, s_e^2)`` once per call (or per DRT response). No random slopes and no interactions: the model is additive
(multiplicative for handling time), so the paired t test and the mixed model estimate the same quantities. The
``[incongruent]`` effects and the detection probabilities apply in every block, audio included, so a modality
contrast estimates exactly ``d_m`` whatever the mix of calls; the analysis compares congruence (and computes d')
on calls with media only, where it estimates exactly ``d_g``. Scenario calls have no random effect of their own
(the analysis' item random intercept is then estimated near zero).

- RSME: ``rsme = clip(b + u_i + d_m + g*d_g + e, 0, 150)``, rounded to 0.1.
- Handling time (answer to close, s): ``log H = log b_H + u_i + log r_m + g*log r_g + e``: log-normal; ``b_H``
  is the median of the reference condition and ``exp`` of a log-scale contrast is the ratio ``r``.
- Time to first urgency (s): ``U = clip(b_U + u_i + d_m + g*d_g + e, 1, 0.8*H)`` (the urgency is classified
  before the call is closed; with the default spread the bounds are almost never reached).
- Completeness: ``p = clip(b_C + u_i + d_m + g*d_g + e, 0, 1)``; the number of the call's ``K`` required items
  gathered is ``Binomial(K, p)`` (which ones: at random), so ``E[completeness] = p`` away from the bounds.
- Perceived disagreement: the flag at close is ``Bernoulli(hit_probability)`` when ``g = 1`` and
  ``Bernoulli(false_alarm_probability)`` when ``g = 0``, in every block (no modality dependence). A flagged
  hit names one of the call's incongruent aspects; a false alarm one of its listed aspects (``other`` if none).
- Urgency and incident type at close: correct with ``urgency_correct_probability`` /
  ``incident_type_correct_probability``, otherwise another class drawn uniformly.
- DRT (ISO 17488): one run per session; in every block, stimuli (``visual``) every ``U(3, 5)`` s from 3-5 s after
  the block starts until it ends. A stimulus goes unanswered with ``drt_miss_probability``; otherwise the response
  comes ``RT = b_RT + u_i + d_m + g*d_g + e`` ms after onset, where ``g`` is that of the call being handled at the
  onset (0 between calls), ``e ~ N(0, residual_sd_drt_hit_rt_ms^2)``; RTs outside 100-2500 ms score as too early or
  missed (the analysis scores them; with the default spread they are very rare), and a response later than
  2900 ms is not written (it would belong to the next stimulus). Each event is logged 5-30 ms after its time, as
  the browser posts it.

- Photo view and focus (drawn from a second generator, ``default_rng([seed, i, 0xF0C5])``, so adding them changed
  none of the numbers above): in a photo or video block, a call with a photo gets one view of its first photo,
  opened ``U(0.5, 2)`` s after the later of the photo's arrival and the answer (no view when that is within 1 s of
  the close); it stays open ``D = max(0.5, b_D + u_i + d_m + g*d_g + e)`` s (``photo.opened`` ... ``photo.closed``),
  or until the close when that comes first (the view then ends with the call and the dwell time is cut). Focus
  (``console.focus``, trigger ``pointer``) follows fixed fractions of the handling time ``H``: audio and photo
  blocks ``transcript`` from the answer, ``form`` from 0.3 H; video blocks ``transcript``, ``live_view`` from
  0.15 H, ``form`` from 0.45 H; while a photo is open the focus is on ``photos`` and returns to the panel of the
  moment when it closes. So the photo dwell time of a call is ``D`` (unless cut), its share of focus on the photos
  panel ``D / H``, and without a photo the shares are exactly those fractions.

Timeline (seconds; exact, written as ns): ``session.started`` at 0, the first block 5 s later, ``break_s`` between
blocks. A call arrives at the block start plus its ``arrival_s``; the dispatcher answers it
``pickup_s * U(0.5, 1.5)`` after the later of its arrival and the previous call's rating, so calls are worked one
at a time in arrival order. Scripted lines appear at answer + ``at_s`` (only lines before the close); photos
(photo and video blocks) at arrival + their ``at_s``; the first video frame (video blocks, calls with video) at
arrival + ``video_at_s`` + U(0.3, 1.2); the first audio frame (calls with audio) at arrival + U(0.3, 1.0). Intake
events come between answer and close: the incident type at ``U*U(0.3, 0.9)``, the urgency at ``U``, the location
at ``H*U(0.05, 0.5)``, one ``intake.item_checked`` per gathered item at ``H*U(0.1, 0.95)`` and the flag (if set) at
``H*U(0.3, 0.95)``; ``call.closed`` at ``H``, ``rating.rsme`` ``rating_s * U(0.5, 1.5)`` after the close.

Repeating calls: with ``calls_per_block = M`` each block works ``M`` calls, cycling through its scenario calls
(call ``n`` is the block's call ``n mod k``; repetition ``r = n // k`` arrives ``r * (last arrival_s + 60 s)``
later). Every repetition is a call of its own (new ``call_id``) with the scenario call's id and ground truth.

Media events (``media.photo_received``, ``media.first_frame``) may only come from the ingest and DRT events
(``drt.stimulus``, ``drt.response``) only from the console, so the simulator writes them with those sources,
standing in for them (the session is still marked simulated, above); photos are tiny generated JPEGs stored with
``SessionFolder.store_media`` (original and display copy, in the manifest), so ``workbench verify`` passes.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

import workbench
from workbench.domain import events as ev
from workbench.domain.scenario import CallSpec, Scenario
from workbench.domain.taxonomy import INCIDENT_TYPES, Urgency
from workbench.simulate.effects import Effects, MeasureEffects
from workbench.store.eventlog import FileEventLog
from workbench.store.recordings import Recordings, SessionHeader, sha256_hex

NS_PER_S = 1_000_000_000
DEFAULT_START = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
"""Wall-clock start of participant 0's session; participant ``i`` starts ``i`` hours later (reproducible output)."""
MONO_START_NS = 1_000 * NS_PER_S
"""Simulated ``t_mono_ns`` at the start of every session (an arbitrary positive origin, like a real monotonic clock)."""
REPEAT_GAP_S = 60.0
"""Gap after a block's last scripted arrival before its calls arrive again (see ``calls_per_block``)."""
STATION = "sim"
"""``call.answered`` station id of simulated dispatchers."""
RUN_ID = "drt-sim"
"""``run_id`` of a simulated session's DRT run (one run per session)."""
LATEST_RESPONSE_MS = 2900.0
"""Simulated DRT responses later than this after onset are not written (the next stimulus comes >= 3000 ms later)."""
_ZERO = MeasureEffects()
ATTENTION_STREAM = 0xF0C5
"""Third seed word of the generator that draws photo views and focus (module docstring)."""


class SimulatedClock:
    """A :class:`~workbench.store.eventlog.Clock` that reads the simulated time set in :attr:`now_ns`.

    ``monotonic_ns()`` is ``mono_start_ns + now_ns``; ``now_utc()`` is ``wall_start + now_ns`` (to the microsecond).
    """

    def __init__(self, wall_start: datetime, mono_start_ns: int = MONO_START_NS) -> None:
        if wall_start.tzinfo is None:
            raise ValueError("wall_start must be timezone-aware (UTC)")
        self.wall_start = wall_start
        self.mono_start_ns = mono_start_ns
        self.now_ns = 0
        """Simulated time since the start of the session, ns."""

    def monotonic_ns(self) -> int:
        return self.mono_start_ns + self.now_ns

    def now_utc(self) -> datetime:
        return self.wall_start + timedelta(microseconds=self.now_ns // 1000)


def latin_square_orders(block_ids: list[str], seed: int) -> list[list[str]]:
    """The ``k`` rows of a cyclic Latin square over ``block_ids`` with columns and rows shuffled from ``seed``.

    Row ``r`` is ``[b[(r + j) mod k] for j in range(k)]`` over the shuffled blocks ``b``; every block appears once in
    every row and once at every position. Raises ``ValueError`` for an empty list.
    """
    if not block_ids:
        raise ValueError("a Latin square needs at least one block")
    rng = np.random.default_rng([seed, 0x1A7])
    k = len(block_ids)
    blocks = [block_ids[j] for j in rng.permutation(k)]
    rows = [[blocks[(r + j) % k] for j in range(k)] for r in range(k)]
    return [rows[j] for j in rng.permutation(k)]


def tiny_jpeg(rgb: tuple[int, int, int] = (200, 80, 40), size: tuple[int, int] = (32, 24)) -> bytes:
    """A small solid-colour baseline JPEG (Pillow), for photos of simulated calls."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, "JPEG", quality=70)
    return buf.getvalue()


@dataclass
class _Planned:
    """One event to write: simulated time (ns since session start), generation order (tie-break), envelope, payload."""

    t_ns: int
    order: int
    source: str
    payload: ev.Payload
    call_id: str | None


@dataclass
class _Plan:
    events: list[_Planned] = field(default_factory=list)

    def add(self, t_s: float, source: str, payload: ev.Payload, call_id: str | None = None) -> None:
        self.events.append(_Planned(round(t_s * NS_PER_S), len(self.events), source, payload, call_id))

    def sorted(self) -> list[_Planned]:
        return sorted(self.events, key=lambda p: (p.t_ns, p.order))


@dataclass(frozen=True)
class _Intercepts:
    """One participant's random intercepts (units of each measure; log scale for handling time)."""

    rsme: float
    log_handling: float
    urgency_s: float
    completeness: float
    drt_rt_ms: float
    photo_dwell_s: float = 0.0


def _block_calls(scenario: Scenario, block_id: str, calls_per_block: int | None) -> list[tuple[CallSpec, float]]:
    """(call spec, arrival offset from block start in s) for every call the block works, in arrival order."""
    block = scenario.block(block_id)
    specs = [scenario.call(cid) for cid in block.call_ids]
    count = calls_per_block if calls_per_block is not None else len(specs)
    span = max(s.arrival_s for s in specs) + REPEAT_GAP_S
    calls = [(specs[n % len(specs)], specs[n % len(specs)].arrival_s + (n // len(specs)) * span) for n in range(count)]
    return sorted(calls, key=lambda c: c[1])


class _ParticipantSimulator:
    """Plans the events of one participant's session (all randomness from one generator, in a fixed order)."""

    def __init__(self, scenario: Scenario, effects: Effects, rng: np.random.Generator, photo: bytes,
                 attention_rng: np.random.Generator | None = None) -> None:
        self.scenario = scenario
        self.effects = effects
        self.rng = rng
        self.photo = photo
        self.photo_sha = sha256_hex(photo)
        sp = effects.spread
        self.u = _Intercepts(
            rsme=rng.normal(0.0, sp.participant_sd_rsme),
            log_handling=rng.normal(0.0, sp.participant_sd_log_handling_time),
            urgency_s=rng.normal(0.0, sp.participant_sd_time_to_first_urgency_s),
            completeness=rng.normal(0.0, sp.participant_sd_completeness),
            drt_rt_ms=rng.normal(0.0, sp.participant_sd_drt_hit_rt_ms),
        )
        # Photo views and focus draw from their own generator (see the module docstring), after the intercepts
        # above, so every number the first generator gave before they were modelled stays the same.
        self.attention_rng = attention_rng
        if attention_rng is not None:
            self.u = dataclasses.replace(
                self.u, photo_dwell_s=attention_rng.normal(0.0, sp.participant_sd_photo_dwell_s))
        self.plan = _Plan()
        self.mono_start_ns = MONO_START_NS
        self.photos: list[tuple[str, str]] = []  # (call_id, media file name) to store
        self._calls = 0
        self._handling: list[tuple[float, float, int]] = []  # (answer s, close s, g) of the current block's calls
        self._drt_index = 0

    def _jitter(self, mean: float) -> float:
        return mean * self.rng.uniform(0.5, 1.5)

    def session(
        self, order: list[str], calls_per_block: int | None, plan_start: ev.Payload, drt: bool, mono_start_ns: int
    ) -> _Plan:
        base = self.effects.baseline
        self.mono_start_ns = mono_start_ns
        self.plan.add(0.0, "simulator", plan_start)
        t = 5.0
        for position, block_id in enumerate(order):
            block = self.scenario.block(block_id)
            self.plan.add(t, "simulator", ev.BlockStarted(block_id, block.modality.value, position))
            free = t
            self._handling = []
            for spec, arrival in _block_calls(self.scenario, block_id, calls_per_block):
                free = self._call(spec, block_id, block.modality.value, t + arrival, free)
            end = free + 1.0
            if drt:
                self._drt(t, end, block.modality.value, mono_start_ns)
            self.plan.add(end, "simulator", ev.BlockEnded(block_id))
            t = end + base.break_s
        self.plan.add(t, "simulator", ev.SessionEnded("completed"))
        return self.plan

    def _drt(self, start: float, end: float, modality: str, mono_start_ns: int) -> None:
        """Plan the DRT stimuli and responses of one block (times in s since the session start)."""
        rng, base, sp = self.rng, self.effects.baseline, self.effects.spread
        d_m, d_g = self.effects.of(modality), self.effects.incongruent
        mono_ms = mono_start_ns / 1e6
        onset = start + rng.uniform(3.0, 5.0)
        calls = iter(self._handling)
        current = next(calls, None)
        while onset < end - 3.0:
            while current is not None and current[1] <= onset:
                current = next(calls, None)
            g = current[2] if current is not None and current[0] <= onset else 0
            index = self._drt_index
            self._drt_index += 1
            onset_ms = round(mono_ms + onset * 1000.0, 3)
            stimulus = ev.DrtStimulus(
                RUN_ID, index, "visual", round(onset_ms - rng.uniform(0.0, 4.0), 3), onset_ms, 0.0,
                round(rng.uniform(1.0, 4.0), 3),
            )
            self.plan.add(onset + rng.uniform(0.005, 0.030), "console", stimulus)
            missed = rng.random() < base.drt_miss_probability
            rt = (
                base.drt_hit_rt_ms + self.u.drt_rt_ms + d_m.drt_hit_rt_ms + (d_g.drt_hit_rt_ms if g else 0.0)
                + rng.normal(0.0, sp.residual_sd_drt_hit_rt_ms)
            )
            if not missed and rt <= LATEST_RESPONSE_MS:
                rt = round(max(rt, 1.0), 3)
                response = ev.DrtResponse(RUN_ID, index, round(onset_ms + rt, 3), rt, "key")
                self.plan.add(onset + rt / 1000.0 + rng.uniform(0.005, 0.030), "console", response)
            onset += rng.uniform(3.0, 5.0)

    def _attention(self, call_id: str, modality: str, g: int, t_answer: float, t_close: float,
                   first_photo: tuple[float, str] | None) -> None:
        """Plan the call's photo view and focus changes (model in the module docstring)."""
        rng, base, sp = self.attention_rng, self.effects.baseline, self.effects.spread
        assert rng is not None
        handling = t_close - t_answer
        fractions = ((0.0, "transcript"), (0.15, "live_view"), (0.45, "form")) if modality == "video" else (
            (0.0, "transcript"), (0.3, "form"))
        changes = [(t_answer + f * handling, panel) for f, panel in fractions]
        view: tuple[float, float] | None = None
        if first_photo is not None:
            d_m = self.effects.of(modality)
            d_g = self.effects.incongruent if g else _ZERO
            opened = max(first_photo[0], t_answer) + rng.uniform(0.5, 2.0)
            dwell = max(0.5, base.photo_dwell_s + self.u.photo_dwell_s + d_m.photo_dwell_s + d_g.photo_dwell_s
                        + rng.normal(0.0, sp.residual_sd_photo_dwell_s))
            if opened < t_close - 1.0:
                view = (opened, opened + dwell)

        def panel_at(t: float) -> str:
            return [panel for start, panel in changes if start <= t][-1]

        timeline = [(t, panel) for t, panel in changes if view is None or not view[0] <= t < view[1]]
        if view is not None:
            timeline.append((view[0], "photos"))
            if view[1] < t_close:
                timeline.append((view[1], panel_at(view[1])))
            assert first_photo is not None
            self.plan.add(view[0], "simulator", ev.PhotoOpened(first_photo[1]), call_id)
            if view[1] < t_close:
                self.plan.add(view[1], "simulator", ev.PhotoClosed(first_photo[1]), call_id)
        timeline.sort()
        last = ""
        mono_ms = self.mono_start_ns / 1e6
        for t, panel in timeline:
            if panel != last:
                # browser_ms on the simulated monotonic clock, rounded to the microsecond like a browser's clock.
                self.plan.add(t, "simulator", ev.ConsoleFocus(panel, "pointer", round(mono_ms + t * 1000.0, 3)),
                              call_id)
                last = panel

    def _call(self, spec: CallSpec, block_id: str, modality: str, t_arrival: float, free: float) -> float:
        """Plan one call; returns the time the dispatcher is free again (after the RSME rating)."""
        rng, base, sp = self.rng, self.effects.baseline, self.effects.spread
        self._calls += 1
        call_id = f"c{self._calls:04d}"
        truth = spec.truth
        g = 0 if truth.congruent else 1
        d_m = self.effects.of(modality)
        d_g = self.effects.incongruent if g else _ZERO
        add = self.plan.add

        add(t_arrival, "simulator", ev.CallCreated(spec.id, block_id, modality, spec.caller_label), call_id)
        # Media, as the modality allows (the runner withholds photos in audio blocks and video outside video blocks).
        if spec.media.audio:
            lag = rng.uniform(0.3, 1.0)
            add(t_arrival + lag, "ingest", ev.MediaFirstFrame("audio", "opus", 0, 0, round(lag * 1000, 1)), call_id)
        if modality == "video" and spec.media.video:
            lag = rng.uniform(0.3, 1.2)
            add(
                t_arrival + spec.media.video_at_s + lag,
                "ingest",
                ev.MediaFirstFrame("video", "VP8", 640, 480, round(lag * 1000, 1)),
                call_id,
            )
        # (arrival, photo id) of the photo that arrives first: the one the simulated dispatcher views.
        first_photo = min(((t_arrival + p.at_s, f"p{n}") for n, p in enumerate(spec.media.photos, start=1)),
                          default=None) if modality != "audio" else None
        if modality != "audio":
            for n, photo in enumerate(spec.media.photos, start=1):
                pid = f"p{n}"
                original, display = f"photo-{pid}.jpg", f"photo-{pid}-display.jpg"
                self.photos += [(call_id, original), (call_id, display)]
                add(
                    t_arrival + photo.at_s,
                    "ingest",
                    ev.MediaPhotoReceived(
                        pid,
                        f"media/{call_id}/{original}",
                        f"media/{call_id}/{display}",
                        self.photo_sha,
                        len(self.photo),
                        "JPEG",
                        32,
                        24,
                        f"IMG_{1000 + self._calls}.jpg",
                    ),
                    call_id,
                )

        t_answer = max(t_arrival, free) + self._jitter(base.pickup_s)
        add(t_answer, "simulator", ev.CallAnswered(STATION), call_id)

        # The measures (see the module docstring for the model).
        handling = base.handling_time_s * d_m.handling_time_ratio * (d_g.handling_time_ratio if g else 1.0)
        handling *= float(np.exp(self.u.log_handling + rng.normal(0.0, sp.residual_sd_log_handling_time)))
        urgency_s = (
            base.time_to_first_urgency_s
            + self.u.urgency_s
            + d_m.time_to_first_urgency_s
            + d_g.time_to_first_urgency_s
            + rng.normal(0.0, sp.residual_sd_time_to_first_urgency_s)
        )
        urgency_s = min(max(urgency_s, 1.0), 0.8 * handling)
        rsme = base.rsme + self.u.rsme + d_m.rsme + d_g.rsme + rng.normal(0.0, sp.residual_sd_rsme)
        rsme = round(min(max(rsme, 0.0), 150.0), 1)
        p_items = (
            base.completeness
            + self.u.completeness
            + d_m.completeness
            + d_g.completeness
            + rng.normal(0.0, sp.residual_sd_completeness)
        )
        p_items = min(max(p_items, 0.0), 1.0)
        required = list(truth.required_items)
        n_gathered = int(rng.binomial(len(required), p_items)) if required else 0
        chosen = set(rng.choice(len(required), size=n_gathered, replace=False).tolist()) if n_gathered else set()
        gathered = [item for j, item in enumerate(required) if j in chosen]
        det = self.effects.detection
        flagged = bool(rng.random() < (det.hit_probability if g else det.false_alarm_probability))
        if flagged:
            pool = list(truth.incongruent_aspects) if g else list(truth.congruence) or ["other"]
            aspect = str(pool[int(rng.integers(len(pool)))])
        else:
            aspect = ""
        urgency = truth.urgency.value
        if rng.random() >= base.urgency_correct_probability:
            others = [u.value for u in Urgency if u.value != urgency]
            urgency = others[int(rng.integers(len(others)))]
        incident = truth.incident_type
        if rng.random() >= base.incident_type_correct_probability:
            others = [k for k in INCIDENT_TYPES if k != incident]
            incident = others[int(rng.integers(len(others)))]
        location = truth.location or "onbekend"

        for index, line in enumerate(spec.utterances):
            if line.at_s < handling:
                add(t_answer + line.at_s, "simulator", ev.CallerUtterance(index, line.text, line.at_s), call_id)
        add(t_answer + urgency_s * rng.uniform(0.3, 0.9), "simulator", ev.IntakeIncidentType(incident), call_id)
        add(t_answer + urgency_s, "simulator", ev.IntakeUrgency(urgency), call_id)
        add(t_answer + handling * rng.uniform(0.05, 0.5), "simulator", ev.IntakeLocation(location), call_id)
        for item in gathered:
            add(t_answer + handling * rng.uniform(0.1, 0.95), "simulator", ev.IntakeItemChecked(item, True), call_id)
        if flagged:
            add(
                t_answer + handling * rng.uniform(0.3, 0.95),
                "simulator",
                ev.IntakeDisagreementFlag(True, aspect),
                call_id,
            )
        t_close = t_answer + handling
        if self.attention_rng is not None:
            self._attention(call_id, modality, g, t_answer, t_close, first_photo)
        self._handling.append((t_answer, t_close, g))
        add(
            t_close,
            "simulator",
            ev.CallClosed(incident, urgency, location, gathered, flagged, aspect, ""),
            call_id,
        )
        t_rated = t_close + self._jitter(base.rating_s)
        add(t_rated, "simulator", ev.RatingRsme(rsme), call_id)
        return t_rated


PREFIX_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9]{0,7}")
"""Valid ``participant_prefix`` of :func:`simulate` (the pseudonym is the prefix and a 3-digit number)."""


class PseudonymClashError(ValueError):
    """A simulated pseudonym is already the participant of another session in the output folder."""


def pseudonym_clashes(out: Path, planned: dict[str, str]) -> list[tuple[str, str]]:
    """``(pseudonym, existing session id)`` for every session folder in ``out`` whose ``session.json`` names a
    participant of ``planned`` (pseudonym -> the session id it would be written to) under another session id.
    A folder with the planned id itself is left to ``Recordings.create_session`` (it refuses existing folders);
    folders without a readable ``session.json`` are skipped (they are not sessions analyse would read)."""
    if not out.is_dir():
        return []
    clashes = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            participant = json.loads((folder / "session.json").read_text(encoding="utf-8")).get("participant")
        except (OSError, ValueError, AttributeError):
            continue
        if participant in planned and planned[participant] != folder.name:
            clashes.append((participant, folder.name))
    return clashes


def simulate(
    scenario: Scenario,
    scenario_bytes: bytes,
    effects: Effects,
    *,
    participants: int,
    seed: int,
    out: Path,
    calls_per_block: int | None = None,
    store_photos: bool = True,
    drt: bool = True,
    fsync: str = "close",
    start_at: datetime = DEFAULT_START,
    attention: bool = True,
    participant_prefix: str = "P",
) -> list[Path]:
    """Write ``participants`` complete session folders under ``out`` (created if needed); returns their paths.

    Session ``i`` (0-based) is ``out/sim-<seed>-p<i+1:03d>`` with participant pseudonym ``P<i+1:03d>`` (with
    ``participant_prefix`` X: ``out/sim-<seed>-x<i+1:03d>`` and ``X<i+1:03d>``); the same
    arguments give byte-identical folders. ``scenario_bytes`` is the scenario file as read (copied into each
    session as ``scenario.toml``; its SHA-256 must match ``scenario.sha256`` when that is set). ``calls_per_block``
    repeats each block's calls up to that many calls (module docstring); ``None`` works each scripted call once.
    ``store_photos`` False still writes the photo events (with the paths and hash of the generated JPEG) but not the
    files, for speed; ``workbench verify`` then does not find them. ``drt`` False leaves the DRT out; ``attention``
    False leaves out photo views and focus. ``fsync`` is the event log's policy
    (``"close"``: one fsync per file; ``"event"``: per event, as the ingest). ``start_at`` is participant 0's
    wall-clock start (aware UTC).

    Raises ``ValueError`` for ``participants < 1``, ``calls_per_block < 1``, a negative ``seed``, or scenario bytes
    that do not match the scenario or an invalid ``participant_prefix``; :class:`PseudonymClashError` (a
    ``ValueError``) before anything is written when a pseudonym to be written is already a participant of another
    session in ``out`` (simulated people of two seeds would count as one participant in the analysis, and a
    withdrawal would remove both); :class:`~workbench.store.recordings.RecordingsError` if a session folder exists
    already; ``OSError`` when ``out`` cannot be written.
    """
    if participants < 1:
        raise ValueError(f"participants must be at least 1, got {participants}")
    if calls_per_block is not None and calls_per_block < 1:
        raise ValueError(f"calls_per_block must be at least 1, got {calls_per_block}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if not PREFIX_PATTERN.fullmatch(participant_prefix):
        raise ValueError(f"participant prefix {participant_prefix!r} is not valid: use 1-8 letters or digits starting "
                         "with a letter, e.g. S3")
    planned = {f"{participant_prefix}{i + 1:03d}": f"sim-{seed}-{participant_prefix.lower()}{i + 1:03d}"
               for i in range(participants)}
    clashes = pseudonym_clashes(Path(out), planned)
    if clashes:
        shown = ", ".join(f"{p} (session {sid})" for p, sid in clashes[:5]) + (" ..." if len(clashes) > 5 else "")
        raise PseudonymClashError(
            f"{out} already holds other sessions of participant(s) {shown}: the new simulated people would share "
            f"their pseudonyms. Write to another --out folder, or give another --participant-prefix (e.g. "
            f"--participant-prefix S{seed}); nothing was written")
    digest = sha256_hex(scenario_bytes)
    if scenario.sha256 and scenario.sha256 != digest:
        raise ValueError("scenario_bytes do not match the scenario (SHA-256 differs): pass the bytes it was read from")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    photo = tiny_jpeg()
    orders = latin_square_orders([b.id for b in scenario.blocks], seed)
    effects_dump: dict[str, Any] = effects.model_dump(mode="json")
    paths = []
    for i in range(participants):
        paths.append(
            _write_participant(
                i, scenario, digest, scenario_bytes, effects, effects_dump, orders[i % len(orders)],
                seed=seed, out=out, calls_per_block=calls_per_block, photo=photo if store_photos else None,
                photo_for_events=photo, drt=drt, fsync=fsync, wall_start=start_at + timedelta(hours=i),
                attention=attention, participant_prefix=participant_prefix,
            )
        )
    return paths


def _write_participant(
    i: int,
    scenario: Scenario,
    digest: str,
    scenario_bytes: bytes,
    effects: Effects,
    effects_dump: dict[str, Any],
    order: list[str],
    *,
    seed: int,
    out: Path,
    calls_per_block: int | None,
    photo: bytes | None,
    photo_for_events: bytes,
    drt: bool,
    fsync: str,
    wall_start: datetime,
    attention: bool = True,
    participant_prefix: str = "P",
) -> Path:
    participant = f"{participant_prefix}{i + 1:03d}"
    session_id = f"sim-{seed}-{participant_prefix.lower()}{i + 1:03d}"
    clock = SimulatedClock(wall_start)
    header = SessionHeader(
        session_id=session_id,
        participant=participant,
        scenario_id=scenario.id,
        scenario_sha256=digest,
        block_order=list(order),
        seed=seed,
        software_version=workbench.__version__,
        started_at=wall_start.isoformat(timespec="microseconds"),
        extra={
            "simulated": True,
            "generator": "workbench simulate",
            "participant_index": i,
            "calls_per_block": calls_per_block,
            "effects": effects_dump,
        },
    )
    folder = Recordings(out, clock).create_session(header, scenario_bytes)
    sim = _ParticipantSimulator(scenario, effects, np.random.default_rng([seed, i]), photo_for_events,
                                np.random.default_rng([seed, i, ATTENTION_STREAM]) if attention else None)
    start = ev.SessionStarted(participant, scenario.id, digest, seed, list(order), workbench.__version__)
    plan = sim.session(list(order), calls_per_block, start, drt, clock.mono_start_ns)
    if photo is not None:
        for call_id, name in sim.photos:
            folder.store_media(call_id, name, photo)
    log = FileEventLog(folder.events_path, session_id, clock, fsync=fsync)
    try:
        for p in plan.sorted():
            clock.now_ns = p.t_ns
            log.append(p.source, p.payload, p.call_id)
    finally:
        log.close()
    return folder.path
