"""The trainer's debrief of a recorded session (``workbench debrief --recordings DIR [--session ID]``, or
:func:`render_debrief` inside another page, such as the trainer's, which gates it by role).

Reads the session folder only (:mod:`workbench.console.debrief_viewmodel`): per call what the caller said, what
the image showed, what the dispatcher entered against the ground truth (missed items in red), RSME and handling
time, a replay of the recording in sync with the transcript and the dispatcher's actions, and the call's time line.

The replay is one self-contained iframe (:func:`debrief_viewmodel.replay_html`) whose video is the call's recording
remuxed to MP4 (:mod:`workbench.console.debrief_media`, cached outside the recordings) and embedded as a ``data:``
URL: the page then needs no file server next to Streamlit, and nothing leaves the machine.

Settings from the environment: ``WORKBENCH_RECORDINGS`` (the recordings folder), ``WORKBENCH_DEBRIEF_SESSION`` (pin
one session), ``WORKBENCH_DEBRIEF_CACHE`` (the MP4 cache; default ``~/.cache/workbench112/debrief``).
Widget keys: ``debrief_session``, ``<prefix>_call``; the replay's iframe is in the container ``<prefix>_replay``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import streamlit as st

from workbench.console import access
from workbench.console import debrief_viewmodel as dvm
from workbench.console.debrief_media import ReplayMediaError, browser_copy, default_cache_dir, mime_type

# Largest recording embedded in the replay: a ``data:`` URL travels through Streamlit's websocket in one message,
# whose default limit is 200 MB, and base64 adds a third. (A comment, not a docstring: Streamlit's "magic" would
# print a bare string literal of the page script on the page.)
MAX_EMBED_BYTES = 80 * 1024 * 1024


@st.cache_data(show_spinner=False, max_entries=8)
def _load(session_dir: str, mtime_ns: int) -> dvm.SessionDebrief:
    # Keyed by the log's modification time, so a session still being recorded is read again when it grows.
    return dvm.load_debrief(Path(session_dir))


@st.cache_data(show_spinner="Preparing the recording for the browser…", max_entries=4)
def _media_data_url(segments: tuple[str, ...], cache_dir: str) -> str:
    copy = browser_copy([Path(s) for s in segments], Path(cache_dir))
    if copy.stat().st_size > MAX_EMBED_BYTES:
        raise ReplayMediaError(f"the recording ({copy.stat().st_size / 1e6:.0f} MB) is too long to embed; open "
                               f"{copy} in a video player")
    return f"data:{mime_type(copy)};base64," + base64.b64encode(copy.read_bytes()).decode("ascii")


def render_debrief(session_dir: Path, *, cache_dir: Path | None = None, key_prefix: str = "debrief") -> None:
    """Draw the debrief of the session in ``session_dir`` (a folder ``recordings/<session_id>``) into the current
    Streamlit container: header, problems, a call picker and the chosen call. ``cache_dir`` holds the browser copies
    of recordings (default :func:`debrief_media.default_cache_dir`); ``key_prefix`` keeps widget keys apart when a
    page shows more than one debrief."""
    try:
        debrief = _load(str(session_dir), (session_dir / "events.jsonl").stat().st_mtime_ns)
    except (dvm.DebriefError, OSError) as exc:
        st.error(f"Cannot read this session: {exc}")
        return
    st.subheader(f"Debrief of session {debrief.session_id}")
    st.caption(f"Participant {debrief.participant or '?'} · scenario {debrief.scenario_id or '?'} · "
               f"{len(debrief.calls)} call(s)")
    for problem in debrief.problems:
        st.warning(problem)
    if not debrief.calls:
        st.info("No calls were recorded in this session.")
        return
    titles = {c.call_id: c.title for c in debrief.calls}
    call_id = st.selectbox("Call", options=list(titles), format_func=titles.get, key=f"{key_prefix}_call")
    call = debrief.call(call_id)
    _render_call(call, cache_dir or default_cache_dir(), key_prefix)


def _fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _render_call(call: dvm.CallDebrief, cache_dir: Path, key_prefix: str) -> None:
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Handling time", _fmt_s(call.handling_time_s), help="From the answer to the close.")
    m2.metric("RSME", "—" if call.rsme is None else f"{call.rsme:g}", help="Rating Scale Mental Effort, 0-150.")
    m3.metric("Answered after", _fmt_s(call.answered_s),
              help="Call time of the answer: seconds since the call arrived.")
    st.caption(f"All times below are call time: seconds {dvm.time_reference(call)}. The scenario's designed times "
               "are labelled with their own reference (caller lines after the answer, media after arrival).")
    m4.metric("Missed items", str(len(call.missed_items)) if call.items else "—")

    entered, said = st.columns(2, gap="large")
    with entered:
        st.markdown("**What the dispatcher entered, against the ground truth**")
        rows = []
        for c in call.comparisons:
            verdict = {True: ":green[correct]", False: ":red[**wrong**]", None: ""}[c.correct]
            rows.append(f"| {c.field} | {c.entered} | {c.truth} | {verdict} |")
        st.markdown("| | entered | ground truth | |\n|---|---|---|---|\n" + "\n".join(rows))
        if call.items:
            st.markdown("**Required information**")
            with st.container(key=f"{key_prefix}_items"):
                for item in call.items:
                    if item.missed:
                        st.markdown(f":red[:material/close: **missed: {item.label}**]")
                    else:
                        st.markdown(f":green[:material/check: {item.label}]")
    with said:
        st.markdown("**What the caller said** (call time)")
        for line in call.transcript:
            st.markdown(f"`{line.t_s:5.1f} s` {line.text} :gray[({line.designed})]" if line.designed
                        else f"`{line.t_s:5.1f} s` {line.text}")
        if not call.transcript:
            st.caption("No caller lines were logged (the call was never answered?).")
        st.markdown("**What the image showed** (designed in the scenario)")
        for fact in call.media_facts or ["no ground truth for this call"]:
            st.markdown(f"- {fact}")
    pictures = [p for p in call.pictures if p.path.is_file()]
    if pictures:
        cols = st.columns(min(4, len(pictures)))
        for i, picture in enumerate(pictures):
            cols[i % len(cols)].image(str(picture.path), caption=picture.caption, width="stretch")

    st.markdown("**Replay**: the recording with the transcript and the dispatcher's actions in step; click a line "
                "to jump there.")
    media_src = None
    if call.segments:
        try:
            media_src = _media_data_url(tuple(str(p) for p in call.segments), str(cache_dir))
        except ReplayMediaError as exc:
            st.warning(f"The recording cannot be replayed: {exc}")
    with st.container(key=f"{key_prefix}_replay"):
        st.iframe(dvm.replay_html(call, media_src), height=900 if media_src else 440)


def main() -> None:
    """The stand-alone debrief page: a session picker over ``WORKBENCH_RECORDINGS`` (or the pinned session)."""
    st.set_page_config(page_title="112 debrief", layout="wide")
    access.gate("trainer", os.environ)  # issue 7: ground truth is for the trainer's eyes only
    recordings = os.environ.get("WORKBENCH_RECORDINGS")
    if not recordings:
        st.error("No recordings folder: start the page with `workbench debrief --recordings DIR`.")
        return
    try:
        sessions = dvm.session_dirs(Path(recordings))
    except dvm.DebriefError as exc:
        st.error(str(exc))
        return
    pinned = os.environ.get("WORKBENCH_DEBRIEF_SESSION")
    cache = os.environ.get("WORKBENCH_DEBRIEF_CACHE")
    if pinned:
        chosen = Path(recordings) / pinned
    elif not sessions:
        st.info(f"No sessions in {recordings} yet.")
        return
    else:
        names = [p.name for p in sessions]
        chosen = Path(recordings) / st.sidebar.selectbox("Session", options=names, index=len(names) - 1,
                                                         key="debrief_session")
    render_debrief(chosen, cache_dir=Path(cache) if cache else None)


if __name__ == "__main__":
    main()
