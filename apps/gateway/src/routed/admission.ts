import type { RefusalReason, RoutedListener } from '@stagedoor/contract';

/**
 * The one grant check of the routed modes (ADR 0017). Every routed listener — RDP routing token,
 * SSH jump host, TLS SNI, HTTPS tunnel — reads the token its protocol carries and asks `admit`; the
 * admitter finds the grant by the token's hash (constant time), checks the client address, the
 * connect-by time and whether the gateway is refusing everything (fail closed, disabled), then asks
 * the broker to claim the grant (single use across the cluster, reconnects) before it answers.
 *
 * A mode relays only after `ok`, to `target` and nowhere else, and calls `ended` exactly once when
 * the session is over. The admitter calls the `close` the mode registered with `onClose` when the
 * broker revokes the grant (the assignment was released, say): the mode closes the session at once.
 */
export interface Admitted {
  ok: true;
  grantId: string;
  target: { host: string; port: number };
  /** Register how to close this session (a revoke from the broker, a session cap, shutdown). */
  onClose(close: (reason: string) => void): void;
  /** How to read the session's byte counts while it runs (for the heartbeat); optional, else they count from its end. */
  countBytes(read: () => { bytesUp: number; bytesDown: number }): void;
  /** The session is over: report it. Call exactly once (later calls are ignored). */
  ended(outcome: { reason: string; bytesUp: number; bytesDown: number }): void;
}

export interface Refused {
  ok: false;
  reason: RefusalReason;
  /** Plain words for the user, where the protocol can carry them (SSH banner, tunnel close reason). */
  message: string;
}

export type Admit = (listener: RoutedListener, token: string, clientAddress: string) => Promise<Admitted | Refused>;

/** What the user reads when a routed connection is refused, by reason. */
export const REFUSAL_MESSAGES: Record<RefusalReason, string> = {
  'no-grant': 'this connection grant is not known here: connect again from your Stagedoor portal',
  'no-token': 'no connection grant was presented: use the connection file or command from your Stagedoor portal',
  'wrong-client': 'this connection grant was issued to another address: connect again from your Stagedoor portal on this network',
  expired: 'this connection grant expired before it was used: connect again from your Stagedoor portal',
  used: 'this connection grant was used: connect again from your Stagedoor portal',
  'in-use': 'this connection grant is in use by another session: close it, or connect again from your Stagedoor portal',
  revoked: 'this desktop was released: connect again from your Stagedoor portal',
  closed: 'this connection was closed: connect again from your Stagedoor portal',
  'fail-closed': 'the gateway cannot reach the Stagedoor broker and refuses new connections: try again shortly',
  'claim-timeout': 'the gateway could not confirm this grant with the Stagedoor broker in time: try again shortly',
  disabled: 'this gateway is disabled by the administrator',
  'proxy-protocol': 'refused by the gateway',
  'bad-request': 'the gateway did not understand the first message of this connection',
};
