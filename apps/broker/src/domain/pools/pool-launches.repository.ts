import { and, eq, gt, ne, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { pools, workstations } from '../../db/schema/index.ts';

/**
 * The rows of launches: reserving them (name counter, pending rows, the pool's live and recent
 * launches per subnet), and claiming or abandoning them when the launch is executed.
 */
export class PoolLaunchesRepository {
  constructor(private readonly db: DbOrTx) {}

  /** Take `n` numbers of the pool's name counter; returns the last one taken. */
  async nextSequence(id: string, n: number, tx: DbOrTx): Promise<number> {
    const [row] = await tx.update(pools).set({ nameSequence: sql`${pools.nameSequence} + ${n}` }).where(eq(pools.id, id)).returning({ seq: pools.nameSequence });
    return row!.seq;
  }

  /** The rows of reserved launches, in one statement. */
  async insertLaunches(rows: (typeof workstations.$inferInsert)[], tx: DbOrTx): Promise<(typeof workstations.$inferSelect)[]> {
    if (rows.length === 0) return [];
    return tx.insert(workstations).values(rows).returning();
  }

  /** For a reservation, inside its transaction: live members and recent launches, per subnet. */
  async launchContext(poolId: string, rateSince: Date, tx: DbOrTx): Promise<{ total: number; recent: number; bySubnet: Map<string, number> }> {
    const live = and(eq(workstations.poolId, poolId), ne(workstations.powerState, 'terminated'))!;
    const recent = and(eq(workstations.launchedByPoolId, poolId), gt(workstations.launchedAt, rateSince))!;
    const rows = await tx
      .select({ subnetId: workstations.subnetId, live: sql<number>`(count(*) filter (where ${live}))::int`, recent: sql<number>`(count(*) filter (where ${recent}))::int` })
      .from(workstations)
      .where(or(live, recent))
      .groupBy(workstations.subnetId);
    const bySubnet = new Map<string, number>();
    let total = 0;
    let recentTotal = 0;
    for (const r of rows) {
      total += r.live;
      recentTotal += r.recent;
      if (r.subnetId) bySubnet.set(r.subnetId, r.live);
    }
    return { total, recent: recentTotal, bySubnet };
  }

  /**
   * Claim a reserved launch for one executor, compare-and-set on the agent token hash it read: null
   * until the first claim (the token is issued with the launch), and a re-claim (after a crash) only
   * once the previous claim is older than the grace period. Stamps `updated_at`, which the orphan
   * grace period counts from. Two executors never both reach the cloud for one row.
   */
  async claimLaunch(id: string, seenHash: string | null, newHash: string, at: Date, staleBefore: Date, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db
      .update(workstations)
      .set({ agentTokenHash: newHash, updatedAt: at })
      .where(
        and(
          eq(workstations.id, id),
          sql`${workstations.externalId} is null`,
          ne(workstations.powerState, 'terminated'),
          seenHash === null ? sql`${workstations.agentTokenHash} is null` : and(eq(workstations.agentTokenHash, seenHash), sql`${workstations.updatedAt} <= ${staleBefore}`),
        ),
      )
      .returning({ id: workstations.id });
    return rows.length === 1;
  }

  /** A launch that never produced an instance: it ends terminated (an assignment on it can then be released). */
  async abandonLaunch(id: string, at: Date, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db
      .update(workstations)
      .set({ powerState: 'terminated', powerStateChangedAt: at, updatedAt: at })
      .where(and(eq(workstations.id, id), sql`${workstations.externalId} is null`, ne(workstations.powerState, 'terminated')))
      .returning({ id: workstations.id });
    return rows.length === 1;
  }
}
