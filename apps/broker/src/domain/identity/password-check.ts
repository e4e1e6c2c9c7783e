import type { AuthServerRow } from '../auth-servers/auth-servers.repository.ts';
import type { AuthServersService } from '../auth-servers/auth-servers.service.ts';
import type { DirectoryUser, MfaAnswer } from './directory.ts';
import { burnPasswordCheck, verifyPassword } from './passwords.ts';
import type { UserRow, UsersRepository } from './users.repository.ts';
import type { ExternalProvisioning } from './provision.ts';

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
  constructor(private readonly deps: { users: UsersRepository; authServers: AuthServersService; provisioning: ExternalProvisioning }) {}

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

  /** The directory (or RADIUS) user as a Stagedoor user, with their mapped groups: the rule is ExternalProvisioning's. */
  async #provision(server: AuthServerRow, du: DirectoryUser, directoryGroups: string[] | null, challenge: Extract<MfaAnswer, { kind: 'challenge' }> | null = null): Promise<PasswordOutcome> {
    const r = await this.deps.provisioning.provision(server, du, directoryGroups, { refreshProfile: server.kind === 'ldap' });
    if (!r.ok) return { ok: false, reason: r.reason, server, user: r.user, canonical: du.username };
    return { ok: true, user: r.user, server, challenge, groups: r.groups };
  }
}
