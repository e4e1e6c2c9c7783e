import { z } from 'zod';
import { GatewayStatus } from './gateway.ts';

/**
 * The gateway control channel: one WebSocket per gateway to any broker node, at
 * `GET /api/v1/gateways/channel` with `Authorization: Bearer <gateway credential>`. JSON text frames,
 * one message each, discriminated by `type`. Protocol version in `GATEWAY_CHANNEL_VERSION`.
 *
 * Reports (gateway → broker) that change state carry a `seq`; the broker answers `ack` once the
 * report is stored. The gateway keeps unacknowledged reports and sends them again after a reconnect
 * (to the same or another node), so none is lost; the broker applies each idempotently, so none
 * counts twice.
 */
export const GATEWAY_CHANNEL_VERSION = 1;
export const GATEWAY_CHANNEL_PATH = '/api/v1/gateways/channel';

/** An instant as `Date.toISOString()` writes it (UTC, `Z`): anything else is refused, never stored as an invalid date. */
const Iso = z.iso.datetime();
const Address = z.string().min(1).max(64);
const Port = z.number().int().min(1).max(65535);
const Bytes = z.number().int().min(0);

/**
 * A grant's secret for the routed modes (ADR 0017): 20 random bytes as lowercase base32, which fits an
 * RDP routing token, an SSH user name and one DNS label. Gateways receive only its SHA-256.
 */
export const GRANT_TOKEN_PATTERN = /^[a-z2-7]{32}$/;
export const GATEWAY_MODES = ['portForward', 'routed'] as const;
export type GatewayMode = (typeof GATEWAY_MODES)[number];
/** Which routed listener a connection came through. */
export const ROUTED_LISTENERS = ['rdp', 'ssh', 'tls', 'tunnel'] as const;
export type RoutedListener = (typeof ROUTED_LISTENERS)[number];

/**
 * What a gateway may relay: from exactly `clientAddress` to `targetAddress:targetPort` — in port-forward
 * mode on `port`; in routed mode on the fixed listeners, to a client presenting the token whose SHA-256
 * (hex) is `tokenHash`, once the broker confirms the claim.
 */
export const ChannelGrant = z.object({
  id: z.uuid(),
  mode: z.enum(GATEWAY_MODES).default('portForward'),
  /** Port-forward mode only (null in routed mode). */
  port: Port.nullable(),
  /** Routed mode only: SHA-256 of the grant token, hex. */
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/).nullable().default(null),
  clientAddress: Address,
  targetAddress: Address,
  targetPort: Port,
  /** Connect-by: an unused grant expires then and its port closes. */
  validUntil: Iso,
  /** Optional cap on the session; null = until a side closes or the broker revokes. */
  sessionUntil: Iso.nullable(),
  /** True when this gateway already carries the grant's session (sent again after a reconnect). */
  inUse: z.boolean().default(false),
});
export type ChannelGrant = z.infer<typeof ChannelGrant>;

/**
 * Routed modes: which session of a grant a report is about (the number the broker's `claimed`
 * answer gave it). A report of an earlier session that arrives late (resent after a lost
 * acknowledgement) then neither ends nor double-counts the one running. Absent: the grant's latest
 * session (port forward has only one; a gateway from before the field).
 */
const SessionNumber = z.number().int().min(1).optional();

export const SessionFigures = z.object({
  grantId: z.uuid(),
  /** Bytes of this session only (not the grant's earlier sessions). */
  bytesUp: Bytes,
  bytesDown: Bytes,
  session: SessionNumber,
});

export const REFUSAL_REASONS = [
  'no-grant',
  'wrong-client',
  'expired',
  'used',
  'revoked',
  'closed',
  'fail-closed',
  'disabled',
  'proxy-protocol',
  /** Routed modes: the first packet carried no token, or one no live grant has. */
  'no-token',
  /** Routed modes: a second session of a grant while one runs (a reconnect after the window, or of a single-use grant, is `used`). */
  'in-use',
  /** Routed modes: the broker did not answer the claim in time (fail closed). */
  'claim-timeout',
  /** Routed modes: the first packet was not what the listener speaks, or too large or too slow. */
  'bad-request',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/* ---------- gateway → broker ---------- */

export const HelloMessage = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  version: z.string().max(64),
  /** The sessions this gateway carries now: the broker keeps their grants with it and revokes the rest. */
  sessions: z.array(SessionFigures.extend({ startedAt: Iso, clientAddress: Address })).max(100_000),
  /** What clients pin (ADR 0017): the SSH jump host's public key (OpenSSH form) and the TLS certificate's SHA-256. */
  identity: z
    .object({
      sshHostKey: z.string().max(1024).nullable(),
      tlsCertificateSha256: z.string().regex(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/).nullable(),
      /** The routed listeners this gateway runs (its own ports; the public ones are the admin's). */
      listeners: z.object({ rdp: Port.nullable(), ssh: Port.nullable(), tls: Port.nullable(), tunnel: Port.nullable() }),
    })
    .optional(),
});
/**
 * A routed connection presented a grant's token from its client address: may it start a session?
 * The broker decides (single use across the cluster, reconnects) and answers `claimed`.
 */
export const ClaimMessage = z.object({
  type: z.literal('claim'),
  claimId: z.number().int().min(1),
  grantId: z.uuid(),
  clientAddress: Address,
  listener: z.enum(ROUTED_LISTENERS),
});
export const HeartbeatMessage = z.object({
  type: z.literal('heartbeat'),
  at: Iso,
  sessions: z.array(SessionFigures).max(100_000),
  grants: z.number().int().min(0),
  bytesInPerSecond: z.number().min(0),
  bytesOutPerSecond: z.number().min(0),
  /** Refusal reports dropped by the gateway's rate limit since the last heartbeat (a port scan, say). */
  refusalsDropped: z.number().int().min(0).default(0),
  failClosed: z.boolean().default(false),
});
export const SessionStartedMessage = z.object({
  type: z.literal('session-started'),
  seq: z.number().int().min(1),
  grantId: z.uuid(),
  session: SessionNumber,
  clientAddress: Address,
  at: Iso,
});
export const SessionEndedMessage = z.object({
  type: z.literal('session-ended'),
  seq: z.number().int().min(1),
  grantId: z.uuid(),
  session: SessionNumber,
  reason: z.string().min(1).max(200),
  bytesUp: Bytes,
  bytesDown: Bytes,
  at: Iso,
});
export const RefusedMessage = z.object({
  type: z.literal('refused'),
  seq: z.number().int().min(1),
  port: Port,
  clientAddress: Address,
  reason: z.enum(REFUSAL_REASONS),
  grantId: z.uuid().nullable(),
  at: Iso,
});
export const GatewayReport = z.discriminatedUnion('type', [SessionStartedMessage, SessionEndedMessage, RefusedMessage]);
/**
 * Reports made in one turn of the gateway's event loop travel together; the broker applies them in
 * order and acknowledges the last. A report that can never be applied (invalid) is acknowledged and
 * kept in the audit log (`gateway.report_rejected`), not refused: refused, it would be sent forever.
 */
export const BatchMessage = z.object({
  type: z.literal('batch'),
  reports: z.array(GatewayReport).min(1).max(10_000),
});
export const GatewayToBroker = z.discriminatedUnion('type', [HelloMessage, HeartbeatMessage, SessionStartedMessage, SessionEndedMessage, RefusedMessage, BatchMessage, ClaimMessage]);
export type GatewayToBroker = z.infer<typeof GatewayToBroker>;
export type GatewayReport = z.infer<typeof GatewayReport>;
export type HeartbeatMessage = z.infer<typeof HeartbeatMessage>;
export type HelloMessage = z.infer<typeof HelloMessage>;

/* ---------- broker → gateway ---------- */

export const WelcomeMessage = z.object({
  type: z.literal('welcome'),
  protocol: z.number().int(),
  gatewayId: z.uuid(),
  name: z.string(),
  cluster: z.string(),
  status: GatewayStatus,
  brokerNode: z.string(),
  heartbeatSeconds: z.number().positive(),
  /** The whole set of live grants for this gateway: it replaces what the gateway held. */
  grants: z.array(ChannelGrant),
});
export const GrantMessage = z.object({ type: z.literal('grant'), grant: ChannelGrant });
export const RevokeMessage = z.object({
  type: z.literal('revoke'),
  grantId: z.uuid(),
  /** Why: `revoked: <reason>`, `expired`, `used-elsewhere`, `closed` … The gateway closes the port and any session at once. */
  reason: z.string().min(1).max(200),
});
export const StatusMessage = z.object({ type: z.literal('status'), status: GatewayStatus });
/** Every report up to and including `seq` is stored: the gateway forgets them. */
export const AckMessage = z.object({ type: z.literal('ack'), seq: z.number().int().min(1) });
/** The answer to a `claim`: `ok`, or why not (a refusal reason the gateway reports and tells the client). */
export const ClaimedMessage = z.object({
  type: z.literal('claimed'),
  claimId: z.number().int().min(1),
  ok: z.boolean(),
  reason: z.enum(REFUSAL_REASONS).nullable(),
  /** With `ok`: the number of the session this claim started; the gateway's reports of it carry it. */
  session: z.number().int().min(1).optional(),
});
export const BrokerToGateway = z.discriminatedUnion('type', [WelcomeMessage, GrantMessage, RevokeMessage, StatusMessage, AckMessage, ClaimedMessage]);
export type BrokerToGateway = z.infer<typeof BrokerToGateway>;
export type WelcomeMessage = z.infer<typeof WelcomeMessage>;
export type ClaimMessage = z.infer<typeof ClaimMessage>;
export type ClaimedMessage = z.infer<typeof ClaimedMessage>;
