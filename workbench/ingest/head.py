"""``GET /api/sessions/{sid}/head?watch=P1,P2,...``: how far a session's event log has come, for the console page's
change watcher (issue 6: the page redraws a live part when the log has news for it, instead of polling the whole log
from Streamlit).

Answer (JSON): ``{"seq": N, "last": {"P1": M1, ...}}``: ``seq`` the last event's ``seq`` (0 for an empty log);
``last[P]`` the ``seq`` of the last event whose type starts with ``P`` (0 when there is none). Event types are
dotted names, so ``call.`` covers every call event and ``caller.utterance`` one type. The answer carries no event
content, so a participant's station ticket may read it for its own session (roles class ``own_session``).

Errors: 404 for an unknown session; 400 for more than :data:`MAX_PREFIXES` prefixes or one longer than
:data:`MAX_PREFIX` characters.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workbench.ingest.app import ApiError, _json  # the app's own JSON and error conventions (404 for NotFound)

MAX_PREFIXES = 32
"""Most type prefixes one request may watch."""
MAX_PREFIX = 64
"""Longest prefix accepted (event types are short dotted names)."""


def watch_prefixes(raw: str) -> tuple[str, ...]:
    """The ``?watch=`` value as a tuple of distinct non-empty prefixes; raises ``ValueError`` saying what is wrong."""
    prefixes = tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
    if len(prefixes) > MAX_PREFIXES:
        raise ValueError(f'"watch" takes at most {MAX_PREFIXES} type prefixes, got {len(prefixes)}')
    if any(len(p) > MAX_PREFIX for p in prefixes):
        raise ValueError(f'each "watch" prefix is at most {MAX_PREFIX} characters')
    return prefixes


def head_of(events: list[Any], watch: tuple[str, ...]) -> dict[str, Any]:
    """``{"seq", "last"}`` of ``events`` (in seq order; each with ``seq`` and ``type``) for the ``watch`` prefixes."""
    last = dict.fromkeys(watch, 0)
    missing = set(watch)
    for event in reversed(events):
        if not missing:
            break
        for prefix in [p for p in missing if event.type.startswith(p)]:
            last[prefix] = event.seq
            missing.discard(prefix)
    return {"seq": events[-1].seq if events else 0, "last": last}


def install(app: web.Application, ingest: Any) -> None:
    """Add the route to ``app``; ``ingest`` is the app's :class:`~workbench.ingest.app.Ingest` (its ``sessions``)."""

    async def session_head(request: web.Request) -> web.Response:
        try:
            watch = watch_prefixes(request.query.get("watch", ""))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return _json(head_of(ingest.sessions.events(request.match_info["sid"]), watch))

    app.router.add_get("/api/sessions/{sid}/head", session_head)
