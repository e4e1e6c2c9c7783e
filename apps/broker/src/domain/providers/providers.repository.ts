import { asc, count, eq, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { providers } from '../../db/schema/index.ts';
import type { SyncCounts } from '../../db/schema/providers.ts';
import type { ProviderRow } from './provider-registry.ts';

export class ProvidersRepository {
  constructor(private readonly db: DbOrTx) {}

  async list(limit: number, offset: number): Promise<{ items: ProviderRow[]; total: number }> {
    const items = await this.db.select().from(providers).orderBy(asc(providers.name)).limit(limit).offset(offset);
    const [row] = await this.db.select({ n: count() }).from(providers);
    return { items, total: row?.n ?? 0 };
  }

  async all(db: DbOrTx = this.db): Promise<ProviderRow[]> {
    return db.select().from(providers).orderBy(asc(providers.name));
  }

  async findById(id: string, db: DbOrTx = this.db): Promise<ProviderRow | undefined> {
    const [row] = await db.select().from(providers).where(eq(providers.id, id));
    return row;
  }

  async findByName(name: string, db: DbOrTx = this.db): Promise<ProviderRow | undefined> {
    const [row] = await db.select().from(providers).where(sql`lower(${providers.name}) = lower(${name})`);
    return row;
  }

  async insert(row: typeof providers.$inferInsert, db: DbOrTx = this.db): Promise<ProviderRow> {
    const [created] = await db.insert(providers).values(row).returning();
    return created!;
  }

  async update(id: string, patch: Partial<typeof providers.$inferInsert>, db: DbOrTx = this.db): Promise<ProviderRow | undefined> {
    const [row] = await db.update(providers).set(patch).where(eq(providers.id, id)).returning();
    return row;
  }

  async delete(id: string, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db.delete(providers).where(eq(providers.id, id)).returning({ id: providers.id });
    return rows.length === 1;
  }

  /**
   * Serialise changes to what providers can see, across broker nodes, until the transaction ends:
   * two overlapping providers created at once on two nodes would each pass the overlap check alone.
   */
  async lockReach(tx: DbOrTx): Promise<void> {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext('stagedoor:provider-reach'))`);
  }

  async recordSync(id: string, outcome: { at: Date; status: 'ok' | 'error'; message: string | null; counts: SyncCounts | null }, db: DbOrTx = this.db): Promise<void> {
    await db
      .update(providers)
      .set({ lastSyncAt: outcome.at, lastSyncStatus: outcome.status, lastSyncMessage: outcome.message, lastSyncCounts: outcome.counts })
      .where(eq(providers.id, id));
  }
}
