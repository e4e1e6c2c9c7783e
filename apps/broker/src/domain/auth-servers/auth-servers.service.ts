import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { AuthServerSpec, CreateAuthServer, type AuthServerKind, type SamlSettings, type UpdateAuthServer } from '@stagedoor/contract';
import type { Db, DbOrTx, Tx } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, UnavailableError, isForeignKeyViolation, isUniqueViolation } from '../errors.ts';
import type { Actor } from '../identity/actor.ts';
import { normalizeDn, type Directory, type MfaVerifier } from '../identity/directory.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import { stableJson } from '../stable-json.ts';
import type { AuthServerRow, AuthServersRepository, MappingRow } from './auth-servers.repository.ts';
import type { AuthServerConnectors, AuthServerSecrets } from './connectors.ts';
import { secretDestinationChange } from './secret-destinations.ts';
import { generateSpKeyPair } from '../identity/saml/sp-key-pair.ts';
import { invalid, parseOrThrow, purposeFor, settingsFor } from './validate.ts';

export interface AuthServerView {
  row: AuthServerRow;
  mappings: MappingRow[];
  requiredForGroups: { id: string; name: string }[];
}

export interface TestReport {
  ok: boolean;
  message: string;
  details: Record<string, unknown>;
}

/** The fields every write resolves to, whichever way it came in (create, change, apply). */
interface Desired {
  name: string;
  kind: AuthServerKind;
  purpose: 'primary' | 'second-factor';
  enabled: boolean;
  position?: number;
  config: unknown;
  secrets: AuthServerSecrets;
  mfaServerId: string | null;
  groupMappings?: { externalGroup: string; groupId: string }[];
  requiredForGroupIds?: string[];
}

/**
 * Auth servers: ordered, validated, secrets sealed with `services.secrets` under `auth_servers:<id>`.
 * Every write is one transaction with its audit row; bad input throws before anything is written.
 * `upsertByName` is the entry point for `stagedoor apply`.
 */
export class AuthServersService {
  constructor(
    private readonly deps: { db: Db; repo: AuthServersRepository; connectors: AuthServerConnectors; secrets: SecretBox; audit: AuditService; clock: Clock },
  ) {}

  async list(): Promise<AuthServerView[]> {
    return this.#views(await this.deps.repo.list());
  }

  async get(id: string, db?: DbOrTx): Promise<AuthServerView> {
    const row = await this.deps.repo.findById(id, db);
    if (!row) throw new NotFoundError('auth server', id);
    return (await this.#views([row], db))[0]!;
  }

  async findByName(name: string, db?: DbOrTx): Promise<AuthServerView | undefined> {
    const row = await this.deps.repo.findByName(name, db);
    return row ? (await this.#views([row], db))[0] : undefined;
  }

  /** `tx`: write inside the caller's transaction (as a savepoint), as `stagedoor apply` does. */
  async create(actor: Actor, raw: CreateAuthServer, tx?: DbOrTx): Promise<AuthServerView> {
    const input = parseOrThrow(CreateAuthServer, raw);
    const id = randomUUID();
    const desired: Desired = {
      name: input.name,
      kind: input.kind,
      purpose: purposeFor(input.kind, 'purpose' in input ? input.purpose : undefined),
      enabled: input.enabled,
      position: input.position,
      config: input.config,
      secrets: {
        bindPassword: 'bindPassword' in input ? input.bindPassword : undefined,
        sharedSecret: 'sharedSecret' in input ? input.sharedSecret : undefined,
        clientSecret: 'clientSecret' in input ? input.clientSecret : undefined,
      },
      mfaServerId: 'mfaServerId' in input ? (input.mfaServerId ?? null) : null,
      groupMappings: 'groupMappings' in input ? input.groupMappings : undefined,
      requiredForGroupIds: 'requiredForGroupIds' in input ? input.requiredForGroupIds : undefined,
    };
    await this.#guard(desired.name, desired.kind, () => (tx ?? this.deps.db).transaction((t) => this.#write(actor, t, id, null, desired)));
    return this.get(id, tx);
  }

  async update(actor: Actor, id: string, patch: UpdateAuthServer, outer?: DbOrTx): Promise<AuthServerView> {
    await this.#guard(patch.name ?? '', null, () =>
      (outer ?? this.deps.db).transaction(async (tx) => {
        const current = await this.deps.repo.lockById(id, tx);
        if (!current) throw new NotFoundError('auth server', id);
        const kind = current.kind as AuthServerKind;
        const old = this.deps.connectors.open(current);
        const secrets: AuthServerSecrets = {
          bindPassword: patch.bindPassword === null ? undefined : (patch.bindPassword ?? old.bindPassword),
          sharedSecret: patch.sharedSecret ?? old.sharedSecret,
          clientSecret: patch.clientSecret ?? old.clientSecret,
          // Kept across changes: the IdP has the certificate, a new key would break signed requests.
          spPrivateKey: old.spPrivateKey,
          spCertificate: old.spCertificate,
        };
        if (patch.bindPassword !== undefined && kind !== 'ldap') invalid('bindPassword', `only ldap servers have a bind password, this one is ${kind}`);
        if (patch.sharedSecret !== undefined && kind !== 'radius') invalid('sharedSecret', `only radius servers have a shared secret, this one is ${kind}`);
        if (patch.clientSecret !== undefined && kind !== 'oidc') invalid('clientSecret', `only oidc servers have a client secret, this one is ${kind}`);
        if (patch.config !== undefined) this.#requireSecretForNewDestination(kind, current, patch, old);
        await this.#write(actor, tx, id, current, {
          name: patch.name ?? current.name,
          kind,
          purpose: purposeFor(kind, (patch.purpose ?? current.purpose) as Desired['purpose']),
          enabled: patch.enabled ?? current.enabled,
          position: patch.position,
          config: patch.config ?? current.config,
          secrets,
          mfaServerId: patch.mfaServerId === undefined ? current.mfaServerId : patch.mfaServerId,
          groupMappings: patch.groupMappings,
          requiredForGroupIds: patch.requiredForGroupIds,
        }, Object.keys(patch).filter((k) => patch[k as keyof UpdateAuthServer] !== undefined));
      }),
    );
    return this.get(id, outer);
  }

  /**
   * Create or bring up to date the server called `input.name` (what `stagedoor apply` calls), and
   * say which fields changed — nothing is written when none did. Secrets left out are kept; a
   * secret given is compared with the stored one (opened here, never returned).
   */
  async upsertByName(actor: Actor, raw: AuthServerSpec, tx?: DbOrTx): Promise<{ server: AuthServerView; action: 'create' | 'update' | 'unchanged'; fields: string[] }> {
    const input = parseOrThrow(AuthServerSpec, raw);
    const existing = await this.findByName(input.name, tx);
    if (!existing) return { server: await this.create(actor, input as CreateAuthServer, tx), action: 'create', fields: [] };
    if (existing.row.kind !== input.kind) invalid('kind', `"${input.name}" is a ${existing.row.kind} server; a kind cannot change (delete and re-create it)`);
    const patch: UpdateAuthServer = {
      name: input.name,
      enabled: input.enabled,
      position: input.position,
      config: input.config as Record<string, unknown>,
      purpose: 'purpose' in input ? input.purpose : undefined,
      bindPassword: 'bindPassword' in input ? input.bindPassword : undefined,
      sharedSecret: 'sharedSecret' in input ? input.sharedSecret : undefined,
      clientSecret: 'clientSecret' in input ? input.clientSecret : undefined,
      mfaServerId: 'mfaServerId' in input ? (input.mfaServerId ?? null) : undefined,
      groupMappings: 'groupMappings' in input ? input.groupMappings : undefined,
      requiredForGroupIds: 'requiredForGroupIds' in input ? (input.requiredForGroupIds ?? []) : undefined,
    };
    const fields = this.#changedFields(existing, patch);
    if (!fields.length) return { server: existing, action: 'unchanged', fields };
    return { server: await this.update(actor, existing.row.id, patch, tx), action: 'update', fields };
  }

  /** A stored secret goes only where it was entered for: new destinations need it typed again (see secret-destinations.ts). */
  #requireSecretForNewDestination(kind: AuthServerKind, current: AuthServerRow, patch: UpdateAuthServer, stored: AuthServerSecrets): void {
    const why = secretDestinationChange(kind, current.config, settingsFor(kind, patch.config));
    if (!why) return;
    const field = kind === 'ldap' ? 'bindPassword' : kind === 'oidc' ? 'clientSecret' : 'sharedSecret';
    if (stored[field] !== undefined && patch[field] === undefined) {
      invalid(field, `must be given again with this change (${why}): a stored secret is only sent where it was entered for`);
    }
  }

  /** Which fields of `patch` differ from what is stored (config with its defaults; DNs normalised; sets unordered). */
  #changedFields(current: AuthServerView, patch: UpdateAuthServer): string[] {
    const { row } = current;
    const stored = this.deps.connectors.open(row);
    const sorted = (xs: string[]) => [...xs].sort();
    const same: Record<string, () => boolean> = {
      name: () => patch.name === row.name,
      enabled: () => patch.enabled === row.enabled,
      position: () => patch.position === row.position,
      config: () => sameJson(settingsFor(row.kind as AuthServerKind, patch.config), row.config),
      purpose: () => patch.purpose === row.purpose,
      bindPassword: () => patch.bindPassword === stored.bindPassword,
      sharedSecret: () => patch.sharedSecret === stored.sharedSecret,
      clientSecret: () => patch.clientSecret === stored.clientSecret,
      mfaServerId: () => (patch.mfaServerId ?? null) === row.mfaServerId,
      groupMappings: () =>
        sameJson(sorted((patch.groupMappings ?? []).map((m) => `${normalizeDn(m.externalGroup)}\n${m.groupId}`)), sorted(current.mappings.map((m) => `${m.externalGroup}\n${m.groupId}`))),
      requiredForGroupIds: () => sameJson(sorted(patch.requiredForGroupIds ?? []), sorted(current.requiredForGroups.map((g) => g.id))),
    };
    return Object.entries(patch)
      .filter(([k, v]) => v !== undefined && !same[k]!())
      .map(([k]) => k);
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      const row = await this.deps.repo.lockById(id, tx);
      if (!row) throw new NotFoundError('auth server', id);
      const dependents = await this.deps.repo.dependents(id, tx);
      if (dependents.length) throw new ConflictError(`"${row.name}" is still the required second factor of ${dependents.join(', ')}: change those first`);
      await this.deps.repo.delete(id, tx);
      await this.deps.audit.record(actor, { action: 'auth_server.delete', outcome: 'success', targetType: 'auth_server', targetId: id, details: { name: row.name, kind: row.kind } }, tx);
    });
  }

  /** New lookup order: `ids` must list every auth server exactly once. */
  async reorder(actor: Actor, ids: string[]): Promise<AuthServerView[]> {
    await this.deps.db.transaction(async (tx) => {
      await this.#lockOrder(tx);
      const all = await this.deps.repo.list(tx);
      const known = new Set(all.map((r) => r.id));
      const unknown = ids.filter((i) => !known.has(i));
      if (unknown.length) invalid('ids', `unknown auth server ids: ${unknown.join(', ')}`);
      if (new Set(ids).size !== ids.length || ids.length !== all.length) invalid('ids', `must list each of the ${all.length} auth servers exactly once`);
      await this.deps.repo.setOrder(ids, tx);
      await this.deps.audit.record(actor, { action: 'auth_server.reorder', outcome: 'success', targetType: 'auth_server', details: { order: ids } }, tx);
    });
    return this.list();
  }

  /** Reach the server with its stored settings and secret; a failure is a report, not an error. */
  async test(actor: Actor, id: string, username?: string): Promise<TestReport> {
    const { row } = await this.get(id);
    let report: TestReport;
    try {
      if (row.kind === 'ldap') {
        const r = await this.directoryFor(row).test(username);
        const mapped = r.user ? await this.mappedGroupIds(row.id, r.user.groups) : null;
        report = {
          ok: true,
          message: `connected to ${r.url} and bound as the service account${r.user === undefined ? '' : r.user ? `; found ${r.user.username} (${r.user.dn}) in ${r.user.groups.length} groups, ${mapped!.groupIds.length} mapped` : `; no user "${username}"`}`,
          details: { url: r.url, ...(r.user !== undefined ? { user: r.user, mappedGroupIds: mapped?.groupIds ?? [] } : {}) },
        };
      } else if (row.kind === 'radius') {
        const a = await this.verifierFor(row).test(username);
        report = { ok: true, message: `${a.server} answered ${a.kind} with a valid authenticator: reachable, and the shared secret matches`, details: { server: a.server, answer: a.kind } };
      } else {
        report = { ok: true, message: `${row.kind} is built in: nothing to reach`, details: {} };
      }
    } catch (err) {
      if (!(err instanceof UnavailableError)) throw err;
      report = { ok: false, message: err.message, details: (err.details as Record<string, unknown>) ?? {} };
    }
    await this.deps.audit.record(actor, { action: 'auth_server.test', outcome: report.ok ? 'success' : 'failure', targetType: 'auth_server', targetId: id, reason: report.ok ? undefined : report.message, details: { name: row.name } });
    return report;
  }

  // What sign-in needs

  rows(): Promise<AuthServerRow[]> {
    return this.deps.repo.list();
  }

  directoryFor(row: AuthServerRow): Directory {
    return this.deps.connectors.directory(row);
  }

  verifierFor(row: AuthServerRow): MfaVerifier {
    return this.deps.connectors.verifier(row);
  }

  /** An OIDC server's client secret, opened for one token request; never returned by the API. */
  clientSecretFor(row: AuthServerRow): string {
    return this.deps.connectors.open(row).clientSecret ?? '';
  }

  /** A saml server's SP key pair (only when it signs requests), opened for one use. */
  samlKeysFor(row: AuthServerRow): { spPrivateKey?: string; spCertificate?: string } {
    const { spPrivateKey, spCertificate } = this.deps.connectors.open(row);
    return { spPrivateKey, spCertificate };
  }

  /** The Stagedoor groups `externalDns` map to on this server, and every group the server maps into (the ones a login refreshes). */
  async mappedGroupIds(serverId: string, externalDns: string[], db?: DbOrTx): Promise<{ groupIds: string[]; managed: string[] }> {
    const rows = await this.deps.repo.mappings([serverId], db);
    const member = new Set(externalDns.map(normalizeDn));
    return { groupIds: [...new Set(rows.filter((m) => member.has(m.externalGroup)).map((m) => m.groupId))], managed: [...new Set(rows.map((m) => m.groupId))] };
  }

  requiredFactorForGroups(groupIds: string[]): Promise<AuthServerRow | undefined> {
    return this.deps.repo.requiredFactorForGroups(groupIds);
  }

  // Writing

  async #write(actor: Actor, tx: Tx, id: string, current: AuthServerRow | null, d: Desired, changed?: string[]): Promise<void> {
    const config = settingsFor(d.kind, d.config);
    if (d.kind === 'ldap' && (config as { bindDn?: string }).bindDn && !d.secrets.bindPassword) invalid('bindPassword', 'is required when config.bindDn is set');
    if (d.kind === 'radius' && !d.secrets.sharedSecret) invalid('sharedSecret', 'is required');
    if (d.kind === 'oidc' && !d.secrets.clientSecret) invalid('clientSecret', 'is required');
    if (d.kind === 'ldap') d.groupMappings?.forEach((m, i) => /=/.test(m.externalGroup) || invalid(`groupMappings[${i}].externalGroup`, 'must be a distinguished name such as cn=artists,dc=example,dc=org'));
    if (d.kind === 'totp' && !this.deps.secrets.available) {
      throw new InvalidInputError('TOTP secrets are stored encrypted: set STAGEDOOR_SECRET_KEY (32 bytes, hex or base64) on every broker node first', [{ path: 'STAGEDOOR_SECRET_KEY', message: 'is not set' }]);
    }
    if (d.groupMappings?.length && !['ldap', 'oidc', 'saml'].includes(d.kind)) invalid('groupMappings', 'only ldap, oidc and saml servers map groups');
    if (d.kind === 'saml' && (config as SamlSettings).signRequests && !d.secrets.spPrivateKey) {
      if (!this.deps.secrets.available) {
        throw new InvalidInputError('the SAML signing key is stored encrypted: set STAGEDOOR_SECRET_KEY (32 bytes, hex or base64) on every broker node first', [{ path: 'STAGEDOOR_SECRET_KEY', message: 'is not set' }]);
      }
      d.secrets = { ...d.secrets, ...(await generateSpKeyPair(d.name)) };
    }
    if (d.requiredForGroupIds?.length && d.purpose !== 'second-factor') invalid('requiredForGroupIds', 'only a second-factor server can be required for groups');
    if (current && current.purpose === 'second-factor' && d.purpose === 'primary') {
      const dependents = await this.deps.repo.dependents(id, tx);
      if (dependents.length) invalid('purpose', `"${current.name}" is the required second factor of ${dependents.join(', ')}`);
    }
    await this.#checkMfaServer(id, d, tx);
    await this.#checkGroups({ ...d, id }, tx);
    // Sealed before the row is written: a missing STAGEDOOR_SECRET_KEY fails here, with nothing half-created.
    const secretCiphertext = this.deps.connectors.seal(id, d.secrets);

    await this.#lockOrder(tx);
    const now = this.deps.clock.now();
    let position = current?.position ?? (await this.deps.repo.maxPosition(tx)) + 1;
    if (d.position !== undefined && d.position !== current?.position) {
      if (current) await this.deps.repo.update(id, { position: 0 }, tx);
      await this.deps.repo.makeRoomAt(d.position, current ? id : null, tx);
      position = d.position;
    }
    const values = { name: d.name, kind: d.kind, purpose: d.purpose, position, enabled: d.enabled, config, secretCiphertext, mfaServerId: d.mfaServerId, updatedAt: now };
    if (current) await this.deps.repo.update(id, values, tx);
    else await this.deps.repo.insert({ id, ...values, createdAt: now }, tx);
    if (d.groupMappings) await this.deps.repo.setMappings(id, d.groupMappings.map((m) => ({ externalGroup: normalizeDn(m.externalGroup), groupId: m.groupId })), tx);
    if (d.requiredForGroupIds) await this.deps.repo.setRequirements(id, d.requiredForGroupIds, tx);
    // Names of secret fields may be audited; their values never are.
    await this.deps.audit.record(
      actor,
      { action: current ? 'auth_server.update' : 'auth_server.create', outcome: 'success', targetType: 'auth_server', targetId: id, details: { name: d.name, kind: d.kind, purpose: d.purpose, ...(changed ? { changed } : {}) } },
      tx,
    );
  }

  async #checkMfaServer(id: string, d: Desired, tx: Tx): Promise<void> {
    if (!d.mfaServerId) return;
    if (d.purpose === 'second-factor') invalid('mfaServerId', 'a second-factor server cannot require another one');
    if (d.mfaServerId === id) invalid('mfaServerId', 'a server cannot be its own second factor');
    const target = await this.deps.repo.findById(d.mfaServerId, tx);
    if (!target) invalid('mfaServerId', `auth server ${d.mfaServerId} does not exist`);
    if (target.purpose !== 'second-factor') invalid('mfaServerId', `"${target.name}" is not a second-factor server (a radius server with purpose second-factor, or totp)`);
  }

  async #checkGroups(d: Desired & { id: string }, tx: Tx): Promise<void> {
    const wanted = [...(d.groupMappings ?? []).map((m, i) => [`groupMappings[${i}].groupId`, m.groupId] as const), ...(d.requiredForGroupIds ?? []).map((g, i) => [`requiredForGroupIds[${i}]`, g] as const)];
    const found = await this.deps.repo.existingGroupIds(wanted.map(([, g]) => g), tx);
    const problems = wanted.filter(([, g]) => !found.has(g)).map(([path, g]) => ({ path, message: `group ${g} does not exist` }));
    if (problems.length) throw new InvalidInputError(`invalid auth server: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
    if (d.requiredForGroupIds?.length) {
      const taken = await this.deps.repo.requiredElsewhere(d.id, d.requiredForGroupIds, tx);
      if (taken.length) invalid('requiredForGroupIds', `groups ${taken.map((t) => t.groupId).join(', ')} already require another second factor`);
    }
  }

  async #lockOrder(tx: Tx): Promise<void> {
    // Position shuffles by two admins at once would trip the unique position; take turns instead.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext('stagedoor:auth-server-order'))`);
  }

  async #guard<T>(name: string, kind: AuthServerKind | null, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isUniqueViolation(err, 'auth_servers_builtin_kind_key')) throw new ConflictError(`there is already a ${kind ?? 'built-in'} auth server: there can be one of each built-in kind`);
      if (isUniqueViolation(err, 'auth_servers_name_lower_key')) throw new ConflictError(`an auth server named "${name}" already exists`);
      if (isForeignKeyViolation(err)) throw new ConflictError('a referenced group or auth server was deleted meanwhile; try again');
      throw err;
    }
  }

  async #views(rows: AuthServerRow[], db?: DbOrTx): Promise<AuthServerView[]> {
    const ids = rows.map((r) => r.id);
    // In a transaction, one query after the other: a transaction is one connection.
    const mappings = await this.deps.repo.mappings(ids, db);
    const reqs = await this.deps.repo.requirements(ids, db);
    return rows.map((row) => ({
      row,
      mappings: mappings.filter((m) => m.authServerId === row.id),
      requiredForGroups: reqs.filter((r) => r.mfaServerId === row.id).map((r) => ({ id: r.id, name: r.name })),
    }));
  }
}

const sameJson = (a: unknown, b: unknown) => stableJson(a) === stableJson(b);
