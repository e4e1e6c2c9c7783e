import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthServerSpec } from '@stagedoor/contract';
import { rowsOf } from '../../src/db/migrate.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { create, SECRET_KEY } from './helpers.ts';

const BIND_PASSWORD = 'Bind-Secret-e91f0c';
const RADIUS_SECRET = 'Radius-Secret-77ab41';

// Disabled: nothing here may reach out to these (made-up) hosts.
const ldap = (over: Record<string, unknown> = {}) => ({
  kind: 'ldap',
  name: 'corp-ad',
  enabled: false,
  config: {
    urls: ['ldaps://dc1.corp.example:636', 'ldaps://dc2.corp.example'],
    bindDn: 'CN=svc-stagedoor,OU=Service,DC=corp,DC=example',
    userSearchBase: 'DC=corp,DC=example',
    userFilter: '(sAMAccountName={username})',
    groupMembership: 'ad-member-of',
  },
  bindPassword: BIND_PASSWORD,
  ...over,
});
const radius = (over: Record<string, unknown> = {}) => ({ kind: 'radius', name: 'okta-radius', config: { servers: [{ host: '10.0.0.5' }] }, sharedSecret: RADIUS_SECRET, ...over });

async function tableCounts(b: TestBroker) {
  const r = await b.database.db.execute(
    sql`select (select count(*) from auth_servers)::int as servers, (select count(*) from auth_server_group_mappings)::int as mappings, (select count(*) from group_mfa_requirements)::int as reqs, (select count(*) from audit_events where action like 'auth_server.%')::int as audit`,
  );
  return rowsOf<Record<string, number>>(r)[0]!;
}

describe.each(DRIVERS)('/api/v1/auth-servers [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  let groupId: string;

  beforeAll(async () => {
    b = await createTestBroker(driver, { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    groupId = (await create(b.app, admin, '/api/v1/groups', { name: 'Editors' })).id;
  });
  afterAll(async () => b?.close());

  it('creates servers in order with defaults, secrets stored encrypted and never answered', async () => {
    const ad = await create(b.app, admin, '/api/v1/auth-servers', ldap({ groupMappings: [{ externalGroup: 'CN=Editors, OU=Groups, DC=corp, DC=example', groupId }] }));
    const mfa = await create(b.app, admin, '/api/v1/auth-servers', radius());
    expect(ad).toMatchObject({ kind: 'ldap', purpose: 'primary', position: 1, enabled: false, secretSet: true, config: { startTls: false, connectTimeoutMs: 5000, searchTimeoutMs: 10000 } });
    expect(ad.groupMappings).toEqual([{ externalGroup: 'cn=editors,ou=groups,dc=corp,dc=example', groupId, groupName: 'Editors' }]);
    expect(mfa).toMatchObject({ kind: 'radius', purpose: 'second-factor', position: 2, config: { servers: [{ host: '10.0.0.5', port: 1812 }], retries: 2, secondFactorRequest: 'password' } });

    const raw = rowsOf<{ row: string; secret: string }>(await b.database.db.execute(sql`select row_to_json(a)::text as row, secret_ciphertext as secret from auth_servers a`));
    expect(raw).toHaveLength(2);
    for (const r of raw) {
      expect(r.secret).toMatch(/^v2:[0-9a-f]{16}:[\w-]+:[\w-]+:[\w-]+$/);
      expect(r.row).not.toContain(BIND_PASSWORD);
      expect(r.row).not.toContain(RADIUS_SECRET);
    }
    // Bound to its row: the bind password decrypts only as auth_servers:<id>.
    expect(JSON.parse(b.services.secrets.open(raw.find((r) => r.row.includes('"ldap"'))!.secret, `auth_servers:${ad.id}`))).toEqual({ bindPassword: BIND_PASSWORD });

    const answers = [
      await b.app.inject({ url: '/api/v1/auth-servers', headers: as(admin) }),
      await b.app.inject({ url: `/api/v1/auth-servers/${ad.id}`, headers: as(admin) }),
      await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${mfa.id}`, headers: as(admin), payload: { sharedSecret: `${RADIUS_SECRET}-2` } }),
      await b.app.inject({ url: '/api/v1/audit?limit=500', headers: as(admin) }),
    ];
    for (const res of answers) {
      expect(res.statusCode).toBe(200);
      for (const s of [BIND_PASSWORD, RADIUS_SECRET]) expect(res.body).not.toContain(s);
    }
    // Every GET route without path parameters, as admin: none carries a secret.
    for (const route of b.app.routeList.filter((r) => r.method === 'GET' && r.url.startsWith('/api/') && !r.url.includes(':') && !r.stream)) {
      const res = await b.app.inject({ url: route.url, headers: as(admin) });
      for (const s of [BIND_PASSWORD, RADIUS_SECRET]) expect(res.body, route.url).not.toContain(s);
    }
    for (const s of [BIND_PASSWORD, RADIUS_SECRET]) expect(b.logLines.join('\n')).not.toContain(s);
  });

  it.each([
    ['a bad URL', ldap({ name: 'x1', config: { ...ldap().config, urls: ['http://dc1'] } }), /body\.config\.urls\.0/],
    ['no URL', ldap({ name: 'x2', config: { ...ldap().config, urls: [] } }), /body\.config\.urls/],
    ['a filter without {username}', ldap({ name: 'x3', config: { ...ldap().config, userFilter: '(uid=alice)' } }), /config\.userFilter.*\{username\}/],
    ['a filter that does not parse', ldap({ name: 'x4', config: { ...ldap().config, userFilter: '(&(uid={username})(cn=x)' } }), /config\.userFilter.*not a valid LDAP filter/],
    ['a CA that is not a certificate', ldap({ name: 'x5', config: { ...ldap().config, caCertificate: '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----' } }), /config\.caCertificate/],
    ['StartTLS on ldaps://', ldap({ name: 'x6', config: { ...ldap().config, startTls: true } }), /config\.startTls/],
    ['a bind DN without a password', ldap({ name: 'x7', bindPassword: undefined }), /bindPassword: is required when config\.bindDn is set/],
    ['an unknown group in a mapping', ldap({ name: 'x8', groupMappings: [{ externalGroup: 'cn=x,dc=y', groupId: '00000000-0000-4000-8000-000000000000' }] }), /groupMappings\[0\]\.groupId/],
    ['an unknown field', ldap({ name: 'x9', password: 'oops' }), /password/],
    ['RADIUS without a secret', radius({ name: 'x10', sharedSecret: undefined }), /body\.sharedSecret/],
    ['a RADIUS port out of range', radius({ name: 'x11', config: { servers: [{ host: 'r', port: 70000 }] } }), /body\.config\.servers\.0\.port/],
    ['ldap as a second factor', ldap({ name: 'x12', mfaServerId: '00000000-0000-4000-8000-000000000000' }), /mfaServerId/],
    ['an unknown kind', { kind: 'kerberos', name: 'x13' }, /body\.kind/],
  ])('refuses %s, naming the field, and creates nothing', async (_what, payload, message) => {
    const before = await tableCounts(b);
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers', headers: as(admin), payload });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().error.message).toMatch(message);
    expect(await tableCounts(b)).toEqual(before);
  });

  it('refuses duplicates (any case) and a second local or totp server with 409', async () => {
    expect((await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers', headers: as(admin), payload: ldap({ name: 'CORP-AD' }) })).statusCode).toBe(409);
    await create(b.app, admin, '/api/v1/auth-servers', { kind: 'totp', name: 'totp' });
    const again = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers', headers: as(admin), payload: { kind: 'totp', name: 'totp-2' } });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.message).toContain('one of each built-in kind');
  });

  it('makes a second factor required for an auth server and for groups; refuses to delete it while used', async () => {
    const { items } = (await b.app.inject({ url: '/api/v1/auth-servers', headers: as(admin) })).json();
    const ad = items.find((s: { name: string }) => s.name === 'corp-ad');
    const mfa = items.find((s: { name: string }) => s.name === 'okta-radius');
    const patched = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${ad.id}`, headers: as(admin), payload: { mfaServerId: mfa.id } });
    expect(patched.json()).toMatchObject({ mfaServerId: mfa.id, secretSet: true });
    const req = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${mfa.id}`, headers: as(admin), payload: { requiredForGroupIds: [groupId] } });
    expect(req.json().requiredForGroups).toEqual([{ id: groupId, name: 'Editors' }]);
    const del = await b.app.inject({ method: 'DELETE', url: `/api/v1/auth-servers/${mfa.id}`, headers: as(admin) });
    expect(del.statusCode).toBe(409);
    expect(del.json().error.message).toMatch(/auth server "corp-ad".*group "Editors"/);
    const primary = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${mfa.id}`, headers: as(admin), payload: { purpose: 'primary' } });
    expect(primary.statusCode).toBe(400);
    expect(primary.json().error.details.fields[0].path).toBe('purpose');
  });

  it('keeps secrets across changes that omit them; removing the bind password needs no bind DN', async () => {
    const { items } = (await b.app.inject({ url: '/api/v1/auth-servers', headers: as(admin) })).json();
    const ad = items.find((s: { name: string }) => s.name === 'corp-ad');
    const renamed = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${ad.id}`, headers: as(admin), payload: { name: 'corp-ad-renamed' } });
    expect(renamed.json()).toMatchObject({ name: 'corp-ad-renamed', secretSet: true });
    const { bindDn: _dn, ...anonymous } = ad.config;
    const cleared = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${ad.id}`, headers: as(admin), payload: { config: anonymous, bindPassword: null } });
    expect(cleared.statusCode, cleared.body).toBe(200);
    expect(cleared.json().secretSet).toBe(false);
    const wrongKind = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${ad.id}`, headers: as(admin), payload: { sharedSecret: 'x' } });
    expect(wrongKind.statusCode).toBe(400);
    const badConfig = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${ad.id}`, headers: as(admin), payload: { config: { urls: ['ldap://x'] } } });
    expect(badConfig.statusCode).toBe(400);
    expect(badConfig.json().error.details.fields.map((f: { path: string }) => f.path)).toEqual(expect.arrayContaining(['config.userSearchBase', 'config.userFilter', 'config.groupMembership']));
  });

  it('reorders: inserting at a position and a full new order', async () => {
    const local = await create(b.app, admin, '/api/v1/auth-servers', { kind: 'local', name: 'local', position: 1 });
    let { items } = (await b.app.inject({ url: '/api/v1/auth-servers', headers: as(admin) })).json();
    expect(items.map((s: { name: string }) => s.name)).toEqual(['local', 'corp-ad-renamed', 'okta-radius', 'totp']);
    expect(items.map((s: { position: number }) => s.position)).toEqual([1, 2, 3, 4]);
    const ids = items.map((s: { id: string }) => s.id).reverse();
    const res = await b.app.inject({ method: 'PUT', url: '/api/v1/auth-servers/order', headers: as(admin), payload: { ids } });
    expect(res.statusCode, res.body).toBe(200);
    ({ items } = res.json());
    expect(items.map((s: { id: string }) => s.id)).toEqual(ids);
    const partial = await b.app.inject({ method: 'PUT', url: '/api/v1/auth-servers/order', headers: as(admin), payload: { ids: [local.id] } });
    expect(partial.statusCode).toBe(400);
  });

  it('upsertByName (for stagedoor apply) creates, then updates, and never changes a kind', async () => {
    const first = await b.services.authServers.upsertByName(systemActor, radius({ name: 'duo', config: { servers: [{ host: 'duo-proxy' }] } }) as AuthServerSpec);
    expect(first.action).toBe('create');
    const again = await b.services.authServers.upsertByName(systemActor, radius({ name: 'duo', config: { servers: [{ host: 'duo-proxy' }] } }) as AuthServerSpec);
    expect(again).toMatchObject({ action: 'unchanged', fields: [] });
    // A new port is a new destination: the secret left out of the file is not sent there.
    const moved = { kind: 'radius', name: 'duo', enabled: false, purpose: 'second-factor', config: { servers: [{ host: 'duo-proxy', port: 18120 }] } } as AuthServerSpec;
    await expect(b.services.authServers.upsertByName(systemActor, moved)).rejects.toThrow(/sharedSecret: must be given again/);
    const second = await b.services.authServers.upsertByName(systemActor, { ...moved, sharedSecret: RADIUS_SECRET } as AuthServerSpec);
    expect(second).toMatchObject({ action: 'update', fields: ['enabled', 'config'] });
    expect(second.server.row).toMatchObject({ id: first.server.row.id, enabled: false, config: { servers: [{ host: 'duo-proxy', port: 18120 }] } });
    expect(second.server.row.secretCiphertext).not.toBeNull();
    await expect(b.services.authServers.upsertByName(systemActor, ldap({ name: 'duo' }) as AuthServerSpec)).rejects.toThrow(/kind cannot change/);
  });

  it('the OpenAPI document describes the sign-in routes with their bodies and answers', async () => {
    const spec = (await b.app.inject('/api/v1/openapi.json')).json();
    for (const [path, method] of [
      ['/api/v1/auth-servers', 'post'],
      ['/api/v1/auth-servers/{id}', 'patch'],
      ['/api/v1/auth-servers/order', 'put'],
      ['/api/v1/auth-servers/{id}/test', 'post'],
      ['/api/v1/auth/login/mfa', 'post'],
      ['/api/v1/me/mfa/totp/confirm', 'post'],
      ['/api/v1/login-throttles/unlock', 'post'],
    ] as const) {
      const op = spec.paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(op.requestBody, `${method} ${path} body`).toBeDefined();
      expect(op.responses['200'] ?? op.responses['201'], `${method} ${path} answer`).toBeDefined();
    }
    const login = spec.paths['/api/v1/auth/login'].post.responses['200'].content['application/json'].schema;
    expect(JSON.stringify(login)).toContain('mfaRequired');
  });

  it('needs STAGEDOOR_SECRET_KEY to store a secret, and says so with nothing created', async () => {
    const noKey = await createTestBroker(driver);
    try {
      const s = await login(noKey.app, 'admin', ADMIN_PASSWORD);
      const res = await noKey.app.inject({ method: 'POST', url: '/api/v1/auth-servers', headers: as(s), payload: radius() });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details.fields[0].path).toBe('STAGEDOOR_SECRET_KEY');
      expect((await tableCounts(noKey)).servers).toBe(0);
    } finally {
      await noKey.close();
    }
  });
});
