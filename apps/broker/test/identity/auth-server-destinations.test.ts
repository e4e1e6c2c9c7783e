import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { makeTestCa } from '../../../../test/support/directory/tls.ts';
import { create, SECRET_KEY } from './helpers.ts';

type Config = Record<string, unknown>;

const BIND_PASSWORD = 'Bind-Secret-4be2a1';
const RADIUS_SECRET = 'Radius-Secret-90c3d7';

// Disabled: nothing here may reach out to these (made-up) hosts.
const ldapConfig = {
  urls: ['ldaps://dc1.corp.example', 'ldaps://dc2.corp.example'],
  bindDn: 'CN=svc-stagedoor,OU=Service,DC=corp,DC=example',
  userSearchBase: 'DC=corp,DC=example',
  userFilter: '(sAMAccountName={username})',
  groupMembership: 'ad-member-of',
};

/**
 * Bind passwords and RADIUS shared secrets are write-only: nobody can read them back. These tests
 * stop the way around that: pointing a server with a stored secret at a host of one's own, which
 * would then receive the secret at the next sign-in or connection test.
 */
describe.each(DRIVERS)('stored directory secrets only go where they were entered for [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  let n = 0;
  let ca: string;
  let otherCa: string;
  const patch = (id: string, payload: object) => b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${id}`, headers: as(admin), payload });
  const stored = async (id: string) => (await b.app.inject({ url: `/api/v1/auth-servers/${id}`, headers: as(admin) })).json();
  const auditCount = async () => rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from audit_events where action = 'auth_server.update'`))[0]!.n;
  const ldapServer = async (config: Record<string, unknown> = {}) =>
    create(b.app, admin, '/api/v1/auth-servers', { kind: 'ldap', name: `ad-${++n}`, enabled: false, config: { ...ldapConfig, ...config }, bindPassword: BIND_PASSWORD });

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-cas-'));
    fs.mkdirSync(path.join(dir, 'a'));
    fs.mkdirSync(path.join(dir, 'b'));
    ca = makeTestCa(path.join(dir, 'a'), { dns: ['dc1.corp.example'], ips: [] }).caPem;
    otherCa = makeTestCa(path.join(dir, 'b'), { dns: ['dc1.corp.example'], ips: [] }).caPem;
    fs.rmSync(dir, { recursive: true, force: true });
    b = await createTestBroker(driver, { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
  });
  afterAll(async () => b?.close());

  it('pointing an LDAP server at a new URL without typing the bind password again is refused and changes nothing (bind password sent to an attacker\'s host)', async () => {
    const ad = await ldapServer();
    const audits = await auditCount();
    const res = await patch(ad.id, { config: { ...(await stored(ad.id)).config, urls: ['ldaps://dc1.corp.example', 'ldaps://evil.example'] } });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().error.details.fields).toEqual([{ path: 'bindPassword', message: expect.stringMatching(/must be given again.*new URL ldaps:\/\/evil\.example/) }]);
    expect((await stored(ad.id)).config.urls).toEqual(ldapConfig.urls);
    expect(await auditCount()).toBe(audits);
    // Typed again, by someone who knows it: fine.
    const ok = await patch(ad.id, { config: { ...(await stored(ad.id)).config, urls: ['ldaps://dc3.corp.example'] }, bindPassword: BIND_PASSWORD });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it.each([
    ['another bind DN', (c: Config) => ({ ...c, bindDn: 'CN=attacker,DC=corp,DC=example' }), /another bind DN/],
    ['StartTLS turned off', (c: Config) => ({ ...c, startTls: false, allowInsecure: true }), /StartTLS turned off/],
    ['allowInsecure turned on', (c: Config) => ({ ...c, urls: ['ldaps://dc1.corp.example'], startTls: false, allowInsecure: true }), /new URL|allowInsecure turned on/],
    ['another CA certificate', (c: Config) => ({ ...c, caCertificate: otherCa }), /another CA certificate/],
    ['no CA certificate (the system CAs)', (c: Config) => ({ ...c, caCertificate: undefined }), /another CA certificate/],
  ])('%s needs the bind password again (a downgrade, or another identity to send it to)', async (_what, change, why) => {
    const ad = await ldapServer({ urls: ['ldap://dc1.corp.example'], startTls: true, caCertificate: ca });
    const config = change((await stored(ad.id)).config);
    const res = await patch(ad.id, { config });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().error.details.fields[0]).toMatchObject({ path: 'bindPassword', message: expect.stringMatching(why) });
    expect((await patch(ad.id, { config, bindPassword: BIND_PASSWORD })).statusCode).toBe(200);
  });

  it('removing or reordering URLs, or changing timeouts, keeps the stored bind password', async () => {
    const ad = await ldapServer();
    const config = (await stored(ad.id)).config;
    const res = await patch(ad.id, { config: { ...config, urls: [...config.urls].reverse().slice(0, 1), connectTimeoutMs: 2000 } });
    expect(res.statusCode, res.body).toBe(200);
    expect((await stored(ad.id)).secretSet).toBe(true);
  });

  it('pointing a RADIUS server at a new host or port without the shared secret again is refused (shared secret sent to an attacker\'s host)', async () => {
    const r = await create(b.app, admin, '/api/v1/auth-servers', { kind: 'radius', name: 'mfa', enabled: false, config: { servers: [{ host: '10.0.0.5' }] }, sharedSecret: RADIUS_SECRET });
    for (const servers of [[{ host: '10.66.6.6' }], [{ host: '10.0.0.5', port: 1645 }], [{ host: '10.0.0.5' }, { host: '10.66.6.6' }]]) {
      const res = await patch(r.id, { config: { ...(await stored(r.id)).config, servers } });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.details.fields[0]).toMatchObject({ path: 'sharedSecret', message: expect.stringContaining('must be given again') });
    }
    expect((await stored(r.id)).config.servers).toEqual([{ host: '10.0.0.5', port: 1812 }]);
    expect((await patch(r.id, { config: { ...(await stored(r.id)).config, timeoutMs: 5000 } })).statusCode).toBe(200);
    expect((await patch(r.id, { config: { ...(await stored(r.id)).config, servers: [{ host: '10.0.0.6' }] }, sharedSecret: RADIUS_SECRET })).statusCode).toBe(200);
  });

  it('stagedoor apply pointing a server at a new URL without the bind password in the file is refused, and nothing is written', async () => {
    const doc = (urls: string[], bindPassword?: string) => ({ authServers: [{ kind: 'ldap', name: 'site-ad', enabled: false, config: { ...ldapConfig, urls }, ...(bindPassword ? { bindPassword } : {}) }] });
    const apply = (document: unknown) => b.app.inject({ method: 'POST', url: '/api/v1/apply', headers: as(admin), payload: { document } });
    expect((await apply(doc(['ldaps://dc1.corp.example'], BIND_PASSWORD))).statusCode).toBe(200);
    // Secrets may be left out of a file once the server exists, but not to send them somewhere new.
    const res = await apply(doc(['ldaps://evil.example']));
    expect(res.statusCode, res.body).toBe(400);
    expect(JSON.stringify(res.json().error)).toMatch(/authServers\[0\]\.bindPassword.*must be given again/);
    const [row] = rowsOf<{ config: { urls: string[] } }>(await b.database.db.execute(sql`select config from auth_servers where name = 'site-ad'`));
    expect(row!.config.urls).toEqual(['ldaps://dc1.corp.example']);
  });

  it('plain ldap:// without StartTLS is refused unless allowInsecure is set explicitly', async () => {
    const plain = { kind: 'ldap', name: 'plain', enabled: false, config: { ...ldapConfig, urls: ['ldap://dc1.corp.example'] }, bindPassword: BIND_PASSWORD };
    const refused = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers', headers: as(admin), payload: plain });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.details.fields).toEqual([{ path: 'body.config.startTls', message: expect.stringMatching(/clear text.*allowInsecure/) }]);
    const allowed = await create(b.app, admin, '/api/v1/auth-servers', { ...plain, config: { ...plain.config, allowInsecure: true } });
    expect(allowed.config).toMatchObject({ allowInsecure: true, startTls: false });
    const tls = await create(b.app, admin, '/api/v1/auth-servers', { ...plain, name: 'plain-starttls', config: { ...plain.config, startTls: true } });
    expect(tls.config).toMatchObject({ allowInsecure: false, startTls: true });
  });

  it('a stored server on plain ldap:// without allowInsecure sends no password: refused before connecting', async () => {
    let connections = 0;
    const listener = net.createServer((c) => {
      connections++;
      c.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `ldap://127.0.0.1:${(listener.address() as net.AddressInfo).port}`;
      const s = await ldapServer({ urls: [url], allowInsecure: true });
      // As a row written before the setting existed, or by hand: no allowInsecure at all.
      await b.database.db.execute(sql`update auth_servers set config = config - 'allowInsecure' where id = ${s.id}`);
      const test = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${s.id}/test`, headers: as(admin), payload: {} });
      expect(test.json()).toMatchObject({ ok: false, message: expect.stringContaining('plain ldap:// without StartTLS is refused') });
      expect(connections).toBe(0);
    } finally {
      listener.close();
    }
  });
});
