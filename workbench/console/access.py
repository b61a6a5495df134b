"""The access-code gate every role's page draws first (issue 7), and the dispatcher page's station binding.

Pages read the access-codes file named by ``WORKBENCH_ACCESS_FILE`` (``workbench serve --access-codes FILE``
sets it for every page it starts); without it there is no gate (single-person demo). Which codes open which page
(:data:`PAGE_ROLES`): the dispatcher page takes the participant's or the trainer's code, the trainer page only the
trainer's, the researcher page the researcher's or the trainer's. A wrong code is refused with a clear message and
logged to ``access-log.jsonl`` beside the codes file (never the code itself); the page stops there.

The dispatcher page, with roles on, also needs the station link's ``?ticket=``: it shows only the session the ticket
is for (a participant cannot switch to another session by editing ``?session=``), and its browser reaches the
ingest through ``/t/{ticket}`` (:mod:`workbench.ingest.roles`). A valid ticket in the URL is enough for the
participant role on that page (:func:`station_ticket_access`): a reload, or the station link opened again, does not
ask for the code, which a Streamlit page could only remember in its per-tab session, lost on every reload.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import streamlit as st

from workbench.console.launch import ConsoleConfig
from workbench.domain.roles import AccessCodes, AccessError, Role
from workbench.store import access_codes

log = logging.getLogger(__name__)

PAGE_ROLES: dict[str, tuple[Role, ...]] = {
    "dispatcher": (Role.PARTICIPANT, Role.TRAINER),
    "trainer": (Role.TRAINER,),
    "researcher": (Role.RESEARCHER, Role.TRAINER),
}
PAGE_TITLES = {"dispatcher": "dispatcher console", "trainer": "trainer's page", "researcher": "researcher's page"}
WHO_TO_ASK = {
    "dispatcher": "Check it with the trainer.",
    # The trainer is the one who would be asked on the other pages: point at where the codes really are.
    "trainer": "Check it with whoever started the workbench: the codes are printed when `workbench serve` starts "
               "and kept in its access-codes file.",
    "researcher": "Check it with the trainer or whoever started the workbench (its access-codes file holds the "
                  "codes).",
}
"""What a wrong code's message tells the person at each page to do."""
K_ROLE = "wb_access_role_{page}"


@dataclass(frozen=True)
class Access:
    """A page's granted access: ``role`` (None when the workbench runs without roles) and the ``codes``."""

    role: Role | None
    codes: AccessCodes | None
    codes_path: Path | None

    def server_token(self, role: Role) -> str:
        """The code the page's server sends to the ingest as ``role`` (empty without roles)."""
        return self.codes.code(role) if self.codes is not None else ""


def codes_path(environ: Mapping[str, str]) -> Path | None:
    """``WORKBENCH_ACCESS_FILE`` as a path, or None when roles are off."""
    value = environ.get("WORKBENCH_ACCESS_FILE")
    return Path(value) if value else None


def _submit(page: str, path: Path, codes: AccessCodes) -> None:
    code = st.session_state.get(f"access_code_{page}", "")
    role = codes.role_of(code) if code else None
    allowed = PAGE_ROLES[page]
    if role is not None and role in allowed:
        st.session_state[K_ROLE.format(page=page)] = role.value
        st.session_state.pop(f"access_refused_{page}", None)
        return
    if role is None:
        reason, message = "wrong code", f"This access code is not valid. {WHO_TO_ASK[page]}"
    else:
        reason = f"{role.value} code on the {page} page"
        message = (f"A {role.value}'s code does not open the {PAGE_TITLES[page]}. "
                   f"This page is for: {', '.join(r.value for r in allowed)}.")
    st.session_state[f"access_refused_{page}"] = message
    log.warning("access refused on the %s page: %s", page, reason)
    access_codes.log_refusal(path, page=page, wanted=allowed[0], reason=reason)


def gate(page: str, environ: Mapping[str, str]) -> Access:
    """Draw the access-code form for ``page`` (``dispatcher``, ``trainer``, ``researcher``) until a code for it is
    given; returns the granted :class:`Access`, or stops the script (``st.stop()``) while none is. Call it first,
    right after ``st.set_page_config``. Without ``WORKBENCH_ACCESS_FILE`` it draws nothing and returns
    ``Access(None, None, None)``. An unreadable codes file stops the page with the error."""
    path = codes_path(environ)
    if path is None:
        return Access(None, None, None)
    try:
        codes = access_codes.load(path)
    except AccessError as exc:
        st.error(f"The workbench's access codes cannot be read: {exc}")
        st.stop()
    granted = st.session_state.get(K_ROLE.format(page=page))
    if granted:
        return Access(Role(granted), codes, path)
    st.title(f"112 workbench · {PAGE_TITLES[page]}")
    # A form, so that Enter in the field submits it as the Open button does.
    with st.form(f"access_form_{page}", border=False, enter_to_submit=True):
        st.text_input("Access code", type="password", key=f"access_code_{page}",
                      help="The code for this page; the trainer gives it to you." if page == "dispatcher"
                      else "The code for this page.")
        st.form_submit_button("Open", key=f"access_open_{page}", type="primary", on_click=_submit,
                              args=(page, path, codes))
    refused = st.session_state.get(f"access_refused_{page}")
    if refused:
        st.error(refused)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def station_session(access: Access, query: Mapping[str, str], pinned: str | None) -> tuple[str | None, str | None]:
    """The dispatcher page's ``(session_id, ticket)`` under roles: the session of a valid ``?ticket=`` (or the
    configured ``pinned`` session with its ticket); ``(None, None)`` when a participant has neither. A trainer
    without a ticket may open any session (``(None, None)`` then means: choose as without roles)."""
    assert access.codes is not None
    ticket = query.get("ticket", "")
    sid = access.codes.ticket_session(ticket) if ticket else None
    if sid is not None:
        return sid, ticket
    if pinned:
        return pinned, access.codes.session_ticket(pinned)
    return None, None


def station_ticket_access(environ: Mapping[str, str], ticket: str) -> Access | None:
    """The dispatcher page's access from its station link alone: the participant role when ``ticket`` is a valid
    session ticket of this workbench's codes (so a reload, or the station link opened again, needs no code), else
    None (no roles, no or an invalid ticket: the page asks for a code as before). A role already granted in this
    browser session by a typed code (a trainer's) is kept. Raises nothing: an unreadable codes file is left to
    :func:`gate`, which stops the page with the error.

    Why this opens no more than the code did: the ticket is an HMAC credential for one session that only the
    trainer's page shows, and on its own it already lets a browser reach that session's calls at the ingest
    (``/t/{ticket}``); :func:`station_session` keeps the page on the ticket's session whatever ``?session=`` says,
    and the trainer's and researcher's pages never look at a ticket."""
    path = codes_path(environ)
    if path is None or not ticket:
        return None
    try:
        codes = access_codes.load(path)
    except AccessError:
        return None
    if codes.ticket_session(ticket) is None:
        return None
    granted = st.session_state.get(K_ROLE.format(page="dispatcher"))
    return Access(Role(granted) if granted else Role.PARTICIPANT, codes, path)


def dispatcher_config(cfg: ConsoleConfig, environ: Mapping[str, str]) -> tuple[ConsoleConfig, str]:
    """The dispatcher page's gate and station binding: returns the configuration to draw with (pinned to the
    station's session, the browser's ingest URL carrying its ticket) and the code the page's server sends to the
    ingest (the console's; empty without roles). Stops the page while no code or no station link is given."""
    query = {k: str(st.query_params[k]) for k in ("ticket", "session") if k in st.query_params}
    acc = station_ticket_access(environ, query.get("ticket", "")) or gate("dispatcher", environ)
    if acc.codes is None:
        return cfg, ""
    sid, ticket = station_session(acc, query, cfg.session_id)
    if sid is None and acc.role is Role.TRAINER and query.get("session"):
        sid = query["session"]
        ticket = acc.codes.session_ticket(sid)
    if sid is None or ticket is None:
        if query.get("ticket"):
            log.warning("dispatcher page: a station link with an invalid ticket was refused")
            access_codes.log_refusal(acc.codes_path, page="dispatcher", wanted=Role.PARTICIPANT,  # type: ignore[arg-type]
                                     reason="invalid station ticket")
            st.error("This station link is not valid (it may be from another workbench run). Ask the trainer for "
                     "the current station link.")
        else:
            st.info("This station has no session yet. Open the station link the trainer gives you "
                    "(the trainer's page shows one per session).")
        st.stop()
    return replace(cfg, session_id=sid, public_ingest_url=f"{cfg.public_ingest_url}/t/{ticket}"), \
        acc.server_token(Role.CONSOLE)
