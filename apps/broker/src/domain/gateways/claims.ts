import type { ClaimMessage, RefusalReason } from '@stagedoor/contract';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { parseAddress, plainAddress as normaliseAddress } from '../addresses.ts';
import type { GatewayRow, GatewaysRepository, GrantRow } from './gateways.repository.ts';

export type ClaimAnswer = { ok: true; reason: null; session: number } | { ok: false; reason: RefusalReason };

/**
 * Why a claim was refused, from what the grant looks like after the claim's statement took nothing.
 * Pure; the order matters: a client that is not the grant's learns nothing of the grant's state.
 */
export function claimRefusal(found: { grant: GrantRow; connectionLive: boolean } | undefined, claim: { cluster: string; clientAddress: string }, now: Date): RefusalReason {
  if (!found || found.grant.mode !== 'routed' || found.grant.gatewayCluster !== claim.cluster) return 'no-grant';
  const g = found.grant;
  if (normaliseAddress(g.clientAddress) !== claim.clientAddress) return 'wrong-client';
  if (g.state === 'revoked') return 'revoked';
  if (g.state === 'expired') return 'expired';
  if (g.state === 'closed') return 'used';
  if (!found.connectionLive) return 'revoked';
  if (g.state === 'issued') return g.validUntil <= now ? 'expired' : 'no-grant';
  // Used: a session runs now, or the grant is single use, or its reconnect window is over.
  if (g.sessionEndedAt === null) return 'in-use';
  return 'used';
}

/**
 * Routed-mode claims (ADR 0017): may this connection, which presented the grant's token from this
 * address, start a session? One conditional UPDATE decides (`GatewaysRepository.claimRouted`), so
 * two gateways behind one balancer never both start a session of one grant. A claim writes no audit
 * row: the session start that follows is audited, and a refusal is reported (and audited) by the gateway.
 */
export class GatewayClaims {
  constructor(private readonly deps: { repo: GatewaysRepository; clock: Clock; log: Logger }) {}

  async claim(gateway: GatewayRow, msg: Pick<ClaimMessage, 'grantId' | 'clientAddress'>): Promise<ClaimAnswer> {
    const now = this.deps.clock.now();
    const parsed = parseAddress(msg.clientAddress);
    if (!parsed) return { ok: false, reason: 'wrong-client' };
    const clientAddress = normaliseAddress(msg.clientAddress);
    const taken = await this.deps.repo.claimRouted({ grantId: msg.grantId, cluster: gateway.cluster, clientAddress, gatewayId: gateway.id, now });
    if (taken) {
      this.deps.log.debug({ grant: msg.grantId, gateway: gateway.id, session: taken.sessions }, 'routed claim accepted');
      return { ok: true, reason: null, session: taken.sessions };
    }
    const reason = claimRefusal(await this.deps.repo.claimRefusal(msg.grantId), { cluster: gateway.cluster, clientAddress }, now);
    this.deps.log.debug({ grant: msg.grantId, gateway: gateway.id, reason }, 'routed claim refused');
    return { ok: false, reason };
  }

  /** The grant's current claimant, when a session runs (for the hub's "wait for this gateway's pending reports" retry). */
  async carrier(grantId: string): Promise<string | null> {
    const found = await this.deps.repo.claimRefusal(grantId);
    return found && found.grant.state === 'used' && found.grant.sessionEndedAt === null ? found.grant.claimedGatewayId : null;
  }
}
