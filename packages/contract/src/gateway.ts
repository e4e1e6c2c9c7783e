import { z } from 'zod';
import { Page, Timestamp, Uuid } from './common.ts';

/** The gateway registry API (`/api/v1/gateways`) and enrolment. The control channel is in gateway-channel.ts. */

export const GATEWAY_STATUSES = ['enrolled', 'active', 'disabled', 'draining'] as const;
export const GatewayStatus = z.enum(GATEWAY_STATUSES).describe(
  'enrolled: never connected yet; active: takes new grants; draining: keeps its sessions, takes no new grant; disabled: takes no new grant and refuses new connections',
);
export const GatewayHealth = z.enum(['unknown', 'healthy', 'unhealthy']);

export const GatewayName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may contain letters, digits and . _ - only, starting with a letter or digit');
export const ClusterName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'may contain lower-case letters, digits and . _ - only');
export const GatewayPort = z.number().int().min(1).max(65535);
/** What clients dial: a DNS name or an IP address (no scheme, no port). */
export const PublicAddress = z
  .string()
  .min(1)
  .max(253)
  .refine((v) => z.hostname().safeParse(v).success || z.ipv6().safeParse(v).success, 'must be a host name or an IP address (no scheme, no port)');

/** The public ports clients dial for the routed listeners (ADR 0017): the balancer's listeners, when there is one. */
export const RoutedPorts = z.strictObject({ rdp: GatewayPort, ssh: GatewayPort, tls: GatewayPort, tunnel: GatewayPort });
export type RoutedPorts = z.infer<typeof RoutedPorts>;
export const DEFAULT_ROUTED_PORTS: RoutedPorts = { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 };
/** The wildcard domain of TLS SNI routing: each routed dcv grant gets `<token>.<domain>`. */
export const SniDomain = z
  .string()
  .max(190)
  .transform((v) => v.toLowerCase())
  .pipe(z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, 'must be a DNS domain such as gw.example.com (its wildcard *.gw.example.com points at the gateways)'));

export const GatewayLoad = z.object({
  sessions: z.number().int().min(0).optional(),
  grants: z.number().int().min(0).optional(),
  bytesInPerSecond: z.number().min(0).optional(),
  bytesOutPerSecond: z.number().min(0).optional(),
});
export type GatewayLoad = z.infer<typeof GatewayLoad>;

export const Gateway = z.object({
  id: Uuid,
  name: z.string(),
  cluster: z.string(),
  publicAddress: z.string().describe('host name or address clients dial (from the enrolment record)'),
  previousPublicAddress: z.string().nullable().describe('the address before the last change (a re-enrolment with another address)'),
  publicAddressChangedAt: Timestamp.nullable(),
  portRangeStart: z.number().int(),
  portRangeEnd: z.number().int(),
  status: GatewayStatus,
  health: GatewayHealth,
  load: GatewayLoad,
  version: z.string().nullable(),
  lastSeenAt: Timestamp.nullable(),
  brokerNode: z.string().nullable().describe('the broker node holding its control channel'),
  liveGrants: z.number().int().describe('grants issued or in use whose port is on this gateway'),
  sshHostKey: z.string().nullable().describe("the SSH jump host's public key (OpenSSH line), from the gateway's hello: clients pin it"),
  tlsCertificateSha256: z.string().nullable().describe("the SHA-256 fingerprint of the gateway's TLS certificate (routed TLS and tunnel listeners), from its hello"),
  routedPorts: RoutedPorts.describe("the ports clients dial for the routed listeners: the admin's (routedPortsSet), else the gateway's own listener ports"),
  routedPortsSet: z.boolean().describe('true once an admin set the public ports (enrolment, PATCH, stagedoor apply): behind a balancer they are its listeners'),
  listenerPorts: z
    .object({ rdp: z.number().int().nullable(), ssh: z.number().int().nullable(), tls: z.number().int().nullable(), tunnel: z.number().int().nullable() })
    .nullable()
    .describe('the routed listeners the gateway runs, from its hello (null: that listener is off; all null: never reported)'),
  sniDomain: z.string().nullable().describe('the wildcard domain of TLS SNI routing (routed dcv needs it)'),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Gateway = z.infer<typeof Gateway>;

export const ListGatewaysQuery = Page.extend({
  cluster: ClusterName.optional(),
  status: GatewayStatus.optional(),
});

export const UpdateGateway = z.strictObject({
  status: z.enum(['active', 'disabled', 'draining']).optional().describe('disable or drain a gateway, or make it active again'),
  name: GatewayName.optional(),
  routedPorts: RoutedPorts.partial().optional().describe('the public ports of the routed listeners; the ones left out stay as they are'),
  sniDomain: SniDomain.nullable().optional().describe('the wildcard domain of TLS SNI routing (null: none)'),
});

export const EnrollmentExpiry = z.number().int().min(1).max(7 * 24 * 60).default(60);
export const CreateGatewayEnrollment = z.strictObject({
  cluster: ClusterName.default('default'),
  name: GatewayName.optional().describe('the name the new gateway gets (else the one it proposes); it must be free: an existing gateway is re-enrolled through POST /api/v1/gateways/{id}/reenrollments'),
  publicAddress: PublicAddress.describe('what clients will dial to reach the new gateway: it comes from this record, not from the enrolling gateway'),
  routedPorts: RoutedPorts.partial().optional().describe('the public ports of its routed listeners (default rdp 3389, ssh 22, tls 8443, tunnel 443)'),
  sniDomain: SniDomain.optional().describe('the wildcard domain of TLS SNI routing, e.g. gw.example.com'),
  expiresInMinutes: EnrollmentExpiry,
});
export const CreateGatewayReenrollment = z.strictObject({
  publicAddress: PublicAddress.optional().describe("what clients will dial once it is re-enrolled (default: the gateway's current address); a change is audited and shown"),
  expiresInMinutes: EnrollmentExpiry,
});
export const GatewayEnrollment = z.object({
  id: Uuid,
  purpose: z.enum(['new', 'reenroll']).describe('new: makes a gateway; reenroll: rotates the credential of gatewayId'),
  cluster: z.string(),
  name: z.string().nullable(),
  publicAddress: z.string().nullable().describe('what clients will dial (null only on records made before it was recorded: refused at use)'),
  expiresAt: Timestamp,
  usedAt: Timestamp.nullable(),
  gatewayId: Uuid.nullable().describe('new: the gateway it created; reenroll: the gateway it re-enrols'),
  createdAt: Timestamp,
});
export const CreatedGatewayEnrollment = GatewayEnrollment.extend({
  token: z.string().describe('shown once: give it to `stagedoor gateway --enroll <token>`'),
});
export const ListGatewayEnrollmentsQuery = Page.extend({
  pending: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .describe('true: only unused, unexpired enrolments'),
});

/** What a gateway sends once, with its one-time token, to become a registered gateway. */
export const EnrollGateway = z.strictObject({
  token: z.string().min(1).max(200),
  name: GatewayName,
  /** Ignored: the address comes from the enrolment record (older gateways still send it). */
  publicAddress: z.string().min(1).max(253).optional().describe('ignored: the address clients dial comes from the enrolment record'),
  portRangeStart: GatewayPort,
  portRangeEnd: GatewayPort,
  version: z.string().max(64).optional(),
});
export const EnrolledGateway = z.object({
  gatewayId: Uuid,
  name: z.string(),
  cluster: z.string(),
  publicAddress: z.string().describe('what clients dial, from the enrolment record'),
  credential: z.string().describe('the control-channel credential; stored by the gateway, shown once'),
});
export type EnrolledGateway = z.infer<typeof EnrolledGateway>;

/** A grant as the API shows it (admin views, the revoke endpoint). */
export const GatewayGrant = z.object({
  id: Uuid,
  connectionId: Uuid,
  gatewayId: Uuid.nullable(),
  cluster: z.string(),
  clientAddress: z.string(),
  targetAddress: z.string(),
  targetPort: z.number().int(),
  mode: z.enum(['portForward', 'routed']),
  gatewayPort: z.number().int().nullable().describe('port-forward mode only'),
  validUntil: Timestamp,
  state: z.enum(['issued', 'used', 'expired', 'revoked', 'closed']),
  usedAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
  closedAt: Timestamp.nullable(),
  createdAt: Timestamp,
});
export const ListGatewayGrantsQuery = Page.extend({
  live: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
});
export const RevokeGatewayGrant = z.strictObject({ reason: z.string().min(1).max(200).default('admin') });
