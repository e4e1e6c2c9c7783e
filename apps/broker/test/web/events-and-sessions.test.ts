import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { assembleBroker, type Broker } from '../../src/main.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { freePort, waitFor } from '../../../../test/support/ports.ts';
import { MAX_STREAMS_PER_USER } from '../../src/http/routes/events.routes.ts';

/**
 * The console's own API: live sessions, "restart my machine" (gated by the policy), and the event
 * stream — read on a second broker node that shares only the database with the node that changed it.
 */
describe('live sessions, restart, and server-sent events', () => {
  let a: TestBroker;
  let nodeB: Broker;
  let baseB: string;
  let admin: Session;
  let ana: Session;
  let poolId: string;
  let policyId: string;
  const call = async (who: Session, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => a.app.inject({ method, url, headers: as(who), payload: payload as never });
  const ok = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => {
    const res = await call(admin, method, url, payload);
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };

  beforeAll(async () => {
    a = await createTestBroker('postgres');
    // A second node: its own connection pool, services and HTTP server on the same database.
    const database = await openPostgres({ url: a.testDb.url!, poolSize: 4, log: pino({ level: 'silent' }) });
    nodeB = await assembleBroker(loadConfig({}, { STAGEDOOR_ADMIN_PASSWORD: ADMIN_PASSWORD, STAGEDOOR_JOBS: 'off', STAGEDOOR_NODE_ID: 'node-b' }), database, { log: pino({ level: 'silent' }) });
    const port = await freePort();
    await nodeB.app.listen({ port, host: '127.0.0.1' });
    baseB = `http://127.0.0.1:${port}`;
    admin = await login(a.app, 'admin', ADMIN_PASSWORD);
    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'lab' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'lab-01', address: '10.0.0.7', tags: { lab: 'yes' } });
    poolId = (await ok('POST', '/api/v1/pools', { name: 'lab', providerId: provider.id, membership: { tags: { lab: ['yes'] } } })).id;
    const group = await ok('POST', '/api/v1/groups', { name: 'Lab' });
    policyId = (await ok('POST', '/api/v1/policies', { name: 'lab', groupIds: [group.id], pools: [{ poolId }] })).id;
    await ok('POST', '/api/v1/users', { username: 'ana', password: 'ana-password-1', groupIds: [group.id] });
    ana = await login(a.app, 'ana', 'ana-password-1');
  });

  afterAll(async () => {
    await nodeB?.close().catch(() => undefined); // the stream test closes it already
    await a?.close();
  });

  it('lists live sessions for staff only, with who, what and where', async () => {
    expect((await ok('GET', '/api/v1/connections')).items).toEqual([]);
    const conn = (await call(ana, 'POST', '/api/v1/connections', { poolId })).json();
    const list = await ok('GET', '/api/v1/connections');
    expect(list).toMatchObject({ total: 1, items: [{ id: conn.id, username: 'ana', workstationName: 'lab-01', poolName: 'lab', protocol: 'rdp', state: 'ready' }] });
    expect((await call(ana, 'GET', '/api/v1/connections')).statusCode).toBe(403);
  });

  it('restart my machine: refused (and audited) unless the policy allows it, then the workstation power operation answers', async () => {
    const conn = (await ok('GET', '/api/v1/connections')).items[0];
    const refused = await call(ana, 'POST', `/api/v1/connections/${conn.id}/restart`);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.message).toContain('does not let you restart');
    expect((await ok('GET', '/api/v1/audit?action=workstation.reboot&outcome=denied')).items).toHaveLength(1);
    // Another user's connection is not theirs to restart, whatever the policy.
    expect((await call(admin, 'POST', `/api/v1/connections/${conn.id}/restart`)).statusCode).toBe(404);

    await ok('PATCH', `/api/v1/policies/${policyId}`, { allowRestart: true });
    expect((await call(ana, 'GET', '/api/v1/desktops')).json().policy).toMatchObject({ allowRestart: true });
    const tried = await call(ana, 'POST', `/api/v1/connections/${conn.id}/restart`);
    // A static host cannot be rebooted by Stagedoor: the provider's own refusal, a clear 409.
    expect(tried.statusCode, tried.body).toBe(409);
    expect(tried.json().error.message).toContain('cannot reboot');
  });

  it('caps the streams one user may hold open on a node, and frees the slot when a stream closes', async () => {
    const streams = await Promise.all(Array.from({ length: MAX_STREAMS_PER_USER }, () => openStream(baseB, ana)));
    const probe = () => fetch(`${baseB}/api/v1/events`, { headers: { cookie: ana.cookie } });
    const refused = await probe();
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('too_many_streams');
    for (const s of streams) s.close();
    let again: Response | undefined;
    await waitFor('a slot to free up', async () => {
      again = await probe();
      if (again.status !== 200) return false;
      await again.body?.cancel();
      return true;
    }, 30_000);
    expect(again!.status).toBe(200);
  });

  it('streams the dashboard to staff and each user\'s own connections, from the database, on another node', async () => {
    const adminStream = await openStream(baseB, admin);
    const first = await adminStream.until((e) => e.some((x) => x.event === 'dashboard'));
    const dash = first.find((x) => x.event === 'dashboard')!.data as { pools: { name: string; availability: { assigned: number } }[]; liveSessions: number };
    expect(dash.pools).toMatchObject([{ name: 'lab', availability: { assigned: 1 } }]);
    expect(dash.liveSessions).toBe(1);

    const userStream = await openStream(baseB, ana);
    const mine = await userStream.until((e) => e.some((x) => x.event === 'connections'));
    const conns = mine.find((x) => x.event === 'connections')!.data as { items: { id: string; state: string; instructions: unknown }[] };
    // Settled connections come without instructions: describing them could issue a new gateway grant.
    expect(conns.items).toMatchObject([{ state: 'ready', workstation: { name: 'lab-01' }, poolId, progress: { stage: 'ready' }, instructions: null }]);

    // A change through node A reaches both streams on node B.
    expect((await call(ana, 'DELETE', `/api/v1/connections/${conns.items[0]!.id}`)).statusCode).toBe(204);
    const after = await adminStream.until((e) => e.some((x) => x.event === 'dashboard' && (x.data as { liveSessions: number }).liveSessions === 0));
    expect(after.length).toBeGreaterThan(0);
    await userStream.until((e) => e.some((x) => x.event === 'connections' && (x.data as { items: unknown[] }).items.length === 0));
    // A user never gets the dashboard.
    expect(userStream.all.filter((x) => x.event === 'dashboard')).toEqual([]);

    // Closing the broker ends open streams instead of waiting for them forever.
    await nodeB.close();
    expect(await adminStream.ended).toBe(true);
  });

  it('refuses a stream without a session', async () => {
    const anon = await a.app.inject({ url: '/api/v1/events' });
    expect(anon.statusCode).toBe(401);
  });
});

interface SseEvent {
  event: string;
  data: unknown;
}

/** Read a text/event-stream over real HTTP; `until` resolves with the events seen so far once a predicate holds. */
async function openStream(base: string, who: Session) {
  const ctl = new AbortController();
  const res = await fetch(`${base}/api/v1/events`, { headers: { cookie: who.cookie, accept: 'text/event-stream' }, signal: ctl.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const all: SseEvent[] = [];
  const waiters: { check: (e: SseEvent[]) => boolean; resolve: (e: SseEvent[]) => void }[] = [];
  let buffer = '';
  const ended = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event && data) all.push({ event, data: JSON.parse(data) });
        }
        for (const w of [...waiters]) {
          if (!w.check(all)) continue;
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve([...all]);
        }
      }
      return true;
    } catch {
      return false;
    }
  })();
  return {
    all,
    ended,
    close: () => ctl.abort(),
    until: (check: (e: SseEvent[]) => boolean) => (check(all) ? Promise.resolve([...all]) : new Promise<SseEvent[]>((resolve) => waiters.push({ check, resolve }))),
  };
}
