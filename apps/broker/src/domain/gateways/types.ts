import type { ChannelGrant, GatewayMode, RoutedPorts } from '@stagedoor/contract';
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
  /** The protocol plan's gateway mode (default port forward). */
  mode?: GatewayMode;
  /** Routed: how long after a session ends the same client may reconnect (0: single use). */
  reconnectWindowSeconds?: number;
  /** Choose only among gateways with an SNI domain (routed dcv). */
  requireSniDomain?: boolean;
}

export interface IssuedGrant {
  grantId: string;
  gatewayId: string;
  /** The chosen gateway's public address: what the client dials. */
  host: string;
  /** Port-forward mode: the grant's port; routed: null (the listeners' ports are the gateway's). */
  port: number | null;
  mode: GatewayMode;
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
  /** Routed grants: which session of the grant (1, 2 … after reconnects); absent means the first. */
  session?: number;
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

/**
 * A grant as a gateway holds it. `forGateway`: the gateway it goes to — a routed grant goes to every
 * gateway of the cluster, and is in use only on the one carrying its session (the one whose claim was
 * accepted, while no session end was reported); a port-forward grant in use goes only to its carrier.
 */
export function toChannelGrant(g: GrantRow, forGateway?: string): ChannelGrant {
  const routed = g.mode === 'routed';
  const inUse = routed ? g.state === 'used' && g.sessionEndedAt === null && g.claimedGatewayId === forGateway : g.state === 'used';
  return {
    id: g.id,
    mode: routed ? 'routed' : 'portForward',
    port: routed ? null : g.gatewayPort,
    tokenHash: routed ? g.tokenHash : null,
    clientAddress: g.clientAddress,
    targetAddress: g.targetAddress,
    targetPort: g.targetPort,
    validUntil: g.validUntil.toISOString(),
    sessionUntil: g.sessionUntil ? g.sessionUntil.toISOString() : null,
    inUse,
  };
}

/**
 * The routed ports clients dial: the admin's when they set them (a balancer's listeners); until
 * then the ports the gateway reported listening on (its hello), so a gateway dialled directly on
 * non-default ports gets instructions that work; the defaults for a listener never reported.
 */
export function clientPorts(g: { routedPorts: RoutedPorts; routedPortsSet: boolean; listenerPorts: { [K in keyof RoutedPorts]: number | null } | null }): RoutedPorts {
  if (g.routedPortsSet || !g.listenerPorts) return g.routedPorts;
  const l = g.listenerPorts;
  return { rdp: l.rdp ?? g.routedPorts.rdp, ssh: l.ssh ?? g.routedPorts.ssh, tls: l.tls ?? g.routedPorts.tls, tunnel: l.tunnel ?? g.routedPorts.tunnel };
}
