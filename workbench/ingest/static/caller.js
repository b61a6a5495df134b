// Caller page: camera + microphone over WebRTC to the ingest, photo upload, hang-up.
// Exposes window.callerStatus ("starting", "camera-denied", "connecting", "connected", "failed", "ended") for tests.
(function () {
  "use strict";
  const cfg = window.CALLER_CONFIG;
  const statusEl = document.getElementById("status");
  const preview = document.getElementById("preview");
  const photoInput = document.getElementById("photo-input");
  const photoMsg = document.getElementById("photo-msg");
  const startBtn = document.getElementById("start");
  const endBtn = document.getElementById("end");
  const ICE_GATHER_TIMEOUT_MS = 3000;
  let pc = null;
  let stream = null;
  let ended = false;

  function setStatus(status, text, kind) {
    window.callerStatus = status;
    statusEl.textContent = text;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  function waitForIceGathering(peer) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ICE_GATHER_TIMEOUT_MS);
      peer.addEventListener("icegatheringstatechange", () => {
        if (peer.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  async function getMedia() {
    const wantVideo = cfg.modality !== "audio";
    return navigator.mediaDevices.getUserMedia({
      video: wantVideo ? { width: 640, height: 480 } : false,
      audio: true,
    });
  }

  async function connect() {
    if (pc) { pc.close(); pc = null; }
    setStatus("connecting", "Connecting to the control room…");
    pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
    const peer = pc;
    for (const track of stream.getTracks()) peer.addTrack(track, stream);
    peer.addEventListener("connectionstatechange", () => {
      if (ended || peer !== pc) return;
      const s = peer.connectionState;
      if (s === "connected") setStatus("connected", "Connected: the control room can see and hear you.", "ok");
      else if (s === "failed") {
        setStatus("failed", "The connection was lost. Tap \u201cStart video\u201d to try again.", "error");
        startBtn.hidden = false;
      } else if (s === "disconnected") setStatus("connecting", "Connection unstable, trying to recover…");
    });
    await peer.setLocalDescription(await peer.createOffer());
    await waitForIceGathering(peer);
    const resp = await fetch(cfg.offerUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: peer.localDescription.sdp, type: peer.localDescription.type }),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.error || ("HTTP " + resp.status));
    await peer.setRemoteDescription(body);
  }

  async function start() {
    startBtn.hidden = true;
    setStatus("starting", "Asking for your camera and microphone…");
    try {
      if (!stream) {
        stream = await getMedia();
        preview.srcObject = stream;
      }
    } catch (err) {
      const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      setStatus(
        denied ? "camera-denied" : "camera-error",
        denied
          ? "Camera or microphone access was blocked. Allow access in your browser settings, then tap \u201cStart video\u201d. You can still send photos."
          : "Your camera or microphone could not be started (" + err.name + "). You can still send photos.",
        "error");
      startBtn.hidden = false;
      return;
    }
    try {
      await connect();
    } catch (err) {
      setStatus("failed", "Could not connect: " + err.message + ". Tap \u201cStart video\u201d to try again.", "error");
      startBtn.hidden = false;
    }
  }

  async function sendPhotos() {
    const files = Array.from(photoInput.files || []);
    if (!files.length) return;
    const form = new FormData();
    for (const f of files) form.append("photo", f, f.name);
    photoMsg.textContent = "Sending " + files.length + " photo(s)…";
    try {
      const resp = await fetch(cfg.photosUrl, { method: "POST", body: form });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(body.error || ("HTTP " + resp.status));
      window.photosSent = (window.photosSent || 0) + body.photos.length;
      photoMsg.textContent = "\u2714 " + body.photos.length + " photo(s) sent to the control room.";
    } catch (err) {
      photoMsg.textContent = "Photo not sent: " + err.message;
    }
    photoInput.value = "";
  }

  async function hangUp() {
    ended = true;
    try { await fetch(cfg.hangupUrl, { method: "POST" }); } catch (e) { /* the call ends anyway */ }
    if (pc) { pc.close(); pc = null; }
    if (stream) { stream.getTracks().forEach((t) => t.stop()); }
    endBtn.disabled = true; startBtn.hidden = true;
    setStatus("ended", "Video ended. Thank you.");
  }

  startBtn.addEventListener("click", start);
  endBtn.addEventListener("click", hangUp);
  photoInput.addEventListener("change", sendPhotos);
  window.callerStatus = "starting";
  start();
})();
