// Caller page: consent, camera + microphone over WebRTC to the ingest (automatic reconnect), front/back camera
// switch, photos (camera or several from the gallery), optional location, hang-up. Reports its own steps to the
// ingest as caller events (POST cfg.eventsUrl; types caller.permission, caller.geolocation, caller.camera_switched,
// caller.connection, declared in workbench/domain/events.py).
// The dispatcher's prompts (send a photo, switch camera, end the video) arrive by long poll after consent and show
// as a banner with the matching action.
//
// For tests it exposes window.callerStatus: "consent", "starting", "camera-denied", "camera-error", "connecting",
// "connected", "reconnecting", "failed", "ended"; window.callerAttempt (offers sent), window.photosSent,
// window.facingMode and window.callerLocation, window.promptsShown and window.promptShown, and
// window.talkbackStats (the dispatcher's voice, when the session has talk-back: tracks received, level measured
// with WebAudio: rms, peakRms, loudMs).
(function () {
  "use strict";
  const cfg = window.CALLER_CONFIG;
  const $ = (id) => document.getElementById(id);
  const statusEl = $("status"), preview = $("preview"), startBtn = $("start"), endBtn = $("end");
  const switchBtn = $("switch-camera"), locationBtn = $("share-location"), locationMsg = $("location-msg");
  const photoMsg = $("photo-msg");
  const ICE_GATHER_TIMEOUT_MS = 3000;   // send the offer with what was gathered by then
  const DISCONNECT_GRACE_MS = 3000;     // "disconnected" this long -> reconnect (ICE may recover by itself first)
  const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 10000];
  // An answered offer that has not connected after this long is tried again; after MAX_UNCONNECTED such offers
  // in a row the page gives up and asks the caller (ICE cannot work here: a firewall, or only mDNS candidates).
  // Tests may lower the timeout with window.CALLER_CONNECT_TIMEOUT_MS before the page's script runs.
  const CONNECT_TIMEOUT_MS = window.CALLER_CONNECT_TIMEOUT_MS || 20000;
  const MAX_UNCONNECTED = 3;
  let pc = null, stream = null, ended = false, attempt = 0, retries = 0, unconnected = 0;
  let facing = "environment", reconnectTimer = null, connecting = false;
  // Live video only in a video call; photo and audio-only calls share the microphone (and photos) only.
  const wantVideo = cfg.modality === "video";
  window.callerAttempt = 0;
  window.photosSent = 0;

  function setStatus(status, text, kind) {
    window.callerStatus = status;
    statusEl.textContent = text;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  function report(type, data) {
    // Best effort: a lost report must never disturb the call.
    return fetch(cfg.eventsUrl, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: type, data: data }) }).catch(() => undefined);
  }

  // --- The dispatcher's voice (talk-back): the ingest answers the microphone's transceiver with an audio track
  // that carries the dispatcher while the dispatcher's talk control is on (silence otherwise). It plays through an
  // <audio> element; an AnalyserNode measures its level for the "control room is speaking" sign.
  const SPEAKING_RMS = 0.01;   // full scale 1.0; the silence the ingest sends measures 0
  const talkback = { tracks: 0, playing: false, rms: 0, peakRms: 0, loudMs: 0 };
  window.talkbackStats = talkback;
  let audioCtx = null;

  function prepareAudio() {
    // Called inside the consent click: browsers start sound (and an AudioContext) only after a user gesture.
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx && !audioCtx) { try { audioCtx = new Ctx(); } catch (e) { audioCtx = null; } }
  }

  function playDispatcher(track) {
    talkback.tracks += 1;
    const media = new MediaStream([track]);
    const el = $("dispatcher-audio");
    el.srcObject = media;
    el.play().then(() => { talkback.playing = true; }, () => { talkback.playing = false; });
    if (!audioCtx) return;
    if (audioCtx.state === "suspended") audioCtx.resume();
    const analyser = audioCtx.createAnalyser();
    analyser.fftSize = 2048;
    audioCtx.createMediaStreamSource(media).connect(analyser);   // measured only, not played twice
    const buf = new Float32Array(analyser.fftSize);
    const sign = $("dispatcher-speaking");
    let last = performance.now();
    const timer = setInterval(() => {
      if (track.readyState === "ended" || ended) { clearInterval(timer); sign.hidden = true; return; }
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
      const rms = Math.sqrt(sum / buf.length);
      const now = performance.now();
      talkback.rms = rms;
      talkback.peakRms = Math.max(talkback.peakRms, rms);
      if (rms > SPEAKING_RMS) talkback.loudMs += now - last;
      last = now;
      sign.hidden = rms <= SPEAKING_RMS;
    }, 100);
  }

  function connectionEvent(state) { report("caller.connection", { state: state, attempt: Math.max(attempt, 1) }); }

  function waitForIceGathering(peer) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ICE_GATHER_TIMEOUT_MS);
      peer.addEventListener("icegatheringstatechange", () => {
        if (peer.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  function videoConstraints(mode) {
    // No width/height: a phone then sends its camera's own orientation (portrait stays portrait).
    return { facingMode: { ideal: mode } };
  }

  function showPreview() {
    $("video-wrap").hidden = !stream.getVideoTracks().length;
    preview.srcObject = stream;
    const v = stream.getVideoTracks()[0];
    const reported = v && v.getSettings ? (v.getSettings().facingMode || "") : "";
    preview.classList.toggle("mirrored", reported === "user"); // a selfie preview reads like a mirror
    window.facingMode = reported || facing;
  }

  class OfferRefused extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function connect() {
    if (pc) { const old = pc; pc = null; old.close(); }
    attempt += 1;
    window.callerAttempt = attempt;
    const peer = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
    pc = peer;
    for (const track of stream.getTracks()) peer.addTrack(track, stream);
    peer.addEventListener("connectionstatechange", () => onConnectionState(peer));
    peer.addEventListener("track", (e) => { if (e.track.kind === "audio") playDispatcher(e.track); });
    await peer.setLocalDescription(await peer.createOffer());
    await waitForIceGathering(peer);
    const resp = await fetch(cfg.offerUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      // talkback: this page plays the dispatcher's voice when the session has talk-back (it listens on "track").
      body: JSON.stringify({ sdp: peer.localDescription.sdp, type: peer.localDescription.type, talkback: true }),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new OfferRefused(resp.status, body.error || ("HTTP " + resp.status));
    if (peer !== pc || ended) return;
    await peer.setRemoteDescription(body);
    setTimeout(() => {
      if (ended || peer !== pc || peer.connectionState === "connected") return;
      unconnected += 1;
      if (unconnected >= MAX_UNCONNECTED) {
        const old = pc; pc = null; old.close();
        setStatus("failed", "Could not connect to the control room (the network may block video calls). Tell the control room, or tap \u201c" + startBtn.textContent + "\u201d to try again.", "error");
        connectionEvent("failed");
        startBtn.hidden = false;
      } else {
        scheduleReconnect(0);
      }
    }, CONNECT_TIMEOUT_MS);
  }

  function onConnectionState(peer) {
    if (ended || peer !== pc) return;
    const s = peer.connectionState;
    if (s === "connected") {
      retries = 0; unconnected = 0;
      clearTimeout(reconnectTimer); reconnectTimer = null;
      setStatus("connected", wantVideo ? "Connected: the control room can see and hear you." : "Connected: the control room can hear you.", "ok");
      switchBtn.disabled = !stream || !stream.getVideoTracks().length;
      connectionEvent("connected");
    } else if (s === "disconnected") {
      setStatus("reconnecting", "Connection unstable, trying to recover…", "warn");
      connectionEvent("disconnected");
      scheduleReconnect(DISCONNECT_GRACE_MS);
    } else if (s === "failed") {
      scheduleReconnect(0);
    }
  }

  function scheduleReconnect(delayMs) {
    if (ended || reconnectTimer) return;
    reconnectTimer = setTimeout(() => { reconnectTimer = null; reconnect(); }, delayMs);
  }

  async function reconnect() {
    if (ended || connecting) return;
    if (pc && pc.connectionState === "connected") return; // recovered by itself
    setStatus("reconnecting", "Connection lost. Reconnecting…", "warn");
    connectionEvent("reconnecting");
    await tryConnect();
  }

  async function tryConnect() {
    connecting = true;
    try {
      await connect();
    } catch (err) {
      if (err instanceof OfferRefused && err.status === 410) return finish("The call has ended. If you still need help, call 112 again.");
      if (err instanceof OfferRefused && err.status < 500) {
        setStatus("failed", "Could not connect: " + err.message, "error");
        connectionEvent("failed");
        startBtn.hidden = false;
        return;
      }
      // The network is down or the server is unreachable: keep trying, more slowly.
      const delay = RETRY_DELAYS_MS[Math.min(retries, RETRY_DELAYS_MS.length - 1)];
      retries += 1;
      setStatus("reconnecting", "No connection to the control room. Trying again in " + Math.round(delay / 1000) + " s…", "warn");
      scheduleReconnect(delay);
    } finally {
      connecting = false;
    }
  }

  async function start() {
    startBtn.hidden = true;
    setStatus("starting", "Asking for your camera and microphone…");
    const t0 = performance.now();
    const permission = wantVideo ? "camera_microphone" : "microphone";
    if (!stream) {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        setStatus("camera-error", "This browser cannot share a camera here (it needs a secure https:// link). You can still send photos.", "error");
        report("caller.permission", { permission: permission, outcome: "error", error_name: "NoMediaDevices", ms_since_page_load: t0 });
        return;
      }
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: wantVideo ? videoConstraints(facing) : false, audio: true });
      } catch (err) {
        const name = (err && err.name) || "Error";
        const denied = name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError";
        report("caller.permission", { permission: permission, outcome: denied ? "denied" : "error", error_name: name,
          ms_since_page_load: performance.now() });
        setStatus(denied ? "camera-denied" : "camera-error",
          denied
            ? "Camera or microphone access was blocked. Allow the camera for this site in your browser settings (the camera icon in the address bar), then tap \u201c" + startBtn.textContent + "\u201d. You can still send photos."
            : "Your camera or microphone could not be started (" + name + "). Close other apps that use the camera, then tap \u201c" + startBtn.textContent + "\u201d. You can still send photos.",
          "error");
        startBtn.hidden = false;
        return;
      }
      report("caller.permission", { permission: permission, outcome: "granted", error_name: "",
        ms_since_page_load: performance.now() });
      showPreview();
    }
    setStatus("connecting", "Connecting to the control room…");
    await tryConnect();
  }

  async function switchCamera() {
    if (!stream || !stream.getVideoTracks().length) return;
    switchBtn.disabled = true;
    const next = facing === "environment" ? "user" : "environment";
    const old = stream.getVideoTracks()[0];
    let track = null;
    // Many phones cannot open both cameras at once: release the current one first.
    old.stop();
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: videoConstraints(next) });
      track = s.getVideoTracks()[0];
      facing = next;
    } catch (err) {
      const s = await navigator.mediaDevices.getUserMedia({ video: videoConstraints(facing) }).catch(() => null);
      track = s ? s.getVideoTracks()[0] : null;
    }
    if (track) {
      stream.removeTrack(old);
      stream.addTrack(track);
      const sender = pc && pc.getSenders().find((x) => x.track === old || (x.track && x.track.kind === "video"));
      if (sender) await sender.replaceTrack(track); // no renegotiation: the control room keeps the same stream
      showPreview();
    }
    const ok = !!track && facing === next;
    const reported = track && track.getSettings ? (track.getSettings().facingMode || "") : "";
    report("caller.camera_switched", { facing_mode: next, reported_facing_mode: reported, ok: ok });
    window.cameraSwitches = (window.cameraSwitches || 0) + 1;
    switchBtn.disabled = false;
    if (!ok) photoMsg.textContent = "The other camera could not be started.";
  }

  function shareLocation() {
    if (!navigator.geolocation) { locationMsg.textContent = "This browser cannot share a location."; return; }
    locationBtn.disabled = true;
    locationMsg.textContent = "Finding your location…";
    navigator.geolocation.getCurrentPosition((pos) => {
      const c = pos.coords;
      report("caller.permission", { permission: "geolocation", outcome: "granted", error_name: "", ms_since_page_load: performance.now() });
      report("caller.geolocation", { latitude: c.latitude, longitude: c.longitude, accuracy_m: c.accuracy || 0,
        age_ms: Math.max(0, Date.now() - pos.timestamp) });
      window.callerLocation = { latitude: c.latitude, longitude: c.longitude, accuracy: c.accuracy };
      locationMsg.textContent = "\u2714 Location shared (within about " + Math.round(c.accuracy || 0) + " m).";
      locationBtn.disabled = false;
    }, (err) => {
      const names = { 1: "PERMISSION_DENIED", 2: "POSITION_UNAVAILABLE", 3: "TIMEOUT" };
      const name = names[err.code] || "ERROR";
      report("caller.permission", { permission: "geolocation", outcome: err.code === 1 ? "denied" : "error", error_name: name,
        ms_since_page_load: performance.now() });
      locationMsg.textContent = err.code === 1
        ? "Location not shared: access was blocked. Tell the control room where you are."
        : "Your location could not be found. Tell the control room where you are.";
      locationBtn.disabled = false;
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 });
  }

  async function sendPhotos(input) {
    const files = Array.from(input.files || []);
    if (!files.length) return;
    const form = new FormData();
    for (const f of files) form.append("photo", f, f.name);
    photoMsg.textContent = "Sending " + files.length + (files.length === 1 ? " photo…" : " photos…");
    try {
      const resp = await fetch(cfg.photosUrl, { method: "POST", body: form });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(body.error || ("HTTP " + resp.status));
      window.photosSent += body.photos.length;
      photoMsg.textContent = "\u2714 " + body.photos.length + (body.photos.length === 1 ? " photo" : " photos") + " sent to the control room.";
    } catch (err) {
      photoMsg.textContent = "Photo not sent: " + err.message;
    }
    input.value = "";
  }

  function finish(text) {
    ended = true;
    clearTimeout(reconnectTimer);
    if (pc) { pc.close(); pc = null; }
    if (stream) stream.getTracks().forEach((t) => t.stop());
    preview.srcObject = null;
    endBtn.disabled = true; startBtn.hidden = true; switchBtn.disabled = true;
    // The link no longer accepts anything: leave only the message.
    $("video-wrap").hidden = true; $("controls").hidden = true; endBtn.hidden = true;
    $("prompt").hidden = true;
    setStatus("ended", text);
  }

  async function hangUp() {
    if (ended) return;
    ended = true;
    try { await fetch(cfg.hangupUrl, { method: "POST" }); } catch (e) { /* the call ends anyway */ }
    finish("Video ended. Thank you. Stay on the phone with the control room.");
  }

  // --- The dispatcher's prompts (GET <link>/prompts?after=N, a long poll: the server answers within ~25 s) ---------
  // One request in flight; errors back off; stops when the call ends (410) or the link is not this browser's.
  // Each prompt is shown as a banner with its one action; further prompts wait their turn. For tests:
  // window.promptsShown (prompt ids shown, in order) and window.promptShown (the id on screen, or 0).
  const PROMPT_RETRY_MS = [1000, 2000, 4000, 8000, 15000];
  const PROMPT_FETCH_TIMEOUT_MS = 40000;   // longer than the server's 25 s wait
  const promptsUrl = cfg.offerUrl.replace(/\/offer$/, "/prompts");
  const promptBox = $("prompt"), promptText = $("prompt-text"), promptAction = $("prompt-action");
  const promptQueue = [];
  let promptsPolling = false, lastPromptId = 0, promptOnScreen = null;
  window.promptsShown = [];
  window.promptShown = 0;

  function promptWording(item) {
    const hasVideo = !!(stream && stream.getVideoTracks().length);
    if (item.prompt === "photo") return ["Please send a photo of what you see.", "Send a photo"];
    if (item.prompt === "switch_camera") {
      return hasVideo ? ["Please switch to your other camera.", "Switch camera"]
                      : ["The control room asked you to switch camera, but no camera is in use.", "OK"];
    }
    return ["Please end the video now. Stay on the phone with the control room.", wantVideo ? "End video" : "End"];
  }

  function showNextPrompt() {
    promptOnScreen = ended ? null : (promptQueue.shift() || null);
    window.promptShown = promptOnScreen ? promptOnScreen.prompt_id : 0;
    promptBox.hidden = !promptOnScreen;
    if (!promptOnScreen) return;
    const [text, action] = promptWording(promptOnScreen);
    promptText.textContent = promptOnScreen.message || text;
    promptAction.textContent = action;
    window.promptsShown.push(promptOnScreen.prompt_id);
    promptBox.scrollIntoView({ block: "nearest" });
  }

  function onPromptAction() {
    const item = promptOnScreen;
    if (!item) return;
    showNextPrompt();
    // The actions are the page's own buttons: their events (photo received, camera switched, call ended) follow.
    if (item.prompt === "photo") $("photo-input").click();   // inside the click: the browser allows the picker
    else if (item.prompt === "switch_camera") { if (stream && stream.getVideoTracks().length) switchCamera(); }
    else if (item.prompt === "end_video") hangUp();
  }

  async function pollPrompts() {
    if (promptsPolling) return;   // one loop, one request in flight
    promptsPolling = true;
    let failures = 0;
    while (!ended) {
      let delay = 0;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), PROMPT_FETCH_TIMEOUT_MS);
      try {
        const resp = await fetch(promptsUrl + "?after=" + lastPromptId, { signal: abort.signal, cache: "no-store" });
        if (resp.status === 410) { if (!ended) finish("The call has ended. If you still need help, call 112 again."); break; }
        if (resp.status === 404 || resp.status === 409) break;   // not this browser's link: nothing will come
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        const body = await resp.json();
        failures = 0;
        for (const item of body.prompts || []) {
          lastPromptId = Math.max(lastPromptId, item.prompt_id);
          const same = (promptOnScreen && promptOnScreen.prompt === item.prompt) || promptQueue.some((q) => q.prompt === item.prompt);
          if (!same) promptQueue.push(item);
        }
        if (!promptOnScreen) showNextPrompt();
      } catch (err) {
        delay = PROMPT_RETRY_MS[Math.min(failures, PROMPT_RETRY_MS.length - 1)];
        failures += 1;
      } finally {
        clearTimeout(timer);
      }
      if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
    }
    promptsPolling = false;
  }

  promptAction.addEventListener("click", onPromptAction);
  $("prompt-dismiss").addEventListener("click", showNextPrompt);

  if (!wantVideo) {
    $("consent-accept").textContent = "I agree: continue";
    switchBtn.hidden = true;
    endBtn.textContent = "End";
    startBtn.textContent = "Start microphone";
  }
  $("consent-accept").addEventListener("click", () => {
    prepareAudio();
    $("consent").hidden = true;
    $("main").hidden = false;
    start();
    pollPrompts();
  });
  startBtn.addEventListener("click", () => {
    startBtn.hidden = true; unconnected = 0;
    if (stream) { setStatus("connecting", "Connecting to the control room…"); tryConnect(); } else start();
  });
  switchBtn.addEventListener("click", switchCamera);
  locationBtn.addEventListener("click", shareLocation);
  endBtn.addEventListener("click", hangUp);
  $("photo-input").addEventListener("change", (e) => sendPhotos(e.target));
  $("gallery-input").addEventListener("change", (e) => sendPhotos(e.target));
  window.addEventListener("online", () => { if (!ended && stream && (!pc || pc.connectionState !== "connected")) scheduleReconnect(0); });
  window.callerStatus = "consent";
})();
