import { sql } from 'drizzle-orm';
import { check, index, integer, jsonb, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { createdAt, id, oneOf, ts } from './columns.ts';

export const TIMER_STATES = ['pending', 'done', 'failed', 'cancelled'] as const;

/**
 * Durable timers: a row per future action (stop this machine at 21:00 …). Claimed with
 * `FOR UPDATE SKIP LOCKED` and a lease, so any broker node may fire it and only one does.
 */
export const timers = pgTable(
  'timers',
  {
    id: id(),
    kind: text('kind').notNull(),
    /** Identifies what the timer is about, so a newer schedule or a cancel finds the pending one. */
    key: text('key').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull().default({}),
    dueAt: ts('due_at').notNull(),
    state: text('state').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(8),
    leaseUntil: ts('lease_until'),
    leasedBy: text('leased_by'),
    lastError: text('last_error'),
    createdAt: createdAt(),
    finishedAt: ts('finished_at'),
  },
  (t) => [
    check('timers_state_check', oneOf(sql`${t.state}`, TIMER_STATES)),
    check('timers_attempts_check', sql`${t.attempts} >= 0 and ${t.maxAttempts} >= 1`),
    // One pending timer per (kind, key): scheduling again replaces, never duplicates.
    uniqueIndex('timers_pending_key').on(t.kind, t.key).where(sql`${t.state} = 'pending'`),
    index('timers_due_idx').on(t.dueAt).where(sql`${t.state} = 'pending'`),
    // Power and release timers carry payload.workstationId: cancel a machine's timers on reconnect or
    // login, and show them in "why is it still running?".
    index('timers_pending_workstation_idx').on(sql`(${t.payload} ->> 'workstationId')`).where(sql`${t.state} = 'pending'`),
  ],
);
