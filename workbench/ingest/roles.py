"""The role boundary of the ingest's HTTP API (issue 7): which credential may call which endpoint.

Active only when the ingest is started with access codes (``IngestSettings.access``); without them every endpoint
stays open, as before (a single-person demo). A request's credential is, in this order, the
``X-Workbench-Access`` header (server-side clients: the console's server, the runner, scripts), the ``/t/{access}``
path prefix (a participant's browser: every ``/api/...`` route is also served under ``/t/{ticket}/api/...``, so the
page's images, iframes, WebSockets and scripts carry the ticket without JavaScript changes) or ``?access=``.

Endpoint classes and who may use them (:data:`POLICY`):

======================  ==========================================================  =====================
class                   endpoints                                                   roles
======================  ==========================================================  =====================
public                  ``/healthz``, ``/lab-cert.crt``, ``/static/*``, caller      everyone (the caller
                        links ``/c/{token}/*``, CORS preflight                      link has its own
                                                                                    one-time binding)
clock                   ``GET /api/clock``                                          any credential
call                    ``/api/calls/{call_id}/...`` (status, photos, frames,       participant (own
                        viewer, live, snapshot, prompts, QR)                        session's calls),
                                                                                    console, trainer,
                                                                                    researcher (GET)
own_session             ``POST /api/sessions/{sid}/events`` (source ``console``     participant (own
                        only for a participant), ``GET .../map.svg``, ``.../head``  session), console,
                                                                                    trainer, researcher
                                                                                    (GET)
sessions_read           ``GET /api/sessions``, ``GET /api/sessions/{sid}/events``   console, trainer,
                        (the whole log: manipulations, other sessions)              researcher
create_call             ``POST /api/calls``                                         console, trainer
control                 ``POST /api/sessions``, ``POST /api/sessions/{sid}/control`` trainer
analysis                ``GET /api/map/heat.svg`` (every session)                   trainer, researcher
other                   any other ``/api`` route                                    console, trainer,
                                                                                    researcher (GET)
======================  ==========================================================  =====================

No credential, or one that proves nothing: 401. A valid credential without the right: 403. Both are JSON
``{"error": ...}`` saying what to do, and are logged (``workbench.ingest.roles``, warning) with the path, never
the token.
"""

from __future__ import annotations

import json
import logging
from typing import Awaitable, Callable

from aiohttp import web

from workbench.domain.roles import AccessCodes, Credential, Role

log = logging.getLogger(__name__)

HEADER = "X-Workbench-Access"
PREFIX = "/t/{access}"
"""Route prefix that carries a participant's session ticket in the path."""

PUBLIC, CLOCK, CALL, OWN_SESSION, SESSIONS_READ, CREATE_CALL, CONTROL, ANALYSIS, OTHER = (
    "public", "clock", "call", "own_session", "sessions_read", "create_call", "control", "analysis", "other")

_EXACT: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/lab-cert.crt"): PUBLIC,
    ("OPTIONS", "/api/sessions/{sid}/events"): PUBLIC,
    ("GET", "/api/clock"): CLOCK,
    ("GET", "/api/sessions"): SESSIONS_READ,
    ("POST", "/api/sessions"): CONTROL,
    ("GET", "/api/sessions/{sid}/events"): SESSIONS_READ,
    ("POST", "/api/sessions/{sid}/events"): OWN_SESSION,
    ("GET", "/api/sessions/{sid}/map.svg"): OWN_SESSION,
    ("GET", "/api/sessions/{sid}/head"): OWN_SESSION,  # the last seq only, no content (workbench/ingest/head.py)
    ("POST", "/api/sessions/{sid}/control"): CONTROL,
    ("POST", "/api/calls"): CREATE_CALL,
    ("GET", "/api/map/heat.svg"): ANALYSIS,
}

POLICY: dict[Role, frozenset[str]] = {
    Role.TRAINER: frozenset({PUBLIC, CLOCK, CALL, OWN_SESSION, SESSIONS_READ, CREATE_CALL, CONTROL, ANALYSIS, OTHER}),
    Role.CONSOLE: frozenset({PUBLIC, CLOCK, CALL, OWN_SESSION, SESSIONS_READ, CREATE_CALL, OTHER}),
    Role.RESEARCHER: frozenset({PUBLIC, CLOCK, CALL, OWN_SESSION, SESSIONS_READ, ANALYSIS, OTHER}),
    Role.PARTICIPANT: frozenset({PUBLIC, CLOCK, CALL, OWN_SESSION}),
}
"""Endpoint classes each role may reach (researchers with GET only; participants only their own session)."""


def endpoint_class(method: str, canonical: str) -> str:
    """The class of the route ``canonical`` (aiohttp's resource pattern, without the ``/t/{access}`` prefix)
    called with ``method``."""
    if canonical.startswith(PREFIX):
        canonical = canonical[len(PREFIX):]
    method = "GET" if method == "HEAD" else method
    if (method, canonical) in _EXACT:
        return _EXACT[(method, canonical)]
    if canonical.startswith(("/c/", "/static")) or not canonical.startswith("/api/"):
        return PUBLIC
    if canonical.startswith("/api/calls/{call_id}"):
        return CALL
    return OTHER


def credential_of(request: web.Request, codes: AccessCodes) -> Credential | None:
    """What the request's token proves (header, then path prefix, then ``?access=``), or None."""
    token = request.headers.get(HEADER) or request.match_info.get("access") or request.query.get("access", "")
    return codes.credential(token)


def _deny(status: int, message: str, request: web.Request, cls: str) -> web.Response:
    log.warning("access refused (%d, %s) %s %s: %s", status, cls, request.method, request.path, message)
    return web.json_response({"error": message}, status=status)


def guard(codes: AccessCodes, session_of_call: Callable[[str], str | None]) -> Callable:
    """An aiohttp middleware enforcing :data:`POLICY`. ``session_of_call(call_id)`` is the session of a call (None
    when unknown), so a participant's ticket reaches its own session's calls only."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        route = request.match_info.route
        canonical = route.resource.canonical if route.resource is not None else request.path
        cls = endpoint_class(request.method, canonical)
        if cls == PUBLIC:
            return await handler(request)
        cred = credential_of(request, codes)
        if cred is None:
            return _deny(401, "this endpoint needs an access code: send the trainer's or researcher's code in the "
                         f"{HEADER} header, or open the page through the station link the trainer gave you", request,
                         cls)
        if cls not in POLICY[cred.role]:
            return _deny(403, f"the {cred.role.value} role may not use {request.method} {canonical}", request, cls)
        if cred.role is Role.RESEARCHER and request.method not in ("GET", "HEAD"):
            return _deny(403, "the researcher role reads sessions; it cannot change them", request, cls)
        if cred.role is Role.PARTICIPANT:
            sid = request.match_info.get("sid")
            if sid is None and "call_id" in request.match_info:
                sid = session_of_call(request.match_info["call_id"])
            if cls != CLOCK and sid != cred.session_id:
                return _deny(403, "this station's ticket is valid for its own session only", request, cls)
            if request.method == "POST" and cls == OWN_SESSION:
                try:
                    source = json.loads(await request.read()).get("source")
                except (ValueError, AttributeError):
                    source = None  # the handler reports the malformed body
                if source is not None and source != "console":
                    return _deny(403, "a station may post only the console's own events", request, cls)
        return await handler(request)

    return middleware


def add_ticket_routes(router: web.UrlDispatcher) -> None:
    """Serve every ``/api/...`` route also under ``/t/{access}/api/...`` (the same handler), for browsers that carry
    a session ticket in the URL. Call once, after every route is added."""
    for route in list(router.routes()):
        resource = route.resource
        if resource is None or not resource.canonical.startswith("/api/") or route.method == "*":
            continue
        router.add_route(route.method, PREFIX + resource.canonical, route.handler)


def public_prefix(request: web.Request) -> str:
    """``/t/{ticket}`` when the request came through the ticket prefix, else empty: pages the ingest serves (the
    live viewer) build their own URLs with it so their sockets carry the same ticket."""
    access = request.match_info.get("access")
    return f"/t/{access}" if access else ""
