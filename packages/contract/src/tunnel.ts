/**
 * The HTTPS WebSocket tunnel's wire (ADR 0017; docs/gateway-tunnel.md), shared by the gateway, the
 * CLI's `connect --tunnel` and, later, the browser clients.
 *
 * `GET /tunnel` upgrades to a WebSocket. The client's first message is a text frame
 * `{"token":"…","mode":"tcp"}` — never a URL parameter, which proxies and access logs record. `mode`
 * (optional, default `tcp`) picks what the gateway does with the admitted grant (TUNNEL_MODES). In
 * `tcp` mode the gateway answers `{"ok":true}` once the grant is admitted and the workstation
 * connected; after that both ways carry the TCP stream as binary frames. The browser modes define
 * their own messages after the admission (apps/gateway/src/browser/). A refusal is a close with a 4xxx code and the reason in plain
 * words (a close reason holds at most 123 bytes).
 */
export const TUNNEL_PATH = '/tunnel';

/**
 * The tunnel's native mode (ADR 0032), for `stagedoor connect --tunnel`: on the same port, a client
 * that offers this ALPN protocol skips HTTP and the WebSocket. TLS 1.3 with AES-GCM; the client's first
 * application data is one line `{"token":"…"}\n`, and it sends nothing more until the gateway answers
 * with one line: `{"ok":true}\n`, after which the connection carries the workstation's TCP stream
 * itself, or `{"ok":false,"code":<a TUNNEL_CLOSE code>,"message":"…"}\n` and the end of the connection.
 * A gateway that does not select it (an older one, or a proxy that inspects TLS) gets the WebSocket.
 */
export const TUNNEL_NATIVE_ALPN = 'stagedoor-tcp/1';
/** The longest first message of either wire: the WebSocket's first frame, the native mode's line (newline included) or answer. */
export const TUNNEL_NATIVE_MAX_LINE = 1024;
export const TUNNEL_HEALTH_PATH = '/healthz';

/**
 * What a tunnel carries after the admission (ADR 0028):
 * - `tcp`: the workstation's TCP stream as binary frames (native clients through `stagedoor connect
 *   --tunnel`, and noVNC in the browser, which speaks RFB itself);
 * - `ssh-terminal`: the gateway is the SSH client and the browser shows a terminal (xterm.js);
 * - `rdcleanpath`: the RDCleanPath handshake of IronRDP's web client, then the RDP stream.
 */
export const TUNNEL_MODES = ['tcp', 'ssh-terminal', 'rdcleanpath'] as const;
export type TunnelMode = (typeof TUNNEL_MODES)[number];

/** The client's first message. Fields other than these are the mode's own options (e.g. a terminal's size). */
export interface TunnelFirstMessage {
  token: string;
  /** Default `tcp`. */
  mode?: TunnelMode;
  [option: string]: unknown;
}

export const TUNNEL_CLOSE = {
  /** The first message was not `{"token":"…"}`, or named a mode this gateway does not offer. */
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

/**
 * A text frame after the answer (the tunnel carries a byte stream in binary frames): closed with 1003
 * (RFC 6455 "unsupported data") and these words, by Node's relay and the relay threads alike.
 */
export const TUNNEL_TEXT_FRAME_CLOSE = { code: 1003, reason: 'this tunnel carries binary frames only' } as const;

/** The longest close reason a WebSocket carries (125-byte control frame less the 2-byte code). */
export const CLOSE_REASON_MAX_BYTES = 123;

/** A close reason cut to what fits, on a character boundary (the web console uses this too: no Buffer). */
export function closeReason(text: string): string {
  const encoder = new TextEncoder();
  const chars = Array.from(text);
  while (encoder.encode(chars.join('')).length > CLOSE_REASON_MAX_BYTES) chars.pop();
  return chars.join('');
}
