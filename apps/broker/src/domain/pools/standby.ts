import { DEFAULT_HOLD_MINUTES, DEFAULT_LEAD_MINUTES, type StandbySetting } from '../../db/schema/pools.ts';
import { expectedArrivals, type Demand, type WeekSample } from './forecast.ts';
import { effectiveThresholds, localTime, type Thresholds } from './schedule.ts';

/**
 * Predictive standby (issue 19, ADR 0022): the standby a pool keeps, from its demand forecast. Pure.
 *
 * - **Warm** (running or booting): the arrivals expected within the start lead (`leadMinutes`, at
 *   least one boot-to-ready time plus the reconciler's tick), at the pool's quantile. A machine
 *   started now is ready for an arrival after one boot; one arriving sooner needs a machine that is
 *   already running — which a lead of a few boots has started on an earlier pass. A lead of exactly
 *   one boot plans for "the arrival at 09:00:10", and four weeks of one 135 s span hold 0–3 arrivals:
 *   too few for a quantile to mean much; over 10 minutes the counts are steady enough.
 * - **Surprise** (same lead): arrivals in the last `leadMinutes` above what the forecast expected
 *   for that span (same quantile) are added to the warm target. History cannot foresee a crunch
 *   week's evening sessions or a surge nobody has seen before; what just happened is the best guess
 *   for the next few minutes, and when the forecast was right the term is 0 and costs nothing.
 * - **Stopped reserve** (optional, EBS-backed machines only: an instance-store root cannot stop): the
 *   arrivals expected within `reserveMinutes` beyond that may be covered by *stopped* machines — the
 *   pool makes sure they exist (launching if it must) but keeps them stopped; each is started when
 *   its expected arrival comes within one boot, because the warm target rises as the clock moves.
 * - **Hold** (`holdMinutes`): running standby is stopped only above the arrivals expected over the
 *   next `holdMinutes`. The warm target alone is a 2-minute guess — which 135 s window an artist
 *   lands in is close to random — so a machine started for "the arrival at 09:00" would be stopped
 *   at 09:01 and the artist who comes at 09:04 would wait a boot. The hold never starts anything:
 *   starts still follow the warm target, so the hold only decides how long a started machine waits.
 *
 * Both are bounded by the thresholds in force (the pool's own or its open window): the minimum is a
 * floor, `maxAvailable` a ceiling. With no full week of history (cold start) the thresholds in force
 * apply unchanged, so a new pool behaves exactly as it did before it had a forecast.
 */

/** The reconciler job's interval: a machine that became ready is seen at most this late. */
export const RECONCILE_TICK_MS = 15_000;

export interface StandbyTarget {
  mode: 'predictive';
  /** Available machines to keep running or booting. */
  warm: number;
  /** Available machines to keep in all (warm + stopped reserve); ≥ warm. */
  available: number;
  /** Running standby kept when already running (stops only above it); ≥ warm. */
  hold: number;
  /** Why, in words: the forecast, its samples and the bounds that applied. */
  reason: string;
  /** False on a cold start (the thresholds in force apply). */
  fromForecast: boolean;
}

export function bootHorizonMs(s: Pick<StandbySetting, 'bootSeconds'>): number {
  return s.bootSeconds * 1000 + RECONCILE_TICK_MS;
}

export function leadMinutesOf(s: Pick<StandbySetting, 'leadMinutes'>): number {
  return s.leadMinutes ?? DEFAULT_LEAD_MINUTES;
}

/** How far ahead the warm target looks: the start lead, never less than one boot + tick. */
export function warmHorizonMs(s: Pick<StandbySetting, 'bootSeconds' | 'leadMinutes'>): number {
  return Math.max(bootHorizonMs(s), leadMinutesOf(s) * 60_000);
}

export function holdMinutesOf(s: Pick<StandbySetting, 'holdMinutes'>): number {
  return s.holdMinutes ?? DEFAULT_HOLD_MINUTES;
}

const samplesText = (samples: WeekSample[]) => samples.map((s) => s.count).join(', ');
const minutes = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`);

/**
 * `recentArrivals`: arrivals of the pool in the last `leadMinutes` (up to `now`), read fresh on each
 * pass — the demand's history is cached and may be an hour old.
 */
export function predictiveTarget(pool: Thresholds & { standby: StandbySetting }, demand: Demand | null, now: Date, recentArrivals = 0): StandbyTarget {
  const bounds = effectiveThresholds(pool, now);
  const s = pool.standby;
  const floor = bounds.minAvailable;
  const ceiling = bounds.maxAvailable ?? Infinity;
  const clamp = (n: number) => Math.min(ceiling, Math.max(floor, n));
  const where = bounds.window === null ? `minimum ${floor}` : `window ${bounds.window} minimum ${floor}`;
  const horizon = warmHorizonMs(s);
  const warm = demand ? expectedArrivals(demand, now, horizon, s.quantile) : null;
  if (!demand || warm?.expected === null || warm?.expected === undefined) {
    return { mode: 'predictive', warm: floor, available: floor, hold: floor, fromForecast: false, reason: `no full week of history yet: the ${where} applies (cold start)` };
  }
  const local = localTime(now, pool.timeZone);
  let reason =
    `q${s.quantile} of arrivals in the next ${minutes(horizon)} (${horizon === bootHorizonMs(s) ? `boot ${s.bootSeconds} s + tick` : 'start lead'}) at ${local.day} ` +
    `${String(Math.floor(local.minutes / 60)).padStart(2, '0')}:${String(local.minutes % 60).padStart(2, '0')} ${pool.timeZone} ` +
    `over the last ${warm.samples.length} week(s) [${samplesText(warm.samples)}] = ${warm.expected}`;
  const leadMs = leadMinutesOf(s) * 60_000;
  let planned = warm.expected;
  if (leadMs > 0 && recentArrivals > 0) {
    const past = expectedArrivals(demand, new Date(now.getTime() - leadMs), leadMs, s.quantile).expected ?? 0;
    const surprise = recentArrivals - past;
    if (surprise > 0) {
      planned += surprise;
      reason += `; +${surprise} for arrivals above the forecast in the last ${leadMinutesOf(s)} min (${recentArrivals} came, q${s.quantile} expected ${past})`;
    }
  }
  const warmTarget = clamp(planned);
  if (warmTarget !== planned) reason += warmTarget > planned ? `; raised to the ${where}` : `; capped at maxAvailable ${ceiling}`;
  let available = warmTarget;
  if (s.reserveMinutes > 0) {
    const wider = expectedArrivals(demand, now, horizon + s.reserveMinutes * 60_000, s.quantile);
    available = Math.max(warmTarget, clamp(wider.expected ?? 0));
    if (available > warmTarget) reason += `; ${available - warmTarget} more kept stopped for the ${s.reserveMinutes} min after (q${s.quantile} of [${samplesText(wider.samples)}] = ${wider.expected})`;
  }
  let hold = warmTarget;
  const holdMs = holdMinutesOf(s) * 60_000;
  if (holdMs > horizon) {
    // Over the hold window, not beyond it: the reserve's wider window says what to keep stopped.
    const held = expectedArrivals(demand, now, holdMs, s.quantile);
    hold = Math.max(warmTarget, clamp(held.expected ?? 0));
    if (hold > warmTarget) reason += `; running standby held up to ${hold} (q${s.quantile} of arrivals in the next ${holdMinutesOf(s)} min [${samplesText(held.samples)}] = ${held.expected})`;
  }
  return { mode: 'predictive', warm: warmTarget, available, hold, fromForecast: true, reason: `${warmTarget} warm: ${reason}` };
}
