"""The dispatcher console page (``streamlit run workbench/console/app.py``; settings from the environment, see
:class:`workbench.console.launch.ConsoleConfig`).

Thin by design: it fetches the session's new events from the ingest, folds them into a
:class:`~workbench.domain.session_state.SessionState` kept in ``st.session_state``, asks
:mod:`workbench.console.viewmodel` what to show, draws it, and posts every dispatcher action as an event.

Live parts are fragments (queue, transcript, photos) that redraw when the log has news for them
(:mod:`workbench.console.live_watch`) and on a slower ``run_every`` of their own; the live viewer's iframe lives
outside every polling fragment so it is never reloaded, and the intake form is its own (non-polling) fragment so a
widget change reruns only the form.

Widget keys (for tests and page scripts): ``answer_next``; per call (``viewmodel.widget_key``) ``incident_type-<cid>``,
``urgency-<cid>``, ``location-<cid>``, ``item_<item>-<cid>``, ``disagree_flag-<cid>``, ``disagree_aspect-<cid>``,
``notes-<cid>``, ``close_call-<cid>``, ``rsme-<cid>``, ``rsme_number-<cid>``, ``submit_rsme-<cid>``, ``units-<cid>``,
``disagree_confidence-<cid>``, ``hold-<cid>``, ``resume-<cid>``, ``photo_open_<pid>-<cid>``, ``photo_enlarge-<cid>``,
``photo_close-<cid>``, ``snapshot-<cid>``, ``prompt_<photo|switch_camera|end_video>-<cid>``, ``snapshots-<cid>``
(the gallery of requested stills); per block ``tlx_<subscale>-<block>``, ``submit_tlx-<block>``, ``tlxw_<i>-<block>``,
``submit_tlxw-<block>``; panels ``panel_<live_view|photos|transcript|form>-<cid>``; the transcript container is
``transcript``. Streamlit exposes each as the CSS class ``st-key-<key>``.

The Detection Response Task and the panel-focus log run in the browser (:mod:`workbench.console.browser`), post
their events to the ingest themselves and never wait for a rerun. The NASA-TLX follows a ``block.ended``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from workbench.console import access, browser, call_audio, gc_tuning, live_watch, participant_flow
from workbench.console import viewmodel as vm
from workbench.console.ingest_client import IngestClient, IngestError
from workbench.console.launch import ConsoleConfig
from workbench.console.links_panel import links_panel
from workbench.domain import events as ev
from workbench.domain.scenario import Scenario
from workbench.domain.instruments import TLX_LABELS, TLX_MAX, TLX_MIN, TLX_PAIRS, TLX_STEP, TLX_SUBSCALES
from workbench.domain.session_state import CallState, SessionState, apply
from workbench.domain.taxonomy import DISAGREEMENT_ASPECTS, INCIDENT_TYPES, INFORMATION_ITEMS, RSME_MAX, RSME_MIN
from workbench.store.scenarios import ScenarioError, parse_scenario

ss = st.session_state

# st.session_state keys of the page's own (non-widget) state.
K_SID, K_STATE, K_OFFSET, K_SCREEN = "wb_session_id", "wb_state", "wb_clock_offset", "wb_screen"
K_FORM_CALL, K_RSME_CALL, K_RSME_TOUCHED, K_ERROR = "wb_form_call", "wb_rsme_call", "wb_rsme_touched", "wb_error"
K_SCENARIO = "wb_scenario"
K_INVITE = "wb_invite"
K_TLX_BLOCK, K_TLX_TOUCHED, K_TLX_WEIGHTS = "wb_tlx_block", "wb_tlx_touched", "wb_tlx_weights"
K_MEDIA_MSG = "wb_media_msg"
K_SYNC_RUN, K_MAP, K_STATUS = "wb_sync_run", "wb_map", "wb_call_status"
K_SYNC_CARRY, K_SYNC_STALE = "wb_sync_carry", "wb_sync_stale"

# How long the map and the call's connection line may be reused in a rerun that a click caused (their own polls
# refresh them every 2 s): a click redraws what it changed, not every ingest read.
MAP_REUSE_S, STATUS_REUSE_S = 1.5, 1.5

# On the first draw of a call (the Answer), the pause, s, between the parts the dispatcher starts with (header, form,
# transcript) and the rest, so the browser mounts the form in a pass of its own (see render_active).
FIRST_PASS_PAUSE_S = 0.04

# Panels of the active call whose focus is logged (containers keyed ``panel_<name>-<call_id>``). A comment, not a
# docstring: Streamlit's "magic" would print a bare string literal of the page script on the page.
PANELS = ("live_view", "photos", "transcript", "form")

wk = vm.widget_key

QUEUE_ICONS = {"waiting": ":material/ring_volume:", "active": ":material/call:", "closed": ":material/rate_review:"}

# Less empty space above the page's content, so the whole intake form fits on a 1000-px-high screen.
PAGE_CSS = ("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; } "
            f"{live_watch.WATCH_CSS_SELECTOR} {{ display: none; }}</style>")


# --- data -----------------------------------------------------------------------------------------------------------


def session_id(cfg: ConsoleConfig, client: IngestClient) -> str | None:
    """The session shown: configured, else ``?session=``, else the one picked before (while live; also across a
    reload, through ``?shown=``), else the newest live one (then written into ``?shown=``). So a second session
    that starts while this page shows one (an ad-hoc call, another station) does not take the page over on a
    reload; once the shown session has ended, the page moves on to the newest live one, as it does without a
    reload."""
    if cfg.session_id:
        return cfg.session_id
    if st.query_params.get("session"):
        return str(st.query_params["session"])
    current = ss.get(K_SID)
    state = ss.get(K_STATE)
    if current and not (state is not None and state.ended):
        return current
    sessions = client.list_sessions()
    shown = st.query_params.get("shown")
    if shown and any(str(row.get("session_id")) == shown and not row.get("ended") for row in sessions):
        return str(shown)
    picked = vm.pick_session(sessions)
    if picked is not None and picked != shown:
        st.query_params["shown"] = picked
    return picked


def _script_run() -> object | None:
    """The identity of the current script run, full or fragment (Streamlit gives each run a new ``cursors`` map);
    None outside a run."""
    ctx = get_script_run_ctx()
    return None if ctx is None else getattr(ctx, "cursors", None)


def sync(client: IngestClient, sid: str, *, once_per_run: bool = False) -> SessionState:
    """Fetch the events after the last one seen and fold them into the session's state (a new state per session).

    ``once_per_run``: for drawing only; no new fetch when this script run has already fetched (a full rerun drew
    the page with up to five reads of the log, each a round trip to a busy ingest). Paths that decide on the log
    (post only if news, double clicks) fetch every time."""
    run = _script_run()
    if ss.get(K_SID) != sid or K_STATE not in ss:
        ss[K_SID], ss[K_STATE] = sid, SessionState()
    state: SessionState = ss[K_STATE]
    carried = ss.pop(K_SYNC_CARRY, False)
    if once_per_run and run is not None and (ss.get(K_SYNC_RUN) is run or carried):
        ss[K_SYNC_RUN] = run
        return state
    new = client.events(sid, after=state.last_seq)
    ss[K_SYNC_RUN] = run
    ss.pop(K_SYNC_STALE, None)
    for event in new:
        apply(state, event)
    if new:
        ss[K_OFFSET] = vm.clock_offset_ns(new[-1])
    return state


def ingest_now() -> int:
    """The ingest's monotonic clock, now (estimated; see :func:`viewmodel.clock_offset_ns`)."""
    return vm.ingest_now_ns(time.time_ns(), ss.get(K_OFFSET, 0))


def scenario_of(cfg: ConsoleConfig, sid: str) -> Scenario | None:
    """The session's scenario copy (for the checklist only), read once per session; None without one."""
    cached = ss.get(K_SCENARIO)
    if cached is not None and cached[0] == sid:
        return cached[1]
    scenario = None
    if cfg.recordings is not None:
        path = Path(cfg.recordings) / sid / "scenario.toml"
        try:
            scenario = parse_scenario(path.read_bytes(), str(path), check_media=False)
        except (OSError, ScenarioError):
            scenario = None
    ss[K_SCENARIO] = (sid, scenario)
    return scenario


def post(client: IngestClient, sid: str, call_id: str | None, payload: ev.Payload) -> bool:
    """Post one dispatcher event; on failure keep the message for the banner and return False."""
    try:
        event = client.post_event(sid, call_id, payload)
        state = ss.get(K_STATE)
        if state is not None and ss.get(K_SID) == sid and event.seq == state.last_seq + 1:
            apply(state, event)  # the log as read, then this event: nothing to fetch
            ss[K_OFFSET] = vm.clock_offset_ns(event)
        else:
            ss[K_SYNC_RUN], ss[K_SYNC_STALE] = None, True  # the next read fetches it, even in the same run
        return True
    except (IngestError, ev.EventValidationError) as exc:
        ss[K_ERROR] = f"Could not record {payload.TYPE}: {exc}"
        return False


def screen_of(state: SessionState) -> vm.Screen:
    """The screen for ``state`` under this page's settings (pairwise NASA-TLX weights or not)."""
    return vm.current_screen(state, tlx_weights=bool(ss.get(K_TLX_WEIGHTS)))


def rerun_if_screen_changed(state: SessionState) -> None:
    """From a polling fragment: redraw the whole page when the screen it was drawn for is no longer current."""
    if screen_of(state) != ss.get(K_SCREEN):
        st.rerun(scope="app")


# --- form state ---------------------------------------------------------------------------------------------------


def init_form(call: CallState) -> None:
    """Set the call's form widgets from the log when the call becomes active (a reloaded page keeps its intake)."""
    cid = call.call_id
    form = vm.form_state(call)
    ss[wk("incident_type", cid)] = form.incident_type
    ss[wk("urgency", cid)] = form.urgency
    ss[wk("location", cid)] = form.location
    ss[wk("items", cid)] = [key for key in INFORMATION_ITEMS if key in form.items_checked]
    ss[wk("disagree_flag", cid)] = form.disagreement_flagged
    ss[wk("disagree_aspect", cid)] = form.disagreement_aspect
    ss[wk("disagree_confidence", cid)] = form.confidence
    ss[wk("units", cid)] = list(form.units)
    ss[wk("notes", cid)] = form.notes
    ss[K_FORM_CALL] = cid


def widget_form(cid: str, checklist: list[tuple[str, str]]) -> vm.FormState:
    """The call's form as the widgets hold it now."""
    flagged = bool(ss.get(wk("disagree_flag", cid)))
    return vm.FormState(
        incident_type=ss.get(wk("incident_type", cid)),
        urgency=ss.get(wk("urgency", cid)),
        location=ss.get(wk("location", cid)) or "",
        items_checked=frozenset(ss.get(wk("items", cid)) or ()) & {k for k, _ in checklist},
        disagreement_flagged=flagged,
        disagreement_aspect=ss.get(wk("disagree_aspect", cid)) if flagged else None,
        units=tuple(ss.get(wk("units", cid)) or ()),
        confidence=ss.get(wk("disagree_confidence", cid)),
        notes=ss.get(wk("notes", cid)) or "",
    )


# --- callbacks (each posts the event of one widget change) ----------------------------------------------------------


def post_news(client: IngestClient, sid: str, cid: str, payload: ev.Payload) -> None:
    """Post an intake event from a widget callback if it is news to the log (see :func:`viewmodel.is_news`)."""
    try:
        call = sync(client, sid).calls.get(cid)
    except IngestError as exc:
        ss[K_ERROR] = f"Could not record {payload.TYPE}: {exc}"
        return
    if call is not None and vm.is_news(call, payload):
        post(client, sid, cid, payload)


def on_incident_type(client: IngestClient, sid: str, cid: str) -> None:
    if ss.get(wk("incident_type", cid)):
        post_news(client, sid, cid, ev.IntakeIncidentType(ss[wk("incident_type", cid)]))


def on_urgency(client: IngestClient, sid: str, cid: str) -> None:
    if ss.get(wk("urgency", cid)):
        post_news(client, sid, cid, ev.IntakeUrgency(ss[wk("urgency", cid)]))


def on_location(client: IngestClient, sid: str, cid: str) -> None:
    post_news(client, sid, cid, ev.IntakeLocation(ss.get(wk("location", cid)) or ""))


def on_items(client: IngestClient, sid: str, cid: str) -> None:
    """The checklist changed: post ``intake.item_checked`` for each item whose state differs from the log (one click
    changes one item; a double click or a reload posts nothing twice)."""
    try:
        call = sync(client, sid).calls.get(cid)
    except IngestError as exc:
        ss[K_ERROR] = f"Could not record intake.item_checked: {exc}"
        return
    if call is None:
        return
    checked = set(ss.get(wk("items", cid)) or ())
    logged = vm.form_state(call).items_checked
    for item in INFORMATION_ITEMS:
        if (item in checked) != (item in logged):
            post(client, sid, cid, ev.IntakeItemChecked(item, item in checked))


def on_disagreement(client: IngestClient, sid: str, cid: str) -> None:
    flagged = bool(ss.get(wk("disagree_flag", cid)))
    aspect = (ss.get(wk("disagree_aspect", cid)) or "") if flagged else ""
    post_news(client, sid, cid, ev.IntakeDisagreementFlag(flagged, aspect))


def on_units(client: IngestClient, sid: str, cid: str) -> None:
    post_news(client, sid, cid, ev.IntakeUnits(list(ss.get(wk("units", cid)) or [])))


def on_confidence(client: IngestClient, sid: str, cid: str) -> None:
    if ss.get(wk("disagree_confidence", cid)) is not None:
        post_news(client, sid, cid, ev.IntakeDisagreementConfidence(int(ss[wk("disagree_confidence", cid)])))


def on_notes(client: IngestClient, sid: str, cid: str) -> None:
    post_news(client, sid, cid, ev.IntakeNotes(ss.get(wk("notes", cid)) or ""))


def on_call_action(client: IngestClient, sid: str, cid: str, payload: ev.Payload) -> None:
    """Hold, resume and the photo viewer's buttons: post if news (a double click posts once)."""
    post_news(client, sid, cid, payload)


def on_answer(client: IngestClient, cfg: ConsoleConfig, sid: str, cid: str) -> None:
    """Answer ``cid``: only a call still waiting, and only while no other call is in hand (a double click answers
    once). A callback that asks for one full-app rerun, which draws the call."""
    try:
        fresh = sync(client, sid)
    except IngestError as exc:
        ss[K_ERROR] = f"Could not answer: {exc}"
        return
    call = fresh.calls.get(cid)
    if call is not None and call.status == "waiting" and vm.current_screen(fresh).kind == "queue":
        if post(client, sid, cid, ev.CallAnswered(cfg.station)):
            _sync_quietly(client, sid)
    st.rerun()  # from a callback: one full-app rerun instead of the fragment's rerun and then the app's


def on_close(client: IngestClient, sid: str, cid: str, checklist: list[tuple[str, str]]) -> None:
    """Close the call with the form's final values (``call.closed``), after posting any change the log lacks; not
    twice, even on a double click."""
    form = widget_form(cid, checklist)
    try:
        call = sync(client, sid).calls[cid]
    except IngestError as exc:
        ss[K_ERROR] = f"Could not close the call: {exc}"
        return
    if call.status == "active":
        ok = all(post(client, sid, cid, p) for p in vm.sync_payloads(call, form))
        notes = ss.get(wk("notes", cid)) or ""
        if ok and post(client, sid, cid, vm.close_payload(form, [k for k, _ in checklist], notes)):
            _sync_quietly(client, sid)
    st.rerun()  # the whole page moves on to the RSME, in one rerun


def _sync_quietly(client: IngestClient, sid: str) -> None:
    """Before a callback's ``st.rerun()``: make the state hold the events just posted (a read only when others came
    in between) and hand it to the rerun, which draws from it without reading the log again. A failed read only
    leaves it to the rerun's own read."""
    try:
        if ss.pop(K_SYNC_STALE, False):
            sync(client, sid)
        ss[K_SYNC_CARRY] = True
    except IngestError:
        pass


def on_hold(client: IngestClient, cfg: ConsoleConfig, sid: str, cid: str) -> None:
    """Hold the call and mute its audio (:mod:`workbench.console.call_audio`)."""
    try:
        if call_audio.hold(client, sid, sync(client, sid).calls.get(cid), cfg.station):
            ss[K_SYNC_RUN], ss[K_SYNC_STALE] = None, True  # posted past post(): the redraw reads the log again
    except IngestError as exc:
        ss[K_ERROR] = f"Could not hold: {exc}"


def on_resume(client: IngestClient, cfg: ConsoleConfig, sid: str, cid: str) -> None:
    """Resume a held call (and its audio), only while no other call is in hand."""
    try:
        fresh = sync(client, sid)
        if screen_of(fresh).kind == "queue":
            if call_audio.resume(client, sid, fresh.calls.get(cid), cfg.station):
                ss[K_SYNC_RUN], ss[K_SYNC_STALE] = None, True  # posted past post(): the redraw reads the log again
    except IngestError as exc:
        ss[K_ERROR] = f"Could not resume: {exc}"


def on_snapshot(client: IngestClient, sid: str, cid: str) -> None:
    """Ask the ingest for a still now (it logs ``media.snapshot``, reason ``request``); the gallery shows it."""
    try:
        snap = client.request_snapshot(cid)
        sync(client, sid)
        ss[K_MEDIA_MSG] = (cid, "info", f"Snapshot taken: sharpness {snap['sharpness']:.0f}, "
                                   f"brightness {snap['brightness']:.0f}, motion {snap['motion']:.1f}.")
    except (IngestError, KeyError, TypeError) as exc:
        ss[K_MEDIA_MSG] = (cid, "warning", f"No snapshot: {exc}")


def on_prompt(client: IngestClient, sid: str, cid: str, prompt: str) -> None:
    """Ask the caller's page for a photo, a camera switch or the end of the video (``dispatcher.prompt``)."""
    try:
        client.prompt_caller(cid, prompt)
        sync(client, sid)
        ss[K_MEDIA_MSG] = (cid, "info", f"{vm.PROMPT_LABELS[prompt]}: sent to the caller.")
    except IngestError as exc:
        ss[K_MEDIA_MSG] = (cid, "warning", f"Could not ask the caller: {exc}")


def on_invite(client: IngestClient, sid: str) -> None:
    """A new call in this session for a live actor: its one-time caller link, shown as URL and QR code."""
    try:
        ss[K_INVITE] = client.create_call(sid, caller_label="live caller", modality="video")
    except IngestError as exc:
        ss[K_ERROR] = f"Could not create a caller link: {exc}"


def on_tlx_slider(name: str) -> None:
    ss.setdefault(K_TLX_TOUCHED, set()).add(name)


def on_submit_tlx(client: IngestClient, sid: str, block: str) -> None:
    try:
        fresh = sync(client, sid)
    except IngestError as exc:
        ss[K_ERROR] = f"Could not record the NASA-TLX: {exc}"
        return
    if block not in fresh.tlx_rated:  # once per block, even on a double click
        ratings = {name: int(ss[wk(f"tlx_{name}", block)]) for name in TLX_SUBSCALES}
        post(client, sid, None, vm.tlx_payload(block, ratings))


def on_submit_tlx_weights(client: IngestClient, sid: str, block: str) -> None:
    try:
        fresh = sync(client, sid)
    except IngestError as exc:
        ss[K_ERROR] = f"Could not record the NASA-TLX weights: {exc}"
        return
    if block not in fresh.tlx_weighted:
        choices = [ss[wk(f"tlxw_{i}", block)] for i in range(len(TLX_PAIRS))]
        post(client, sid, None, vm.tlx_weights_payload(block, choices))


def on_rsme_slider(cid: str) -> None:
    ss[wk("rsme_number", cid)] = ss[wk("rsme", cid)]
    ss[K_RSME_TOUCHED] = True


def on_rsme_number(cid: str) -> None:
    if ss.get(wk("rsme_number", cid)) is not None:  # emptied again: the slider's value stands
        ss[wk("rsme", cid)] = int(ss[wk("rsme_number", cid)])
        ss[K_RSME_TOUCHED] = True


def on_submit_rsme(client: IngestClient, sid: str, cid: str) -> None:
    try:
        call = sync(client, sid).calls.get(cid)
    except IngestError as exc:
        ss[K_ERROR] = f"Could not record the rating: {exc}"
        return
    if call is not None and call.status == "closed":  # one rating per call, even on a double click
        post(client, sid, cid, vm.rsme_payload(ss[wk("rsme", cid)]))


# --- sections -------------------------------------------------------------------------------------------------------


def render_queue_rows(state: SessionState, *, answer_button: bool, client: IngestClient, cfg: ConsoleConfig) -> None:
    """The queue as lines (caller, waiting time, status); with ``answer_button``, an Answer button on the oldest."""
    rows = vm.queue_rows(state, ingest_now())
    if not rows:
        st.caption("No calls in the queue.")
    for row in rows:
        st.markdown(f"{QUEUE_ICONS.get(row.status, '')} **{row.caller_label}** · {vm.queue_status_text(row)}")
    nxt = vm.next_waiting(state)
    if answer_button and nxt is not None:
        st.button(f"Answer {nxt.caller_label}", key="answer_next", type="primary", icon=":material/call:",
                  on_click=on_answer, args=(client, cfg, state.session_id, nxt.call_id))


@st.fragment(run_every=1.0)
def queue_fragment(client: IngestClient, cfg: ConsoleConfig, sid: str, answer_button: bool) -> None:
    """Redraws the queue when the log changes (:mod:`live_watch`) and every second (the waiting times); the page
    reruns when the screen changes. Polling every 0.5 s from here put a new call on screen 0.8 s (median) after its
    arrival and kept the page busy redrawing (``workbench bench console``)."""
    try:
        state = sync(client, sid, once_per_run=True)
    except IngestError as exc:
        st.warning(f"Ingest unreachable: {exc}")
        return
    rerun_if_screen_changed(state)
    if not state.ended:
        live_watch.watch(cfg.public_ingest_url, sid, state.last_seq, "queue", live_watch.QUEUE)
    render_queue_rows(state, answer_button=answer_button, client=client, cfg=cfg)


@st.fragment(run_every=5.0)
def transcript_fragment(client: IngestClient, sid: str, cid: str, ingest_url: str) -> None:
    """Redraws the transcript of the active call when the log changes (:mod:`live_watch`; ``ingest_url`` is the
    browser's), and every 5 s should the browser not reach the ingest."""
    try:
        state = sync(client, sid, once_per_run=True)
    except IngestError as exc:
        st.warning(f"Ingest unreachable: {exc}")
        return
    rerun_if_screen_changed(state)
    live_watch.watch(ingest_url, sid, state.last_seq, "transcript", live_watch.TRANSCRIPT)
    call = state.calls[cid]
    rows = vm.transcript_rows(call)
    with st.container(height=200, key="transcript", autoscroll=True):  # the newest line in sight
        if not rows:
            st.caption("The caller has not said anything yet.")
        for row in rows:
            st.markdown(row.render())


def call_status(client: IngestClient, cid: str) -> dict:
    """``GET /api/calls/{cid}``, reused for :data:`STATUS_REUSE_S` (a click in the media panel need not wait for
    it; the panel's 2 s poll reads it anew)."""
    cached = ss.get(K_STATUS)
    if cached is not None and cached[0] == cid and time.monotonic() - cached[1] < STATUS_REUSE_S:
        return cached[2]
    status = client.call_status(cid)
    ss[K_STATUS] = (cid, time.monotonic(), status)
    return status


@st.fragment(run_every=2.0)
def media_fragment(client: IngestClient, cfg: ConsoleConfig, sid: str, cid: str) -> None:
    """The connection line under the live view (every two seconds) and the caller's photos and snapshots (also as
    soon as the log has them: :mod:`live_watch`)."""
    try:
        state = sync(client, sid, once_per_run=True)
    except IngestError as exc:
        st.caption(f"Media status unavailable: {exc}")
        return
    live_watch.watch(cfg.public_ingest_url, sid, state.last_seq, "media", live_watch.MEDIA)
    call = state.calls[cid]
    args = (client, sid, cid)
    # The connection line goes into its place above the photos after they are drawn: it is a round trip to the
    # ingest (up to ~120 ms under load), which a click in the photo viewer need not wait for.
    status_box = st.container() if call.modality == "video" else None
    photos = vm.photo_views(call, cfg.public_ingest_url)
    with st.container(key=wk("panel_photos", cid)):
        st.markdown(f"**Photos** ({len(photos)})")
        if not photos:
            st.caption("No photos yet.")
        opened = next((p for p in photos if p.photo_id == call.open_photo), None)
        if opened is not None:
            # The photo viewer: open, enlarge/shrink and close are events (dwell time per photo).
            st.image(opened.url, caption=opened.caption, width="stretch" if call.photo_enlarged else 360)
            b1, b2 = st.columns(2)
            b1.button("Shrink" if call.photo_enlarged else "Enlarge", key=wk("photo_enlarge", cid),
                      icon=":material/zoom_in:", on_click=on_call_action,
                      args=(*args, ev.PhotoEnlarged(opened.photo_id, not call.photo_enlarged)))
            b2.button("Close photo", key=wk("photo_close", cid), icon=":material/close:", on_click=on_call_action,
                      args=(*args, ev.PhotoClosed(opened.photo_id)))
        cols = st.columns(4)
        for i, photo in enumerate(photos):
            with cols[i % 4]:
                st.image(photo.url, width="stretch")
                st.button(f"Open {photo.photo_id}", key=wk(f"photo_open_{photo.photo_id}", cid),
                          disabled=photo.photo_id == call.open_photo, on_click=on_call_action,
                          args=(*args, ev.PhotoOpened(photo.photo_id)))
        snapshots = vm.snapshot_views(call, cfg.public_ingest_url)
        if snapshots:
            st.markdown(f"**Snapshots** ({len(snapshots)})")
            with st.container(key=wk("snapshots", cid)):
                for snap in snapshots[:2]:  # the newest two; every still stays in the recordings
                    st.image(snap.url, caption=snap.caption, width=300)
    if status_box is not None:
        with status_box:
            try:
                st.caption(vm.media_status_line(call_status(client, cid)))
            except IngestError as exc:
                st.caption(f"Media status unavailable: {exc}")
            render_media_requests(call, args)


def render_media_requests(call: CallState, args: tuple) -> None:
    """Under the live view: take a snapshot, or ask the caller for a photo, a camera switch or the end of the video;
    the outcome of the last request and each prompt's delivery to the caller's page."""
    cid = call.call_id
    cols = st.columns(4)
    cols[0].button("Snapshot", key=wk("snapshot", cid), icon=":material/photo_camera:", on_click=on_snapshot,
                   args=args, width="stretch")
    for col, prompt in zip(cols[1:], ev.CALLER_PROMPTS):
        col.button(vm.PROMPT_BUTTONS[prompt], key=wk(f"prompt_{prompt}", cid), on_click=on_prompt,
                   args=(*args, prompt), width="stretch")
    for_call, kind, message = ss.get(K_MEDIA_MSG) or ("", "", "")
    if message and for_call == cid:
        (st.warning if kind == "warning" else st.caption)(message)
    for line in vm.prompt_lines(call, ingest_now())[:3]:
        st.caption(line)


@st.fragment
def intake_form(client: IngestClient, sid: str, cid: str, checklist: list[tuple[str, str]]) -> None:
    """The intake form. Every change posts its event; "Close call" posts ``call.closed`` with the final values
    (then the whole page moves on to the RSME)."""
    args = (client, sid, cid)
    st.selectbox("Incident type", options=list(INCIDENT_TYPES), format_func=vm.incident_type_label, index=None,
                 placeholder="Choose the incident type", key=wk("incident_type", cid), on_change=on_incident_type, args=args)
    st.radio("Urgency", options=vm.urgency_options(), format_func=vm.urgency_label, index=None, horizontal=True,
             key=wk("urgency", cid), on_change=on_urgency, args=args)
    st.text_input("Location", key=wk("location", cid), placeholder="Street, number, place", on_change=on_location, args=args)
    # One pills widget, not a checkbox per item: answering drew twelve checkboxes, the largest part of the call
    # screen's first draw in the browser (workbench bench console).
    options = [key for key, _ in checklist]
    if not set(ss.get(wk("items", cid)) or ()) <= set(options):  # an item the log has but this checklist lacks
        ss[wk("items", cid)] = [key for key in ss[wk("items", cid)] if key in options]
    st.pills("Information gathered", options=options, format_func=dict(checklist).get, selection_mode="multi",
             key=wk("items", cid), on_change=on_items, args=args)
    st.multiselect("Units dispatched", options=list(ev.UNIT_TYPES), format_func=vm.unit_label,
                   key=wk("units", cid), on_change=on_units, args=args, placeholder="Choose units")
    st.checkbox("What the caller says and what the image shows disagree", key=wk("disagree_flag", cid),
                on_change=on_disagreement, args=args)
    st.selectbox("Aspect that disagrees", options=list(DISAGREEMENT_ASPECTS), format_func=vm.aspect_label,
                 index=None, placeholder="On what do they disagree?", key=wk("disagree_aspect", cid),
                 on_change=on_disagreement, args=args, disabled=not ss.get(wk("disagree_flag", cid)),
                 label_visibility="collapsed")
    st.segmented_control("How sure are you that they disagree (or agree)? 1 = not sure, 5 = completely sure",
                         options=list(vm.CONFIDENCE_LABELS), format_func=lambda v: str(v),
                         key=wk("disagree_confidence", cid), on_change=on_confidence, args=args)
    st.text_area("Notes", key=wk("notes", cid), height=68, on_change=on_notes, args=args)
    st.button("Close call", key=wk("close_call", cid), type="primary", icon=":material/call_end:",
              on_click=on_close, args=(*args, checklist))


def render_active(client: IngestClient, cfg: ConsoleConfig, state: SessionState, cid: str) -> None:
    """The call being handled: live view and photos left; transcript and intake form right; Hold.

    Drawn in the order the dispatcher needs the parts, not the order they stand on the screen: the intake form
    first, then the transcript, the live view, photos and related reports, and the invisible focus logger last
    (slots keep every part in its place). The browser mounts a new screen in a few React passes, each taking what
    has arrived; an iframe (focus logger, live viewer) is a new document, costly to mount, and drawn before the
    form it held the form back by a pass. Answer to the form on screen, 20 photo calls each on the bench's rig:
    p50 152 -> 128 ms, p95 unchanged (~195 ms).

    On the call's first draw (the Answer) the script pauses :data:`FIRST_PASS_PAUSE_S` after the header, form and
    transcript: they reach the browser, which mounts them in a pass of their own, before the live view, photos and
    related reports arrive. Without the pause the browser mounted all ~70 elements in one or two long tasks, and the
    form showed only at their end: with 3 live streams, 4 and 5 of 10 Answers took over 200 ms in two of three runs
    (``workbench bench console``); with the pause, 1 of 70 in seven runs. Later reruns (every widget change) do not
    pause."""
    call = state.calls[cid]
    sid = state.session_id
    first_draw = ss.get(K_FORM_CALL) != cid
    if first_draw:
        init_form(call)
    head, hold = st.columns([6, 1], vertical_alignment="bottom")
    head.subheader(f"Call with {call.caller_label}")
    hold.button("Hold", key=wk("hold", cid), icon=":material/phone_paused:", on_click=on_hold,
                args=(client, cfg, sid, cid))
    focus_slot = st.container()
    left, right = st.columns([5, 4], gap="medium")
    with right:
        transcript_panel = st.container(key=wk("panel_transcript", cid))
        checklist = vm.checklist_items(scenario_of(cfg, sid), call)
        with st.container(key=wk("panel_form", cid)):
            intake_form(client, sid, cid, checklist)
    with transcript_panel:
        st.markdown("**Transcript**")
        transcript_fragment(client, sid, cid, cfg.public_ingest_url)
    if first_draw:
        time.sleep(FIRST_PASS_PAUSE_S)
    with left:
        with st.container(key=wk("panel_live_view", cid)):
            if call.modality == "video":
                # Outside every polling fragment: a rerun keeps the same element, so the viewer is never reloaded.
                st.iframe(call_audio.viewer_url(cfg.public_ingest_url, cid), height=380)
            else:
                st.info(f"{call.modality.capitalize()} report: no live video in this condition.")
        # The media and links panels wait on the ingest (call status, links): after everything the dispatcher
        # starts the intake with.
        media_fragment(client, cfg, sid, cid)
        links_panel(client, sid, cid, lambda: sync(client, sid, once_per_run=True),  # related reports (issue 11)
                    cfg.public_ingest_url)
    with focus_slot:
        st.iframe(browser.focus_html(cfg.public_ingest_url, sid, cid, PANELS), height=1)


def render_rsme(client: IngestClient, state: SessionState, cid: str) -> None:
    """The RSME rating of the call just closed: labelled scale, slider and exact number, Submit."""
    call = state.calls[cid]
    if ss.get(K_RSME_CALL) != cid:
        # The exact value starts empty, so typing 0 ("absolutely no effort") is a rating like any other value.
        ss[wk("rsme", cid)], ss[wk("rsme_number", cid)] = RSME_MIN, None
        ss[K_RSME_TOUCHED], ss[K_RSME_CALL] = False, cid
    st.subheader("How much effort did this call cost you?")
    st.caption(f"Call with {call.caller_label}, just closed. Rating Scale Mental Effort, {RSME_MIN} to {RSME_MAX}.")
    scale_col, input_col = st.columns([2, 3], gap="large")
    with scale_col:
        st.html(vm.rsme_scale_html(ss[wk("rsme", cid)] if ss.get(K_RSME_TOUCHED) else None))
    with input_col:
        st.slider("Mental effort", min_value=RSME_MIN, max_value=RSME_MAX, step=1, key=wk("rsme", cid),
                  on_change=on_rsme_slider, args=(cid,))
        st.number_input("Exact value", min_value=RSME_MIN, max_value=RSME_MAX, step=1, key=wk("rsme_number", cid),
                        on_change=on_rsme_number, args=(cid,), placeholder=f"{RSME_MIN}-{RSME_MAX}")
        touched = bool(ss.get(K_RSME_TOUCHED))
        if not touched:
            st.caption("Move the slider or type a value to rate.")
        st.button("Submit rating", key=wk("submit_rsme", cid), type="primary", disabled=not touched,
                  on_click=on_submit_rsme, args=(client, state.session_id, cid))


def drt_enabled(cfg: ConsoleConfig) -> bool:
    """The DRT runs when the console is configured for it or the page was opened with ``?drt=1``."""
    return cfg.drt or st.query_params.get("drt") == "1"


def render_sidebar(client: IngestClient, cfg: ConsoleConfig, state: SessionState, screen: vm.Screen) -> None:
    """The DRT (first, so its iframe is never replaced), session line, and the queue unless the main area shows it."""
    with st.sidebar:
        if drt_enabled(cfg) and not state.ended:
            st.iframe(browser.drt_html(cfg.public_ingest_url, state.session_id, kind=cfg.drt_kind,
                                       key=cfg.drt_key), height=56)
            st.caption(vm.drt_line(vm.drt_performance(state)))
        st.markdown(f"**Session** `{state.session_id}`")
        st.caption(f"Participant {state.participant or '?'} · scenario {state.scenario_id or '?'} · {cfg.station}")
        if state.ended:
            st.warning("This session has ended.")
        if screen.kind != "queue":
            st.markdown("**Queue**")
            queue_fragment(client, cfg, state.session_id, False)
        map_fragment(client, state.session_id)
        if not state.ended:
            render_invite(client, state.session_id)


def render_invite(client: IngestClient, sid: str) -> None:
    """A live actor as caller: a new one-time caller link for this session, as a QR code to scan with the phone."""
    with st.expander("Live caller link (QR)", expanded=bool(ss.get(K_INVITE))):
        st.button("New caller link", key="new_caller_link", on_click=on_invite, args=(client, sid))
        invite = ss.get(K_INVITE)
        if invite and invite.get("session_id") == sid:
            try:
                st.image(client.call_qr_svg(invite["call_id"]), width="stretch")
            except IngestError as exc:
                st.caption(f"No QR code: {exc}")
            st.code(invite["caller_url"], language=None)
            st.caption("Scan it with the caller's phone, or open the link in the caller's browser; it works once, "
                       "for the first browser that opens it.")


@st.fragment(run_every=2.0)
def map_fragment(client: IngestClient, sid: str) -> None:
    """A small live map of the session's open reports (the ingest draws it locally; nothing remote is loaded).
    Nothing is shown when the ingest has no map for the session."""
    cached = ss.get(K_MAP)
    if cached is not None and cached[0] == sid and time.monotonic() - cached[1] < MAP_REUSE_S:
        svg = cached[2]
    else:
        try:
            svg = client.session_map_svg(sid, width=320, height=240)
        except IngestError:
            return
        ss[K_MAP] = (sid, time.monotonic(), svg)
    with st.container(key="open_reports_map"):
        st.markdown("**Open reports**")
        st.image(svg, width="stretch")


def render_queue(client: IngestClient, cfg: ConsoleConfig, state: SessionState) -> None:
    """No call in hand: the queue, with the Answer button on the oldest waiting call; Resume on held calls."""
    st.subheader("Queue")
    for call in vm.held_calls(state):
        st.button(f"Resume {call.caller_label} (on hold)", key=wk("resume", call.call_id), icon=":material/call:",
                  on_click=on_resume, args=(client, cfg, state.session_id, call.call_id))
    queue_fragment(client, cfg, state.session_id, True)


def render_tlx(client: IngestClient, state: SessionState, block: str) -> None:
    """NASA-TLX of the block just ended: six subscales 0-100 in steps of 5 with their anchors; Submit once all six
    were set (Hart & Staveland 1988)."""
    if ss.get(K_TLX_BLOCK) != block:
        for name in TLX_SUBSCALES:
            ss[wk(f"tlx_{name}", block)] = 50
        ss[K_TLX_TOUCHED], ss[K_TLX_BLOCK] = set(), block
    st.subheader("How demanding was the last block?")
    st.caption(f"NASA Task Load Index for {vm.block_label(state, block)}. Set each scale (steps of 5), then submit.")
    touched: set[str] = ss.get(K_TLX_TOUCHED, set())
    cols = st.columns(2, gap="large")
    for i, name in enumerate(TLX_SUBSCALES):
        title, question, low, high = TLX_LABELS[name]
        with cols[i % 2]:
            st.markdown(f"**{title}** · {question}" + ("" if name in touched else " :orange[(not set yet)]"))
            st.slider(title, min_value=TLX_MIN, max_value=TLX_MAX, step=TLX_STEP, key=wk(f"tlx_{name}", block),
                      on_change=on_tlx_slider, args=(name,), label_visibility="collapsed")
            st.caption(f"{low} ← → {high}")
    st.button("Submit NASA-TLX", key=wk("submit_tlx", block), type="primary",
              disabled=len(touched) < len(TLX_SUBSCALES), on_click=on_submit_tlx,
              args=(client, state.session_id, block))


def render_tlx_weights(client: IngestClient, state: SessionState, block: str) -> None:
    """The 15 pairwise comparisons: for each pair, which contributed more to the workload of the block."""
    st.subheader("Which mattered more for your workload?")
    st.caption(f"{vm.block_label(state, block)}: for each pair, choose the one that contributed more.")
    cols = st.columns(3)
    for i, (a, b) in enumerate(TLX_PAIRS):
        with cols[i % 3]:
            st.radio(f"Pair {i + 1}", options=[a, b], format_func=lambda k: TLX_LABELS[k][0], index=None,
                     key=wk(f"tlxw_{i}", block), horizontal=True)
    done = all(ss.get(wk(f"tlxw_{i}", block)) for i in range(len(TLX_PAIRS)))
    st.button("Submit comparisons", key=wk("submit_tlxw", block), type="primary", disabled=not done,
              on_click=on_submit_tlx_weights, args=(client, state.session_id, block))


@st.fragment(run_every=2.0)
def wait_for_session(client: IngestClient, cfg: ConsoleConfig) -> None:
    """No live session yet: poll the session list and redraw the page when one appears."""
    try:
        if session_id(cfg, client) is not None:
            st.rerun(scope="app")
    except IngestError as exc:
        st.warning(f"Ingest unreachable: {exc}")
    st.info("Waiting for a session to start…")


@st.cache_resource(show_spinner=False)
def freeze_loaded_objects_once() -> bool:
    """:func:`gc_tuning.freeze_loaded_objects` on the first run of the process only; a later run does not even ask
    Python whether it froze (that walks every frozen object: ~15 ms of each full rerun)."""
    return gc_tuning.freeze_loaded_objects()


def main() -> None:
    """Draw the page for the current state of the session."""
    # No page_icon: a ":material/...:" favicon is fetched from fonts.gstatic.com (the page must load nothing remote).
    st.set_page_config(page_title="112 dispatcher console", layout="wide")
    st.html(PAGE_CSS)
    freeze_loaded_objects_once()
    cfg = ConsoleConfig.from_env(os.environ)
    cfg, access_token = access.dispatcher_config(cfg, os.environ)  # issue 7: access code and the station's session
    client = IngestClient(cfg.ingest_url, access=access_token)
    try:
        sid = session_id(cfg, client)
        state = sync(client, sid, once_per_run=True) if sid else None
    except IngestError as exc:
        st.error(f"The ingest is not reachable: {exc}")
        wait_for_session(client, cfg)
        return
    if state is None:
        participant_flow.farewell()
        wait_for_session(client, cfg)
        return
    if ss.get(K_ERROR):
        st.error(ss.pop(K_ERROR))
    ss[K_TLX_WEIGHTS] = cfg.tlx_weights
    screen = screen_of(state)
    ss[K_SCREEN] = screen
    if participant_flow.enabled(cfg) and participant_flow.render(
        client, state, screen.kind, sync=sync, post=post, now_ns=ingest_now, scenario=scenario_of(cfg, state.session_id),
        consent_file=cfg.consent_file,
    ):
        return
    if screen.kind == "active":
        render_active(client, cfg, state, screen.call_id)
    elif screen.kind == "rsme":
        render_rsme(client, state, screen.call_id)
    elif screen.kind == "tlx":
        render_tlx(client, state, screen.block_id)
    elif screen.kind == "tlx_weights":
        render_tlx_weights(client, state, screen.block_id)
    else:
        render_queue(client, cfg, state)
    # After the main area, which a click changes: the sidebar's reads (map, queue) do not hold it back.
    render_sidebar(client, cfg, state, screen)


main()
