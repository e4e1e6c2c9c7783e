import { sql } from 'drizzle-orm';
import type { Role } from '@stagedoor/contract';
import type { Db, Tx } from '../../db/database.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from './actor.ts';
import type { GroupsRepository } from './groups.repository.ts';
import { hashPassword } from './passwords.ts';
import type { SessionsRepository } from './sessions.repository.ts';
import { generatePassword } from './tokens.ts';
import type { UserRow, UsersRepository, UserWithGroups } from './users.repository.ts';
import type { AccessReview } from '../connections/access-review.ts';

export interface CreateUserInput {
  username: string;
  password?: string;
  displayName?: string;
  email?: string;
  role: Role;
  disabled: boolean;
  groupIds: string[];
}

export interface UpdateUserInput {
  displayName?: string | null;
  email?: string | null;
  role?: Role;
  disabled?: boolean;
  groupIds?: string[];
}

export type BootstrapResult = { created: false } | { created: true; password: string; generated: boolean };

export class UsersService {
  constructor(
    private readonly deps: { db: Db; users: UsersRepository; groups: GroupsRepository; sessions: SessionsRepository; audit: AuditService; clock: Clock; access: Pick<AccessReview, 'enforce' | 'finish'> },
  ) {}

  async list(filter: { q?: string; role?: Role; groupId?: string }, limit: number, offset: number): Promise<{ items: UserWithGroups[]; total: number }> {
    const page = await this.deps.users.list(filter, limit, offset);
    return { items: await this.deps.users.withGroups(page.items), total: page.total };
  }

  async get(id: string): Promise<UserWithGroups> {
    const row = await this.deps.users.findById(id);
    if (!row) throw new NotFoundError('user', id);
    const [user] = await this.deps.users.withGroups([row]);
    return user!;
  }

  async create(actor: Actor, input: CreateUserInput): Promise<UserWithGroups> {
    // Hash outside the transaction: argon2 is deliberately slow and must not hold row locks.
    const passwordHash = input.password ? await hashPassword(input.password) : null;
    const now = this.deps.clock.now();
    try {
      const created = await this.deps.db.transaction(async (tx) => {
        await this.#requireGroups(input.groupIds, tx);
        const row = await this.deps.users.insert(
          { username: input.username, passwordHash, displayName: input.displayName ?? null, email: input.email ?? null, role: input.role, disabled: input.disabled, createdAt: now, updatedAt: now },
          tx,
        );
        await this.deps.users.setGroups(row.id, input.groupIds, tx);
        await this.deps.audit.record(actor, { action: 'user.create', outcome: 'success', targetType: 'user', targetId: row.id, details: { username: row.username, role: row.role, groupIds: input.groupIds } }, tx);
        return row;
      });
      return this.get(created.id);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a user named "${input.username}" already exists`);
      throw err;
    }
  }

  /**
   * Disabling a user, or changing their groups, ends the access they lose in the same transaction:
   * sessions signed out, floating desktops released, every connection they may no longer use closed
   * and its grants revoked (the gateways close live sessions once it commits).
   */
  async update(actor: Actor, id: string, patch: UpdateUserInput): Promise<UserWithGroups> {
    const ended = await this.deps.db.transaction(async (tx) => {
      const current = await this.#lockUser(id, tx);
      const losesAdmin = current.role === 'admin' && !current.disabled && ((patch.role && patch.role !== 'admin') || patch.disabled === true);
      if (losesAdmin) await this.#requireAnotherAdmin(id, tx);
      if (patch.groupIds) await this.#requireGroups(patch.groupIds, tx);
      const { groupIds, ...columns } = patch;
      await this.deps.users.update(id, { ...columns, updatedAt: this.deps.clock.now() }, tx);
      if (groupIds) await this.deps.users.setGroups(id, groupIds, tx);
      // A disabled user is signed out everywhere at once, not at their next idle timeout.
      if (patch.disabled === true) await this.#endSignIns(id, tx);
      await this.deps.audit.record(actor, { action: 'user.update', outcome: 'success', targetType: 'user', targetId: id, details: { changed: Object.keys(patch) } }, tx);
      return patch.disabled === true || groupIds ? this.deps.access.enforce(actor, patch.disabled === true ? 'user-disabled' : 'groups-changed', [id], tx) : null;
    });
    if (ended) this.deps.access.finish(ended, patch.disabled === true ? 'user-disabled' : 'groups-changed');
    return this.get(id);
  }

  /** A deleted user keeps nothing: every desktop of theirs is released first, in the same transaction. */
  async delete(actor: Actor, id: string): Promise<void> {
    if (actor.userId === id) throw new ConflictError('you cannot delete your own account');
    const ended = await this.deps.db.transaction(async (tx) => {
      const current = await this.#lockUser(id, tx);
      if (current.role === 'admin' && !current.disabled) await this.#requireAnotherAdmin(id, tx);
      const released = await this.deps.access.enforce(actor, 'user-deleted', [id], tx, { everything: true });
      await this.deps.users.delete(id, tx);
      await this.deps.audit.record(actor, { action: 'user.delete', outcome: 'success', targetType: 'user', targetId: id, details: { username: current.username } }, tx);
      return released;
    });
    this.deps.access.finish(ended, 'user-deleted');
  }

  /**
   * Set a new password; the user's sessions and API tokens end in the same transaction, so that a
   * stolen session, or a token minted with it, dies with the old password.
   */
  async setPassword(actor: Actor, id: string, password: string): Promise<{ sessionsEnded: number; apiTokensRevoked: number }> {
    const passwordHash = await hashPassword(password);
    return this.deps.db.transaction(async (tx) => {
      await this.#lockUser(id, tx);
      await this.deps.users.update(id, { passwordHash, updatedAt: this.deps.clock.now() }, tx);
      const ended = await this.#endSignIns(id, tx);
      await this.deps.audit.record(actor, { action: 'user.password_reset', outcome: 'success', targetType: 'user', targetId: id, details: ended }, tx);
      return ended;
    });
  }

  async setPasswordByUsername(actor: Actor, username: string, password: string): Promise<UserRow & { sessionsEnded: number; apiTokensRevoked: number }> {
    const user = await this.deps.users.findByUsername(username);
    if (!user) throw new NotFoundError('user', username);
    return { ...user, ...(await this.setPassword(actor, user.id, password)) };
  }

  /**
   * First start: with no users at all, create `admin` with the configured password, or generate one
   * for the caller to print once. The advisory lock makes concurrent first starts of several
   * nodes create exactly one admin; any later start finds users and changes nothing.
   */
  async bootstrapAdmin(actor: Actor, configuredPassword: string | undefined): Promise<BootstrapResult> {
    if ((await this.deps.users.count()) > 0) return { created: false };
    const password = configuredPassword ?? generatePassword();
    const passwordHash = await hashPassword(password);
    return this.deps.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext('stagedoor:bootstrap-admin'))`);
      if ((await this.deps.users.count(tx)) > 0) return { created: false } as const;
      const now = this.deps.clock.now();
      const row = await this.deps.users.insert({ username: 'admin', passwordHash, role: 'admin', displayName: 'Administrator', createdAt: now, updatedAt: now }, tx);
      await this.deps.audit.record(actor, { action: 'user.bootstrap_admin', outcome: 'success', targetType: 'user', targetId: row.id, details: { generatedPassword: !configuredPassword } }, tx);
      return { created: true, password, generated: !configuredPassword } as const;
    });
  }

  /** Every session and API token of the user ends now. */
  async #endSignIns(id: string, tx: Tx): Promise<{ sessionsEnded: number; apiTokensRevoked: number }> {
    const now = this.deps.clock.now();
    return { sessionsEnded: await this.deps.sessions.revokeAllOfUser(id, now, tx), apiTokensRevoked: await this.deps.sessions.revokeAllTokensOfUser(id, now, tx) };
  }

  async #lockUser(id: string, tx: Tx): Promise<UserRow> {
    const user = await this.deps.users.lockById(id, tx);
    if (!user) throw new NotFoundError('user', id);
    return user;
  }

  async #requireAnotherAdmin(id: string, tx: Tx): Promise<void> {
    // Serialise admin demotions so two concurrent requests cannot each leave "the other" admin.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext('stagedoor:admins'))`);
    if ((await this.deps.users.countOtherEnabledAdmins(id, tx)) === 0) {
      throw new ConflictError('this is the last enabled admin: make another user admin first');
    }
  }

  async #requireGroups(groupIds: string[], tx: Tx): Promise<void> {
    const found = await this.deps.groups.existingIds(groupIds, tx);
    const missing = groupIds.filter((g) => !found.has(g));
    if (missing.length) {
      throw new InvalidInputError(`unknown group ids: ${missing.join(', ')}`, missing.map((g) => ({ path: `groupIds[${groupIds.indexOf(g)}]`, message: `group ${g} does not exist` })));
    }
  }
}
