import { sql, type SQL } from 'drizzle-orm';
import { boolean, check, index, integer, jsonb, pgTable, text, unique, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, oneOf, ts, updatedAt } from './columns.ts';
import { users } from './identity.ts';
import { HEALTH_STATES } from './providers.ts';

/**
 * The gateways (the data plane's enrolled members, by cluster) and the one-time tokens that enrol
 * them (ADR 0016); their routed listeners' ports (ADR 0017). Connections and grants refer to them
 * (connections.ts).
 */
export const GATEWAY_STATUSES = ['enrolled', 'active', 'disabled', 'draining'] as const;

/** The public ports clients dial for the routed listeners (the balancer's, when there is one). */
export interface RoutedPorts {
  rdp: number;
  ssh: number;
  tls: number;
  tunnel: number;
}
export const DEFAULT_ROUTED_PORTS: RoutedPorts = { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 };
/** The routed listeners a gateway runs, as its hello reports them (null: that listener is off). */
export type ListenerPorts = { [K in keyof RoutedPorts]: number | null };
const ROUTED_PORTS_DEFAULT = sql`'{"rdp": 3389, "ssh": 22, "tls": 8443, "tunnel": 443}'::jsonb`;

/** Gateway heartbeat figures; the broker picks the least loaded healthy gateway of the cluster. */
export interface GatewayLoad {
  sessions?: number;
  bytesInPerSecond?: number;
  bytesOutPerSecond?: number;
  grants?: number;
}

export const gateways = pgTable(
  'gateways',
  {
    id: id(),
    name: text('name').notNull(),
    /** Gateways of a cluster share grants, so any of them can take a connection behind a load balancer. */
    cluster: text('cluster').notNull().default('default'),
    /**
     * Host name or address clients dial; text, not inet, because it is usually a DNS name. It comes
     * from the admin's enrolment record, never from the enrolling gateway (ADR 0016).
     */
    publicAddress: text('public_address').notNull(),
    /** The address before the last change (a re-enrolment with another one), and when it changed. */
    previousPublicAddress: text('previous_public_address'),
    publicAddressChangedAt: ts('public_address_changed_at'),
    portRangeStart: integer('port_range_start').notNull(),
    portRangeEnd: integer('port_range_end').notNull(),
    status: text('status').notNull().default('enrolled'),
    health: text('health').notNull().default('unknown'),
    load: jsonb('load').$type<GatewayLoad>().notNull().default({}),
    version: text('version'),
    lastSeenAt: ts('last_seen_at'),
    /** SHA-256 of the credential the gateway presents on its control channel; rotated by re-enrolment. */
    credentialHash: text('credential_hash').notNull(),
    /** The broker node holding its control channel now, so another node can route a revoke to it. */
    brokerNode: text('broker_node'),
    /** What clients pin (ADR 0017), from the gateway's hello: its SSH jump host key (OpenSSH line) and TLS certificate's SHA-256. */
    sshHostKey: text('ssh_host_key'),
    tlsCertificateSha256: text('tls_certificate_sha256'),
    /** The admin's: the public ports of the routed listeners (the balancer's listeners, when there is one). */
    routedPorts: jsonb('routed_ports').$type<RoutedPorts>().notNull().default(ROUTED_PORTS_DEFAULT),
    /**
     * Whether the admin set `routed_ports` (at enrolment, by PATCH or `stagedoor apply`). Until then
     * clients are sent to the ports the gateway itself listens on (`listener_ports`): right for a
     * gateway dialled directly; behind a balancer the admin names the balancer's ports.
     */
    routedPortsSet: boolean('routed_ports_set').notNull().default(false),
    /** The gateway's own routed listeners, from its hello (null entry: that listener is off; null: never reported). */
    listenerPorts: jsonb('listener_ports').$type<ListenerPorts>(),
    /** The admin's: the wildcard domain of TLS SNI routing (`<token>.<sni_domain>`); routed dcv needs it. */
    sniDomain: text('sni_domain'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('gateways_name_lower_key').on(sql`lower(${t.name})`),
    check('gateways_routed_ports_check', routedPortsCheck(sql`${t.routedPorts}`)),
    check('gateways_sni_domain_check', sql`${t.sniDomain} is null or ${t.sniDomain} ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'`),
    unique('gateways_credential_hash_key').on(t.credentialHash),
    check('gateways_name_check', sql`length(${t.name}) between 1 and 128`),
    check('gateways_status_check', oneOf(sql`${t.status}`, GATEWAY_STATUSES)),
    check('gateways_health_check', oneOf(sql`${t.health}`, HEALTH_STATES)),
    check(
      'gateways_port_range_check',
      sql`${t.portRangeStart} between 1 and 65535 and ${t.portRangeEnd} between 1 and 65535
        and ${t.portRangeStart} <= ${t.portRangeEnd}`,
    ),
    check('gateways_listener_ports_check', sql`${t.listenerPorts} is null or jsonb_typeof(${t.listenerPorts}) = 'object'`),
    check('gateways_load_check', sql`jsonb_typeof(${t.load}) = 'object'`),
    // Choosing a gateway: healthy and active in the pool's cluster.
    index('gateways_cluster_status_idx').on(t.cluster, t.status),
  ],
);

export const ENROLLMENT_PURPOSES = ['new', 'reenroll'] as const;

/**
 * One-time tokens an admin creates: for a new gateway, or to re-enrol one existing gateway (bound
 * to its id). Stored hashed, shown once. The record, not the enrolling gateway, says what address
 * clients will dial (ADR 0016).
 */
export const gatewayEnrollments = pgTable(
  'gateway_enrollments',
  {
    id: id(),
    tokenHash: text('token_hash').notNull(),
    /** `new`: makes a gateway (its name must be free); `reenroll`: rotates the credential of `gatewayId`. */
    purpose: text('purpose').notNull().default('new'),
    cluster: text('cluster').notNull().default('default'),
    /** Optional name the enrolling gateway will get (for `reenroll`: the gateway's name, for the record). */
    name: text('name'),
    /** Optional routed settings the new gateway gets (null: the defaults, or for `reenroll`, unchanged). */
    routedPorts: jsonb('routed_ports').$type<RoutedPorts>(),
    sniDomain: text('sni_domain'),
    /** What clients dial; null only on records made before it was part of them (refused at use). */
    publicAddress: text('public_address'),
    expiresAt: ts('expires_at').notNull(),
    usedAt: ts('used_at'),
    /**
     * `new`: the gateway it created; `reenroll`: the gateway it re-enrols (set when it is made). Set
     * null so deleting a gateway keeps the record of how it enrolled; a `reenroll` record without its
     * gateway is refused.
     */
    gatewayId: uuid('gateway_id').references(() => gateways.id, { onDelete: 'set null' }),
    /** Set null: the audit log, not this row, is the lasting record of who did it. */
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
  },
  (t) => [
    unique('gateway_enrollments_token_hash_key').on(t.tokenHash),
    check('gateway_enrollments_expiry_check', sql`${t.expiresAt} > ${t.createdAt}`),
    check('gateway_enrollments_used_check', sql`${t.usedAt} is null or ${t.usedAt} <= ${t.expiresAt}`),
    check('gateway_enrollments_purpose_check', oneOf(sql`${t.purpose}`, ENROLLMENT_PURPOSES)),
  ],
);

/** The routed ports jsonb: an object with the four listeners, each a port number (the API checks ranges too). */
function routedPortsCheck(col: SQL): SQL {
  const port = (k: string) => sql`jsonb_typeof(${col}->${sql.raw(`'${k}'`)}) = 'number' and (${col}->>${sql.raw(`'${k}'`)})::numeric between 1 and 65535`;
  return sql`jsonb_typeof(${col}) = 'object' and ${port('rdp')} and ${port('ssh')} and ${port('tls')} and ${port('tunnel')}`;
}
