"""The participant flow's screens in the dispatcher console (issue 7): consent, instructions, the practice block's
banner, the break between blocks, the end questionnaire and the thank-you screen.

On when the console runs with ``WORKBENCH_PARTICIPANT_FLOW=1`` (``workbench run --participant-flow``) or the page
is opened with ``?flow=1``. The page script calls :func:`render` before drawing its own screen; what to show is
decided by :func:`workbench.console.participant_viewmodel.flow_screen` from the session's log, so a reloaded page
resumes where the participant was. Every screen's appearance is a ``participant.step`` event; consent and the
questionnaire are their own events. A refusal posts ``participant.consent`` (``given`` false) and ends the
session at once (``abort``): the runner, holding the first block for the start, then creates no call.

Widget keys: ``flow_consent_yes``, ``flow_consent_no``, ``flow_start``, ``flow_age_band``, ``flow_experience``,
``flow_discipline``, ``flow_submit_questionnaire``; containers ``flow_screen_<name>`` and ``flow_practice_banner``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import streamlit as st

from workbench.console import participant_viewmodel as pvm
from workbench.console import viewmodel as vm
from workbench.console.ingest_client import IngestClient, IngestError
from workbench.console.launch import ConsoleConfig
from workbench.domain import events as ev
from workbench.domain.participant import AGE_BANDS, DISCIPLINES, EXPERIENCE_MAX_YEARS
from workbench.domain.scenario import Scenario
from workbench.domain.session_state import SessionState

K_FAREWELL = "wb_flow_farewell"
K_ERROR = "wb_flow_error"

Sync = Callable[[IngestClient, str], SessionState]
Post = Callable[[IngestClient, str, "str | None", ev.Payload], bool]


def enabled(cfg: ConsoleConfig) -> bool:
    """The flow runs when the console is configured for it or the page was opened with ``?flow=1``."""
    return cfg.participant_flow or st.query_params.get("flow") == "1"


def farewell() -> None:
    """When the participant's session has ended and no other one is live: the thank-you (or refusal) message of
    the session just finished, above the page's waiting notice."""
    kind = st.session_state.get(K_FAREWELL)
    if kind == "refused":
        st.success("You chose not to take part. Nothing further is recorded. Thank you; you can close this page.")
    elif kind == "end":
        st.success("Thank you for taking part. The session is over; you can close this page.")


def _post_step(client: IngestClient, state: SessionState, post: Post, step: str, phase: str = "shown",
               block_id: str = "") -> None:
    payload = pvm.step_to_post(state, step, phase, block_id)
    if payload is not None and post(client, state.session_id, None, payload):
        state.flow.steps.add((step, phase, block_id))  # the next sync brings the same; no second post meanwhile


def render(client: IngestClient, state: SessionState, base_kind: str, *, sync: Sync, post: Post,
           now_ns: Callable[[], int], scenario: Scenario | None, consent_file: Path | None = None) -> bool:
    """Draw the flow's screen for ``state`` and return True when it takes the whole page (the console then draws
    nothing else); draw the practice banner and return False when the console's own screen ``base_kind`` shows.
    ``consent_file`` is the lab's consent text (None: the built-in one)."""
    screen = pvm.flow_screen(state, base_kind)
    if st.session_state.get(K_ERROR):
        st.error(st.session_state.pop(K_ERROR))
    if not screen:
        block = pvm.practice_block(state)
        if block:
            _post_step(client, state, post, "practice", block_id=block)
            with st.container(key="flow_practice_banner"):
                st.info("**Practice block.** These calls are for practice: they are not scored. Ask the "
                        "researcher if anything is unclear.", icon=":material/school:")
        # The console's own fragments redraw only themselves; a block starting or ending, a break or the end of
        # the session must redraw the whole page.
        _watch(client, state.session_id, (screen, block), base_kind, sync, now_ns)
        return False
    with st.container(key=f"flow_screen_{screen}"):
        if screen == "consent":
            _consent(client, state, post, consent_file)
        elif screen == "refused":
            st.session_state[K_FAREWELL] = "refused"
            farewell()
        elif screen == "instructions":
            _instructions(client, state, post, scenario)
        elif screen == "break":
            _post_step(client, state, post, "break", block_id=state.flow.break_after)
            st.subheader("Break")
            st.caption("Stand up, drink something. The console continues by itself when the next block starts.")
        elif screen == "questionnaire":
            _questionnaire(client, state, post)
        elif screen == "end":
            _post_step(client, state, post, "end")
            st.session_state[K_FAREWELL] = "end"
            farewell()
    if screen != "questionnaire":
        _watch(client, state.session_id, (screen, ""), base_kind, sync, now_ns)
    return True


@st.fragment(run_every=1.0)
def _watch(client: IngestClient, sid: str, drawn: tuple[str, str], base_kind: str, sync: Sync,
           now_ns: Callable[[], int]) -> None:
    """Polls the log every second and redraws the page when what it was ``drawn`` for (the flow's screen, the
    practice block running) changed: a block starts or ends, a break ends, the session ends. On the break screen
    it also counts down."""
    try:
        state = sync(client, sid)
    except IngestError:
        return
    now = (pvm.flow_screen(state, base_kind), pvm.practice_block(state) if not drawn[0] else "")
    if now != drawn or (state.ended and drawn[0] in ("end", "break")):
        st.rerun(scope="app")
    if drawn[0] == "break":
        with st.container(key="flow_break_countdown"):
            st.markdown(pvm.break_text(state.flow.break_remaining_s(now_ns()),
                                       vm.block_label(state, state.flow.break_after)))


def _consent(client: IngestClient, state: SessionState, post: Post, consent_file: Path | None) -> None:
    try:
        text = pvm.read_consent_text(consent_file)
    except pvm.ConsentTextError as exc:
        # No text is better than another text than the lab's: the participant cannot answer until it is fixed.
        st.error(f"The consent text cannot be shown: {exc}. Tell the researcher.")
        return
    _post_step(client, state, post, "consent")
    st.subheader("Consent")
    st.markdown(text)
    yes, no = st.columns(2)
    if yes.button("I agree", key="flow_consent_yes", type="primary", icon=":material/check:"):
        _answer_consent(client, state, post, True, text)
    if no.button("I do not agree", key="flow_consent_no", icon=":material/close:"):
        _answer_consent(client, state, post, False, text)


def _answer_consent(client: IngestClient, state: SessionState, post: Post, given: bool, text: str) -> None:
    if state.flow.consent is not None:  # a double click answers once
        return
    if not post(client, state.session_id, None, ev.ParticipantConsent(given, pvm.consent_sha256(text))):
        st.rerun(scope="app")
    if not given:
        st.session_state[K_FAREWELL] = "refused"
        try:
            client.control(state.session_id, "abort")
        except IngestError as exc:
            if exc.status != 409:  # 409: ended already, which is what was asked
                st.session_state[K_ERROR] = f"Could not end the session: {exc}. Tell the researcher."
    st.rerun(scope="app")


def _instructions(client: IngestClient, state: SessionState, post: Post, scenario: Scenario | None) -> None:
    _post_step(client, state, post, "instructions")
    st.subheader("Instructions")
    st.markdown(pvm.INSTRUCTIONS_TEXT)
    practice_ids = {b.id for b in scenario.blocks if b.practice} if scenario is not None else set()
    practice_first = pvm.first_block_is_practice(state, practice_ids)
    if practice_first:
        st.info("You start with a **practice block**: its calls are not scored. The scored blocks follow.",
                icon=":material/school:")
    label = "Start the practice block" if practice_first else "Start"
    if st.button(label, key="flow_start", type="primary", icon=":material/play_arrow:"):
        if not state.flow.has_step("instructions", "done"):
            post(client, state.session_id, None, ev.ParticipantStep("instructions", "done", ""))
        # The runner holds the first block for a start (``--participant-flow`` implies ``--wait-start``); a
        # trainer may have given it already.
        if not state.flow.started and not state.current_block:
            try:
                client.control(state.session_id, "start")
            except IngestError as exc:
                st.session_state[K_ERROR] = f"Could not start the session: {exc}. Tell the researcher."
        st.rerun(scope="app")


def _questionnaire(client: IngestClient, state: SessionState, post: Post) -> None:
    _post_step(client, state, post, "questionnaire")
    st.subheader("A few questions about you")
    st.caption("Last step. Your answers are stored with your pseudonym only.")
    st.selectbox("Age", options=list(AGE_BANDS), format_func=pvm.age_band_label, index=None,
                 placeholder="Choose your age band", key="flow_age_band")
    st.number_input(f"Years of experience as a dispatcher (0-{EXPERIENCE_MAX_YEARS})", min_value=0,
                    max_value=EXPERIENCE_MAX_YEARS, step=1, value=None, key="flow_experience")
    st.radio("Discipline", options=list(DISCIPLINES), format_func=pvm.discipline_label, index=None,
             key="flow_discipline")
    if st.button("Submit and finish", key="flow_submit_questionnaire", type="primary", icon=":material/send:"):
        ss = st.session_state
        try:
            payload = pvm.questionnaire_payload(ss.get("flow_age_band"), ss.get("flow_experience"),
                                                ss.get("flow_discipline"))
        except ev.EventValidationError as exc:
            st.error(f"Not submitted: {exc}.")
            return
        if state.flow.questionnaire is None and post(client, state.session_id, None, payload):
            st.session_state[K_FAREWELL] = "end"
        st.rerun(scope="app")
