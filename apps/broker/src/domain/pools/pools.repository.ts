import { and, asc, count, eq, gt, inArray, isNotNull, isNull, ne, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { rowsOf } from '../../db/migrate.ts';
import { assignments, pools, workstations } from '../../db/schema/index.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import { AVAILABLE_POWER_STATES, availableCondition } from './availability.ts';
import { recentCapacityFailures, type CapacityFailure, type ObservedMember, type PoolCounts } from './plan.ts';

export type PoolRow = typeof pools.$inferSelect;
export type NewPoolRow = typeof pools.$inferInsert;

export interface PoolAvailabilityCounts {
  total: number;
  available: number;
  assigned: number;
  starting: number;
  failed: number;
}

export interface PoolSnapshot {
  members: ObservedMember[];
  recentLaunches: number;
  unsettled: { id: string; externalId: string }[];
}

export const NO_COUNTS: PoolCounts = { total: 0, available: 0, warm: 0, startable: 0, terminable: 0, assigned: 0, starting: 0, launching: 0, orphans: 0 };

export const EMPTY_SNAPSHOT: PoolSnapshot = { members: [], recentLaunches: 0, unsettled: [] };

export const NO_MACHINES: PoolAvailabilityCounts = { total: 0, available: 0, assigned: 0, starting: 0, failed: 0 };

const activeAssignment = sql`exists (select 1 from ${assignments} aa where aa.workstation_id = ${workstations.id} and aa.state = 'active')`;

/**
 * Membership rule of pool `p` over workstation `w`, evaluated from the pool's jsonb in SQL so that one
 * statement resolves every pool: all tag keys match (a listed value, or any value for []), or the
 * external id is in the explicit list. An empty rule matches nothing.
 */
const RULE = sql.raw(`(
  (jsonb_typeof(p.membership->'tags') = 'object' and p.membership->'tags' <> '{}'::jsonb
    and not exists (select 1 from jsonb_each(p.membership->'tags') r(k, vals)
                    where not (w.tags ? r.k and (jsonb_array_length(r.vals) = 0 or r.vals ? (w.tags->>r.k)))))
  or coalesce((p.membership->'externalIds') ? w.external_id, false))`);

export class PoolsRepository {
  constructor(private readonly db: DbOrTx) {}

  async list(filter: { providerId?: string }, limit: number, offset: number, db: DbOrTx = this.db): Promise<{ items: PoolRow[]; total: number }> {
    const where = filter.providerId ? eq(pools.providerId, filter.providerId) : undefined;
    const items = await db.select().from(pools).where(where).orderBy(asc(pools.name), asc(pools.id)).limit(limit).offset(offset);
    const [row] = await db.select({ n: count() }).from(pools).where(where);
    return { items, total: row?.n ?? 0 };
  }

  async all(db: DbOrTx = this.db): Promise<PoolRow[]> {
    return db.select().from(pools).orderBy(asc(pools.name), asc(pools.id));
  }

  async findById(id: string, db: DbOrTx = this.db): Promise<PoolRow | undefined> {
    const [row] = await db.select().from(pools).where(eq(pools.id, id));
    return row;
  }

  async findByName(name: string, db: DbOrTx = this.db): Promise<PoolRow | undefined> {
    const [row] = await db.select().from(pools).where(sql`lower(${pools.name}) = lower(${name})`);
    return row;
  }

  /** The pool row, locked until the transaction ends: reservations of one pool queue here. */
  async lockById(id: string, tx: DbOrTx): Promise<PoolRow | undefined> {
    const [row] = await tx.select().from(pools).where(eq(pools.id, id)).for('update');
    return row;
  }

  async insert(row: NewPoolRow, db: DbOrTx = this.db): Promise<PoolRow> {
    const [created] = await db.insert(pools).values(row).returning();
    return created!;
  }

  async update(id: string, patch: Partial<NewPoolRow>, db: DbOrTx = this.db): Promise<PoolRow | undefined> {
    const [row] = await db.update(pools).set(patch).where(eq(pools.id, id)).returning();
    return row;
  }

  async delete(id: string, db: DbOrTx = this.db): Promise<boolean> {
    return (await db.delete(pools).where(eq(pools.id, id)).returning({ id: pools.id })).length === 1;
  }

  async activeAssignmentCount(poolId: string, db: DbOrTx = this.db): Promise<number> {
    const [row] = await db.select({ n: count() }).from(assignments).where(and(eq(assignments.poolId, poolId), eq(assignments.state, 'active')));
    return row?.n ?? 0;
  }

  async memberCount(poolId: string, db: DbOrTx = this.db): Promise<number> {
    const [row] = await db.select({ n: count() }).from(workstations).where(and(eq(workstations.poolId, poolId), ne(workstations.powerState, 'terminated')));
    return row?.n ?? 0;
  }

  /** Counts per pool, by the one definition of "available" (availability.ts). */
  async availability(poolIds: string[], db: DbOrTx = this.db): Promise<Map<string, PoolAvailabilityCounts>> {
    const out = new Map<string, PoolAvailabilityCounts>();
    if (poolIds.length === 0) return out;
    const rows = await db
      .select({
        poolId: workstations.poolId,
        total: sql<number>`count(*)::int`,
        available: sql<number>`(count(*) filter (where ${availableCondition()}))::int`,
        assigned: sql<number>`(count(*) filter (where ${activeAssignment}))::int`,
        starting: sql<number>`(count(*) filter (where ${workstations.powerState} = 'pending'))::int`,
        failed: sql<number>`(count(*) filter (where ${workstations.health} = 'unhealthy' or ${workstations.powerState} = 'unknown'))::int`,
      })
      .from(workstations)
      .where(and(inArray(workstations.poolId, poolIds), ne(workstations.powerState, 'terminated')))
      .groupBy(workstations.poolId);
    for (const r of rows) out.set(r.poolId!, { total: r.total, available: r.available, assigned: r.assigned, starting: r.starting, failed: r.failed });
    return out;
  }

  /**
   * Resolve membership rules into `workstations.pool_id` for one pool (or all): machines that no
   * longer match leave (unless the pool launched them), unpooled matching machines join — the
   * oldest pool wins when two match, and an existing membership is never taken over.
   */
  async resolveMembership(poolId: string | null, at: Date, db: DbOrTx = this.db): Promise<{ left: number; joined: number }> {
    const onlyPool = poolId ? sql`p.id = ${poolId}` : sql`true`;
    const left = await db.execute(sql`
      update workstations w set pool_id = null, updated_at = ${at}::timestamptz
      from pools p
      where w.pool_id = p.id and ${onlyPool} and w.power_state <> 'terminated'
        and w.launched_by_pool_id is distinct from p.id
        and (w.provider_id <> p.provider_id or not coalesce(${RULE}, false))
      returning w.id`);
    const joined = await db.execute(sql`
      update workstations t set pool_id = m.pool_id, updated_at = ${at}::timestamptz
      from (
        select distinct on (w.id) w.id, p.id as pool_id
        from workstations w join pools p on p.provider_id = w.provider_id
        where w.pool_id is null and w.power_state <> 'terminated' and ${onlyPool} and ${RULE}
        order by w.id, p.created_at, p.id
      ) m
      where t.id = m.id and t.pool_id is null
      returning t.id`);
    return { left: rowsOf(left).length, joined: rowsOf(joined).length };
  }

  /** What the planner sees of one pool: its live members, its launches in the rate window, and the machines whose state is still moving. */
  async snapshot(poolId: string, rateSince: Date, db: DbOrTx = this.db): Promise<PoolSnapshot> {
    const rows = await db
      .select({
        id: workstations.id,
        poolId: workstations.poolId,
        externalId: workstations.externalId,
        powerState: workstations.powerState,
        health: workstations.health,
        maintenance: workstations.maintenance,
        subnetId: workstations.subnetId,
        launchedByPoolId: workstations.launchedByPoolId,
        launchToken: workstations.launchToken,
        launchedAt: workstations.launchedAt,
        updatedAt: workstations.updatedAt,
        assigned: sql<boolean>`${activeAssignment}`,
      })
      .from(workstations)
      .where(or(and(eq(workstations.poolId, poolId), ne(workstations.powerState, 'terminated')), and(eq(workstations.launchedByPoolId, poolId), gt(workstations.launchedAt, rateSince))))
      .orderBy(asc(workstations.createdAt), asc(workstations.id));
    const snap: PoolSnapshot = { members: [], recentLaunches: 0, unsettled: [] };
    for (const r of rows) {
      if (r.launchedByPoolId === poolId && r.launchedAt && r.launchedAt.getTime() > rateSince.getTime()) snap.recentLaunches++;
      if (r.poolId !== poolId || r.powerState === 'terminated') continue;
      snap.members.push({
        id: r.id,
        externalId: r.externalId,
        powerState: r.powerState as PowerState,
        health: r.health,
        maintenance: r.maintenance,
        assigned: !!r.assigned,
        launchedByPool: r.launchedByPoolId === r.poolId && r.launchToken !== null,
        subnetId: r.subnetId,
        launchedAt: r.launchedAt,
        claimedAt: r.updatedAt,
      });
      if (r.externalId && (r.powerState === 'pending' || r.powerState === 'stopping')) snap.unsettled.push({ id: r.id, externalId: r.externalId });
    }
    return snap;
  }

  /**
   * The planner's counts (plan.ts `countMembers`, same definitions) computed in SQL, per pool — one
   * pool, or all of them in one statement — plus each pool's launches in the rate window. The job's
   * pass decides from these; member rows are read only for a pool that has something to do.
   */
  async counts(poolId: string | null, rateSince: Date, orphanBefore: Date, db: DbOrTx = this.db): Promise<Map<string, { counts: PoolCounts; recentLaunches: number }>> {
    const w = workstations;
    const members = poolId ? and(eq(w.poolId, poolId), ne(w.powerState, 'terminated')) : and(isNotNull(w.poolId), ne(w.powerState, 'terminated'));
    const result = await db.execute(sql`
      select pool_id,
        count(*)::int as total,
        (count(*) filter (where avail))::int as available,
        (count(*) filter (where avail and power_state in ('running', 'pending')))::int as warm,
        (count(*) filter (where avail and power_state = 'stopped' and external_id is not null))::int as startable,
        (count(*) filter (where avail and own and external_id is not null))::int as terminable,
        (count(*) filter (where assigned))::int as assigned,
        (count(*) filter (where power_state = 'pending'))::int as starting,
        (count(*) filter (where external_id is null))::int as launching,
        (count(*) filter (where external_id is null and own and updated_at <= ${orphanBefore}::timestamptz))::int as orphans
      from (
        select ${w.poolId} as pool_id, ${w.powerState} as power_state, ${w.externalId} as external_id, ${w.updatedAt} as updated_at,
          (${w.launchedByPoolId} = ${w.poolId} and ${w.launchToken} is not null) as own,
          ${availableCondition()} as avail, ${activeAssignment} as assigned
        from ${w} where ${members}
      ) m
      group by pool_id`);
    const out = new Map<string, { counts: PoolCounts; recentLaunches: number }>();
    for (const r of rowsOf<PoolCounts & { pool_id: string }>(result)) {
      const { pool_id, ...counts } = r;
      out.set(pool_id, { counts, recentLaunches: 0 });
    }
    const recent = await db
      .select({ poolId: w.launchedByPoolId, n: sql<number>`count(*)::int` })
      .from(w)
      .where(and(poolId ? eq(w.launchedByPoolId, poolId) : isNotNull(w.launchedByPoolId), gt(w.launchedAt, rateSince)))
      .groupBy(w.launchedByPoolId);
    for (const r of recent) {
      const entry = out.get(r.poolId!) ?? { counts: { ...NO_COUNTS }, recentLaunches: 0 };
      entry.recentLaunches = r.n;
      out.set(r.poolId!, entry);
    }
    return out;
  }

  /**
   * Lock the machines about to be terminated, then re-check them: `SKIP LOCKED` passes over a row a
   * connect flow is assigning right now, and the assignment check runs after the lock, so an
   * assignment committed meanwhile is seen. Only unassigned, available machines the pool launched.
   */
  async lockTerminable(poolId: string, ids: string[], tx: DbOrTx): Promise<{ id: string; externalId: string }[]> {
    return this.#lockFree(poolId, ids, 'terminate', tx);
  }

  /** The same lock and re-check for predictive standby's stop: unassigned, available, running members of the pool. */
  async lockStoppable(poolId: string, ids: string[], tx: DbOrTx): Promise<{ id: string; externalId: string }[]> {
    return this.#lockFree(poolId, ids, 'stop', tx);
  }

  async #lockFree(poolId: string, ids: string[], purpose: 'terminate' | 'stop', tx: DbOrTx): Promise<{ id: string; externalId: string }[]> {
    if (ids.length === 0) return [];
    const locked = await tx
      .select({ id: workstations.id, externalId: workstations.externalId })
      .from(workstations)
      .where(
        and(
          inArray(workstations.id, ids),
          eq(workstations.poolId, poolId),
          ...(purpose === 'terminate' ? [eq(workstations.launchedByPoolId, poolId), isNotNull(workstations.launchToken)] : []),
          isNotNull(workstations.externalId),
          eq(workstations.maintenance, false),
          ne(workstations.health, 'unhealthy'),
          purpose === 'terminate' ? inArray(workstations.powerState, [...AVAILABLE_POWER_STATES]) : eq(workstations.powerState, 'running'),
          // The connect flow's marker: an assignment committed after this statement began updates the
          // row, so PostgreSQL re-checks this condition on it and the row drops out.
          isNull(workstations.assignmentId),
        ),
      )
      .for('update', { skipLocked: true });
    if (locked.length === 0) return [];
    const held = await tx
      .select({ id: assignments.workstationId })
      .from(assignments)
      .where(and(inArray(assignments.workstationId, locked.map((l) => l.id)), eq(assignments.state, 'active')));
    const taken = new Set(held.map((h) => h.id));
    return locked.filter((l) => !taken.has(l.id)).map((l) => ({ id: l.id, externalId: l.externalId! }));
  }

  /** Machines of these pools (null: of every pool) whose state is still moving (pending, stopping). */
  async unsettled(poolIds: string[] | null, db: DbOrTx = this.db): Promise<{ id: string; providerId: string; externalId: string }[]> {
    if (poolIds?.length === 0) return [];
    const rows = await db
      .select({ id: workstations.id, providerId: workstations.providerId, externalId: workstations.externalId })
      .from(workstations)
      .where(and(poolIds ? inArray(workstations.poolId, poolIds) : isNotNull(workstations.poolId), isNotNull(workstations.externalId), inArray(workstations.powerState, ['pending', 'stopping'])));
    return rows.map((r) => ({ ...r, externalId: r.externalId! }));
  }

  async recordOutcome(
    id: string,
    o: { at: Date; outcome: 'ok' | 'partial' | 'error'; error: string | null; summary: PoolRow['lastReconcileSummary']; consecutiveFailures: number; backoffUntil: Date | null },
    db: DbOrTx = this.db,
  ): Promise<void> {
    await db
      .update(pools)
      .set({ lastReconcileAt: o.at, lastReconcileOutcome: o.outcome, lastReconcileError: o.error, lastReconcileSummary: o.summary, consecutiveFailures: o.consecutiveFailures, backoffUntil: o.backoffUntil })
      .where(eq(pools.id, id));
  }

  /**
   * Record the outcome of many quiet passes (nothing to do) in one statement — each only if no other
   * pass recorded on its pool since the snapshot it was planned from (`seenAt`).
   */
  async recordQuietOutcomes(
    outcomes: { id: string; seenAt: Date | null; outcome: 'ok' | 'error'; error: string | null; summary: PoolRow['lastReconcileSummary']; consecutiveFailures: number; backoffUntil: Date | null }[],
    at: Date,
    db: DbOrTx = this.db,
  ): Promise<number> {
    if (outcomes.length === 0) return 0;
    const payload = JSON.stringify(
      outcomes.map((o) => ({ id: o.id, seen_at: o.seenAt?.toISOString() ?? null, outcome: o.outcome, error: o.error, summary: o.summary, failures: o.consecutiveFailures, backoff_until: o.backoffUntil?.toISOString() ?? null })),
    );
    const result = await db.execute(sql`
      update pools p set last_reconcile_at = ${at}::timestamptz, last_reconcile_outcome = v.outcome, last_reconcile_error = v.error,
        last_reconcile_summary = v.summary, consecutive_failures = v.failures, backoff_until = v.backoff_until
      from jsonb_to_recordset(${payload}::jsonb) as v(id uuid, seen_at timestamptz, outcome text, error text, summary jsonb, failures int, backoff_until timestamptz)
      where p.id = v.id and p.last_reconcile_at is not distinct from v.seen_at
      returning p.id`);
    return rowsOf(result).length;
  }

  /** A launch outside a pass (launch on login) succeeded or failed: keep the pool's failure count, back-off and capacity memory true. */
  async recordLaunchResult(id: string, r: { failed: boolean; error?: string; newCapacityFailures: CapacityFailure[]; backoffFor: (failures: number) => number; at: Date }, tx: DbOrTx): Promise<void> {
    const pool = await this.lockById(id, tx);
    if (!pool) return;
    const summary = { ...(pool.lastReconcileSummary ?? {}), capacityFailures: recentCapacityFailures([...(pool.lastReconcileSummary?.capacityFailures ?? []), ...r.newCapacityFailures], r.at) };
    if (r.failed) {
      const failures = pool.consecutiveFailures + 1;
      await tx
        .update(pools)
        .set({ lastReconcileOutcome: 'error', lastReconcileError: r.error ?? 'launch failed', lastReconcileSummary: summary, consecutiveFailures: failures, backoffUntil: new Date(r.at.getTime() + r.backoffFor(failures)) })
        .where(eq(pools.id, id));
    } else if (pool.consecutiveFailures > 0 || pool.backoffUntil || r.newCapacityFailures.length) {
      await tx.update(pools).set({ lastReconcileSummary: summary, consecutiveFailures: 0, backoffUntil: null }).where(eq(pools.id, id));
    }
  }
}
