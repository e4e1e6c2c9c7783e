import type { ChannelGrant } from '@stagedoor/contract';
import type { GrantRow } from './gateways.repository.ts';

/** How the broker treats gateways; from the STAGEDOOR_GATEWAY_* variables. */
export interface GatewayPolicy {
  /** How often gateways heartbeat (told to them in the welcome). */
  heartbeatSeconds: number;
  /** A gateway not heard from for this long is unhealthy and gets no new grant. */
  staleSeconds: number;
  /** Sessions of a gateway not heard from for this long are closed as `gateway-lost`. */
  lostSeconds: number;
}

/** What the connect flow hands over for a protocol that goes through a gateway. */
export interface IssueGrantInput {
  connectionId: string;
  cluster: string;
  clientAddress: string;
  targetAddress: string;
  targetPort: number;
  connectBy: Date;
  /** The policy's maximum session length, as a deadline: the gateway closes the session then. */
  sessionUntil?: Date | null;
}

export interface IssuedGrant {
  grantId: string;
  gatewayId: string;
  /** The chosen gateway's public address: what the client dials. */
  host: string;
  port: number;
}

/**
 * A session on a gateway began or ended. Listeners (the power and release plans, later) run after
 * the change is committed; a listener that throws is logged and does not disturb the others.
 */
export interface SessionEvent {
  type: 'started' | 'ended';
  connectionId: string;
  grantId: string;
  gatewayId: string | null;
  at: Date;
  clientAddress?: string;
  /** For `ended`: `client-closed`, `target-closed`, `revoked: …`, `gateway-lost`, … */
  reason?: string;
  bytesUp: number;
  bytesDown: number;
}
export type SessionListener = (event: SessionEvent) => void | Promise<void>;

/** Deliveries to gateways, implemented by the node's channel hub. */
export interface GrantDelivery {
  deliver(cluster: string, grant: ChannelGrant): void;
  revoke(cluster: string, grantId: string, reason: string): void;
  /** A pass over the database soon: for changes made in a transaction the caller commits later. */
  kick(): void;
  statusChanged(gatewayId: string, status: string): void;
  forget(gatewayId: string): void;
}

export function toChannelGrant(g: GrantRow): ChannelGrant {
  return {
    id: g.id,
    mode: 'portForward',
    port: g.gatewayPort,
    tokenHash: null,
    clientAddress: g.clientAddress,
    targetAddress: g.targetAddress,
    targetPort: g.targetPort,
    validUntil: g.validUntil.toISOString(),
    sessionUntil: g.sessionUntil ? g.sessionUntil.toISOString() : null,
    inUse: g.state === 'used',
  };
}
