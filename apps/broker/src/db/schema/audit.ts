import { bigserial, check, index, inet, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { oneOf, ts } from './columns.ts';

export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const;

/** Append-only trail: who did what, when, from where. Never updated, never cascaded away. */
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
