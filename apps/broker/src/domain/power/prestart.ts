import { demandOf, HISTORY_WEEKS, localMs, WEEK_DECAY, WEEK_MS, countBetween, type Demand } from '../pools/forecast.ts';
import { localTime } from '../pools/schedule.ts';

/**
 * Pre-starting a persistent user's own machine shortly before their usual arrival (issue 19,
 * point 2; ADR 0022). Pure: the service loads the user's connections and the clock.
 *
 * A persistent machine cannot be covered by a pool's standby — only that machine will do for that
 * user — so the pool forecast does not help; the user's own history does. An **arrival** is a
 * connect after at least `ARRIVAL_GAP_MS` with no connection of theirs open (a reconnect after a
 * network drop or a coffee break is not one). The machine is started when, in the same local
 * span of the past weeks (the pool forecast's wall-clock weeks, so DST needs no special case),
 * the user arrived within the next `PRESTART_LEAD_MS` in enough of them: the recency-weighted share
 * of such weeks reaches `PRESTART_LIKELIHOOD`. A share, not a count: a user with a two-week history
 * who came both weeks is as likely as one who came eight weeks out of eight.
 */

const MIN = 60_000;
/** Start this long before the expected arrival: a boot (up to ~2 min on EC2) and a margin for an early arrival. */
export const PRESTART_LEAD_MS = 10 * MIN;
/** A connect this long after the previous connection closed is an arrival, not a reconnect. */
export const ARRIVAL_GAP_MS = 60 * MIN;
/** Weighted share of past weeks with an arrival in the span that makes the user "likely to come". */
export const PRESTART_LIKELIHOOD = 0.5;
/** A pre-started machine nobody connected to within this long is stopped again. */
export const PRESTART_UNUSED_MS = PRESTART_LEAD_MS + 30 * MIN;
/** After a pre-start, no other one for this long (a wrong guess is paid once, not every pass). */
export const PRESTART_COOLDOWN_MS = 3 * 60 * MIN;

export interface UserConnection {
  requestedAt: Date;
  /** Null while open. */
  closedAt: Date | null;
}

/** The user's arrivals: connects with no connection of theirs open in the `gapMs` before. */
export function arrivalsOf(connections: UserConnection[], gapMs = ARRIVAL_GAP_MS): Date[] {
  const sorted = connections.slice().sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime());
  const out: Date[] = [];
  let busyUntil = -Infinity;
  for (const c of sorted) {
    const t = c.requestedAt.getTime();
    if (t - busyUntil >= gapMs) out.push(c.requestedAt);
    busyUntil = Math.max(busyUntil, c.closedAt ? c.closedAt.getTime() : Infinity);
  }
  return out;
}

export type PrestartDecision = { start: true; reason: string } | { start: false; reason: string };

export interface PrestartInput {
  /** The user's arrivals on the local time line (`userDemand`). */
  demand: Demand;
  now: Date;
  /** Last pre-start of this machine, if any. */
  lastPrestartAt: Date | null;
}

export function userDemand(connections: UserConnection[], since: Date, timeZone: string): Demand {
  return demandOf(arrivalsOf(connections), since, timeZone);
}

/** Should the user's stopped machine be started now? With the reason either way. */
export function prestartDecision({ demand, now, lastPrestartAt }: PrestartInput): PrestartDecision {
  if (lastPrestartAt && now.getTime() - lastPrestartAt.getTime() < PRESTART_COOLDOWN_MS) {
    return { start: false, reason: `pre-started at ${lastPrestartAt.toISOString()}: none again within ${PRESTART_COOLDOWN_MS / 60 / MIN} h` };
  }
  const from = localMs(now, demand.timeZone);
  let weighted = 0;
  let total = 0;
  let came = 0;
  let weeks = 0;
  for (let k = 1; k <= HISTORY_WEEKS; k++) {
    const start = from - k * WEEK_MS;
    if (start < demand.since) break;
    const w = WEEK_DECAY ** (k - 1);
    const arrived = countBetween(demand.arrivals, start, start + PRESTART_LEAD_MS) > 0;
    weeks++;
    total += w;
    if (arrived) {
      came++;
      weighted += w;
    }
  }
  const local = localTime(now, demand.timeZone);
  const hhmm = (m: number) => `${String(Math.floor(m / 60) % 24).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  const span = `${local.day} ${hhmm(local.minutes)}–${hhmm(local.minutes + PRESTART_LEAD_MS / MIN)} ${demand.timeZone}`;
  if (weeks === 0) return { start: false, reason: `no full week of the user's history yet (cold start)` };
  const share = weighted / total;
  const text = `arrived ${span} in ${came} of the last ${weeks} week(s) (weighted ${share.toFixed(2)}, threshold ${PRESTART_LIKELIHOOD})`;
  return share >= PRESTART_LIKELIHOOD - 1e-9 ? { start: true, reason: `likely arrival: ${text}` } : { start: false, reason: `unlikely: ${text}` };
}

/** Is a pre-started machine due for the "did the user come?" check? Only within the cool-down: later, whoever runs it is not the pre-start. */
export function prestartCheckDue(prestartedAt: Date, now: Date): boolean {
  const age = now.getTime() - prestartedAt.getTime();
  return age >= PRESTART_UNUSED_MS && age < PRESTART_COOLDOWN_MS;
}

/** A pre-started machine the user did not come to: stop it again (the guess was wrong). */
export function prestartUnused(p: { prestartedAt: Date; connectedSince: boolean; now: Date }): boolean {
  return !p.connectedSince && prestartCheckDue(p.prestartedAt, p.now);
}
