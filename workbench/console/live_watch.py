"""The console page's change watcher (issue 6): a fragment redraws when the session's log changed, not on a timer.

Why: with every live part polling from Streamlit (the queue every 0.5 s, the transcript every second, ...), the
script thread and the dispatcher's browser were busy redrawing unchanged parts most of the time, and a click
waited behind those runs (a click's fragment rerun does not pre-empt a running fragment). Now one small script in
the console page's own realm polls ``GET /api/sessions/{sid}/head`` (:mod:`workbench.ingest.head`: the last
``seq``, nothing else; a few dozen bytes) every :data:`POLL_MS` ms, and when the log has news that the fragment has
not drawn, it sets the trigger value of the watcher mounted in that fragment: Streamlit reruns that fragment alone.
The fragments keep a slower ``run_every`` of their own for what changes without an event (the waiting times of the
queue) and as a safety net when the ingest cannot be reached from the browser.

Events that no watched fragment draws (:data:`SKIP`: DRT, panel focus, the intake form's own changes, recording
segments, keyframe requests) do not count as news, so neither the DRT running every 3-5 s nor a click in the form
causes a redraw.

Use inside a fragment, after the fragment's ``sync``::

    live_watch.watch(cfg.public_ingest_url, sid, state.last_seq, "queue")

One poller per page, whatever the number of watchers (each watcher is a subscription keyed by its name); it stops
when no watcher is mounted and restarts with the next one. A failed poll backs off up to 2 s. Times and counts for
tests: ``window.__wbWatch`` (``polls``, ``failures``, ``head``, ``fired``).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

POLL_MS = 250
"""How often the page asks the ingest for the log's head, ms: a new call reaches the screen 1/2 of this later on
average, plus one fragment rerun."""

SKIP = ("drt.", "console.", "intake.", "media.recording_segment", "media.keyframe_requested")
"""Event type prefixes that are not news for any watched fragment (the queue, the transcript, the photos): the
page's own timed events, the form's changes (drawn by the form itself) and the recording's housekeeping."""

WATCH_CSS_SELECTOR = "[class*='st-key-wb_watch_']"
"""The watchers' element containers (hidden: a watcher draws nothing, and must not add a gap to the layout)."""

_JS = r"""
export default function (component) {
  const { data, setTriggerValue } = component;
  // One poller in the page's own realm for all watchers: a rerun calls this again with the seq it drew from.
  const w = window.__wbWatch || (window.__wbWatch = {subs: new Map(), running: false, url: "", interval: 250,
                                                     head: 0, polls: 0, failures: 0, fired: 0});
  w.url = data.url;
  w.interval = data.interval_ms;
  const sub = {seq: data.seq, fired: data.seq, trigger: setTriggerValue};
  w.subs.set(data.id, sub);  // replaces this watcher's subscription from the run before
  const fire = () => {
    for (const s of w.subs.values()) {
      if (w.head > s.fired) { s.fired = w.head; w.fired += 1; s.trigger("changed", w.head); }
    }
  };
  const tick = async () => {
    if (w.subs.size === 0) { w.running = false; return; }
    try {
      const r = await fetch(w.url, {cache: "no-store"});
      if (!r.ok) throw new Error("HTTP " + r.status);
      const j = await r.json();
      w.head = Math.max(w.head, j.changed_seq | 0);
      w.polls += 1;
      w.failures = 0;
      fire();
    } catch (e) {
      w.failures += 1;
    }
    const backoff = w.failures ? Math.min(2000, w.interval * 2 ** Math.min(w.failures, 3)) : w.interval;
    setTimeout(tick, backoff);
  };
  if (!w.running) { w.running = true; tick(); }
  fire();  // news already seen by another watcher
  return () => { if (w.subs.get(data.id) === sub) w.subs.delete(data.id); };
}
"""


@st.cache_resource
def _component() -> Any:
    """The registered component (once per server process: registering it again on every run logs a warning)."""
    return st.components.v2.component("wb_live_watch", js=_JS)


def head_url(public_ingest_url: str, session_id: str) -> str:
    """The URL the page polls: the session's head with :data:`SKIP` left out (the browser's ingest URL, which
    carries a station's ticket under access codes)."""
    return f"{public_ingest_url}/api/sessions/{session_id}/head?skip={','.join(SKIP)}"


def _ignore() -> None:
    """The trigger's callback: the rerun of the enclosing fragment is all the watcher asks for."""


def watch(public_ingest_url: str, session_id: str, drawn_seq: int, name: str, *, interval_ms: int = POLL_MS) -> None:
    """Mount watcher ``name`` (unique on the page; key ``wb_watch_<name>``) in the calling fragment: the fragment
    reruns as soon as the log holds news after ``drawn_seq`` (the ``seq`` of the state the fragment was drawn
    from). Outside a fragment a trigger would rerun the whole page: call it only inside one."""
    _component()(key=f"wb_watch_{name}", data={"url": head_url(public_ingest_url, session_id), "seq": int(drawn_seq),
                                              "id": name, "interval_ms": int(interval_ms)},
                 on_changed_change=_ignore, height=0)
