import type { Db, DbOrTx } from '../../db/database.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, isForeignKeyViolation, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from './actor.ts';
import type { AccessReview } from '../connections/access-review.ts';
import type { GroupsRepository, GroupWithCount } from './groups.repository.ts';

export class GroupsService {
  constructor(private readonly deps: { db: Db; groups: GroupsRepository; audit: AuditService; clock: Clock; access: Pick<AccessReview, 'enforce' | 'finish'> }) {}

  list(limit: number, offset: number): Promise<{ items: GroupWithCount[]; total: number }> {
    return this.deps.groups.list(limit, offset);
  }

  async get(id: string, db?: DbOrTx): Promise<GroupWithCount> {
    const g = await this.deps.groups.findById(id, db);
    if (!g) throw new NotFoundError('group', id);
    return g;
  }

  /** With `outer`, runs inside the caller's transaction (as a savepoint), as `stagedoor apply` needs. */
  findByName(name: string, db?: DbOrTx): Promise<GroupWithCount | undefined> {
    return this.deps.groups.findByName(name, db);
  }

  async create(actor: Actor, input: { name: string; description?: string; memberIds: string[] }, outer?: DbOrTx): Promise<GroupWithCount> {
    const now = this.deps.clock.now();
    const id = await this.#guard(input.name, () =>
      (outer ?? this.deps.db).transaction(async (tx) => {
        const g = await this.deps.groups.insert({ name: input.name, description: input.description ?? null, createdAt: now, updatedAt: now }, tx);
        await this.deps.groups.addMembers(g.id, input.memberIds, tx);
        await this.deps.audit.record(actor, { action: 'group.create', outcome: 'success', targetType: 'group', targetId: g.id, details: { name: g.name, members: input.memberIds.length } }, tx);
        return g.id;
      }),
    );
    return this.get(id, outer);
  }

  async update(actor: Actor, id: string, patch: { name?: string; description?: string | null }, outer?: DbOrTx): Promise<GroupWithCount> {
    await this.#guard(patch.name ?? '', () =>
      (outer ?? this.deps.db).transaction(async (tx) => {
        const g = await this.deps.groups.update(id, { ...patch, updatedAt: this.deps.clock.now() }, tx);
        if (!g) throw new NotFoundError('group', id);
        await this.deps.audit.record(actor, { action: 'group.update', outcome: 'success', targetType: 'group', targetId: id, details: { changed: Object.keys(patch) } }, tx);
      }),
    );
    return this.get(id, outer);
  }

  /** Members lose what the group gave them (their policy may change): in the same transaction. */
  async delete(actor: Actor, id: string): Promise<void> {
    const ended = await this.deps.db.transaction(async (tx) => {
      const g = await this.deps.groups.findById(id, tx);
      if (!g) throw new NotFoundError('group', id);
      const members = await this.deps.groups.memberIds(id, tx);
      await this.deps.groups.delete(id, tx);
      await this.deps.audit.record(actor, { action: 'group.delete', outcome: 'success', targetType: 'group', targetId: id, details: { name: g.name } }, tx);
      return this.deps.access.enforce(actor, 'groups-changed', members, tx);
    });
    this.deps.access.finish(ended, 'groups-changed');
  }

  /** A new group can put an earlier policy first for the user, so their access is reviewed too. */
  async addMember(actor: Actor, groupId: string, userId: string): Promise<void> {
    const ended = await this.#guard('', () =>
      this.deps.db.transaction(async (tx) => {
        if (!(await this.deps.groups.findById(groupId, tx))) throw new NotFoundError('group', groupId);
        const added = await this.deps.groups.addMembers(groupId, [userId], tx);
        if (added) await this.deps.audit.record(actor, { action: 'group.member_add', outcome: 'success', targetType: 'group', targetId: groupId, details: { userId } }, tx);
        return this.deps.access.enforce(actor, 'groups-changed', [userId], tx);
      }),
    );
    this.deps.access.finish(ended, 'groups-changed');
  }

  /** What the group gave the user ends with the membership: in the same transaction. */
  async removeMember(actor: Actor, groupId: string, userId: string): Promise<void> {
    const ended = await this.deps.db.transaction(async (tx) => {
      if (!(await this.deps.groups.removeMember(groupId, userId, tx))) throw new NotFoundError('membership of user in group', `${userId} / ${groupId}`);
      await this.deps.audit.record(actor, { action: 'group.member_remove', outcome: 'success', targetType: 'group', targetId: groupId, details: { userId } }, tx);
      return this.deps.access.enforce(actor, 'groups-changed', [userId], tx);
    });
    this.deps.access.finish(ended, 'groups-changed');
  }

  /** Turn constraint violations from a race or a bad id into the errors a caller can act on. */
  async #guard<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a group named "${name}" already exists`);
      if (isForeignKeyViolation(err)) throw new InvalidInputError('a member id names no user', [{ path: 'memberIds', message: 'every member must be an existing user id' }]);
      throw err;
    }
  }
}
