"""``GET /api/sessions/{sid}/head``: how far a session's event log has come, for the console page's change watcher
(issue 6: the page redraws its live parts when the log changed instead of polling the whole log from Streamlit).

Answer (JSON): ``{"seq": N, "changed_seq": M}``: ``seq`` the last event's ``seq`` (0 for an empty log);
``changed_seq`` the last ``seq`` whose type starts with none of the prefixes in ``?skip=`` (comma-separated, e.g.
``drt.,console.focus``: events the page logs itself and never draws), 0 when there is none. The answer carries no
event content, so a participant's station ticket may read it for its own session (roles class ``own_session``).

Errors: 404 for an unknown session, 400 for a ``skip`` of more than :data:`MAX_SKIP` prefixes or a prefix longer
than :data:`MAX_PREFIX` characters.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workbench.ingest.app import ApiError, _json  # the app's own JSON and error conventions (404 for NotFound)

MAX_SKIP = 16
"""Most prefixes one request may skip."""
MAX_PREFIX = 64
"""Longest prefix accepted (event types are short dotted names)."""


def skip_prefixes(raw: str) -> tuple[str, ...]:
    """The ``?skip=`` value as a tuple of non-empty prefixes; raises ``ValueError`` saying what is wrong."""
    prefixes = tuple(p.strip() for p in raw.split(",") if p.strip())
    if len(prefixes) > MAX_SKIP:
        raise ValueError(f'"skip" takes at most {MAX_SKIP} type prefixes, got {len(prefixes)}')
    if any(len(p) > MAX_PREFIX for p in prefixes):
        raise ValueError(f'each "skip" prefix is at most {MAX_PREFIX} characters')
    return prefixes


def head_of(events: list[Any], skip: tuple[str, ...]) -> dict[str, int]:
    """``{"seq", "changed_seq"}`` of ``events`` (in seq order) with the types starting with a ``skip`` prefix left
    out of ``changed_seq``."""
    seq = events[-1].seq if events else 0
    changed = next((e.seq for e in reversed(events) if not e.type.startswith(skip)), 0) if skip else seq
    return {"seq": seq, "changed_seq": changed}


def install(app: web.Application, ingest: Any) -> None:
    """Add the route to ``app``; ``ingest`` is the app's :class:`~workbench.ingest.app.Ingest` (its ``sessions``)."""

    async def session_head(request: web.Request) -> web.Response:
        try:
            skip = skip_prefixes(request.query.get("skip", ""))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return _json(head_of(ingest.sessions.events(request.match_info["sid"]), skip))

    app.router.add_get("/api/sessions/{sid}/head", session_head)
