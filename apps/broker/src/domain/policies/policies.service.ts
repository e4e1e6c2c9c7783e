import type { z } from 'zod';
import type { PolicyBody, UpdatePolicy } from '@stagedoor/contract';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, isForeignKeyViolation, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from '../identity/actor.ts';
import type { AccessEnded, AccessReview } from '../connections/access-review.ts';
import type { PoliciesRepository, PolicyWithLinks } from './policies.repository.ts';

type Create = z.output<typeof PolicyBody>;
type Update = z.output<typeof UpdatePolicy>;

/**
 * Policies: who gets what. Ordered; the first enabled policy naming one of the user's groups wins.
 * Every change reviews access in its own transaction: a user whose policy no longer offers a desktop
 * they hold loses it (floating) or its sessions (persistent) as the change commits. Inside a
 * caller's transaction (`tx`: `stagedoor apply`) the caller reviews once, at its end: a file that
 * moves a pool from one policy to another must not end desktops on the way.
 */
export class PoliciesService {
  constructor(private readonly deps: { db: Db; repo: PoliciesRepository; audit: AuditService; clock: Clock; access: Pick<AccessReview, 'enforce' | 'finish'> }) {}

  list(db?: DbOrTx): Promise<PolicyWithLinks[]> {
    return this.deps.repo.list(db);
  }

  async get(id: string): Promise<PolicyWithLinks> {
    const p = await this.deps.repo.findById(id);
    if (!p) throw new NotFoundError('policy', id);
    return p;
  }

  findByName(name: string, db?: DbOrTx) {
    return this.deps.repo.findByName(name, db);
  }

  /** The policy that applies to a member of these groups, or undefined. */
  forGroups(groupIds: string[]): Promise<PolicyWithLinks | undefined> {
    return this.deps.repo.firstMatching(groupIds);
  }

  async create(actor: Actor, input: Create, tx?: DbOrTx): Promise<PolicyWithLinks> {
    const now = this.deps.clock.now();
    const id = await this.#guard(input, () =>
      (tx ?? this.deps.db).transaction(async (db) => {
        const position = input.position ?? (await this.deps.repo.maxPosition(db)) + 1;
        const { groupIds, pools, ...cols } = input;
        const row = await this.deps.repo.insert({ ...cols, description: cols.description ?? null, position, createdAt: now, updatedAt: now }, db);
        await this.deps.repo.setLinks(row.id, { groupIds, pools }, db);
        await this.deps.audit.record(actor, { action: 'policy.create', outcome: 'success', targetType: 'policy', targetId: row.id, details: { name: row.name, position } }, db);
        return { id: row.id, ended: await this.#review(actor, db, tx) };
      }),
    );
    this.#finish(id.ended);
    return (await this.deps.repo.findById(id.id, tx))!;
  }

  async update(actor: Actor, id: string, input: Update, tx?: DbOrTx): Promise<PolicyWithLinks> {
    const ended = await this.#guard(input, () =>
      (tx ?? this.deps.db).transaction(async (db) => {
        const { groupIds, pools, ...cols } = input;
        const row = await this.deps.repo.update(id, { ...cols, updatedAt: this.deps.clock.now() }, db);
        if (!row) throw new NotFoundError('policy', id);
        await this.deps.repo.setLinks(id, { groupIds, pools }, db);
        await this.deps.audit.record(actor, { action: 'policy.update', outcome: 'success', targetType: 'policy', targetId: id, details: { changed: Object.keys(input) } }, db);
        return this.#review(actor, db, tx);
      }),
    );
    this.#finish(ended);
    return (await this.deps.repo.findById(id, tx))!;
  }

  async delete(actor: Actor, id: string, tx?: DbOrTx): Promise<void> {
    const ended = await (tx ?? this.deps.db).transaction(async (db) => {
      if (!(await this.deps.repo.delete(id, db))) throw new NotFoundError('policy', id);
      await this.deps.audit.record(actor, { action: 'policy.delete', outcome: 'success', targetType: 'policy', targetId: id }, db);
      return this.#review(actor, db, tx);
    });
    this.#finish(ended);
  }

  async reorder(actor: Actor, ids: string[]): Promise<PolicyWithLinks[]> {
    const ended = await this.deps.db.transaction(async (db) => {
      const all = await this.deps.repo.list(db);
      const known = new Set(all.map((p) => p.id));
      if (ids.length !== all.length || ids.some((id) => !known.has(id)) || new Set(ids).size !== ids.length) {
        throw new InvalidInputError('reorder needs every policy id exactly once', [{ path: 'ids', message: `expected the ${all.length} policy ids in their new order` }]);
      }
      await this.deps.repo.reorder(ids, db);
      await this.deps.audit.record(actor, { action: 'policy.reorder', outcome: 'success', targetType: 'policy', details: { order: ids } }, db);
      return this.deps.access.enforce(actor, 'policy-changed', null, db);
    });
    this.deps.access.finish(ended, 'policy-changed');
    return this.deps.repo.list();
  }

  /** Review access in this transaction, unless it is the caller's (who reviews once at its end). */
  async #review(actor: Actor, db: DbOrTx, outer: DbOrTx | undefined): Promise<AccessEnded | null> {
    return outer ? null : this.deps.access.enforce(actor, 'policy-changed', null, db);
  }

  #finish(ended: AccessEnded | null): void {
    if (ended) this.deps.access.finish(ended, 'policy-changed');
  }

  async #guard<T>(input: { name?: string; position?: number }, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isUniqueViolation(err, 'policies_position_key')) throw new ConflictError(`position ${input.position} is taken by another policy: pick a free one, or reorder`);
      if (isUniqueViolation(err)) throw new ConflictError(`a policy named "${input.name}" already exists`);
      if (isForeignKeyViolation(err)) throw new InvalidInputError('a group, pool or plan id names nothing', [{ path: 'body', message: 'every groupId, poolId and plan id must exist' }]);
      throw err;
    }
  }
}
