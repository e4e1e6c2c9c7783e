import { sql } from 'drizzle-orm';
import { bigint, boolean, check, index, inet, integer, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, oneOf, ts, updatedAt } from './columns.ts';
import { users } from './identity.ts';
import { gateways } from './gateways.ts';
import { pools } from './pools.ts';
import { ASSIGNMENT_MODES, PROTOCOLS, policies } from './policies.ts';
import { workstations } from './providers.ts';

/*
 * A pattern used throughout this file: references to users, workstations and gateways are
 * `on delete set null`, so history outlives what it names, together with a check that live rows
 * keep them. Deleting a user with an active assignment, or a gateway with a live grant, then fails
 * (the set null violates the check) — the database refuses it while the row is live and allows it
 * once it is history. Services check first to answer with a clear 409 instead.
 */

export const ASSIGNMENT_STATES = ['active', 'released'] as const;
export const RELEASE_REASONS = [
  'user', // the user released it (portal, CLI, DELETE /connections/{id})
  'admin',
  'logout', // release plan
  'disconnect', // release plan, after its delay
  'idle', // release plan
  'workstation-gone', // terminated or removed under the assignment
] as const;
export const CONNECTION_STATES = ['starting', 'ready', 'connected', 'closed', 'failed'] as const;
export const GRANT_STATES = ['issued', 'used', 'expired', 'revoked', 'closed'] as const;
/** ADR 0017: a port per grant, or the fixed routed listeners and a secret per grant. */
export const GRANT_MODES = ['portForward', 'routed'] as const;

export const assignments = pgTable(
  'assignments',
  {
    id: id(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'set null' }),
    workstationId: uuid('workstation_id').references(() => workstations.id, { onDelete: 'set null' }),
    /**
     * Where it came from, for the reports and the release plan. Set null: deleting a pool or policy
     * leaves existing assignments in place (a persistent user keeps their machine); the services
     * refuse such deletes while assignments are active if that is wanted.
     */
    poolId: uuid('pool_id').references(() => pools.id, { onDelete: 'set null' }),
    policyId: uuid('policy_id').references(() => policies.id, { onDelete: 'set null' }),
    mode: text('mode').notNull(),
    /**
     * Which of the user's desktops in this pool this is (1 … the policy's count). Unique per user
     * and pool among active assignments, so two overlapping connects of one user can never hold
     * more than the policy allows: the second insert of a slot gets 23505 and its caller retries.
     */
    slot: integer('slot').notNull().default(1),
    state: text('state').notNull().default('active'),
    since: ts('since').notNull().defaultNow(),
    releasedAt: ts('released_at'),
    releaseReason: text('release_reason'),
    /** When the pre-start (policy `prestartPersistent`) last started this persistent assignment's machine. */
    prestartedAt: ts('prestarted_at'),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('assignments_mode_check', oneOf(sql`${t.mode}`, ASSIGNMENT_MODES)),
    check('assignments_state_check', oneOf(sql`${t.state}`, ASSIGNMENT_STATES)),
    check('assignments_release_reason_check', oneOf(sql`${t.releaseReason}`, RELEASE_REASONS)),
    check(
      'assignments_released_check',
      sql`(${t.state} = 'active' and ${t.releasedAt} is null and ${t.releaseReason} is null)
        or (${t.state} = 'released' and ${t.releasedAt} is not null and ${t.releaseReason} is not null
            and ${t.releasedAt} >= ${t.since})`,
    ),
    check(
      'assignments_active_refs_check',
      sql`${t.state} <> 'active' or (${t.userId} is not null and ${t.workstationId} is not null)`,
    ),
    // The invariant of the product: no machine ever goes to two users. A racing insert gets 23505.
    uniqueIndex('assignments_active_workstation_key').on(t.workstationId).where(sql`${t.state} = 'active'`),
    check('assignments_slot_check', sql`${t.slot} >= 1`),
    // The per-user limit: one active assignment per (user, pool, slot); slots run 1 … the policy's
    // count. Also the index of a user's current machines per pool (a persistent user gets theirs back).
    uniqueIndex('assignments_active_user_slot_key').on(t.userId, t.poolId, t.slot).where(sql`${t.state} = 'active'`),
    index('assignments_active_pool_idx').on(t.poolId).where(sql`${t.state} = 'active'`),
    index('assignments_user_since_idx').on(t.userId, t.since),
    index('assignments_workstation_since_idx').on(t.workstationId, t.since),
    // The pool's demand history (forecast.ts): its arrivals of the last weeks.
    index('assignments_pool_since_idx').on(t.poolId, t.since),
  ],
);

export const connections = pgTable(
  'connections',
  {
    id: id(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'set null' }),
    workstationId: uuid('workstation_id').references(() => workstations.id, { onDelete: 'set null' }),
    assignmentId: uuid('assignment_id').references(() => assignments.id, { onDelete: 'set null' }),
    protocol: text('protocol').notNull(),
    /** The protocol plan sends it through a gateway (a grant), or the client goes direct. */
    viaGateway: boolean('via_gateway').notNull().default(false),
    /** Null for a direct connection (protocol plan says no gateway). Live ones are protected by their grant. */
    gatewayId: uuid('gateway_id').references(() => gateways.id, { onDelete: 'set null' }),
    /** The user's address as the broker saw it (X-Forwarded-For only from a trusted proxy). */
    clientAddress: inet('client_address'),
    state: text('state').notNull().default('starting'),
    requestedAt: ts('requested_at').notNull().defaultNow(),
    readyAt: ts('ready_at'),
    connectedAt: ts('connected_at'),
    closedAt: ts('closed_at'),
    /** As the gateway reports them; up = client → workstation. */
    bytesUp: bigint('bytes_up', { mode: 'number' }).notNull().default(0),
    bytesDown: bigint('bytes_down', { mode: 'number' }).notNull().default(0),
    /**
     * Free text from whoever ended it: `client-closed`, `target-closed`, `revoked`, `grant-expired`,
     * `released`, `gateway-lost`, `start-failed: <message>` … Not checked: gateways add reasons.
     */
    endReason: text('end_reason'),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('connections_state_check', oneOf(sql`${t.state}`, CONNECTION_STATES)),
    check('connections_protocol_check', oneOf(sql`${t.protocol}`, PROTOCOLS)),
    check('connections_closed_check', sql`(${t.state} in ('closed', 'failed')) = (${t.closedAt} is not null)`),
    check(
      'connections_live_refs_check',
      sql`${t.state} in ('closed', 'failed') or (${t.userId} is not null and ${t.workstationId} is not null)`,
    ),
    check('connections_bytes_check', sql`${t.bytesUp} >= 0 and ${t.bytesDown} >= 0`),
    index('connections_user_requested_idx').on(t.userId, t.requestedAt),
    index('connections_requested_idx').on(t.requestedAt),
    index('connections_assignment_idx').on(t.assignmentId),
    // "Why is it still running?" and the power timers: live sessions on a machine.
    index('connections_live_workstation_idx')
      .on(t.workstationId)
      .where(sql`${t.state} in ('starting', 'ready', 'connected')`),
    // Gateway reconciliation: live sessions the broker believes a gateway carries.
    index('connections_live_gateway_idx')
      .on(t.gatewayId)
      .where(sql`${t.state} in ('starting', 'ready', 'connected')`),
  ],
);

/**
 * What a gateway may relay: from exactly `client_address` to `target_address:target_port`, first
 * connect before `valid_until`. Port-forward mode: on `gateway_port`, one session. Routed mode (ADR
 * 0017): on the fixed listeners, to a client presenting the token whose SHA-256 is `token_hash`, once
 * the broker accepted its claim; the same client may reconnect within `reconnect_window_seconds` of
 * a session's end (docs/connect-flow.md, "Reconnects"). The id is the grant identifier the gateway sees.
 */
export const grants = pgTable(
  'grants',
  {
    id: id(),
    /**
     * Restrict, not cascade: deleting a connection must never silently drop a live grant the gateway
     * still honours. A history purge deletes finished grants first, then their connections.
     */
    connectionId: uuid('connection_id')
      .notNull()
      .references(() => connections.id, { onDelete: 'restrict' }),
    /** The gateway whose port was allocated. Set null with the live check: a gateway with live grants cannot be deleted. */
    gatewayId: uuid('gateway_id').references(() => gateways.id, { onDelete: 'set null' }),
    /** Copied from the gateway at issue: every gateway of the cluster receives the grant. */
    gatewayCluster: text('gateway_cluster').notNull(),
    clientAddress: inet('client_address').notNull(),
    targetAddress: inet('target_address').notNull(),
    targetPort: integer('target_port').notNull(),
    mode: text('mode').notNull().default('portForward'),
    /** Port-forward mode only: the port every gateway of the cluster opens for it. */
    gatewayPort: integer('gateway_port'),
    /** Routed mode only: SHA-256 (hex) of the grant token, what gateways look a presented token up by. */
    tokenHash: text('token_hash'),
    /**
     * Routed mode only: the token sealed with the secret box (context `grants:<id>`), so its owner's
     * later GET of the connection shows it again while the grant lives. Never logged or audited.
     */
    tokenSealed: text('token_sealed'),
    /** Routed mode: how long after a session ends the same client may claim the grant again (0: single use). */
    reconnectWindowSeconds: integer('reconnect_window_seconds').notNull().default(0),
    /** Routed mode: sessions started so far (accepted claims); numbers each session's events. */
    sessions: integer('sessions').notNull().default(0),
    /** Routed mode: the gateway whose claim was accepted last: the only one that may report its session start. */
    claimedGatewayId: uuid('claimed_gateway_id').references(() => gateways.id, { onDelete: 'set null' }),
    claimedAt: ts('claimed_at'),
    /** Routed mode: when the last session ended, while the grant (still `used`) waits for a reconnect; null while one runs. */
    sessionEndedAt: ts('session_ended_at'),
    /**
     * Bytes of the grant's sessions that have ended, and the number of the last session counted in
     * them: the connection's totals are these plus the running session's, so reconnects add up and a
     * session's end sent again (after a lost acknowledgement) is not counted twice.
     */
    endedBytesUp: bigint('ended_bytes_up', { mode: 'number' }).notNull().default(0),
    endedBytesDown: bigint('ended_bytes_down', { mode: 'number' }).notNull().default(0),
    bytesSession: integer('bytes_session').notNull().default(0),
    /** Connect-by time: an unused grant expires then and its port closes. */
    validUntil: ts('valid_until').notNull(),
    /** Optional cap on the session's length; null = until either side closes or the broker revokes. */
    sessionUntil: ts('session_until'),
    state: text('state').notNull().default('issued'),
    usedAt: ts('used_at'),
    revokedAt: ts('revoked_at'),
    closedAt: ts('closed_at'),
    /**
     * When a gateway last reported the grant's session alive (heartbeat). Reconciliation closes a
     * session whose gateway keeps reporting without it, or that no gateway has reported for long.
     */
    lastReportedAt: ts('last_reported_at'),
    createdAt: createdAt(),
  },
  (t) => [
    check('grants_state_check', oneOf(sql`${t.state}`, GRANT_STATES)),
    check(
      'grants_ports_check',
      sql`${t.targetPort} between 1 and 65535 and (${t.gatewayPort} is null or ${t.gatewayPort} between 1 and 65535)`,
    ),
    check('grants_mode_check', oneOf(sql`${t.mode}`, GRANT_MODES)),
    // A port-forward grant has a port and no token; a routed one a token (hash and sealed) and no port.
    check(
      'grants_mode_binding_check',
      sql`(${t.mode} = 'portForward' and ${t.gatewayPort} is not null and ${t.tokenHash} is null and ${t.tokenSealed} is null)
        or (${t.mode} = 'routed' and ${t.gatewayPort} is null and ${t.tokenHash} is not null and ${t.tokenSealed} is not null)`,
    ),
    check('grants_token_hash_check', sql`${t.tokenHash} is null or ${t.tokenHash} ~ '^[0-9a-f]{64}$'`),
    check('grants_ended_bytes_check', sql`${t.endedBytesUp} >= 0 and ${t.endedBytesDown} >= 0 and ${t.bytesSession} >= 0`),
    check('grants_reconnect_check', sql`${t.reconnectWindowSeconds} between 0 and 86400 and ${t.sessions} >= 0`),
    // A token names one live grant: what a gateway looks up must never find two.
    uniqueIndex('grants_live_token_hash_key').on(t.tokenHash).where(sql`${t.state} in ('issued', 'used')`),
    check('grants_validity_check', sql`${t.validUntil} > ${t.createdAt}`),
    check('grants_live_gateway_check', sql`${t.state} not in ('issued', 'used') or ${t.gatewayId} is not null`),
    check('grants_used_check', sql`${t.state} <> 'used' or ${t.usedAt} is not null`),
    check('grants_revoked_check', sql`${t.state} <> 'revoked' or ${t.revokedAt} is not null`),
    check('grants_closed_check', sql`${t.state} <> 'closed' or ${t.closedAt} is not null`),
    // One live grant per port of a gateway cluster: every gateway of the cluster listens on the grant's
    // port (a load balancer may send the client to any of them), so ports are unique per cluster.
    // Allocation races end in 23505 and a retry with another port.
    uniqueIndex('grants_live_cluster_port_key')
      .on(t.gatewayCluster, t.gatewayPort)
      .where(sql`${t.state} in ('issued', 'used')`),
    // A gateway (re)connecting loads its cluster's live grants.
    index('grants_live_cluster_idx').on(t.gatewayCluster).where(sql`${t.state} in ('issued', 'used')`),
    // Expiry sweep of unused grants.
    index('grants_issued_valid_until_idx').on(t.validUntil).where(sql`${t.state} = 'issued'`),
    index('grants_connection_idx').on(t.connectionId),
  ],
);

/**
 * `POST /connections` with an `Idempotency-Key`: the first request that commits stores its
 * connection here in the same statement or transaction; a retry with the same key (after a lost
 * answer, a broker crash, a double click) gets that connection back instead of a second one. Keys
 * are per user; `request_hash` catches a key reused for a different request. Purged after a day.
 */
export const connectRequests = pgTable(
  'connect_requests',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    connectionId: uuid('connection_id')
      .notNull()
      .references(() => connections.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ name: 'connect_requests_pkey', columns: [t.userId, t.key] }),
    check('connect_requests_key_check', sql`length(${t.key}) between 1 and 255`),
    index('connect_requests_created_idx').on(t.createdAt),
    index('connect_requests_connection_idx').on(t.connectionId),
  ],
);
