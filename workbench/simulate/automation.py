"""Simulated sessions with automated aids and known following rates (issue 11): link proposals, the dispatcher's
decisions on them, triage advice shown, and the urgency chosen with and without advice.

:func:`simulate_automation` writes one session folder per participant through the store the ingest uses (as
:mod:`workbench.simulate.simulator` does, whose clock and Latin square it reuses), marked simulated in
``session.json`` (``extra.simulated``, ``extra.automation`` with the rates). Its purpose is to check that
``analysis.automation`` recovers the rates; effort, DRT and media are left to :func:`workbench.simulate.simulate`.

Generative model (participant ``i`` draws everything from ``numpy.random.default_rng([seed, i, 11])``), per block
in the participant's order, calls in arrival order, one at a time:

- Proposals: when a call arrives, each earlier call of the same block is proposed as the same incident with
  probability ``proposal_recall`` when the scenario's ground truth says it is (same ``incident_of``), else
  ``false_proposal_rate`` (``link.proposed`` 1 s after the arrival, score ``U(0.6, 0.95)``).
- Decisions: while working the newer call (answer + 15 s) the dispatcher accepts a true proposal with
  ``accept_true`` and a false one with ``accept_false`` (``link.decided``; an accept also ``link.set``, the earlier
  report as ``parent``), otherwise rejects it.
- Advice (blocks with ``advice = true``): ``advice.given`` and ``advice.shown`` 2 s after the answer; the advised
  urgency is the true one with ``advice_accuracy``, else one of the two others at random.
- Urgency (``intake.urgency`` at answer + 10 s, and in ``call.closed``): with advice shown the dispatcher takes the
  advised urgency with ``follow_advice``; otherwise (and always without advice) their own judgement, correct with
  ``own_accuracy``, else one of the two others at random. Hence
  P(urgency = advice | advice wrong) = ``follow_advice + (1 - follow_advice) * (1 - own_accuracy) / 2`` and
  P(correct | no advice) = ``own_accuracy`` (:meth:`AutomationRates.expected`).

Timeline (s): ``session.started`` at 0, a block 5 s later, arrivals at block start + ``arrival_s``, answer
``U(2, 6)`` s after the later of the arrival and the previous call's rating, close ``U(40, 80)`` s after the
answer, RSME ``U(3, 8)`` s later (value ``U(20, 80)``), the next block 10 s after the last rating.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

import workbench
from workbench.domain import events as ev
from workbench.domain.scenario import Scenario
from workbench.domain.taxonomy import Urgency
from workbench.simulate.simulator import (
    DEFAULT_START,
    NS_PER_S,
    PseudonymClashError,
    SimulatedClock,
    latin_square_orders,
    pseudonym_clashes,
)
from workbench.store.eventlog import FileEventLog
from workbench.store.recordings import Recordings, SessionHeader, sha256_hex

STATION = "sim"
"""``call.answered`` station of simulated dispatchers (as in the main simulator)."""


@dataclass(frozen=True)
class AutomationRates:
    """The known rates of a simulated automation study; each a probability in [0, 1] (``ValueError`` otherwise)."""

    proposal_recall: float = 0.8
    """P(a pair of reports of one incident is proposed)."""
    false_proposal_rate: float = 0.1
    """P(a pair of reports of different incidents in one block is proposed)."""
    accept_true: float = 0.85
    """P(the dispatcher accepts a proposal that is right)."""
    accept_false: float = 0.3
    """P(the dispatcher accepts a proposal that is wrong)."""
    advice_accuracy: float = 0.75
    """P(the advised urgency is the true one)."""
    follow_advice: float = 0.6
    """P(the dispatcher takes the advised urgency, right or wrong)."""
    own_accuracy: float = 0.7
    """P(the dispatcher's own urgency judgement is right)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")

    def expected(self) -> dict[str, float]:
        """What the analysis should find: ``followed_wrong_advice`` (urgency = wrong advice), ``accuracy_without_
        advice``, ``accuracy_with_wrong_advice``, ``accuracy_with_right_advice``, ``advice_agreement``,
        ``accept_true``, ``accept_false``, ``proposal_recall``."""
        f, o = self.follow_advice, self.own_accuracy
        return {
            "followed_wrong_advice": f + (1 - f) * (1 - o) / 2,
            "accuracy_without_advice": o,
            "accuracy_with_wrong_advice": (1 - f) * o,
            "accuracy_with_right_advice": f + (1 - f) * o,
            "advice_agreement": self.advice_accuracy,
            "accept_true": self.accept_true,
            "accept_false": self.accept_false,
            "proposal_recall": self.proposal_recall,
        }


def _other(rng: np.random.Generator, urgency: str) -> str:
    others = [u.value for u in Urgency if u.value != urgency]
    return others[int(rng.integers(len(others)))]


def _plan_participant(scenario: Scenario, order: list[str], rates: AutomationRates, rng: np.random.Generator,
                      start: ev.SessionStarted) -> list[tuple[float, int, str | None, ev.Payload]]:
    """(time s, order, call_id, payload) of every event of one session."""
    plan: list[tuple[float, int, str | None, ev.Payload]] = []

    def add(t: float, payload: ev.Payload, call_id: str | None = None) -> None:
        plan.append((t, len(plan), call_id, payload))

    add(0.0, start)
    t, n_calls, n_proposals = 5.0, 0, 0
    for position, block_id in enumerate(order):
        block = scenario.block(block_id)
        add(t, ev.BlockStarted(block_id, block.modality.value, position))
        specs = sorted((scenario.call(c) for c in block.call_ids), key=lambda c: c.arrival_s)
        ids: dict[str, str] = {}
        pending: dict[str, list[tuple[str, str, bool]]] = {}  # newer call -> (proposal id, older call, right)
        free = t
        for spec in specs:
            n_calls += 1
            cid = ids[spec.id] = f"c{n_calls:04d}"
            arrival = t + spec.arrival_s
            add(arrival, ev.CallCreated(spec.id, block_id, block.modality.value, spec.caller_label), cid)
            for older_spec_id, older in ids.items():
                if older == cid:
                    continue
                right = scenario.incident_of(older_spec_id) == scenario.incident_of(spec.id)
                if rng.random() < (rates.proposal_recall if right else rates.false_proposal_rate):
                    n_proposals += 1
                    pid = f"lp{n_proposals}"
                    score = round(float(rng.uniform(0.6, 0.95)), 4)
                    add(arrival + 1.0, ev.LinkProposed(pid, older, score, ["simulated proposal"], 1.0, -1.0, -1.0,
                                                       -1.0, -1.0), cid)
                    pending.setdefault(cid, []).append((pid, older, right))
            answer = max(arrival, free) + float(rng.uniform(2, 6))
            add(answer, ev.CallAnswered(STATION), cid)
            for u in spec.utterances:
                add(answer + u.at_s, ev.CallerUtterance(spec.utterances.index(u), u.text, u.at_s), cid)
            truth = spec.truth.urgency.value
            own = truth if rng.random() < rates.own_accuracy else _other(rng, truth)
            urgency = own
            if block.advice:
                advised = truth if rng.random() < rates.advice_accuracy else _other(rng, truth)
                add(answer + 2.0, ev.AdviceGiven(advised, ["SIM"], ["simulated advice"]), cid)
                add(answer + 2.5, ev.AdviceShown(0, advised, ["SIM"]), cid)
                if rng.random() < rates.follow_advice:
                    urgency = advised
            add(answer + 8.0, ev.IntakeIncidentType(spec.truth.incident_type), cid)
            add(answer + 10.0, ev.IntakeUrgency(urgency), cid)
            for pid, older, right in pending.get(cid, []):
                accept = rng.random() < (rates.accept_true if right else rates.accept_false)
                add(answer + 15.0, ev.LinkDecided(pid, older, "accept" if accept else "reject",
                                                  "parent" if accept else ""), cid)
                if accept:
                    add(answer + 15.0, ev.LinkSet(older, "parent", "proposal", pid), cid)
            close = answer + float(rng.uniform(40, 80))
            add(close, ev.CallClosed(spec.truth.incident_type, urgency, spec.truth.location, [], False, "", ""), cid)
            free = close + float(rng.uniform(3, 8))
            add(free, ev.RatingRsme(round(float(rng.uniform(20, 80)), 1)), cid)
        add(free + 1.0, ev.BlockEnded(block_id))
        t = free + 10.0
    add(t, ev.SessionEnded("completed"))
    return plan


def simulate_automation(
    scenario: Scenario,
    scenario_bytes: bytes,
    rates: AutomationRates,
    *,
    participants: int,
    seed: int,
    out: Path,
    start_at: datetime = DEFAULT_START,
) -> list[Path]:
    """Write ``participants`` session folders ``out/auto-<seed>-p<NNN>`` (model in the module docstring); returns
    their paths. The same arguments give identical folders.

    Raises ``ValueError`` for ``participants < 1``, a negative ``seed`` or bytes that do not match the scenario;
    :class:`~workbench.simulate.simulator.PseudonymClashError` (a ``ValueError``) before anything is written when a
    pseudonym ``P<NNN>`` is already the participant of another session in ``out`` (as in ``simulate``: one pseudonym
    is one person to the analysis and to a withdrawal); ``RecordingsError`` when a folder exists already;
    ``OSError`` when ``out`` cannot be written.
    """
    if participants < 1:
        raise ValueError(f"participants must be at least 1, got {participants}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    clashes = pseudonym_clashes(Path(out), {f"P{i + 1:03d}": f"auto-{seed}-p{i + 1:03d}" for i in range(participants)})
    if clashes:
        shown = ", ".join(f"{p} (session {sid})" for p, sid in clashes[:5]) + (" ..." if len(clashes) > 5 else "")
        raise PseudonymClashError(f"{out} already holds other sessions of participant(s) {shown}: the new simulated "
                                  "people would share their pseudonyms. Write to another --out folder; nothing was "
                                  "written")
    digest = sha256_hex(scenario_bytes)
    if scenario.sha256 and scenario.sha256 != digest:
        raise ValueError("scenario_bytes do not match the scenario (SHA-256 differs): pass the bytes it was read from")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    orders = latin_square_orders([b.id for b in scenario.blocks], seed)
    paths = []
    for i in range(participants):
        participant, session_id = f"P{i + 1:03d}", f"auto-{seed}-p{i + 1:03d}"
        order = orders[i % len(orders)]
        wall = start_at + timedelta(hours=i)
        clock = SimulatedClock(wall)
        header = SessionHeader(
            session_id=session_id, participant=participant, scenario_id=scenario.id, scenario_sha256=digest,
            block_order=list(order), seed=seed, software_version=workbench.__version__,
            started_at=wall.isoformat(timespec="microseconds"),
            extra={"simulated": True, "generator": "workbench.simulate.automation", "participant_index": i,
                   "automation": asdict(rates)},
        )
        folder = Recordings(out, clock).create_session(header, scenario_bytes)
        start = ev.SessionStarted(participant, scenario.id, digest, seed, list(order), workbench.__version__)
        plan = _plan_participant(scenario, list(order), rates, np.random.default_rng([seed, i, 11]), start)
        log = FileEventLog(folder.events_path, session_id, clock, fsync="close")
        try:
            for t_s, _n, call_id, payload in sorted(plan, key=lambda p: (p[0], p[1])):
                clock.now_ns = round(t_s * NS_PER_S)
                log.append("simulator", payload, call_id)
        finally:
            log.close()
        paths.append(folder.path)
    return paths


# --- the command line: ``workbench simulate-automation`` ---------------------------------------------------------


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``workbench simulate-automation`` on the CLI's subparsers (``workbench/cli.py`` calls this)."""
    p = sub.add_parser(
        "simulate-automation", help="synthetic sessions with link proposals and triage advice at known rates",
        description="Writes one session folder per synthetic participant under --out with link proposals, the "
        "dispatchers' decisions, triage advice and urgencies drawn at the given rates (model: "
        "workbench/simulate/automation.py), for checking that `workbench analyze` (automation_*.csv) recovers them. "
        "Use a scenario with [[incidents]] and blocks with advice on and off, e.g. "
        "experiments/multi-caller/advice-study.toml.")
    p.add_argument("--participants", type=int, required=True, metavar="N", help="number of synthetic participants")
    p.add_argument("--scenario", type=Path, required=True, metavar="S", help="scenario TOML file")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="seed of every random choice (default 0)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="recordings folder to write the sessions to")
    defaults = AutomationRates()
    for f in fields(AutomationRates):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=float, default=getattr(defaults, f.name), metavar="P",
                       help=f"probability (default {getattr(defaults, f.name)})")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from workbench.store.recordings import RecordingsError
    from workbench.store.scenarios import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
        rates = AutomationRates(**{f.name: getattr(args, f.name) for f in fields(AutomationRates)})
    except (ScenarioError, ValueError) as exc:
        print(f"workbench simulate-automation: invalid input:\n{exc}", file=sys.stderr)
        return 2
    try:
        paths = simulate_automation(scenario, args.scenario.read_bytes(), rates, participants=args.participants,
                                    seed=args.seed, out=args.out)
    except (ValueError, RecordingsError) as exc:
        print(f"workbench simulate-automation: {exc}", file=sys.stderr)
        return 2
    print(f"{len(paths)} simulated session(s) with automated aids of scenario {scenario.id!r} -> {args.out}")
    return 0
