import type { Logger } from 'pino';
import type { Database, DbOrTx } from '../../db/database.ts';
import type { CloudInstance, CloudProvider, StatusChecks } from '../../providers/cloud/cloud-provider.ts';
import { AGENT_SILENT_MS, decideHealth } from '../workstations/health.ts';
import type { SyncCounts } from '../../db/schema/providers.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { WorkstationsRepository } from '../workstations/workstations.repository.ts';
import type { ProviderRegistry, ProviderRow } from './provider-registry.ts';
import type { ProvidersRepository } from './providers.repository.ts';
import { applyObserved } from './apply-observed.ts';

export interface SyncResult {
  status: 'ok' | 'error';
  message: string | null;
  counts: SyncCounts;
}

/**
 * Inventory sync: list the provider's instances that match its tag filter, plan the changes
 * (pure), apply them in one transaction, and record the outcome on the provider. One sync per
 * provider at a time across the cluster (advisory lock `sync:<provider id>`).
 */
export class InventorySync {
  constructor(
    private readonly deps: {
      database: Database;
      providers: ProvidersRepository;
      workstations: WorkstationsRepository;
      registry: ProviderRegistry;
      clock: Clock;
      log: Logger;
    },
  ) {}

  /** Sync now; a sync already running elsewhere is a ConflictError (API callers get a 409). */
  async syncNow(providerId: string): Promise<SyncResult> {
    const row = await this.deps.providers.findById(providerId);
    if (!row) throw new NotFoundError('provider', providerId);
    const r = await this.deps.database.tryWithAdvisoryLock(`sync:${providerId}`, () => this.#sync(row));
    if (!r.acquired) throw new ConflictError(`a sync of provider "${row.name}" is already running`);
    return r.value;
  }

  /** The job's pass: every enabled cloud provider whose interval has passed. */
  async syncDue(): Promise<Record<string, number>> {
    const now = this.deps.clock.now().getTime();
    const stats = { providers: 0, synced: 0, failed: 0, busy: 0 };
    for (const row of await this.deps.providers.all()) {
      if (!row.enabled || row.kind === 'static') continue;
      stats.providers++;
      if (row.lastSyncAt && now - row.lastSyncAt.getTime() < row.syncIntervalSeconds * 1000) continue;
      const r = await this.deps.database.tryWithAdvisoryLock(`sync:${row.id}`, () => this.#sync(row));
      if (!r.acquired) stats.busy++;
      else if (r.value.status === 'ok') stats.synced++;
      else stats.failed++;
    }
    return stats;
  }

  /**
   * The agent side of health between syncs: a running machine whose agent went silent is unhealthy
   * (health.ts AGENT_SILENT_MS); its next report makes it healthy again (ActivityService).
   */
  async markSilentAgents(): Promise<{ silent: number }> {
    const silent = await this.deps.workstations.markSilentAgents(this.deps.clock.now(), AGENT_SILENT_MS);
    if (silent) this.deps.log.warn({ silent }, 'workstation agents went silent: marked unhealthy');
    return { silent };
  }

  /** The cloud's status checks when any listed machine runs; a refusal (an IAM policy without the action) costs health, not the sync. */
  async #statusChecks(cloud: CloudProvider, listed: CloudInstance[], log: Logger): Promise<Map<string, StatusChecks> | null> {
    if (!cloud.statusChecks || !listed.some((i) => i.state === 'running')) return null;
    try {
      return await cloud.statusChecks();
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'status checks unavailable: health comes from agents only');
      return null;
    }
  }

  /** Health of the provider's machines from the status checks and agent reports (health.ts); only changed verdicts are written. */
  async #decideHealth(providerId: string, checks: Map<string, StatusChecks> | null, at: Date, tx: DbOrTx): Promise<void> {
    const facts = await this.deps.workstations.healthFacts(providerId, tx);
    const changed = facts.flatMap((f) => {
      const v = decideHealth(f, f.externalId ? checks?.get(f.externalId) : undefined, at);
      return v.health === f.health && v.source === f.healthSource ? [] : [{ id: f.id, health: v.health, source: v.source }];
    });
    await this.deps.workstations.setHealth(changed, at, tx);
  }

  async #sync(row: ProviderRow): Promise<SyncResult> {
    const log = this.deps.log.child({ provider: row.id, name: row.name });
    const started = Date.now();
    const cloud = this.deps.registry.forRow(row);
    const callsBefore = cloud.apiCalls;
    let result: SyncResult;
    try {
      const listed = await cloud.listInstances({ tags: row.tagFilter });
      const checks = await this.#statusChecks(cloud, listed, log);
      const at = this.deps.clock.now();
      result = await this.deps.database.db.transaction(async (tx) => {
        // An instance another provider owns is not this one's (ADR 0018): left out, as if unlisted.
        const owners = await this.deps.workstations.ownedElsewhere(row.id, tx);
        const observed = owners.size ? listed.filter((i) => !owners.has(i.id)) : listed;
        const skipped = listed.filter((i) => owners.has(i.id));
        const known = await this.deps.workstations.known(row.id, tx);
        const applied = await applyObserved(this.deps.workstations, row.id, known, observed, at, tx, 'provider');
        await this.#decideHealth(row.id, checks, at, tx);
        const counts = { seen: listed.length, created: applied.created, updated: applied.updated, terminated: applied.terminated, ...(skipped.length ? { skipped: skipped.length } : {}), apiCalls: cloud.apiCalls - callsBefore, durationMs: Date.now() - started };
        return { status: 'ok' as const, message: skipped.length ? skippedMessage(skipped.map((i) => [i.id, owners.get(i.id)!])) : null, counts };
      });
      if (result.message) log.warn({ counts: result.counts }, result.message);
      else log.info({ counts: result.counts }, 'inventory sync');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      result = { status: 'error', message, counts: { seen: 0, created: 0, updated: 0, terminated: 0, apiCalls: cloud.apiCalls - callsBefore, durationMs: Date.now() - started } };
      log.warn({ err: message }, 'inventory sync failed');
    }
    await this.deps.providers.recordSync(row.id, { at: this.deps.clock.now(), status: result.status, message: result.message, counts: result.counts });
    return result;
  }
}

/** "skipped 2 instances other providers own: i-1, i-2 (provider "sandbox")": both names, for the admin. */
function skippedMessage(pairs: [string, string][]): string {
  const byOwner = new Map<string, string[]>();
  for (const [id, owner] of pairs) byOwner.set(owner, [...(byOwner.get(owner) ?? []), id]);
  const parts = [...byOwner].map(([owner, ids]) => `${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ` and ${ids.length - 5} more` : ''} (provider "${owner}")`);
  return `skipped ${pairs.length} instance${pairs.length === 1 ? '' : 's'} that another provider owns: ${parts.join('; ')}. The providers overlap: give them tag filters that differ on a shared key (ADR 0018)`;
}
