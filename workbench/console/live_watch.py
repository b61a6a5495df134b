"""The console page's change watcher (issue 6): a fragment redraws when the session's log changed, not on a timer.

Why: with every live part polling from Streamlit (the queue every 0.5 s, the transcript every second, ...), the
script thread and the dispatcher's browser were busy redrawing unchanged parts most of the time, and a click
waited behind those runs (a click's fragment rerun does not pre-empt a running fragment). Now one small script in
the console page's own realm polls ``GET /api/sessions/{sid}/head`` (:mod:`workbench.ingest.head`: the last ``seq``
of each watched kind of event, nothing else) every :data:`POLL_MS` ms, and when the log has news of the kinds a
fragment draws that the fragment has not drawn yet, it sets the trigger value of the watcher mounted in that
fragment: Streamlit reruns that fragment alone. The fragments keep a slower ``run_every`` of their own for what
changes without an event (the waiting times of the queue, the connection line) and as a safety net when the ingest
cannot be reached from the browser.

Each watcher names the event type prefixes it draws (:data:`QUEUE`, :data:`TRANSCRIPT`, :data:`MEDIA`), so
neither the DRT running every 3-5 s, nor the panel focus, nor a click in the form (all logged) redraws anything,
and a transcript line redraws the transcript only. The queue's watcher also carries what changes the screen (it is
on every screen of a live session; its fragment then redraws the whole page).

Use inside a fragment, after the fragment's ``sync``::

    live_watch.watch(cfg.public_ingest_url, sid, state.last_seq, "queue", live_watch.QUEUE)

One poller per page, whatever the number of watchers (each watcher is a subscription keyed by its name; the poll
asks for the union of their prefixes); it stops when no watcher is mounted and restarts with the next one. A failed
poll backs off up to 2 s. Counts for tests: ``window.__wbWatch`` (``polls``, ``failures``, ``fired``).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

POLL_MS = 250
"""How often the page asks the ingest for the log's head, ms: news reach the screen half of this later on average,
plus one fragment rerun."""

QUEUE = ("session.", "block.", "call.", "rating.")
"""What the queue draws (calls arriving, answered, held, closed) and what changes the screen (a call answered or
closed, a rating given, a block or the session ended)."""
TRANSCRIPT = ("caller.utterance",)
"""What the transcript draws."""
MEDIA = ("media.photo_received", "media.snapshot", "photo.", "dispatcher.prompt", "caller.prompt_delivered")
"""What the photos panel, the snapshot gallery and the prompt lines draw."""

WATCH_CSS_SELECTOR = "[class*='st-key-wb_watch_']"
"""The watchers' element containers (hidden: a watcher draws nothing, and must not add a gap to the layout)."""

_JS = r"""
export default function (component) {
  const { data, setTriggerValue } = component;
  // One poller in the page's own realm for all watchers: a rerun calls this again with the seq it drew from.
  const w = window.__wbWatch || (window.__wbWatch = {subs: new Map(), running: false, base: "", interval: 250,
                                                     last: {}, polls: 0, failures: 0, fired: 0});
  w.base = data.url;
  w.interval = data.interval_ms;
  const sub = {seq: data.seq, fired: data.seq, prefixes: data.prefixes, trigger: setTriggerValue};
  w.subs.set(data.id, sub);  // replaces this watcher's subscription from the run before
  const headOf = (s) => Math.max(0, ...s.prefixes.map((p) => w.last[p] | 0));
  const fire = () => {
    for (const s of w.subs.values()) {
      const head = headOf(s);
      if (head > s.fired) { s.fired = head; w.fired += 1; s.trigger("changed", head); }
    }
  };
  const tick = async () => {
    if (w.subs.size === 0) { w.running = false; return; }
    const prefixes = [...new Set([...w.subs.values()].flatMap((s) => s.prefixes))].sort();
    try {
      const r = await fetch(w.base + "?watch=" + encodeURIComponent(prefixes.join(",")), {cache: "no-store"});
      if (!r.ok) throw new Error("HTTP " + r.status);
      const j = await r.json();
      for (const [p, seq] of Object.entries(j.last || {})) w.last[p] = Math.max(w.last[p] | 0, seq | 0);
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
  fire();  // news another watcher's poll already brought
  return () => { if (w.subs.get(data.id) === sub) w.subs.delete(data.id); };
}
"""


@st.cache_resource
def _component() -> Any:
    """The registered component (once per server process: registering it again on every run logs a warning)."""
    return st.components.v2.component("wb_live_watch", js=_JS)


def head_url(public_ingest_url: str, session_id: str) -> str:
    """The URL the page polls (with ``?watch=`` the watchers' prefixes): the session's head, through the browser's
    ingest URL, which carries a station's ticket under access codes."""
    return f"{public_ingest_url}/api/sessions/{session_id}/head"


def _ignore() -> None:
    """The trigger's callback: the rerun of the enclosing fragment is all the watcher asks for."""


def watch(public_ingest_url: str, session_id: str, drawn_seq: int, name: str, prefixes: tuple[str, ...], *,
          interval_ms: int = POLL_MS) -> None:
    """Mount watcher ``name`` (unique on the page; key ``wb_watch_<name>``) in the calling fragment: the fragment
    reruns as soon as the log holds an event whose type starts with one of ``prefixes`` after ``drawn_seq`` (the
    ``seq`` of the state the fragment was drawn from). Outside a fragment a trigger would rerun the whole page: call
    it only inside one. Raises ``ValueError`` without prefixes."""
    if not prefixes:
        raise ValueError("a watcher needs the event type prefixes its fragment draws")
    _component()(key=f"wb_watch_{name}", data={"url": head_url(public_ingest_url, session_id), "seq": int(drawn_seq),
                                              "id": name, "prefixes": list(prefixes), "interval_ms": int(interval_ms)},
                 on_changed_change=_ignore, height=0)
