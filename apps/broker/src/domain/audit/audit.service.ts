import type { Logger } from 'pino';
import type { DbOrTx } from '../../db/database.ts';
import type { Clock } from '../clock.ts';
import type { Actor } from '../identity/actor.ts';
import type { AuditFilter, AuditRepository, AuditRow } from './audit.repository.ts';

export interface AuditEntry {
  action: string;
  outcome: 'success' | 'failure' | 'denied';
  targetType?: string;
  targetId?: string;
  reason?: string;
  details?: Record<string, unknown>;
}

/**
 * The audit trail. `record` takes the caller's transaction so that a change and its audit row
 * commit together or not at all.
 */
export class AuditService {
  constructor(private readonly deps: { repo: AuditRepository; clock: Clock; log: Logger }) {}

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

  /** The log line of an audit row that a single-statement operation wrote itself. */
  logged(actor: Actor | null, entry: AuditEntry): void {
    this.deps.log.info({ audit: entry.action, outcome: entry.outcome, actor: actor?.username, target: entry.targetId }, 'audit');
  }

  list(filter: AuditFilter, limit: number, offset: number): Promise<{ items: AuditRow[]; total: number }> {
    return this.deps.repo.list(filter, limit, offset);
  }
}
