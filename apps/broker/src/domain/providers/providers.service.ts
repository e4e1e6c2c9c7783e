import type { z } from 'zod';
import type { CreateProvider, UpdateProvider } from '@stagedoor/contract';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, NotFoundError, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from '../identity/actor.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import type { WorkstationsRepository } from '../workstations/workstations.repository.ts';
import type { InventorySync, SyncResult } from './inventory-sync.ts';
import type { ProviderRegistry, ProviderRow } from './provider-registry.ts';
import type { ProvidersRepository } from './providers.repository.ts';
import { overlapMessage, providersOverlap } from './overlap.ts';

const INSTANCE_SCOPE_KEY = 'workstations_instance_scope_external_key';

type CreateInput = z.output<typeof CreateProvider>;
type UpdateInput = z.output<typeof UpdateProvider>;

/** Providers: CRUD with secrets sealed at rest, connection tests, and sync on demand. */
export class ProvidersService {
  constructor(
    private readonly deps: {
      db: Db;
      repo: ProvidersRepository;
      workstations: WorkstationsRepository;
      registry: ProviderRegistry;
      sync: InventorySync;
      secrets: SecretBox;
      audit: AuditService;
      clock: Clock;
    },
  ) {}

  list(limit: number, offset: number) {
    return this.deps.repo.list(limit, offset);
  }

  async get(id: string): Promise<ProviderRow> {
    const row = await this.deps.repo.findById(id);
    if (!row) throw new NotFoundError('provider', id);
    return row;
  }

  findByName(name: string, db?: DbOrTx): Promise<ProviderRow | undefined> {
    return this.deps.repo.findByName(name, db);
  }

  async create(actor: Actor, input: CreateInput, outer?: DbOrTx): Promise<ProviderRow> {
    const now = this.deps.clock.now();
    const row = await this.#named(input.name, () =>
      (outer ?? this.deps.db).transaction(async (tx) => {
        const base = { name: input.name, kind: input.kind, enabled: input.enabled, createdAt: now, updatedAt: now };
        const created =
          input.kind === 'static'
            ? await this.deps.repo.insert({ ...base, credentialsMode: 'none' }, tx)
            : await this.#insertCloud(tx, base, input);
        await this.#refuseOverlap(created, tx);
        await this.deps.audit.record(actor, { action: 'provider.create', outcome: 'success', targetType: 'provider', targetId: created.id, details: { name: created.name, kind: created.kind } }, tx);
        return created;
      }),
    );
    return row;
  }

  async #insertCloud(tx: DbOrTx, base: { name: string; kind: string; enabled: boolean; createdAt: Date; updatedAt: Date }, input: Extract<CreateInput, { kind: 'aws-ec2' }>): Promise<ProviderRow> {
    // The secret is sealed with the row id as context, so the row is inserted first, then sealed —
    // inside one transaction, so a missing STAGEDOOR_SECRET_KEY leaves nothing behind.
    const row = await this.deps.repo.insert(
      { ...base, region: input.region, endpoint: input.endpoint ?? null, credentialsMode: 'default-chain', tagFilter: input.tagFilter, syncIntervalSeconds: input.syncIntervalSeconds },
      tx,
    );
    if (input.credentials.mode !== 'access-key') return row;
    const sealed = this.deps.secrets.seal(input.credentials.secretAccessKey, `providers:${row.id}`);
    return (await this.deps.repo.update(row.id, { credentialsMode: 'access-key', accessKeyId: input.credentials.accessKeyId, secretCiphertext: sealed }, tx))!;
  }

  async update(actor: Actor, id: string, input: UpdateInput, outer?: DbOrTx): Promise<ProviderRow> {
    const row = await this.#named(input.name ?? '', () =>
      (outer ?? this.deps.db).transaction(async (tx) => {
        const current = await this.deps.repo.findById(id, tx);
        if (!current) throw new NotFoundError('provider', id);
        if (current.kind === 'static' && (input.region || input.endpoint !== undefined || input.credentials || input.tagFilter || input.syncIntervalSeconds)) {
          throw new ConflictError('a static provider has no region, endpoint, credentials, tag filter or sync interval');
        }
        const { credentials, ...plain } = input;
        const patch: Parameters<ProvidersRepository['update']>[1] = { ...plain, updatedAt: this.deps.clock.now() };
        if (credentials?.mode === 'access-key') {
          Object.assign(patch, { credentialsMode: 'access-key', accessKeyId: credentials.accessKeyId, secretCiphertext: this.deps.secrets.seal(credentials.secretAccessKey, `providers:${id}`) });
        } else if (credentials?.mode === 'default-chain') {
          Object.assign(patch, { credentialsMode: 'default-chain', accessKeyId: null, secretCiphertext: null });
        }
        const updated = (await this.deps.repo.update(id, patch, tx))!;
        await this.#refuseOverlap(updated, tx);
        const changed = Object.keys(input).map((k) => (k === 'credentials' ? 'credentials (secret not shown)' : k));
        await this.deps.audit.record(actor, { action: 'provider.update', outcome: 'success', targetType: 'provider', targetId: id, details: { changed } }, tx);
        return updated;
      }),
    );
    this.deps.registry.forget(id);
    return row;
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      const current = await this.deps.repo.findById(id, tx);
      if (!current) throw new NotFoundError('provider', id);
      const machines = await this.deps.workstations.countByProvider(id, tx);
      if (machines > 0) throw new ConflictError(`provider "${current.name}" still has ${machines} workstations: remove them first (terminated machines keep their cost history)`);
      await this.deps.repo.delete(id, tx);
      await this.deps.audit.record(actor, { action: 'provider.delete', outcome: 'success', targetType: 'provider', targetId: id, details: { name: current.name } }, tx);
    });
    this.deps.registry.forget(id);
  }

  /** Ask the cloud something cheap with these credentials; failures carry the cloud's own words. */
  async test(actor: Actor, id: string): Promise<{ message: string; details: Record<string, unknown> }> {
    const row = await this.get(id);
    try {
      const result = await this.deps.registry.build(row).testConnection();
      await this.deps.audit.record(actor, { action: 'provider.test', outcome: 'success', targetType: 'provider', targetId: id });
      return result;
    } catch (err) {
      await this.deps.audit.record(actor, { action: 'provider.test', outcome: 'failure', targetType: 'provider', targetId: id, reason: err instanceof Error ? err.message : String(err) });
      throw err;
    }
  }

  async syncNow(actor: Actor, id: string): Promise<SyncResult> {
    const result = await this.deps.sync.syncNow(id);
    await this.deps.audit.record(actor, { action: 'provider.sync', outcome: result.status === 'ok' ? 'success' : 'failure', targetType: 'provider', targetId: id, reason: result.message ?? undefined, details: { ...result.counts } });
    return result;
  }

  /** Refuse a provider that would see another's instances (overlap.ts, ADR 0018); the transaction rolls back. */
  async #refuseOverlap(row: ProviderRow, tx: DbOrTx): Promise<void> {
    if (row.kind !== 'aws-ec2' || !row.enabled) return;
    await this.deps.repo.lockReach(tx);
    const owner = (await this.deps.repo.all(tx)).find((other) => providersOverlap(row, other));
    if (owner) throw new ConflictError(overlapMessage(row, owner), { providers: [row.name, owner.name] });
  }

  async #named<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // A changed endpoint or region moves the provider's machines into a scope where another provider owns some of them.
      if (isUniqueViolation(err, INSTANCE_SCOPE_KEY)) throw new ConflictError('another provider already owns instances of this provider at that endpoint and region: remove the overlap first');
      if (isUniqueViolation(err)) throw new ConflictError(`a provider named "${name}" already exists`);
      throw err;
    }
  }
}
