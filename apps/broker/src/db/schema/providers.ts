import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  check,
  index,
  inet,
  integer,
  jsonb,
  numeric,
  pgTable,
  text,
  unique,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { createdAt, id, oneOf, ts, updatedAt } from './columns.ts';
import { pools } from './pools.ts';
import type { Protocol } from './policies.ts';

export const PROVIDER_KINDS = ['aws-ec2', 'static'] as const;
/** `default-chain`: the SDK's chain (instance role, env); `none`: providers that call no cloud API. */
export const CREDENTIALS_MODES = ['access-key', 'default-chain', 'none'] as const;
export const SYNC_STATUSES = ['ok', 'error'] as const;

/** What the provider reports; the broker never invents a power state (DESIGN: Workstation). */
export const POWER_STATES = ['pending', 'running', 'stopping', 'stopped', 'terminated', 'unknown'] as const;
export type PowerState = (typeof POWER_STATES)[number];
export const HEALTH_STATES = ['unknown', 'healthy', 'unhealthy'] as const;
/** What `health` was last decided from: the cloud's instance and system status checks, or the agent's reports. */
export const HEALTH_SOURCES = ['status-checks', 'agent'] as const;
export type HealthSource = (typeof HEALTH_SOURCES)[number];
/** The user session on the machine as the agent last reported it; `unknown` when no agent reports. */
export const AGENT_SESSION_STATES = ['unknown', 'none', 'active', 'locked', 'idle', 'disconnected'] as const;
export const PRICE_SOURCES = ['default', 'admin', 'aws'] as const;

/** A message for the workstation's agent: `warn` shows `message`; `logout` ends the user's OS session. */
export interface AgentNotice {
  id: string;
  kind: 'warn' | 'logout';
  message: string;
  /** When the forced logout happens (for `warn`) or was ordered (for `logout`). */
  logoutAt: string;
  createdAt: string;
}

/**
 * Tag filter: every key must match, the instance's value being one of the listed values; an empty list
 * means "the key is present". Maps 1:1 to EC2 `tag:KEY` / `tag-key` filters.
 */
export type TagMatch = Record<string, string[]>;

/** Counts from one inventory sync, shown on the provider. */
export interface SyncCounts {
  seen: number;
  created: number;
  updated: number;
  terminated: number;
  /** Instances listed by the provider that another provider owns (ADR 0018). */
  skipped?: number;
  apiCalls?: number;
  durationMs?: number;
}

export const providers = pgTable(
  'providers',
  {
    id: id(),
    name: text('name').notNull(),
    kind: text('kind').notNull(),
    /** Required for aws-ec2; static hosts have none. Joined with instance type to price the machines. */
    region: text('region'),
    /** The EC2 emulator, a VPC endpoint; null = the SDK's default endpoint for the region. */
    endpoint: text('endpoint'),
    credentialsMode: text('credentials_mode').notNull().default('default-chain'),
    accessKeyId: text('access_key_id'),
    /** AES-256-GCM envelope of the secret access key; never returned by the API or logged. */
    secretCiphertext: text('secret_ciphertext'),
    tagFilter: jsonb('tag_filter').$type<TagMatch>().notNull().default({}),
    syncIntervalSeconds: integer('sync_interval_seconds').notNull().default(300),
    enabled: boolean('enabled').notNull().default(true),
    lastSyncAt: ts('last_sync_at'),
    lastSyncStatus: text('last_sync_status'),
    lastSyncMessage: text('last_sync_message'),
    lastSyncCounts: jsonb('last_sync_counts').$type<SyncCounts>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('providers_name_lower_key').on(sql`lower(${t.name})`),
    check('providers_name_check', sql`length(${t.name}) between 1 and 128`),
    check('providers_kind_check', oneOf(sql`${t.kind}`, PROVIDER_KINDS)),
    check('providers_credentials_mode_check', oneOf(sql`${t.credentialsMode}`, CREDENTIALS_MODES)),
    check('providers_last_sync_status_check', oneOf(sql`${t.lastSyncStatus}`, SYNC_STATUSES)),
    // A static provider calls no API, so it holds no credentials; aws-ec2 needs a region and credentials.
    check(
      'providers_kind_settings_check',
      sql`(${t.kind} = 'static' and ${t.credentialsMode} = 'none')
        or (${t.kind} = 'aws-ec2' and ${t.region} is not null and ${t.credentialsMode} <> 'none')`,
    ),
    // An access-key provider has both halves; other modes keep no stale key around.
    check(
      'providers_access_key_check',
      sql`(${t.credentialsMode} = 'access-key' and ${t.accessKeyId} is not null and ${t.secretCiphertext} is not null)
        or (${t.credentialsMode} <> 'access-key' and ${t.accessKeyId} is null and ${t.secretCiphertext} is null)`,
    ),
    check('providers_sync_interval_check', sql`${t.syncIntervalSeconds} between 10 and 86400`),
    check('providers_tag_filter_check', sql`jsonb_typeof(${t.tagFilter}) = 'object'`),
  ],
);

/** Per-host protocol override for static hosts (e.g. ssh on 2222); null port = the protocol plan's port. */
export interface WorkstationProtocol {
  protocol: Protocol;
  port?: number;
}

export const workstations = pgTable(
  'workstations',
  {
    id: id(),
    /**
     * Restrict: a provider's machines carry assignments, connections and cost history. Removing a
     * provider is an explicit purge of its workstations first, never a silent cascade.
     */
    providerId: uuid('provider_id')
      .notNull()
      .references(() => providers.id, { onDelete: 'restrict' }),
    /**
     * The provider's id (EC2 instance id; for static hosts the id the import chose). Null only between
     * creating the row for a launch and RunInstances answering; `launch_token` identifies it meanwhile.
     */
    externalId: text('external_id'),
    /**
     * Where `external_id` is unique across providers: one EC2 endpoint and region, or a static
     * provider's own namespace (`stagedoor_instance_scope()`). Set by a trigger from the provider
     * row, on insert and when the provider's endpoint or region changes, so no code path (nor a
     * broker of an older version) can skip it. Null on a cloud row only for a duplicate another
     * provider already owned when migration 0010 ran: such rows are never counted in the cost report.
     */
    instanceScope: text('instance_scope'),
    name: text('name').notNull(),
    privateAddress: inet('private_address'),
    /**
     * A static host registered by DNS name (machines on DHCP): resolved at each connect, and
     * `private_address` keeps the answer the connect used. Null for IP hosts and cloud machines.
     */
    dnsName: text('dns_name'),
    instanceType: text('instance_type'),
    availabilityZone: text('availability_zone'),
    subnetId: text('subnet_id'),
    imageId: text('image_id'),
    tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
    powerState: text('power_state').notNull().default('unknown'),
    powerStateChangedAt: ts('power_state_changed_at').notNull().defaultNow(),
    health: text('health').notNull().default('unknown'),
    healthCheckedAt: ts('health_checked_at'),
    /** Null until something decided `health` (docs/health.md). */
    healthSource: text('health_source'),
    /** Static hosts list what they serve; null for cloud machines, whose protocols come from the plan. */
    protocols: jsonb('protocols').$type<WorkstationProtocol[]>(),
    /**
     * Resolved pool membership (from the pool's rules or an admin's explicit choice); one pool at most.
     * Set null: deleting a pool leaves its machines in the inventory, unpooled; active assignments keep them.
     */
    poolId: uuid('pool_id').references(() => pools.id, { onDelete: 'set null' }),
    /** The pool whose template launched it; with `launch_token`, marks a machine Stagedoor may terminate. */
    launchedByPoolId: uuid('launched_by_pool_id').references(() => pools.id, { onDelete: 'set null' }),
    /**
     * EC2 ClientToken derived from the reconciler's action id, written before RunInstances is called.
     * After a crash, the next pass finds the instance by this token (and the `stagedoor:workstation`
     * tag) and adopts it instead of launching again. Non-null = launched by Stagedoor.
     */
    launchToken: text('launch_token'),
    launchedAt: ts('launched_at'),
    /**
     * The active assignment holding this machine, kept in the same transaction as the assignment row.
     * Not the invariant (the partial unique index on assignments is) but the lock marker: the connect
     * flow's `FOR UPDATE SKIP LOCKED` re-checks it on the row it locks, so a machine assigned by a
     * transaction that committed after ours began is skipped instead of colliding on the index.
     */
    assignmentId: uuid('assignment_id'),
    /** Excluded from assignment and from scale-in, e.g. while an admin repairs the image. */
    maintenance: boolean('maintenance').notNull().default(false),
    /** SHA-256 of the per-workstation agent token (passed in user data); lets an agent speak only for itself. */
    agentTokenHash: text('agent_token_hash'),
    agentVersion: text('agent_version'),
    agentLastSeenAt: ts('agent_last_seen_at'),
    agentSessionState: text('agent_session_state').notNull().default('unknown'),
    agentSessionUser: text('agent_session_user'),
    /** Last input or session event from the agent or gateway; idle rules compare against it. */
    lastActivityAt: ts('last_activity_at'),
    /** Seconds without input as the agent last reported them (null: no agent, or not idle). */
    agentIdleSeconds: integer('agent_idle_seconds'),
    /**
     * What the agent must tell its user next (a warning before a forced logout, then the logout
     * order), set by the release-plan timers and returned with every agent report; null = nothing.
     */
    agentNotice: jsonb('agent_notice').$type<AgentNotice>(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    // Inventory sync upserts on this, so a machine is never imported twice.
    unique('workstations_provider_external_key').on(t.providerId, t.externalId),
    unique('workstations_provider_launch_token_key').on(t.providerId, t.launchToken),
    // One owner per instance, whichever providers can list it (ADR 0018).
    uniqueIndex('workstations_instance_scope_external_key').on(t.instanceScope, t.externalId),
    unique('workstations_agent_token_hash_key').on(t.agentTokenHash),
    check('workstations_identity_check', sql`${t.externalId} is not null or ${t.launchToken} is not null`),
    check('workstations_power_state_check', oneOf(sql`${t.powerState}`, POWER_STATES)),
    check('workstations_health_check', oneOf(sql`${t.health}`, HEALTH_STATES)),
    check('workstations_health_source_check', sql`${t.healthSource} is null or ${oneOf(sql`${t.healthSource}`, HEALTH_SOURCES)}`),
    check('workstations_agent_session_state_check', oneOf(sql`${t.agentSessionState}`, AGENT_SESSION_STATES)),
    // Lower-case, no trailing dot (the API normalises): one spelling per name, so search and compare hold.
    check('workstations_dns_name_check', sql`${t.dnsName} is null or (length(${t.dnsName}) between 1 and 253 and ${t.dnsName} = lower(${t.dnsName}) and ${t.dnsName} !~ '[.]$')`),
    check('workstations_tags_check', sql`jsonb_typeof(${t.tags}) = 'object'`),
    check('workstations_protocols_check', sql`${t.protocols} is null or jsonb_typeof(${t.protocols}) = 'array'`),
    check('workstations_agent_notice_check', sql`${t.agentNotice} is null or jsonb_typeof(${t.agentNotice}) = 'object'`),
    check('workstations_agent_idle_seconds_check', sql`${t.agentIdleSeconds} is null or ${t.agentIdleSeconds} >= 0`),
    // Free machines in a pool (connect flow) and the reconciler's per-pool snapshot.
    index('workstations_pool_power_idx').on(t.poolId, t.powerState),
    // The connect flow's pick: free machines of a pool.
    index('workstations_pool_free_idx').on(t.poolId).where(sql`${t.assignmentId} is null`),
    index('workstations_provider_idx').on(t.providerId),
    // Launch-rate limit: launches by a pool in the last minute.
    index('workstations_launched_by_pool_idx').on(t.launchedByPoolId, t.launchedAt),
    index('workstations_name_idx').on(t.name),
  ],
);

/**
 * Power-state intervals for the cost report: one row per state a machine was in. The open interval
 * (to_at null) is unique per machine, so closing it and opening the next is one safe transaction.
 */
export const workstationPowerHistory = pgTable(
  'workstation_power_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** Cascade: purging a workstation purges its history. Terminated machines are kept, not deleted, so reports stay whole. */
    workstationId: uuid('workstation_id')
      .notNull()
      .references(() => workstations.id, { onDelete: 'cascade' }),
    state: text('state').notNull(),
    /** Snapshots: a machine can be resized or change pools; the report prices and groups by what was true then. */
    instanceType: text('instance_type'),
    poolId: uuid('pool_id').references(() => pools.id, { onDelete: 'set null' }),
    fromAt: ts('from_at').notNull(),
    toAt: ts('to_at'),
  },
  (t) => [
    check('workstation_power_history_state_check', oneOf(sql`${t.state}`, POWER_STATES)),
    check('workstation_power_history_interval_check', sql`${t.toAt} is null or ${t.toAt} >= ${t.fromAt}`),
    uniqueIndex('workstation_power_history_open_key').on(t.workstationId).where(sql`${t.toAt} is null`),
    index('workstation_power_history_workstation_idx').on(t.workstationId, t.fromAt),
    // Report range scans: intervals overlapping [from, to).
    index('workstation_power_history_from_idx').on(t.fromAt),
  ],
);

/** Hourly prices for the cost report; shipped defaults are `source = 'default'` so a refresh never overwrites an admin's edit. */
export const priceTable = pgTable(
  'price_table',
  {
    id: id(),
    instanceType: text('instance_type').notNull(),
    region: text('region').notNull(),
    /** numeric, read as a string: money must not pass through binary floating point. */
    hourlyPrice: numeric('hourly_price', { precision: 12, scale: 6 }).notNull(),
    currency: text('currency').notNull().default('USD'),
    source: text('source').notNull().default('admin'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    unique('price_table_type_region_key').on(t.instanceType, t.region),
    check('price_table_price_check', sql`${t.hourlyPrice} >= 0`),
    check('price_table_currency_check', sql`${t.currency} ~ '^[A-Z]{3}$'`),
    check('price_table_source_check', oneOf(sql`${t.source}`, PRICE_SOURCES)),
  ],
);
