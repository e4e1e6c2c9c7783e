import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { LaunchWorkstation, UpdateWorkstation } from '@stagedoor/contract';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import { ProviderError, type CloudProvider, type PowerChange } from '../../providers/cloud/cloud-provider.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from '../identity/actor.ts';
import type { PowerFollower } from '../providers/power-follow.ts';
import type { ProviderRegistry, ProviderRow } from '../providers/provider-registry.ts';
import type { ProvidersRepository } from '../providers/providers.repository.ts';
import { pinnedTags } from '../providers/overlap.ts';
import { hostPatchColumns } from './static-hosts.service.ts';
import type { WorkstationFilter, WorkstationRow, WorkstationSort, WorkstationsRepository } from './workstations.repository.ts';

export type PowerAction = 'start' | 'stop' | 'reboot' | 'terminate';

/**
 * Workstations: the inventory, and the power operations every caller shares — the admin API, the
 * connect flow and the power-plan timers all start a machine through `start` here (STYLE habit 7).
 * Cloud calls happen outside any transaction; the provider's answer is then written with its
 * history and audit row in one transaction.
 */
/** What a power call did; `fallback` explains a hibernation that became a stop (merged into the audit details). */
interface CallResult {
  change?: PowerChange;
  fallback?: { hibernate: false; hibernateFallback: 'stop'; hibernateRefused: string };
}

export class WorkstationsService {
  constructor(
    private readonly deps: {
      db: Db;
      repo: WorkstationsRepository;
      providers: ProvidersRepository;
      registry: ProviderRegistry;
      audit: AuditService;
      clock: Clock;
      /** Follows each operation's machine until the cloud says it settled (`power-follow.ts`). */
      follower: Pick<PowerFollower, 'follow'>;
    },
  ) {}

  /** A page of machines, each with its provider and assigned user (one query for the page). */
  async list(filter: WorkstationFilter, sort: WorkstationSort, limit: number, offset: number) {
    const page = await this.deps.repo.list(filter, sort, limit, offset);
    const context = await this.deps.repo.contextOf(page.items.map((w) => w.id));
    return { ...page, items: page.items.map((w) => ({ ...w, context: context.get(w.id) })) };
  }

  async get(id: string): Promise<WorkstationRow> {
    const row = await this.deps.repo.findById(id);
    if (!row) throw new NotFoundError('workstation', id);
    return row;
  }

  start(actor: Actor, id: string) {
    return this.power(actor, id, 'start');
  }

  /** One power operation on one machine; returns the machine as the provider now reports it. */
  async power(actor: Actor, id: string, action: PowerAction, opts: { hibernate?: boolean } = {}): Promise<{ workstation: WorkstationRow; previous: PowerState; current: PowerState }> {
    const ws = await this.get(id);
    const { cloud } = await this.#cloudOf(ws);
    if (action === 'terminate') await this.#refuseIfAssigned(ws);
    if (!ws.externalId) throw new ConflictError(`workstation "${ws.name}" is still being launched; try again when it has an instance id`);
    const audit = { action: `workstation.${action}`, targetType: 'workstation', targetId: id, details: { name: ws.name, externalId: ws.externalId, ...(opts.hibernate ? { hibernate: true } : {}) } };
    let called: CallResult;
    try {
      called = await this.#call(cloud, action, ws.externalId, opts);
    } catch (err) {
      await this.deps.audit.record(actor, { ...audit, outcome: 'failure', reason: err instanceof Error ? err.message : String(err) });
      throw err;
    }
    const previous = ws.powerState as PowerState;
    const current = called.change?.current ?? previous;
    await this.deps.db.transaction(async (tx) => {
      const at = this.deps.clock.now();
      const changed = await this.deps.repo.setPowerState([id], current, at, tx);
      await this.deps.repo.turnOverPowerHistory(changed.map((c) => c.id), at, tx);
      await this.deps.audit.record(actor, { ...audit, outcome: 'success', details: { ...audit.details, ...called.fallback, previous, current } }, tx);
    });
    this.deps.follower.follow([{ workstationId: id, providerId: ws.providerId, externalId: ws.externalId, from: previous, current }]);
    return { workstation: await this.get(id), previous, current };
  }

  /**
   * A power operation decided at the last moment (power and release plans): the machine's row stays
   * locked from `guard`'s check to the recorded answer, so a user who connects meanwhile either is
   * seen by the check, or waits for the lock and finds the machine stopping (and the connect flow
   * starts it again). The one cloud call runs inside that transaction on purpose: one row, one call.
   * `guard` returns why not to act, or null; it runs in the transaction and may write (e.g. release
   * the assignment of a machine about to be terminated).
   */
  async powerGuarded(
    actor: Actor,
    id: string,
    action: PowerAction,
    guard: (ws: WorkstationRow, tx: DbOrTx) => Promise<string | null>,
    opts: { hibernate?: boolean; details?: Record<string, unknown> } = {},
  ): Promise<{ done: true; previous: PowerState; current: PowerState } | { done: false; skipped: string }> {
    let moving: Parameters<PowerFollower['follow']>[0] = [];
    const result = await this.deps.db.transaction(async (tx) => {
      const ws = await this.deps.repo.lockById(id, tx);
      if (!ws) return { done: false as const, skipped: 'the workstation no longer exists' };
      const why = await guard(ws, tx);
      if (why) return { done: false as const, skipped: why };
      if (!ws.externalId) return { done: false as const, skipped: 'the machine is still being launched' };
      const provider = await this.deps.providers.findById(ws.providerId, tx);
      if (!provider) throw new NotFoundError('provider', ws.providerId);
      const cloud = this.deps.registry.forRow(provider);
      const audit = { action: `workstation.${action}`, targetType: 'workstation', targetId: id, details: { name: ws.name, externalId: ws.externalId, ...opts.details, ...(opts.hibernate ? { hibernate: true } : {}) } };
      // A failed call throws out of the transaction (the guard's writes roll back) and the timer retries.
      const called = await this.#call(cloud, action, ws.externalId, opts);
      const previous = ws.powerState as PowerState;
      const current = called.change?.current ?? previous;
      const at = this.deps.clock.now();
      const changed = await this.deps.repo.setPowerState([id], current, at, tx);
      await this.deps.repo.turnOverPowerHistory(changed.map((c) => c.id), at, tx);
      await this.deps.audit.record(actor, { ...audit, outcome: 'success', details: { ...audit.details, ...called.fallback, previous, current } }, tx);
      moving = [{ workstationId: id, providerId: ws.providerId, externalId: ws.externalId, from: previous, current }];
      return { done: true as const, previous, current };
    });
    // After the commit: the follower's first write must not race this transaction's own.
    this.deps.follower.follow(moving);
    return result;
  }

  async #call(cloud: CloudProvider, action: PowerAction, externalId: string, opts: { hibernate?: boolean }): Promise<CallResult> {
    switch (action) {
      case 'start':
        return { change: (await cloud.start([externalId]))[0] };
      case 'stop':
        return opts.hibernate ? this.#hibernate(cloud, externalId) : { change: (await cloud.stop([externalId]))[0] };
      case 'terminate':
        return { change: (await cloud.terminate([externalId]))[0] };
      case 'reboot':
        await cloud.reboot([externalId]);
        return {};
    }
  }

  /**
   * Hibernate, or stop when the machine cannot hibernate (launched without hibernation, a family
   * without it): the point of a power plan is that an idle machine stops costing money, so a plain
   * stop beats leaving it running. Why it fell back goes into the audit row (ADR 0023). Any other
   * error (throttling, the machine is gone) is thrown as it is, and the caller retries or reports.
   */
  async #hibernate(cloud: CloudProvider, externalId: string): Promise<CallResult> {
    try {
      return { change: (await cloud.stop([externalId], { hibernate: true }))[0] };
    } catch (err) {
      if (!(err instanceof ProviderError) || err.kind !== 'unsupported') throw err;
      const change = (await cloud.stop([externalId]))[0];
      return { change, fallback: { hibernate: false, hibernateFallback: 'stop', hibernateRefused: err.message } };
    }
  }

  /** Launch one machine by hand (pools launch through the reconciler). Nothing is left behind on failure. */
  async launch(actor: Actor, input: z.output<typeof LaunchWorkstation>): Promise<WorkstationRow> {
    const provider = await this.deps.providers.findById(input.providerId);
    if (!provider) throw new InvalidInputError(`provider ${input.providerId} does not exist`, [{ path: 'providerId', message: 'no such provider' }]);
    const cloud = this.deps.registry.forRow(provider);
    const { providerId: _p, name, tags: given, ...spec } = input;
    const tags = { ...pinnedTags(provider.tagFilter), ...given };
    const problems = (await cloud.validateLaunch?.(spec)) ?? [];
    if (problems.length) throw new InvalidInputError(`cannot launch: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
    const clientToken = randomUUID();
    const now = this.deps.clock.now();
    // The row exists before the launch, keyed by its token, so a crash in between is adopted by the next sync.
    const pending = await this.deps.repo.insertOne({ providerId: provider.id, name, launchToken: clientToken, launchedAt: now, powerState: 'pending', tags, createdAt: now, updatedAt: now }, this.deps.db);
    try {
      const [inst] = await cloud.launch({ ...spec, name, tags, clientToken });
      if (!inst) throw new Error('the provider launched nothing');
      await this.deps.db.transaction(async (tx) => {
        await this.deps.repo.update(
          pending.id,
          { externalId: inst.id, privateAddress: inst.privateAddress, instanceType: inst.instanceType, availabilityZone: inst.availabilityZone, subnetId: inst.subnetId, imageId: inst.imageId, tags: inst.tags, powerState: inst.state, updatedAt: this.deps.clock.now() },
          tx,
        );
        await this.deps.repo.turnOverPowerHistory([pending.id], this.deps.clock.now(), tx);
        await this.deps.audit.record(actor, { action: 'workstation.launch', outcome: 'success', targetType: 'workstation', targetId: pending.id, details: { name, externalId: inst.id, provider: provider.name } }, tx);
      });
      // follow() never throws: nothing here undoes the launch.
      this.deps.follower.follow([{ workstationId: pending.id, providerId: provider.id, externalId: inst.id, from: null, current: inst.state }]);
    } catch (err) {
      await this.deps.repo.delete(pending.id, this.deps.db);
      await this.deps.audit.record(actor, { action: 'workstation.launch', outcome: 'failure', targetType: 'provider', targetId: provider.id, reason: err instanceof Error ? err.message : String(err), details: { name } });
      throw err;
    }
    return this.get(pending.id);
  }

  /**
   * Change a machine: `maintenance` for any (audited on its own, as an operator's switch), and a
   * static host's name, address, protocols and tags. A cloud machine's name, address and tags are
   * its provider's (the next sync would undo an edit here), so changing them is refused.
   */
  async update(actor: Actor, id: string, patch: z.output<typeof UpdateWorkstation>, outer?: DbOrTx): Promise<WorkstationRow> {
    const { maintenance, ...own } = patch;
    const ws = await this.deps.repo.findById(id, outer);
    if (!ws) throw new NotFoundError('workstation', id);
    const provider = await this.deps.providers.findById(ws.providerId, outer);
    if (!provider) throw new NotFoundError('provider', ws.providerId);
    const ownKeys = Object.keys(own).filter((k) => own[k as keyof typeof own] !== undefined);
    if (provider.kind !== 'static' && ownKeys.length) {
      throw new ConflictError(`workstation "${ws.name}" comes from the ${provider.kind} provider "${provider.name}": its ${ownKeys.join(', ')} come from the cloud (only maintenance can be changed here)`);
    }
    const { columns, changed } = hostPatchColumns(ws, own);
    try {
      return await (outer ?? this.deps.db).transaction(async (tx) => {
        const now = this.deps.clock.now();
        if (changed.length) {
          await this.deps.repo.update(id, { ...columns, updatedAt: now }, tx);
          await this.deps.audit.record(actor, { action: 'workstation.update', outcome: 'success', targetType: 'workstation', targetId: id, details: { name: ws.name, changed, ...(changed.includes('address') ? { address: own.address } : {}) } }, tx);
        }
        if (maintenance !== undefined && maintenance !== ws.maintenance) {
          await this.deps.repo.update(id, { maintenance, updatedAt: now }, tx);
          await this.deps.audit.record(actor, { action: maintenance ? 'workstation.maintenance.on' : 'workstation.maintenance.off', outcome: 'success', targetType: 'workstation', targetId: id, details: { name: ws.name } }, tx);
        }
        return (await this.deps.repo.findById(id, tx))!;
      });
    } catch (err) {
      if (isUniqueViolation(err, 'workstations_provider_external_key')) throw new ConflictError(`provider "${provider.name}" already has a host named "${own.name}"`);
      throw err;
    }
  }

  /** Each provider's kind, for the actions the API offers per machine. */
  providerKinds(rows: WorkstationRow[]): Promise<Map<string, string>> {
    return this.deps.repo.providerKinds(rows.map((r) => r.providerId));
  }

  /** Remove a static host, or forget a terminated cloud machine that holds no assignment. */
  async remove(actor: Actor, id: string): Promise<void> {
    const ws = await this.get(id);
    const provider = await this.deps.providers.findById(ws.providerId);
    if (provider?.kind !== 'static' && ws.powerState !== 'terminated') {
      throw new ConflictError(`workstation "${ws.name}" is ${ws.powerState} in ${provider?.name}: terminate it instead of removing it`);
    }
    await this.#refuseIfAssigned(ws);
    await this.deps.db.transaction(async (tx) => {
      await this.deps.repo.delete(id, tx);
      await this.deps.audit.record(actor, { action: 'workstation.remove', outcome: 'success', targetType: 'workstation', targetId: id, details: { name: ws.name } }, tx);
    });
  }

  async #cloudOf(ws: WorkstationRow): Promise<{ provider: ProviderRow; cloud: CloudProvider }> {
    const provider = await this.deps.providers.findById(ws.providerId);
    if (!provider) throw new NotFoundError('provider', ws.providerId);
    return { provider, cloud: this.deps.registry.forRow(provider) };
  }

  async #refuseIfAssigned(ws: WorkstationRow): Promise<void> {
    if (await this.deps.repo.hasActiveAssignment(ws.id)) throw new ConflictError(`workstation "${ws.name}" is assigned to a user: release the assignment first`);
  }
}
