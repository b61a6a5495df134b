"""The debrief inside the trainer's page (issue 7): a "Debrief" tab offering every ended session in the recordings,
and a "Debrief" button on each station once it has ended, both drawing
:func:`workbench.console.debrief.render_debrief` (the page is already gated to the trainer's role).

:func:`ended_sessions` reads the recordings folder only (``session.json`` and the ``session.ended`` line of each
``events.jsonl``): no ingest needed, so sessions of earlier runs are offered too. The page caches each folder's row
by the log's size and modification time, so a redraw reads only logs that grew.

Widget keys (tests): the tab bar ``trainer_tab`` (labels :data:`TAB_LABELS`), the session picker
``trainer_debrief_session``, a station's button ``debrief-<session_id>``; the debrief's own keys start with
``trainer_debrief`` (see ``render_debrief``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from workbench.console.debrief import render_debrief

K_TAB = "trainer_tab"
K_SESSION = "trainer_debrief_session"
DEBRIEF_TAB = "Debrief"
TAB_LABELS = ("Stations", "Scenario library", DEBRIEF_TAB)
"""The trainer page's tabs, in order (fixed labels: the selected tab is kept in ``st.session_state[K_TAB]``)."""
_ENDED_MARK = b'"type":"session.ended"'  # how Event.to_json_line writes the type (compact separators)


@dataclass(frozen=True)
class EndedSession:
    """One ended session in the recordings: its folder name ``session_id``, ``participant`` pseudonym,
    ``scenario_id``, ``ended_at`` (UTC ISO 8601 of its ``session.ended``) and ``reason`` (``completed``,
    ``aborted``, ``server_stopped``)."""

    session_id: str
    participant: str
    scenario_id: str
    ended_at: str
    reason: str

    @property
    def label(self) -> str:
        """What the session picker shows, e.g. ``P07-20261129-142311 · P07 · demo · ended 14:31 (aborted)``."""
        clock = self.ended_at[11:16] if len(self.ended_at) >= 16 else self.ended_at
        return f"{self.session_id} · {self.participant or '?'} · {self.scenario_id or '?'} · ended {clock} " \
               f"({self.reason})"


def read_ended(session_dir: Path) -> EndedSession | None:
    """The session in ``session_dir`` if its log holds a ``session.ended`` (the last such line counts), else None
    (still running, crashed before its end, or not a session folder). Unreadable or torn lines are skipped: this
    only lists sessions, the debrief itself reports a log's problems."""
    try:
        raw = (session_dir / "events.jsonl").read_bytes()
    except OSError:
        return None
    end = None
    for line in raw.split(b"\n"):
        if _ENDED_MARK in line:
            try:
                end = json.loads(line)
            except ValueError:
                continue
    if end is None or end.get("type") != "session.ended":
        return None
    try:
        header = json.loads((session_dir / "session.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        header = {}
    return EndedSession(session_dir.name, str(header.get("participant", "")), str(header.get("scenario_id", "")),
                        str(end.get("t_wall", "")), str((end.get("data") or {}).get("reason", "")))


def ended_sessions(recordings: Path) -> list[EndedSession]:
    """Every ended session directly under ``recordings``, the most recently ended first; empty when the folder does
    not exist yet (nothing recorded)."""
    if not recordings.is_dir():
        return []
    rows = [_cached_row(str(p), *_stamp(p)) for p in recordings.iterdir()
            if not p.name.startswith(".") and (p / "events.jsonl").is_file()]
    return sorted((r for r in rows if r is not None), key=lambda r: (r.ended_at, r.session_id), reverse=True)


def _stamp(session_dir: Path) -> tuple[int, int]:
    stat = (session_dir / "events.jsonl").stat()
    return stat.st_mtime_ns, stat.st_size


@st.cache_data(show_spinner=False, max_entries=2048)
def _cached_row(session_dir: str, mtime_ns: int, size: int) -> EndedSession | None:
    # Keyed by the log's modification time and size: a running session is read again when it grows.
    return read_ended(Path(session_dir))


def open_debrief(session_id: str) -> None:
    """Callback of a station's Debrief button: pick its session and switch to the Debrief tab."""
    st.session_state[K_SESSION] = session_id
    st.session_state[K_TAB] = DEBRIEF_TAB


def debrief_button(session_id: str) -> None:
    """A station's "Debrief" button (only for an ended session). It lives in the stations' fragment, whose widgets
    rerun only the fragment: the click reruns the whole page, so the Debrief tab shows the session."""
    if st.button("Debrief", key=f"debrief-{session_id}", type="primary", on_click=open_debrief, args=(session_id,),
                 help="Open this session's debrief: the calls against the ground truth, the replay, the time line"):
        st.rerun(scope="app")


def render_debrief_tab(recordings: Path) -> None:
    """The Debrief tab: a picker over :func:`ended_sessions` and the chosen session's debrief."""
    sessions = {s.session_id: s for s in ended_sessions(recordings)}
    if not sessions:
        st.info(f"No ended sessions in `{recordings}` yet. A session appears here when it has ended.")
        st.session_state.pop(K_SESSION, None)
        return
    if st.session_state.get(K_SESSION) not in sessions:
        st.session_state.pop(K_SESSION, None)  # withdrawn, or from another recordings folder
    chosen = st.selectbox("Ended session", list(sessions), index=None, key=K_SESSION,
                          format_func=lambda sid: sessions[sid].label, placeholder="Choose a session to debrief")
    if chosen is None:
        st.caption(f"{len(sessions)} ended session(s) in `{recordings}`; the most recently ended first.")
        return
    cache = os.environ.get("WORKBENCH_DEBRIEF_CACHE")
    render_debrief(recordings / chosen, cache_dir=Path(cache) if cache else None, key_prefix="trainer_debrief")
