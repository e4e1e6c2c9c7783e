import type { Db, DbOrTx } from '../../db/database.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, NotFoundError, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from '../identity/actor.ts';
import type { ProviderRow } from '../providers/provider-registry.ts';
import type { ProvidersRepository } from '../providers/providers.repository.ts';
import { stableJson } from '../stable-json.ts';
import { addressColumns, addressOf } from './host-names.ts';
import { parseHostsCsv, type HostInput } from './static-hosts.ts';
import type { NewWorkstationRow, WorkstationRow, WorkstationsRepository } from './workstations.repository.ts';

export interface ImportOutcome {
  created: number;
  updated: number;
  unchanged: number;
  names: { created: string[]; updated: string[]; unchanged: string[] };
}

/** A static host's own fields, as the API and the site file spell them. */
export interface HostFields {
  name: string;
  address: string;
  protocols: HostInput['protocols'];
  tags: Record<string, string>;
}

/**
 * Static (on-prem) hosts: registered, imported and edited by hand, never by inventory sync. A host's
 * `external_id` is its name (what the CSV matches on), so a rename moves both. Addresses are IP
 * literals or DNS names (resolved at connect time, `host-names.ts`).
 */
export class StaticHostsService {
  constructor(
    private readonly deps: {
      db: Db;
      repo: WorkstationsRepository;
      providers: ProvidersRepository;
      audit: AuditService;
      clock: Clock;
    },
  ) {}

  /** A provider's host by name (its external id). */
  async find(providerId: string, name: string, db?: DbOrTx): Promise<WorkstationRow | undefined> {
    return (await this.deps.repo.findByExternalIds(providerId, [name], db))[0];
  }

  async register(actor: Actor, providerId: string, host: HostInput & { maintenance?: boolean }, outer?: DbOrTx): Promise<WorkstationRow> {
    const provider = await this.staticProvider(providerId, outer);
    try {
      return await (outer ?? this.deps.db).transaction(async (tx) => {
        const now = this.deps.clock.now();
        const row = await this.deps.repo.insertOne({ ...this.#columns(providerId, host, now), maintenance: host.maintenance ?? false, createdAt: now }, tx);
        await this.deps.repo.turnOverPowerHistory([row.id], now, tx);
        await this.deps.audit.record(actor, { action: 'workstation.register', outcome: 'success', targetType: 'workstation', targetId: row.id, details: { name: host.name, address: host.address, provider: provider.name } }, tx);
        return row;
      });
    } catch (err) {
      if (isUniqueViolation(err, 'workstations_provider_external_key')) {
        throw new ConflictError(`provider "${provider.name}" already has a host named "${host.name}": change it with PATCH /api/v1/workstations/{id} (or import the CSV with onExisting=update)`);
      }
      throw err;
    }
  }

  /**
   * Import a CSV, all or nothing. A name the provider already has is refused (`fail`, the default:
   * nothing is imported and the names are listed) or updated (`update`); the answer names what was
   * created, updated and left unchanged, so nothing is overwritten silently.
   */
  async import(actor: Actor, providerId: string, csv: string, onExisting: 'fail' | 'update'): Promise<ImportOutcome> {
    const provider = await this.staticProvider(providerId);
    const hosts = parseHostsCsv(csv);
    try {
      return await this.deps.db.transaction(async (tx) => {
        const now = this.deps.clock.now();
        const known = new Map((await this.deps.repo.findByExternalIds(providerId, hosts.map((h) => h.name), tx)).map((w) => [w.externalId!, w]));
        if (known.size && onExisting === 'fail') {
          const names = [...known.keys()];
          throw new ConflictError(
            `provider "${provider.name}" already has ${names.length} of these hosts (${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''}); nothing was imported: import again with onExisting=update to change them`,
            { existing: names },
          );
        }
        const out: ImportOutcome = { created: 0, updated: 0, unchanged: 0, names: { created: [], updated: [], unchanged: [] } };
        const fresh: string[] = [];
        for (const h of hosts) {
          const current = known.get(h.name);
          if (!current) {
            const row = await this.deps.repo.insertOne({ ...this.#columns(providerId, h, now), createdAt: now }, tx);
            fresh.push(row.id);
            out.names.created.push(h.name);
          } else if (changedFields(current, h).length === 0) {
            out.names.unchanged.push(h.name);
          } else {
            await this.deps.repo.update(current.id, this.#columns(providerId, h, now), tx);
            out.names.updated.push(h.name);
          }
        }
        await this.deps.repo.turnOverPowerHistory(fresh, now, tx);
        Object.assign(out, { created: out.names.created.length, updated: out.names.updated.length, unchanged: out.names.unchanged.length });
        await this.deps.audit.record(actor, { action: 'workstation.import', outcome: 'success', targetType: 'provider', targetId: providerId, details: { provider: provider.name, created: out.created, updated: out.updated, unchanged: out.unchanged, updatedNames: out.names.updated.slice(0, 100) } }, tx);
        return out;
      });
    } catch (err) {
      // Another import or registration took one of these names since our look-up.
      if (isUniqueViolation(err, 'workstations_provider_external_key')) throw new ConflictError(`another change registered one of these host names meanwhile; nothing was imported: try again`);
      throw err;
    }
  }

  async staticProvider(providerId: string, db?: DbOrTx): Promise<ProviderRow> {
    const provider = await this.deps.providers.findById(providerId, db);
    if (!provider) throw new NotFoundError('provider', providerId);
    if (provider.kind !== 'static') throw new ConflictError(`provider "${provider.name}" is ${provider.kind}: its machines come from inventory sync, not registration`);
    return provider;
  }

  #columns(providerId: string, h: HostFields, now: Date) {
    return { providerId, externalId: h.name, name: h.name, ...addressColumns(h.address), protocols: h.protocols, tags: h.tags, powerState: 'running', updatedAt: now } satisfies NewWorkstationRow;
  }
}

/** Which of a host's own fields `want` changes (fields it leaves out are not compared). */
export function changedFields(ws: WorkstationRow, want: Partial<HostFields>): string[] {
  const now: HostFields = { name: ws.name, address: addressOf(ws) ?? '', protocols: ws.protocols ?? [], tags: ws.tags };
  return (['name', 'address', 'protocols', 'tags'] as const).filter((k) => want[k] !== undefined && stableJson(now[k]) !== stableJson(want[k]));
}

/** The static fields of a PATCH, as columns; the caller (`WorkstationsService.update`) writes and audits them. */
export function hostPatchColumns(ws: WorkstationRow, patch: Partial<HostFields>): { columns: Partial<NewWorkstationRow>; changed: string[] } {
  const changed = changedFields(ws, patch);
  const columns: Partial<NewWorkstationRow> = {};
  if (changed.includes('name')) Object.assign(columns, { name: patch.name, externalId: patch.name });
  if (changed.includes('address')) Object.assign(columns, addressColumns(patch.address!));
  if (changed.includes('protocols')) columns.protocols = patch.protocols;
  if (changed.includes('tags')) columns.tags = patch.tags;
  return { columns, changed };
}
