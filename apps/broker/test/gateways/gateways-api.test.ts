import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';

describe('gateway registry API', () => {
  let broker: TestBroker;
  let admin: Session;
  let operator: Session;
  let auditor: Session;

  beforeAll(async () => {
    broker = await createTestBroker('pglite');
    admin = await login(broker.app, 'admin', ADMIN_PASSWORD);
    for (const role of ['operator', 'auditor'] as const) {
      await broker.services.users.create(systemActor, { username: role, password: 'password-of-' + role, role, disabled: false, groupIds: [] });
    }
    operator = await login(broker.app, 'operator', 'password-of-operator');
    auditor = await login(broker.app, 'auditor', 'password-of-auditor');
  });
  afterAll(async () => broker?.close());

  it('enrolment: a token from the API turns into a registered gateway once; the list shows health, load and last seen', async () => {
    const created = await broker.app.inject({ method: 'POST', url: '/api/v1/gateways/enrollments', headers: as(operator), payload: { cluster: 'london', name: 'edge-lon-1', publicAddress: 'gw1.example.test', expiresInMinutes: 30 } });
    expect(created.statusCode).toBe(201);
    const { token, id } = created.json();
    expect(token).toMatch(/^sde_/);
    const body = { token, name: 'ignored-name', portRangeStart: 20000, portRangeEnd: 20999, version: '0.1.0' };
    const enrolled = await broker.app.inject({ method: 'POST', url: '/api/v1/gateways/enroll', payload: body });
    expect(enrolled.statusCode).toBe(201);
    expect(enrolled.json()).toMatchObject({ name: 'edge-lon-1', cluster: 'london', publicAddress: 'gw1.example.test' });
    expect(enrolled.json().credential).toMatch(/^sdg_/);
    expect((await broker.app.inject({ method: 'POST', url: '/api/v1/gateways/enroll', payload: body })).statusCode).toBe(401);
    const list = await broker.app.inject({ url: '/api/v1/gateways?cluster=london', headers: as(auditor) });
    expect(list.statusCode).toBe(200);
    expect(list.json().items[0]).toMatchObject({ name: 'edge-lon-1', status: 'enrolled', health: 'unknown', lastSeenAt: null, load: {}, liveGrants: 0, portRangeStart: 20000 });
    expect(JSON.stringify(list.json())).not.toContain('credential');
    const enrollments = await broker.app.inject({ url: '/api/v1/gateways/enrollments', headers: as(admin) });
    expect(enrollments.json().items.find((e: { id: string }) => e.id === id)).toMatchObject({ gatewayId: enrolled.json().gatewayId });
    expect(JSON.stringify(enrollments.json())).not.toContain(token);
  });

  it('admin and operator may disable, drain and delete; the auditor only reads; all of it is audited', async () => {
    const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster: 'default', publicAddress: 'x.example.test', expiresInMinutes: 5 });
    const { gateway } = await broker.services.gateways.enroll({ token, name: 'edge-x', portRangeStart: 21000, portRangeEnd: 21009 }, null);
    // Never connected: it cannot be made active by hand.
    expect((await broker.app.inject({ method: 'PATCH', url: `/api/v1/gateways/${gateway.id}`, headers: as(admin), payload: { status: 'active' } })).statusCode).toBe(409);
    const denied = await broker.app.inject({ method: 'PATCH', url: `/api/v1/gateways/${gateway.id}`, headers: as(auditor), payload: { status: 'disabled' } });
    expect(denied.statusCode).toBe(403);
    const disabled = await broker.app.inject({ method: 'PATCH', url: `/api/v1/gateways/${gateway.id}`, headers: as(operator), payload: { status: 'disabled' } });
    expect(disabled.statusCode).toBe(200);
    expect(disabled.json().status).toBe('disabled');
    const drained = await broker.app.inject({ method: 'PATCH', url: `/api/v1/gateways/${gateway.id}`, headers: as(admin), payload: { status: 'draining' } });
    expect(drained.json().status).toBe('draining');
    expect((await broker.app.inject({ method: 'PATCH', url: `/api/v1/gateways/${gateway.id}`, headers: as(admin), payload: { status: 'enrolled' } })).statusCode).toBe(400);
    expect((await broker.app.inject({ method: 'DELETE', url: `/api/v1/gateways/${gateway.id}`, headers: as(admin) })).statusCode).toBe(204);
    expect((await broker.app.inject({ url: `/api/v1/gateways/${gateway.id}`, headers: as(admin) })).statusCode).toBe(404);
    const audit = await broker.services.audit.list({ targetId: gateway.id }, 20, 0);
    expect(audit.items.map((i) => `${i.action}:${i.outcome}`)).toEqual(expect.arrayContaining(['gateway.enroll:success', 'gateway.disable:success', 'gateway.drain:success', 'gateway.delete:success']));
  });

  it('re-enrolment is an admin action on one gateway id; a moved address shows in the registry', async () => {
    const { token: first } = await broker.services.gateways.createEnrollment(systemActor, { cluster: 'paris', name: 'edge-par-1', publicAddress: 'par1.example.test', expiresInMinutes: 5 });
    const { gateway } = await broker.services.gateways.enroll({ token: first, name: 'edge-par-1', portRangeStart: 22000, portRangeEnd: 22009 }, null);
    const url = `/api/v1/gateways/${gateway.id}/reenrollments`;
    expect((await broker.app.inject({ method: 'POST', url, headers: as(auditor), payload: {} })).statusCode).toBe(403);
    expect((await broker.app.inject({ method: 'POST', url: '/api/v1/gateways/00000000-0000-4000-8000-000000000000/reenrollments', headers: as(admin), payload: {} })).statusCode).toBe(404);
    // A new-gateway token under an existing name is refused, pointing at this endpoint.
    const taken = await broker.app.inject({ method: 'POST', url: '/api/v1/gateways/enrollments', headers: as(operator), payload: { cluster: 'paris', name: 'edge-par-1', publicAddress: 'evil.example.test' } });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error.message).toContain(url);
    const created = await broker.app.inject({ method: 'POST', url, headers: as(operator), payload: { publicAddress: 'par1-new.example.test', expiresInMinutes: 10 } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ purpose: 'reenroll', gatewayId: gateway.id, name: 'edge-par-1', publicAddress: 'par1-new.example.test' });
    const enrolled = await broker.app.inject({ method: 'POST', url: '/api/v1/gateways/enroll', payload: { token: created.json().token, name: 'edge-par-1', portRangeStart: 22000, portRangeEnd: 22009 } });
    expect(enrolled.statusCode).toBe(201);
    expect(enrolled.json()).toMatchObject({ gatewayId: gateway.id, publicAddress: 'par1-new.example.test' });
    const shown = (await broker.app.inject({ url: `/api/v1/gateways/${gateway.id}`, headers: as(auditor) })).json();
    expect(shown).toMatchObject({ publicAddress: 'par1-new.example.test', previousPublicAddress: 'par1.example.test' });
    expect(shown.publicAddressChangedAt).toEqual(expect.any(String));
  });

  it('bad input gets a 4xx with a message, never a 500', async () => {
    const cases = [
      { method: 'POST' as const, url: '/api/v1/gateways/enrollments', payload: { cluster: 'Not A Cluster!' } },
      { method: 'POST' as const, url: '/api/v1/gateways/enrollments', payload: { expiresInMinutes: 0, publicAddress: 'gw.example.test' } },
      { method: 'POST' as const, url: '/api/v1/gateways/enrollments', payload: { cluster: 'default' } },
      { method: 'POST' as const, url: '/api/v1/gateways/enrollments', payload: { publicAddress: 'https://gw.example.test:443' } },
      { method: 'POST' as const, url: '/api/v1/gateways/00000000-0000-0000-0000-000000000000/reenrollments', payload: { publicAddress: 'not an address' } },
      { method: 'POST' as const, url: '/api/v1/gateways/not-a-uuid/reenrollments', payload: {} },
      { method: 'POST' as const, url: '/api/v1/gateways/enroll', payload: { token: 'x', name: 'a', publicAddress: 'b', portRangeStart: 30000, portRangeEnd: 20000 } },
      { method: 'POST' as const, url: '/api/v1/gateways/enroll', payload: { token: 'x', name: 'a', publicAddress: 'b', portRangeStart: 1, portRangeEnd: 70000 } },
      { method: 'POST' as const, url: '/api/v1/gateways/grants/00000000-0000-0000-0000-000000000000/revoke', payload: {} },
    ];
    for (const c of cases) {
      const res = await broker.app.inject({ ...c, headers: as(admin) });
      expect(res.statusCode, `${c.url} ${JSON.stringify(c.payload)}: ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      expect(res.json().error.message).toBeTruthy();
    }
  });

  it('the control channel and the registry are in the OpenAPI document', async () => {
    const spec = (await broker.app.inject('/api/v1/openapi.json')).json();
    for (const path of ['/api/v1/gateways', '/api/v1/gateways/{id}', '/api/v1/gateways/enrollments', '/api/v1/gateways/enroll', '/api/v1/gateways/channel', '/api/v1/gateways/grants', '/api/v1/gateways/grants/{id}/revoke', '/api/v1/gateways/{id}/reenrollments']) {
      expect(spec.paths[path], path).toBeDefined();
    }
  });
});
