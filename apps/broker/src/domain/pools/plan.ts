import type { ReconcileSummary } from '../../db/schema/pools.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import { isAvailable } from './availability.ts';
import { effectiveThresholds, type EffectiveThresholds, type Thresholds } from './schedule.ts';

/**
 * The pool reconciler's brain, as a pure function of (desired, observed, clock) → actions
 * (STYLE habit 1). No I/O here: the executor (`reconciler.ts`) loads the snapshot and carries the
 * actions out. Table tests: `test/pools/plan.test.ts`.
 *
 * Standby is warm: the pool keeps `minAvailable` available machines *running* (or booting).
 * "Available" (availability.ts) includes stopped machines, so launches are driven by the available
 * count — a stopped member is started rather than a new machine launched — and stopped machines
 * beyond the standby stay stopped as a cold reserve for start-on-login. The reconciler stops machines
 * only for a predictive pool (running standby above its hold window's forecast, standby.ts); otherwise power
 * plans do. It scales in only above `maxAvailable`.
 */

/** A launch reserved but not answered (no instance id) for this long is presumed orphaned by a crash. */
export const LAUNCH_GRACE_MS = 2 * 60_000;
/** The launch-rate limit counts launches in this trailing window. */
export const RATE_WINDOW_MS = 60_000;
/** How long a capacity error sends a subnet to the back of the queue. */
export const CAPACITY_MEMORY_MS = 10 * 60_000;

export interface CapacityFailure {
  subnetId: string;
  instanceType: string;
  /** ISO time. */
  at: string;
}

/** The predictive standby's target for this pass (`standby.ts`); absent = the thresholds in force. */
export interface ForecastTarget {
  warm: number;
  available: number;
  /** Running standby not stopped while it runs (the hold window); absent = warm. */
  hold?: number;
  reason: string;
}

export interface DesiredPool extends Thresholds {
  forecast?: ForecastTarget | null;
  provisioning: 'running' | 'paused';
  /** Null: the pool has no provisioning template and never launches. */
  template: { subnetIds: string[]; instanceTypes: string[] } | null;
  launchRatePerMinute: number;
  backoffUntil: Date | null;
  consecutiveFailures: number;
  capacityFailures: CapacityFailure[];
}

export interface ObservedMember {
  id: string;
  /** Null while a launch is reserved and not yet answered by the cloud. */
  externalId: string | null;
  powerState: PowerState;
  health: string;
  maintenance: boolean;
  assigned: boolean;
  /** Launched by this pool's template (`launched_by_pool_id` + `launch_token`): the only machines it may terminate. */
  launchedByPool: boolean;
  subnetId: string | null;
  launchedAt: Date | null;
  /** When the launch was last reserved or claimed by an executor (the row's `updated_at`). */
  claimedAt: Date;
}

export interface PlanInput {
  pool: DesiredPool;
  /** Non-terminated members of the pool. */
  members: ObservedMember[];
  /** Launches by this pool in the last RATE_WINDOW_MS, failed ones included. */
  recentLaunches: number;
  now: Date;
  /** An admin asked for this pass: ignore the back-off. */
  force?: boolean;
}

export type PoolAction =
  /** Launch one machine, first trying `subnetId` (then the template's other subnets, then the next type). */
  | { kind: 'launch'; subnetId: string | null }
  | { kind: 'start'; workstationIds: string[] }
  /** Predictive standby only: running standby above the target, stopped (EBS keeps the disk). */
  | { kind: 'stop'; workstationIds: string[] }
  | { kind: 'terminate'; workstationIds: string[] }
  /** Look orphaned launches up by their `stagedoor:workstation` tag; adopt what exists, relaunch or clean the rest. */
  | { kind: 'adopt'; workstationIds: string[]; relaunchMissing: boolean };

export interface PoolCounts {
  /** Live members (not terminated), launches in flight included. */
  total: number;
  available: number;
  /** Available and running or booting: the warm standby. */
  warm: number;
  /** Available, stopped, with an instance id: can be started. */
  startable: number;
  /** Available machines this pool launched (with an instance id): the only ones scale-in may take. */
  terminable: number;
  assigned: number;
  starting: number;
  /** Reserved launches without an instance id yet. */
  launching: number;
  /** Of those, the ones past the grace period: presumed orphaned by a crash. */
  orphans: number;
}

/** How many of each action a pool needs, from its counts alone — what `planPool` then fills with machines. */
export interface Decision {
  thresholds: EffectiveThresholds;
  counts: PoolCounts;
  launch: number;
  start: number;
  stop: number;
  terminate: number;
  adopt: boolean;
  relaunchMissing: boolean;
  /** Why the pool stays short of its thresholds, for the pool's status. */
  notes: string[];
  /** True when the back-off held back a launch or a start. */
  backingOff: boolean;
}

export interface PoolPlan extends Omit<Decision, 'launch' | 'start' | 'stop' | 'terminate' | 'adopt' | 'relaunchMissing'> {
  actions: PoolAction[];
}

const TERMINATE_ORDER: Record<string, number> = { stopped: 0, stopping: 1, running: 2, pending: 3 };
const isOrphan = (m: ObservedMember, now: Date) => m.externalId === null && m.launchedByPool && now.getTime() - m.claimedAt.getTime() >= LAUNCH_GRACE_MS;
const isWarm = (m: ObservedMember) => m.powerState === 'running' || m.powerState === 'pending';
const isStartable = (m: ObservedMember) => m.powerState === 'stopped' && m.externalId !== null;
const isTerminable = (m: ObservedMember) => m.launchedByPool && m.externalId !== null;

/** The counts of a member list (the repository computes the same ones in SQL for the job's pass). */
export function countMembers(members: ObservedMember[], now: Date): PoolCounts {
  const available = members.filter(isAvailable);
  return {
    total: members.length,
    available: available.length,
    warm: available.filter(isWarm).length,
    startable: available.filter(isStartable).length,
    terminable: available.filter(isTerminable).length,
    assigned: members.filter((m) => m.assigned).length,
    starting: members.filter((m) => m.powerState === 'pending').length,
    launching: members.filter((m) => m.externalId === null).length,
    orphans: members.filter((m) => isOrphan(m, now)).length,
  };
}

/**
 * The thresholds of this pass: those in force, with a predictive pool's warm target as the standby
 * (standby.ts keeps it within the thresholds' bounds), and how many available machines to keep in
 * all — more than the warm standby when a stopped reserve is kept.
 */
export function passThresholds(pool: DesiredPool, now: Date): { thresholds: EffectiveThresholds; availableTarget: number } {
  const own = effectiveThresholds(pool, now);
  if (!pool.forecast) return { thresholds: own, availableTarget: own.minAvailable };
  return { thresholds: { ...own, minAvailable: pool.forecast.warm }, availableTarget: Math.max(pool.forecast.warm, pool.forecast.available) };
}

export function decide(pool: DesiredPool, counts: PoolCounts, recentLaunches: number, now: Date, force = false): Decision {
  const { thresholds, availableTarget } = passThresholds(pool, now);
  const d: Decision = { thresholds, counts, launch: 0, start: 0, stop: 0, terminate: 0, adopt: false, relaunchMissing: false, notes: [], backingOff: false };
  const paused = pool.provisioning === 'paused';
  const backingOff = !force && pool.backoffUntil !== null && pool.backoffUntil.getTime() > now.getTime();

  // Launches a crash left without an answer still count as members (so nothing is launched twice);
  // past the grace period they are looked up by tag and adopted, relaunched or cleaned.
  if (counts.orphans) {
    d.adopt = true;
    d.relaunchMissing = !paused && !!pool.template && !backingOff;
  }
  if (paused) {
    const over = thresholds.maxAvailable !== null && counts.available > thresholds.maxAvailable;
    if (counts.warm < thresholds.minAvailable || over) d.notes.push('provisioning is paused: nothing is launched, started or terminated');
    return d;
  }

  // Scale in: only unassigned machines this pool launched, never one in maintenance or still launching.
  if (thresholds.maxAvailable !== null && counts.available > thresholds.maxAvailable) {
    const surplus = counts.available - thresholds.maxAvailable;
    d.terminate = Math.min(surplus, counts.terminable);
    if (d.terminate < surplus) d.notes.push(`${surplus - d.terminate} available machine(s) above maxAvailable (${thresholds.maxAvailable}) were not launched by the pool and are left alone`);
    return d;
  }

  // Predictive standby: warm machines above what the hold window expects are stopped — the forecast
  // starts one again a boot ahead of the next expected arrival, so surplus left by an arrival that
  // did not come (or by a release) costs minutes, not hours; below the hold they wait for the late
  // arrivals of the same wave. Windows pools keep the old rule: never stop.
  const keepRunning = pool.forecast ? Math.max(thresholds.minAvailable, pool.forecast.hold ?? 0) : Infinity;
  if (counts.warm > keepRunning && !backingOff) {
    d.stop = counts.warm - keepRunning;
    if (counts.available >= availableTarget) return d;
  }

  // Scale out: warm up stopped machines first, then launch what the available count lacks (the
  // warm standby, or a predictive pool's stopped reserve on top of it).
  const warmDeficit = Math.max(0, thresholds.minAvailable - counts.warm);
  if (warmDeficit === 0 && counts.available >= availableTarget) return d;
  if (backingOff) {
    d.backingOff = true;
    d.notes.push(`backing off until ${pool.backoffUntil!.toISOString()} after ${pool.consecutiveFailures} failed pass(es)`);
    return d;
  }
  d.start = Math.min(warmDeficit, counts.startable);
  const wanted = Math.max(0, availableTarget - counts.available);
  if (wanted === 0) return d;
  if (!pool.template) {
    d.notes.push(`${wanted} below ${availableTarget > thresholds.minAvailable ? `the standby's reserve (${availableTarget})` : `minAvailable (${thresholds.minAvailable})`} and the pool has no provisioning template`);
    return d;
  }
  let n = wanted;
  if (thresholds.maxTotal !== null && counts.total + n > thresholds.maxTotal) {
    n = Math.max(0, thresholds.maxTotal - counts.total);
    d.notes.push(`at maxTotal (${thresholds.maxTotal}): ${wanted - n} launch(es) held back`);
  }
  const allowance = Math.max(0, pool.launchRatePerMinute - recentLaunches);
  if (n > allowance) {
    d.notes.push(`launch rate (${pool.launchRatePerMinute}/min): ${n - allowance} launch(es) wait for the next minute`);
    n = allowance;
  }
  d.launch = n;
  return d;
}

/** Does the decision call for any action? (A pass without one touches neither the cloud nor the machines.) */
export function hasWork(d: Pick<Decision, 'adopt' | 'launch' | 'start' | 'stop' | 'terminate'>): boolean {
  return d.adopt || d.launch > 0 || d.start > 0 || d.stop > 0 || d.terminate > 0;
}

export function planPool(input: PlanInput): PoolPlan {
  const { pool, members, now } = input;
  const { launch, start, stop, terminate, adopt, relaunchMissing, ...decision } = decide(pool, countMembers(members, now), input.recentLaunches, now, input.force);
  const plan: PoolPlan = { ...decision, actions: [] };
  const available = members.filter(isAvailable);
  if (adopt) plan.actions.push({ kind: 'adopt', workstationIds: members.filter((m) => isOrphan(m, now)).map((m) => m.id), relaunchMissing });
  if (terminate) {
    const perSubnet = countBySubnet(members);
    const victims = available
      .filter(isTerminable)
      .sort(
        (a, b) =>
          (TERMINATE_ORDER[a.powerState] ?? 9) - (TERMINATE_ORDER[b.powerState] ?? 9) ||
          (perSubnet.get(b.subnetId ?? '') ?? 0) - (perSubnet.get(a.subnetId ?? '') ?? 0) ||
          (b.launchedAt?.getTime() ?? 0) - (a.launchedAt?.getTime() ?? 0) ||
          a.id.localeCompare(b.id),
      )
      .slice(0, terminate);
    plan.actions.push({ kind: 'terminate', workstationIds: victims.map((m) => m.id) });
  }
  if (stop) {
    // Only running machines (a booting one cannot be stopped yet), the most recently started last
    // in line — ids in a stable order; the executor re-checks each under its row lock.
    const running = available.filter((m) => m.powerState === 'running' && m.externalId !== null).slice(0, stop);
    if (running.length) plan.actions.push({ kind: 'stop', workstationIds: running.map((m) => m.id) });
  }
  if (start) plan.actions.push({ kind: 'start', workstationIds: available.filter(isStartable).slice(0, start).map((m) => m.id) });
  if (launch && pool.template) {
    for (const subnetId of spreadLaunches(pool.template.subnetIds, members, failingSubnets(pool.capacityFailures, now), launch)) plan.actions.push({ kind: 'launch', subnetId });
  }
  return plan;
}

/** Subnets with a capacity error in the last CAPACITY_MEMORY_MS. */
export function failingSubnets(failures: CapacityFailure[], now: Date): Set<string> {
  return new Set(failures.filter((f) => now.getTime() - Date.parse(f.at) < CAPACITY_MEMORY_MS).map((f) => f.subnetId));
}

/** Capacity failures worth remembering: the recent ones, newest last, at most 50. */
export function recentCapacityFailures(failures: CapacityFailure[], now: Date): CapacityFailure[] {
  return failures.filter((f) => now.getTime() - Date.parse(f.at) < CAPACITY_MEMORY_MS).slice(-50);
}

/**
 * Pick a subnet for each of `n` launches: the one with the fewest machines of the pool first
 * (counting the launches already placed), subnets with a recent capacity error last, ties in the
 * template's order — so the pool spreads evenly over its AZs and routes around a full one.
 */
export function spreadLaunches(subnetIds: string[], members: Pick<ObservedMember, 'subnetId'>[], failing: Set<string>, n: number): string[] {
  const counts = countBySubnet(members);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const best = orderSubnets(subnetIds, counts, failing)[0];
    if (!best) break;
    out.push(best);
    counts.set(best, (counts.get(best) ?? 0) + 1);
  }
  return out;
}

/** Subnets in the order a launch should try them (fewest machines first, failing ones last). */
export function orderSubnets(subnetIds: string[], counts: Map<string, number>, failing: Set<string>): string[] {
  return subnetIds
    .map((s, index) => ({ s, index, failing: failing.has(s) ? 1 : 0, n: counts.get(s) ?? 0 }))
    .sort((a, b) => a.failing - b.failing || a.n - b.n || a.index - b.index)
    .map((x) => x.s);
}

function countBySubnet(members: Pick<ObservedMember, 'subnetId'>[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of members) if (m.subnetId) counts.set(m.subnetId, (counts.get(m.subnetId) ?? 0) + 1);
  return counts;
}

/** Back-off after `failures` consecutive failed passes: 30 s, doubling, at most 15 minutes. */
export function backoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(30_000 * 2 ** (failures - 1), 15 * 60_000);
}

/** What carrying out a plan did (the executor's report). */
export interface ExecutionReport {
  launched: number;
  started: number;
  stopped?: number;
  terminated: number;
  adopted: number;
  /** Actions that failed, in words (the cloud's own message included). */
  errors: string[];
  /** Why fewer actions ran than planned without anything failing (e.g. a concurrent reservation took the last slot). */
  notes: string[];
  capacityFailures: CapacityFailure[];
}

export const NOTHING_DONE: ExecutionReport = { launched: 0, started: 0, terminated: 0, adopted: 0, errors: [], notes: [], capacityFailures: [] };

export interface PassOutcome {
  outcome: 'ok' | 'partial' | 'error';
  error: string | null;
  consecutiveFailures: number;
  backoffUntil: Date | null;
  summary: ReconcileSummary;
}

/**
 * What a pass records on its pool: `ok` when nothing failed, `partial` when some actions failed and
 * others went through, `error` when everything attempted failed — which counts a failure and backs
 * off. A pass the back-off held back keeps the pool's failure count, back-off and reason.
 */
export function passOutcome(
  pool: Pick<DesiredPool, 'consecutiveFailures' | 'backoffUntil' | 'capacityFailures'> & { lastReconcileError: string | null },
  plan: Pick<Decision, 'thresholds' | 'counts' | 'notes' | 'backingOff'>,
  report: ExecutionReport,
  now: Date,
): PassOutcome {
  const done = report.launched + report.started + (report.stopped ?? 0) + report.terminated + report.adopted;
  const failed = report.errors.length;
  const summary: ReconcileSummary = {
    desired: plan.thresholds.minAvailable,
    available: plan.counts.available,
    total: plan.counts.total,
    launched: report.launched,
    started: report.started,
    stopped: report.stopped ?? 0,
    terminated: report.terminated,
    adopted: report.adopted,
    capacityFailures: recentCapacityFailures([...pool.capacityFailures, ...report.capacityFailures], now),
    notes: [...plan.notes, ...report.notes],
  };
  if (failed === 0 && plan.backingOff && done === 0) {
    return { outcome: 'error', error: pool.lastReconcileError, consecutiveFailures: pool.consecutiveFailures, backoffUntil: pool.backoffUntil, summary };
  }
  if (failed === 0) return { outcome: 'ok', error: null, consecutiveFailures: 0, backoffUntil: null, summary };
  const error = report.errors.slice(0, 3).join('; ') + (failed > 3 ? ` (and ${failed - 3} more)` : '');
  if (done > 0) return { outcome: 'partial', error, consecutiveFailures: 0, backoffUntil: null, summary };
  const failures = pool.consecutiveFailures + 1;
  return { outcome: 'error', error, consecutiveFailures: failures, backoffUntil: new Date(now.getTime() + backoffMs(failures)), summary };
}

/**
 * After the power follower wrote new states: the pools to reconcile now rather than at the next
 * safety-net pass. Only a machine that left the warm standby changes a pool's plan — one that
 * finished booting was counted warm and available while it booted, so it changes nothing; one that
 * stopped (or is stopping) leaves the warm standby, and one terminated leaves the pool short.
 */
export function poolsToPoke(changes: readonly { poolId: string | null; powerState: PowerState }[]): string[] {
  const pools = new Set<string>();
  for (const c of changes) if (c.poolId && c.powerState !== 'running' && c.powerState !== 'pending') pools.add(c.poolId);
  return [...pools];
}
