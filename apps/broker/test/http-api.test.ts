import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../test/support/broker.ts';
import { DRIVERS } from '../../../test/support/database.ts';

async function counts(b: TestBroker) {
  const r = await b.database.db.execute(
    sql`select (select count(*) from users)::int as users, (select count(*) from groups)::int as groups, (select count(*) from audit_events)::int as audit, (select count(*) from sessions)::int as sessions`,
  );
  return rowsOf<{ users: number; groups: number; audit: number; sessions: number }>(r)[0]!;
}

const METRICS_TOKEN = 'metrics-token-for-tests-5b1c';

describe.each(DRIVERS)('HTTP API [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  beforeAll(async () => {
    b = await createTestBroker(driver, { env: { STAGEDOOR_METRICS_TOKEN: METRICS_TOKEN } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
  });
  afterAll(async () => b?.close());

  describe('system endpoints', () => {
    it('healthz and readyz answer 200; readyz names the driver and migrations', async () => {
      expect((await b.app.inject('/healthz')).json()).toEqual({ status: 'ok' });
      const ready = await b.app.inject('/readyz');
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toMatchObject({ status: 'ready', database: { driver, reachable: true, migrations: { upToDate: true } } });
    });

    it('metrics are Prometheus text with the HTTP histogram, the pool and job runs', async () => {
      const res = await b.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toContain('text/plain');
      expect(res.body).toContain('# TYPE stagedoor_http_request_duration_seconds histogram');
      expect(res.body).toMatch(/stagedoor_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} \d+/);
      expect(res.body).toContain('stagedoor_db_pool_connections');
      expect(res.body).toContain('# TYPE stagedoor_job_runs_total counter');
    });

    it('the OpenAPI document is version 3 and covers every route with its schemas', async () => {
      const res = await b.app.inject('/api/v1/openapi.json');
      expect(res.statusCode).toBe(200);
      const spec = res.json();
      expect(spec.openapi).toMatch(/^3\./);
      const apiRoutes = b.app.routeList.filter((r) => r.method !== 'HEAD' && !(r.method === 'GET' && (r.url === '/' || r.url.startsWith('/*') || r.url.includes('.'))));
      expect(apiRoutes.length).toBeGreaterThan(15);
      for (const r of apiRoutes) {
        const path = r.url.replace(/:(\w+)/g, '{$1}');
        const op = spec.paths[path]?.[r.method.toLowerCase()];
        expect(op, `${r.method} ${r.url} in the OpenAPI document`).toBeDefined();
        expect(Object.keys(op.responses ?? {}).length, `${r.method} ${r.url} has response schemas`).toBeGreaterThan(0);
        expect(op.requestBody !== undefined, `${r.method} ${r.url} request body schema`).toBe(r.body);
        const inPath = (op.parameters ?? []).filter((p: { in: string }) => p.in === 'path').length;
        expect(inPath > 0, `${r.method} ${r.url} path parameter schema`).toBe(r.params);
        if (r.query) expect((op.parameters ?? []).some((p: { in: string }) => p.in === 'query'), `${r.method} ${r.url} query schema`).toBe(true);
      }
    });
  });

  describe('sign-in', () => {
    it('login answers 200 with an HttpOnly SameSite cookie that /me accepts', async () => {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } });
      expect(res.statusCode).toBe(200);
      const cookie = res.cookies.find((c) => c.name === 'stagedoor_session')!;
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
      expect(cookie.secure).toBeFalsy();
      const me = await b.app.inject({ url: '/api/v1/me', headers: { cookie: `stagedoor_session=${cookie.value}` } });
      expect(me.statusCode).toBe(200);
      expect(me.json()).toMatchObject({ user: { username: 'admin', role: 'admin' }, authenticatedBy: 'session', csrfToken: res.json().csrfToken });
    });

    it('marks the cookie Secure when the user came over HTTPS through a trusted proxy', async () => {
      const b2 = await createTestBroker('pglite', { env: { STAGEDOOR_TRUSTED_PROXIES: '127.0.0.1' } });
      try {
        const res = await b2.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '198.51.100.9' }, payload: { username: 'admin', password: ADMIN_PASSWORD } });
        expect(res.cookies.find((c) => c.name === 'stagedoor_session')?.secure).toBe(true);
        const [row] = await b2.services.audit.list({ action: 'auth.login' }, 1, 0).then((p) => p.items);
        expect(row!.sourceAddress).toBe('198.51.100.9');
      } finally {
        await b2.close();
      }
    });

    it('a wrong password, an unknown user and a disabled user all get the same 401, each audited with its reason', async () => {
      await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: 'gone', password: 'password-gone', disabled: true } });
      for (const [username, password, reason] of [
        ['admin', 'wrong-password', 'wrong password'],
        ['nobody', 'whatever-it-is', 'unknown user'],
        ['gone', 'password-gone', 'account disabled'],
      ] as const) {
        const res = await b.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });
        expect(res.statusCode).toBe(401);
        expect(res.json()).toEqual({ error: { code: 'invalid_credentials', message: 'wrong username or password', requestId: expect.any(String) } });
        expect(res.cookies).toHaveLength(0);
        const audit = await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: username }, 5, 0);
        expect(audit.items.map((a) => a.reason)).toContain(reason);
      }
    });

    it('logout ends the session; the cookie no longer works', async () => {
      const s = await login(b.app, 'admin', ADMIN_PASSWORD);
      expect((await b.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: as(s) })).statusCode).toBe(204);
      const me = await b.app.inject({ url: '/api/v1/me', headers: { cookie: s.cookie } });
      expect(me.statusCode).toBe(401);
      expect(me.json().error.code).toBe('unauthenticated');
    });

    it('never writes a password to the log', async () => {
      expect(b.logLines.join('\n')).not.toContain(ADMIN_PASSWORD);
      expect(b.logLines.join('\n')).not.toContain('wrong-password');
    });
  });

  describe('CSRF and API tokens', () => {
    it('refuses a cookie-authenticated change without the CSRF token, and writes nothing', async () => {
      const before = await counts(b);
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: { cookie: admin.cookie }, payload: { username: 'csrf-victim', password: 'password-123' } });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('csrf_failed');
      const wrong = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: { cookie: admin.cookie, 'x-csrf-token': 'guess' }, payload: { username: 'csrf-victim', password: 'password-123' } });
      expect(wrong.statusCode).toBe(403);
      expect(await counts(b)).toEqual(before);
    });

    it('a bearer API token works without CSRF, is stored hashed, and stops working when revoked', async () => {
      const created = await b.app.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: as(admin), payload: { name: `ci-${driver}` } });
      expect(created.statusCode).toBe(201);
      const { token, id, prefix } = created.json();
      expect(token).toMatch(/^sdt_/);
      expect(token.startsWith(prefix)).toBe(true);
      const stored = rowsOf<{ token_hash: string }>(await b.database.db.execute(sql`select token_hash from api_tokens where id = ${id}`));
      expect(stored[0]!.token_hash).not.toContain(token.slice(4));
      const auth = { authorization: `Bearer ${token}` };
      expect((await b.app.inject({ url: '/api/v1/me', headers: auth })).json()).toMatchObject({ authenticatedBy: 'token', csrfToken: null });
      const made = await b.app.inject({ method: 'POST', url: '/api/v1/groups', headers: auth, payload: { name: `made-by-token-${driver}` } });
      expect(made.statusCode).toBe(201);
      const list = await b.app.inject({ url: '/api/v1/me/tokens', headers: auth });
      expect(JSON.stringify(list.json())).not.toContain(token);
      expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/me/tokens/${id}`, headers: auth })).statusCode).toBe(204);
      expect((await b.app.inject({ url: '/api/v1/me', headers: auth })).statusCode).toBe(401);
    });
  });

  describe('bad input gets a 4xx JSON error with a message and writes nothing', () => {
    const cases: [string, () => { method: 'POST' | 'GET' | 'PATCH'; url: string; payload?: string | object; headers?: Record<string, string> }, number, RegExp][] = [
      ['malformed JSON', () => ({ method: 'POST', url: '/api/v1/users', payload: '{"username": "x",', headers: { ...as(admin), 'content-type': 'application/json' } }), 400, /not valid JSON/],
      ['a wrong type', () => ({ method: 'POST', url: '/api/v1/users', payload: { username: 'typo', password: 12345678 }, headers: as(admin) }), 400, /body\.password/],
      ['a missing field', () => ({ method: 'POST', url: '/api/v1/users', payload: { password: 'password-123' }, headers: as(admin) }), 400, /body\.username/],
      ['an unknown field', () => ({ method: 'POST', url: '/api/v1/users', payload: { username: 'extra', password: 'password-123', isRoot: true }, headers: as(admin) }), 400, /isRoot/],
      ['a bad enum value', () => ({ method: 'POST', url: '/api/v1/users', payload: { username: 'rolly', role: 'god' }, headers: as(admin) }), 400, /body\.role/],
      ['a 10 MB body', () => ({ method: 'POST', url: '/api/v1/users', payload: JSON.stringify({ username: 'big', displayName: 'x'.repeat(10 * 1024 * 1024) }), headers: { ...as(admin), 'content-type': 'application/json' } }), 413, /larger than/],
      ['a non-JSON content type', () => ({ method: 'POST', url: '/api/v1/users', payload: 'username=x', headers: { ...as(admin), 'content-type': 'application/x-www-form-urlencoded' } }), 415, /Content-Type/],
      ['an unknown route', () => ({ method: 'GET', url: '/api/v1/nope' }), 404, /no route for GET \/api\/v1\/nope/],
      ['an admin route without a session', () => ({ method: 'POST', url: '/api/v1/users', payload: { username: 'anon', password: 'password-123' } }), 401, /sign in/],
      ['a bad id in the path', () => ({ method: 'PATCH', url: '/api/v1/users/not-a-uuid', payload: { disabled: true }, headers: as(admin) }), 400, /params\.id/],
      ['a bad query parameter', () => ({ method: 'GET', url: '/api/v1/users?limit=100000', headers: as(admin) }), 400, /querystring\.limit/],
      ['a login with an extra field', () => ({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD, remember: true } }), 400, /remember/],
    ];
    it.each(cases)('%s', async (_name, request, status, message) => {
      const before = await counts(b);
      const res = await b.app.inject(request());
      expect(res.statusCode).toBe(status);
      expect(res.headers['content-type']).toContain('application/json');
      const body = res.json();
      expect(body.error.message).toMatch(message);
      expect(body.error.requestId).toBe(res.headers['x-request-id']);
      expect(typeof body.error.code).toBe('string');
      expect(await counts(b)).toEqual(before);
    });
  });

  describe('users, groups and roles', () => {
    const people: Record<string, Session> = {};
    beforeAll(async () => {
      for (const role of ['operator', 'auditor', 'user'] as const) {
        const res = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: `${role}-1`, password: `password-${role}`, role } });
        expect(res.statusCode).toBe(201);
        people[role] = await login(b.app, `${role}-1`, `password-${role}`);
      }
    });

    it.each([
      ['admin', 200, 201],
      ['operator', 200, 403],
      ['auditor', 200, 403],
      ['user', 403, 403],
    ])('%s: list users → %i, create user → %i', async (role, listStatus, createStatus) => {
      const s = role === 'admin' ? admin : people[role]!;
      expect((await b.app.inject({ url: '/api/v1/users', headers: as(s) })).statusCode).toBe(listStatus);
      const create = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(s), payload: { username: `made-by-${role}`, password: 'password-123' } });
      expect(create.statusCode).toBe(createStatus);
      if (createStatus === 403) {
        expect(create.json().error.message).toContain(`your role (${role})`);
        const denied = await b.services.audit.list({ action: 'authz.denied', actor: `${role}-1` }, 10, 0);
        expect(denied.items.some((a) => a.targetId === 'POST /api/v1/users')).toBe(true);
      }
    });

    it('every user can see themselves; only admins reach the audit log and auditors read it', async () => {
      expect((await b.app.inject({ url: '/api/v1/me', headers: as(people.user!) })).statusCode).toBe(200);
      expect((await b.app.inject({ url: '/api/v1/audit', headers: as(people.user!) })).statusCode).toBe(403);
      const audit = await b.app.inject({ url: '/api/v1/audit?action=user.*&limit=5', headers: as(people.auditor!) });
      expect(audit.statusCode).toBe(200);
      expect(audit.json().items.every((a: { action: string }) => a.action.startsWith('user.'))).toBe(true);
    });

    it('creates a group with members, shows it on the user, and audits each change', async () => {
      const g = await b.app.inject({ method: 'POST', url: '/api/v1/groups', headers: as(admin), payload: { name: 'Editors', description: 'GPU editing', memberIds: [people.user!.userId] } });
      expect(g.statusCode).toBe(201);
      expect(g.json()).toMatchObject({ name: 'Editors', memberCount: 1 });
      const dup = await b.app.inject({ method: 'POST', url: '/api/v1/groups', headers: as(admin), payload: { name: 'editors' } });
      expect(dup.statusCode).toBe(409);
      const user = await b.app.inject({ url: `/api/v1/users/${people.user!.userId}`, headers: as(admin) });
      expect(user.json().groups).toEqual([{ id: g.json().id, name: 'Editors' }]);
      const put = await b.app.inject({ method: 'PUT', url: `/api/v1/groups/${g.json().id}/members/${people.operator!.userId}`, headers: as(admin) });
      expect(put.statusCode).toBe(204);
      expect((await b.app.inject({ url: `/api/v1/groups/${g.json().id}`, headers: as(admin) })).json().memberCount).toBe(2);
      const trail = await b.services.audit.list({ action: 'group.*', targetId: g.json().id }, 10, 0);
      expect(trail.items.map((a) => a.action).sort()).toEqual(['group.create', 'group.member_add']);
    });

    it('refuses an unknown group id on a user, naming the field, and writes nothing', async () => {
      const before = await counts(b);
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: 'orphan', groupIds: ['00000000-0000-4000-8000-000000000000'] } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details.fields[0].path).toBe('groupIds[0]');
      expect(await counts(b)).toEqual(before);
    });

    it('keeps at least one enabled admin', async () => {
      const res = await b.app.inject({ method: 'PATCH', url: `/api/v1/users/${admin.userId}`, headers: as(admin), payload: { role: 'user' } });
      expect(res.statusCode).toBe(409);
      expect(res.json().error.message).toContain('last enabled admin');
    });

    it('a password reset ends the user\'s sessions and the new password works', async () => {
      const victim = people.operator!;
      const res = await b.app.inject({ method: 'POST', url: `/api/v1/users/${victim.userId}/password`, headers: as(admin), payload: { password: 'a-brand-new-one' } });
      expect(res.statusCode).toBe(204);
      expect((await b.app.inject({ url: '/api/v1/me', headers: as(victim) })).statusCode).toBe(401);
      people.operator = await login(b.app, 'operator-1', 'a-brand-new-one');
    });

    it('a duplicate username (any case) is a 409', async () => {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: 'ADMIN', password: 'password-123' } });
      expect(res.statusCode).toBe(409);
    });
  });
});

describe('the web app placeholder', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await createTestBroker('pglite');
  });
  afterAll(async () => b?.close());

  it('is served at / without a session, with a Content-Security-Policy', async () => {
    const res = await b.app.inject('/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('Stagedoor');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
  });

  it('a text/plain body (what a cross-site form can send) is refused with 415', async () => {
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
    expect(res.statusCode).toBe(415);
    expect(res.cookies).toHaveLength(0);
  });
});
