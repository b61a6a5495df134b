"""What automated aids did and what dispatchers did with them (issue 11): link proposals against the scenario's
ground-truth incidents, triage advice against the true urgency and the dispatchers' urgency (automation bias), and
the screening's possible-disagreement score against the designed disagreement.

:func:`automation_tables` turns loaded sessions into four tables (columns declared below, described in the
codebook through :func:`codebook_tables`):

- ``automation_proposals``: one row per ``link.proposed``: is the pair one incident by the scenario's ground truth
  (``Scenario.incident_of``), and what the dispatcher decided.
- ``automation_advice``: one row per closed, non-practice call with ground truth: whether its block had advice on,
  the advice given and shown, the dispatcher's final urgency and whether it was right or followed the advice.
- ``automation_screening``: one row per call x aspect with a designed congruence and a photo on disk: the
  screening's ``possible_score`` (``workbench.screening.disagreement``; transcript facts against the call's first
  photo, people detection off for speed) next to the designed disagreement. Never ground truth.
- ``automation_summary``: one row per statistic with ``n``, ``k``, the estimate and its 95 % CI.

Methods: proportions with Wilson score intervals; the difference of two independent proportions with Newcombe's
hybrid score interval (automation bias: accuracy without advice minus accuracy with wrong advice); Cohen's kappa of
advice vs true urgency with its asymptotic CI (statsmodels ``cohens_kappa``); the screening score's separation of
designed disagreement as the area under the ROC curve (Mann-Whitney U / (n1 n2), scipy). Calls, not participants,
are the units of these proportions (no clustering correction): with several calls per participant the intervals
are too narrow when participants differ; the trial tables allow a mixed model.

Proposal recall counts the true pairs (two calls of one ground-truth incident) of sessions whose proposals were
made (recorded by the ingest, or any ``link.proposed``); sessions of the main simulator have none and are left out.

References: Wilson (1927) JASA 22:209; Newcombe (1998) Stat Med 17:873; Cohen (1960) Educ Psychol Meas 20:37;
Hanley & McNeil (1982) Radiology 143:29.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.load import LoadedSession
from analysis.trials import Column, frame
from workbench.domain import events as ev
from workbench.domain.links import LinkState
from workbench.domain.taxonomy import DISAGREEMENT_ASPECTS, Urgency

URGENCIES = [u.value for u in Urgency]

PROPOSAL_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("participant", "string", "", "Participant pseudonym."),
    Column("block_id", "string", "", "Block of the report that carries the proposal."),
    Column("proposal_id", "string", "", "Id of the link.proposed in the session."),
    Column("call_id", "string", "", "The newer report (carries the proposal)."),
    Column("other_call_id", "string", "", "The earlier report proposed as the same incident."),
    Column("scenario_call_id", "string", "", "Scenario call of call_id; empty for ad-hoc calls."),
    Column("other_scenario_call_id", "string", "", "Scenario call of other_call_id; empty for ad-hoc calls."),
    Column("score", "number", "", "Link score 0..1 when proposed (link.proposed)."),
    Column("last_score", "number", "", "Link score 0..1 after the last link.rescored (equals score when never "
                                       "rescored)."),
    Column("same_incident", "boolean", "", "Ground truth: both reports belong to one scenario incident; empty "
                                            "without a scenario or for ad-hoc calls."),
    Column("decision", "string", "", "accept, reject, or empty when never decided."),
    Column("relation", "string", "", "Relation set on accept (parent, child, related)."),
    Column("decision_s", "number", "s", "Time from the proposal to the decision; empty when undecided."),
    Column("decision_correct", "boolean", "", "The decision matches the ground truth (accept a true pair, reject a "
                                              "false one); empty when undecided or without ground truth."),
)

ADVICE_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("participant", "string", "", "Participant pseudonym."),
    Column("block_id", "string", "", "Block of the call."),
    Column("call_id", "string", "", "Ingest call id."),
    Column("scenario_call_id", "string", "", "Scenario call id."),
    Column("advice_on", "boolean", "", "The scenario switches advice on in the call's block."),
    Column("true_urgency", "string", "", "Ground-truth urgency (spoed, nu, later)."),
    Column("advice_given", "string", "", "Urgency of the last advice.given before the close; empty when none."),
    Column("advice_shown", "string", "", "Urgency of the last advice.shown before the close (what the dispatcher "
                                         "saw); empty when none."),
    Column("advice_correct", "boolean", "", "The advice shown (else given) equals the true urgency; empty "
                                            "without advice."),
    Column("final_urgency", "string", "", "Urgency in call.closed."),
    Column("urgency_correct", "boolean", "", "final_urgency equals true_urgency."),
    Column("followed_advice", "boolean", "", "final_urgency equals the advice shown; empty when none was shown."),
)

SCREENING_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "string", "", "Session folder name."),
    Column("call_id", "string", "", "Ingest call id."),
    Column("scenario_call_id", "string", "", "Scenario call id."),
    Column("aspect", "string", "", "Disagreement aspect (taxonomy key)."),
    Column("designed_disagreement", "boolean", "", "Ground truth: speech and image disagree on this aspect by "
                                                   "design (congruence false)."),
    Column("possible_score", "number", "", "Screening's possible-disagreement score 0..1; empty when the aspect "
                                           "was not comparable. Not ground truth."),
    Column("evidence", "string", "", "The screening's evidence, joined with ' ; '."),
)

SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("measure", "string", "", "proposal_precision, proposal_recall, proposal_accepted, advice_agreement, "
                                    "advice_kappa, advice_followed, urgency_accuracy, automation_bias, "
                                    "screening_auc."),
    Column("level", "string", "", "Subset: all; right/wrong (proposal or advice); an urgency; no_advice, "
                                  "right_advice, wrong_advice; an aspect."),
    Column("n", "integer", "", "Number of units (proposals, pairs, calls or call x aspects) the estimate uses."),
    Column("k", "integer", "", "Count of successes for proportions; empty otherwise."),
    Column("estimate", "number", "", "Proportion, kappa, difference of proportions or AUC."),
    Column("ci_low", "number", "", "Lower bound of the 95 % CI."),
    Column("ci_high", "number", "", "Upper bound of the 95 % CI."),
    Column("method", "string", "", "wilson, newcombe, cohens_kappa, mann_whitney_auc."),
)


def codebook_tables() -> tuple[tuple[str, str, tuple[Column, ...]], ...]:
    """The automation tables for the codebook: file name, what a row is, columns."""
    return (
        ("automation_proposals.csv", "One row per link proposal (link.proposed) with the ground truth and the "
         "dispatcher's decision (analysis/automation.py).", PROPOSAL_COLUMNS),
        ("automation_advice.csv", "One row per closed non-practice call with ground truth: advice on/off, advice "
         "given and shown, final urgency.", ADVICE_COLUMNS),
        ("automation_screening.csv", "One row per call x aspect with a designed congruence and a photo: the "
         "screening's possible-disagreement score (never ground truth).", SCREENING_COLUMNS),
        ("automation_summary.csv", "One row per statistic on proposals, advice (agreement, kappa, automation "
         "bias) and screening, with n, k and a 95 % CI.", SUMMARY_COLUMNS),
    )


def _truth_incident(session: LoadedSession, scenario_call_id: str) -> str | None:
    if session.scenario is None or not scenario_call_id:
        return None
    try:
        return session.scenario.incident_of(scenario_call_id)
    except KeyError:
        return None


def _events_by_call(session: LoadedSession) -> dict[str | None, list[ev.Event]]:
    """The session's events per ``call_id``, each list in log order: one pass instead of a scan of the whole log
    per call (60 calls x ~4500 events per session of a study)."""
    out: dict[str | None, list[ev.Event]] = {}
    for e in session.events:
        out.setdefault(e.call_id, []).append(e)
    return out


def _analysed_calls(session: LoadedSession) -> dict[str, Any]:
    practice = session.practice_blocks
    return {cid: c for cid, c in session.state.calls.items() if c.block_id not in practice}


def proposal_rows(session: LoadedSession) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """Rows of ``automation_proposals`` for one session and ``(true pairs proposed, true pairs)`` for recall, or
    None when the session had no proposer (see the module docstring)."""
    calls = _analysed_calls(session)
    links = LinkState.from_events(session.events)
    mono = {e.seq: e.t_mono_ns for e in session.events}
    rows = []
    proposed_pairs = set()
    for p in sorted(links.proposals.values(), key=lambda p: p.seq):
        a, b = calls.get(p.call_id), calls.get(p.other_call_id)
        if a is None or b is None:
            continue
        ia, ib = _truth_incident(session, a.scenario_call_id), _truth_incident(session, b.scenario_call_id)
        same = None if ia is None or ib is None else ia == ib
        proposed_pairs.add(frozenset((p.call_id, p.other_call_id)))
        decided = bool(p.decision)
        rows.append({
            "session_id": session.session_id, "participant": session.participant, "block_id": a.block_id,
            "proposal_id": p.proposal_id, "call_id": p.call_id, "other_call_id": p.other_call_id,
            "scenario_call_id": a.scenario_call_id, "other_scenario_call_id": b.scenario_call_id,
            "score": p.first_score, "last_score": p.score, "same_incident": same, "decision": p.decision, "relation": p.relation,
            "decision_s": round((mono[p.decided_seq] - mono[p.seq]) / 1e9, 3) if decided else None,
            "decision_correct": None if not decided or same is None else (p.decision == "accept") == same,
        })
    by_ingest = any(isinstance(e.data, ev.SessionStarted) and e.source == "ingest" for e in session.events)
    if not (by_ingest or links.proposals):
        return rows, None
    ids = list(calls)
    true_pairs = proposed_true = 0
    for i, x in enumerate(ids):
        for y in ids[:i]:
            ix = _truth_incident(session, calls[x].scenario_call_id)
            if ix is not None and ix == _truth_incident(session, calls[y].scenario_call_id):
                true_pairs += 1
                proposed_true += frozenset((x, y)) in proposed_pairs
    return rows, (proposed_true, true_pairs)


def advice_rows(session: LoadedSession) -> list[dict[str, Any]]:
    """Rows of ``automation_advice`` for one session (closed non-practice calls with ground truth)."""
    rows = []
    closed_seq = {e.call_id: e.seq for e in session.events if isinstance(e.data, ev.CallClosed)}
    by_call = _events_by_call(session)
    for cid, call in _analysed_calls(session).items():
        if call.closed is None or session.scenario is None or not call.scenario_call_id:
            continue
        try:
            spec = session.scenario.call(call.scenario_call_id)
            advice_on = session.scenario.block(call.block_id).advice
        except KeyError:
            continue
        before = [e for e in by_call.get(cid, ()) if e.seq < closed_seq.get(cid, 0)]
        given = [e.data.urgency for e in before if isinstance(e.data, ev.AdviceGiven)]
        shown = [e.data.urgency for e in before if isinstance(e.data, ev.AdviceShown)]
        advice = (shown or given or [None])[-1]
        truth, final = spec.truth.urgency.value, call.closed.urgency
        rows.append({
            "session_id": session.session_id, "participant": session.participant, "block_id": call.block_id,
            "call_id": cid, "scenario_call_id": call.scenario_call_id, "advice_on": advice_on,
            "true_urgency": truth, "advice_given": given[-1] if given else None,
            "advice_shown": shown[-1] if shown else None,
            "advice_correct": None if advice is None else advice == truth,
            "final_urgency": final, "urgency_correct": final == truth,
            "followed_advice": final == shown[-1] if shown else None,
        })
    return rows


def screening_rows(session: LoadedSession, cache: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of ``automation_screening`` for one session. ``cache`` (photo SHA-256 -> image facts) spares
    re-analysing the same photo in several sessions."""
    import cv2

    from workbench.screening.disagreement import possible_disagreements
    from workbench.screening.image import analyse_still
    from workbench.screening.transcript import extract_facts

    cache = {} if cache is None else cache
    by_call = _events_by_call(session)
    rows = []
    for cid, call in _analysed_calls(session).items():
        if session.scenario is None or not call.scenario_call_id:
            continue
        try:
            congruence = session.scenario.call(call.scenario_call_id).truth.congruence
        except KeyError:
            continue
        photo = next((e.data for e in by_call.get(cid, ()) if isinstance(e.data, ev.MediaPhotoReceived)), None)
        if not congruence or photo is None:
            continue
        path = session.path / photo.file_display
        if photo.sha256 not in cache:
            image = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2) if path.is_file() else None
            cache[photo.sha256] = None if image is None else analyse_still(image, people=False)
        facts = cache[photo.sha256]
        if facts is None:
            continue
        lines = [e.data.text for e in by_call.get(cid, ()) if isinstance(e.data, ev.CallerUtterance)]
        found = possible_disagreements(extract_facts(lines), facts)
        for aspect, agree in congruence.items():
            result = found.get(aspect)
            rows.append({
                "session_id": session.session_id, "call_id": cid, "scenario_call_id": call.scenario_call_id,
                "aspect": aspect, "designed_disagreement": not agree,
                "possible_score": None if result is None or result.possible_score is None
                else round(result.possible_score, 4),
                "evidence": " ; ".join(result.evidence) if result is not None else "",
            })
    return rows


def _prop(measure: str, level: str, k: int, n: int) -> dict[str, Any]:
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return {"measure": measure, "level": level, "n": 0, "k": 0, "estimate": None, "ci_low": None,
                "ci_high": None, "method": "wilson"}
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return {"measure": measure, "level": level, "n": n, "k": k, "estimate": k / n, "ci_low": float(low),
            "ci_high": float(high), "method": "wilson"}


def _bool_prop(measure: str, level: str, values: pd.Series) -> dict[str, Any]:
    v = values.dropna().astype(bool)
    return _prop(measure, level, int(v.sum()), int(len(v)))


def summary_rows(proposals: pd.DataFrame, recall: Sequence[tuple[int, int]], advice: pd.DataFrame,
                 screening: pd.DataFrame) -> list[dict[str, Any]]:
    """The statistics of ``automation_summary`` (see the module docstring for the methods)."""
    from scipy.stats import mannwhitneyu
    from statsmodels.stats.inter_rater import cohens_kappa
    from statsmodels.stats.proportion import confint_proportions_2indep

    rows = [_bool_prop("proposal_precision", "all", proposals["same_incident"])]
    rows.append(_prop("proposal_recall", "all", sum(k for k, _ in recall), sum(n for _, n in recall)))
    decided = proposals[proposals["decision"].fillna("") != ""]
    accepted = decided["decision"] == "accept"
    rows.append(_prop("proposal_accepted", "all", int(accepted.sum()), len(decided)))
    for level, right in (("right", True), ("wrong", False)):
        sub = decided[decided["same_incident"].fillna(not right) == right]
        rows.append(_prop("proposal_accepted", level, int((sub["decision"] == "accept").sum()), len(sub)))
    rows.append(_bool_prop("proposal_decision_correct", "all", decided["decision_correct"]))

    with_advice = advice[advice["advice_correct"].notna()]
    rows.append(_bool_prop("advice_agreement", "all", with_advice["advice_correct"]))
    for u in URGENCIES:
        rows.append(_bool_prop("advice_agreement", u, with_advice[with_advice["true_urgency"] == u]["advice_correct"]))
    if len(with_advice) >= 2:
        advised = with_advice["advice_shown"].fillna(with_advice["advice_given"])
        table = pd.crosstab(pd.Categorical(with_advice["true_urgency"], URGENCIES),
                            pd.Categorical(advised, URGENCIES), dropna=False).to_numpy()
        k = cohens_kappa(table)
        rows.append({"measure": "advice_kappa", "level": "all", "n": len(with_advice), "k": None,
                     "estimate": float(k.kappa), "ci_low": float(k.kappa_low), "ci_high": float(k.kappa_upp),
                     "method": "cohens_kappa"})
    shown = advice[advice["followed_advice"].notna()]
    rows.append(_bool_prop("advice_followed", "all", shown["followed_advice"]))
    rows.append(_bool_prop("advice_followed", "right", shown[shown["advice_correct"] == True]["followed_advice"]))  # noqa: E712
    rows.append(_bool_prop("advice_followed", "wrong", shown[shown["advice_correct"] == False]["followed_advice"]))  # noqa: E712
    groups = {
        "no_advice": advice[(advice["advice_on"] == False) & advice["advice_shown"].isna()],  # noqa: E712
        "right_advice": shown[shown["advice_correct"] == True],  # noqa: E712
        "wrong_advice": shown[shown["advice_correct"] == False],  # noqa: E712
    }
    for level, sub in groups.items():
        rows.append(_bool_prop("urgency_accuracy", level, sub["urgency_correct"]))
    a, b = groups["no_advice"]["urgency_correct"].astype(bool), groups["wrong_advice"]["urgency_correct"].astype(bool)
    if len(a) and len(b):
        low, high = confint_proportions_2indep(int(a.sum()), len(a), int(b.sum()), len(b), method="newcomb",
                                               compare="diff")
        rows.append({"measure": "automation_bias", "level": "no_advice - wrong_advice", "n": len(a) + len(b),
                     "k": None, "estimate": float(a.mean() - b.mean()), "ci_low": float(low),
                     "ci_high": float(high), "method": "newcombe"})

    scored = screening[screening["possible_score"].notna()]
    for aspect in DISAGREEMENT_ASPECTS:
        sub = scored[scored["aspect"] == aspect]
        pos = sub[sub["designed_disagreement"] == True]["possible_score"].astype(float)  # noqa: E712
        neg = sub[sub["designed_disagreement"] == False]["possible_score"].astype(float)  # noqa: E712
        if len(pos) and len(neg):
            u = mannwhitneyu(pos, neg, alternative="two-sided").statistic
            rows.append({"measure": "screening_auc", "level": aspect, "n": len(pos) + len(neg), "k": None,
                         "estimate": float(u) / (len(pos) * len(neg)), "ci_low": None, "ci_high": None,
                         "method": "mann_whitney_auc"})
    return rows


@dataclass
class AutomationRows:
    """What one or more sessions give the automation tables, in session order (taken while their events are
    held: :mod:`analysis.reading` releases each session's events once its rows are taken)."""

    proposals: list[dict[str, Any]] = field(default_factory=list)
    recall: list[tuple[int, int]] = field(default_factory=list)
    advice: list[dict[str, Any]] = field(default_factory=list)
    screening: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: AutomationRows) -> None:
        """Append ``other``'s rows after these."""
        self.proposals += other.proposals
        self.recall += other.recall
        self.advice += other.advice
        self.screening += other.screening


def automation_rows(session: LoadedSession, cache: dict[str, Any] | None = None) -> AutomationRows:
    """One session's rows of the automation tables; needs the session's events (before ``release_events``).
    ``cache`` keeps image facts between sessions of one process (photo path -> facts)."""
    rows, pairs = proposal_rows(session)
    return AutomationRows(proposals=rows, recall=[pairs] if pairs is not None else [],
                          advice=advice_rows(session), screening=screening_rows(session, cache))


def automation_frames(rows: AutomationRows) -> dict[str, pd.DataFrame]:
    """The four automation tables (name without extension -> frame, declared columns) from collected rows."""
    tables = {
        "automation_proposals": frame(rows.proposals, PROPOSAL_COLUMNS),
        "automation_advice": frame(rows.advice, ADVICE_COLUMNS),
        "automation_screening": frame(rows.screening, SCREENING_COLUMNS),
    }
    tables["automation_summary"] = frame(
        summary_rows(tables["automation_proposals"], rows.recall, tables["automation_advice"],
                     tables["automation_screening"]), SUMMARY_COLUMNS)
    return tables


def automation_tables(sessions: Sequence[LoadedSession]) -> dict[str, pd.DataFrame]:
    """The four automation tables of sessions whose events are held (see :func:`automation_frames`)."""
    collected = AutomationRows()
    cache: dict[str, Any] = {}
    for s in sessions:
        collected.extend(automation_rows(s, cache))
    return automation_frames(collected)


def report_section(tables: dict[str, pd.DataFrame]) -> str:
    """An HTML section of the report: the automation summary as a table; an empty string when no session had an
    automated aid (no proposal, no advice given or shown), so reports of studies without aids are unchanged."""
    import html

    advice = tables["automation_advice"]
    if tables["automation_proposals"].empty and advice[["advice_given", "advice_shown"]].isna().all().all():
        return ""
    summary = tables["automation_summary"]
    rows = summary[summary["n"].fillna(0) > 0]

    def fmt(v: Any) -> str:
        return "" if v is None or pd.isna(v) else (f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v))

    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(r[c]))}</td>" for c in
                         ("measure", "level", "n", "k", "estimate", "ci_low", "ci_high", "method")) + "</tr>"
        for _, r in rows.iterrows()
    )
    return ("<h2>Automated aids: link proposals, triage advice, screening</h2>"
            "<p>Proportions over calls with 95% Wilson intervals; automation bias is the accuracy without advice "
            "minus the accuracy after wrong advice (Newcombe interval); see automation_summary.csv and "
            "analysis/automation.py. The screening score is never ground truth.</p>"
            "<table><tr><th>measure</th><th>level</th><th>n</th><th>k</th><th>estimate</th><th>95% CI low</th>"
            f"<th>95% CI high</th><th>method</th></tr>{body}</table>")

