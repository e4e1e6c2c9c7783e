import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { AuthServerRow } from '../auth-servers/auth-servers.repository.ts';
import type { AuthServersService } from '../auth-servers/auth-servers.service.ts';
import type { Clock } from '../clock.ts';
import { isUniqueViolation } from '../errors.ts';
import type { DirectoryUser, MfaAnswer } from './directory.ts';
import { burnPasswordCheck, verifyPassword } from './passwords.ts';
import type { UserRow, UsersRepository } from './users.repository.ts';
import type { AccessEnded, AccessReview } from '../connections/access-review.ts';
import { systemActor } from './actor.ts';

export type PasswordOutcome =
  | {
      ok: true;
      user: UserRow;
      /** null: the built-in local store when no `local` auth server row exists. */
      server: AuthServerRow | null;
      /** A RADIUS primary answered Access-Challenge: the password was right, a code is still due. */
      challenge: Extract<MfaAnswer, { kind: 'challenge' }> | null;
      groups: { added: string[]; removed: string[] } | null;
    }
  | { ok: false; reason: string; server: AuthServerRow | null; user: UserRow | null; canonical: string | null };

/** Called with the directory's canonical name before the password is tried, so a locked account is refused first. */
export type LockGuard = (canonicalName: string) => Promise<void>;

type Step = PasswordOutcome | 'unknown';

/**
 * The password step: "the first auth server that knows the user checks the password".
 *
 * - A user already linked to a server (`users.auth_server_id`, set at their first directory login)
 *   is checked by that server only — never by another, never by a local password.
 * - A local user (password hash, no link) is checked by the local store.
 * - Anyone else walks the enabled primary servers in order: an LDAP server knows the user when its
 *   search finds exactly one entry; a RADIUS primary knows them when it does not reject.
 * - An unreachable server stops the walk with `UnavailableError`: it might know the user, so asking
 *   the next one could let a weaker check decide.
 */
export class PasswordCheck {
  constructor(private readonly deps: { db: Db; users: UsersRepository; authServers: AuthServersService; clock: Clock; log: Logger; access: Pick<AccessReview, 'enforce' | 'finish'> }) {}

  async check(login: string, password: string, guard: LockGuard): Promise<PasswordOutcome> {
    const servers = await this.deps.authServers.rows();
    const localRow = servers.find((s) => s.kind === 'local') ?? null;
    const existing = await this.deps.users.findByUsername(login);
    const fail = (reason: string, server: AuthServerRow | null, canonical: string | null = existing?.username ?? null): PasswordOutcome => ({ ok: false, reason, server, user: existing ?? null, canonical });

    if (existing?.authServerId) {
      const server = servers.find((s) => s.id === existing.authServerId)!;
      if (!server.enabled) return fail(`auth server "${server.name}" is disabled`, server);
      if (server.kind === 'local') return this.#local(existing, server, password, guard);
      const r = await this.#viaServer(server, login, password, guard, true);
      return r === 'unknown' ? fail(`not found in "${server.name}"`, server) : r;
    }
    if (existing?.passwordHash) {
      if (localRow && !localRow.enabled) return fail('local sign-in is disabled', localRow);
      return this.#local(existing, localRow, password, guard);
    }
    for (const server of servers) {
      if (!server.enabled || server.purpose !== 'primary' || (server.kind !== 'ldap' && server.kind !== 'radius')) continue;
      const r = await this.#viaServer(server, login, password, guard, false);
      if (r !== 'unknown') return r;
    }
    await burnPasswordCheck(password);
    return fail(existing ? 'no local password and no directory knows the user' : 'unknown user', null, null);
  }

  async #local(user: UserRow, server: AuthServerRow | null, password: string, guard: LockGuard): Promise<PasswordOutcome> {
    await guard(user.username);
    if (!user.passwordHash) {
      await burnPasswordCheck(password);
      return { ok: false, reason: 'no local password', server, user, canonical: user.username };
    }
    if (!(await verifyPassword(user.passwordHash, password))) return { ok: false, reason: 'wrong password', server, user, canonical: user.username };
    return { ok: true, user, server, challenge: null, groups: null };
  }

  async #viaServer(server: AuthServerRow, login: string, password: string, guard: LockGuard, linked: boolean): Promise<Step> {
    if (server.kind === 'ldap') {
      const directory = this.deps.authServers.directoryFor(server);
      const found = await directory.findUser(login);
      if (!found) return 'unknown';
      await guard(found.username);
      const verdict = await directory.verifyPassword(found, password);
      if (!verdict.ok) return { ok: false, reason: verdict.reason, server, user: null, canonical: found.username };
      return this.#provision(server, found, verdict.groups);
    }
    // RADIUS as the primary check: the server decides the password (and may ask for a code).
    const answer = await this.deps.authServers.verifierFor(server).check({ username: login, response: password });
    if (answer.kind === 'reject') return linked ? { ok: false, reason: `rejected by "${server.name}"`, server, user: null, canonical: login } : 'unknown';
    return this.#provision(server, { dn: '', username: login, displayName: null, email: null, disabled: false }, null, answer.kind === 'challenge' ? answer : null);
  }

  /**
   * Create or refresh the Stagedoor user for a directory (or RADIUS) user, and their mapped groups.
   * A name that belongs to a local user or to another server is refused, never merged: a directory
   * must not be able to take over the local `admin`.
   */
  async #provision(server: AuthServerRow, du: DirectoryUser, directoryGroups: string[] | null, challenge: Extract<MfaAnswer, { kind: 'challenge' }> | null = null): Promise<PasswordOutcome> {
    const { users, clock } = this.deps;
    let ended: AccessEnded | null = null;
    const attempt = async (): Promise<PasswordOutcome> =>
      this.deps.db.transaction(async (tx) => {
        const now = clock.now();
        let row = await users.findByUsername(du.username, tx);
        if (row && row.authServerId && row.authServerId !== server.id) return { ok: false, reason: 'the username belongs to another auth server', server, user: row, canonical: du.username } as const;
        if (row && !row.authServerId && row.passwordHash) return { ok: false, reason: 'the username belongs to a local user', server, user: row, canonical: du.username } as const;
        const profile = server.kind === 'ldap' ? { displayName: du.displayName, email: du.email } : {};
        row = row
          ? (await users.update(row.id, { authServerId: server.id, ...profile, updatedAt: now }, tx))!
          : await users.insert({ username: du.username, role: 'user', authServerId: server.id, ...profile, createdAt: now, updatedAt: now }, tx);
        let groups: { added: string[]; removed: string[] } | null = null;
        if (directoryGroups) {
          const mapped = await this.deps.authServers.mappedGroupIds(server.id, directoryGroups, tx);
          groups = await users.syncManagedGroups(row.id, mapped.managed, mapped.groupIds, tx);
          // The directory took groups away (or gave one that puts another policy first): what the
          // user may no longer hold ends with this sign-in's commit.
          if (groups.added.length || groups.removed.length) {
            ended = await this.deps.access.enforce({ ...systemActor, username: `directory:${server.name}` }, 'groups-changed', [row.id], tx);
          }
        }
        return { ok: true, user: row, server, challenge, groups } as const;
      });
    let outcome: PasswordOutcome;
    try {
      outcome = await attempt();
    } catch (err) {
      // Two first logins of the same user at once: the loser finds the row the winner created.
      if (!isUniqueViolation(err)) throw err;
      outcome = await attempt();
    }
    if (ended) this.deps.access.finish(ended, 'groups-changed');
    return outcome;
  }
}
