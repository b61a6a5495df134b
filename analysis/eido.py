"""Export a recorded session's incidents as NENA EIDO JSON (NENA-STA-021, Emergency Incident Data Object).

``export_eido(session_dir)`` returns one EIDO document (a JSON-ready dict) per report (call), each with its own
incident tracking identifier, as a control room's system creates them when calls come in. Reports the dispatcher
linked (``link.set`` / ``link.removed``, issue 11; replayed by ``workbench.domain.links``) carry one
``linkComponent`` entry per linked report as the log left them: the linked report's incident tracking identifier
and its role relative to this report in EIDO link semantics (``parent``, ``child``, ``related``; an unlinked pair
has no entry). Link proposals the dispatcher never accepted are not links and are not exported.

Document shape (keys the issue fixes are marked *; the rest follow our reading of NENA-STA-021 and were not
validated against the official JSON schema, which is not available offline here)::

    {
      "$id": "urn:workbench112:eido:<session>:<call>",
      "EIDOVersion"*: "1.0",
      "lastUpdateTimeStamp": "<UTC ISO 8601 of the call's last event>",
      "agentReference"*: "<station>@<agency>",               the dispatcher who handled the call, else the ingest
      "issuingElementIdentification"*: "ingest.<agency>",
      "reasonForIssueRegistryText"*: "Exercise",              every record here is simulated (CAP status exercise)
      "incidentTrackingIdentifier"*: "urn:emergency:uid:incidentid:<session>-<call>:<agency>",
      "incidentComponent"*: {common, "incidentTrackingIdentifier", "incidentTypeCommonRegistryText": [label],
                             "incidentTypeWorkbenchKey", "incidentStatusCommonRegistryText": "Open"|"Closed",
                             "incidentPriorityNumber": 1|2|3|null, "incidentUrgencyText": "spoed"|"nu"|"later"|""},
      "callComponent"*: [{common, "callTrackingIdentifier": "urn:emergency:uid:callid:<call>:<agency>",
                          "callStartTimeStamp", "callAnswerTimeStamp", "callEndTimeStamp", "callerLabelText",
                          "callMediaUrl"*: [{"$id", "url", "mediaKindText": "photo"|"snapshot"|"recording",
                                            "contentType", "sha256", "sizeBytes"}]}],
      "locationInformationComponent"*: [{common, "civicAddressText", "latitude", "longitude",
                                         "uncertaintyRadiusMetres", "locationSourceText"}],
      "notesComponent"*: [{common, "noteDateTimeStamp", "noteText"}],
      "linkComponent"*: [{common, "linkedIncidentTrackingIdentifier", "linkedCallTrackingIdentifier",
                          "linkTypeText": "parent"|"child"|"related", "linkOriginText": "proposal"|"manual"}]
    }

``common`` is the four keys every component carries: ``$id``, ``lastUpdateTimeStamp``, ``owningAgencyIdentifier``,
``updatedByAgentIdentifier``. Priority follows DESIGN.md: spoed = 1, nu = 2, later = 3. Media URLs are
``<media_base_url>/<session>/<path in the session folder>`` when a base URL is given, else ``file://`` URIs of the
recorded files; SHA-256 and size come from the session's ``manifest.json``. The first note of every incident says
it is an exercise. Timestamps are the events' ``t_wall`` (UTC, ISO 8601 with offset).

Errors: :class:`EidoExportError` (an ``AnalysisError``) when ``session_dir`` is not a session folder.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any

from analysis.load import AnalysisError, is_session_folder, load_session
from workbench.domain import events as ev
from workbench.domain.links import LinkState
from workbench.domain.session_state import CallState
from workbench.domain.taxonomy import INCIDENT_TYPES, Urgency
from workbench.maps import report_locations

EIDO_VERSION = "1.0"
"""Value of ``EIDOVersion`` (NENA-STA-021)."""

DEFAULT_AGENCY = "workbench112.invalid"
"""Owning agency identifier of exported records: a reserved ``.invalid`` domain, so no export is ever mistaken
for a real agency's data."""

EXERCISE_NOTE = "EXERCISE - simulated report recorded by the 112 multimedia-intake research workbench; not a real incident."
"""Text of the first note of every exported incident."""


class EidoExportError(AnalysisError):
    """The folder given is not a session folder (the message names it and what was expected)."""


def export_eido(session_dir: Path, *, agency: str = DEFAULT_AGENCY, media_base_url: str = "") -> list[dict[str, Any]]:
    """One EIDO document per incident (per call, in arrival order) of the session in ``session_dir``.

    ``agency`` is the owning agency identifier (a domain name); ``media_base_url`` (for example
    ``http://lab:8080/recordings``) makes media URLs web addresses instead of ``file://`` URIs. Raises
    :class:`EidoExportError` when ``session_dir`` holds no session; damaged logs are exported as far as they read.
    """
    if not is_session_folder(session_dir):
        raise EidoExportError(f"{session_dir}: not a session folder; expected a folder with session.json and events.jsonl")
    session = load_session(session_dir)
    manifest = _manifest(session_dir)
    locations = {loc.call_id: loc for loc in report_locations(session.events, session.scenario, session.state)}
    by_call: dict[str, list[ev.Event]] = {}
    for event in session.events:
        if event.call_id:
            by_call.setdefault(event.call_id, []).append(event)
    links = LinkState.from_events(session.events)
    documents = []
    for call in session.state.calls.values():
        events = by_call.get(call.call_id, [])
        document = _document(session.session_id, session_dir, call, events, locations.get(call.call_id), manifest,
                             agency=agency, media_base_url=media_base_url,
                             truth_location=_truth_location(session, call))
        document["linkComponent"] = _links(session.session_id, call.call_id, links, session.events, agency)
        documents.append(document)
    return documents


def _links(session_id: str, call_id: str, links: LinkState, events: list[ev.Event], agency: str) -> list[dict[str, Any]]:
    """One ``linkComponent`` entry per report currently linked to ``call_id``, in the order the links were set;
    stamped with the ``link.set`` event's time and the station that answered the report setting it."""
    seq_wall = {e.seq: e.t_wall for e in events}
    stations = {e.call_id: e.data.station for e in events if isinstance(e.data, ev.CallAnswered) and e.call_id}
    out = []
    for n, (other, relation) in enumerate(links.links_of(call_id), start=1):
        link = links.links[frozenset((call_id, other))]
        station = stations.get(link.call_id, "")
        out.append({
            "$id": f"urn:workbench112:eido:{session_id}-{call_id}:link-{n}",
            "lastUpdateTimeStamp": seq_wall.get(link.seq, ""),
            "owningAgencyIdentifier": agency,
            "updatedByAgentIdentifier": f"{station}@{agency}" if station else f"console@{agency}",
            "linkedIncidentTrackingIdentifier": f"urn:emergency:uid:incidentid:{session_id}-{other}:{agency}",
            "linkedCallTrackingIdentifier": f"urn:emergency:uid:callid:{session_id}-{other}:{agency}",
            "linkTypeText": relation,
            "linkOriginText": link.origin,
        })
    return out


def _manifest(session_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((session_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    files = data.get("files", {}) if isinstance(data, dict) else {}
    return files if isinstance(files, dict) else {}


def _truth_location(session: Any, call: CallState) -> str:
    if session.scenario is None or not call.scenario_call_id:
        return ""
    try:
        return session.scenario.call(call.scenario_call_id).truth.location
    except KeyError:
        return ""


def _document(
    session_id: str,
    session_dir: Path,
    call: CallState,
    events: list[ev.Event],
    location: Any,
    manifest: dict[str, dict[str, Any]],
    *,
    agency: str,
    media_base_url: str,
    truth_location: str,
) -> dict[str, Any]:
    key = f"{session_id}-{call.call_id}"
    last_update = events[-1].t_wall if events else ""
    station = next((e.data.station for e in events if isinstance(e.data, ev.CallAnswered)), "")
    agent = f"{station}@{agency}" if station else f"ingest@{agency}"
    incident_id = f"urn:emergency:uid:incidentid:{key}:{agency}"

    def common(kind: str, index: int | None = None, updated: str | None = None) -> dict[str, Any]:
        suffix = "" if index is None else f"-{index}"
        return {
            "$id": f"urn:workbench112:eido:{key}:{kind}{suffix}",
            "lastUpdateTimeStamp": updated if updated is not None else last_update,
            "owningAgencyIdentifier": agency,
            "updatedByAgentIdentifier": agent,
        }

    closed = call.closed
    incident_type = (closed.incident_type if closed else "") or call.incident_type
    urgency = (closed.urgency if closed else "") or call.urgency
    incident = {
        **common("incident"),
        "incidentTrackingIdentifier": incident_id,
        "incidentTypeCommonRegistryText": [INCIDENT_TYPES[incident_type]] if incident_type else [],
        "incidentTypeWorkbenchKey": incident_type,
        "incidentStatusCommonRegistryText": "Closed" if closed is not None else "Open",
        "incidentPriorityNumber": Urgency(urgency).priority if urgency else None,
        "incidentUrgencyText": urgency,
    }
    created_at = events[0].t_wall if events else ""
    answered = next((e.t_wall for e in events if isinstance(e.data, ev.CallAnswered)), None)
    ended = next((e.t_wall for e in events if isinstance(e.data, ev.CallEnded)), None)
    call_component = {
        **common("call", 1),
        "callTrackingIdentifier": f"urn:emergency:uid:callid:{key}:{agency}",
        "callStartTimeStamp": created_at,
        "callAnswerTimeStamp": answered,
        "callEndTimeStamp": ended,
        "callerLabelText": call.caller_label,
        "callMediaUrl": _media(session_id, session_dir, call.call_id, events, manifest, key, media_base_url),
    }
    location_components = []
    address = (closed.location if closed else "") or call.location or truth_location
    if location is not None or address:
        location_components.append({
            **common("location", 1),
            "civicAddressText": address,
            "latitude": location.lat if location else None,
            "longitude": location.lon if location else None,
            "uncertaintyRadiusMetres": (location.accuracy_m or None) if location else None,
            "locationSourceText": location.source if location else "dispatcher",
        })
    closed_at = next((e.t_wall for e in events if isinstance(e.data, ev.CallClosed)), created_at)
    notes = [{**common("note", 1, created_at), "noteDateTimeStamp": created_at, "noteText": EXERCISE_NOTE}]
    if closed is not None and closed.notes.strip():
        notes.append({**common("note", 2, closed_at), "noteDateTimeStamp": closed_at, "noteText": closed.notes})
    return {
        "$id": f"urn:workbench112:eido:{key}",
        "EIDOVersion": EIDO_VERSION,
        "lastUpdateTimeStamp": last_update,
        "agentReference": agent,
        "issuingElementIdentification": f"ingest.{agency}",
        "reasonForIssueRegistryText": "Exercise",
        "incidentTrackingIdentifier": incident_id,
        "incidentComponent": incident,
        "callComponent": [call_component],
        "locationInformationComponent": location_components,
        "notesComponent": notes,
        "linkComponent": [],
    }


def _media(
    session_id: str,
    session_dir: Path,
    call_id: str,
    events: list[ev.Event],
    manifest: dict[str, dict[str, Any]],
    key: str,
    media_base_url: str,
) -> list[dict[str, Any]]:
    """Every recorded file of the call: photo originals, snapshots, and any other file under ``media/<call>/``
    (recordings), in that order, each with the manifest's SHA-256 and size (None when the manifest lacks it)."""
    kinds: dict[str, str] = {}
    display_copies: set[str] = set()
    for event in events:
        if isinstance(event.data, ev.MediaPhotoReceived):
            kinds[event.data.file_original] = "photo"
            display_copies.add(event.data.file_display)
        elif isinstance(event.data, ev.MediaSnapshot):
            kinds[event.data.file] = "snapshot"
    prefix = f"media/{call_id}/"
    for relpath in sorted(manifest):
        if relpath.startswith(prefix) and relpath not in kinds and relpath not in display_copies:
            kinds[relpath] = "recording"
    order = {"photo": 0, "snapshot": 1, "recording": 2}
    result = []
    for n, (relpath, kind) in enumerate(sorted(kinds.items(), key=lambda kv: order[kv[1]]), start=1):
        entry = manifest.get(relpath, {})
        url = (f"{media_base_url.rstrip('/')}/{session_id}/{relpath}" if media_base_url
               else (session_dir / relpath).resolve().as_uri())
        result.append({
            "$id": f"urn:workbench112:eido:{key}:media-{n}",
            "url": url,
            "mediaKindText": kind,
            "contentType": mimetypes.guess_type(relpath)[0] or "application/octet-stream",
            "sha256": entry.get("sha256"),
            "sizeBytes": entry.get("size"),
        })
    return result
