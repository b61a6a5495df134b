"""The trainer's page (``workbench trainer``; also started by ``workbench serve``/``demo`` on its own port).

Thin over :mod:`workbench.console.trainer_viewmodel` and :mod:`workbench.store.scenario_library`:

- **Stations**: start a session for a participant pseudonym with a scenario from the library (a ``workbench run
  --ingest`` runner that holds the first block until **Start**), the station link to open on the dispatcher's
  machine, and per live session what the dispatcher sees (current call, queue, entries against the ground truth),
  DRT performance, data-quality warnings, and the controls start / pause / resume / inject / abort (``POST
  /api/sessions/{sid}/control``, logged as ``session.control``). Several stations at once, redrawn every 2 s.
- **Scenario library**: every scenario in the library folder with its validation errors, a preview of each call's
  timeline, media and ground truth, and a form that makes a new scenario from uploaded video/photos.
- **Debrief**: every ended session in the recordings (:mod:`workbench.console.trainer_debrief`); an ended station's
  Debrief button opens it there.

Settings from the environment (:class:`~workbench.console.trainer_viewmodel.TrainerConfig`). Widget keys (tests):
``participant``, ``scenario``, ``seed``, ``start_session``; per session ``<action>-<sid>`` for ``start``,
``pause``, ``resume``, ``abort``, ``inject``, ``inject_call-<sid>``, ``adhoc_id-<sid>``, ``adhoc_label-<sid>``,
``adhoc_lines-<sid>``, ``inject_adhoc-<sid>``; library form ``new_*``.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import streamlit as st

from workbench.console import access
from workbench.console import trainer_debrief as tdb
from workbench.console import trainer_viewmodel as tvm
from workbench.console.ingest_client import IngestClient, IngestError
from workbench.console.runners import RunnerPool, runner_env
from workbench.domain import events as ev
from workbench.domain.roles import Role
from workbench.domain.scenario import Scenario
from workbench.domain.taxonomy import DISAGREEMENT_ASPECTS, INCIDENT_TYPES, INFORMATION_ITEMS
from workbench.store import scenario_library as lib
from workbench.store.scenarios import ScenarioError, parse_scenario

ss = st.session_state
K_EVENTS = "wb_trainer_events"
K_SCENARIOS = "wb_trainer_scenarios"
K_MESSAGE = "wb_trainer_message"
K_STARTED = "wb_trainer_started"
K_SEEN = "wb_trainer_seen"
K_LIBRARY_MESSAGE = "wb_trainer_library_message"


@st.cache_resource
def runner_pool(logs: str) -> RunnerPool:
    """One pool of runners per trainer-page server (survives reruns and reloads)."""
    return RunnerPool(Path(logs))


# --- data -------------------------------------------------------------------------------------------------------------


def events_of(client: IngestClient, sid: str) -> list[ev.Event]:
    """The session's whole log, fetched incrementally (only events after the last seq seen)."""
    cache: dict[str, list[ev.Event]] = ss.setdefault(K_EVENTS, {})
    events = cache.setdefault(sid, [])
    events.extend(client.events(sid, after=events[-1].seq if events else 0))
    return events


def scenario_of(cfg: tvm.TrainerConfig, sid: str) -> Scenario | None:
    """The session's scenario copy in the recordings (ground truth); None for ad-hoc sessions."""
    cache: dict[str, Scenario | None] = ss.setdefault(K_SCENARIOS, {})
    if cache.get(sid) is None:
        path = cfg.recordings / sid / "scenario.toml"
        try:
            cache[sid] = parse_scenario(path.read_bytes(), str(path), check_media=False)
        except (OSError, ScenarioError):
            return None
    return cache[sid]


# --- actions ----------------------------------------------------------------------------------------------------------


def on_start_session(cfg: tvm.TrainerConfig, entries: dict[str, lib.LibraryEntry], trainer_code: str) -> None:
    """Start a runner for the chosen participant and scenario; it creates the session and waits for Start."""
    try:
        participant = tvm.check_pseudonym(ss.get("participant", ""))
    except ValueError as exc:
        ss[K_MESSAGE] = ("error", str(exc))
        return
    entry = entries.get(ss.get("scenario") or "")
    if entry is None or entry.scenario is None:
        ss[K_MESSAGE] = ("error", "choose a valid scenario from the library")
        return
    sid = tvm.new_session_id(participant, datetime.now(timezone.utc))
    command = tvm.runner_command(sys.executable, entry.path, cfg, participant=participant, session_id=sid,
                                 seed=int(ss.get("seed") or 0))
    try:
        runner_pool(str(cfg.runner_logs)).start(sid, command, runner_env(dict(os.environ), trainer_code))
    except (RuntimeError, OSError) as exc:
        ss[K_MESSAGE] = ("error", f"the runner could not be started: {exc}")
        return
    ss.setdefault(K_STARTED, []).append(sid)
    ss[K_MESSAGE] = ("success", f"Session {sid} for {participant} with {entry.scenario.id!r} is being prepared; "
                                "open its station link on the dispatcher's machine, then press Start.")


def on_control(client: IngestClient, sid: str, action: str) -> None:
    """A control button: pause, resume, start, abort or inject (a scenario call or an ad-hoc call)."""
    try:
        if action == "inject":
            body = tvm.control_body("inject", scenario_call_id=ss.get(f"inject_call-{sid}") or "")
        elif action == "inject_adhoc":
            body = tvm.control_body("inject", scenario_call_id=ss.get(f"adhoc_id-{sid}", ""),
                                    caller_label=ss.get(f"adhoc_label-{sid}", ""),
                                    lines=ss.get(f"adhoc_lines-{sid}", ""))
        else:
            body = tvm.control_body(action)
        client.control(sid, body)
        ss[K_MESSAGE] = ("success", f"{sid}: {body['action']} sent")
        if action == "inject_adhoc":  # the form is empty again for the next ad-hoc call
            for name in ("adhoc_id", "adhoc_label", "adhoc_lines"):
                ss[f"{name}-{sid}"] = ""
    except (ValueError, IngestError) as exc:
        ss[K_MESSAGE] = ("error", f"{sid}: {exc}")


def on_add_scenario(cfg: tvm.TrainerConfig) -> None:
    """The library form: a new scenario from the uploaded media and the fields."""
    video = ss.get("new_video")
    photos = ss.get("new_photos") or []
    congruence = {a: ss[f"new_cong_{a}"] == "agree" for a in DISAGREEMENT_ASPECTS
                  if ss.get(f"new_cong_{a}") in ("agree", "disagree")}
    try:
        lat = float(ss["new_lat"]) if str(ss.get("new_lat") or "").strip() else None
        lon = float(ss["new_lon"]) if str(ss.get("new_lon") or "").strip() else None
    except ValueError:
        ss[K_LIBRARY_MESSAGE] = ("error", "The scenario was not added:\n\n- latitude and longitude are decimal "
                                          "degrees, e.g. 52.0119 and 4.3586")
        return
    new = lib.NewScenario(
        scenario_id=(ss.get("new_id") or "").strip(),
        title=(ss.get("new_title") or "").strip(),
        modality=ss.get("new_modality") or "video",
        caller_label=(ss.get("new_caller") or "").strip(),
        lines=tuple((ss.get("new_lines") or "").splitlines()),
        incident_type=ss.get("new_type") or "",
        urgency=ss.get("new_urgency") or "nu",
        location=(ss.get("new_location") or "").strip(),
        required_items=tuple(ss.get("new_items") or ()),
        congruence=congruence,
        description=(ss.get("new_description") or "").strip(),
        video=lib.Upload(video.name, video.getvalue()) if video is not None else None,
        photos=tuple(lib.Upload(p.name, p.getvalue()) for p in photos),
        voice=ss.get("new_voice") or "",
        lat=lat,
        lon=lon,
    )
    try:
        path = lib.add_scenario(cfg.library, new)
    except lib.LibraryError as exc:
        ss[K_LIBRARY_MESSAGE] = ("error", "The scenario was not added:\n\n"
                                 + "\n".join(f"- {x}" for x in str(exc).splitlines()))
        return
    ss[K_LIBRARY_MESSAGE] = ("success", f"Scenario {new.scenario_id!r} added: {path}")


# --- drawing ----------------------------------------------------------------------------------------------------------


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def render_station(client: IngestClient, cfg: tvm.TrainerConfig, acc: access.Access, sid: str, now_ns: int) -> None:
    events = events_of(client, sid)
    view = tvm.station_view(events, scenario_of(cfg, sid), now_ns)
    with st.container(border=True, key=f"station-{sid}"):
        st.markdown(f"**{view.participant}** · scenario `{view.scenario_id}` · session `{sid}` · "
                    f"**{view.status}**")
        if view.flow:
            st.caption(f"Participant flow: {view.flow}")
        ticket = acc.codes.session_ticket(sid) if acc.codes is not None else None
        st.caption("Station link (open it on the dispatcher's machine):")
        st.code(tvm.station_link(cfg.console_url, sid, ticket), language=None)
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Queue", view.queue_length)
        c2.metric(f"Block ({view.blocks_done}/{view.blocks_total} done)", view.block)
        c3.metric("Current call", view.current.label if view.current else "—")
        drt_value = "off" if view.drt is None else ("—" if not view.drt.stimuli else f"{view.drt.hit_rate:.0%}")
        c4.metric("DRT hit rate", drt_value, help=view.drt.text() if view.drt else "the DRT is not running")
        if view.drt is not None:
            st.caption(f"DRT: {view.drt.text()}")
        if view.current is not None:
            cur = view.current
            text, still = st.columns([3, 1])
            text.markdown(f"On the dispatcher's screen: **{cur.label}** ({cur.scenario_call_id or 'ad hoc'}), "
                          f"answered {cur.answered_s:.0f} s ago · video {cur.video} · {cur.photos} photo(s)")
            if cur.transcript:
                text.caption("Caller so far: " + " / ".join(cur.transcript))
            if cur.video != "—":
                # The newest frame (redrawn every 2 s): the trainer sees roughly what the dispatcher sees live.
                try:
                    frame = client.frame_jpeg(cur.call_id)
                except IngestError:
                    frame = None
                if frame:
                    still.image(frame, caption="live video (newest frame)", width="stretch")
        for warning in view.warnings:
            st.warning(warning)
        if view.entries:
            st.dataframe(
                [{"call": e.call, "status": e.status, "truth": e.truth,
                  "incident type": e.incident_type + _mark(e.incident_type_ok),
                  "urgency": e.urgency + _mark(e.urgency_ok), "items": e.items, "disagreement flag": e.flagged,
                  "RSME": e.rsme, "handling s": e.handling_s} for e in view.entries],
                hide_index=True, width="stretch")
        cols = st.columns(5)
        for col, action in zip(cols, ("start", "pause", "resume", "abort")):
            col.button(action.capitalize(), key=f"{action}-{sid}", disabled=action not in view.controls,
                       on_click=on_control, args=(client, sid, action),
                       type="primary" if action == "start" else "secondary")
        if "inject" in view.controls:
            with st.expander("Inject a call"):
                if view.injectable:
                    st.selectbox("Scenario call not played yet", view.injectable, key=f"inject_call-{sid}")
                    st.button("Inject now", key=f"inject-{sid}", on_click=on_control, args=(client, sid, "inject"))
                st.caption(tvm.adhoc_caption(bool(view.injectable)))
                st.text_input("Call id", key=f"adhoc_id-{sid}", placeholder="extra-1")
                st.text_input("Caller label", key=f"adhoc_label-{sid}", placeholder="06-0000 0000")
                st.text_area("Caller's lines (one per line, 5 s apart)", key=f"adhoc_lines-{sid}")
                st.button("Inject ad-hoc call", key=f"inject_adhoc-{sid}", on_click=on_control,
                          args=(client, sid, "inject_adhoc"))
        if view.status == "ended":
            tdb.debrief_button(sid)
        runner = runner_pool(str(cfg.runner_logs)).get(sid)
        if runner is not None and runner.exit_code not in (None, 0):
            st.error(f"The runner of this session exited with code {runner.exit_code}:\n\n```\n"
                     f"{runner.log_tail()}\n```")


@st.fragment(run_every=2.0)
def stations_fragment(client: IngestClient, cfg: tvm.TrainerConfig, acc: access.Access) -> None:
    try:
        sessions = client.list_sessions()
        now_ns = client.clock_ns()
    except IngestError as exc:
        st.error(f"The ingest is not reachable: {exc}")
        return
    show_ended = st.session_state.get("show_ended", False)
    # A station watched here stays after it ends, with its Debrief button.
    seen: set[str] = ss.setdefault(K_SEEN, set())
    live = [s for s in sessions if show_ended or not s["ended"] or s["session_id"] in seen]
    seen.update(s["session_id"] for s in live)
    live.sort(key=lambda s: s["session_id"])
    started = ss.get(K_STARTED, [])
    pending = [sid for sid in started if sid not in {s["session_id"] for s in sessions}]
    for sid in pending:
        runner = runner_pool(str(cfg.runner_logs)).get(sid)
        if runner is not None and runner.exit_code not in (None, 0):
            st.error(f"Session {sid}: the runner exited with code {runner.exit_code} before creating the session:"
                     f"\n\n```\n{runner.log_tail()}\n```")
        else:
            st.info(f"Session {sid}: the runner is preparing it …")
    if not live and not pending:
        st.info("No live sessions. Start one above.")
    for s in live:
        render_station(client, cfg, acc, s["session_id"], now_ns)


def render_stations(client: IngestClient, cfg: tvm.TrainerConfig, acc: access.Access,
                    entries: dict[str, lib.LibraryEntry]) -> None:
    with st.container(border=True):
        st.subheader("Start a session")
        valid = [rel for rel, e in entries.items() if e.ok]
        c1, c2, c3 = st.columns([2, 3, 1])
        c1.text_input("Participant pseudonym", key="participant", placeholder="P07")
        c2.selectbox("Scenario", valid, key="scenario", format_func=lambda rel: entries[rel].label)
        c3.number_input("Seed", min_value=0, value=0, step=1, key="seed")
        st.button("Start session", key="start_session", type="primary", disabled=not valid,
                  on_click=on_start_session, args=(cfg, entries, acc.server_token(Role.TRAINER)))
    st.toggle("Show ended sessions", key="show_ended")
    stations_fragment(client, cfg, acc)


def render_preview(entry: lib.LibraryEntry) -> None:
    assert entry.scenario is not None
    sc = entry.scenario
    st.caption(f"`{entry.relpath}` · {len(sc.blocks)} block(s), {len(sc.calls)} call(s) · design "
               f"{sc.design.counterbalance}")
    if sc.description:
        st.write(sc.description.strip())
    for call in lib.preview(sc):
        st.markdown(f"**{call.call_id}** · {call.caller_label} · block `{call.block_id}` ({call.modality}"
                    f"{', practice' if call.practice else ''}) · arrives at {call.arrival_s:g} s")
        left, right = st.columns(2)
        left.dataframe([{"s": t.at_s, "what": t.kind, "": t.text} for t in call.timeline], hide_index=True,
                       width="stretch")
        right.dataframe([{"ground truth": k, "": v} for k, v in call.truth.items()], hide_index=True,
                        width="stretch")
        if call.media:
            st.caption("Media: " + " · ".join(call.media))


def render_library(cfg: tvm.TrainerConfig, entries: dict[str, lib.LibraryEntry]) -> None:
    st.caption(f"Library folder `{cfg.library}` · {len(entries)} scenario(s)")
    for rel, entry in entries.items():
        mark = "✓" if entry.ok else "✗ invalid"
        with st.expander(f"{mark} · {entry.label}", expanded=not entry.ok):
            if entry.ok:
                render_preview(entry)
            else:
                st.error("This scenario cannot be played:\n\n" + "\n".join(f"- `{line}`" for line in entry.errors))
    st.subheader("Add a scenario from media")
    # The form's outcome is drawn here, beside the form, not above the tabs: a message above the tab bar moves it,
    # and the browser then showed the first tab with the trainer's refused form out of sight.
    message = ss.pop(K_LIBRARY_MESSAGE, None)
    if message is not None:
        with st.container(key="new_scenario_message"):
            (st.success if message[0] == "success" else st.error)(message[1])
    with st.form("new_scenario", clear_on_submit=False):
        c1, c2, c3 = st.columns(3)
        c1.text_input("Scenario id", key="new_id", placeholder="kitchen-fire")
        c2.text_input("Title", key="new_title")
        c3.selectbox("Block modality", ["video", "photo", "audio"], key="new_modality")
        st.text_area("Description (for trainers)", key="new_description", height=68)
        c1, c2 = st.columns(2)
        c1.file_uploader("Caller's video", type=[s.lstrip(".") for s in lib.VIDEO_SUFFIXES], key="new_video")
        c2.file_uploader("Caller's photos", type=[s.lstrip(".") for s in lib.PHOTO_SUFFIXES],
                         accept_multiple_files=True, key="new_photos")
        c1, c2 = st.columns(2)
        c1.text_input("Caller label (as the queue shows it)", key="new_caller", placeholder="06-1234 5678")
        c2.selectbox("Voice for the lines", ["", "nl", "en"], key="new_voice",
                     format_func=lambda v: v or "silent (actor speaks)")
        st.text_area("Caller's lines, one per line (optional '12: ' = seconds after the answer)", key="new_lines")
        st.markdown("**Ground truth**")
        c1, c2, c3 = st.columns(3)
        c1.selectbox("Incident type", list(INCIDENT_TYPES), key="new_type", format_func=INCIDENT_TYPES.get)
        c2.selectbox("Urgency", ["spoed", "nu", "later"], key="new_urgency")
        c3.text_input("Location", key="new_location")
        c1, c2, c3 = st.columns(3)
        c1.multiselect("Required information items", list(INFORMATION_ITEMS), key="new_items",
                       format_func=INFORMATION_ITEMS.get)
        c2.text_input("Latitude (optional)", key="new_lat")
        c3.text_input("Longitude (optional)", key="new_lon")
        st.caption("What the caller says and what the image shows, per aspect:")
        cols = st.columns(len(DISAGREEMENT_ASPECTS))
        for col, (aspect, label) in zip(cols, DISAGREEMENT_ASPECTS.items()):
            col.selectbox(label, ["—", "agree", "disagree"], key=f"new_cong_{aspect}")
        st.form_submit_button("Add scenario", on_click=on_add_scenario, args=(cfg,), type="primary")


def main() -> None:
    st.set_page_config(page_title="Trainer · 112 workbench", layout="wide")
    acc = access.gate("trainer", os.environ)
    cfg = tvm.TrainerConfig.from_env(os.environ)
    client = IngestClient(cfg.ingest_url, access=acc.server_token(Role.TRAINER))
    st.title("Trainer")
    message = ss.pop(K_MESSAGE, None)
    if message is not None:
        (st.success if message[0] == "success" else st.error)(message[1])
    try:
        entries = {e.relpath: e for e in lib.list_library(cfg.library)}
    except lib.LibraryError as exc:
        st.error(str(exc))
        entries = {}
    stations, library, debrief = st.tabs(tdb.TAB_LABELS, key=tdb.K_TAB, on_change="rerun")
    with stations:
        render_stations(client, cfg, acc, entries)
    with library:
        render_library(cfg, entries)
    with debrief:
        if debrief.open is not False:  # only the open tab's debrief is drawn (it embeds the call's recording)
            tdb.render_debrief_tab(cfg.recordings)


main()
