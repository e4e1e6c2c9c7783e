/**
 * The bench page's module (served as /bench.js beside noVNC's own ES modules at /novnc/): opens noVNC
 * sessions through a URL (with the grant token as the first message for the gateway, none for the
 * plain relay) and measures what the viewer shows by reading its canvas.
 */
export const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>bench</title></head>
<body style="margin:0;background:#000"><script type="module" src="/bench.js"></script></body></html>`;

export const PAGE_JS = `
import RFB from '/novnc/core/rfb.js';
const sessions = [];
const yieldOnce = () => new Promise((r) => { const c = new MessageChannel(); c.port1.onmessage = () => r(); c.port2.postMessage(0); });
const pixel = (i) => {
  const canvas = sessions[i].target.querySelector('canvas');
  return Array.from(canvas.getContext('2d').getImageData(5, 5, 1, 1).data.slice(0, 3)).join(',');
};
window.openSession = (url, token) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const target = document.createElement('div');
  target.style.cssText = 'width:320px;height:240px;display:inline-block';
  document.body.append(target);
  const start = () => {
    const rfb = new RFB(target, ws, { shared: true });
    rfb.scaleViewport = true;
    rfb.addEventListener('connect', () => resolve(sessions.push({ rfb, target }) - 1));
    rfb.addEventListener('disconnect', (e) => reject(new Error('disconnected: ' + JSON.stringify(e.detail))));
  };
  if (!token) return start();
  ws.addEventListener('open', () => ws.send(JSON.stringify({ token, mode: 'tcp' })), { once: true });
  ws.addEventListener('message', function first() { ws.removeEventListener('message', first); start(); });
  ws.addEventListener('close', (e) => reject(new Error('closed ' + e.code + ' ' + e.reason)));
});
// Distinct pictures the canvas showed per second while the desktop changes as fast as it can.
window.framesPerSecond = async (i, ms) => {
  let last = pixel(i), changes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await yieldOnce();
    const p = pixel(i);
    if (p !== last) { changes++; last = p; }
  }
  return changes / (ms / 1000);
};
// A key to the desktop, and the time until the canvas shows the desktop's answer (a new colour).
window.keyEcho = async (i, timeoutMs) => {
  const before = pixel(i);
  const t0 = performance.now();
  sessions[i].rfb.sendKey(0x61, 'KeyA', true);
  sessions[i].rfb.sendKey(0x61, 'KeyA', false);
  while (performance.now() - t0 < timeoutMs) {
    await yieldOnce();
    if (pixel(i) !== before) return performance.now() - t0;
  }
  return null;
};
window.closeAll = () => { for (const s of sessions.splice(0)) { s.rfb.disconnect(); s.target.remove(); } };
window.benchReady = true;
`;
