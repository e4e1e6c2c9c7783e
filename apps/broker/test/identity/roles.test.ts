import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, type Role } from '@stagedoor/contract';
import { PERMISSIONS, roleHas, type Permission } from '../../src/domain/identity/permissions.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';

/**
 * Roles on every route, including routes added later: the table is `app.routeList` with the access
 * each route declares, so a new route is covered by being registered. Expectations come from what
 * the roles mean, not from the grant table under test:
 * admin may do everything; auditor reads and changes nothing; user holds no permission; operator
 * runs pools and workstations but never identity or auth config.
 */
const NOT_FOR_OPERATORS = new Set<string>(['users:write', 'groups:write', 'auth-servers:read', 'auth-servers:write']);

function expectedAllowed(role: Role, access: string, method: string): boolean {
  if (access === 'public' || access === 'user') return true;
  switch (role) {
    case 'admin':
      return true;
    case 'auditor':
      return method === 'GET' || method === 'HEAD';
    case 'user':
      return false;
    case 'operator':
      return !NOT_FOR_OPERATORS.has(access) && roleHas('operator', access as Permission);
  }
}

describe('roles on every route', () => {
  let b: TestBroker;
  const sessions = {} as Record<Role, Session>;
  let routes: { method: string; url: string; access: string; stream: boolean }[];

  beforeAll(async () => {
    b = await createTestBroker('pglite');
    sessions.admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    for (const role of ROLES.filter((r) => r !== 'admin')) {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(sessions.admin), payload: { username: `role-${role}`, password: `password-${role}`, role } });
      expect(res.statusCode).toBe(201);
      sessions[role] = await login(b.app, `role-${role}`, `password-${role}`);
    }
    routes = b.app.routeList
      .filter((r) => r.url.startsWith('/api/') && r.method !== 'HEAD' && r.method !== 'OPTIONS')
      .map((r) => ({ method: r.method, url: r.url, access: r.access ?? 'users:write', stream: r.stream }));
  });
  afterAll(async () => b?.close());

  it('every API route declares its access, and every permission is a known one', () => {
    expect(routes.length).toBeGreaterThan(30);
    for (const r of b.app.routeList.filter((x) => x.url.startsWith('/api/'))) {
      expect(r.access, `${r.method} ${r.url} declares config.access`).toBeDefined();
      if (r.access !== 'public' && r.access !== 'user') expect(PERMISSIONS as readonly string[], `${r.method} ${r.url}`).toContain(r.access);
    }
    // Changes never hide behind a read permission (auditors would get them).
    for (const r of routes.filter((x) => x.method !== 'GET' && x.access.endsWith(':read'))) expect.fail(`${r.method} ${r.url} changes something with ${r.access}`);
    // The grant table agrees with what the roles mean.
    for (const p of PERMISSIONS) {
      expect(roleHas('admin', p)).toBe(true);
      expect(roleHas('user', p)).toBe(false);
      expect(roleHas('auditor', p), `auditor ${p}`).toBe(p.endsWith(':read'));
      if (NOT_FOR_OPERATORS.has(p)) expect(roleHas('operator', p), `operator ${p}`).toBe(false);
    }
  });

  it('each role gets exactly the routes it should: 403 otherwise, audited as denied', async () => {
    const problems: string[] = [];
    let checked = 0;
    for (const route of routes) {
      if (route.access === 'public') continue;
      // A stream stays open once allowed; which roles get one is checked by its own tests.
      if (route.stream) continue;
      const url = route.url.replace(/:\w+/g, () => randomUUID());
      for (const role of ROLES) {
        // Requests that would act on the caller's own session are skipped for roles whose session the next role needs.
        if (route.url === '/api/v1/auth/logout-all') continue;
        const res = await b.app.inject({ method: route.method as 'GET', url, headers: as(sessions[role]), ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }) });
        const allowed = expectedAllowed(role, route.access, route.method);
        const denied = res.statusCode === 403 && res.json().error.code === 'forbidden';
        if (res.statusCode === 401) problems.push(`${role} ${route.method} ${route.url}: 401 ${res.body}`);
        else if (allowed === denied) problems.push(`${role} ${route.method} ${route.url} (${route.access}): expected ${allowed ? 'allowed' : '403'}, got ${res.statusCode} ${res.body.slice(0, 200)}`);
        checked++;
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(100);
    const denied = await b.services.audit.list({ action: 'authz.denied', actor: 'role-auditor' }, 500, 0);
    expect(denied.items.length).toBeGreaterThan(5);
    expect(denied.items.every((a) => a.outcome === 'denied')).toBe(true);
  });

  it('an anonymous caller gets 401 on every route that needs a signed-in user', async () => {
    for (const route of routes.filter((r) => r.access !== 'public')) {
      const res = await b.app.inject({ method: route.method as 'GET', url: route.url.replace(/:\w+/g, () => randomUUID()), ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }) });
      expect(res.statusCode, `${route.method} ${route.url}`).toBe(401);
    }
  });
});
