import { and, eq, inArray, ne, sql, type SQL } from 'drizzle-orm';
import { assignments, workstations } from '../../db/schema/index.ts';
import type { PowerState } from '../../db/schema/providers.ts';

/**
 * "Available" — counted exactly this way by the reconciler, the dashboard and the connect flow:
 * a member of the pool that is
 *   - not assigned (no active assignment),
 *   - not in maintenance,
 *   - not known to be unhealthy (health `unknown` or `healthy`), and
 *   - running, or startable: pending (booting), stopping or stopped.
 * Terminated and `unknown` machines are never available.
 */
export const AVAILABLE_POWER_STATES: readonly PowerState[] = ['pending', 'running', 'stopping', 'stopped'];

export interface AvailabilityFacts {
  powerState: string;
  maintenance: boolean;
  health: string;
  assigned: boolean;
  /** A launch reserved but not yet answered by the cloud (no instance id yet). */
  launching?: boolean;
}

export function isAvailable(w: AvailabilityFacts): boolean {
  return !w.assigned && !w.maintenance && w.health !== 'unhealthy' && (AVAILABLE_POWER_STATES as readonly string[]).includes(w.powerState);
}

/** The same rule as SQL over `workstations`, for queries that pick or count available machines. */
export function availableWorkstation(poolId: string): SQL {
  return and(eq(workstations.poolId, poolId), availableCondition())!;
}

/** The rule alone, without the pool: for counts over several pools at once (`count(*) filter (where …)`). */
export function availableCondition(): SQL {
  return and(
    eq(workstations.maintenance, false),
    ne(workstations.health, 'unhealthy'),
    inArray(workstations.powerState, [...AVAILABLE_POWER_STATES]),
    sql`not exists (select 1 from ${assignments} a where a.workstation_id = ${workstations.id} and a.state = 'active')`,
  )!;
}

/**
 * "Failed", as the pool's counts show it: a member that is not terminated but unhealthy, or in a
 * power state the provider could not name. (A launch that failed ends `terminated` and is no longer
 * counted; the pool's `lastReconcileError` says why.)
 */
export function isFailed(w: Pick<AvailabilityFacts, 'powerState' | 'health'>): boolean {
  return w.powerState !== 'terminated' && (w.health === 'unhealthy' || w.powerState === 'unknown');
}
