import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';

/**
 * What the console's admin pages need from the API (issue 16 point 10): names next to ids
 * (policies, workstations, audit), a user's password set by an admin, group members listed and
 * edited, a user's API tokens listed and revoked. Each change is admin-only, audited, and refused
 * whole on bad input.
 */
describe.each(DRIVERS)('console admin API [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  let operator: Session;
  let ana: { id: string };
  let artists: { id: string };
  let pool: { id: string };
  let host: { id: string };
  const call = async (session: Session, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(session), payload: payload as never });
    return { status: res.statusCode, body: res.body ? res.json() : null };
  };
  const ok = async (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
    const res = await call(admin, method, url, payload);
    if (res.status >= 300) throw new Error(`${method} ${url} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const canSignIn = async (username: string, password: string) =>
    (await b.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } })).statusCode === 200;

  beforeAll(async () => {
    b = await createTestBroker(driver);
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'lab' });
    host = await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'lab-01', address: '10.20.30.41', tags: { lab: 'yes' } });
    artists = await ok('POST', '/api/v1/groups', { name: 'Artists' });
    ana = await ok('POST', '/api/v1/users', { username: 'ana', password: 'ana-password-1', displayName: 'Ana Artist', groupIds: [artists.id] });
    await ok('POST', '/api/v1/users', { username: 'otto', password: 'otto-password-1', role: 'operator' });
    operator = await login(b.app, 'otto', 'otto-password-1');
    pool = await ok('POST', '/api/v1/pools', { name: 'edit-suite', providerId: provider.id, membership: { tags: { lab: ['yes'] } } });
    await ok('POST', '/api/v1/policies', { name: 'artists', groupIds: [artists.id], pools: [{ poolId: pool.id }] });
  });
  afterAll(async () => b?.close());

  it('policies name their groups and pools', async () => {
    const [policy] = (await ok('GET', '/api/v1/policies')).items;
    expect(policy.groups).toEqual([{ id: artists.id, name: 'Artists' }]);
    expect(policy.pools).toEqual([{ poolId: pool.id, name: 'edit-suite', desktops: 1 }]);
    expect((await ok('GET', `/api/v1/policies/${policy.id}`)).groups).toEqual([{ id: artists.id, name: 'Artists' }]);
  });

  it('the workstation list names each machine\'s provider and the user it is assigned to', async () => {
    const before = (await ok('GET', '/api/v1/workstations')).items;
    expect(before).toMatchObject([{ id: host.id, provider: { name: 'lab', kind: 'static' }, assignedUser: null }]);
    const anaSession = await login(b.app, 'ana', 'ana-password-1');
    expect((await call(anaSession, 'POST', '/api/v1/connections', { poolId: pool.id })).status).toBe(201);
    const after = (await ok('GET', '/api/v1/workstations')).items;
    expect(after).toMatchObject([{ id: host.id, assignedUser: { id: ana.id, username: 'ana', displayName: 'Ana Artist' } }]);
  });

  it('an admin sets a user\'s password: argon2id, audited, and it ends their sessions; others get 403 and bad input 400, with nothing changed', async () => {
    const anaSession = await login(b.app, 'ana', 'ana-password-1');
    // An operator may not (identity is admin work), nor may a session without its CSRF token.
    const refused = await call(operator, 'POST', `/api/v1/users/${ana.id}/password`, { password: 'operator-chose-this' });
    expect(refused.status).toBe(403);
    const noCsrf = await b.app.inject({ method: 'POST', url: `/api/v1/users/${ana.id}/password`, headers: { cookie: admin.cookie }, payload: { password: 'no-csrf-password' } });
    expect(noCsrf.statusCode).toBe(403);
    // Too short, and an unknown field: 400 naming the field.
    const short = await call(admin, 'POST', `/api/v1/users/${ana.id}/password`, { password: 'short' });
    expect(short.status).toBe(400);
    expect(JSON.stringify(short.body.error.details)).toContain('password');
    expect((await call(admin, 'POST', `/api/v1/users/${ana.id}/password`, { password: 'long-enough-password', extra: 1 })).status).toBe(400);
    expect((await call(admin, 'POST', '/api/v1/users/00000000-0000-4000-8000-000000000000/password', { password: 'long-enough-password' })).status).toBe(404);
    expect(await canSignIn('ana', 'ana-password-1')).toBe(true);
    expect((await call(anaSession, 'GET', '/api/v1/me')).status).toBe(200);
    expect((await ok('GET', '/api/v1/audit?action=user.password_reset')).total).toBe(0);

    expect((await call(admin, 'POST', `/api/v1/users/${ana.id}/password`, { password: 'ana-new-password-2' })).status).toBe(204);
    expect(await canSignIn('ana', 'ana-password-1')).toBe(false);
    expect(await canSignIn('ana', 'ana-new-password-2')).toBe(true);
    expect((await call(anaSession, 'GET', '/api/v1/me')).status).toBe(401);
    const [row] = rowsOf<{ password_hash: string }>(await b.database.db.execute(sql`select password_hash from users where id = ${ana.id}`));
    expect(row!.password_hash).toMatch(/^\$argon2id\$/);
    const [audit] = (await ok('GET', '/api/v1/audit?action=user.password_reset')).items;
    expect(audit).toMatchObject({ actorName: 'admin', targetType: 'user', targetId: ana.id, targetName: 'ana', outcome: 'success' });
  });

  it('group members are listed from the users list, and only admins add or remove them (audited, names in the trail)', async () => {
    const members = async () => (await ok('GET', `/api/v1/users?groupId=${artists.id}&limit=500`)).items.map((u: { username: string }) => u.username);
    expect(await members()).toEqual(['ana']);
    const otto = (await ok('GET', '/api/v1/users?q=otto')).items[0];
    expect((await call(operator, 'PUT', `/api/v1/groups/${artists.id}/members/${otto.id}`)).status).toBe(403);
    expect((await call(admin, 'PUT', `/api/v1/groups/${artists.id}/members/00000000-0000-4000-8000-000000000000`)).status).toBe(400);
    expect((await call(admin, 'PUT', `/api/v1/groups/${artists.id}/members/not-a-uuid`)).status).toBe(400);
    expect((await call(admin, 'GET', '/api/v1/users?groupId=nope')).status).toBe(400);
    expect(await members()).toEqual(['ana']);

    expect((await call(admin, 'PUT', `/api/v1/groups/${artists.id}/members/${otto.id}`)).status).toBe(204);
    expect(await members()).toEqual(['ana', 'otto']);
    expect((await call(operator, 'DELETE', `/api/v1/groups/${artists.id}/members/${otto.id}`)).status).toBe(403);
    expect((await call(admin, 'DELETE', `/api/v1/groups/${artists.id}/members/${otto.id}`)).status).toBe(204);
    expect(await members()).toEqual(['ana']);
    const trail = (await ok('GET', '/api/v1/audit?action=group.member_*')).items;
    expect(trail.map((e: { action: string; targetName: string; subjectName: string }) => `${e.action} ${e.targetName} ${e.subjectName}`)).toEqual(['group.member_remove Artists otto', 'group.member_add Artists otto']);
  });

  it('an admin lists and revokes any user\'s API tokens; an operator can only read them', async () => {
    const anaSession = await login(b.app, 'ana', 'ana-new-password-2');
    const minted = (await call(anaSession, 'POST', '/api/v1/me/tokens', { name: 'render-farm' })).body;
    const listed = (await ok('GET', `/api/v1/users/${ana.id}/tokens`)).items;
    expect(listed).toMatchObject([{ id: minted.id, name: 'render-farm' }]);
    expect(JSON.stringify(listed)).not.toContain(minted.token);
    expect((await call(operator, 'GET', `/api/v1/users/${ana.id}/tokens`)).status).toBe(200);
    expect((await call(operator, 'DELETE', `/api/v1/users/${ana.id}/tokens/${minted.id}`)).status).toBe(403);
    expect((await call(admin, 'DELETE', `/api/v1/users/${ana.id}/tokens/not-a-uuid`)).status).toBe(400);
    const works = async () => (await b.app.inject({ url: '/api/v1/me', headers: { authorization: `Bearer ${minted.token}` } })).statusCode === 200;
    expect(await works()).toBe(true);
    expect((await call(admin, 'DELETE', `/api/v1/users/${ana.id}/tokens/${minted.id}`)).status).toBe(204);
    expect(await works()).toBe(false);
    expect((await ok('GET', `/api/v1/users/${ana.id}/tokens`)).items).toEqual([]);
    const [audit] = (await ok('GET', '/api/v1/audit?action=api_token.revoke')).items;
    expect(audit).toMatchObject({ actorName: 'admin', outcome: 'success' });
  });

  it('audit entries name their target: today\'s name, or the recorded one once the target is gone', async () => {
    await ok('PATCH', `/api/v1/groups/${artists.id}`, { name: 'Artists 2026' });
    const renamed = (await ok('GET', `/api/v1/audit?targetId=${artists.id}`)).items;
    expect(new Set(renamed.map((e: { targetName: string }) => e.targetName))).toEqual(new Set(['Artists 2026']));
    const temp = await ok('POST', '/api/v1/pools', { name: 'temp-pool', providerId: (await ok('GET', '/api/v1/providers')).items[0].id });
    await ok('DELETE', `/api/v1/pools/${temp.id}`);
    const gone = (await ok('GET', `/api/v1/audit?targetId=${temp.id}`)).items;
    expect(gone.map((e: { action: string; targetName: string }) => `${e.action} ${e.targetName}`)).toEqual(['pool.delete temp-pool', 'pool.create temp-pool']);
    // A target id that is no UUID (a source address) is no error: the name is just absent.
    const page = await call(admin, 'GET', '/api/v1/audit?limit=500');
    expect(page.status).toBe(200);
  });
});
