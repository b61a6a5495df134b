"""HTTP endpoints for links between reports and triage advice (issue 11), and the wiring of the automation.

``install(app, ingest)`` (called by ``create_app``) registers :class:`~workbench.ingest.automation.Automation`,
run off the event loop by :class:`~workbench.ingest.automation.OffLoopAids`, as an event listener and adds:

- ``GET /api/calls/{call_id}/links``: ``{"proposals": [...], "links": [...], "advice": {...} | null}``; proposals
  involving the report (``proposal_id``, ``other_call_id``, ``other_caller_label``, ``score``, ``reasons``,
  ``decision`` ``""|accept|reject``), its current links (``other_call_id``, ``other_caller_label``, ``relation``
  from this report's view), the latest advice given (``seq``, ``urgency``, ``rules``, ``reasons``) or null, and
  ``advice_shown``: the ``advice_seq`` of every ``advice.shown`` of the report (what the console has shown);
- ``POST /api/calls/{call_id}/links/decisions`` with ``{"proposal_id", "decision": "accept"|"reject",
  "relation": "parent"|"child"|"related"}`` (relation on accept: the other report's role): ``link.decided`` and,
  on accept, ``link.set``; 409 when the proposal was decided already;
- ``POST /api/calls/{call_id}/links`` with ``{"other_call_id", "relation": "parent"|"child"|"related"|"unlink"}``:
  the dispatcher links by hand (``link.set``, origin ``manual``) or unlinks (``link.removed``; 409 when the two
  reports are not linked).

Both reports must be in the same session; decisions are written with source ``console``. Errors are JSON
``{"error": ...}`` with 400 (bad body), 404 (unknown call or proposal) or 409 (conflict with the log).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from workbench.domain import events as ev
from workbench.domain.links import LinkState
from workbench.domain.session_state import SessionState, apply
from workbench.ingest.app import INGEST, ApiError, Ingest, _json, _json_body, _opt_str
from workbench.ingest.automation import Automation, OffLoopAids

AIDS = web.AppKey("link_aids", OffLoopAids)
"""The app's :class:`OffLoopAids` (tests await ``app[AIDS].settle()``)."""


def install(app: web.Application, ingest: Ingest) -> None:
    """Register the automation listener on ``ingest`` and the link endpoints on ``app``."""
    def append(sid: str, payload: ev.Payload, call_id: str) -> ev.Event:
        return ingest.sessions.append(sid, "ingest", payload, call_id)

    automation = Automation(append, ingest.sessions.events, lambda sid: ingest.sessions.get(sid).path)
    # Off the event loop, which also carries live WebRTC: reading the scenario copy and photos and scoring take up
    # to a few hundred ms (the first report of a session).
    aids = OffLoopAids(automation, append, ingest.sessions.events)
    ingest.sessions.listeners.append(aids.on_event)
    ingest.settlers.append(aids.settle)
    app[AIDS] = aids

    async def close_aids(_app: web.Application) -> None:
        await aids.close()

    app.on_cleanup.append(close_aids)
    app.router.add_get("/api/calls/{call_id}/links", get_links)
    app.router.add_post("/api/calls/{call_id}/links/decisions", post_decision)
    app.router.add_post("/api/calls/{call_id}/links", post_link)


def _session(request: web.Request) -> tuple[Ingest, str, str, list[ev.Event]]:
    ingest = request.app[INGEST]
    call = ingest.calls.by_id(request.match_info["call_id"])  # NotFound -> 404
    return ingest, call.session_id, call.call_id, ingest.sessions.events(call.session_id)


def _labels(events: list[ev.Event]) -> dict[str, str]:
    state = SessionState()
    for e in events:
        apply(state, e)
    return {cid: c.caller_label for cid, c in state.calls.items()}


async def get_links(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    # What the console shows includes the aids of every event already logged (computed off the loop).
    await ingest.settle(ingest.calls.by_id(request.match_info["call_id"]).session_id)
    _ingest, _sid, call_id, events = _session(request)
    links, labels = LinkState.from_events(events), _labels(events)
    proposals = []
    for p in links.proposals_of(call_id):
        other = p.other_call_id if p.call_id == call_id else p.call_id
        proposals.append({"proposal_id": p.proposal_id, "other_call_id": other,
                          "other_caller_label": labels.get(other, ""), "score": p.score, "reasons": p.reasons,
                          "decision": p.decision, "relation": p.relation})
    advice = links.advice.get(call_id)
    return _json({
        "proposals": proposals,
        "links": [{"other_call_id": o, "other_caller_label": labels.get(o, ""), "relation": r}
                  for o, r in links.links_of(call_id)],
        "advice": None if advice is None else {"seq": advice.seq, **dataclasses.asdict(advice.data)},
        "advice_shown": [e.data.advice_seq for e in links.advice_shown.get(call_id, [])],
    })


def _relation(body: dict[str, Any], allowed: tuple[str, ...]) -> str:
    relation = _opt_str(body, "relation")
    if relation not in allowed:
        raise ApiError(400, f'"relation" must be one of {", ".join(allowed)} (the other report\'s role), '
                            f"got {relation!r}")
    return relation


async def post_decision(request: web.Request) -> web.Response:
    ingest, sid, call_id, events = _session(request)
    body = await _json_body(request)
    proposal_id = _opt_str(body, "proposal_id")
    decision = _opt_str(body, "decision")
    if decision not in ev.LINK_DECISIONS:
        raise ApiError(400, f'"decision" must be one of {", ".join(ev.LINK_DECISIONS)}, got {decision!r}')
    relation = _relation(body, ev.LINK_RELATIONS) if decision == "accept" else ""
    links = LinkState.from_events(events)
    p = links.proposals.get(proposal_id)
    if p is None or call_id not in (p.call_id, p.other_call_id):
        raise ApiError(404, f"report {call_id} has no link proposal {proposal_id!r}; "
                            f"GET /api/calls/{call_id}/links lists its proposals")
    if p.decision:
        raise ApiError(409, f"proposal {proposal_id} was decided already ({p.decision})")
    other = p.other_call_id if p.call_id == call_id else p.call_id
    written = [ingest.sessions.append(sid, "console", ev.LinkDecided(proposal_id, other, decision, relation), call_id)]
    if decision == "accept":
        written.append(ingest.sessions.append(sid, "console", ev.LinkSet(other, relation, "proposal", proposal_id),
                                              call_id))
    return _json({"events": [e.to_dict() for e in written]}, status=201)


async def post_link(request: web.Request) -> web.Response:
    ingest, sid, call_id, events = _session(request)
    body = await _json_body(request)
    other = _opt_str(body, "other_call_id")
    relation = _relation(body, (*ev.LINK_RELATIONS, "unlink"))
    if other == call_id:
        raise ApiError(400, "a report cannot be linked to itself; give another report's call_id")
    if other not in _labels(events):
        raise ApiError(404, f"report {other!r} is not in session {sid}; link reports of the same session")
    links = LinkState.from_events(events)
    if relation == "unlink":
        if frozenset((call_id, other)) not in links.links:
            raise ApiError(409, f"reports {call_id} and {other} are not linked; nothing to unlink")
        payload: ev.Payload = ev.LinkRemoved(other)
    else:
        payload = ev.LinkSet(other, relation, "manual", "")
    event = ingest.sessions.append(sid, "console", payload, call_id)
    return _json({"event": event.to_dict()}, status=201)
