/**
 * Demand forecast for a pool (issue 19): how many arrivals — new assignments, i.e. connects that
 * needed a machine — to expect in the next few minutes, learned from the pool's own history. Pure:
 * the reconciler loads the history (`assignments.since`) and passes it in with the clock.
 *
 * The model is "the same moment of the week, in the pool's time zone, in each of the last weeks":
 * for a horizon [now, now + h) it counts the arrivals in the same local wall-clock span of each past
 * week, then takes a weighted quantile of those counts (recent weeks weigh more). Wall-clock
 * alignment handles DST — 09:00 last week is 09:00 this week whatever the UTC offset — and the
 * quantile (not the mean) keeps a holiday week or a day of absences from dragging the standby down,
 * while a quantile below 1 keeps one freak week from pushing it up forever. A week before the
 * history begins is not a week of zero demand: it is left out, and with no full week at all the
 * forecast says so (cold start) and the pool's own windows and minimum apply.
 */

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
export const WEEK_MS = 7 * DAY;
export const SLOT_MS = 15 * MIN;
/** Weeks of history the forecast looks at (older arrivals are not loaded). */
export const HISTORY_WEEKS = 8;
/** Weight of a week relative to the week after it: last week 1, the week before 0.75, … */
export const WEEK_DECAY = 0.75;

/** A position on a local (wall-clock) time line: ms since 1970-01-05 00:00 local (a Monday), no DST gaps. */
export type LocalMs = number;

const formatters = new Map<string, Intl.DateTimeFormat>();
function partsOf(at: Date, timeZone: string): Record<string, string> {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
}

/** 1970-01-05 was a Monday: local weeks start on Monday 00:00. */
const MONDAY_EPOCH = 4 * DAY;

/** The wall-clock time of `at` in `timeZone`, as if that zone had no offsets changes (ms, Monday-based). */
export function localMs(at: Date, timeZone: string): LocalMs {
  const p = partsOf(at, timeZone);
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second)) + (at.getTime() % 1000 + 1000) % 1000;
  return wall - MONDAY_EPOCH;
}

/** Arrivals of a pool on its local time line, sorted, with where the history begins. */
export interface Demand {
  timeZone: string;
  /** Sorted local times of the arrivals. */
  arrivals: LocalMs[];
  /** Local time from which the history is complete (the pool's creation, or the retention edge). */
  since: LocalMs;
}

export function demandOf(arrivals: Date[], since: Date, timeZone: string): Demand {
  return { timeZone, arrivals: arrivals.map((a) => localMs(a, timeZone)).sort((a, b) => a - b), since: localMs(since, timeZone) };
}

/** Arrivals in [from, to) on the local time line. */
export function countBetween(sorted: LocalMs[], from: LocalMs, to: LocalMs): number {
  return lowerBound(sorted, to) - lowerBound(sorted, from);
}

function lowerBound(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The smallest value whose cumulative weight reaches q of the total (weights need not sum to 1). */
export function weightedQuantile(samples: { value: number; weight: number }[], q: number): number {
  if (samples.length === 0) return 0;
  const sorted = samples.slice().sort((a, b) => a.value - b.value);
  const total = sorted.reduce((s, x) => s + x.weight, 0);
  let acc = 0;
  for (const s of sorted) {
    acc += s.weight;
    if (acc >= q * total - 1e-9) return s.value;
  }
  return sorted.at(-1)!.value;
}

export interface WeekSample {
  /** 1 = last week, 2 = the week before, … */
  weeksAgo: number;
  count: number;
  weight: number;
}

export interface ArrivalForecast {
  /** Null when no past week covers the span: cold start. */
  expected: number | null;
  quantile: number;
  samples: WeekSample[];
}

/** Arrivals expected in [at, at + horizonMs) at quantile `q`, from the same local span of past weeks. */
export function expectedArrivals(demand: Demand, at: Date, horizonMs: number, q: number): ArrivalForecast {
  return expectedAtLocal(demand, localMs(at, demand.timeZone), horizonMs, q);
}

function expectedAtLocal(demand: Demand, from: LocalMs, horizonMs: number, q: number): ArrivalForecast {
  const samples: WeekSample[] = [];
  for (let k = 1; k <= HISTORY_WEEKS; k++) {
    const start = from - k * WEEK_MS;
    if (start < demand.since) break;
    samples.push({ weeksAgo: k, count: countBetween(demand.arrivals, start, start + horizonMs), weight: WEEK_DECAY ** (k - 1) });
  }
  if (samples.length === 0) return { expected: null, quantile: q, samples };
  return { expected: weightedQuantile(samples.map((s) => ({ value: s.count, weight: s.weight })), q), quantile: q, samples };
}

export interface DaySlot {
  /** Start of the slot (UTC instant). */
  at: Date;
  /** Local `HH:MM` of the slot. */
  local: string;
  /** Arrivals the forecast expected in this slot (null: no history for it). */
  forecast: number | null;
  /** Arrivals that happened (only up to `now`; null for slots still ahead). */
  actual: number | null;
}

/**
 * The local day containing `at`, slot by slot (96 slots; 92 or 100 on a DST change day): forecast
 * vs what happened, for the console's chart. `arrivals` are the real instants (the actual counts
 * are of instants, so the repeated hour of an autumn change is counted once per pass through it).
 */
export function dayProfile(demand: Demand, arrivalsUtc: number[], at: Date, now: Date, q: number): DaySlot[] {
  const tz = demand.timeZone;
  const day = (ms: LocalMs) => Math.floor(ms / DAY);
  const today = day(localMs(at, tz));
  // Offsets are whole quarter hours in every zone in use, so stepping 15 min from 15 h before UTC
  // midnight of the local date finds the local midnight exactly.
  let t = Math.floor((today * DAY + MONDAY_EPOCH - 15 * 60 * MIN) / SLOT_MS) * SLOT_MS;
  while (day(localMs(new Date(t), tz)) < today) t += SLOT_MS;
  const sortedUtc = arrivalsUtc.slice().sort((a, b) => a - b);
  const out: DaySlot[] = [];
  for (; day(localMs(new Date(t), tz)) === today; t += SLOT_MS) {
    const local = localMs(new Date(t), tz);
    const f = expectedAtLocal(demand, local, SLOT_MS, q);
    const minutes = Math.floor((local % DAY) / MIN);
    out.push({
      at: new Date(t),
      local: `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`,
      forecast: f.expected,
      actual: t < now.getTime() ? countBetween(sortedUtc, t, Math.min(t + SLOT_MS, now.getTime())) : null,
    });
  }
  return out;
}
