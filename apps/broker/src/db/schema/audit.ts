import { bigserial, boolean, check, index, inet, integer, jsonb, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { oneOf, ts } from './columns.ts';

export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const;

/**
 * Append-only trail: who did what, when, from where. Never updated, never cascaded away; rows older
 * than STAGEDOOR_AUDIT_RETENTION_DAYS are deleted by the `retention` job (which audits that it did).
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    /** Not a foreign key: the trail must outlive the user it names. */
    actorUserId: uuid('actor_user_id'),
    actorName: text('actor_name'),
    sourceAddress: inet('source_address'),
    action: text('action').notNull(),
    targetType: text('target_type'),
    targetId: text('target_id'),
    outcome: text('outcome').notNull(),
    reason: text('reason'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    requestId: text('request_id'),
  },
  (t) => [
    check('audit_events_outcome_check', oneOf(sql`${t.outcome}`, AUDIT_OUTCOMES)),
    index('audit_events_at_idx').on(t.at),
    index('audit_events_actor_idx').on(t.actorUserId, t.at),
    index('audit_events_target_idx').on(t.targetType, t.targetId),
  ],
);

/**
 * Refusals (failed sign-ins, locked-out attempts) audited per source address and minute. Past the
 * cap, a refusal is only counted here; when the minute is over, the `retention` job writes one
 * summary audit row per address and deletes the counter. A storm from one address thus writes at
 * most cap + 1 rows a minute, and the count of what it tried is still in the trail.
 */
export const auditRefusalCounts = pgTable(
  'audit_refusal_counts',
  {
    /** The address key of the login throttle: an IPv4 address, or an IPv6 /64. */
    sourceKey: text('source_key').notNull(),
    minute: ts('minute').notNull(),
    written: integer('written').notNull().default(0),
    suppressed: integer('suppressed').notNull().default(0),
    /** Suppressed refusals by audit action, e.g. {"auth.login": 180}. */
    suppressedActions: jsonb('suppressed_actions').$type<Record<string, number>>().notNull().default({}),
    /** Whether the latest refusal counted here was written (false: suppressed); read back by the upsert that set it. */
    lastWritten: boolean('last_written').notNull().default(true),
  },
  (t) => [
    primaryKey({ name: 'audit_refusal_counts_pkey', columns: [t.sourceKey, t.minute] }),
    check('audit_refusal_counts_counts_check', sql`${t.written} >= 0 and ${t.suppressed} >= 0`),
    index('audit_refusal_counts_minute_idx').on(t.minute),
  ],
);
