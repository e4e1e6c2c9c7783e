import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { PoolTemplate } from '../../db/schema/pools.ts';
import { ProviderError, type CloudInstance, type CloudProvider } from '../../providers/cloud/cloud-provider.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { systemActor } from '../identity/actor.ts';
import type { PowerFollower } from '../providers/power-follow.ts';
import type { ProviderRegistry, ProviderRow } from '../providers/provider-registry.ts';
import { NotFoundError } from '../errors.ts';
import type { ProvidersRepository } from '../providers/providers.repository.ts';
import type { WorkstationRow, WorkstationsRepository } from '../workstations/workstations.repository.ts';
import { launchSpecOf, launchTags, launchToken, newAgentToken, renderName, renderUserData, WORKSTATION_TAG } from './launch-spec.ts';
import { backoffMs, failingSubnets, LAUNCH_GRACE_MS, orderSubnets, RATE_WINDOW_MS, type CapacityFailure } from './plan.ts';
import type { PoolRow, PoolsRepository } from './pools.repository.ts';
import type { PoolLaunchesRepository } from './pool-launches.repository.ts';
import { effectiveThresholds } from './schedule.ts';

export type Reservation = { ok: true; workstation: WorkstationRow } | { ok: false; reason: string };

export type LaunchResult =
  | { status: 'launched' | 'adopted'; workstationId: string; poolId: string | null; externalId: string; capacityFailures: CapacityFailure[] }
  | { status: 'failed'; workstationId: string; poolId: string | null; error: string; capacityFailures: CapacityFailure[] }
  /** Already launched, terminated, or claimed by another executor at this moment. */
  | { status: 'skipped'; workstationId: string };

/** EC2 accepts up to 200 values per filter; stay within it when looking launches up by tag. */
const LOOKUP_BATCH = 200;

/**
 * How a pool launches one machine, in two steps so that the connect flow and the reconciler share
 * them (STYLE habit 7): `reserve` writes the row inside the caller's transaction (name, launch token,
 * `pending`, no instance id); `execute` runs after the commit and calls the cloud — the only side
 * effect, idempotent by the EC2 ClientToken — trying the template's subnets, then its other types.
 */
export class PoolLauncher {
  constructor(
    private readonly deps: {
      db: Db;
      pools: PoolsRepository;
      launches: PoolLaunchesRepository;
      workstations: WorkstationsRepository;
      providers: ProvidersRepository;
      registry: ProviderRegistry;
      audit: AuditService;
      clock: Clock;
      log: Logger;
      /** Follows each launched machine until it runs (`power-follow.ts`). */
      follower: Pick<PowerFollower, 'follow'>;
    },
  ) {}

  /** Reserve one launch inside `tx`; refuses with a reason a person can read. */
  async reserve(poolId: string, tx: DbOrTx): Promise<Reservation> {
    const r = await this.reserveMany(poolId, [null], tx);
    return r.rows[0] ? { ok: true, workstation: r.rows[0] } : { ok: false, reason: r.refused ?? 'nothing reserved' };
  }

  /**
   * Reserve up to `subnets.length` launches in one go (the reconciler's; null = pick the emptiest
   * subnet). The pool row stays locked until `tx` ends, so concurrent reservations of a pool queue
   * and maxTotal and the launch rate hold; `refused` says why fewer rows came back than asked for.
   */
  async reserveMany(poolId: string, subnets: (string | null)[], tx: DbOrTx): Promise<{ rows: WorkstationRow[]; refused: string | null }> {
    const now = this.deps.clock.now();
    const refuse = (refused: string) => ({ rows: [], refused });
    const pool = await this.deps.pools.lockById(poolId, tx);
    if (!pool) return refuse(`pool ${poolId} does not exist`);
    const template = pool.template;
    if (!template) return refuse(`pool "${pool.name}" has no provisioning template, so it cannot launch machines`);
    if (pool.provisioning === 'paused') return refuse(`provisioning of pool "${pool.name}" is paused`);
    const { maxTotal } = effectiveThresholds(pool, now);
    const ctx = await this.deps.launches.launchContext(poolId, new Date(now.getTime() - RATE_WINDOW_MS), tx);
    const room = maxTotal === null ? Infinity : maxTotal - ctx.total;
    const allowance = pool.launchRatePerMinute - ctx.recent;
    const n = Math.max(0, Math.min(subnets.length, room, allowance));
    const refused =
      n === subnets.length
        ? null
        : room <= allowance
          ? `pool "${pool.name}" is at its maximum of ${maxTotal} machine(s)`
          : `pool "${pool.name}" has launched ${ctx.recent} machine(s) in the last minute, its limit; try again shortly`;
    if (n === 0) return refuse(refused!);
    const last = await this.deps.launches.nextSequence(poolId, n, tx);
    const failing = failingSubnets(capacityFailuresOf(pool), now);
    const rows = subnets.slice(0, n).map((wanted, i) => {
      const subnetId = wanted ?? orderSubnets(template.subnetIds, ctx.bySubnet, failing)[0] ?? null;
      if (subnetId) ctx.bySubnet.set(subnetId, (ctx.bySubnet.get(subnetId) ?? 0) + 1);
      const id = randomUUID();
      return {
        id,
        providerId: pool.providerId,
        name: renderName(template.namePattern, last - n + 1 + i, pool.name),
        poolId,
        launchedByPoolId: poolId,
        launchToken: launchToken(id),
        launchedAt: now,
        powerState: 'pending',
        powerStateChangedAt: now,
        subnetId,
        instanceType: template.instanceTypes[0] ?? null,
        imageId: template.imageId ?? null,
        // No agent token yet: it is issued when the launch executes, because its plaintext must reach
        // the user data and nowhere else — and the executor may be another node, or run after a crash.
        agentTokenHash: null,
        tags: launchTags(template, poolId, id),
        createdAt: now,
        updatedAt: now,
      };
    });
    return { rows: await this.deps.launches.insertLaunches(rows, tx), refused };
  }

  /**
   * Launch the reserved row. Claims it first (so two executors never both call the cloud for it),
   * issues the agent token that goes into the user data, then tries each instance type over the
   * subnets in order; a capacity error moves on. An instance that may exist after an ambiguous error
   * is looked up by its tag before the launch is declared failed.
   */
  async execute(workstationId: string): Promise<LaunchResult> {
    const row = await this.deps.workstations.findById(workstationId);
    if (!row || row.externalId || row.powerState === 'terminated' || !row.launchToken || !row.launchedByPoolId) return { status: 'skipped', workstationId };
    const pool = await this.deps.pools.findById(row.launchedByPoolId);
    const cloud = this.deps.registry.forRow(await providerOf(this.deps.providers, row.providerId));
    return this.executeRow(row, pool ?? null, cloud);
  }

  /** `execute` for a caller that has the row, its pool and its provider's client at hand (the reconciler). */
  async executeRow(row: WorkstationRow, pool: PoolRow | null, cloud: CloudProvider): Promise<LaunchResult> {
    if (row.externalId || row.powerState === 'terminated' || !row.launchToken) return { status: 'skipped', workstationId: row.id };
    const agent = newAgentToken();
    const claimedAt = this.deps.clock.now();
    if (!(await this.deps.launches.claimLaunch(row.id, row.agentTokenHash, agent.hash, claimedAt, new Date(claimedAt.getTime() - LAUNCH_GRACE_MS)))) return { status: 'skipped', workstationId: row.id };
    if (!pool?.template) return this.#fail(row, 'the pool has no provisioning template any more', []);
    const template = pool.template;
    const userData = template.userData
      ? renderUserData(template.userData, { 'workstation.name': row.name, 'workstation.id': row.id, 'pool.name': pool.name, 'pool.id': pool.id, 'agent.token': agent.token })
      : undefined;
    const spec = launchSpecOf(template, { id: row.id, name: row.name, launchToken: row.launchToken }, launchTags(template, pool.id, row.id), userData);
    const failing = failingSubnets(capacityFailuresOf(pool), claimedAt);
    const subnets = subnetOrder(template, row.subnetId, failing);
    const capacityFailures: CapacityFailure[] = [];
    let lastError = '';
    for (const instanceType of template.instanceTypes) {
      for (const subnetId of subnets) {
        let inst: CloudInstance | undefined;
        try {
          [inst] = await cloud.launch({ ...spec, instanceType, subnetId });
        } catch (err) {
          const pe = err instanceof ProviderError ? err : undefined;
          lastError = err instanceof Error ? err.message : String(err);
          if (pe?.kind === 'capacity') {
            capacityFailures.push({ subnetId, instanceType, at: this.deps.clock.now().toISOString() });
            continue;
          }
          // The launch may have reached the cloud (a lost answer, or the token already used with other
          // parameters): if an instance carries this row's tag, it is ours.
          if (pe?.providerCode === 'IdempotentParameterMismatch' || pe?.kind === 'unavailable' || pe?.kind === 'throttled') {
            const [found] = await this.lookup(cloud, [row.id]).catch(() => []);
            if (found) return this.adopt(row, found.instance, capacityFailures);
          }
          return this.#fail(row, `launch of "${row.name}" failed: ${lastError}`, capacityFailures);
        }
        if (!inst) return this.#fail(row, `launch of "${row.name}" failed: the provider launched nothing`, capacityFailures);
        await this.#record(row, inst, pool, { subnetId, instanceType, attempts: capacityFailures.length + 1 });
        return { status: 'launched', workstationId: row.id, poolId: row.launchedByPoolId, externalId: inst.id, capacityFailures };
      }
    }
    const tried = `${template.instanceTypes.join(', ')} in ${subnets.join(', ')}`;
    return this.#fail(row, `no capacity for "${row.name}": EC2 refused ${tried} (${lastError})`, capacityFailures);
  }

  /** Find launched instances by their `stagedoor:workstation` tag (one call per 200 rows). */
  async lookup(cloud: CloudProvider, workstationIds: string[]): Promise<{ workstationId: string; instance: CloudInstance }[]> {
    const out: { workstationId: string; instance: CloudInstance }[] = [];
    for (let i = 0; i < workstationIds.length; i += LOOKUP_BATCH) {
      const found = await cloud.listInstances({ tags: { [WORKSTATION_TAG]: workstationIds.slice(i, i + LOOKUP_BATCH) } });
      for (const instance of found) out.push({ workstationId: instance.tags[WORKSTATION_TAG]!, instance });
    }
    return out;
  }

  /** An instance found for a reserved row (after a crash, or a lost answer): take it over. */
  async adopt(row: WorkstationRow, inst: CloudInstance, capacityFailures: CapacityFailure[] = []): Promise<LaunchResult> {
    await this.#record(row, inst, null, { adopted: true });
    return { status: 'adopted', workstationId: row.id, poolId: row.launchedByPoolId, externalId: inst.id, capacityFailures };
  }

  /** A reserved launch that will not happen (paused pool, no template, nothing found): the row ends terminated. */
  async abandon(row: WorkstationRow, reason: string): Promise<boolean> {
    return this.deps.db.transaction(async (tx) => {
      const done = await this.deps.launches.abandonLaunch(row.id, this.deps.clock.now(), tx);
      if (done) await this.deps.audit.record(systemActor, { action: 'workstation.launch', outcome: 'failure', targetType: 'workstation', targetId: row.id, reason, details: { name: row.name, pool: row.launchedByPoolId } }, tx);
      return done;
    });
  }

  async #record(row: WorkstationRow, inst: CloudInstance, pool: PoolRow | null, details: Record<string, unknown>): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      const at = this.deps.clock.now();
      await this.deps.workstations.update(
        row.id,
        {
          externalId: inst.id,
          privateAddress: inst.privateAddress,
          instanceType: inst.instanceType,
          availabilityZone: inst.availabilityZone,
          subnetId: inst.subnetId,
          imageId: inst.imageId,
          tags: inst.tags,
          powerState: inst.state,
          powerStateChangedAt: at,
          updatedAt: at,
        },
        tx,
      );
      await this.deps.workstations.turnOverPowerHistory([row.id], at, tx);
      await this.deps.audit.record(
        systemActor,
        { action: 'workstation.launch', outcome: 'success', targetType: 'workstation', targetId: row.id, details: { name: row.name, externalId: inst.id, pool: pool?.name ?? row.launchedByPoolId, availabilityZone: inst.availabilityZone, ...details } },
        tx,
      );
    });
    this.deps.follower.follow([{ workstationId: row.id, providerId: row.providerId, externalId: inst.id, from: null, current: inst.state }]);
  }

  async #fail(row: WorkstationRow, error: string, capacityFailures: CapacityFailure[]): Promise<LaunchResult> {
    this.deps.log.warn({ workstation: row.id, pool: row.launchedByPoolId, err: error }, 'pool launch failed');
    await this.abandon(row, error);
    return { status: 'failed', workstationId: row.id, poolId: row.launchedByPoolId, error, capacityFailures };
  }

  /** Outside a pass (launch on login): the pool's failure count, back-off and capacity memory. */
  async recordOnPool(result: LaunchResult): Promise<void> {
    if (result.status === 'skipped' || !result.poolId) return;
    const poolId = result.poolId;
    await this.deps.db.transaction((tx) =>
      this.deps.pools.recordLaunchResult(
        poolId,
        { failed: result.status === 'failed', error: result.status === 'failed' ? result.error : undefined, newCapacityFailures: result.capacityFailures, backoffFor: backoffMs, at: this.deps.clock.now() },
        tx,
      ),
    );
  }
}

export async function providerOf(providers: ProvidersRepository, id: string, db?: DbOrTx): Promise<ProviderRow> {
  const row = await providers.findById(id, db);
  if (!row) throw new NotFoundError('provider', id);
  return row;
}

export function capacityFailuresOf(pool: PoolRow): CapacityFailure[] {
  return pool.lastReconcileSummary?.capacityFailures ?? [];
}

/** The reserved subnet first, then the template's others (recently failing ones last). */
function subnetOrder(template: PoolTemplate, preferred: string | null, failing: Set<string>): string[] {
  const rest = template.subnetIds.filter((s) => s !== preferred);
  const ordered = [...rest.filter((s) => !failing.has(s)), ...rest.filter((s) => failing.has(s))];
  return preferred && template.subnetIds.includes(preferred) ? [preferred, ...ordered] : ordered;
}
