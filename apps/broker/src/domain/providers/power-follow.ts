import type { Logger } from 'pino';
import type { Database } from '../../db/database.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import type { CloudInstance } from '../../providers/cloud/cloud-provider.ts';
import type { Clock } from '../clock.ts';
import type { WorkstationsRepository } from '../workstations/workstations.repository.ts';
import { applyObserved } from './apply-observed.ts';
import { FOLLOW_INTERVAL_MS, isSettled, judge, planTick, type Followed } from './follow-plan.ts';
import type { ProviderRegistry } from './provider-registry.ts';
import type { ProvidersRepository } from './providers.repository.ts';

/** Machines per read-describe-write round (a multiple of the 200 ids one DescribeInstances takes). */
const ROWS_PER_WRITE = 1_000;

/** A machine a power operation or a launch has just set moving. */
export interface FollowRequest {
  workstationId: string;
  providerId: string;
  externalId: string | null;
  /** The state before the operation (null for a launch). */
  from: PowerState | null;
  /** The state the cloud answered the operation with: nothing is followed when it is already settled. */
  current: PowerState;
}

/** A power state the follower wrote, for whoever reacts to it (the pools poke the machine's pool). */
export interface FollowedChange {
  workstationId: string;
  poolId: string | null;
  powerState: PowerState;
}

/**
 * Follows machines after a power operation or a launch until the cloud says they have settled
 * (running, stopped, terminated): every `FOLLOW_INTERVAL_MS`, one DescribeInstances per provider for
 * all the machines it follows (per 200), each answer written as inventory sync writes it
 * (`applyObserved`: state, address, power history). So the portal's progress and the power history
 * match the cloud within a few seconds, not a sync interval later.
 *
 * Per node and best effort: the set lives in memory, a node that stops stops following, and
 * inventory sync and the pool reconciler's refresh remain the safety net. Planning is pure
 * (`follow-plan.ts`).
 */
export class PowerFollower {
  readonly #followed = new Map<string, Followed>();
  readonly #listeners: ((changes: FollowedChange[]) => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  /** What the ticks did so far (tests, logs): describe calls, the largest batch, states written. */
  readonly stats = { ticks: 0, describeCalls: 0, largestBatch: 0, written: 0 };

  constructor(
    private readonly deps: {
      database: Database;
      providers: ProvidersRepository;
      workstations: WorkstationsRepository;
      registry: ProviderRegistry;
      clock: Clock;
      log: Logger;
      intervalMs?: number;
    },
  ) {}

  /** Follow these machines from now (a machine followed already starts over from this operation). Never throws. */
  follow(machines: FollowRequest[]): void {
    if (this.#stopped) return;
    const since = this.deps.clock.now();
    for (const m of machines) {
      if (!m.externalId || isSettled(m.current)) continue;
      this.#followed.set(m.workstationId, { workstationId: m.workstationId, providerId: m.providerId, externalId: m.externalId, from: m.from, since });
    }
    this.#schedule();
  }

  /** The machines followed now (workstation ids). */
  following(): string[] {
    return [...this.#followed.keys()];
  }

  /** Called after each committed write with the power states it changed. */
  onPowerChange(listener: (changes: FollowedChange[]) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Describe these machines once, now, and write the answer (the pool reconciler's refresh of its
   * booting and stopping members). Returns how many changed power state. Throws on a cloud error.
   */
  async refresh(providerId: string, machines: { id: string; externalId: string }[]): Promise<number> {
    const since = this.deps.clock.now();
    const list = machines.map((m) => ({ workstationId: m.id, providerId, externalId: m.externalId, from: null, since }));
    return (await this.#observeAll(providerId, list)).changed;
  }

  /** Stop following (shutdown); waits for a tick under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    this.#followed.clear();
  }

  #schedule(): void {
    if (this.#stopped || this.#timer || this.#running || this.#followed.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#tick()
        .catch((err: unknown) => this.deps.log.warn({ err }, 'power follow tick failed'))
        .finally(() => {
          this.#running = undefined;
          this.#schedule();
        });
    }, this.deps.intervalMs ?? FOLLOW_INTERVAL_MS).unref();
  }

  async #tick(): Promise<void> {
    const plan = planTick(this.#followed.values(), this.deps.clock.now());
    for (const f of plan.expired) {
      this.#forget(f);
      this.deps.log.info({ workstation: f.workstationId, externalId: f.externalId }, 'power follow: not settled by the deadline; inventory sync takes over');
    }
    if (plan.describe.size === 0) return;
    this.stats.ticks++;
    await Promise.all(
      [...plan.describe].map(async ([providerId, list]) => {
        try {
          const { settled } = await this.#observeAll(providerId, list);
          for (const f of settled) this.#forget(f);
        } catch (err) {
          // Asked again next tick; a provider that keeps failing reaches the deadline.
          this.deps.log.warn({ err, provider: providerId, machines: list.length }, 'power follow: describe failed');
        }
      }),
    );
  }

  /** `#observe` in slices, so that no statement carries more ids than PostgreSQL takes parameters. */
  async #observeAll(providerId: string, list: Followed[]): Promise<{ settled: Followed[]; changed: number }> {
    const out = { settled: [] as Followed[], changed: 0 };
    for (let i = 0; i < list.length; i += ROWS_PER_WRITE) {
      const r = await this.#observe(providerId, list.slice(i, i + ROWS_PER_WRITE));
      out.settled.push(...r.settled);
      out.changed += r.changed;
    }
    return out;
  }

  /** One DescribeInstances (per 200) for `list`, the answers judged and written; which machines settled. */
  async #observe(providerId: string, list: Followed[]): Promise<{ settled: Followed[]; changed: number }> {
    const provider = await this.deps.providers.findById(providerId);
    if (!provider || provider.kind === 'static') return { settled: list, changed: 0 };
    const cloud = this.deps.registry.forRow(provider);
    // The rows as they are before the question: an answer is written only over the same versions.
    const versions = await this.deps.workstations.versions(list.map((f) => f.workstationId));
    const observed = await cloud.listInstances({ ids: list.map((f) => f.externalId) });
    this.stats.describeCalls += Math.ceil(list.length / 200);
    this.stats.largestBatch = Math.max(this.stats.largestBatch, list.length);
    const byExternal = new Map(observed.map((i) => [i.id, i]));
    const now = this.deps.clock.now();
    const write: { f: Followed; inst: CloudInstance; done: boolean }[] = [];
    for (const f of list) {
      const inst = byExternal.get(f.externalId);
      const verdict = judge(f, inst?.state, now);
      if (verdict.apply && inst) write.push({ f, inst, done: verdict.done });
    }
    if (write.length === 0) return { settled: [], changed: 0 };
    const result = await this.deps.database.db.transaction(async (tx) => {
      const at = this.deps.clock.now();
      // A row written by anyone while the cloud answered (a power operation, a sync), or held by
      // someone right now, is left out: its machine is asked about again on the next tick.
      const locked = await this.deps.workstations.lockKnown(write.map((w) => w.f.workstationId), tx);
      const known = locked.filter((k) => versions.get(k.id) === k.version);
      const applied = await applyObserved(this.deps.workstations, providerId, known, write.map((w) => w.inst), at, tx, 'these');
      const poolOf = new Map(known.map((k) => [k.id, k.poolId]));
      return { written: new Set(known.map((k) => k.id)), changes: applied.powerChanged.map((c) => ({ workstationId: c.id, poolId: poolOf.get(c.id) ?? null, powerState: c.powerState })) };
    });
    this.stats.written += result.changes.length;
    if (result.changes.length) this.#emit(result.changes);
    return { settled: write.filter((w) => w.done && result.written.has(w.f.workstationId)).map((w) => w.f), changed: result.changes.length };
  }

  #emit(changes: FollowedChange[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(changes);
      } catch (err) {
        this.deps.log.warn({ err }, 'power follow: a listener failed');
      }
    }
  }

  /** Forget `f` — unless a newer operation on the machine replaced it meanwhile. */
  #forget(f: Followed): void {
    if (this.#followed.get(f.workstationId) === f) this.#followed.delete(f.workstationId);
  }
}
