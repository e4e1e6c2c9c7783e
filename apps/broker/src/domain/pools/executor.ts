import type { Logger } from 'pino';
import type { Db, Tx } from '../../db/database.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import type { CloudProvider, PowerChange } from '../../providers/cloud/cloud-provider.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { systemActor } from '../identity/actor.ts';
import type { PowerFollower } from '../providers/power-follow.ts';
import type { WorkstationRow, WorkstationsRepository } from '../workstations/workstations.repository.ts';
import type { LaunchResult, PoolLauncher } from './launcher.ts';
import type { ExecutionReport, PoolAction, PoolPlan } from './plan.ts';
import type { PoolRow, PoolsRepository } from './pools.repository.ts';

/** Launches of one pass run this many at a time: quick to fill a pool, gentle on the cloud's rate limits. */
const LAUNCH_CONCURRENCY = 4;

/**
 * Carries out a pool plan — the thin half of the reconciler. Each action stands alone: one failing
 * (a start refused, a subnet full) is reported and the others still run.
 */
export class PlanExecutor {
  constructor(
    private readonly deps: {
      db: Db;
      pools: PoolsRepository;
      workstations: WorkstationsRepository;
      launcher: PoolLauncher;
      audit: AuditService;
      clock: Clock;
      log: Logger;
      /** Follows the machines it starts until they run (`power-follow.ts`). */
      follower: Pick<PowerFollower, 'follow'>;
    },
  ) {}

  async execute(pool: PoolRow, plan: PoolPlan, cloud: CloudProvider): Promise<ExecutionReport> {
    const report: ExecutionReport = { launched: 0, started: 0, terminated: 0, adopted: 0, errors: [], notes: [], capacityFailures: [] };
    const launches: Extract<PoolAction, { kind: 'launch' }>[] = [];
    for (const action of plan.actions) {
      try {
        if (action.kind === 'adopt') await this.#adopt(pool, action.workstationIds, action.relaunchMissing, cloud, report);
        else if (action.kind === 'start') await this.#start(pool, action.workstationIds, cloud, report);
        else if (action.kind === 'terminate') await this.#terminate(pool, action.workstationIds, cloud, report);
        else if (action.kind === 'stop') await this.#stop(pool, action.workstationIds, cloud, report);
        else launches.push(action);
      } catch (err) {
        report.errors.push(`${action.kind} failed: ${message(err)}`);
      }
    }
    if (launches.length) {
      try {
        // One reservation for the whole batch (one pool lock, one counter update, one insert) …
        const reserved = await this.deps.db.transaction((tx) => this.deps.launcher.reserveMany(pool.id, launches.map((a) => a.subnetId), tx));
        if (reserved.refused) report.notes.push(reserved.refused);
        // … then the cloud calls, a few at a time.
        await eachLimit(reserved.rows, LAUNCH_CONCURRENCY, async (row) => {
          try {
            tally(report, await this.deps.launcher.executeRow(row, pool, cloud));
          } catch (err) {
            report.errors.push(`launch of "${row.name}" failed: ${message(err)}`);
          }
        });
      } catch (err) {
        report.errors.push(`launch failed: ${message(err)}`);
      }
    }
    return report;
  }

  /** Orphaned launches: adopt the instances found by tag; relaunch (same client token) or clean the rest. */
  async #adopt(pool: PoolRow, ids: string[], relaunch: boolean, cloud: CloudProvider, report: ExecutionReport): Promise<void> {
    const found = new Map((await this.deps.launcher.lookup(cloud, ids)).map((f) => [f.workstationId, f.instance]));
    for (const id of ids) {
      const row = await this.deps.workstations.findById(id);
      if (!row || row.externalId || row.powerState === 'terminated') continue;
      const inst = found.get(id);
      if (inst) tally(report, await this.deps.launcher.adopt(row, inst));
      else if (relaunch) tally(report, await this.deps.launcher.execute(id));
      else await this.deps.launcher.abandon(row, `launch of "${row.name}" never reached the cloud and pool "${pool.name}" is not launching now`);
    }
  }

  async #start(pool: PoolRow, ids: string[], cloud: CloudProvider, report: ExecutionReport): Promise<void> {
    const rows = (await Promise.all(ids.map((id) => this.deps.workstations.findById(id)))).filter((r): r is WorkstationRow => !!r?.externalId && r.powerState === 'stopped');
    if (rows.length === 0) return;
    const changes = await cloud.start(rows.map((r) => r.externalId!));
    await this.#writePower(pool, rows, changes, 'start');
    const byExternal = new Map(rows.map((r) => [r.externalId!, r]));
    this.deps.follower.follow(changes.flatMap((c) => {
      const row = byExternal.get(c.id);
      return row ? [{ workstationId: row.id, providerId: row.providerId, externalId: c.id, from: c.previous, current: c.current }] : [];
    }));
    report.started += changes.length;
  }

  /**
   * Scale-in. The rows stay locked from the check to the write, across the cloud call: that lock is
   * what keeps a connect flow (which locks the row it assigns) from taking a machine being
   * terminated, so an assigned machine is never terminated.
   */
  async #terminate(pool: PoolRow, ids: string[], cloud: CloudProvider, report: ExecutionReport): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      const victims = await this.deps.pools.lockTerminable(pool.id, ids, tx);
      if (victims.length === 0) return;
      const changes = await cloud.terminate(victims.map((v) => v.externalId));
      await this.#writePower(pool, victims, changes, 'terminate', tx);
      report.terminated += changes.length;
    });
  }

  /**
   * Predictive standby's surplus: stopped under the same row locks as scale-in, so a connect flow
   * assigning one of these machines at this moment either wins (the row drops out) or waits.
   */
  async #stop(pool: PoolRow, ids: string[], cloud: CloudProvider, report: ExecutionReport): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      const rows = await this.deps.pools.lockStoppable(pool.id, ids, tx);
      if (rows.length === 0) return;
      const changes = await cloud.stop(rows.map((r) => r.externalId));
      await this.#writePower(pool, rows, changes, 'stop', tx);
      report.stopped = (report.stopped ?? 0) + changes.length;
    });
  }

  async #writePower(pool: PoolRow, rows: { id: string; externalId: string | null }[], changes: PowerChange[], action: 'start' | 'stop' | 'terminate', tx?: Tx): Promise<void> {
    const byExternal = new Map(rows.map((r) => [r.externalId!, r]));
    const write = async (t: Tx) => {
      const at = this.deps.clock.now();
      const byState = new Map<PowerState, string[]>();
      for (const c of changes) {
        const row = byExternal.get(c.id);
        if (row) byState.set(c.current, [...(byState.get(c.current) ?? []), row.id]);
      }
      const changed: string[] = [];
      for (const [state, ids] of byState) changed.push(...(await this.deps.workstations.setPowerState(ids, state, at, t)).map((c) => c.id));
      await this.deps.workstations.turnOverPowerHistory(changed, at, t);
      for (const c of changes) {
        const row = byExternal.get(c.id);
        if (!row) continue;
        await this.deps.audit.record(
          systemActor,
          { action: `workstation.${action}`, outcome: 'success', targetType: 'workstation', targetId: row.id, details: { externalId: c.id, previous: c.previous, current: c.current, pool: pool.name, by: 'pool reconciler' } },
          t,
        );
      }
    };
    if (tx) await write(tx);
    else await this.deps.db.transaction(write);
  }
}

function tally(report: ExecutionReport, r: LaunchResult): void {
  if (r.status === 'skipped') return;
  report.capacityFailures.push(...r.capacityFailures);
  if (r.status === 'failed') report.errors.push(r.error);
  else if (r.status === 'launched') report.launched++;
  else report.adopted++;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
