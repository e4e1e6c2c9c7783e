import type { Db } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import type { PriceListSource } from '../../providers/cloud/aws-pricing.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.ts';
import type { ProviderRow } from '../providers/provider-registry.ts';
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

  constructor(
    private readonly deps: {
      db: Db;
      repo: PricesRepository;
      audit: AuditService;
      clock: Clock;
      defaults?: DefaultPrice[];
      /** The providers whose regions a refresh prices, and each one's Price List client (null: not a cloud). */
      providers?: { all(): Promise<ProviderRow[]>; priceList(row: ProviderRow): PriceListSource | null };
    },
  ) {
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

  /**
   * Fetch the on-demand prices of the instance types in use (machines and pool templates of each
   * aws-ec2 provider, and the region's non-admin price rows) from the AWS Price List API, and write
   * them as `source = 'aws'`. An admin's price is never looked up or overwritten (ADR 0023). A type
   * the list does not price exactly once is reported, not guessed. One audit row per refresh.
   */
  async refresh(actor: Actor, input: RefreshInput = {}): Promise<RefreshResult> {
    const all = (await this.deps.providers?.all()) ?? [];
    const chosen = all.filter((p) => p.kind === 'aws-ec2' && (!input.providerId || p.id === input.providerId) && (!input.region || p.region === input.region));
    if (input.providerId && !all.some((p) => p.id === input.providerId)) throw new NotFoundError('provider', input.providerId);
    if (chosen.length === 0) throw new InvalidInputError('no aws-ec2 provider to take prices for: add one, or name another', [{ path: input.providerId ? 'providerId' : 'region', message: 'no aws-ec2 provider here' }]);
    const os = input.operatingSystem ?? 'Linux';
    // One lookup per region, with the first provider of that region's credentials.
    const byRegion = new Map<string, { provider: ProviderRow; types: Set<string> }>();
    for (const p of chosen) {
      const entry = byRegion.get(p.region!) ?? { provider: p, types: new Set<string>() };
      for (const t of input.instanceTypes ?? (await this.deps.repo.typesInUse(p.id))) entry.types.add(t);
      byRegion.set(p.region!, entry);
    }
    const regions: (RefreshResult['regions'][number] & { quotes: { region: string; instanceType: string; hourlyPrice: string; currency: string }[] })[] = [];
    for (const [region, { provider, types }] of byRegion) {
      const rows = await this.deps.repo.list({ region });
      if (!input.instanceTypes) for (const r of rows) if (r.source !== 'admin') types.add(r.instanceType);
      const admin = new Set(rows.filter((r) => r.source === 'admin').map((r) => r.instanceType));
      const wanted = [...types].filter((t) => !admin.has(t)).sort();
      const source = this.deps.providers!.priceList(provider)!;
      const { quotes, missing } = wanted.length ? await source.onDemand(region, wanted, os) : { quotes: [], missing: [] };
      const before = new Map(rows.map((r) => [r.instanceType, r]));
      regions.push({
        region,
        provider: provider.name,
        updated: quotes.map((q) => ({ instanceType: q.instanceType, hourlyPrice: Number(q.hourlyPrice), previous: before.has(q.instanceType) ? { hourlyPrice: Number(before.get(q.instanceType)!.hourlyPrice), source: before.get(q.instanceType)!.source } : null })),
        keptAdmin: [...admin].filter((t) => types.has(t)).sort(),
        missing,
        quotes: quotes.map((q) => ({ region: q.region, instanceType: q.instanceType, hourlyPrice: q.hourlyPrice, currency: q.currency })),
      });
    }
    await this.deps.db.transaction(async (tx) => {
      const at = this.deps.clock.now();
      // Written after every lookup: a refresh that fails half-way changes nothing.
      for (const r of regions) await this.deps.repo.upsertFetched(r.quotes, at, tx);
      await this.deps.audit.record(
        actor,
        {
          action: 'price.refresh',
          outcome: 'success',
          targetType: 'price',
          targetId: [...byRegion.keys()].join(','),
          details: { operatingSystem: os, regions: regions.map((r) => ({ region: r.region, provider: r.provider, updated: r.updated.length, keptAdmin: r.keptAdmin, missing: r.missing })) },
        },
        tx,
      );
    });
    return { operatingSystem: os, regions: regions.map(({ quotes: _q, ...r }) => r) };
  }
}

export interface RefreshInput {
  providerId?: string;
  region?: string;
  instanceTypes?: string[];
  operatingSystem?: 'Linux' | 'Windows';
}

export interface RefreshResult {
  operatingSystem: 'Linux' | 'Windows';
  regions: {
    region: string;
    provider: string;
    updated: { instanceType: string; hourlyPrice: number; previous: { hourlyPrice: number; source: string } | null }[];
    keptAdmin: string[];
    missing: { instanceType: string; why: string }[];
  }[];
}

const keyOf = (region: string, instanceType: string) => `${region}/${instanceType}`;
