import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database } from '../../db/database.ts';
import type { ReconcileSummary } from '../../db/schema/pools.ts';
import type { Clock } from '../clock.ts';
import type { PowerFollower } from '../providers/power-follow.ts';
import type { ProviderRegistry } from '../providers/provider-registry.ts';
import type { ProvidersRepository } from '../providers/providers.repository.ts';
import type { PoolDemand } from './demand.ts';
import type { PlanExecutor } from './executor.ts';
import { capacityFailuresOf, providerOf } from './launcher.ts';
import { decide, hasWork, LAUNCH_GRACE_MS, NOTHING_DONE, passOutcome, planPool, RATE_WINDOW_MS, type DesiredPool, type PoolPlan } from './plan.ts';
import { NO_COUNTS, type PoolRow, type PoolsRepository } from './pools.repository.ts';
import { effectiveThresholds } from './schedule.ts';
import type { StandbyTarget } from './standby.ts';

export interface PassResult {
  poolId: string;
  outcome: 'ok' | 'partial' | 'error';
  error: string | null;
  summary: ReconcileSummary;
}

type Unsettled = { providerId: string; machines: { id: string; externalId: string }[] };
type ActivePass = { again: boolean; force: boolean; refresh: boolean; done: Promise<PassResult | 'busy'> };

/** Database signal that a pool should be reconciled soon; every node LISTENs on it. */
export const POKE_CHANNEL = 'stagedoor_pools';
/** How often at most one node NOTIFYs the others about the same pool (see `#notifyOthers`). */
const NOTIFY_EVERY_MS = 100;
/** Passes of different pools that run at once in a full pass. */
const POOL_CONCURRENCY = 4;

/**
 * The pool reconciler: snapshot → pure plan (`plan.ts`) → execute (`executor.ts`) → record the
 * outcome on the pool. One pass per pool at a time across the cluster (advisory lock
 * `pool:<id>`). Passes run on the `pool-reconciler` job's interval (the safety net) and at once on
 * `poke` — in this process, and on every other node through NOTIFY. A poke that arrives while
 * this node runs the pool's pass makes the pass run once more, so no change is missed; a node that
 * finds the lock taken leaves the pass to its holder, which has heard the same NOTIFY.
 */
export class PoolReconciler {
  readonly #instance = randomUUID();
  readonly #active = new Map<string, ActivePass>();
  readonly #notifyWindows = new Map<string, { again: boolean; timer: NodeJS.Timeout }>();
  #listening: Promise<void> | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  #stopped = false;
  /** The last standby target logged per pool: a change is logged once, with its reason. */
  readonly #loggedTargets = new Map<string, string>();

  constructor(
    private readonly deps: {
      database: Database;
      pools: PoolsRepository;
      providers: ProvidersRepository;
      registry: ProviderRegistry;
      executor: PlanExecutor;
      demand: PoolDemand;
      follower: Pick<PowerFollower, 'refresh'>;
      clock: Clock;
      log: Logger;
    },
  ) {}

  /** Reconcile this pool soon, on whichever node gets to it first. Never throws. */
  poke(poolId: string): void {
    if (this.#stopped) return;
    this.#notifyOthers(poolId);
    void this.run(poolId);
  }

  /**
   * NOTIFY the other nodes about a pool at most once per `NOTIFY_EVERY_MS`: the first poke goes out
   * at once, pokes within the window fold into one more at its end. A login storm would otherwise
   * send a NOTIFY per connect, and every listener would answer each with a pass.
   */
  #notifyOthers(poolId: string): void {
    const window = this.#notifyWindows.get(poolId);
    if (window) {
      window.again = true;
      return;
    }
    const opened = { again: false, timer: setTimeout(() => this.#closeNotifyWindow(poolId), NOTIFY_EVERY_MS).unref() };
    this.#notifyWindows.set(poolId, opened);
    this.deps.database.notify(POKE_CHANNEL, `${this.#instance} ${poolId}`).catch((err: unknown) => this.deps.log.warn({ err, pool: poolId }, 'pool poke: NOTIFY failed'));
  }

  #closeNotifyWindow(poolId: string): void {
    const window = this.#notifyWindows.get(poolId);
    this.#notifyWindows.delete(poolId);
    if (window?.again && !this.#stopped) this.#notifyOthers(poolId);
  }

  /** One pass of the pool under its lock, coalesced with a pass already running here; `busy` when another node holds it. */
  run(poolId: string, opts: { force?: boolean } = {}): Promise<PassResult | 'busy'> {
    return this.#coalesced(poolId, { force: !!opts.force, refresh: true });
  }

  #coalesced(poolId: string, opts: { force: boolean; refresh: boolean }): Promise<PassResult | 'busy'> {
    const current = this.#active.get(poolId);
    if (current) {
      current.again = true;
      current.force ||= opts.force;
      current.refresh ||= opts.refresh;
      return current.done;
    }
    const entry: ActivePass = { again: false, ...opts, done: Promise.resolve('busy') };
    entry.done = (async () => {
      await this.#listen();
      let value: PassResult | 'busy' = 'busy';
      try {
        do {
          const pass = { force: entry.force, refresh: entry.refresh };
          entry.again = false;
          entry.force = false;
          const r = await this.deps.database.tryWithAdvisoryLock(`pool:${poolId}`, () => this.#pass(poolId, pass));
          value = r.acquired ? r.value : 'busy';
        } while (entry.again && !this.#stopped);
      } catch (err) {
        this.deps.log.error({ err, pool: poolId }, 'pool pass failed');
      } finally {
        this.#active.delete(poolId);
      }
      return value;
    })();
    this.#active.set(poolId, entry);
    return entry.done;
  }

  /** An admin's "reconcile now": waits for the pool's lock and ignores the back-off. */
  async runNow(poolId: string): Promise<PassResult> {
    await this.#listen();
    return this.deps.database.withAdvisoryLock(`pool:${poolId}`, () => this.#pass(poolId, { force: true, refresh: true }));
  }

  /**
   * The job's pass over every pool. One statement counts every pool's machines; the pools with
   * nothing to do are recorded in one more, without locks (and only where no other pass recorded
   * since). A pool with something to do gets a full pass of its own — under its lock, from a fresh
   * snapshot — so a stale count never launches or terminates anything.
   */
  async runAll(): Promise<Record<string, number>> {
    await this.#listen();
    const stats = { pools: 0, quiet: 0, ok: 0, partial: 0, error: 0, busy: 0, launched: 0, started: 0, terminated: 0, adopted: 0, refreshed: 0 };
    const at = this.deps.clock.now();
    const membership = await this.deps.pools.resolveMembership(null, at);
    const pools = await this.deps.pools.all();
    const counts = await this.deps.pools.counts(null, new Date(at.getTime() - RATE_WINDOW_MS), new Date(at.getTime() - LAUNCH_GRACE_MS));
    const quiet: Parameters<PoolsRepository['recordQuietOutcomes']>[0] = [];
    const active: string[] = [];
    for (const pool of pools) {
      stats.pools++;
      const c = counts.get(pool.id) ?? { counts: NO_COUNTS, recentLaunches: 0 };
      const target = await this.#target(pool, at);
      const d = decide(desiredOf(pool, target), c.counts, c.recentLaunches, at);
      if (this.#active.has(pool.id) || hasWork(d)) {
        active.push(pool.id);
        continue;
      }
      const o = withStandby(passOutcome(outcomeInputOf(pool), d, NOTHING_DONE, at), target);
      quiet.push({ id: pool.id, seenAt: pool.lastReconcileAt, ...o, outcome: o.outcome === 'error' ? 'error' : 'ok' });
      stats.quiet++;
      stats[o.outcome]++;
    }
    await this.deps.pools.recordQuietOutcomes(quiet, at);
    let next = 0;
    const worker = async () => {
      while (next < active.length && !this.#stopped) {
        const r = await this.#coalesced(active[next++]!, { force: false, refresh: false });
        if (r === 'busy') {
          stats.busy++;
          continue;
        }
        stats[r.outcome]++;
        for (const k of ['launched', 'started', 'terminated', 'adopted'] as const) stats[k] += r.summary[k] ?? 0;
      }
    };
    await Promise.all(Array.from({ length: POOL_CONCURRENCY }, worker));
    const unsettled = new Map<string, Unsettled['machines']>();
    for (const m of await this.deps.pools.unsettled(null)) unsettled.set(m.providerId, [...(unsettled.get(m.providerId) ?? []), m]);
    for (const [providerId, machines] of unsettled) stats.refreshed += await this.#refresh({ providerId, machines });
    return { ...stats, membershipJoined: membership.joined, membershipLeft: membership.left };
  }

  /** Wait for every pass this instance has running (tests; shutdown). */
  async idle(): Promise<void> {
    while (this.#active.size) await Promise.allSettled([...this.#active.values()].map((e) => e.done));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const w of this.#notifyWindows.values()) clearTimeout(w.timer);
    this.#notifyWindows.clear();
    await this.idle();
    await this.#unlisten?.().catch(() => undefined);
  }

  async #pass(poolId: string, opts: { force: boolean; refresh: boolean }): Promise<PassResult> {
    const log = this.deps.log.child({ pool: poolId });
    const pool = await this.deps.pools.findById(poolId);
    if (!pool) return { poolId, outcome: 'ok', error: null, summary: { notes: ['the pool no longer exists'] } };
    const now = this.deps.clock.now();
    const rateSince = new Date(now.getTime() - RATE_WINDOW_MS);
    try {
      // Counts first (one small statement); member rows only when there is something to do.
      const c = (await this.deps.pools.counts(poolId, rateSince, new Date(now.getTime() - LAUNCH_GRACE_MS))).get(poolId) ?? { counts: NO_COUNTS, recentLaunches: 0 };
      const target = await this.#target(pool, now);
      const decision = decide(desiredOf(pool, target), c.counts, c.recentLaunches, now, opts.force);
      let plan: Pick<PoolPlan, 'thresholds' | 'counts' | 'notes' | 'backingOff'> = decision;
      let report = NOTHING_DONE;
      if (hasWork(decision)) {
        const cloud = this.deps.registry.forRow(await providerOf(this.deps.providers, pool.providerId));
        const snap = await this.deps.pools.snapshot(poolId, rateSince);
        const full = planPool({ pool: desiredOf(pool, target), members: snap.members, recentLaunches: snap.recentLaunches, now, force: opts.force });
        plan = full;
        report = await this.deps.executor.execute(pool, full, cloud);
      }
      if (opts.refresh) {
        const machines = await this.deps.pools.unsettled([poolId]);
        if (machines.length) await this.#refresh({ providerId: pool.providerId, machines });
      }
      const o = withStandby(passOutcome(outcomeInputOf(pool), plan, report, now), target);
      await this.deps.pools.recordOutcome(poolId, { at: this.deps.clock.now(), ...o });
      if (report !== NOTHING_DONE || o.error) log.info({ outcome: o.outcome, summary: { ...o.summary, capacityFailures: o.summary.capacityFailures?.length }, error: o.error }, 'pool pass');
      return { poolId, outcome: o.outcome, error: o.error, summary: o.summary };
    } catch (err) {
      // The pass itself broke (the database, the provider row): recorded as a failure, with back-off.
      const report = { ...NOTHING_DONE, errors: [`reconcile failed: ${err instanceof Error ? err.message : String(err)}`] };
      const o = passOutcome(outcomeInputOf(pool), { thresholds: effectiveThresholds(pool, now), counts: NO_COUNTS, notes: [], backingOff: false }, report, now);
      log.warn({ err }, 'pool pass failed');
      await this.deps.pools.recordOutcome(poolId, { at: this.deps.clock.now(), ...o }).catch((e: unknown) => log.error({ err: e }, 'could not record the pool pass'));
      return { poolId, outcome: o.outcome, error: o.error, summary: o.summary };
    }
  }

  /** A predictive pool's standby target (null otherwise), logged with its reason when it changes. */
  async #target(pool: PoolRow, now: Date): Promise<StandbyTarget | null> {
    const target = await this.deps.demand.target(pool, now);
    const key = target ? `${target.warm}/${target.available}/${target.hold}` : '';
    if (target && this.#loggedTargets.get(pool.id) !== key) {
      this.#loggedTargets.set(pool.id, key);
      this.deps.log.info({ pool: pool.id, warm: target.warm, available: target.available, hold: target.hold, reason: target.reason }, 'standby target');
    }
    return target;
  }

  /**
   * Describe machines whose state is still moving (booting, stopping) once, so the pool and the
   * connect flow see `running` soon even when no node follows them (the node that started them
   * stopped): one DescribeInstances per 200 such machines, per provider, written the way the power
   * follower and inventory sync write. Best effort — inventory sync remains the full reconciliation.
   */
  async #refresh(u: Unsettled): Promise<number> {
    try {
      return await this.deps.follower.refresh(u.providerId, u.machines);
    } catch (err) {
      this.deps.log.warn({ err, provider: u.providerId }, 'pool refresh of booting machines failed; inventory sync will catch up');
      return 0;
    }
  }

  #listen(): Promise<void> {
    this.#listening ??= this.deps.database
      .listen(POKE_CHANNEL, (payload) => {
        const [from, poolId] = payload.split(' ');
        if (from !== this.#instance && poolId && !this.#stopped) void this.run(poolId);
      })
      .then((unlisten) => {
        this.#unlisten = unlisten;
      })
      .catch((err: unknown) => {
        this.deps.log.warn({ err }, 'pool pokes from other nodes are not heard (LISTEN failed); the interval job still runs');
      });
    return this.#listening;
  }
}

function outcomeInputOf(pool: PoolRow) {
  return { consecutiveFailures: pool.consecutiveFailures, backoffUntil: pool.backoffUntil, capacityFailures: capacityFailuresOf(pool), lastReconcileError: pool.lastReconcileError };
}

/** The pass's standby decision on its summary, so the pool shows what it aimed at and why. */
function withStandby<T extends { summary: ReconcileSummary }>(o: T, target: StandbyTarget | null): T {
  if (target) o.summary.standby = { mode: target.mode, warm: target.warm, available: target.available, hold: target.hold, reason: target.reason };
  return o;
}

export function desiredOf(pool: PoolRow, forecast: StandbyTarget | null = null): DesiredPool {
  return {
    forecast: forecast && { warm: forecast.warm, available: forecast.available, hold: forecast.hold, reason: forecast.reason },
    minAvailable: pool.minAvailable,
    maxAvailable: pool.maxAvailable,
    maxTotal: pool.maxTotal,
    scheduleWindows: pool.scheduleWindows,
    timeZone: pool.timeZone,
    provisioning: pool.provisioning as 'running' | 'paused',
    template: pool.template ? { subnetIds: pool.template.subnetIds, instanceTypes: pool.template.instanceTypes } : null,
    launchRatePerMinute: pool.launchRatePerMinute,
    backoffUntil: pool.backoffUntil,
    consecutiveFailures: pool.consecutiveFailures,
    capacityFailures: capacityFailuresOf(pool),
  };
}
