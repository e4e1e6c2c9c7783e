import { TUNNEL_CLOSE } from '@stagedoor/contract/tunnel';
import type { BrowserSession } from '../api/types.ts';
import type { SessionEnd } from './viewer.ts';

/**
 * Open the gateway's tunnel for a browser session: the token goes in the first message, never in the
 * URL (proxies and access logs record URLs). Binary frames arrive as ArrayBuffers, as noVNC and
 * IronRDP expect.
 */
export function openTunnel(session: BrowserSession, options: Record<string, unknown> = {}): WebSocket {
  const ws = new WebSocket(session.url);
  ws.binaryType = 'arraybuffer';
  ws.addEventListener('open', () => ws.send(JSON.stringify({ ...options, token: session.token, mode: session.mode })), { once: true });
  return ws;
}

/** What the page says when the tunnel closed: the gateway's close codes (packages/contract/src/tunnel.ts) in words. */
export function describeClose(close: { code: number; reason: string }, ctx: { opened: boolean; byUser: boolean; url: string }): SessionEnd {
  const reason = close.reason.trim();
  const sentence = (s: string) => (s ? s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.') : '');
  if (ctx.byUser) return { title: 'Disconnected', detail: 'You ended this session. Your desktop keeps running until it is released.', canRetry: true };
  switch (close.code) {
    case TUNNEL_CLOSE.refused:
      return { title: 'The gateway refused this session', detail: sentence(reason || 'this connection grant cannot be used: connect again from your Stagedoor portal') };
    case TUNNEL_CLOSE.closed:
      return { title: 'The session was closed', detail: sentence(reason || 'this connection was closed: connect again from your Stagedoor portal') };
    case TUNNEL_CLOSE.timeout:
    case TUNNEL_CLOSE.badRequest:
      return { title: 'The gateway did not accept this session', detail: sentence(reason || 'connect again from your Stagedoor portal') };
    case TUNNEL_CLOSE.targetUnreachable:
      return { title: 'The desktop did not answer', detail: sentence(reason || 'try again shortly'), canRetry: true };
    case 1000:
      return { title: 'The desktop ended the session', detail: sentence(reason || 'the desktop closed the connection'), canRetry: true };
  }
  if (!ctx.opened) {
    const gateway = ctx.url.replace(/^wss:/, 'https:').replace(/\/tunnel$/, '/healthz');
    return {
      title: 'The gateway could not be reached',
      detail: `This browser could not open ${ctx.url}. If the gateway uses a certificate this browser does not trust yet (a self-signed one, as with stagedoor dev), open ${gateway} in this browser once, accept the certificate, and try again.`,
      canRetry: true,
    };
  }
  return { title: 'The connection to the gateway was lost', detail: 'The network dropped, or the gateway restarted. Try again; your desktop keeps running.', canRetry: true };
}
