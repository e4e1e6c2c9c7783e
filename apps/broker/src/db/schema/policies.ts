import { sql } from 'drizzle-orm';
import {
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  unique,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { createdAt, id, oneOf, updatedAt } from './columns.ts';
import { groups } from './identity.ts';
import { pools, type Weekday } from './pools.ts';

/** `html5-vnc` and `html5-ssh` come later; connections.protocol is checked against this list. */
export const PROTOCOLS = ['rdp', 'dcv', 'vnc', 'ssh', 'pcoip'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export const POWER_ACTIONS = ['none', 'stop', 'hibernate', 'terminate', 'restart'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];
/** `floating`: back to the pool on release; `persistent`: the user keeps the machine. */
export const ASSIGNMENT_MODES = ['floating', 'persistent'] as const;

/** One entry of a protocol plan, in order of preference. */
export interface ProtocolPlanEntry {
  protocol: Protocol;
  port: number;
  viaGateway: boolean;
  /** With viaGateway: a port per grant (default), or the routed listeners and a token per grant (ADR 0017). */
  gatewayMode?: 'portForward' | 'routed';
  /** Routed: how long after a session ends the same client may reconnect with the grant (default 600; 0: single use). */
  reconnectWindowSeconds?: number;
  /** Offer "Open in browser" (routed only; absent in plans written before issue 17: false). */
  browser?: boolean;
  /**
   * Per-protocol client settings, e.g. `{ fileLines: ['audiomode:i:0'] }` merged into the `.rdp` file (a line replaces the default of its key),
   * or `{ user: 'artist' }` for the ssh command. Free-form: each protocol's writer validates its own.
   */
  clientOptions?: Record<string, unknown>;
}

/** e.g. weekdays at 20:00: stop running machines that have no live session. */
export interface PowerScheduleRule {
  days: Weekday[];
  /** `HH:MM`, 24-hour, in the plan's time zone. */
  at: string;
  action: Exclude<PowerAction, 'none'>;
  /** `unassigned`: only machines nobody holds; `no-session`: also assigned ones with no live session. */
  target: 'unassigned' | 'no-session';
}

export const protocolPlans = pgTable(
  'protocol_plans',
  {
    id: id(),
    name: text('name').notNull(),
    description: text('description'),
    protocols: jsonb('protocols').$type<ProtocolPlanEntry[]>().notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('protocol_plans_name_lower_key').on(sql`lower(${t.name})`),
    check('protocol_plans_name_check', sql`length(${t.name}) between 1 and 128`),
    // An empty plan would offer a desktop nobody can connect to.
    check(
      'protocol_plans_protocols_check',
      sql`jsonb_typeof(${t.protocols}) = 'array' and jsonb_array_length(${t.protocols}) >= 1`,
    ),
  ],
);

/** Delays are seconds after the event; -1 = never (the action is not taken). */
export const powerPlans = pgTable(
  'power_plans',
  {
    id: id(),
    name: text('name').notNull(),
    description: text('description'),
    onDisconnectAction: text('on_disconnect_action').notNull().default('none'),
    onDisconnectDelaySeconds: integer('on_disconnect_delay_seconds').notNull().default(-1),
    onLogoutAction: text('on_logout_action').notNull().default('none'),
    onLogoutDelaySeconds: integer('on_logout_delay_seconds').notNull().default(-1),
    /** Idle as the agent reports it (no input for its threshold); the delay counts from that report. */
    onIdleAction: text('on_idle_action').notNull().default('none'),
    onIdleDelaySeconds: integer('on_idle_delay_seconds').notNull().default(-1),
    scheduleRules: jsonb('schedule_rules').$type<PowerScheduleRule[]>().notNull().default([]),
    /** IANA name for the schedule rules. */
    timeZone: text('time_zone').notNull().default('UTC'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('power_plans_name_lower_key').on(sql`lower(${t.name})`),
    check('power_plans_name_check', sql`length(${t.name}) between 1 and 128`),
    check('power_plans_on_disconnect_action_check', oneOf(sql`${t.onDisconnectAction}`, POWER_ACTIONS)),
    check('power_plans_on_logout_action_check', oneOf(sql`${t.onLogoutAction}`, POWER_ACTIONS)),
    check('power_plans_on_idle_action_check', oneOf(sql`${t.onIdleAction}`, POWER_ACTIONS)),
    check(
      'power_plans_delays_check',
      sql`${t.onDisconnectDelaySeconds} >= -1 and ${t.onLogoutDelaySeconds} >= -1 and ${t.onIdleDelaySeconds} >= -1`,
    ),
    check('power_plans_schedule_rules_check', sql`jsonb_typeof(${t.scheduleRules}) = 'array'`),
  ],
);

/** When a floating assignment ends. Seconds; -1 = never. Persistent assignments ignore this plan. */
export const releasePlans = pgTable(
  'release_plans',
  {
    id: id(),
    name: text('name').notNull(),
    description: text('description'),
    releaseOnLogout: boolean('release_on_logout').notNull().default(false),
    releaseAfterDisconnectSeconds: integer('release_after_disconnect_seconds').notNull().default(-1),
    releaseOnIdleSeconds: integer('release_on_idle_seconds').notNull().default(-1),
    /** Log the user out of the OS on release (through the agent), after the warning. */
    forceLogout: boolean('force_logout').notNull().default(false),
    /** How long before a forced logout the user is warned; 0 = no warning. */
    warnSeconds: integer('warn_seconds').notNull().default(0),
    warnMessage: text('warn_message'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('release_plans_name_lower_key').on(sql`lower(${t.name})`),
    check('release_plans_name_check', sql`length(${t.name}) between 1 and 128`),
    check(
      'release_plans_delays_check',
      sql`${t.releaseAfterDisconnectSeconds} >= -1 and ${t.releaseOnIdleSeconds} >= -1 and ${t.warnSeconds} >= 0`,
    ),
  ],
);

export const policies = pgTable(
  'policies',
  {
    id: id(),
    name: text('name').notNull(),
    description: text('description'),
    /**
     * First matching policy wins, lowest position first. Unique so the order is never ambiguous; to
     * reorder in one transaction, first move the affected rows out of the way (e.g. negate them).
     */
    position: integer('position').notNull(),
    enabled: boolean('enabled').notNull().default(true),
    assignmentMode: text('assignment_mode').notNull().default('floating'),
    startStoppedOnLogin: boolean('start_stopped_on_login').notNull().default(true),
    launchOnLogin: boolean('launch_on_login').notNull().default(false),
    /**
     * Persistent assignments: start the user's own machine shortly before their usual arrival when
     * their history says they are likely to come (domain/power/prestart.ts). Off by default: a wrong
     * guess is paid in instance-minutes, and only the admin knows whether a wait is worth that.
     */
    prestartPersistent: boolean('prestart_persistent').notNull().default(false),
    /** The user may restart their own machine from the portal. */
    allowRestart: boolean('allow_restart').notNull().default(false),
    /**
     * Longest a brokered session may last, counted from when its grant is issued; carried into the
     * grant (`session_until`), so the gateway closes the session then. Null: no cap.
     */
    maxSessionMinutes: integer('max_session_minutes'),
    /**
     * The plans: restrict, so deleting a plan still in use is refused with a clear error instead of
     * silently changing what the policy does (a vanished power plan means machines never stop — the
     * bill). Null means: protocol plan → the built-in default (RDP via gateway); power plan → no
     * power management; release plan → floating assignments are released only by the user or an admin.
     */
    protocolPlanId: uuid('protocol_plan_id').references(() => protocolPlans.id, { onDelete: 'restrict' }),
    powerPlanId: uuid('power_plan_id').references(() => powerPlans.id, { onDelete: 'restrict' }),
    releasePlanId: uuid('release_plan_id').references(() => releasePlans.id, { onDelete: 'restrict' }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('policies_name_lower_key').on(sql`lower(${t.name})`),
    unique('policies_position_key').on(t.position),
    check('policies_name_check', sql`length(${t.name}) between 1 and 128`),
    check('policies_assignment_mode_check', oneOf(sql`${t.assignmentMode}`, ASSIGNMENT_MODES)),
    check('policies_max_session_minutes_check', sql`${t.maxSessionMinutes} is null or ${t.maxSessionMinutes} between 1 and 525600`),
    index('policies_protocol_plan_idx').on(t.protocolPlanId),
    index('policies_power_plan_idx').on(t.powerPlanId),
    index('policies_release_plan_idx').on(t.releasePlanId),
  ],
);

/** Which groups a policy matches. */
export const policyGroups = pgTable(
  'policy_groups',
  {
    policyId: uuid('policy_id')
      .notNull()
      .references(() => policies.id, { onDelete: 'cascade' }),
    /**
     * Cascade: groups come and go with directory mappings, and a directory refresh must not fail
     * because a policy names the group. A policy left with no groups simply matches nobody.
     */
    groupId: uuid('group_id')
      .notNull()
      .references(() => groups.id, { onDelete: 'cascade' }),
  },
  (t) => [
    primaryKey({ name: 'policy_groups_pkey', columns: [t.policyId, t.groupId] }),
    // Login: the policies matching the user's groups.
    index('policy_groups_group_idx').on(t.groupId),
  ],
);

/** The pools a policy offers, in order, and how many desktops from each. */
export const policyPools = pgTable(
  'policy_pools',
  {
    policyId: uuid('policy_id')
      .notNull()
      .references(() => policies.id, { onDelete: 'cascade' }),
    /** Restrict: deleting a pool that a policy still offers is refused, so users never lose desktops by accident. */
    poolId: uuid('pool_id')
      .notNull()
      .references(() => pools.id, { onDelete: 'restrict' }),
    desktopCount: integer('desktop_count').notNull().default(1),
    position: integer('position').notNull(),
  },
  (t) => [
    primaryKey({ name: 'policy_pools_pkey', columns: [t.policyId, t.poolId] }),
    unique('policy_pools_position_key').on(t.policyId, t.position),
    check('policy_pools_desktop_count_check', sql`${t.desktopCount} >= 1`),
    index('policy_pools_pool_idx').on(t.poolId),
  ],
);
