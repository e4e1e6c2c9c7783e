import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeFilterValue, namingContext } from '../../src/providers/directory/ldap.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { freePort } from '../../../../test/support/ports.ts';
import { startSlapd, type Slapd } from '../../../../test/support/directory/slapd.ts';
import { create, groupNames, hasSessionCookie, loginRaw, SECRET_KEY } from './helpers.ts';

const SUFFIX = 'dc=stagedoor,dc=test';
const BIND_PASSWORD = 'svc-Bind-pw-7c1e';

/** People, a service account, and groups where `vfx` contains the group `comp` (nesting). */
const LDIF = `dn: ${SUFFIX}
objectClass: dcObject
objectClass: organization
o: Stagedoor
dc: stagedoor

dn: ou=people,${SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: ou=services,${SUFFIX}
objectClass: organizationalUnit
ou: services

dn: cn=stagedoor,ou=services,${SUFFIX}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: stagedoor
userPassword: ${BIND_PASSWORD}

${['alice', 'bob', 'dave']
  .map(
    (u) => `dn: uid=${u},ou=people,${SUFFIX}
objectClass: inetOrgPerson
uid: ${u}
cn: ${u[0]!.toUpperCase()}${u.slice(1)} Example
sn: Example
mail: ${u}@stagedoor.test
userPassword: ${u}-ldap-pass
`,
  )
  .join('\n')}
dn: cn=comp,ou=groups,${SUFFIX}
objectClass: groupOfNames
cn: comp
member: uid=alice,ou=people,${SUFFIX}

dn: cn=vfx,ou=groups,${SUFFIX}
objectClass: groupOfNames
cn: vfx
member: cn=comp,ou=groups,${SUFFIX}

dn: cn=editors,ou=groups,${SUFFIX}
objectClass: groupOfNames
cn: editors
member: uid=bob,ou=people,${SUFFIX}
`;

describe('escaping LDAP filter values (RFC 4515)', () => {
  it.each([
    ['*)(uid=*', '\\2a\\29\\28uid=\\2a'],
    ['a\\b', 'a\\5cb'],
    ['nul\0', 'nul\\00'],
    ['plain.name@x', 'plain.name@x'],
  ])('%j → %j', (input, escaped) => expect(escapeFilterValue(input)).toBe(escaped));

  it('finds the naming context of a search base', () => {
    expect(namingContext('ou=people,dc=stagedoor,dc=test')).toBe('dc=stagedoor,dc=test');
    expect(namingContext('CN=Users,DC=ad,DC=example')).toBe('DC=ad,DC=example');
  });
});

describe('sign-in against OpenLDAP (slapd)', () => {
  let slapd: Slapd;
  let b: TestBroker;
  let admin: Session;
  let serverId: string;
  let deadUrl: string;
  const groups: Record<string, string> = {};

  beforeAll(async () => {
    slapd = await startSlapd({ suffix: SUFFIX, ldif: LDIF });
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    for (const name of ['Compositors', 'VFX', 'Editors']) groups[name] = (await create(b.app, admin, '/api/v1/groups', { name })).id;
    // The first URL has nothing listening: every login also proves the failover to the next one.
    deadUrl = `ldap://127.0.0.1:${await freePort()}`;
    const server = await create(b.app, admin, '/api/v1/auth-servers', {
      kind: 'ldap',
      name: 'studio-ldap',
      config: {
        urls: [deadUrl, slapd.url],
        startTls: true,
        caCertificate: slapd.ca.caPem,
        bindDn: `cn=stagedoor,ou=services,${SUFFIX}`,
        userSearchBase: `ou=people,${SUFFIX}`,
        userFilter: '(&(objectClass=inetOrgPerson)(uid={username}))',
        groupMembership: 'group-of-names',
        connectTimeoutMs: 2000,
      },
      bindPassword: BIND_PASSWORD,
      groupMappings: [
        { externalGroup: `cn=comp,ou=groups,${SUFFIX}`, groupId: groups.Compositors },
        { externalGroup: `CN=VFX, OU=Groups, ${SUFFIX.toUpperCase()}`, groupId: groups.VFX },
        { externalGroup: `cn=editors,ou=groups,${SUFFIX}`, groupId: groups.Editors },
      ],
    });
    serverId = server.id;
  });
  // The server first: it must go even if closing the broker hangs.
  afterAll(async () => {
    await slapd?.stop();
    await b?.close();
  });

  it('a directory user signs in with their LDAP password and gets the mapped groups, the nested one included', async () => {
    const res = await loginRaw(b.app, 'alice', 'alice-ldap-pass');
    expect(res.statusCode, res.body).toBe(200);
    expect(hasSessionCookie(res)).toBe(true);
    const user = res.json().user;
    expect(user).toMatchObject({ username: 'alice', displayName: 'Alice Example', email: 'alice@stagedoor.test', role: 'user', authServerId: serverId });
    // comp directly; vfx because comp is a member of vfx.
    expect(groupNames(res)).toEqual(['Compositors', 'VFX']);
    const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'success', actor: 'alice' }, 1, 0)).items;
    expect(audit!.details).toMatchObject({ authServer: 'studio-ldap', authServerId: serverId });
    expect(audit!.sourceAddress).toBe('127.0.0.1');
  });

  it('refreshes the mapped groups at each login, keeping groups given by hand', async () => {
    const local = await create(b.app, admin, '/api/v1/groups', { name: 'Hand-picked' });
    const alice = (await loginRaw(b.app, 'alice', 'alice-ldap-pass')).json().user;
    expect((await b.app.inject({ method: 'PUT', url: `/api/v1/groups/${local.id}/members/${alice.id}`, headers: as(admin) })).statusCode).toBe(204);
    slapd.modify(`dn: cn=comp,ou=groups,${SUFFIX}\nchangetype: modify\nreplace: member\nmember: uid=dave,ou=people,${SUFFIX}\n`);
    try {
      const res = await loginRaw(b.app, 'alice', 'alice-ldap-pass');
      expect(res.statusCode).toBe(200);
      expect(groupNames(res)).toEqual(['Hand-picked']);
      const dave = await loginRaw(b.app, 'dave', 'dave-ldap-pass');
      expect(groupNames(dave)).toEqual(['Compositors', 'VFX']);
    } finally {
      slapd.modify(`dn: cn=comp,ou=groups,${SUFFIX}\nchangetype: modify\nreplace: member\nmember: uid=alice,ou=people,${SUFFIX}\n`);
    }
    expect(groupNames(await loginRaw(b.app, 'alice', 'alice-ldap-pass'))).toEqual(['Compositors', 'Hand-picked', 'VFX']);
  });

  it('a wrong password fails with the same 401 as anyone else, audited with the server', async () => {
    const res = await loginRaw(b.app, 'alice', 'not-her-password');
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toMatchObject({ code: 'invalid_credentials', message: 'wrong username or password' });
    expect(hasSessionCookie(res)).toBe(false);
    const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'alice' }, 1, 0)).items;
    expect(audit).toMatchObject({ reason: 'wrong password', details: { authServer: 'studio-ldap' } });
  });

  it.each(['*)(uid=*', '*', 'alice)(|(uid=*', '*)(objectClass=*'])('%j as a username finds nobody', async (username) => {
    const res = await loginRaw(b.app, username, 'alice-ldap-pass');
    expect(res.statusCode).toBe(401);
    const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: username }, 1, 0)).items;
    expect(audit!.reason).toBe('unknown user');
  });

  it('a directory cannot take over a local user of the same name', async () => {
    await create(b.app, admin, '/api/v1/users', { username: 'bob', password: 'bobs-local-password' });
    expect((await loginRaw(b.app, 'bob', 'bob-ldap-pass')).statusCode).toBe(401);
    const res = await loginRaw(b.app, 'bob', 'bobs-local-password');
    expect(res.statusCode).toBe(200);
    expect(res.json().user.authServerId).toBeNull();
  });

  it('a user created by an admin without a password is linked at their first directory login, keeping their role', async () => {
    await create(b.app, admin, '/api/v1/users', { username: 'dave-2', role: 'operator' });
    slapd.modify(`dn: uid=dave2,ou=people,${SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: dave-2\ncn: Dave Two\nsn: Two\nuserPassword: dave2-pass\n`);
    const res = await loginRaw(b.app, 'dave-2', 'dave2-pass');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().user).toMatchObject({ username: 'dave-2', role: 'operator', authServerId: serverId });
  });

  it('the test endpoint reaches the directory and shows a user with their groups', async () => {
    const res = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${serverId}/test`, headers: as(admin), payload: { username: 'alice' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true, details: { url: slapd.url, user: { username: 'alice' } } });
    expect(res.json().details.mappedGroupIds.sort()).toEqual([groups.Compositors, groups.VFX].sort());
  });

  it('a refused service bind is a 503, not a failed password; the bind DN is in the admin test and the audit row, not in the answer to the user', async () => {
    await patch(b, admin, serverId, { bindPassword: 'wrong-bind-password' });
    try {
      const res = await loginRaw(b.app, 'alice', 'alice-ldap-pass');
      expect(res.statusCode).toBe(503);
      expect(res.json().error.message).toMatch(/sign-in is unavailable/);
      expect(res.body).not.toContain('cn=stagedoor');
      const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'alice' }, 1, 0)).items;
      expect(audit!.details.error).toMatch(/studio-ldap.*service bind as cn=stagedoor/);
      const test = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${serverId}/test`, headers: as(admin), payload: {} });
      expect(test.json()).toMatchObject({ ok: false, message: expect.stringMatching(/studio-ldap.*service bind/) });
    } finally {
      await patch(b, admin, serverId, { bindPassword: BIND_PASSWORD });
    }
  });

  it('an unreachable directory fails closed, never falls through to a weaker check, and tells an anonymous caller none of its URLs', async () => {
    const alice = (await loginRaw(b.app, 'alice', 'alice-ldap-pass')).json().user;
    // Even with a local password set, a directory user is only ever checked by their directory.
    expect((await b.app.inject({ method: 'POST', url: `/api/v1/users/${alice.id}/password`, headers: as(admin), payload: { password: 'a-local-password' } })).statusCode).toBe(204);
    const { config } = (await b.app.inject({ url: `/api/v1/auth-servers/${serverId}`, headers: as(admin) })).json();
    const otherDeadUrl = `ldap://127.0.0.1:${await freePort()}`;
    // A new URL: the stored bind password is only sent there when given again.
    await patch(b, admin, serverId, { config: { ...config, urls: [deadUrl, otherDeadUrl] }, bindPassword: BIND_PASSWORD });
    try {
      for (const [username, password] of [
        ['alice', 'alice-ldap-pass'],
        ['alice', 'a-local-password'],
        ['someone-new', 'whatever-password'],
      ]) {
        const res = await loginRaw(b.app, username!, password!);
        expect(res.statusCode).toBe(503);
        expect(res.json().error.code).toBe('unavailable');
        expect(res.json().error.message).toMatch(/sign-in is unavailable/);
        for (const secretish of [deadUrl, otherDeadUrl, '127.0.0.1', 'ldap://', 'studio-ldap']) expect(res.body).not.toContain(secretish);
        expect(hasSessionCookie(res)).toBe(false);
      }
      // The audit row and the admin's test say which URLs failed and why.
      const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'alice' }, 1, 0)).items;
      expect(audit).toMatchObject({ reason: 'auth server unavailable', sourceAddress: '127.0.0.1', details: { authServer: 'studio-ldap' } });
      expect(audit!.details.error).toContain('directory "studio-ldap" is unreachable');
      expect(audit!.details.error).toContain(deadUrl);
      const test = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${serverId}/test`, headers: as(admin), payload: {} });
      expect(test.json()).toMatchObject({ ok: false, message: expect.stringContaining(otherDeadUrl) });
    } finally {
      await patch(b, admin, serverId, { config, bindPassword: BIND_PASSWORD });
    }
    expect((await loginRaw(b.app, 'alice', 'alice-ldap-pass')).statusCode).toBe(200);
  });

  it('a server that accepts connections but never answers times out and the next URL is used', async () => {
    // A black hole: TCP connects, then silence (a hung DC, a half-open firewall).
    const sockets: net.Socket[] = [];
    const hole = net.createServer((c) => void sockets.push(c));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const holeUrl = `ldap://127.0.0.1:${(hole.address() as net.AddressInfo).port}`;
    try {
      const slow = await create(b.app, admin, '/api/v1/auth-servers', {
        kind: 'ldap',
        name: 'slow-ldap',
        enabled: false,
        config: { urls: [holeUrl, slapd.url], startTls: true, caCertificate: slapd.ca.caPem, bindDn: `cn=stagedoor,ou=services,${SUFFIX}`, userSearchBase: SUFFIX, userFilter: '(uid={username})', groupMembership: 'group-of-names', connectTimeoutMs: 300, searchTimeoutMs: 500 },
        bindPassword: BIND_PASSWORD,
      });
      const ok = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${slow.id}/test`, headers: as(admin), payload: { username: 'alice' } });
      expect(ok.json()).toMatchObject({ ok: true, details: { url: slapd.url, user: { username: 'alice' } } });
      const { config } = (await b.app.inject({ url: `/api/v1/auth-servers/${slow.id}`, headers: as(admin) })).json();
      await patch(b, admin, slow.id, { config: { ...config, urls: [holeUrl] } });
      const failed = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${slow.id}/test`, headers: as(admin), payload: {} });
      expect(failed.json()).toMatchObject({ ok: false, message: expect.stringMatching(new RegExp(`slow-ldap.*${holeUrl}.*time`, 'i')) });
    } finally {
      for (const c of sockets) c.destroy();
      hole.close();
    }
  });

  it('a Stagedoor-disabled directory user cannot sign in', async () => {
    const dave = (await loginRaw(b.app, 'dave', 'dave-ldap-pass')).json().user;
    await b.app.inject({ method: 'PATCH', url: `/api/v1/users/${dave.id}`, headers: as(admin), payload: { disabled: true } });
    expect((await loginRaw(b.app, 'dave', 'dave-ldap-pass')).statusCode).toBe(401);
    const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'dave' }, 1, 0)).items;
    expect(audit!.reason).toBe('account disabled');
  });

  it('never writes the bind password to a log line or an answer', async () => {
    const list = await b.app.inject({ url: '/api/v1/auth-servers', headers: as(admin) });
    expect(list.body).not.toContain(BIND_PASSWORD);
    expect(list.json().items[0]).toMatchObject({ secretSet: true });
    expect(b.logLines.join('\n')).not.toContain(BIND_PASSWORD);
    expect(b.logLines.join('\n')).not.toContain('wrong-bind-password');
  });
});

async function patch(b: TestBroker, admin: Session, id: string, payload: object): Promise<void> {
  const res = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${id}`, headers: as(admin), payload });
  expect(res.statusCode, res.body).toBe(200);
}
