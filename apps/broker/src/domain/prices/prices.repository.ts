import { and, asc, eq, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { rowsOf } from '../../db/migrate.ts';
import { priceTable } from '../../db/schema/index.ts';
import type { DefaultPrice } from './default-prices.ts';

export type PriceRow = typeof priceTable.$inferSelect;
export interface PriceFilter {
  region?: string;
  instanceType?: string;
  source?: 'default' | 'admin' | 'aws';
}

export class PricesRepository {
  constructor(private readonly db: DbOrTx) {}

  list(filter: PriceFilter = {}, db: DbOrTx = this.db): Promise<PriceRow[]> {
    const where: SQL[] = [];
    if (filter.region) where.push(eq(priceTable.region, filter.region));
    if (filter.instanceType) where.push(eq(priceTable.instanceType, filter.instanceType));
    if (filter.source) where.push(eq(priceTable.source, filter.source));
    return db.select().from(priceTable).where(and(...where)).orderBy(asc(priceTable.region), asc(priceTable.instanceType));
  }

  async find(region: string, instanceType: string, db: DbOrTx = this.db): Promise<PriceRow | undefined> {
    const [row] = await db.select().from(priceTable).where(and(eq(priceTable.region, region), eq(priceTable.instanceType, instanceType)));
    return row;
  }

  /** An admin's price: insert, or replace whatever is there (a default becomes an admin row). */
  async upsertAdmin(p: { region: string; instanceType: string; hourlyPrice: string; currency: string }, at: Date, tx: DbOrTx): Promise<PriceRow> {
    const [row] = await tx
      .insert(priceTable)
      .values({ ...p, source: 'admin', createdAt: at, updatedAt: at })
      .onConflictDoUpdate({ target: [priceTable.instanceType, priceTable.region], set: { hourlyPrice: p.hourlyPrice, currency: p.currency, source: 'admin', updatedAt: at } })
      .returning();
    return row!;
  }

  async delete(region: string, instanceType: string, tx: DbOrTx): Promise<PriceRow | undefined> {
    const [row] = await tx.delete(priceTable).where(and(eq(priceTable.region, region), eq(priceTable.instanceType, instanceType))).returning();
    return row;
  }

  /**
   * Install the shipped defaults: new pairs are inserted, default rows take the shipped value (a
   * newer release may correct one), admin rows are never touched. Returns rows written.
   */
  async installDefaults(prices: DefaultPrice[], at: Date, db: DbOrTx = this.db): Promise<number> {
    if (prices.length === 0) return 0;
    const rows = await db
      .insert(priceTable)
      .values(prices.map((p) => ({ ...p, source: 'default', createdAt: at, updatedAt: at })))
      .onConflictDoUpdate({
        target: [priceTable.instanceType, priceTable.region],
        set: { hourlyPrice: sql`excluded.hourly_price`, currency: sql`excluded.currency`, updatedAt: at },
        setWhere: sql`${priceTable.source} = 'default' and (${priceTable.hourlyPrice} <> excluded.hourly_price or ${priceTable.currency} <> excluded.currency)`,
      })
      .returning({ id: priceTable.id });
    return rows.length;
  }

  /**
   * Prices fetched from the Price List API: new pairs are inserted, default and earlier `aws` rows
   * take the new price, an admin's row is never touched (the `where` of the upsert). Returns the
   * pairs written.
   */
  async upsertFetched(prices: { region: string; instanceType: string; hourlyPrice: string; currency: string }[], at: Date, tx: DbOrTx): Promise<{ region: string; instanceType: string }[]> {
    if (prices.length === 0) return [];
    return tx
      .insert(priceTable)
      .values(prices.map((p) => ({ ...p, source: 'aws', createdAt: at, updatedAt: at })))
      .onConflictDoUpdate({
        target: [priceTable.instanceType, priceTable.region],
        set: { hourlyPrice: sql`excluded.hourly_price`, currency: sql`excluded.currency`, source: 'aws', updatedAt: at },
        setWhere: sql`${priceTable.source} <> 'admin'`,
      })
      .returning({ region: priceTable.region, instanceType: priceTable.instanceType });
  }

  /** Instance types a region's machines and pool templates use, for the refresh to look up. */
  async typesInUse(providerId: string, db: DbOrTx = this.db): Promise<string[]> {
    const rows = rowsOf<{ t: string }>(
      await db.execute(sql`
        select instance_type as t from workstations where provider_id = ${providerId} and instance_type is not null
        union
        select jsonb_array_elements_text(template -> 'instanceTypes') as t from pools where provider_id = ${providerId} and template is not null
      `),
    );
    return rows.map((r) => r.t).sort();
  }
}
