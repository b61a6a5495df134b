"""The console's "related reports and advice" panel on the active call (issue 11): a thin Streamlit layer over
:mod:`workbench.console.links_view`.

It reads ``GET /api/calls/{call_id}/links`` when the session's log has news for it (:mod:`live_watch`: link, advice
and call events; every :data:`FALLBACK_S` s should the browser not reach the ingest), and shows:

- the triage advice with its reasons, when the ingest gave one (blocks with ``advice = true``); the first time an
  advice is drawn the panel posts ``advice.shown`` (what the dispatcher saw, for the automation-bias analysis);
- each pending link proposal with its score and reasons, and one row of choices: link it as **Parent**, **Child** or
  **Related** (the proposed relation marked), or **Reject**; one click decides
  (``POST /api/calls/{call_id}/links/decisions``: ``link.decided``, and ``link.set`` on accept). The
  :data:`SHOWN_PROPOSALS` best-scored ones in full, the others in one line (report and score) until **Show all**;
- the report's current links, each with **Unlink** (``link.removed``);
- behind the switch **Link by hand**, a way to link the report to any other report of the session, open or closed,
  with a relation (``link.set``, origin ``manual``).

The panel is drawn with few elements because answering a call mounts it in the browser together with the intake
form, and the browser's time grows with the number of elements, not their kind (``python -m
benchmarks.console_widget_cost``). Per proposal it was a relation select box, Accept and Reject in a row of three
columns, and the manual row two select boxes and a button in three more: by the fourth call of a shift the panel had
16 elements, the intake form 10. One choice row per proposal, and the manual row only on request, halve it.

Widget keys (``st-key-<key>`` in the page): container ``panel_links-<cid>``; ``link_decide_<pid>-<cid>`` (options
``parent``, ``child``, ``related``, ``reject``), ``link_unlink_<other>-<cid>``, ``link_show_all-<cid>``,
``link_by_hand-<cid>``, ``link_other-<cid>``, ``link_manual_relation-<cid>``, ``link_set-<cid>``.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st

from workbench.console import live_watch
from workbench.console.ingest_client import IngestClient, IngestError
from workbench.console.links_view import LinksView, links_view, relation_label
from workbench.domain import events as ev
from workbench.domain.session_state import SessionState

K_ERROR = "wb_links_error"
K_SHOWN = "wb_advice_shown"

SHOWN_PROPOSALS = 3
"""Pending proposals drawn at first, best score first; the rest after **Show all**."""
FALLBACK_S = 10.0
"""The panel's own redraw interval, s, for when the page's change watcher cannot reach the ingest."""
WATCHED = ("link.", "advice.given", "call.")
"""Event types the panel draws: proposals, decisions and links; the triage advice; the other reports and their
status (the labels and the manual choices)."""


def _key(name: str, cid: str) -> str:
    return f"{name}-{cid}"


def _do(action: Callable[[], None]) -> None:
    """Run one request to the ingest; keep its error for the panel (the page must not crash on a 409)."""
    try:
        action()
        st.session_state.pop(K_ERROR, None)
    except IngestError as exc:
        st.session_state[K_ERROR] = str(exc)


REJECT = "reject"
"""The choice row's option that rejects the proposal; the others are :data:`ev.LINK_RELATIONS` (accept as that)."""


def _decide(client: IngestClient, cid: str, pid: str) -> None:
    """The proposal's choice row was clicked: accept with the chosen relation, or reject. On an error the row is
    cleared, so the dispatcher can choose again."""
    key = _key(f"link_decide_{pid}", cid)
    choice = st.session_state.get(key)
    if choice is None:  # the chosen option clicked again: deselected, nothing to decide
        return
    if choice == REJECT:
        _do(lambda: client.decide_link(cid, pid, "reject", ""))
    else:
        _do(lambda: client.decide_link(cid, pid, "accept", choice))
    if st.session_state.get(K_ERROR):
        st.session_state[key] = None


def choice_label(option: str, proposed: str) -> str:
    """The label of one option in a proposal's choice row; the proposed relation is marked."""
    if option == REJECT:
        return "Reject"
    return option.capitalize() + (" (proposed)" if option == proposed else "")


def _manual(client: IngestClient, cid: str) -> None:
    other = st.session_state.get(_key("link_other", cid))
    relation = st.session_state.get(_key("link_manual_relation", cid))
    if not other or not relation:
        st.session_state[K_ERROR] = "Choose the other report and the relation first."
        return
    _do(lambda: client.set_link(cid, other, relation))


def _post_advice_shown(client: IngestClient, sid: str, cid: str, view: LinksView) -> None:
    advice = view.advice
    shown: set[int] = st.session_state.setdefault(K_SHOWN, set())
    if advice is None or not advice.post_shown or advice.seq in shown:
        return
    try:
        client.post_event(sid, cid, ev.AdviceShown(advice.seq, advice.urgency, list(advice.rules)))
        shown.add(advice.seq)
    except (IngestError, ev.EventValidationError) as exc:
        st.session_state[K_ERROR] = f"Could not record advice.shown: {exc}"


def _bullets(head: str, lines: tuple[str, ...]) -> str:
    """One Markdown text: ``head`` and a bullet per line (one element on the page, not one per line)."""
    return "\n".join([head, *(f"- {line}" for line in lines)]) if lines else head


@st.fragment(run_every=FALLBACK_S)
def links_panel(client: IngestClient, sid: str, cid: str, sync: Callable[[], SessionState],
                ingest_url: str | None = None) -> None:
    """Draw the panel for the active report ``cid`` of session ``sid``; ``sync()`` returns the session state.
    ``ingest_url``: the ingest as the browser reaches it, for the change watcher (None: no watcher, the panel
    redraws every :data:`FALLBACK_S` s only)."""
    try:
        state = sync()
        view = links_view(client.links(cid), state, cid)
    except IngestError as exc:
        st.caption(f"Related reports unavailable: {exc}")
        return
    if ingest_url is not None and not state.ended:
        live_watch.watch(ingest_url, sid, state.last_seq, "links", WATCHED)
    _post_advice_shown(client, sid, cid, view)
    with st.container(key=_key("panel_links", cid), border=True):
        if view.advice is not None:
            a = view.advice
            st.markdown(f"**Advice: urgency {a.label}**")
            st.caption("Automatic triage advice from the caller's words and images; you decide.")
            if a.reasons:
                st.markdown("\n".join(f"- {reason}" for reason in a.reasons))
        st.markdown(f"**Related reports** ({len(view.links)} linked, {len(view.pending)} proposed)")
        if error := st.session_state.get(K_ERROR):
            st.error(error)
        show_all = st.session_state.get(_key("link_show_all", cid), False)
        pending = sorted(view.pending, key=lambda p: -p.score_pct)  # stable: the ingest's order among equals
        if pending:
            st.caption("Link a proposed report as parent (it leads the incident), child (this report leads) or "
                       "related (no hierarchy), or reject it.")
        for p in pending if show_all else pending[:SHOWN_PROPOSALS]:
            st.markdown(_bullets(p.headline, p.reasons))
            st.segmented_control(f"Decide on {p.other_label}", options=[*ev.LINK_RELATIONS, REJECT],
                                 format_func=lambda o, d=p.default_relation: choice_label(o, d),
                                 key=_key(f"link_decide_{p.proposal_id}", cid), on_change=_decide,
                                 args=(client, cid, p.proposal_id), label_visibility="collapsed")
        if len(pending) > SHOWN_PROPOSALS:
            if not show_all:  # every proposal stays in sight: who and how likely, the reasons on request
                st.caption("Also proposed: " + ", ".join(f"{p.other_label} (score {p.score_pct}%)"
                                                         for p in pending[SHOWN_PROPOSALS:]))
            st.toggle(f"Show all {len(pending)} proposals", key=_key("link_show_all", cid))
        for p in view.decided:
            st.caption(f"{'Accepted' if p.decision == 'accept' else 'Rejected'}: {p.other_label} "
                       f"(score {p.score_pct}%)")
        for link in view.links:
            text, unlink = st.columns([4, 1], vertical_alignment="center")
            text.markdown(f":material/link: {link.other_label}: **{link.relation}**")
            unlink.button("Unlink", key=_key(f"link_unlink_{link.other_call_id}", cid),
                          on_click=lambda o=link.other_call_id: _do(lambda: client.set_link(cid, o, "unlink")))
        if view.candidates and st.toggle("Link by hand", key=_key("link_by_hand", cid)):
            labels = dict(view.candidates)
            other, relation, go = st.columns([3, 3, 1], vertical_alignment="bottom")
            other.selectbox("Link to report", options=list(labels), format_func=lambda c: labels.get(c, c),
                            index=None, placeholder="Choose a report", key=_key("link_other", cid))
            relation.selectbox("Its relation", options=list(ev.LINK_RELATIONS), format_func=relation_label,
                               index=None, placeholder="Parent, child or related", key=_key("link_manual_relation", cid))
            go.button("Link", key=_key("link_set", cid), on_click=_manual, args=(client, cid))
