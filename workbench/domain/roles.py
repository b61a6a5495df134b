"""Who may do what: the lab's roles, their access codes and the session tickets of participants' browsers.

A lab needs no user accounts: each role has one access code, configured at start (``--access-codes FILE``,
:mod:`workbench.store.access_codes`). The roles:

- ``participant`` (the dispatcher): types the participant code on the dispatcher page. Their browser then talks to
  the ingest with a *session ticket* (:meth:`AccessCodes.session_ticket`), valid for the one session the trainer
  assigned to that station and for nothing else: never another session, the event log, ground truth, control,
  recordings or analysis.
- ``trainer``: every page and endpoint (start, watch and steer sessions, the scenario library with ground truth).
- ``researcher``: the researcher's page and read-only access to every session and the analysis.
- ``console``: not a person. The dispatcher console's *server* (trusted code started with the codes) reads a
  session's log to draw the page and posts the dispatcher's events; it never controls sessions.

Pure: no I/O. A ticket is ``{session_id}~{mac}`` with ``mac`` the first 32 hex digits of HMAC-SHA256(secret,
``"session:" + session_id``) (RFC 2104); session ids never contain ``~`` (``store.recordings.check_id``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    """A role at the lab; see the module docstring for what each may do."""

    PARTICIPANT = "participant"
    TRAINER = "trainer"
    RESEARCHER = "researcher"
    CONSOLE = "console"


HUMAN_ROLES = (Role.PARTICIPANT, Role.TRAINER, Role.RESEARCHER)
"""The roles a person types a code for (the console's code is only read by the console's server)."""

MIN_CODE_LENGTH = 6
"""Shortest access code accepted (a lab code is typed by hand, but ``1234`` is guessed in a minute)."""

TICKET_SEPARATOR = "~"


class AccessError(ValueError):
    """Access codes that cannot be used (missing role, too short, two roles sharing a code); the message says
    which and what to do."""


@dataclass(frozen=True)
class Credential:
    """What a request or a typed code proves: the ``role`` and, for a participant's ticket, the one
    ``session_id`` it is valid for (empty for every other role)."""

    role: Role
    session_id: str = ""


@dataclass(frozen=True)
class AccessCodes:
    """One access code per role plus the secret that signs participants' session tickets.

    Raises :class:`AccessError` (in ``__post_init__``) when a code is shorter than :data:`MIN_CODE_LENGTH`, two
    roles share a code, or the secret is shorter than 16 characters.
    """

    participant: str
    trainer: str
    researcher: str
    console: str
    secret: str

    def __post_init__(self) -> None:
        codes = {role: self.code(role) for role in Role}
        for role, code in codes.items():
            if not isinstance(code, str) or len(code.strip()) < MIN_CODE_LENGTH:
                raise AccessError(
                    f"the {role.value} access code must be a string of at least {MIN_CODE_LENGTH} characters; "
                    "edit the access-codes file or delete it to have new codes generated"
                )
        if len(set(codes.values())) != len(codes):
            raise AccessError("two roles share one access code; give every role its own code")
        if not isinstance(self.secret, str) or len(self.secret) < 16:
            raise AccessError("the ticket secret must be at least 16 characters; delete the file to regenerate it")

    @classmethod
    def generate(cls) -> "AccessCodes":
        """Fresh random codes: 8 characters for the humans' codes (typed by hand), 32 for the console's, and a
        43-character ticket secret (``secrets.token_urlsafe``)."""

        def short() -> str:
            # No 0/O, 1/l/I: codes are read aloud and typed.
            alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
            return "".join(secrets.choice(alphabet) for _ in range(8))

        return cls(participant=short(), trainer=short(), researcher=short(),
                   console=secrets.token_urlsafe(24), secret=secrets.token_urlsafe(32))

    def code(self, role: Role) -> str:
        """The access code of ``role``."""
        return str(getattr(self, role.value))

    def role_of(self, code: str) -> Role | None:
        """The role whose code is ``code`` (compared in constant time), or None."""
        found = None
        for role in Role:
            if hmac.compare_digest(code.strip().encode("utf-8"), self.code(role).encode("utf-8")):
                found = role
        return found

    def session_ticket(self, session_id: str) -> str:
        """The participant's ticket for ``session_id`` (``{session_id}~{32 hex}``)."""
        mac = hmac.new(self.secret.encode("utf-8"), f"session:{session_id}".encode("utf-8"), hashlib.sha256)
        return f"{session_id}{TICKET_SEPARATOR}{mac.hexdigest()[:32]}"

    def ticket_session(self, ticket: str) -> str | None:
        """The session a valid ticket is for, or None for anything else (forged, other secret, malformed)."""
        session_id, sep, _mac = ticket.rpartition(TICKET_SEPARATOR)
        if not sep or not session_id:
            return None
        return session_id if hmac.compare_digest(ticket, self.session_ticket(session_id)) else None

    def credential(self, token: str) -> Credential | None:
        """What ``token`` (a role's code or a session ticket) proves, or None when it proves nothing."""
        if not token:
            return None
        session_id = self.ticket_session(token)
        if session_id is not None:
            return Credential(Role.PARTICIPANT, session_id)
        role = self.role_of(token)
        # A bare participant code opens the dispatcher page only; at the ingest a participant holds a ticket.
        if role is None or role is Role.PARTICIPANT:
            return None
        return Credential(role)
