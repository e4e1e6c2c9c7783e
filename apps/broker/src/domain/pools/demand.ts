import { and, eq, gte, lt } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { assignments } from '../../db/schema/index.ts';
import type { Clock } from '../clock.ts';
import { dayProfile, demandOf, HISTORY_WEEKS, WEEK_MS, type DaySlot, type Demand } from './forecast.ts';
import type { PoolRow } from './pools.repository.ts';
import { leadMinutesOf, predictiveTarget, type StandbyTarget } from './standby.ts';

/**
 * A pool's demand history — its arrivals (new assignments) of the last HISTORY_WEEKS weeks — for
 * the forecast, cached per pool. The forecast only reads past weeks (the same span a week or more
 * ago), so a history loaded an hour ago answers exactly for the next hour: the reconciler's pass
 * every 15 s costs one query per pool per hour, not one per pass.
 */
export const DEMAND_REFRESH_MS = 60 * 60_000;

export class PoolDemand {
  readonly #cache = new Map<string, { loadedAt: number; key: string; demand: Demand }>();

  constructor(private readonly deps: { db: DbOrTx; clock: Clock }) {}

  /** Arrivals of the pool in [from, to). */
  async arrivals(poolId: string, from: Date, to: Date): Promise<Date[]> {
    const rows = await this.deps.db
      .select({ since: assignments.since })
      .from(assignments)
      .where(and(eq(assignments.poolId, poolId), gte(assignments.since, from), lt(assignments.since, to)));
    return rows.map((r) => r.since);
  }

  /** The history starts when the pool was created, at most HISTORY_WEEKS weeks back. */
  historyStart(pool: Pick<PoolRow, 'createdAt'>, now: Date): Date {
    return new Date(Math.max(pool.createdAt.getTime(), now.getTime() - HISTORY_WEEKS * WEEK_MS - WEEK_MS));
  }

  async demand(pool: Pick<PoolRow, 'id' | 'timeZone' | 'createdAt'>, now: Date): Promise<Demand> {
    // A change of time zone or of where the history starts (an imported history) reloads at once.
    const key = `${pool.timeZone} ${pool.createdAt.getTime()}`;
    const hit = this.#cache.get(pool.id);
    const age = hit ? now.getTime() - hit.loadedAt : Infinity;
    if (hit && hit.key === key && age >= 0 && age < DEMAND_REFRESH_MS) return hit.demand;
    const since = this.historyStart(pool, now);
    const demand = demandOf(await this.arrivals(pool.id, since, now), since, pool.timeZone);
    this.#cache.set(pool.id, { loadedAt: now.getTime(), key, demand });
    return demand;
  }

  /** The standby target of a predictive pool now; null for a pool sized by its windows. */
  async target(pool: PoolRow, now: Date = this.deps.clock.now()): Promise<StandbyTarget | null> {
    if (pool.standby.mode !== 'predictive') return null;
    const leadMs = leadMinutesOf(pool.standby) * 60_000;
    const recent = leadMs > 0 ? (await this.arrivals(pool.id, new Date(now.getTime() - leadMs), now)).length : 0;
    return predictiveTarget(pool, await this.demand(pool, now), now, recent);
  }

  /** Today (in the pool's time zone), slot by slot: forecast vs arrivals so far — the console's chart. */
  async today(pool: PoolRow, now: Date = this.deps.clock.now()): Promise<DaySlot[]> {
    const since = this.historyStart(pool, now);
    const arrivals = await this.arrivals(pool.id, since, now);
    const demand = demandOf(arrivals, since, pool.timeZone);
    return dayProfile(demand, arrivals.map((a) => a.getTime()), now, now, pool.standby.quantile);
  }

  forget(poolId: string): void {
    this.#cache.delete(poolId);
  }
}
