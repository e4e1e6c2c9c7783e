import type { ScheduleWindow, Weekday } from '../../db/schema/pools.ts';

/** The thresholds in force at one moment: the pool's own, or those of its first open window. */
export interface EffectiveThresholds {
  minAvailable: number;
  maxAvailable: number | null;
  maxTotal: number | null;
  /** Index of the open window in `scheduleWindows`; null = the pool's own thresholds. */
  window: number | null;
}

export interface Thresholds {
  minAvailable: number;
  maxAvailable: number | null;
  maxTotal: number | null;
  scheduleWindows: ScheduleWindow[];
  timeZone: string;
}

const DAYS: Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const SHORT: Record<string, Weekday> = { Sun: 'sun', Mon: 'mon', Tue: 'tue', Wed: 'wed', Thu: 'thu', Fri: 'fri', Sat: 'sat' };
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Weekday and minute of the day at `at` in the IANA zone `timeZone` (pure; no clock of its own). */
export function localTime(at: Date, timeZone: string): { day: Weekday; minutes: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return { day: SHORT[parts.weekday!]!, minutes: Number(parts.hour) * 60 + Number(parts.minute) };
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * Is the window open at this local time? `end` before `start` runs past midnight: the part after
 * midnight belongs to the day the window started on (fri 22:00–06:00 is open Saturday 05:00).
 * `end` equal to `start` is the whole day.
 */
export function windowOpen(w: ScheduleWindow, local: { day: Weekday; minutes: number }): boolean {
  const start = minutesOf(w.start);
  const end = minutesOf(w.end);
  if (start === end) return w.days.includes(local.day);
  if (start < end) return w.days.includes(local.day) && local.minutes >= start && local.minutes < end;
  const yesterday = DAYS[(DAYS.indexOf(local.day) + 6) % 7]!;
  return (w.days.includes(local.day) && local.minutes >= start) || (w.days.includes(yesterday) && local.minutes < end);
}

export function effectiveThresholds(pool: Thresholds, at: Date): EffectiveThresholds {
  const own = { minAvailable: pool.minAvailable, maxAvailable: pool.maxAvailable, maxTotal: pool.maxTotal };
  if (pool.scheduleWindows.length === 0) return { ...own, window: null };
  const local = localTime(at, pool.timeZone);
  const index = pool.scheduleWindows.findIndex((w) => windowOpen(w, local));
  if (index < 0) return { ...own, window: null };
  return { ...overlay(own, pool.scheduleWindows[index]!), window: index };
}

/** A window's thresholds over the pool's own: a field the window leaves out keeps the pool's value. */
export function overlay(own: Omit<EffectiveThresholds, 'window'>, w: ScheduleWindow): Omit<EffectiveThresholds, 'window'> {
  return {
    minAvailable: w.minAvailable ?? own.minAvailable,
    maxAvailable: w.maxAvailable !== undefined ? w.maxAvailable : own.maxAvailable,
    maxTotal: w.maxTotal !== undefined ? w.maxTotal : own.maxTotal,
  };
}

/**
 * The threshold rules the database also checks (min ≤ maxAvailable ≤ maxTotal), for the pool's own
 * values and for every window laid over them — so a window cannot produce an impossible pool.
 */
export function thresholdProblems(pool: Omit<Thresholds, 'timeZone'>): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const check = (t: Omit<EffectiveThresholds, 'window'>, prefix: string) => {
    if (t.maxAvailable !== null && t.minAvailable > t.maxAvailable) problems.push({ path: `${prefix}minAvailable`, message: `must not exceed maxAvailable (${t.maxAvailable})` });
    if (t.maxTotal !== null && t.minAvailable > t.maxTotal) problems.push({ path: `${prefix}minAvailable`, message: `must not exceed maxTotal (${t.maxTotal})` });
    if (t.maxTotal !== null && t.maxAvailable !== null && t.maxAvailable > t.maxTotal) problems.push({ path: `${prefix}maxAvailable`, message: `must not exceed maxTotal (${t.maxTotal})` });
  };
  const own = { minAvailable: pool.minAvailable, maxAvailable: pool.maxAvailable, maxTotal: pool.maxTotal };
  check(own, '');
  pool.scheduleWindows.forEach((w, i) => check(overlay(own, w), `scheduleWindows[${i}].`));
  return problems;
}
