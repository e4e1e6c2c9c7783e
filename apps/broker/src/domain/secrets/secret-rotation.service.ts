import type { Db } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { InvalidInputError } from '../errors.ts';
import type { Actor } from '../identity/actor.ts';
import type { SecretBox } from './secret-box.ts';
import { SEALED_TABLES, type SealedSecretsRepository, type SealedTable } from './sealed-secrets.repository.ts';

export interface RotationReport {
  /** The key every secret is now sealed under. */
  keyId: string;
  resealed: Record<SealedTable, number>;
  /** Already under the current key: nothing to do (a rerun after a finished rotation finds only these). */
  current: number;
  /** Secrets that no configured key opens; left as they are. */
  failed: { table: SealedTable; id: string; error: string }[];
  /** Rows skipped because another transaction held them; run again to pick them up. */
  busy: number;
}

/**
 * `stagedoor admin rotate-secret-key` (ADR 0015): every stored secret sealed under a previous key (or
 * in the v1 format without a key id) is opened and sealed again under STAGEDOOR_SECRET_KEY.
 *
 * Batches of `batchSize` rows, each batch one transaction with its audit row, so a crash loses at
 * most one batch of work and a rerun continues: rows already under the current key are skipped. Safe
 * beside running brokers, which open both keys while STAGEDOOR_SECRET_KEY_PREVIOUS is set.
 */
export class SecretRotationService {
  constructor(private readonly deps: { db: Db; repo: SealedSecretsRepository; secrets: SecretBox; audit: AuditService }) {}

  async rotate(actor: Actor, opts: { batchSize?: number } = {}): Promise<RotationReport> {
    const { secrets } = this.deps;
    const keyId = secrets.keyId;
    if (!keyId) {
      throw new InvalidInputError('rotating secrets needs the new key in STAGEDOOR_SECRET_KEY and the old one(s) in STAGEDOOR_SECRET_KEY_PREVIOUS', [
        { path: 'STAGEDOOR_SECRET_KEY', message: 'is not set' },
      ]);
    }
    const batchSize = opts.batchSize ?? 100;
    const report: RotationReport = { keyId, resealed: { providers: 0, auth_servers: 0, user_totp: 0, grants: 0 }, current: 0, failed: [], busy: 0 };
    for (const table of SEALED_TABLES) {
      let after: string | null = null;
      for (;;) {
        const batch = await this.#batch(actor, table, after, batchSize, report);
        if (batch.last === null) break;
        after = batch.last;
      }
    }
    // What SKIP LOCKED passed over: counted, so the operator knows to run again.
    for (const table of SEALED_TABLES) {
      const all = await this.deps.repo.all(table);
      const seen = report.failed.filter((f) => f.table === table).length;
      report.busy += all.filter((r) => secrets.isStale(r.sealed)).length - seen;
    }
    report.busy = Math.max(0, report.busy);
    return report;
  }

  /** One batch in one transaction; returns the last id read, or null at the end of the table. */
  async #batch(actor: Actor, table: SealedTable, after: string | null, size: number, report: RotationReport): Promise<{ last: string | null }> {
    const { db, repo, secrets, audit } = this.deps;
    return db.transaction(async (tx) => {
      const rows = await repo.nextBatch(table, after, size, tx);
      if (!rows.length) return { last: null };
      let resealed = 0;
      for (const row of rows) {
        if (!secrets.isStale(row.sealed)) {
          report.current++;
          continue;
        }
        let plaintext: string;
        try {
          plaintext = secrets.open(row.sealed, row.context);
        } catch (err) {
          report.failed.push({ table, id: row.id, error: err instanceof Error ? err.message : String(err) });
          continue;
        }
        if (await repo.replace(table, row, secrets.seal(plaintext, row.context), tx)) resealed++;
      }
      if (resealed) {
        report.resealed[table] += resealed;
        await audit.record(actor, { action: 'secrets.rotate', outcome: 'success', targetType: table, details: { table, resealed, keyId: secrets.keyId } }, tx);
      }
      return { last: rows[rows.length - 1]!.id };
    });
  }
}
