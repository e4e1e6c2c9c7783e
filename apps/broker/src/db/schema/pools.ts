import { sql } from 'drizzle-orm';
import { check, index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, oneOf, ts, updatedAt } from './columns.ts';
import { providers, type TagMatch } from './providers.ts';

export const PROVISIONING_STATES = ['running', 'paused'] as const;
/** `partial`: some actions failed (e.g. one subnet out of capacity) while others went through. */
export const RECONCILE_OUTCOMES = ['ok', 'partial', 'error'] as const;

/**
 * Which workstations of the pool's provider belong to the pool. Both parts may be given; a machine
 * matching either is a member. Machines the pool launched are members whatever their tags.
 * The resolved result lives in `workstations.pool_id` (one pool per machine: an existing membership
 * wins over a second pool whose rules also match).
 */
export interface PoolMembership {
  tags?: TagMatch;
  /** Explicit members by the provider's id (EC2 instance id, static host id). */
  externalIds?: string[];
}

/** How the pool launches machines (AWS terms; other clouds map onto them). Null template = no provisioning. */
export interface PoolTemplate {
  /** Exactly one of imageId and launchTemplate. */
  imageId?: string;
  launchTemplate?: { id?: string; name?: string; version?: string };
  /** Preferred first; on a capacity error the launch moves to the next subnet, then the next type. */
  instanceTypes: string[];
  /** Launches spread over these (and so over their AZs). */
  subnetIds: string[];
  securityGroupIds?: string[];
  iamInstanceProfile?: string;
  keyName?: string;
  /** Added to Stagedoor's own `stagedoor:*` tags, which always win. */
  tags?: Record<string, string>;
  /** e.g. `edit-{seq:03}`; `{seq}` takes `pools.name_sequence`. */
  namePattern?: string;
  /** Template text; variables such as `{{workstation.name}}` and `{{agent.token}}` are filled per launch. */
  userData?: string;
  /** Launch with EC2 hibernation enabled and an encrypted root volume (power plans may then hibernate). */
  hibernation?: boolean;
  /** Root volume size in GiB (with hibernation: the image plus the RAM). */
  rootVolumeGiB?: number;
}

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/** Thresholds that replace the pool's own while the window is open, in the pool's time zone. */
export interface ScheduleWindow {
  days: Weekday[];
  /** `HH:MM`, 24-hour; `end` before `start` means the window runs past midnight. */
  start: string;
  end: string;
  minAvailable?: number;
  maxAvailable?: number | null;
  maxTotal?: number | null;
}

/**
 * How the pool sizes its standby (issue 19, ADR 0022). `windows`: the thresholds in force (the
 * pool's own or its open schedule window). `predictive`: from the pool's demand forecast, bounded by
 * those thresholds (`domain/pools/standby.ts`).
 */
export interface StandbySetting {
  mode: 'windows' | 'predictive';
  /** Quantile of the past weeks' arrival counts to plan for (0.5 … 0.99). */
  quantile: number;
  /** Boot-to-ready time of the pool's machines: the warm standby covers the arrivals within it. */
  bootSeconds: number;
  /** Minutes of further expected arrivals covered by stopped (EBS) machines; 0 = none. */
  reserveMinutes: number;
  /**
   * Minutes ahead over which running standby is held: only warm machines above the arrivals
   * expected in this window are stopped. Optional: rows written before it existed read the default
   * (`DEFAULT_HOLD_MINUTES`, ADR 0022). 0 = stop surplus at once.
   */
  holdMinutes?: number;
  /**
   * Minutes ahead whose expected arrivals get a machine started now: the warm target covers
   * max(one boot + tick, this). Optional: rows written before it existed read the default
   * (`DEFAULT_LEAD_MINUTES`, ADR 0022). 0 = one boot + tick.
   */
  leadMinutes?: number;
}

/** The hold window a pool without its own: about one σ of a studio's morning arrival spread (ADR 0022). */
export const DEFAULT_HOLD_MINUTES = 15;

/** The start lead a pool without its own: see ADR 0022 ("Starts look a few minutes ahead"). */
export const DEFAULT_LEAD_MINUTES = 5;

export const DEFAULT_STANDBY: StandbySetting = { mode: 'windows', quantile: 0.9, bootSeconds: 120, reserveMinutes: 0 };

/** What the predictive standby decided on the last pass, and why (shown on the pool). */
export interface StandbyDecision {
  mode: 'windows' | 'predictive';
  warm: number;
  available: number;
  /** Running standby held against stops (≥ warm); absent on rows from before the hold window. */
  hold?: number;
  reason: string;
}

/** Counts from the reconciler's last pass, shown on the pool. */
export interface ReconcileSummary {
  desired?: number;
  available?: number;
  total?: number;
  launched?: number;
  started?: number;
  stopped?: number;
  terminated?: number;
  adopted?: number;
  /** Recent capacity errors (ISO times): the planner tries these subnets last for a while. */
  capacityFailures?: { subnetId: string; instanceType: string; at: string }[];
  /** Why the pool is short of its thresholds (paused, launch rate, maxTotal, back-off…), for people. */
  notes?: string[];
  /** The standby this pass aimed at and why (predictive pools). */
  standby?: StandbyDecision;
}

export const pools = pgTable(
  'pools',
  {
    id: id(),
    name: text('name').notNull(),
    description: text('description'),
    /**
     * Restrict: a pool's template and membership rules only make sense against its provider; the
     * provider cannot disappear from under a pool.
     */
    providerId: uuid('provider_id')
      .notNull()
      .references(() => providers.id, { onDelete: 'restrict' }),
    membership: jsonb('membership').$type<PoolMembership>().notNull().default({}),
    template: jsonb('template').$type<PoolTemplate>(),
    /** Next `{seq}` for the name pattern: `update … set name_sequence = name_sequence + 1 returning`. */
    nameSequence: integer('name_sequence').notNull().default(0),
    /** Standby: healthy, unassigned, running-or-startable machines to keep ready. */
    minAvailable: integer('min_available').notNull().default(0),
    /** Null = no cap on the pool's size. */
    maxTotal: integer('max_total'),
    /** Null = never scale in; above it, surplus unassigned machines are terminated. */
    maxAvailable: integer('max_available'),
    scheduleWindows: jsonb('schedule_windows').$type<ScheduleWindow[]>().notNull().default([]),
    standby: jsonb('standby').$type<StandbySetting>().notNull().default(DEFAULT_STANDBY),
    /** IANA name; schedule windows are read in it. */
    timeZone: text('time_zone').notNull().default('UTC'),
    /** Not nullable on purpose: a planner bug must not be able to launch without limit. */
    launchRatePerMinute: integer('launch_rate_per_minute').notNull().default(10),
    provisioning: text('provisioning').notNull().default('running'),
    /** Gateways of this cluster carry the pool's connections; null = any healthy gateway. */
    gatewayCluster: text('gateway_cluster'),
    lastReconcileAt: ts('last_reconcile_at'),
    lastReconcileOutcome: text('last_reconcile_outcome'),
    /** Why the last pass failed, in words an admin can act on (shown on the pool). */
    lastReconcileError: text('last_reconcile_error'),
    lastReconcileSummary: jsonb('last_reconcile_summary').$type<ReconcileSummary>(),
    /** Per-pool back-off after repeated failures; the reconciler skips the pool until then. */
    backoffUntil: ts('backoff_until'),
    consecutiveFailures: integer('consecutive_failures').notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('pools_name_lower_key').on(sql`lower(${t.name})`),
    check('pools_name_check', sql`length(${t.name}) between 1 and 128`),
    check('pools_provisioning_check', oneOf(sql`${t.provisioning}`, PROVISIONING_STATES)),
    check('pools_last_reconcile_outcome_check', oneOf(sql`${t.lastReconcileOutcome}`, RECONCILE_OUTCOMES)),
    check('pools_name_sequence_check', sql`${t.nameSequence} >= 0`),
    check(
      'pools_thresholds_check',
      sql`${t.minAvailable} >= 0
        and (${t.maxTotal} is null or ${t.maxTotal} >= 0)
        and (${t.maxAvailable} is null or ${t.maxAvailable} >= 0)
        and (${t.maxAvailable} is null or ${t.minAvailable} <= ${t.maxAvailable})
        and (${t.maxTotal} is null or ${t.minAvailable} <= ${t.maxTotal})
        and (${t.maxTotal} is null or ${t.maxAvailable} is null or ${t.maxAvailable} <= ${t.maxTotal})`,
    ),
    check('pools_launch_rate_check', sql`${t.launchRatePerMinute} between 1 and 10000`),
    check('pools_consecutive_failures_check', sql`${t.consecutiveFailures} >= 0`),
    check('pools_membership_check', sql`jsonb_typeof(${t.membership}) = 'object'`),
    check('pools_template_check', sql`${t.template} is null or jsonb_typeof(${t.template}) = 'object'`),
    check('pools_schedule_windows_check', sql`jsonb_typeof(${t.scheduleWindows}) = 'array'`),
    check('pools_standby_check', sql`jsonb_typeof(${t.standby}) = 'object' and ${t.standby}->>'mode' in ('windows', 'predictive')`),
    index('pools_provider_idx').on(t.providerId),
  ],
);
