// Live viewer: JPEG frames over a WebSocket, or (?mode=webrtc) the caller's video and audio relayed over WebRTC,
// plus talk-back when the session allows it (the dispatcher's microphone to the caller, a "Talk to caller" toggle).
// window.viewerStats counts what was shown and heard (for tests; distinctHashes up to 1000 different pictures).
// Each JPEG carries a COM segment "wb t_wall_ms=<ms> frame=<n>" (the frame's arrival at the ingest, wall clock):
// the viewer shows and keeps the stream's latency (ms from arrival at the ingest to display here; same machine or
// NTP-synchronised clocks) in viewerStats.latenciesMs (the newest 300).
(function () {
  "use strict";
  const cfg = window.VIEWER_CONFIG;
  const img = document.getElementById("frame");
  const statusEl = document.getElementById("status");
  const DISTINCT_HASHES_MAX = 1000;
  const stats = { framesShown: 0, distinctHashes: new Set(), connected: false, latenciesMs: [] };
  window.viewerStats = stats;
  let shownTimes = [];
  let currentUrl = null;
  let retryMs = 500;

  async function sha1Hex(buffer) {
    const digest = await crypto.subtle.digest("SHA-1", buffer);
    return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  // The COM segment right after SOI (0xFFD8 0xFFFE, 2-byte length), or null.
  function jpegComment(buffer) {
    const b = new Uint8Array(buffer, 0, Math.min(buffer.byteLength, 256));
    if (b.length < 6 || b[2] !== 0xff || b[3] !== 0xfe) return null;
    const len = (b[4] << 8) | b[5];
    return String.fromCharCode.apply(null, b.subarray(6, Math.min(4 + len, b.length)));
  }

  function percentile(values, p) {
    if (!values.length) return NaN;
    const sorted = values.slice().sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  }

  function updateStatus() {
    const now = performance.now();
    shownTimes = shownTimes.filter((t) => now - t < 2000);
    const fps = shownTimes.length / 2;
    const recent = stats.latenciesMs.slice(-50);
    const latency = recent.length ? " · latency p50 " + percentile(recent, 0.5).toFixed(0) + " ms, p95 " +
      percentile(recent, 0.95).toFixed(0) + " ms" : "";
    statusEl.textContent = (stats.connected ? "live" : "reconnecting") + " · " + fps.toFixed(1) + " fps · " +
      stats.framesShown + " frames" + latency;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + cfg.liveUrl);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { stats.connected = true; retryMs = 500; updateStatus(); };
    ws.onmessage = async (msg) => {
      if (!(msg.data instanceof ArrayBuffer)) return;
      const url = URL.createObjectURL(new Blob([msg.data], { type: "image/jpeg" }));
      img.src = url;
      if (currentUrl) URL.revokeObjectURL(currentUrl);
      currentUrl = url;
      const comment = jpegComment(msg.data);
      const m = comment && /t_wall_ms=([0-9.]+)/.exec(comment);
      if (m) {
        // Measured when the decoded image is about to be painted.
        const arrived = parseFloat(m[1]);
        img.decode().then(() => {
          stats.latenciesMs.push(Date.now() - arrived);
          if (stats.latenciesMs.length > 300) stats.latenciesMs.shift();
        }, () => {});
      }
      stats.framesShown += 1;
      shownTimes.push(performance.now());
      // Tests only need to see that pictures change: a bounded count, so an 8-hour shift does not grow the set.
      if (crypto.subtle && stats.distinctHashes.size < DISTINCT_HASHES_MAX) {
        stats.distinctHashes.add(await sha1Hex(msg.data));
      }
      updateStatus();
    };
    ws.onclose = () => {
      stats.connected = false;
      updateStatus();
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }

  // What the dispatcher can hear of the caller: the received audio's level (WebAudio, measured only, not played
  // twice) counted only while the <video> element actually plays it (not paused, not muted, volume up), because a
  // level on a muted element is heard by nobody. window.viewerStats.audio = {rms, heardMs, playing, muted}.
  const HEARD_RMS = 0.01;   // full scale 1.0; Opus silence measures ~0
  stats.audio = { rms: 0, heardMs: 0, playing: false, muted: false };

  function measureHeard(track, video) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    let ctx;
    try { ctx = new Ctx(); } catch (e) { return; }
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    let last = performance.now();
    const timer = setInterval(() => {
      if (track.readyState === "ended") { clearInterval(timer); ctx.close(); return; }
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
      const a = stats.audio;
      a.rms = Math.sqrt(sum / buf.length);
      a.playing = !video.paused && video.readyState >= 2;
      a.muted = video.muted || video.volume === 0;
      const now = performance.now();
      if (a.playing && !a.muted && a.rms > HEARD_RMS) a.heardMs += now - last;
      last = now;
    }, 50);
  }

  // The dispatcher's own mute (?dispatcher=1, the console's embed): each change is logged as console.audio
  // {state, reason: "dispatcher"} through the session's events endpoint, so time spent not hearing the caller is in
  // the log. Other viewers (a trainer watching) change only their own page. window.viewerStats.audio.logged counts
  // the changes the ingest accepted.
  const DISPATCHER = new URLSearchParams(location.search).get("dispatcher") === "1";
  stats.audio.logged = 0;

  function setCallerMuted(video, muted) {
    if (video.muted === muted) return;
    video.muted = muted;
    if (!muted) document.getElementById("unmute").hidden = true;
    const muteBtn = document.getElementById("mute");
    muteBtn.textContent = muted ? "Unmute caller" : "Mute caller";
    muteBtn.setAttribute("aria-pressed", String(muted));
    muteBtn.classList.toggle("on", muted);
    if (!DISPATCHER) return;
    fetch(cfg.eventsUrl, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ source: "console", type: "console.audio", call_id: cfg.callId,
        data: { state: muted ? "muted" : "unmuted", reason: "dispatcher" } }),
    }).then(async (resp) => {
      if (!resp.ok) throw new Error((await resp.json().catch(() => ({}))).error || ("HTTP " + resp.status));
      stats.audio.logged += 1;
    }).catch((err) => { statusEl.textContent = "Mute not logged: " + err.message; });
  }

  // ?mode=webrtc: the caller's video and audio relayed by the ingest over WebRTC (receive-only). Latency here is
  // what the browser reports (jitter buffer); glass-to-glass is measured by tests from a timestamp in the picture.
  async function connectWebrtc() {
    img.hidden = true;
    const video = document.getElementById("video");
    const unmute = document.getElementById("unmute");
    video.hidden = false;
    const pc = new RTCPeerConnection({ iceServers: [] });
    window.viewerPc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    const mic = cfg.talkback ? await openMicrophone() : null;
    // With talk-back the one audio transceiver carries both voices: the caller's to here, the dispatcher's to the
    // ingest (which passes it on only while the talk control is on).
    if (mic) pc.addTransceiver(mic, { direction: "sendrecv" });
    else pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (e) => {
      stream.addTrack(e.track);
      if (e.track.kind === "audio") measureHeard(e.track, video);
      // Once: every srcObject assignment reloads the element and aborts the play() before it (an AbortError that
      // is no autoplay refusal), and the one stream gets both tracks anyway.
      if (video.srcObject === stream) return;
      video.srcObject = stream;
      stats.autoplay = "pending";
      video.play().then(() => { stats.autoplay = "allowed"; }, (err) => {
        if (!err || err.name !== "NotAllowedError") return;
        // Autoplay with sound refused (no user activation reaches this frame): start muted, offer a button.
        stats.autoplay = "refused";
        video.muted = true;
        video.play().catch(() => {});
        unmute.hidden = false;
      });
    };
    unmute.onclick = () => setCallerMuted(video, false);
    if (DISPATCHER) {
      const muteBtn = document.getElementById("mute");
      muteBtn.hidden = false;
      muteBtn.onclick = () => setCallerMuted(video, !video.muted);
    }
    pc.onconnectionstatechange = () => {
      stats.connected = pc.connectionState === "connected";
      statusEl.textContent = "WebRTC " + pc.connectionState;
      if (mic) talkBtn.disabled = !stats.connected;
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") resolve(); };
      setTimeout(resolve, 2000);
    });
    const resp = await fetch(cfg.offerUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
    });
    const answer = await resp.json();
    if (!resp.ok) { statusEl.textContent = answer.error || "relay refused"; return; }
    await pc.setRemoteDescription(answer);
  }

  // --- Talk-back: the dispatcher's microphone to the caller (a toggle; each change is posted to the ingest, which
  // records it as dispatcher.talk and gates the voice). The microphone track is disabled (sends silence) while off.
  // For tests: window.viewerTalk = {microphone, on, changes, error}.
  const talkBtn = document.getElementById("talk");
  const talk = { microphone: false, on: false, changes: 0, error: "" };
  window.viewerTalk = talk;
  let micTrack = null;

  async function openMicrophone() {
    talkBtn.hidden = false;
    talkBtn.disabled = true;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
      micTrack = s.getAudioTracks()[0];
      micTrack.enabled = false;
      talk.microphone = true;
      talkBtn.onclick = () => setTalking(!talk.on);
      return micTrack;
    } catch (err) {
      talk.error = (err && err.name) || "Error";
      talkBtn.textContent = "Microphone blocked: allow it to talk to the caller";
      return null;
    }
  }

  async function setTalking(on) {
    talkBtn.disabled = true;
    try {
      const resp = await fetch(cfg.talkUrl, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ on: on }) });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(body.error || ("HTTP " + resp.status));
      talk.on = body.on;
      talk.changes += 1;
      talk.error = "";
      micTrack.enabled = talk.on;
      // A dispatcher who talks wants to hear the answer: this click is the gesture that lets the caller's sound play.
      const video = document.getElementById("video");
      if (talk.on && video.muted) setCallerMuted(video, false);
    } catch (err) {
      talk.error = err.message;
      statusEl.textContent = "Talk: " + err.message;
    } finally {
      talkBtn.disabled = !stats.connected;
      talkBtn.textContent = talk.on ? "Stop talking" : "Talk to caller";
      talkBtn.setAttribute("aria-pressed", String(talk.on));
      talkBtn.classList.toggle("on", talk.on);
    }
  }

  if (cfg.mode === "webrtc") {
    connectWebrtc();
  } else {
    setInterval(updateStatus, 1000);
    connect();
  }
})();
