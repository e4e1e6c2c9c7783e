import type { GrantRow } from './connections.repository.ts';

export type GrantState = 'unused' | 'in-use' | 'ended' | 'expired' | 'revoked';

export interface GrantStatus {
  id: string;
  mode: 'portForward' | 'routed';
  state: GrantState;
  connectBy: Date;
  singleUse: boolean;
  reconnectUntil: Date | null;
}

/**
 * What a client can say plainly about its grant (pure): unused until its connect-by time; in use;
 * ended (a routed grant between sessions says until when the same client may reconnect); expired;
 * revoked. Single use: port forward, or routed with no reconnect window.
 */
export function grantStatus(g: GrantRow, now: Date): GrantStatus {
  const routed = g.mode === 'routed';
  const reconnectUntil = routed && g.state === 'used' && g.sessionEndedAt ? new Date(g.sessionEndedAt.getTime() + g.reconnectWindowSeconds * 1000) : null;
  let state: GrantState;
  if (g.state === 'issued') state = g.validUntil > now ? 'unused' : 'expired';
  else if (g.state === 'used') state = reconnectUntil ? (reconnectUntil > now ? 'ended' : 'expired') : 'in-use';
  else if (g.state === 'closed') state = 'ended';
  else state = g.state === 'revoked' ? 'revoked' : 'expired';
  return { id: g.id, mode: routed ? 'routed' : 'portForward', state, connectBy: g.validUntil, singleUse: !routed || g.reconnectWindowSeconds === 0, reconnectUntil: state === 'ended' ? reconnectUntil : null };
}
