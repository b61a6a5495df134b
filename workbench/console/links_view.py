"""View model of the console's "related reports and advice" panel (issue 11). Pure: no Streamlit, no I/O.

:func:`links_view` turns the ingest's ``GET /api/calls/{call_id}/links`` answer and the session state into what the
panel draws: the triage advice with its reasons (and whether its ``advice.shown`` still has to be posted), the
pending link proposals with score and reasons, the decided ones, the current links, and the other reports (open
or closed) the dispatcher can link to by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.domain.session_state import SessionState
from workbench.domain.taxonomy import Urgency

RELATION_LABELS = {
    "parent": "parent: the other leads",
    "child": "child: this report leads",
    "related": "related: no hierarchy",
}
"""EIDO link relations as the panel offers them, read as the other report's role."""

STATUS_LABELS = {"waiting": "in queue", "active": "open", "closed": "closed", "done": "closed"}


@dataclass(frozen=True)
class AdviceView:
    """Advice to show: ``seq`` of its ``advice.given``, urgency label, reasons; ``post_shown`` when the console has
    not yet recorded that it showed this advice."""

    seq: int
    urgency: str
    label: str
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    post_shown: bool


@dataclass(frozen=True)
class ProposalView:
    """One link proposal involving the active report."""

    proposal_id: str
    other_call_id: str
    other_label: str
    score_pct: int
    reasons: tuple[str, ...]
    decision: str
    relation: str
    default_relation: str
    """Relation the panel marks as proposed: the earlier report as ``parent`` (the first report usually leads)."""

    @property
    def headline(self) -> str:
        """One line: who, and the score in percent."""
        return f"Possibly the same incident as {self.other_label} (score {self.score_pct}%)"


@dataclass(frozen=True)
class LinkView:
    """A current link of the active report: the other report and its role."""

    other_call_id: str
    other_label: str
    relation: str


@dataclass(frozen=True)
class LinksView:
    """Everything the panel shows for one report."""

    advice: AdviceView | None
    pending: tuple[ProposalView, ...]
    decided: tuple[ProposalView, ...]
    links: tuple[LinkView, ...]
    candidates: tuple[tuple[str, str], ...]
    """``(call_id, label)`` of every other report of the session (open or closed) not linked yet."""


def _label(state: SessionState, call_id: str, fallback: str = "") -> str:
    call = state.calls.get(call_id)
    if call is None:
        return fallback or call_id
    return f"{call.caller_label or call_id} ({STATUS_LABELS.get(call.status, call.status)})"


def links_view(reply: dict[str, Any], state: SessionState, call_id: str) -> LinksView:
    """Build the panel's view from the ingest's links answer for ``call_id`` and the session state.

    ``reply`` is ``{"proposals": [...], "links": [...], "advice": {...}|None, "advice_shown": [seq, ...]}``
    (``workbench.ingest.links``); missing keys count as empty.
    """
    advice = None
    raw = reply.get("advice")
    if raw:
        urgency = str(raw.get("urgency", ""))
        label = f"{urgency} (prio {Urgency(urgency).priority})" if urgency in {u.value for u in Urgency} else urgency
        advice = AdviceView(int(raw.get("seq", 0)), urgency, label, tuple(raw.get("rules", [])),
                            tuple(raw.get("reasons", [])), int(raw.get("seq", 0)) not in set(reply.get("advice_shown", [])))
    me = state.calls.get(call_id)
    pending, decided = [], []
    for p in reply.get("proposals", []):
        other = str(p["other_call_id"])
        other_call = state.calls.get(other)
        earlier = other_call is not None and me is not None and other_call.created_ns <= me.created_ns
        view = ProposalView(str(p["proposal_id"]), other, _label(state, other, p.get("other_caller_label", "")),
                            round(float(p.get("score", 0)) * 100), tuple(p.get("reasons", [])),
                            str(p.get("decision", "")), str(p.get("relation", "")),
                            "parent" if earlier else "child")
        (decided if view.decision else pending).append(view)
    links = tuple(LinkView(str(x["other_call_id"]), _label(state, str(x["other_call_id"]),
                                                           x.get("other_caller_label", "")), str(x["relation"]))
                  for x in reply.get("links", []))
    linked = {x.other_call_id for x in links}
    candidates = tuple((cid, _label(state, cid)) for cid, c in sorted(state.calls.items(),
                                                                         key=lambda kv: kv[1].created_ns)
                       if cid != call_id and cid not in linked)
    return LinksView(advice, tuple(pending), tuple(decided), links, candidates)


def relation_label(relation: str) -> str:
    """The label of a relation in the panel's choices."""
    return RELATION_LABELS.get(relation, relation)
