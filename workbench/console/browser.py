"""The console's timing-critical parts, which run in the dispatcher's browser (never in Streamlit reruns).

Two small self-contained HTML+JS documents for ``st.iframe`` (HTML content, same-origin with the page):

- :func:`drt_html`: the Detection Response Task (ISO 17488:2016). A stimulus every 3-5 s (uniformly at random),
  shown 1000 ms or until the response: a red bar along the top edge of the page (``visual``), a 1 kHz tone through
  WebAudio (``tone``) or both. The response is the **Control key pressed alone** (default; any ``KeyboardEvent.key``
  can be configured), taken on key-down wherever the keyboard focus is in the console page, or a press of the
  on-screen "DRT" button. Typing in the form never produces a Control key-down except in shortcuts (Ctrl+C, ...);
  a Control key-down is counted when it happens, so a shortcut typed during the task counts as a response (tell the
  participant to avoid shortcuts; the intake form needs none).

  Onsets and the **onset-to-log jitter** (``drt.stimulus``: ``onset_ms - scheduled_onset_ms``, ms, both on the
  ingest's clock): the *scheduled onset* is when the stimulus was due (previous due time + ISI); the *logged
  onset* is when the browser presented it. Visual: the time of the first animation frame that draws the bar
  (``requestAnimationFrame``), so timer lateness and a busy main thread show as jitter. Tone alone: as soon as it
  is scheduled (a whole ISI ahead) the tone is handed to the audio clock (``OscillatorNode.start(when)``,
  sample-accurate) at the scheduled time mapped through ``AudioContext.getOutputTimestamp()``, so a late timer
  cannot move it (when sound is still blocked then, it is tried again 150 ms before it is due; a later start is
  5 ms after that attempt). 150 ms before it is due it is mapped again from a fresh output timestamp and re-armed
  if the audio clock moved against the page's by more than 1 ms meanwhile (a stalled audio callback on a loaded
  machine had made single tones 20-41 ms late); the logged onset is the time the audio output plays the first
  sample, mapped back onto the page's clock from a fresh output timestamp read ~30 ms into the tone, so a drifting,
  stalled or restarted audio clock shows as jitter. A response while a tone plays whose onset timer is late still belongs to it. ``visual_tone`` starts the tone with the bar and uses the visual onset.
  Browsers keep an ``AudioContext`` suspended until the user presses something in the page: the first press
  resumes it; until then tone stimuli are skipped (not logged) and the status line says "sound blocked".
- :func:`focus_html`: panel focus of the active call (``console.focus``): pointer presses, wheel, keyboard focus
  entering a panel, the live-view iframe taking focus, and the pointer resting 300 ms over a panel. Logged only on
  a change of panel, at most one event per 250 ms (the latest wins), at most :data:`FOCUS_MAX_EVENTS` per call.

Design (decided for issue 6): the iframe is same-origin with the Streamlit page (``srcdoc`` with
``allow-same-origin``), so its script listens on ``window.parent`` (the console page) and draws the stimulus there;
all times are taken on the **parent's** ``performance`` clock (event ``timeStamp``, ``requestAnimationFrame``
times, ``performance.now()``), so they share one time origin. The live viewer is an iframe from the ingest's
origin, whose key events the page cannot see: when it takes the focus (a click on the live image) the DRT script
hands the focus back to the console page at once, so the response key keeps working (the focus script logs the
``live_view`` focus first). Times are mapped onto the ingest's monotonic clock (``t_mono_ns / 1e6``, ms) with
``GET /api/clock``: the sample with the smallest round trip of five, offset = ingest time - (send + receive) / 2;
re-measured every 30 s. The browser posts its events itself to ``POST /api/sessions/{sid}/events`` (the ingest
allows it with CORS), so no event waits for a Streamlit rerun.

Delivery (issue 6 follow-up: a ``console.focus`` was lost when a rerun re-mounted the focus iframe while its change
was held back): a browser runs no timer or promise callback of a removed iframe's script, so whatever must outlive a
component runs in the console page's own realm, installed once per page load with a script element
(``window.__wbCourier``: posts, the retry queue every 2 s, at most :data:`COURIER_MAX_PENDING` kept, and the clock;
``window.__wbFocusLogger``: the focus listeners and the 250 ms throttle). Every post is a ``keepalive`` request, so
it completes even when the page is left; on ``pagehide`` the posts still waiting for a retry go out at once, as
keepalive requests. What can still be lost: posts that fail again during that last flush (the ingest unreachable
at the moment the page is closed).

Each page load is one DRT run (``run_id``); stimuli are numbered within their run. The component is the first
element of the sidebar and its HTML never changes during a session, so Streamlit keeps the same iframe across
reruns and screens. A tab in the background throttles timers: the DRT assumes the console is the visible tab.
"""

from __future__ import annotations

import hashlib
import json

from workbench.domain.instruments import DRT_ISI_MAX_MS, DRT_ISI_MIN_MS, DRT_STIMULUS_MS

FOCUS_MAX_EVENTS = 3000
"""Most ``console.focus`` events one call's page posts (a stuck pointer or a script loop cannot flood the log)."""

_COURIER_JS = r"""
(() => {
  // Runs in the console page's own realm, once per page load: the queue, its retry timer and the pagehide flush
  // belong to the page, so they outlive any component iframe (a rerun may re-mount one; callbacks created by a
  // removed iframe's script never run again).
  const queue = [];  // posts not yet accepted by the ingest, oldest first
  const state = {version: __VERSION__, queue: queue, sent: 0, retried: 0, dropped: 0, refused: 0, post: null,
                 clock: {offset: null, rtt: null}, syncClock: null};
  function request(item) {
    return fetch(item.url, {method: "POST", headers: {"Content-Type": "application/json"}, body: item.body,
                            keepalive: true});
  }
  async function send(item) {
    try {
      const r = await request(item);
      if (r.status >= 500) throw new Error("HTTP " + r.status);
      if (r.status >= 400) { state.refused += 1; console.warn("event refused", r.status, await r.text()); }
      else state.sent += 1;
    } catch (e) {
      if (queue.length < __MAX_PENDING__) queue.push(item); else state.dropped += 1;
    }
  }
  state.post = (url, body) => { send({url: url, body: body}); };
  setInterval(() => { for (const item of queue.splice(0)) { state.retried += 1; send(item); } }, 2000);
  // Leaving the page (reload, close): what still waits for its retry goes out now, as keepalive requests, which
  // the browser completes after the page is gone.
  addEventListener("pagehide", () => {
    for (const item of queue.splice(0)) { try { request(item).catch(() => {}); } catch (e) { /* over the limit */ } }
  });
  state.syncClock = async (ingest) => {
    let best = null;
    for (let i = 0; i < 5; i++) {
      try {
        const t0 = performance.now();
        const r = await fetch(ingest + "/api/clock", {cache: "no-store"});
        const j = await r.json();
        const t1 = performance.now();
        if (best === null || t1 - t0 < best.rtt) best = {rtt: t1 - t0, offset: j.t_mono_ns / 1e6 - (t0 + t1) / 2};
      } catch (e) { /* the ingest is unreachable for a moment: keep the previous offset */ }
    }
    if (best !== null) { state.clock.offset = best.offset; state.clock.rtt = best.rtt; }
  };
  window.__wbCourier = state;
})();
"""

_COMMON_JS = r"""
const P = window.parent;
const CFG = __CONFIG__;
const eventsUrl = CFG.ingest + "/api/sessions/" + encodeURIComponent(CFG.sessionId) + "/events";
// Code that must outlive this iframe runs in the console page's realm, put there with a script element.
function installInPage(name, version, source) {
  if (!P[name] || P[name].version !== version) {
    const s = P.document.createElement("script");
    s.textContent = source;
    P.document.head.appendChild(s);
    s.remove();
  }
  return P[name];
}
const courier = installInPage("__wbCourier", CFG.courierVersion, CFG.courierSource);
// Timers run on the parent page's queue: Chrome throttles the timers of a tiny or zero-height iframe (a focus
// change posted 10 s late). Intervals are cleared when this iframe goes away.
const intervals = [];
function every(fn, ms) { intervals.push(P.setInterval(fn, ms)); }
window.addEventListener("pagehide", () => { for (const id of intervals) P.clearInterval(id); });
const clock = {offset: null, rtt: null};
async function syncClock() {
  await courier.syncClock(CFG.ingest);
  clock.offset = courier.clock.offset; clock.rtt = courier.clock.rtt;
}
// A time on this frame's clock mapped onto the parent's (events raised inside this iframe).
const ownToParent = performance.timeOrigin - P.performance.timeOrigin;
// Every post goes through the page's courier: a failed one is retried every 2 s (at most 500 kept) even after
// this iframe is gone, and flushed when the page is left.
function post(type, callId, data) {
  courier.post(eventsUrl, JSON.stringify({source: "console", type: type, call_id: callId, data: data}));
}
"""

_DRT_JS = r"""
const runId = "drt-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8);
const state = {index: -1, onset: null, shown: false, hideTimer: null, scheduled: null, audio: null, analyser: null,
               toneOsc: null, pending: null, blocked: 0, stimuli: [], responses: []};
P.__wbDrt = state;  // read by tests and the benchmark
P.__wbDrtOwner = runId;  // a newer instance (page reload) takes over; an older one stops
const bar = P.document.createElement("div");
bar.id = "wb-drt-stimulus";
bar.setAttribute("aria-hidden", "true");
bar.style.cssText = "position:fixed;left:0;right:0;top:0;height:18px;background:#e00000;z-index:2147483647;" +
                    "display:none;pointer-events:none;box-shadow:0 0 12px #e00000;";
P.document.body.appendChild(bar);
const status = document.getElementById("status");
let alive = true;  // false once this iframe is gone (its timers run on the parent's queue)
function mine() { return alive && P.__wbDrtOwner === runId; }
function toIngest(t) { return clock.offset === null ? null : t + clock.offset; }
function hide() {
  bar.style.display = "none";
  stopTone();
  state.shown = false;
  if (state.hideTimer !== null) { P.clearTimeout(state.hideTimer); state.hideTimer = null; }
}
function stopTone() {
  if (state.toneOsc) { try { state.toneOsc.stop(); } catch (e) { /* already stopped */ } state.toneOsc = null; }
}
function audioContext() {
  if (state.audio === null) {
    state.audio = new P.AudioContext();
    // A probe on what is sent to the speakers (tests read its spectrum to check that a 1 kHz tone plays).
    state.analyser = state.audio.createAnalyser();
    state.analyser.fftSize = 2048;
  }
  return state.audio;
}
function toneNodes(ctx) {
  const osc = ctx.createOscillator(), gain = ctx.createGain();
  osc.frequency.value = 1000; gain.gain.value = 0.2;
  osc.connect(gain).connect(ctx.destination);
  gain.connect(state.analyser);
  return osc;
}
// The autoplay policy keeps an AudioContext suspended until the user has pressed something in the page: the first
// press (the dispatcher's answer click, the response key) resumes it.
const unlockAudio = () => { if (state.audio !== null && state.audio.state !== "running") state.audio.resume(); };
P.addEventListener("pointerdown", unlockAudio, true);
P.addEventListener("keydown", unlockAudio, true);
// A time on the page's clock (performance.now(), ms) <-> the audio clock (AudioContext time, s), through the
// browser's own pairing of the two at the audio output (getOutputTimestamp).
function perfToAudio(ctx, t) { const ts = ctx.getOutputTimestamp(); return ts.contextTime + (t - ts.performanceTime) / 1000; }
function audioToPerf(ctx, c) { const ts = ctx.getOutputTimestamp(); return ts.performanceTime + (c - ts.contextTime) * 1000; }
function tone() {  // visual_tone: the tone starts with the bar
  try {
    const ctx = audioContext();
    const osc = toneNodes(ctx);
    osc.start(); osc.stop(ctx.currentTime + CFG.stimulusMs / 1000);
    state.toneOsc = osc;
  } catch (e) { console.warn("DRT tone failed", e); }
}
function schedule() {
  const isi = CFG.isiMin + Math.random() * (CFG.isiMax - CFG.isiMin);
  state.scheduled = (state.scheduled === null ? P.performance.now() : state.scheduled) + isi;
  if (CFG.kind === "tone") { armTone(state.scheduled); return; }
  P.setTimeout(fire, Math.max(0, state.scheduled - P.performance.now()));
}
// A tone alone is handed to the audio clock (OscillatorNode.start(when): sample-accurate) as soon as it is
// scheduled, a whole interval ahead, so a late timer cannot move it; when that is not possible yet (no clock
// offset, or sound still blocked) it is tried again TONE_LEAD_MS before it is due.
const TONE_LEAD_MS = 150;
const TONE_REALIGN_MS = 1;
function armTone(scheduled) {
  const pending = {scheduled: scheduled, osc: null, start: null, planned: scheduled, presented: false};
  state.pending = pending;
  const armAt = (ctx, start) => {  // the tone on the audio clock from start (s), for the stimulus' length
    pending.osc = toneNodes(ctx);
    pending.start = start;
    pending.osc.start(start); pending.osc.stop(start + CFG.stimulusMs / 1000);
    pending.planned = audioToPerf(ctx, start);
  };
  const arm = () => {
    const ctx = audioContext();
    if (pending.osc !== null || !mine() || clock.offset === null || ctx.state !== "running") return;
    // A context that has not output anything yet has no output timestamp (zeros) to map the time with.
    const ts = ctx.getOutputTimestamp();
    if (!(ts.contextTime > 0 && ts.performanceTime > 0)) return;
    armAt(ctx, Math.max(perfToAudio(ctx, scheduled), ctx.currentTime + 0.005));
  };
  // Armed a whole interval ahead, the tone rides the audio clock for seconds; a stall of that clock meanwhile (an
  // audio callback missed on a loaded machine) moves it against the page's clock (tones 20-41 ms late in the
  // benchmark). TONE_LEAD_MS before it is due it is mapped again from a fresh output timestamp and re-armed when it
  // moved; if that timer itself comes too late, the tone stays as armed.
  const realign = () => {
    const ctx = state.audio;
    if (pending.osc === null || pending.presented || !mine() || ctx === null || ctx.state !== "running") return;
    if (Math.abs(audioToPerf(ctx, pending.start) - scheduled) <= TONE_REALIGN_MS) return;
    const start = perfToAudio(ctx, scheduled);
    if (start < ctx.currentTime + 0.02) {  // too late to move it: atOnset waits for where it now falls
      pending.planned = audioToPerf(ctx, pending.start);
      return;
    }
    // A stop before its start: the armed tone never sounds (and, disconnected, could not be heard anyway).
    try { pending.osc.stop(); } catch (e) { /* an engine that refuses a second stop() */ }
    pending.osc.disconnect();
    armAt(ctx, start);
  };
  arm();
  const lead = Math.max(0, scheduled - TONE_LEAD_MS - P.performance.now());
  P.setTimeout(pending.osc === null ? arm : realign, lead);
  const atOnset = () => {
    if (!mine()) { if (pending.osc !== null) pending.osc.stop(); hide(); return; }
    if (pending.osc === null) {  // no sound possible: skip this stimulus rather than log one nobody heard
      const ctx = audioContext();
      if (ctx.state !== "running") {
        ctx.resume();
        state.blocked += 1;
        status.textContent = "sound blocked: click the console once";
      }
    } else if (pending.osc !== null && Math.abs(pending.planned - scheduled) > 1 && pending.planned > P.performance.now()) {
      // armed late (TONE_LEAD_MS before): wait for its own onset
      P.setTimeout(atOnset, pending.planned - P.performance.now());
      return;
    } else {
      presentTone(pending);
    }
    schedule();
  };
  P.setTimeout(atOnset, Math.max(0, scheduled - P.performance.now()));
}
function presentTone(pending) {
  // The tone is playing (from pending.planned): later responses belong to it.
  if (pending.presented) return;
  pending.presented = true;
  if (state.pending === pending) state.pending = null;
  const index = state.index + 1;
  stopTone();
  state.toneOsc = pending.osc;
  present(index, pending.scheduled, pending.planned);
  // Logged onset: when the audio output played the tone's first sample, on the page's clock, read again once the
  // tone is playing (a fresh output timestamp: drift, a stalled or restarted audio clock show here).
  P.setTimeout(() => {
    const onset = audioToPerf(state.audio, pending.start);
    if (state.index === index) state.onset = onset;
    log(index, pending.scheduled, onset);
  }, Math.max(0, pending.planned + 30 - P.performance.now()));
}
function present(index, scheduled, onset) {
  // The stimulus is on: later responses belong to it; it goes off after stimulusMs or at the response.
  state.index = index; state.onset = onset; state.shown = true;
  state.hideTimer = P.setTimeout(hide, CFG.stimulusMs - (P.performance.now() - onset));
}
function log(index, scheduled, onset) {
  const data = {run_id: runId, stimulus_index: index, kind: CFG.kind, scheduled_onset_ms: toIngest(scheduled),
                onset_ms: toIngest(onset), clock_offset_ms: clock.offset, clock_rtt_ms: clock.rtt};
  state.stimuli.push(data);
  post("drt.stimulus", null, data);
}
function fire() {
  if (!mine()) { hide(); return; }
  if (clock.offset === null) { state.scheduled = null; schedule(); return; }  // no clock yet: no stimulus
  const scheduled = state.scheduled;
  const index = state.index + 1;
  const record = (onset) => { present(index, scheduled, onset); log(index, scheduled, onset); };
  if (CFG.kind !== "visual") tone();
  bar.style.display = "block";
  P.requestAnimationFrame((t) => record(t));  // the first frame that draws the bar
  schedule();
}
function respond(t, input) {
  if (!mine()) return;
  // A tone already playing whose onset timer is late (a busy page) takes the response.
  const p = state.pending;
  if (p && p.osc !== null && !p.presented && t >= p.planned) presentTone(p);
  const rt = state.onset === null ? -1 : t - state.onset;
  const data = {run_id: runId, stimulus_index: state.index, response_ms: toIngest(t) ?? t, rt_ms: rt,
                input: input};
  state.responses.push(data);
  if (state.shown) hide();
  post("drt.response", null, data);
  status.textContent = "response " + (rt < 0 ? "" : Math.round(rt) + " ms");
}
function onKey(e) {
  if (e.key === CFG.key && !e.repeat) respond(e.timeStamp + (e.view === P ? 0 : ownToParent), "key");
}
P.addEventListener("keydown", onKey, true);
window.addEventListener("keydown", (e) => { if (e.key === CFG.key && !e.repeat) respond(e.timeStamp + ownToParent, "key"); }, true);
document.getElementById("respond").addEventListener("pointerdown", (e) => respond(e.timeStamp + ownToParent, "button"));
// The live viewer (another origin) would swallow the response key: hand the focus back (after the focus script
// has seen which iframe took it).
function reclaimFocus() {
  const el = P.document.activeElement;
  if (el && el.tagName === "IFRAME" && String(el.src).includes("/viewer")) { el.blur(); P.focus(); }
}
P.addEventListener("blur", () => P.setTimeout(reclaimFocus, 50));
every(reclaimFocus, 250);  // and in case a blur went unseen
window.addEventListener("pagehide", () => { alive = false; P.removeEventListener("keydown", onKey, true); bar.remove(); });
(async () => {
  await syncClock();
  every(syncClock, 30000);
  status.textContent = clock.offset === null ? "no clock" : "running";
  // The audio clock runs (once the page was pressed) before the first tone: a fresh context's output timestamps
  // settle during its first tens of ms (the first tone was 20 ms late without this).
  if (CFG.kind !== "visual") audioContext();
  schedule();
})();
"""

_FOCUS_PAGE_JS = r"""
(() => {
  // Runs in the console page's own realm, once per page load (see _COURIER_JS): the throttle timer of a held-back
  // change must fire even when a rerun re-mounts the component in between (the first focus after a click on the
  // urgency radio was lost that way). Components attach (callId, config) and detach when they go away; presses
  // count while at least one is attached, and a change already noticed is always posted.
  const mounted = new Set();
  const state = {version: __VERSION__, log: null, cfg: null, attach: null, detach: null};
  state.attach = (cfg, token) => {
    if (state.log === null || state.log.callId !== cfg.callId) {
      state.log = {callId: cfg.callId, last: null, sent: 0, pendingPanel: null, timer: null, hoverTimer: null,
                   events: []};
    }
    state.cfg = cfg;
    mounted.add(token);
    window.__wbFocus = state.log;  // read by tests
  };
  state.detach = (token) => { mounted.delete(token); };
  function panelOf(el) {
    while (el && el !== document.body) {
      if (el.classList) for (const c of el.classList) if (c.startsWith("st-key-panel_")) return c.slice(13).split("-")[0];
      el = el.parentElement;
    }
    return null;
  }
  function note(panel, trigger, t) {
    const log = state.log, cfg = state.cfg;
    if (mounted.size === 0 || log === null || panel === null || !cfg.panels.includes(panel)) return;
    if (log.pendingPanel === null && panel === log.last) return;
    log.pendingPanel = {panel: panel, trigger: trigger, t: t};
    if (log.timer === null) log.timer = setTimeout(() => flush(log, cfg), 250);
  }
  function flush(log, cfg) {
    log.timer = null;
    const p = log.pendingPanel; log.pendingPanel = null;
    if (p === null || p.panel === log.last || log.sent >= cfg.maxEvents) return;
    log.last = p.panel; log.sent += 1;
    const offset = window.__wbCourier.clock.offset;
    const data = {panel: p.panel, trigger: p.trigger, browser_ms: offset === null ? p.t : p.t + offset};
    log.events.push(data);
    window.__wbCourier.post(cfg.eventsUrl,
                            JSON.stringify({source: "console", type: "console.focus", call_id: log.callId, data: data}));
  }
  const onPointer = (e) => note(panelOf(e.target), "pointer", e.timeStamp);
  const onFocus = (e) => note(panelOf(e.target), "focus", e.timeStamp);
  const onMove = (e) => {
    const log = state.log;
    if (log === null) return;
    const panel = panelOf(e.target), t = e.timeStamp;
    if (log.hoverTimer !== null) clearTimeout(log.hoverTimer);
    log.hoverTimer = setTimeout(() => note(panel, "hover", t + 300), 300);
  };
  const onBlur = () => {
    const t = performance.now();
    const check = () => {
      const el = document.activeElement;
      if (el && el.tagName === "IFRAME") { note(panelOf(el), "focus", t); return true; }
      return false;
    };
    if (!check()) setTimeout(check, 0);
  };
  // Over a cross-origin iframe the page sees no pointermove: its pointerover starts the hover timer instead.
  const onOver = (e) => { if (e.target && e.target.tagName === "IFRAME") onMove(e); };
  document.addEventListener("pointerdown", onPointer, true);
  document.addEventListener("wheel", onPointer, {capture: true, passive: true});
  document.addEventListener("focusin", onFocus, true);
  document.addEventListener("pointermove", onMove, {capture: true, passive: true});
  document.addEventListener("pointerover", onOver, {capture: true, passive: true});
  addEventListener("blur", onBlur);
  window.__wbFocusLogger = state;
})();
"""

_FOCUS_JS = r"""
// This component only attaches the call to the page's focus logger (P.__wbFocus is the call's log).
const logger = installInPage("__wbFocusLogger", CFG.focusVersion, CFG.focusSource);
const token = {};
logger.attach({callId: CFG.callId, panels: CFG.panels, maxEvents: CFG.maxEvents, eventsUrl: eventsUrl}, token);
window.addEventListener("pagehide", () => logger.detach(token));
syncClock();
every(syncClock, 30000);
"""


COURIER_MAX_PENDING = 500
"""Most failed posts the page keeps for retry (a longer outage drops the newest and counts them)."""


def _page_script(source: str, **values: object) -> tuple[str, str]:
    """``(version, source)`` of a script for the console page's own realm; the version is a hash of the source, so a
    page that already has an older copy (a console restarted with new code) installs the new one."""
    for name, value in values.items():
        source = source.replace(f"__{name}__", str(value))
    version = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    return version, source.replace("__VERSION__", json.dumps(version))


def _common_config(ingest_url: str, session_id: str) -> dict[str, object]:
    version, source = _page_script(_COURIER_JS, MAX_PENDING=COURIER_MAX_PENDING)
    return {"ingest": ingest_url.rstrip("/"), "sessionId": session_id, "courierVersion": version,
            "courierSource": source}


def _script_json(data: object) -> str:
    """JSON safe inside a ``<script>`` element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def drt_html(ingest_url: str, session_id: str, *, kind: str = "visual", key: str = "Control") -> str:
    """The DRT component's document: the on-screen response button, a status line and the script.

    ``ingest_url`` is the ingest as the dispatcher's browser reaches it; ``kind`` one of ``visual``, ``tone``,
    ``visual_tone``; ``key`` the ``KeyboardEvent.key`` of the response key. ISI 3000-5000 ms, stimulus 1000 ms
    (:mod:`workbench.domain.instruments`). Raises ``ValueError`` for an unknown kind.
    """
    if kind not in ("visual", "tone", "visual_tone"):
        raise ValueError(f"DRT kind must be visual, tone or visual_tone, got {kind!r}")
    config = {**_common_config(ingest_url, session_id), "kind": kind, "key": key,
              "isiMin": DRT_ISI_MIN_MS, "isiMax": DRT_ISI_MAX_MS, "stimulusMs": DRT_STIMULUS_MS}
    script = (_COMMON_JS + _DRT_JS).replace("__CONFIG__", _script_json(config))
    label = "Ctrl" if key == "Control" else key
    cue = {"visual": "red bar at the top", "tone": "a beep", "visual_tone": "red bar or beep"}[kind]
    return (
        "<div style='font:13px system-ui,sans-serif;display:flex;gap:10px;align-items:center;color:#333'>"
        "<button id='respond' type='button' style='padding:6px 12px;border-radius:6px;border:1px solid #b00;"
        "background:#fff;color:#b00;font-weight:600;cursor:pointer'>DRT</button>"
        f"<div style='line-height:1.3'>{cue}: press <b>{label}</b><br>"
        "<span id='status' style='color:#777'>starting</span></div></div>"
        f"<script>{script}</script>"
    )


def focus_html(ingest_url: str, session_id: str, call_id: str, panels: tuple[str, ...]) -> str:
    """The panel-focus component's document (invisible) for the active call ``call_id``.

    ``panels`` are the panel names the page marks with containers keyed ``panel_<name>-<call_id>``.
    """
    focus_version, focus_source = _page_script(_FOCUS_PAGE_JS)
    config = {**_common_config(ingest_url, session_id), "callId": call_id, "panels": list(panels),
              "maxEvents": FOCUS_MAX_EVENTS, "focusVersion": focus_version, "focusSource": focus_source}
    return f"<script>{(_COMMON_JS + _FOCUS_JS).replace('__CONFIG__', _script_json(config))}</script>"
