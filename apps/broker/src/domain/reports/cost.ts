/**
 * The cost report as a pure function over fetched rows (no I/O; table tests in
 * test/reports/cost.test.ts). Definitions, also in docs/cost.md:
 *
 * - Every power-history interval is clipped to the window [from, to); an open interval (the
 *   machine's current state) ends at `now`, so nothing is counted in the future.
 * - runningHours: time in `running`, the state EC2 bills instance-hours for.
 * - stoppedHours: time in `stopped` (only its disks are billed).
 * - otherHours: `pending` (booting), `stopping`, `unknown`.
 * - alwaysOnHours: time the machine existed and was not terminated (running + stopped + other) —
 *   what it would have run had nothing ever stopped it.
 * - savedHours = alwaysOnHours − runningHours.
 * - cost: hourly price of (instance type at the time, provider region) × running hours, summed per
 *   currency. Running hours without a price go to unpricedRunningHours: unknown, never 0.
 * - groupBy=user: each interval is split at assignment boundaries ([since, releasedAt), an active
 *   assignment ending at `now`); time with no assignment is "(unassigned)".
 * - groupBy=pool / instanceType: the pool and type recorded on the interval (a resized or moved
 *   machine is grouped by what was true then).
 */

export type GroupBy = 'pool' | 'user' | 'instanceType';

export interface PowerInterval {
  workstationId: string;
  state: string;
  instanceType: string | null;
  poolId: string | null;
  region: string | null;
  fromAt: Date;
  toAt: Date | null;
}

export interface AssignmentSpan {
  workstationId: string;
  userId: string | null;
  since: Date;
  releasedAt: Date | null;
}

export interface PriceEntry {
  instanceType: string;
  region: string;
  /** numeric(12,6) as stored, e.g. "1.006000". */
  hourlyPrice: string;
  currency: string;
}

export interface CostInput {
  from: Date;
  to: Date;
  now: Date;
  groupBy: GroupBy;
  intervals: PowerInterval[];
  assignments?: AssignmentSpan[];
  prices: PriceEntry[];
  /** Display names: pool id → name, user id → username. */
  labels?: { pools?: Map<string, string>; users?: Map<string, string> };
}

export interface CostLine {
  key: string | null;
  label: string;
  /** Machines with non-terminated time in the group. */
  machines: number;
  runningHours: number;
  stoppedHours: number;
  otherHours: number;
  alwaysOnHours: number;
  savedHours: number;
  cost: { currency: string; amount: number }[];
  unpricedRunningHours: number;
}

export interface CostResult {
  groups: CostLine[];
  total: CostLine;
}

const DELETED_USER = '\u0000deleted';
const MS_PER_HOUR = 3_600_000n;

interface Acc {
  machines: Set<string>;
  running: number;
  stopped: number;
  other: number;
  alive: number;
  unpricedRunning: number;
  /** price in millionths × milliseconds, per currency: exact integer arithmetic. */
  cost: Map<string, bigint>;
}

const newAcc = (): Acc => ({ machines: new Set(), running: 0, stopped: 0, other: 0, alive: 0, unpricedRunning: 0, cost: new Map() });

/** Micro-units of a numeric(12,6) decimal string, exactly. */
export function priceMicros(decimal: string): bigint {
  const m = /^(\d+)(?:\.(\d{0,6})\d*)?$/.exec(decimal.trim());
  if (!m) throw new Error(`not a price: ${decimal}`);
  return BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? '').padEnd(6, '0'));
}

export function computeCostReport(input: CostInput): CostResult {
  const from = input.from.getTime();
  const to = input.to.getTime();
  const now = input.now.getTime();
  const prices = new Map(input.prices.map((p) => [`${p.region}/${p.instanceType}`, { micros: priceMicros(p.hourlyPrice), currency: p.currency }]));
  const byWorkstation = new Map<string, AssignmentSpan[]>();
  for (const a of input.assignments ?? []) {
    const list = byWorkstation.get(a.workstationId) ?? [];
    list.push(a);
    byWorkstation.set(a.workstationId, list);
  }
  const groups = new Map<string | null, Acc>();
  const total = newAcc();

  const add = (key: string | null, iv: PowerInterval, ms: number) => {
    if (iv.state === 'terminated') return;
    let acc = groups.get(key);
    if (!acc) groups.set(key, (acc = newAcc()));
    for (const a of [acc, total]) {
      if (iv.state === 'terminated') continue;
      a.machines.add(iv.workstationId);
      a.alive += ms;
      if (iv.state === 'stopped') a.stopped += ms;
      else if (iv.state !== 'running') a.other += ms;
      else {
        a.running += ms;
        const price = iv.instanceType && iv.region ? prices.get(`${iv.region}/${iv.instanceType}`) : undefined;
        if (!price) a.unpricedRunning += ms;
        else a.cost.set(price.currency, (a.cost.get(price.currency) ?? 0n) + price.micros * BigInt(ms));
      }
    }
  };

  for (const iv of input.intervals) {
    const start = Math.max(iv.fromAt.getTime(), from);
    const end = Math.min(iv.toAt?.getTime() ?? now, to);
    if (end <= start) continue;
    if (input.groupBy === 'pool') add(iv.poolId, iv, end - start);
    else if (input.groupBy === 'instanceType') add(iv.instanceType, iv, end - start);
    else for (const seg of splitByAssignment(start, end, now, byWorkstation.get(iv.workstationId) ?? [])) add(seg.userKey, iv, seg.end - seg.start);
  }

  const line = (key: string | null, acc: Acc): CostLine => ({
    key: key === DELETED_USER ? null : key,
    label: labelOf(input, key),
    machines: acc.machines.size,
    runningHours: hours(acc.running),
    stoppedHours: hours(acc.stopped),
    otherHours: hours(acc.other),
    alwaysOnHours: hours(acc.alive),
    savedHours: hours(acc.alive - acc.running),
    cost: [...acc.cost.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([currency, microMs]) => ({ currency, amount: cents(microMs) })),
    unpricedRunningHours: hours(acc.unpricedRunning),
  });
  const lines = [...groups.entries()].map(([k, acc]) => line(k, acc));
  lines.sort((a, b) => Number(a.key === null) - Number(b.key === null) || a.label.localeCompare(b.label));
  return { groups: lines, total: { ...line('total', total), key: null, label: 'total' } };
}

/** Cut [start, end) at the machine's assignment boundaries; each piece goes to its user or to null. */
function splitByAssignment(start: number, end: number, now: number, spans: AssignmentSpan[]): { start: number; end: number; userKey: string | null }[] {
  const ranges = spans.map((s) => ({ from: s.since.getTime(), to: s.releasedAt?.getTime() ?? now, user: s.userId ?? DELETED_USER }));
  const cuts = new Set<number>([start, end]);
  for (const r of ranges) for (const t of [r.from, r.to]) if (t > start && t < end) cuts.add(t);
  const points = [...cuts].sort((a, b) => a - b);
  const out: { start: number; end: number; userKey: string | null }[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i]!;
    const b = points[i + 1]!;
    const owner = ranges.find((r) => r.from <= a && r.to >= b);
    const userKey = owner?.user ?? null;
    const last = out.at(-1);
    if (last && last.userKey === userKey && last.end === a) last.end = b;
    else out.push({ start: a, end: b, userKey });
  }
  return out;
}

function labelOf(input: CostInput, key: string | null): string {
  if (key === DELETED_USER) return '(deleted user)';
  switch (input.groupBy) {
    case 'pool':
      return key === null ? '(no pool)' : (input.labels?.pools?.get(key) ?? key);
    case 'user':
      return key === null ? '(unassigned)' : (input.labels?.users?.get(key) ?? key);
    case 'instanceType':
      return key ?? '(unknown type)';
  }
}

/** Hours rounded to 4 decimals (0.36 s); sums are kept in whole milliseconds until here. */
const hours = (ms: number) => Math.round(ms / 360) / 10_000;

/** micro-units × ms → currency amount rounded half-up to cents. */
function cents(microMs: bigint): number {
  const divisor = 10_000n * MS_PER_HOUR; // micro-units per cent × ms per hour
  return Number((microMs * 2n + divisor) / (2n * divisor)) / 100;
}
