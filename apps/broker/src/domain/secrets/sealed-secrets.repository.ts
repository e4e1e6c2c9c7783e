import { and, asc, eq, gt, isNotNull } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { DbOrTx } from '../../db/database.ts';
import { authServers, grants, providers, userTotp } from '../../db/schema/index.ts';

/**
 * Every column that holds a `SecretBox` envelope, with the context it was sealed under. The one place
 * that reads other domains' tables directly: re-sealing touches only the envelope, never what it
 * means, so going through each domain's service would add nothing but a way to forget a table.
 * A test seals one secret of each kind, rotates, and opens each through its own service.
 */
const SEALED = [
  { table: 'providers', from: providers, id: providers.id, sealed: providers.secretCiphertext, key: 'secretCiphertext', context: (id: string) => `providers:${id}` },
  { table: 'auth_servers', from: authServers, id: authServers.id, sealed: authServers.secretCiphertext, key: 'secretCiphertext', context: (id: string) => `auth_servers:${id}` },
  { table: 'user_totp', from: userTotp, id: userTotp.userId, sealed: userTotp.secretCiphertext, key: 'secretCiphertext', context: (id: string) => `user_totp:${id}` },
  // Routed grants' tokens (ADR 0017); the context is grant-tokens.ts's `grantTokenContext`.
  { table: 'grants', from: grants, id: grants.id, sealed: grants.tokenSealed, key: 'tokenSealed', context: (id: string) => `grants:${id}` },
] as const satisfies readonly { table: string; from: PgTable; id: PgColumn; sealed: PgColumn; key: string; context: (id: string) => string }[];

export type SealedTable = (typeof SEALED)[number]['table'];
export const SEALED_TABLES: SealedTable[] = SEALED.map((s) => s.table);

export interface SealedRow {
  id: string;
  sealed: string;
  context: string;
}

export class SealedSecretsRepository {
  constructor(private readonly db: DbOrTx) {}

  /**
   * The next `limit` sealed secrets of `table` after `afterId` (key order), locked for the caller's
   * transaction. SKIP LOCKED: a row an admin is changing right now is left to that change, which
   * seals it under the current key anyway.
   */
  async nextBatch(table: SealedTable, afterId: string | null, limit: number, db: DbOrTx = this.db): Promise<SealedRow[]> {
    const s = spec(table);
    const rows = (await db
      .select({ id: s.id, sealed: s.sealed })
      .from(s.from as PgTable)
      .where(and(isNotNull(s.sealed), afterId === null ? undefined : gt(s.id, afterId)))
      .orderBy(asc(s.id))
      .limit(limit)
      .for('update', { skipLocked: true })) as { id: string; sealed: string }[];
    return rows.map((r) => ({ ...r, context: s.context(r.id) }));
  }

  /** Replace one envelope, only if it is still the one that was read. */
  async replace(table: SealedTable, row: SealedRow, resealed: string, db: DbOrTx = this.db): Promise<boolean> {
    const s = spec(table);
    const done = await db
      .update(s.from as PgTable)
      .set({ [s.key]: resealed } as Record<string, unknown>)
      .where(and(eq(s.id, row.id), eq(s.sealed, row.sealed)))
      .returning({ id: s.id });
    return done.length === 1;
  }

  /** Every envelope of `table` (for counting what is left under which key). */
  async all(table: SealedTable, db: DbOrTx = this.db): Promise<SealedRow[]> {
    const s = spec(table);
    const rows = (await db.select({ id: s.id, sealed: s.sealed }).from(s.from as PgTable).where(isNotNull(s.sealed))) as { id: string; sealed: string }[];
    return rows.map((r) => ({ ...r, context: s.context(r.id) }));
  }
}

function spec(table: SealedTable) {
  return SEALED.find((s) => s.table === table)!;
}
