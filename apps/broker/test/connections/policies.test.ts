import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { bearer, mintUsers, type MintedUser } from '../../../../test/support/studio.ts';

describe.each(DRIVERS)('policies decide who gets what [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  let editor: MintedUser, assistant: MintedUser, outsider: MintedUser;
  const ids: Record<string, string> = {};

  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'PUT', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };

  beforeAll(async () => {
    b = await createTestBroker(driver);
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const provider = await call('POST', '/api/v1/providers', { kind: 'static', name: 'racks' });
    await call('POST', `/api/v1/providers/${provider.id}/hosts/import`, {
      csv: 'name,address,protocols,tags\ngpu-1,10.0.0.1,rdp;dcv,tier=gpu\ngpu-2,10.0.0.2,rdp;dcv,tier=gpu\ncpu-1,10.0.1.1,rdp,tier=cpu\ncpu-2,10.0.1.2,rdp,tier=cpu\n',
    });
    for (const tier of ['gpu', 'cpu']) {
      const pool = await call('POST', '/api/v1/pools', { name: `${tier}-pool`, providerId: provider.id, membership: { tags: { tier: [tier] } } });
      await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
      ids[tier] = pool.id;
    }
    const [e] = await mintUsers(b.database, 1, 'editor', 'Editors');
    const [a] = await mintUsers(b.database, 1, 'assistant', 'Assistants');
    const [o] = await mintUsers(b.database, 1, 'outsider', 'Visitors');
    [editor, assistant, outsider] = [e!, a!, o!];
    const groups = (await call('GET', '/api/v1/groups')).items as { id: string; name: string }[];
    const gid = (n: string) => groups.find((g) => g.name === n)!.id;
    const plan = await call('POST', '/api/v1/protocol-plans', { name: 'gpu-protocols', protocols: [{ protocol: 'dcv' }, { protocol: 'rdp', clientOptions: { fileLines: ['use multimon:i:1'] } }] });
    await call('POST', '/api/v1/policies', { name: 'editors', groupIds: [gid('Editors')], pools: [{ poolId: ids.gpu }], assignmentMode: 'persistent', protocolPlanId: plan.id });
    await call('POST', '/api/v1/policies', { name: 'assistants', groupIds: [gid('Assistants')], pools: [{ poolId: ids.cpu }] });
  });
  afterAll(async () => b?.close());

  it('editors see only the GPU pool and assistants only the cheap pool', async () => {
    const e = (await b.app.inject({ url: '/api/v1/desktops', headers: bearer(editor) })).json();
    expect(e.policy.name).toBe('editors');
    expect(e.desktops.map((d: { name: string }) => d.name)).toEqual(['gpu-pool']);
    expect(e.desktops[0]).toMatchObject({ state: 'available', protocols: ['dcv', 'rdp'] });
    const a = (await b.app.inject({ url: '/api/v1/desktops', headers: bearer(assistant) })).json();
    expect(a.desktops.map((d: { name: string }) => d.name)).toEqual(['cpu-pool']);
  });

  it('a user with no matching policy sees none and is told why', async () => {
    const res = (await b.app.inject({ url: '/api/v1/desktops', headers: bearer(outsider) })).json();
    expect(res).toMatchObject({ policy: null, desktops: [], reason: expect.stringContaining('Visitors') });
  });

  it('connecting to a pool not offered to you is a 403, and audited', async () => {
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(assistant), payload: { poolId: ids.gpu } });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toContain('not offered to you');
    const denied = await b.services.audit.list({ action: 'connection.denied', actor: assistant.username }, 5, 0);
    expect(denied.items[0]).toMatchObject({ outcome: 'denied', targetId: ids.gpu });
  });

  it('a persistent user gets their own machine back, with the plan\'s protocol and file lines', async () => {
    const first = await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(editor), payload: { poolId: ids.gpu, protocol: 'rdp' } });
    expect(first.statusCode).toBe(201);
    const c1 = first.json();
    expect(c1).toMatchObject({ state: 'ready', protocol: 'rdp', instructions: { viaGateway: false, port: 3389 } });
    expect(c1.instructions.file).toContain(`full address:s:${c1.instructions.host}:3389`);
    expect(c1.instructions.file).toContain('use multimon:i:1');
    const file = await b.app.inject({ url: `/api/v1/connections/${c1.id}/file`, headers: bearer(editor) });
    expect(file.headers['content-type']).toContain('application/x-rdp');
    expect(file.headers['content-disposition']).toContain(`${c1.workstation.name}.rdp`);
    expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/connections/${c1.id}`, headers: bearer(editor) })).statusCode).toBe(204);
    const again = (await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(editor), payload: { poolId: ids.gpu } })).json();
    expect(again.workstation.id).toBe(c1.workstation.id);
    expect(again.protocol).toBe('dcv');
    expect(again.instructions.file).toContain('port=8443');
    const desktops = (await b.app.inject({ url: '/api/v1/desktops', headers: bearer(editor) })).json();
    expect(desktops.desktops[0].machines).toEqual([expect.objectContaining({ workstationId: c1.workstation.id, persistent: true })]);
  });

  it('a floating machine goes back to the pool on release', async () => {
    const c = (await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(assistant), payload: { poolId: ids.cpu } })).json();
    expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/connections/${c.id}`, headers: bearer(assistant) })).statusCode).toBe(204);
    const d = (await b.app.inject({ url: '/api/v1/desktops', headers: bearer(assistant) })).json();
    expect(d.desktops[0].machines).toEqual([]);
    const other = (await b.app.inject({ url: `/api/v1/connections/${c.id}`, headers: bearer(editor) }));
    expect(other.statusCode).toBe(404);
  });

  it('policy input errors name the field; a pool offered by a policy cannot be deleted', async () => {
    const bad = await b.app.inject({ method: 'POST', url: '/api/v1/policies', headers: as(admin), payload: { name: 'x', groupIds: [], pools: [{ poolId: ids.cpu, desktops: 0 }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/body\.groupIds.*at least one group/);
    expect(bad.json().error.message).toMatch(/body\.pools\.0\.desktops/);
    const del = await b.app.inject({ method: 'DELETE', url: `/api/v1/pools/${ids.cpu}`, headers: as(admin) });
    expect(del.statusCode).toBe(409);
  });
});
