import type { Db } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { Actor } from '../identity/actor.ts';
import { defaultPrices, type DefaultPrice } from './default-prices.ts';
import type { PriceFilter, PriceRow, PricesRepository } from './prices.repository.ts';

/**
 * The price table behind the cost report: per (instance type, region), an hourly price and its
 * currency. Shipped defaults (`source = 'default'`) are installed at every start; an admin's price
 * (`source = 'admin'`) replaces a default and is never overwritten by a later start. Deleting an
 * admin price brings the shipped default back, if there is one.
 */
export class PricesService {
  readonly #defaults: Map<string, DefaultPrice>;

  constructor(private readonly deps: { db: Db; repo: PricesRepository; audit: AuditService; clock: Clock; defaults?: DefaultPrice[] }) {
    this.#defaults = new Map((deps.defaults ?? defaultPrices()).map((p) => [keyOf(p.region, p.instanceType), p]));
  }

  list(filter: PriceFilter = {}): Promise<PriceRow[]> {
    return this.deps.repo.list(filter);
  }

  async get(region: string, instanceType: string): Promise<PriceRow> {
    const row = await this.deps.repo.find(region, instanceType);
    if (!row) throw new NotFoundError('price', `${region}/${instanceType}`);
    return row;
  }

  /** Idempotent; called at every broker start (cheap: only changed rows are written). */
  installDefaults(): Promise<number> {
    return this.deps.repo.installDefaults([...this.#defaults.values()], this.deps.clock.now());
  }

  async put(actor: Actor, key: { region: string; instanceType: string }, body: { hourlyPrice: number; currency: string }): Promise<PriceRow> {
    const hourlyPrice = body.hourlyPrice.toFixed(6);
    return this.deps.db.transaction(async (tx) => {
      const before = await this.deps.repo.find(key.region, key.instanceType, tx);
      const row = await this.deps.repo.upsertAdmin({ ...key, hourlyPrice, currency: body.currency }, this.deps.clock.now(), tx);
      await this.deps.audit.record(
        actor,
        {
          action: 'price.set',
          outcome: 'success',
          targetType: 'price',
          targetId: `${key.region}/${key.instanceType}`,
          details: { ...key, hourlyPrice, currency: body.currency, previous: before ? { hourlyPrice: before.hourlyPrice, currency: before.currency, source: before.source } : null },
        },
        tx,
      );
      return row;
    });
  }

  /** Remove an admin's price; a shipped default for the pair comes back at once. Returns what is left, if anything. */
  async delete(actor: Actor, key: { region: string; instanceType: string }): Promise<PriceRow | null> {
    return this.deps.db.transaction(async (tx) => {
      const row = await this.deps.repo.find(key.region, key.instanceType, tx);
      if (!row) throw new NotFoundError('price', `${key.region}/${key.instanceType}`);
      if (row.source === 'default') throw new ConflictError(`${key.instanceType} in ${key.region} has the shipped default price: set another with PUT instead of deleting it`);
      await this.deps.repo.delete(key.region, key.instanceType, tx);
      const fallback = this.#defaults.get(keyOf(key.region, key.instanceType));
      if (fallback) await this.deps.repo.installDefaults([fallback], this.deps.clock.now(), tx);
      await this.deps.audit.record(
        actor,
        { action: 'price.delete', outcome: 'success', targetType: 'price', targetId: `${key.region}/${key.instanceType}`, details: { ...key, previous: { hourlyPrice: row.hourlyPrice, currency: row.currency }, restoredDefault: fallback?.hourlyPrice ?? null } },
        tx,
      );
      return fallback ? ((await this.deps.repo.find(key.region, key.instanceType, tx)) ?? null) : null;
    });
  }
}

const keyOf = (region: string, instanceType: string) => `${region}/${instanceType}`;
