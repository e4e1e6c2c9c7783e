import { and, eq, inArray, sql } from 'drizzle-orm';
import type { DbOrTx } from '../db/database.ts';
import { rowsOf } from '../db/migrate.ts';
import { timers } from '../db/schema/index.ts';

export type TimerRow = typeof timers.$inferSelect;

export class TimersRepository {
  constructor(private readonly db: DbOrTx) {}

  /** Insert, or move the pending timer with the same (kind, key): one pending timer per subject. */
  async upsertPending(t: { kind: string; key: string; dueAt: Date; payload: Record<string, unknown>; maxAttempts: number }, db: DbOrTx = this.db): Promise<TimerRow> {
    const [row] = await db
      .insert(timers)
      .values({ kind: t.kind, key: t.key, dueAt: t.dueAt, payload: t.payload, maxAttempts: t.maxAttempts })
      .onConflictDoUpdate({
        target: [timers.kind, timers.key],
        targetWhere: sql`${timers.state} = 'pending'`,
        set: { dueAt: t.dueAt, payload: t.payload, attempts: 0, lastError: null, leaseUntil: null, leasedBy: null },
      })
      .returning();
    return row!;
  }

  async cancelPending(kind: string, key: string, now: Date, db: DbOrTx = this.db): Promise<number> {
    const rows = await db
      .update(timers)
      .set({ state: 'cancelled', finishedAt: now })
      .where(and(eq(timers.kind, kind), eq(timers.key, key), eq(timers.state, 'pending')))
      .returning({ id: timers.id });
    return rows.length;
  }

  /** Cancel the pending timers of one key across several kinds (a machine's power and release timers). */
  async cancelPendingKinds(kinds: readonly string[], key: string, now: Date, db: DbOrTx = this.db): Promise<TimerRow[]> {
    if (kinds.length === 0) return [];
    return db
      .update(timers)
      .set({ state: 'cancelled', finishedAt: now })
      .where(and(inArray(timers.kind, [...kinds]), eq(timers.key, key), eq(timers.state, 'pending')))
      .returning();
  }

  /** Insert unless a pending timer of this (kind, key) exists; returns the new row, or undefined. */
  async insertIfAbsent(t: { kind: string; key: string; dueAt: Date; payload: Record<string, unknown>; maxAttempts: number }, db: DbOrTx = this.db): Promise<TimerRow | undefined> {
    const [row] = await db
      .insert(timers)
      .values({ kind: t.kind, key: t.key, dueAt: t.dueAt, payload: t.payload, maxAttempts: t.maxAttempts })
      .onConflictDoNothing({ target: [timers.kind, timers.key], where: sql`${timers.state} = 'pending'` })
      .returning();
    return row;
  }

  /** Pending timers whose kind starts with `prefix` (e.g. `power.schedule`), for the jobs that keep them. */
  async pendingOfKind(kind: string, db: DbOrTx = this.db): Promise<TimerRow[]> {
    return db.select().from(timers).where(and(eq(timers.kind, kind), eq(timers.state, 'pending')));
  }

  /** Pending timers about one workstation (payload.workstationId), soonest first. */
  async pendingForWorkstation(workstationId: string, db: DbOrTx = this.db): Promise<TimerRow[]> {
    return db
      .select()
      .from(timers)
      .where(and(eq(timers.state, 'pending'), sql`${timers.payload} ->> 'workstationId' = ${workstationId}`))
      .orderBy(timers.dueAt);
  }

  /**
   * Claim up to `limit` due timers for this node. `SKIP LOCKED` lets concurrent claimers take
   * different rows; the lease keeps a claimed row from being claimed again until it runs out, so
   * a node that dies mid-action hands its timers to another after the lease.
   */
  async claimDue(now: Date, limit: number, nodeId: string, leaseMs: number): Promise<TimerRow[]> {
    const leaseUntil = new Date(now.getTime() + leaseMs);
    const result = await this.db.execute(sql`
      update ${timers} set lease_until = ${leaseUntil}, leased_by = ${nodeId}, attempts = attempts + 1
      where id in (
        select id from ${timers}
        where state = 'pending' and due_at <= ${now} and (lease_until is null or lease_until <= ${now})
        order by due_at
        limit ${limit}
        for update skip locked
      )
      returning id`);
    const ids = rowsOf<{ id: string }>(result).map((r) => r.id);
    if (ids.length === 0) return [];
    return this.db.select().from(timers).where(inArray(timers.id, ids)).orderBy(timers.dueAt);
  }

  /** Claim one pending timer by (kind, key) now, whatever its due time; undefined when another node holds it or it is gone. */
  async claimOne(kind: string, key: string, now: Date, nodeId: string, leaseMs: number): Promise<TimerRow | undefined> {
    const result = await this.db.execute(sql`
      update ${timers} set lease_until = ${new Date(now.getTime() + leaseMs)}, leased_by = ${nodeId}, attempts = attempts + 1
      where id in (
        select id from ${timers}
        where kind = ${kind} and key = ${key} and state = 'pending' and (lease_until is null or lease_until <= ${now})
        for update skip locked
      )
      returning id`);
    const id = rowsOf<{ id: string }>(result)[0]?.id;
    if (!id) return undefined;
    const [row] = await this.db.select().from(timers).where(eq(timers.id, id));
    return row;
  }

  /** Mark done only if this node still holds the lease: a late finisher cannot overwrite a re-claim. */
  async markDone(id: string, nodeId: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(timers)
      .set({ state: 'done', finishedAt: now, leaseUntil: null })
      .where(and(eq(timers.id, id), eq(timers.leasedBy, nodeId), eq(timers.state, 'pending')))
      .returning({ id: timers.id });
    return rows.length === 1;
  }

  async markRetry(id: string, nodeId: string, dueAt: Date, error: string): Promise<void> {
    await this.db
      .update(timers)
      .set({ dueAt, lastError: error, leaseUntil: null, leasedBy: null })
      .where(and(eq(timers.id, id), eq(timers.leasedBy, nodeId), eq(timers.state, 'pending')));
  }

  async markFailed(id: string, nodeId: string, now: Date, error: string): Promise<void> {
    await this.db
      .update(timers)
      .set({ state: 'failed', lastError: error, finishedAt: now, leaseUntil: null })
      .where(and(eq(timers.id, id), eq(timers.leasedBy, nodeId), eq(timers.state, 'pending')));
  }

  async findPending(kind: string, key: string): Promise<TimerRow | undefined> {
    const [row] = await this.db.select().from(timers).where(and(eq(timers.kind, kind), eq(timers.key, key), eq(timers.state, 'pending')));
    return row;
  }

  async deleteFinishedBefore(before: Date): Promise<number> {
    const rows = await this.db
      .delete(timers)
      .where(and(sql`${timers.state} <> 'pending'`, sql`${timers.finishedAt} < ${before}`))
      .returning({ id: timers.id });
    return rows.length;
  }
}
