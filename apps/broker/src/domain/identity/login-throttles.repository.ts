import { and, asc, desc, eq, gt, inArray, lt, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { loginThrottles } from '../../db/schema/index.ts';

export type ThrottleScope = 'account' | 'address';
export type ThrottleRow = typeof loginThrottles.$inferSelect;
export interface ThrottleKey {
  scope: ThrottleScope;
  key: string;
}

/**
 * Failed-login counters in the database, so every broker node sees the same ones. Each failure is
 * one upsert: the counter, its window and the lock are computed by PostgreSQL from the row as it is,
 * so concurrent failures on two nodes cannot both read "4" and each write "5".
 */
export class LoginThrottlesRepository {
  constructor(private readonly db: DbOrTx) {}

  async recordFailure(
    k: ThrottleKey,
    p: { now: Date; windowStart: Date; threshold: number; lockUntil: Date },
    db: DbOrTx = this.db,
  ): Promise<{ failureCount: number; lockedUntil: Date | null; justLocked: boolean }> {
    const t = loginThrottles;
    const expired = sql`${t.windowStartedAt} < ${p.windowStart}`;
    const next = sql`(case when ${expired} then 1 else ${t.failureCount} + 1 end)`;
    const [row] = await db
      .insert(t)
      .values({ scope: k.scope, key: k.key, failureCount: 1, windowStartedAt: p.now, lastFailureAt: p.now, updatedAt: p.now, lockedUntil: p.threshold <= 1 ? p.lockUntil : null })
      .onConflictDoUpdate({
        target: [t.scope, t.key],
        set: {
          failureCount: next,
          windowStartedAt: sql`(case when ${expired} then ${p.now}::timestamptz else ${t.windowStartedAt} end)`,
          lastFailureAt: p.now,
          updatedAt: p.now,
          // Lock when the count reaches the threshold; an existing, longer lock is never shortened.
          lockedUntil: sql`(case when ${next} >= ${p.threshold} and (${t.lockedUntil} is null or ${t.lockedUntil} < ${p.lockUntil}::timestamptz) then ${p.lockUntil}::timestamptz else ${t.lockedUntil} end)`,
        },
      })
      .returning({ failureCount: t.failureCount, lockedUntil: t.lockedUntil });
    const lockedUntil = row!.lockedUntil;
    return { failureCount: row!.failureCount, lockedUntil, justLocked: lockedUntil !== null && lockedUntil.getTime() === p.lockUntil.getTime() };
  }

  /** The entries among `keys` that are locked at `now`. */
  async locked(keys: ThrottleKey[], now: Date, db: DbOrTx = this.db): Promise<ThrottleRow[]> {
    if (keys.length === 0) return [];
    const t = loginThrottles;
    return db
      .select()
      .from(t)
      .where(and(or(...keys.map((k) => and(eq(t.scope, k.scope), eq(t.key, k.key)))), gt(t.lockedUntil, now)))
      .orderBy(desc(t.lockedUntil));
  }

  async clear(keys: ThrottleKey[], db: DbOrTx = this.db): Promise<number> {
    if (keys.length === 0) return 0;
    const t = loginThrottles;
    const rows = await db
      .delete(t)
      .where(or(...keys.map((k) => and(eq(t.scope, k.scope), eq(t.key, k.key)))))
      .returning({ key: t.key });
    return rows.length;
  }

  async clearAccounts(names: string[], db: DbOrTx = this.db): Promise<number> {
    if (names.length === 0) return 0;
    const rows = await db
      .delete(loginThrottles)
      .where(and(eq(loginThrottles.scope, 'account'), inArray(loginThrottles.key, names)))
      .returning({ key: loginThrottles.key });
    return rows.length;
  }

  /** Entries with failures in the current window or a lock still running. */
  list(now: Date, windowStart: Date, limit: number, offset: number): Promise<ThrottleRow[]> {
    const t = loginThrottles;
    return this.db
      .select()
      .from(t)
      .where(or(gt(t.lockedUntil, now), gt(t.windowStartedAt, windowStart)))
      .orderBy(desc(t.updatedAt), asc(t.key))
      .limit(limit)
      .offset(offset);
  }

  /** Drop (up to `limit`) rows nobody has failed on since `before` and whose lock is over. */
  async sweep(before: Date, now: Date, limit = 10_000): Promise<number> {
    const t = loginThrottles;
    const stale = this.db
      .select({ scope: t.scope, key: t.key })
      .from(t)
      .where(and(lt(t.updatedAt, before), or(sql`${t.lockedUntil} is null`, lt(t.lockedUntil, now))))
      .orderBy(asc(t.updatedAt))
      .limit(limit);
    const rows = await this.db
      .delete(t)
      .where(sql`(${t.scope}, ${t.key}) in (${stale})`)
      .returning({ key: t.key });
    return rows.length;
  }
}
