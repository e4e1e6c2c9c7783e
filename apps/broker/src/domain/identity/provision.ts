import type { Role } from '@stagedoor/contract';
import type { Db, Tx } from '../../db/database.ts';
import type { AuthServerRow } from '../auth-servers/auth-servers.repository.ts';
import type { AuthServersService } from '../auth-servers/auth-servers.service.ts';
import type { Clock } from '../clock.ts';
import type { AccessEnded, AccessReview } from '../connections/access-review.ts';
import { isUniqueViolation } from '../errors.ts';
import { systemActor } from './actor.ts';
import type { SsoIdentitiesRepository } from './sso/sso-identities.repository.ts';
import type { UserRow, UsersRepository } from './users.repository.ts';

/** A person as an external server (LDAP, RADIUS, an OIDC or SAML identity provider) describes them. */
export interface ExternalPerson {
  username: string;
  displayName?: string | null;
  email?: string | null;
  /**
   * The provider's stable id for the person (OIDC `sub`, SAML NameID), when it has one. The link is
   * kept in `sso_identities`: a returning subject finds its user even after a rename at the IdP.
   */
  subject?: string;
}

export type ProvisionOutcome =
  | { ok: true; user: UserRow; groups: { added: string[]; removed: string[] } | null }
  | { ok: false; reason: string; user: UserRow | null };

/**
 * Create or refresh the Stagedoor user for an external account, and their memberships in the groups
 * the server maps into (set to what the server says, at every sign-in). Shared by directory sign-in
 * and SSO sign-in so both follow one rule: a name that belongs to a local user or to another server
 * is refused, never merged — a directory or IdP must not be able to take over the local `admin`.
 * An admin links an existing user to a server by setting its auth server; that user is then adopted.
 */
export class ExternalProvisioning {
  constructor(
    private readonly deps: {
      db: Db;
      users: UsersRepository;
      authServers: AuthServersService;
      identities: SsoIdentitiesRepository;
      clock: Clock;
      access: Pick<AccessReview, 'enforce' | 'finish'>;
    },
  ) {}

  /**
   * `externalGroups`: null when the server says nothing about groups (memberships are left alone).
   * `role`: set on the user when given (an SSO role mapping matched); new users are `user` otherwise.
   * `refreshProfile`: overwrite display name and email with the server's (RADIUS has none to give).
   */
  async provision(server: AuthServerRow, person: ExternalPerson, externalGroups: string[] | null, opts: { role?: Role | null; refreshProfile: boolean }): Promise<ProvisionOutcome> {
    let ended: AccessEnded | null = null;
    const attempt = () =>
      this.deps.db.transaction(async (tx): Promise<ProvisionOutcome> => {
        const found = await this.#find(tx, server, person);
        if (!found.ok) return found;
        const now = this.deps.clock.now();
        const profile = opts.refreshProfile ? { displayName: person.displayName ?? null, email: person.email ?? null } : {};
        const role = opts.role ? { role: opts.role } : {};
        const row = found.user
          ? (await this.deps.users.update(found.user.id, { authServerId: server.id, ...profile, ...role, updatedAt: now }, tx))!
          : await this.deps.users.insert({ username: person.username, role: 'user', authServerId: server.id, ...profile, ...role, createdAt: now, updatedAt: now }, tx);
        if (person.subject) await this.deps.identities.link(server.id, person.subject, row.id, now, tx);
        let groups: { added: string[]; removed: string[] } | null = null;
        if (externalGroups) {
          const mapped = await this.deps.authServers.mappedGroupIds(server.id, externalGroups, tx);
          groups = await this.deps.users.syncManagedGroups(row.id, mapped.managed, mapped.groupIds, tx);
          // The server took groups away (or gave one that puts another policy first): what the user
          // may no longer hold ends with this sign-in's commit.
          if (groups.added.length || groups.removed.length) {
            ended = await this.deps.access.enforce({ ...systemActor, username: `${server.kind === 'ldap' ? 'directory' : server.kind}:${server.name}` }, 'groups-changed', [row.id], tx);
          }
        }
        return { ok: true, user: row, groups };
      });
    let outcome: ProvisionOutcome;
    try {
      outcome = await attempt();
    } catch (err) {
      // Two first sign-ins of the same person at once: the loser finds the row the winner created.
      if (!isUniqueViolation(err)) throw err;
      outcome = await attempt();
    }
    if (ended) this.deps.access.finish(ended, 'groups-changed');
    return outcome;
  }

  /** The existing user this person is (or null: create one), or why they may not sign in as it. */
  async #find(tx: Tx, server: AuthServerRow, person: ExternalPerson): Promise<{ ok: true; user: UserRow | null } | Extract<ProvisionOutcome, { ok: false }>> {
    const { users, identities } = this.deps;
    if (person.subject) {
      const linkedId = await identities.userFor(server.id, person.subject, tx);
      if (linkedId) {
        const linked = await users.findById(linkedId, tx);
        // An admin moved the user to another server since: the old link no longer speaks for them.
        if (linked && linked.authServerId === server.id) return { ok: true, user: linked };
        if (linked) return { ok: false, reason: 'the account this identity signed in to now belongs to another auth server', user: linked };
      }
    }
    const row = await users.findByUsername(person.username, tx);
    if (!row) return { ok: true, user: null };
    if (row.authServerId && row.authServerId !== server.id) return { ok: false, reason: 'the username belongs to another auth server', user: row };
    if (!row.authServerId && row.passwordHash) return { ok: false, reason: 'the username belongs to a local user', user: row };
    if (person.subject && (await identities.subjectOf(server.id, row.id, tx))) {
      // Same name, another subject: the IdP reused a name (someone left, someone new got it).
      return { ok: false, reason: 'the username belongs to another person at this identity provider (another subject)', user: row };
    }
    return { ok: true, user: row };
  }
}
