import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSpKeyPair } from '../../src/domain/identity/saml/sp-key-pair.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { create, SECRET_KEY } from '../identity/helpers.ts';
import { readSiteFile } from '../../../cli/src/actions/apply.ts';
import { REPO_ROOT } from '../../../../test/support/processes.ts';

const BIND_PASSWORD = 'Bind-Secret-5d20aa';
const RADIUS_SECRET = 'Radius-Secret-c04e19';

/** A studio's sign-in as code. Listed MFA-last on purpose: apply creates second factors first. */
const site = (over: { bindPassword?: string; timeout?: number; mappedGroup?: string; mfaServer?: string } = {}) => ({
  groups: [{ name: 'Editors' }, { name: 'Freelancers' }],
  authServers: [
    {
      kind: 'ldap',
      name: 'hq-ad',
      // Disabled: nothing here may reach out to these (made-up) hosts.
      enabled: false,
      config: {
        urls: ['ldaps://dc1.corp.example'],
        bindDn: 'CN=svc-stagedoor,OU=Service,DC=corp,DC=example',
        userSearchBase: 'DC=corp,DC=example',
        userFilter: '(sAMAccountName={username})',
        groupMembership: 'ad-member-of',
        connectTimeoutMs: over.timeout ?? 5000,
      },
      bindPassword: over.bindPassword ?? BIND_PASSWORD,
      mfaServer: over.mfaServer ?? 'hq-radius',
      groupMappings: [{ externalGroup: 'CN=Editors,OU=Groups,DC=corp,DC=example', group: over.mappedGroup ?? 'Editors' }],
    },
    { kind: 'totp', name: 'hq-totp', requiredForGroups: ['Freelancers'] },
    { kind: 'radius', name: 'hq-radius', enabled: false, config: { servers: [{ host: '10.0.0.5' }] }, sharedSecret: RADIUS_SECRET },
  ],
});

describe.each(DRIVERS)('stagedoor apply: authServers [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  const apply = (document: unknown, session = admin, dryRun = false) => b.app.inject({ method: 'POST', url: '/api/v1/apply', headers: as(session), payload: { document, dryRun } });
  const counts = async () =>
    rowsOf<Record<string, number>>(
      await b.database.db.execute(sql`select (select count(*) from auth_servers)::int as servers, (select count(*) from auth_server_group_mappings)::int as mappings,
        (select count(*) from group_mfa_requirements)::int as reqs, (select count(*) from audit_events where action like 'auth_server.%')::int as audit`),
    )[0]!;

  beforeAll(async () => {
    b = await createTestBroker(driver, { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
  });
  afterAll(async () => b?.close());

  it('the documented example (docs/examples/sign-in.yaml) plans as written (a dry run, before anything exists)', async () => {
    const { spCertificate } = await generateSpKeyPair('example IdP');
    Object.assign(process.env, { AD_BIND_PASSWORD: 'example-bind', RADIUS_SECRET: 'example-radius', OKTA_CLIENT_SECRET: 'example-okta', IDP_SIGNING_CERT: spCertificate });
    const res = await apply(readSiteFile(path.join(REPO_ROOT, 'docs/examples/sign-in.yaml')), admin, true);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().changes.filter((c: { kind: string }) => c.kind === 'auth-server').map((c: { name: string; action: string }) => `${c.action} ${c.name}`)).toEqual(['create okta-radius', 'create authenticator', 'create corp-ad', 'create agency-okta', 'create okta-saml']);
  });

  it('a dry run plans every server and writes nothing', async () => {
    const before = await counts();
    const res = await apply(site(), admin, true);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().changes.filter((c: { kind: string }) => c.kind === 'auth-server')).toEqual([
      { kind: 'auth-server', name: 'hq-totp', action: 'create', fields: [] },
      { kind: 'auth-server', name: 'hq-radius', action: 'create', fields: [] },
      { kind: 'auth-server', name: 'hq-ad', action: 'create', fields: [] },
    ]);
    expect(await counts()).toEqual(before);
  });

  it('creates them with names resolved to ids and secrets sealed; a second apply changes nothing', async () => {
    const res = await apply(site());
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().summary).toMatchObject({ create: 5 });
    const servers = (await b.app.inject({ url: '/api/v1/auth-servers', headers: as(admin) })).json().items as Record<string, unknown>[];
    const byName = Object.fromEntries(servers.map((s) => [s.name, s])) as Record<string, Record<string, unknown>>;
    expect(byName['hq-ad']).toMatchObject({ kind: 'ldap', mfaServerId: byName['hq-radius']!.id, groupMappings: [{ externalGroup: 'cn=editors,ou=groups,dc=corp,dc=example', groupName: 'Editors' }] });
    expect(byName['hq-totp']).toMatchObject({ kind: 'totp', requiredForGroups: [{ name: 'Freelancers' }] });
    const raw = rowsOf<{ row: string }>(await b.database.db.execute(sql`select row_to_json(a)::text as row from auth_servers a`)).map((r) => r.row).join('\n');
    expect(raw).not.toContain(BIND_PASSWORD);
    expect(raw).not.toContain(RADIUS_SECRET);

    const before = await counts();
    const again = await apply(site());
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ applied: false, summary: { create: 0, update: 0, unchanged: 5 } });
    expect(await counts()).toEqual(before);
  });

  it('an update names exactly the fields that changed, a new secret included', async () => {
    const res = await apply(site({ timeout: 2500, bindPassword: `${BIND_PASSWORD}-rotated` }));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().changes.find((c: { name: string }) => c.name === 'hq-ad')).toEqual({ kind: 'auth-server', name: 'hq-ad', action: 'update', fields: ['config', 'bindPassword'] });
    const row = rowsOf<{ id: string; secret: string }>(await b.database.db.execute(sql`select id, secret_ciphertext as secret from auth_servers where name = 'hq-ad'`))[0]!;
    expect(JSON.parse(b.services.secrets.open(row.secret, `auth_servers:${row.id}`))).toEqual({ bindPassword: `${BIND_PASSWORD}-rotated` });
    expect(res.body).not.toContain(BIND_PASSWORD);
  });

  it('a group or server that does not exist is refused at its path in the file, and nothing changes', async () => {
    const before = await counts();
    const res = await apply(site({ mappedGroup: 'Colourists', mfaServer: 'duo' }));
    expect(res.statusCode).toBe(400);
    const paths = res.json().error.details.fields.map((f: { path: string }) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['authServers[0].groupMappings[0].group', 'authServers[0].mfaServer']));
    expect(await counts()).toEqual(before);
  });

  it('only admins apply a site file (auth servers hold directory secrets): an operator is refused and nothing changes', async () => {
    await create(b.app, admin, '/api/v1/users', { username: 'ops-apply', password: 'ops-apply-password', role: 'operator' });
    const operator = await login(b.app, 'ops-apply', 'ops-apply-password');
    const before = await counts();
    expect((await apply(site({ timeout: 1000 }), operator)).statusCode).toBe(403);
    expect(await counts()).toEqual(before);
  });
});
