/**
 * The HTTPS WebSocket tunnel's wire (ADR 0017; docs/gateway-tunnel.md), shared by the gateway, the
 * CLI's `connect --tunnel` and, later, the browser clients.
 *
 * `GET /tunnel` upgrades to a WebSocket. The client's first message is a text frame
 * `{"token":"…"}` — never a URL parameter, which proxies and access logs record. The gateway answers
 * `{"ok":true}` once the grant is admitted and the workstation connected; after that both ways carry
 * the TCP stream as binary frames. A refusal is a close with a 4xxx code and the reason in plain
 * words (a close reason holds at most 123 bytes).
 */
export const TUNNEL_PATH = '/tunnel';
export const TUNNEL_HEALTH_PATH = '/healthz';

export const TUNNEL_CLOSE = {
  /** The first message was not `{"token":"…"}`. */
  badRequest: 4400,
  /** The admission refused the grant (unknown, used, another address, expired, fail closed…). */
  refused: 4403,
  /** No first message in time. */
  timeout: 4408,
  /** The session was closed by the gateway: the broker revoked the grant, a session cap, shutdown. */
  closed: 4410,
  /** The workstation did not accept the connection. */
  targetUnreachable: 4502,
} as const;

/** The longest close reason a WebSocket carries (125-byte control frame less the 2-byte code). */
export const CLOSE_REASON_MAX_BYTES = 123;

/** A close reason cut to what fits, on a character boundary (the web console uses this too: no Buffer). */
export function closeReason(text: string): string {
  const encoder = new TextEncoder();
  const chars = Array.from(text);
  while (encoder.encode(chars.join('')).length > CLOSE_REASON_MAX_BYTES) chars.pop();
  return chars.join('');
}
