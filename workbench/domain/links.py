"""The links between a session's reports, replayed from its events (issue 11). Pure.

``link.proposed`` (the workbench's proposals; ``link.rescored`` updates their score), ``link.decided`` (the
dispatcher's accept/reject), ``link.set`` and
``link.removed`` (the dispatcher's links, EIDO link semantics) and ``advice.given``/``advice.shown`` fold into a
:class:`LinkState`. Relations are stored per unordered pair from the view of the report whose event set it, and
read from either side with :meth:`LinkState.links_of` (``parent`` seen from the other side is ``child``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from workbench.domain import events as ev

INVERSE = {"parent": "child", "child": "parent", "related": "related"}
"""A relation seen from the other report of the pair."""


@dataclass
class Proposal:
    """One ``link.proposed`` and what the dispatcher did with it (``decision`` empty while pending)."""

    proposal_id: str
    call_id: str
    other_call_id: str
    score: float
    reasons: list[str]
    seq: int
    decision: str = ""
    relation: str = ""
    decided_seq: int = 0
    first_score: float = 0.0
    """The score when proposed; ``score`` and ``reasons`` follow ``link.rescored``."""


@dataclass
class Link:
    """A link the dispatcher set: from ``call_id``'s view, ``other_call_id`` has role ``relation``."""

    call_id: str
    other_call_id: str
    relation: str
    origin: str
    proposal_id: str
    seq: int


@dataclass
class LinkState:
    """Proposals by id, current links by unordered pair, and the advice given and shown per call."""

    proposals: dict[str, Proposal] = field(default_factory=dict)
    links: dict[frozenset[str], Link] = field(default_factory=dict)
    advice: dict[str, ev.Event] = field(default_factory=dict)
    """Call id -> its latest ``advice.given`` event."""
    advice_shown: dict[str, list[ev.Event]] = field(default_factory=dict)
    """Call id -> its ``advice.shown`` events in order."""

    def apply(self, event: ev.Event) -> None:
        """Fold one event in (events of other types are ignored)."""
        d, cid = event.data, event.call_id or ""
        if isinstance(d, ev.LinkProposed):
            self.proposals[d.proposal_id] = Proposal(d.proposal_id, cid, d.other_call_id, d.score, list(d.reasons),
                                                     event.seq, first_score=d.score)
        elif isinstance(d, ev.LinkRescored):
            p = self.proposals.get(d.proposal_id)
            if p is not None:
                p.score, p.reasons = d.score, list(d.reasons)
        elif isinstance(d, ev.LinkDecided):
            p = self.proposals.get(d.proposal_id)
            if p is not None:
                p.decision, p.relation, p.decided_seq = d.decision, d.relation, event.seq
        elif isinstance(d, ev.LinkSet):
            self.links[frozenset((cid, d.other_call_id))] = Link(cid, d.other_call_id, d.relation, d.origin,
                                                                 d.proposal_id, event.seq)
        elif isinstance(d, ev.LinkRemoved):
            self.links.pop(frozenset((cid, d.other_call_id)), None)
        elif isinstance(d, ev.AdviceGiven):
            self.advice[cid] = event
        elif isinstance(d, ev.AdviceShown):
            self.advice_shown.setdefault(cid, []).append(event)

    @classmethod
    def from_events(cls, events: Iterable[ev.Event]) -> "LinkState":
        """Replay a session's events."""
        state = cls()
        for e in events:
            state.apply(e)
        return state

    def links_of(self, call_id: str) -> list[tuple[str, str]]:
        """``(other_call_id, relation)`` of every current link of ``call_id``, relation from ``call_id``'s view
        (the other report's role), in the order the links were set."""
        out = []
        for link in sorted(self.links.values(), key=lambda x: x.seq):
            if link.call_id == call_id:
                out.append((link.other_call_id, link.relation))
            elif link.other_call_id == call_id:
                out.append((link.call_id, INVERSE[link.relation]))
        return out

    def proposals_of(self, call_id: str) -> list[Proposal]:
        """Proposals that involve ``call_id`` (either side), in the order they were made."""
        return sorted((p for p in self.proposals.values() if call_id in (p.call_id, p.other_call_id)),
                      key=lambda p: p.seq)

    def groups(self, call_ids: Iterable[str]) -> dict[str, int]:
        """The dispatcher's incidents: each call id -> a group number, calls joined by any link (connected
        components), numbered in the order of ``call_ids``."""
        parent: dict[str, str] = {c: c for c in call_ids}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for pair in self.links:
            a, b = tuple(pair)
            if a in parent and b in parent:
                parent[find(a)] = find(b)
        numbers: dict[str, int] = {}
        return {c: numbers.setdefault(find(c), len(numbers)) for c in parent}
