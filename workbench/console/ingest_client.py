"""A small synchronous client of the ingest's JSON API (stdlib ``urllib`` only), as the console uses it.

The console never writes files: every dispatcher action is an event posted to the ingest, the only writer of a
session's log. Errors: :class:`IngestError` (HTTP 4xx/5xx with the ingest's ``{"error": ...}`` message, or the
ingest unreachable).
"""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from workbench.domain import events as ev


class IngestError(Exception):
    """A request to the ingest failed. ``status`` is the HTTP status (0 when the ingest could not be reached)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class IngestClient:
    """Synchronous JSON client of the ingest at ``base_url`` (``http://host:port``, server-side address).

    ``access``: the role's access code sent as ``X-Workbench-Access`` (``workbench.ingest.roles``; the console's
    server sends the console's code, the trainer page the trainer's); empty when the ingest runs without roles.
    """

    def __init__(self, base_url: str, *, timeout_s: float = 5.0, access: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.access = access

    # --- plumbing -------------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if self.access:
            req.add_header("X-Workbench-Access", self.access)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw.decode("utf-8"))["error"]
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                message = raw.decode("utf-8", "replace")[:200] or exc.reason
            raise IngestError(f"{method} {path}: {exc.code} {message}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IngestError(f"{method} {path}: ingest at {self.base_url} unreachable ({reason})") from None
        try:
            return json.loads(raw.decode("utf-8")) if raw else None
        except ValueError as exc:
            raise IngestError(f"{method} {path}: response is not JSON ({exc})") from None

    # --- API ------------------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return self._request("GET", "/healthz") or {}

    def list_sessions(self) -> list[dict[str, Any]]:
        """``GET /api/sessions``: ``[{session_id, participant, scenario_id, last_seq, ended}, ...]``."""
        return list((self._request("GET", "/api/sessions") or {}).get("sessions", []))

    def create_session(
        self,
        participant: str,
        *,
        scenario_toml: str | None = None,
        session_id: str | None = None,
        seed: int | None = None,
    ) -> str:
        """``POST /api/sessions``; returns the new session's id."""
        body: dict[str, Any] = {"participant": participant}
        for name, value in (("scenario_toml", scenario_toml), ("session_id", session_id), ("seed", seed)):
            if value is not None:
                body[name] = value
        return str(self._request("POST", "/api/sessions", body)["session_id"])

    def events(self, session_id: str, after: int = 0) -> list[ev.Event]:
        """``GET /api/sessions/{sid}/events?after=N``: the validated events with ``seq > after``, in order."""
        reply = self._request("GET", f"/api/sessions/{quote(session_id, safe='')}/events?after={int(after)}")
        return [ev.event_from_dict(obj) for obj in (reply or {}).get("events", [])]

    def post_event(self, session_id: str, call_id: str | None, payload: ev.Payload, source: str = "console") -> ev.Event:
        """``POST /api/sessions/{sid}/events``; validates locally first, returns the event as the ingest logged it."""
        ev.check_envelope(type(payload), source, call_id)
        payload.check()
        body = {"source": source, "type": payload.TYPE, "call_id": call_id, "data": dataclasses.asdict(payload)}
        reply = self._request("POST", f"/api/sessions/{quote(session_id, safe='')}/events", body)
        return ev.event_from_dict(reply["event"])

    def control(self, session_id: str, action: str | dict[str, Any]) -> dict[str, Any]:
        """``POST /api/sessions/{sid}/control`` with ``action`` (``start``, ``abort``, ...) or a whole body
        ``{"action": ..., ...}`` (an inject with its call); returns the event it wrote. Raises :class:`IngestError`
        (409 once the session has ended; 403 for a participant when roles are on)."""
        body = {"action": action} if isinstance(action, str) else dict(action)
        return dict(self._request("POST", f"/api/sessions/{quote(session_id, safe='')}/control", body) or {})

    def create_call(self, session_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """``POST /api/calls``: ``{call_id, session_id, caller_url}``."""
        body = dict(fields)
        if session_id is not None:
            body["session_id"] = session_id
        return dict(self._request("POST", "/api/calls", body))

    def session_map_svg(self, session_id: str, *, width: int = 320, height: int = 240) -> str:
        """``GET /api/sessions/{sid}/map.svg?open=1``: the local map of the session's open reports (SVG text)."""
        return self._svg(f"/api/sessions/{quote(session_id, safe='')}/map.svg?open=1&width={int(width)}&height={int(height)}")

    def call_qr_svg(self, call_id: str) -> str:
        """``GET /api/calls/{call_id}/qr.svg``: the caller link as a QR code (SVG text); IngestError 410 once ended."""
        return self._svg(f"/api/calls/{quote(call_id, safe='')}/qr.svg")

    def _svg(self, path: str) -> str:
        headers = {"Accept": "image/svg+xml"}
        if self.access:
            headers["X-Workbench-Access"] = self.access
        req = urllib.request.Request(self.base_url + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            raise IngestError(f"GET {path}: {exc.code}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise IngestError(f"GET {path}: ingest at {self.base_url} unreachable ({exc})") from None

    def request_snapshot(self, call_id: str) -> dict[str, Any]:
        """``POST /api/calls/{call_id}/snapshot``: a still of the newest frame now; returns the ``media.snapshot``
        payload as a dict (file, sha256, width, height, sharpness, brightness, motion, ...). IngestError 404 before
        the first video frame, 410 once the call has ended."""
        return dict((self._request("POST", f"/api/calls/{quote(call_id, safe='')}/snapshot", {}) or {})["snapshot"])

    def prompt_caller(self, call_id: str, prompt: str, message: str = "") -> int:
        """``POST /api/calls/{call_id}/prompts``: ask the caller's page for ``photo``, ``switch_camera`` or
        ``end_video`` (the ingest logs ``dispatcher.prompt``); returns the prompt's id. IngestError 400 for an
        unknown prompt, 410 once the call has ended, 429 when the call has too many prompts."""
        body = {"prompt": prompt, "message": message}
        return int(self._request("POST", f"/api/calls/{quote(call_id, safe='')}/prompts", body)["prompt_id"])

    def call_status(self, call_id: str) -> dict[str, Any]:
        """``GET /api/calls/{call_id}``: ``{state, connected, video_codec, width, height, frames_received, ...}``."""
        return dict(self._request("GET", f"/api/calls/{quote(call_id, safe='')}") or {})

    # --- links between reports and triage advice (issue 11; workbench/ingest/links.py) -----------------------------

    def links(self, call_id: str) -> dict[str, Any]:
        """``GET /api/calls/{call_id}/links``: ``{proposals, links, advice, advice_shown}``."""
        return dict(self._request("GET", f"/api/calls/{quote(call_id, safe='')}/links") or {})

    def decide_link(self, call_id: str, proposal_id: str, decision: str, relation: str = "") -> None:
        """``POST /api/calls/{call_id}/links/decisions``: accept (with the other report's ``relation``) or reject."""
        body = {"proposal_id": proposal_id, "decision": decision, "relation": relation}
        self._request("POST", f"/api/calls/{quote(call_id, safe='')}/links/decisions", body)

    def set_link(self, call_id: str, other_call_id: str, relation: str) -> None:
        """``POST /api/calls/{call_id}/links``: link by hand (``parent``, ``child``, ``related``) or ``unlink``."""
        body = {"other_call_id": other_call_id, "relation": relation}
        self._request("POST", f"/api/calls/{quote(call_id, safe='')}/links", body)

    def clock_ns(self) -> int:
        """``GET /api/clock``: the ingest's monotonic clock now, ns (the clock of every event's ``t_mono_ns``)."""
        return int((self._request("GET", "/api/clock") or {})["t_mono_ns"])

    def frame_jpeg(self, call_id: str) -> bytes | None:
        """``GET /api/calls/{call_id}/frame.jpg``: the newest live video frame as JPEG; None before the first frame
        (404). Other failures raise :class:`IngestError`."""
        headers = {"Accept": "image/jpeg"}
        if self.access:
            headers["X-Workbench-Access"] = self.access
        path = f"/api/calls/{quote(call_id, safe='')}/frame.jpg"
        req = urllib.request.Request(self.base_url + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise IngestError(f"GET {path}: {exc.code}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise IngestError(f"GET {path}: ingest at {self.base_url} unreachable ({exc})") from None
