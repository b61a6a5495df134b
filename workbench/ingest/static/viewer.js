// Live viewer: JPEG frames over a WebSocket. window.viewerStats counts what was shown (for tests).
(function () {
  "use strict";
  const cfg = window.VIEWER_CONFIG;
  const img = document.getElementById("frame");
  const statusEl = document.getElementById("status");
  const stats = { framesShown: 0, distinctHashes: new Set(), connected: false };
  window.viewerStats = stats;
  let shownTimes = [];
  let currentUrl = null;
  let retryMs = 500;

  async function sha1Hex(buffer) {
    const digest = await crypto.subtle.digest("SHA-1", buffer);
    return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  function updateStatus() {
    const now = performance.now();
    shownTimes = shownTimes.filter((t) => now - t < 2000);
    const fps = shownTimes.length / 2;
    statusEl.textContent = (stats.connected ? "live" : "reconnecting") + " · " + fps.toFixed(1) + " fps · " +
      stats.framesShown + " frames";
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
      stats.framesShown += 1;
      shownTimes.push(performance.now());
      if (crypto.subtle) stats.distinctHashes.add(await sha1Hex(msg.data));
      updateStatus();
    };
    ws.onclose = () => {
      stats.connected = false;
      updateStatus();
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 5000);
    };
  }

  setInterval(updateStatus, 1000);
  connect();
})();
