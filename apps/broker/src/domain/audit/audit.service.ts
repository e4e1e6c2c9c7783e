import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { Clock } from '../clock.ts';
import { systemActor, type Actor } from '../identity/actor.ts';
import { addressKey } from '../identity/login-throttle.service.ts';
import type { AuditFilter, AuditListRow, AuditRepository } from './audit.repository.ts';

export interface AuditEntry {
  action: string;
  outcome: 'success' | 'failure' | 'denied';
  targetType?: string;
  targetId?: string;
  reason?: string;
  details?: Record<string, unknown>;
}

export interface AuditPolicy {
  /** Rows older than this are deleted by the retention job; 0 keeps them forever. */
  retentionDays: number;
  /** Refusal rows written per source address and minute; the rest are counted into one summary row. */
  refusalsPerAddressPerMinute: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;
/** Rows per delete, and deletes per pass: a pass stays short however far behind it starts. */
const PRUNE_BATCH = 1000;
const PRUNE_BATCHES_PER_PASS = 50;

/**
 * The audit trail. `record` takes the caller's transaction so that a change and its audit row
 * commit together or not at all.
 */
export class AuditService {
  constructor(private readonly deps: { db: Db; repo: AuditRepository; clock: Clock; log: Logger; policy: AuditPolicy }) {}

  async record(actor: Actor | null, entry: AuditEntry, tx?: DbOrTx): Promise<void> {
    await this.deps.repo.insert(
      {
        at: this.deps.clock.now(),
        actorUserId: actor?.userId ?? null,
        actorName: actor?.username ?? null,
        sourceAddress: actor?.sourceAddress ?? null,
        action: entry.action,
        targetType: entry.targetType ?? null,
        targetId: entry.targetId ?? null,
        outcome: entry.outcome,
        reason: entry.reason ?? null,
        details: entry.details ?? {},
        requestId: actor?.requestId ?? null,
      },
      tx,
    );
    this.logged(actor, entry);
  }

  /**
   * A refusal of an anonymous attempt (a failed sign-in, a locked-out try): written like `record`
   * up to the per-address cap each minute; past it only counted, and summed up in one row once the
   * minute is over (`flushRefusalSummaries`). A storm from one address cannot fill the disk.
   */
  async recordRefusal(actor: Actor, entry: AuditEntry): Promise<void> {
    const key = addressKey(actor.sourceAddress);
    if (key) {
      const minute = new Date(Math.floor(this.deps.clock.now().getTime() / MINUTE) * MINUTE);
      if (!(await this.deps.repo.countRefusal(key, minute, entry.action, this.deps.policy.refusalsPerAddressPerMinute))) return;
    }
    await this.record(actor, entry);
  }

  /** One summary row per address for each minute that is over and had refusals past the cap. */
  async flushRefusalSummaries(): Promise<number> {
    const currentMinute = new Date(Math.floor(this.deps.clock.now().getTime() / MINUTE) * MINUTE);
    return this.deps.db.transaction(async (tx) => {
      let written = 0;
      for (const c of await this.deps.repo.takeRefusalCounts(currentMinute, tx)) {
        if (!c.suppressed) continue;
        await this.record(
          { ...systemActor, sourceAddress: c.sourceKey },
          {
            action: 'audit.refusals_suppressed',
            outcome: 'failure',
            targetType: 'source_address',
            targetId: c.sourceKey,
            reason: `${c.suppressed} more refusals from ${c.sourceKey} in the minute from ${c.minute.toISOString()} were counted, not written one by one`,
            details: { minute: c.minute.toISOString(), written: c.written, suppressed: c.suppressed, actions: c.suppressedActions },
          },
          tx,
        );
        written++;
      }
      return written;
    });
  }

  /** Delete rows past the retention period, in batches; audited when anything went. */
  async prune(): Promise<number> {
    const { retentionDays } = this.deps.policy;
    if (retentionDays === 0) return 0;
    const cutoff = new Date(this.deps.clock.now().getTime() - retentionDays * DAY);
    let deleted = 0;
    for (let i = 0; i < PRUNE_BATCHES_PER_PASS; i++) {
      const n = await this.deps.repo.deleteBefore(cutoff, PRUNE_BATCH);
      deleted += n;
      if (n < PRUNE_BATCH) break;
    }
    if (deleted) {
      await this.record(systemActor, { action: 'audit.prune', outcome: 'success', reason: `retention ${retentionDays} days`, details: { deleted, before: cutoff.toISOString() } });
    }
    return deleted;
  }

  /** The log line of an audit row that a single-statement operation wrote itself. */
  logged(actor: Actor | null, entry: AuditEntry): void {
    this.deps.log.info({ audit: entry.action, outcome: entry.outcome, actor: actor?.username, target: entry.targetId }, 'audit');
  }

  list(filter: AuditFilter, limit: number, offset: number): Promise<{ items: AuditListRow[]; total: number }> {
    return this.deps.repo.list(filter, limit, offset);
  }
}
