import type { z } from 'zod';
import type { CreatePool, UpdatePool } from '@stagedoor/contract';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, isForeignKeyViolation, isUniqueViolation, type FieldProblem } from '../errors.ts';
import type { Actor } from '../identity/actor.ts';
import type { ProviderRegistry, ProviderRow } from '../providers/provider-registry.ts';
import type { ProvidersRepository } from '../providers/providers.repository.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';
import type { PoolDemand } from './demand.ts';
import type { DaySlot } from './forecast.ts';
import type { PoolLauncher } from './launcher.ts';
import { NO_MACHINES, type PoolAvailabilityCounts, type PoolRow, type PoolsRepository } from './pools.repository.ts';
import type { PassResult, PoolReconciler } from './reconciler.ts';
import { effectiveThresholds, thresholdProblems, type EffectiveThresholds } from './schedule.ts';
import type { StandbyTarget } from './standby.ts';
import { templateProblems } from './validate.ts';

type CreateInput = z.output<typeof CreatePool>;
type UpdateInput = z.output<typeof UpdatePool>;

export interface PoolView {
  pool: PoolRow;
  availability: PoolAvailabilityCounts;
  /** The thresholds in force now (the pool's own, or an open schedule window's). */
  thresholds: EffectiveThresholds;
}

/**
 * Pools: configuration (audited, validated against the provider), membership, availability, and
 * the launch operations the connect flow and the reconciler share. Every write takes an optional
 * `tx`: `(tx ?? db).transaction(…)` nests as a savepoint inside a caller's transaction (apply).
 */
export class PoolsService {
  constructor(
    private readonly deps: {
      db: Db;
      repo: PoolsRepository;
      providers: ProvidersRepository;
      registry: ProviderRegistry;
      launcher: PoolLauncher;
      reconciler: PoolReconciler;
      demand: PoolDemand;
      audit: AuditService;
      clock: Clock;
    },
  ) {}

  async list(filter: { providerId?: string }, limit: number, offset: number): Promise<{ items: PoolView[]; total: number }> {
    const page = await this.deps.repo.list(filter, limit, offset);
    const counts = await this.deps.repo.availability(page.items.map((p) => p.id));
    const now = this.deps.clock.now();
    return { items: page.items.map((pool) => ({ pool, availability: counts.get(pool.id) ?? NO_MACHINES, thresholds: effectiveThresholds(pool, now) })), total: page.total };
  }

  async get(id: string, tx?: DbOrTx): Promise<PoolRow> {
    const row = await this.deps.repo.findById(id, tx);
    if (!row) throw new NotFoundError('pool', id);
    return row;
  }

  async view(id: string): Promise<PoolView> {
    const pool = await this.get(id);
    return { pool, availability: await this.availability(id), thresholds: effectiveThresholds(pool, this.deps.clock.now()) };
  }

  findByName(name: string, tx?: DbOrTx): Promise<PoolRow | undefined> {
    return this.deps.repo.findByName(name, tx);
  }

  /** Counted by the one definition in availability.ts (the reconciler and the connect flow use the same). */
  async availability(poolId: string): Promise<PoolAvailabilityCounts> {
    return (await this.deps.repo.availability([poolId])).get(poolId) ?? NO_MACHINES;
  }

  async create(actor: Actor, input: CreateInput, tx?: DbOrTx): Promise<PoolRow> {
    const provider = await this.#provider(input.providerId, tx);
    await this.#validate({ ...input, id: null }, provider, !!input.template);
    const now = this.deps.clock.now();
    const row = await this.#named(input.name, () =>
      (tx ?? this.deps.db).transaction(async (t) => {
        const created = await this.deps.repo.insert({ ...input, createdAt: now, updatedAt: now }, t);
        const membership = await this.deps.repo.resolveMembership(created.id, now, t);
        await this.deps.audit.record(actor, { action: 'pool.create', outcome: 'success', targetType: 'pool', targetId: created.id, details: { name: created.name, provider: provider.name, members: membership.joined } }, t);
        return created;
      }),
    );
    this.poke(row.id);
    return row;
  }

  async update(actor: Actor, id: string, input: UpdateInput, tx?: DbOrTx): Promise<PoolRow> {
    const patch = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as UpdateInput;
    const current = await this.get(id, tx);
    const merged = { ...current, ...patch };
    const providerChanged = merged.providerId !== current.providerId;
    const provider = await this.#provider(merged.providerId, tx);
    await this.#validate(merged, provider, !!merged.template && (patch.template !== undefined || providerChanged));
    const row = await this.#named(merged.name, () =>
      (tx ?? this.deps.db).transaction(async (t) => {
        const locked = await this.deps.repo.lockById(id, t);
        if (!locked) throw new NotFoundError('pool', id);
        if (providerChanged) {
          const members = await this.deps.repo.memberCount(id, t);
          if (members) throw new ConflictError(`pool "${locked.name}" still has ${members} machine(s) of its provider: a pool changes provider only when empty`);
        }
        const now = this.deps.clock.now();
        const updated = (await this.deps.repo.update(id, { ...patch, updatedAt: now }, t))!;
        if (patch.membership !== undefined || providerChanged) await this.deps.repo.resolveMembership(id, now, t);
        await this.deps.audit.record(actor, { action: 'pool.update', outcome: 'success', targetType: 'pool', targetId: id, details: { name: updated.name, changed: Object.keys(patch) } }, t);
        return updated;
      }),
    );
    this.poke(id);
    return row;
  }

  /** Refused (409) while users hold machines of the pool or a policy still offers it; the machines stay in the inventory, unpooled. */
  async delete(actor: Actor, id: string, tx?: DbOrTx): Promise<void> {
    const current = await this.get(id, tx);
    try {
      await (tx ?? this.deps.db).transaction(async (t) => {
        if (!(await this.deps.repo.lockById(id, t))) throw new NotFoundError('pool', id);
        const active = await this.deps.repo.activeAssignmentCount(id, t);
        if (active) throw new ConflictError(`pool "${current.name}" has ${active} active assignment(s): release them before deleting the pool`);
        await this.deps.repo.delete(id, t);
        await this.deps.audit.record(actor, { action: 'pool.delete', outcome: 'success', targetType: 'pool', targetId: id, details: { name: current.name } }, t);
      });
    } catch (err) {
      // policy_pools restricts the delete: a policy still offers this pool.
      if (isForeignKeyViolation(err)) throw new ConflictError(`pool "${current.name}" is still offered by a policy: remove it from the policy before deleting the pool`, undefined, { cause: err });
      throw err;
    }
  }

  /**
   * The pool's forecast for the console: the standby it would aim at now and why (null for a pool
   * sized by its windows), and today slot by slot — forecast against what happened.
   */
  async forecast(id: string): Promise<{ pool: PoolRow; now: Date; target: StandbyTarget | null; today: DaySlot[] }> {
    const pool = await this.get(id);
    const now = this.deps.clock.now();
    return { pool, now, target: await this.deps.demand.target(pool, now), today: await this.deps.demand.today(pool, now) };
  }

  /** Membership, then one pass now, waiting for a pass running elsewhere and ignoring the back-off. */
  async reconcileNow(actor: Actor, id: string): Promise<{ result: PassResult; view: PoolView }> {
    await this.get(id);
    await this.deps.repo.resolveMembership(id, this.deps.clock.now());
    const result = await this.deps.reconciler.runNow(id);
    const { notes: _notes, capacityFailures: _cf, ...counts } = result.summary;
    await this.deps.audit.record(actor, { action: 'pool.reconcile', outcome: result.outcome === 'error' ? 'failure' : 'success', targetType: 'pool', targetId: id, reason: result.error ?? undefined, details: { outcome: result.outcome, ...counts } });
    return { result, view: await this.view(id) };
  }

  /**
   * Inside the caller's transaction: reserve one launch of the pool — a `pending` row with its name
   * and launch token (the EC2 ClientToken), no instance id yet; its agent token is issued when the
   * launch executes. Refused, with a reason, when the pool has
   * no template, is paused, is at maxTotal (members and pending launches) or over its launch rate.
   * Concurrent reservations of one pool queue on the pool's row lock, so the limits hold.
   */
  reservePendingLaunch(poolId: string, tx: DbOrTx): Promise<{ ok: true; workstation: WorkstationRow } | { ok: false; reason: string }> {
    return this.deps.launcher.reserve(poolId, tx);
  }

  /**
   * After the caller's commit: launch the reserved row (subnets, then instance types, on capacity
   * errors), filling in the instance. On failure the row ends `terminated` and the pool records the
   * error and backs off; that is handled, not thrown. Safe to call twice (claimed once; same token).
   */
  async executeLaunch(workstationId: string): Promise<void> {
    const result = await this.deps.launcher.execute(workstationId);
    await this.deps.launcher.recordOnPool(result);
  }

  /** One pass of the pool now (not forced), coalesced with one already running on this node; `busy` if another node runs it. */
  reconcile(poolId: string): Promise<PassResult | 'busy'> {
    return this.deps.reconciler.run(poolId);
  }

  /** Reconcile this pool soon, on whichever node (call after an assignment or a release commits). */
  poke(poolId: string): void {
    this.deps.reconciler.poke(poolId);
  }

  /** The `pool-reconciler` job's pass over every pool. */
  reconcileAll(): Promise<Record<string, number>> {
    return this.deps.reconciler.runAll();
  }

  /** Resolves when no pass started by this node is running (tests; shutdown). */
  idle(): Promise<void> {
    return this.deps.reconciler.idle();
  }

  /** Stop reacting to pokes and wait for running passes. */
  stop(): Promise<void> {
    return this.deps.reconciler.stop();
  }

  async #provider(id: string, tx?: DbOrTx): Promise<ProviderRow> {
    const row = await this.deps.providers.findById(id, tx);
    if (!row) throw new InvalidInputError(`provider ${id} does not exist`, [{ path: 'providerId', message: 'no such provider' }]);
    return row;
  }

  async #validate(s: Pick<PoolRow, 'minAvailable' | 'maxAvailable' | 'maxTotal' | 'scheduleWindows' | 'template'> & { id: string | null }, provider: ProviderRow, checkTemplate: boolean): Promise<void> {
    const problems: FieldProblem[] = thresholdProblems(s);
    if (s.template && checkTemplate) problems.push(...(await templateProblems(s.template, provider, this.deps.registry.forRow(provider), s.id)));
    if (problems.length) throw new InvalidInputError(`invalid pool: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
  }

  async #named<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isUniqueViolation(err, 'pools_name_lower_key')) throw new ConflictError(`a pool named "${name}" already exists`);
      throw err;
    }
  }
}
