import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { AD_BASE, startSambaDc, type SambaDc } from '../../../../test/support/directory/samba-ad.ts';
import { create, groupNames, hasSessionCookie, loginRaw, SECRET_KEY } from './helpers.ts';

const AD_ADMIN_PASSWORD = 'Dc-Admin-Pass-2024!';
const SVC_PASSWORD = 'Svc-Bind-Pass-9x!';

/**
 * Sign-in against a real Active Directory: a Samba AD DC provisioned once for this file (about ten
 * seconds), reached over LDAPS with the certificate of the DC's CA.
 */
describe('sign-in against Active Directory (Samba AD DC)', () => {
  let dc: SambaDc;
  let b: TestBroker;
  let admin: Session;
  let serverId: string;
  const groups: Record<string, string> = {};

  const settings = (over: Record<string, unknown> = {}) => ({
    urls: [dc.ldapsUrl],
    caCertificate: dc.ca.caPem,
    bindDn: `CN=svc-stagedoor,CN=Users,${AD_BASE}`,
    userSearchBase: AD_BASE,
    userFilter: '(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))',
    groupMembership: 'ad-member-of',
    ...over,
  });

  beforeAll(async () => {
    dc = await startSambaDc(
      {
        users: [
          { name: 'svc-stagedoor', password: SVC_PASSWORD },
          { name: 'alice', password: 'Alice-Pass-123', given: 'Alice', surname: 'Liddell' },
          { name: 'bob', password: 'Bob-Pass-1234', disabled: true },
          { name: 'carol', password: 'Carol-Pass-123' },
        ],
        // Post ⊃ Editors ⊃ alice: alice is in Post only through nesting.
        groups: [
          { name: 'Editors', members: ['alice'] },
          { name: 'Post', members: ['Editors'] },
          { name: 'Colorists', members: ['carol'] },
        ],
      },
      AD_ADMIN_PASSWORD,
    );
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    for (const name of ['Editors', 'Post Production']) groups[name] = (await create(b.app, admin, '/api/v1/groups', { name })).id;
    const server = await create(b.app, admin, '/api/v1/auth-servers', {
      kind: 'ldap',
      name: 'corp-ad',
      config: settings(),
      bindPassword: SVC_PASSWORD,
      groupMappings: [
        { externalGroup: `CN=Editors,CN=Users,${AD_BASE}`, groupId: groups.Editors },
        { externalGroup: `cn=post,cn=users,${AD_BASE.toLowerCase()}`, groupId: groups['Post Production'] },
      ],
    });
    serverId = server.id;
  }, 480_000); // provisioning an AD domain: seconds on an idle machine, three minutes at load average 25
  // The DC first: it must go even if closing the broker hangs.
  afterAll(async () => {
    await dc?.stop();
    await b?.close();
  });

  it('signs in by sAMAccountName over LDAPS, with the nested AD group mapped', async () => {
    const res = await loginRaw(b.app, 'alice', 'Alice-Pass-123');
    expect(res.statusCode, res.body).toBe(200);
    expect(hasSessionCookie(res)).toBe(true);
    expect(res.json().user).toMatchObject({ username: 'alice', displayName: 'Alice Liddell', authServerId: serverId });
    expect(groupNames(res)).toEqual(['Editors', 'Post Production']);
  });

  it('signs in by userPrincipalName as the same Stagedoor user', async () => {
    const bySam = (await loginRaw(b.app, 'alice', 'Alice-Pass-123')).json().user;
    const res = await loginRaw(b.app, 'alice@ad.stagedoor.test', 'Alice-Pass-123');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().user).toMatchObject({ id: bySam.id, username: 'alice' });
    expect(groupNames(res)).toEqual(['Editors', 'Post Production']);
  });

  it('a user in no mapped group signs in with no groups', async () => {
    const res = await loginRaw(b.app, 'CAROL', 'Carol-Pass-123');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().user.username).toBe('carol');
    expect(groupNames(res)).toEqual([]);
  });

  it('a disabled AD account fails, with or without the right password', async () => {
    for (const password of ['Bob-Pass-1234', 'not-the-password']) {
      const res = await loginRaw(b.app, 'bob', password);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('invalid_credentials');
    }
    const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'bob' }, 1, 0)).items;
    expect(audit).toMatchObject({ reason: 'account disabled in the directory', details: { authServer: 'corp-ad' } });
  });

  it('a wrong password fails, and the AD reason is audited', async () => {
    const res = await loginRaw(b.app, 'alice@ad.stagedoor.test', 'Wrong-Pass-123');
    expect(res.statusCode).toBe(401);
    const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'alice@ad.stagedoor.test' }, 1, 0)).items;
    expect(audit).toMatchObject({ reason: 'wrong password', details: { authServer: 'corp-ad', username: 'alice' } });
  });

  it('StartTLS on ldap:// works with the same CA', async () => {
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers', headers: as(admin), payload: { kind: 'ldap', name: 'corp-ad-starttls', enabled: false, config: settings({ urls: [dc.ldapUrl], startTls: true }), bindPassword: SVC_PASSWORD } });
    expect(res.statusCode, res.body).toBe(201);
    const test = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${res.json().id}/test`, headers: as(admin), payload: { username: 'alice@ad.stagedoor.test' } });
    expect(test.json(), test.body).toMatchObject({ ok: true, details: { url: dc.ldapUrl, user: { username: 'alice' } } });
    expect(test.json().details.user.groups.map((g: string) => g.split(',')[0]).sort()).toEqual(['CN=Editors', 'CN=Post']);
  });

  it('without the DC CA the certificate is refused: a clear error and no login', async () => {
    const { caCertificate: _ca, ...withoutCa } = settings();
    // Another CA: the bind password is only sent again when given again.
    const patch = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${serverId}`, headers: as(admin), payload: { config: withoutCa, bindPassword: SVC_PASSWORD } });
    expect(patch.statusCode, patch.body).toBe(200);
    try {
      const res = await loginRaw(b.app, 'alice', 'Alice-Pass-123');
      expect(res.statusCode).toBe(503);
      expect(res.body).not.toContain(dc.ldapsUrl);
      expect(hasSessionCookie(res)).toBe(false);
      const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'alice' }, 1, 0)).items;
      expect(audit!.details.error).toMatch(/corp-ad.*certificate/);
    } finally {
      await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${serverId}`, headers: as(admin), payload: { config: settings(), bindPassword: SVC_PASSWORD } });
    }
    expect((await loginRaw(b.app, 'alice', 'Alice-Pass-123')).statusCode).toBe(200);
  });

  it('never writes the bind password to a log line or an answer', async () => {
    const res = await b.app.inject({ url: `/api/v1/auth-servers/${serverId}`, headers: as(admin) });
    expect(res.body).not.toContain(SVC_PASSWORD);
    expect(b.logLines.join('\n')).not.toContain(SVC_PASSWORD);
  });
});
