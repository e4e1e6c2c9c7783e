import type { TunnelMode } from '@stagedoor/contract';
import type { WebSocket } from 'ws';
import type { Log } from '../log.ts';
import { REFUSAL_MESSAGES, type Admitted } from '../routed/admission.ts';

/** How a tunnel session ended, as the broker's session report carries it. */
export interface TunnelOutcome {
  reason: string;
  bytesUp: number;
  bytesDown: number;
}

/** A frame the client sent after its first message and before the mode took over. */
export interface EarlyFrame {
  data: Buffer;
  isBinary: boolean;
}

/**
 * What a tunnel mode other than `tcp` receives (ADR 0028): an admitted grant — the admitter has
 * already checked the token, the client address and the connect-by time, claimed the grant with the
 * broker and reported the session's start, exactly as for the tcp relay and the native routed modes.
 *
 * The mode must:
 * - connect only to `admitted.target`;
 * - send the client its own "ready" message when it is (the tcp relay sends `{"ok":true}`);
 * - register `admitted.onClose` and, when it fires (the broker revoked the grant: the desktop was
 *   released, an admin's Disconnect, a session cap, shutdown), close the workstation side and the
 *   WebSocket with `TUNNEL_CLOSE.closed` and `closeMessageFor(why)` at once;
 * - call `ended` exactly once, when both sides are closed, with the byte counts (`admitted.countBytes`
 *   lets the heartbeat read them while it runs), so that power-plan activity and audit see a browser
 *   session as they see a native one.
 */
export interface ModeSession {
  ws: WebSocket;
  admitted: Admitted;
  /** The first message's fields other than `token` and `mode` (e.g. a terminal's cols and rows). */
  options: Record<string, unknown>;
  /** Frames that came before the mode listened, in order; also stops the server's own listener. Call once, synchronously. */
  takeEarly: () => EarlyFrame[];
  /** A child log with the client, the grant and the mode. */
  log: Log;
  /** TCP connect to the workstation gives up after this long. */
  connectTimeoutMs: number;
  /** Stop reading one side while the other has this much queued. */
  highWaterMark: number;
  /** The session is over: report it to the broker and log it. Later calls are ignored. */
  ended: (outcome: TunnelOutcome) => void;
}

export type ModeHandler = (session: ModeSession) => void;

/** The modes a gateway offers beyond `tcp`; a mode without a handler is refused before admission. */
export type ModeHandlers = Partial<Record<Exclude<TunnelMode, 'tcp'>, ModeHandler>>;

/** The close reason a revoke (`onClose`'s reason, `revoked: <the broker's reason>`) becomes: plain words for the user. */
export function closeMessageFor(why: string): string {
  // The broker's revoke reasons (connections.service.ts): an admin's Disconnect, a released desktop.
  const bare = why.replace(/^revoked:\s*/, '');
  if (bare === 'disconnected by an administrator') return 'an administrator disconnected this session: connect again from your Stagedoor portal';
  if (bare.startsWith('assignment released')) return REFUSAL_MESSAGES.revoked;
  return why in REFUSAL_MESSAGES ? REFUSAL_MESSAGES[why as keyof typeof REFUSAL_MESSAGES] : REFUSAL_MESSAGES.closed;
}
