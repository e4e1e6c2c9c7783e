/**
 * The artists of the simulated studio week and what each does when: pure, from a seeded RNG, so a
 * run repeats exactly. Times are UTC ms; the studio is in Europe/London, which is UTC in November.
 */

/** mulberry32: small, fast, good enough for a simulation, and the same on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A normal draw (Box–Muller), clipped to ±3σ so no artist arrives at midnight. */
export function normal(r: () => number, mean: number, sd: number): number {
  const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return mean + sd * Math.max(-3, Math.min(3, z));
}

export type ActionKind = 'connect' | 'disconnect' | 'logout';
export interface Action {
  at: number;
  artist: number;
  kind: ActionKind;
  /** For a connect: the break it ends, if any (reconnects reuse the machine when it is still theirs). */
  note: string;
}

export interface ShiftKind {
  name: string;
  count: number;
  /** 0 = Sunday … 6 = Saturday: the days a shift starts. */
  days: number[];
  startH: number;
  startSdMin: number;
  hours: number;
  endSdMin: number;
  /** A long break (lunch, dinner): disconnected, hours after the start. */
  breakAfterH: number;
  breakMin: [number, number];
  /** Chance per shift of a short break (coffee, review): 5–12 min disconnected. */
  shortBreakP: number;
  /** Chance an artist is off on a given shift day (leave, sick, on set). */
  absentP: number;
}

/** The studio: 100 artists. Most work 09:00–18:00 weekdays; a late shift, a night shift, a weekend crew. */
export const STUDIO: ShiftKind[] = [
  { name: 'day (Mon–Fri 09:00–18:00)', count: 80, days: [1, 2, 3, 4, 5], startH: 9, startSdMin: 15, hours: 9, endSdMin: 20, breakAfterH: 3.5, breakMin: [30, 60], shortBreakP: 0.4, absentP: 0.05 },
  { name: 'late (Mon–Fri 14:00–23:00)', count: 10, days: [1, 2, 3, 4, 5], startH: 14, startSdMin: 10, hours: 9, endSdMin: 15, breakAfterH: 4.5, breakMin: [30, 45], shortBreakP: 0.3, absentP: 0.05 },
  { name: 'night (Sun–Thu 22:00–07:00)', count: 5, days: [0, 1, 2, 3, 4], startH: 22, startSdMin: 10, hours: 9, endSdMin: 10, breakAfterH: 4, breakMin: [30, 40], shortBreakP: 0.2, absentP: 0.05 },
  { name: 'weekend (Sat–Sun 10:00–18:00)', count: 5, days: [0, 6], startH: 10, startSdMin: 20, hours: 8, endSdMin: 20, breakAfterH: 3, breakMin: [30, 60], shortBreakP: 0.3, absentP: 0.1 },
];

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** A week unlike the ordinary one (the scenarios of issue 19's benchmark). */
export interface WeekVariant {
  /** Replaces each shift's chance of an artist being off on a day (a holiday week: 0.5). */
  absentP?: number;
  /** Chance a day-shift artist comes back for an evening session after their shift (a crunch week). */
  eveningP?: number;
}

/** Every artist's actions from `weekStart` (a Monday 00:00 UTC) minus a day (the Sunday night shift) to the week's end. */
export function planWeek(weekStart: number, seed: number, variant: WeekVariant = {}): { actions: Action[]; artists: { id: number; shift: string }[] } {
  const r = rng(seed);
  // A separate stream for the variant's extra draws, so an ordinary week repeats exactly as before.
  const rv = rng(seed ^ 0x5eed);
  const actions: Action[] = [];
  const artists: { id: number; shift: string }[] = [];
  let id = 0;
  for (const kind of STUDIO) {
    for (let n = 0; n < kind.count; n++, id++) {
      artists.push({ id, shift: kind.name });
      // Day -1 is the Sunday before: its night shift runs into Monday.
      for (let d = -1; d < 7; d++) {
        const dayStart = weekStart + d * DAY;
        const weekday = (d + 8) % 7; // weekStart is a Monday: d = 0 → 1
        if (!kind.days.includes(weekday)) continue;
        // The Sunday before counts only for a shift that runs into Monday (the night shift).
        if (d < 0 && kind.startH + kind.hours <= 24) continue;
        const absent = r() < kind.absentP;
        if (variant.absentP !== undefined ? rv() < variant.absentP : absent) continue;
        const start = dayStart + kind.startH * HOUR + normal(r, 0, kind.startSdMin) * MIN;
        const end = start + kind.hours * HOUR + normal(r, 0, kind.endSdMin) * MIN;
        const breakAt = start + kind.breakAfterH * HOUR + normal(r, 0, 20) * MIN;
        const breakLen = (kind.breakMin[0] + r() * (kind.breakMin[1] - kind.breakMin[0])) * MIN;
        const shift: Action[] = [
          { at: start, artist: id, kind: 'connect', note: 'start of shift' },
          { at: breakAt, artist: id, kind: 'disconnect', note: 'break' },
          { at: breakAt + breakLen, artist: id, kind: 'connect', note: 'after the break' },
        ];
        if (r() < kind.shortBreakP) {
          // In the other half of the shift from the long break.
          const at = r() < 0.5 ? start + (0.5 + r() * 2) * HOUR : breakAt + breakLen + (0.5 + r() * 2) * HOUR;
          const len = (5 + r() * 7) * MIN;
          if (at + len < end - 10 * MIN && (at + len < breakAt - 5 * MIN || at > breakAt + breakLen + 5 * MIN)) {
            shift.push({ at, artist: id, kind: 'disconnect', note: 'short break' }, { at: at + len, artist: id, kind: 'connect', note: 'after a short break' });
          }
        }
        shift.push({ at: end, artist: id, kind: 'logout', note: 'end of shift' });
        if (variant.eveningP && kind.startH === 9 && rv() < variant.eveningP) {
          // Overtime: back after dinner, 19:30 ± 30 min, for 2–3 hours.
          const back = dayStart + 19.5 * HOUR + normal(rv, 0, 30) * MIN;
          if (back > end + 30 * MIN) shift.push({ at: back, artist: id, kind: 'connect', note: 'evening session' }, { at: back + (2 + rv()) * HOUR, artist: id, kind: 'logout', note: 'end of the evening' });
        }
        actions.push(...shift.map((a) => ({ ...a, at: Math.round(a.at / 1000) * 1000 })));
      }
    }
  }
  actions.sort((a, b) => a.at - b.at || a.artist - b.artist);
  return { actions, artists };
}
