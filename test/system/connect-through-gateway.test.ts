import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchInject, httpLogin } from '../support/http.ts';
import { freePort, freePortRange, waitFor } from '../support/ports.ts';
import { spawnStagedoor, type Spawned } from '../support/processes.ts';
import { as } from '../support/session.ts';

/**
 * Broker, gateway and a real client together: `stagedoor dev` (broker + its gateway), an artist
 * connects through the connect flow to a desktop whose protocol plan goes via the gateway, and a
 * TCP client reaches the "workstation" (an echo server) only through the port the grant opened.
 */
describe('the connect flow through the gateway, end to end', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-e2e-'));
  let proc: Spawned;
  let base: string;
  let echo: net.Server;
  let echoPort: number;
  let echo2: net.Server;
  let echo2Port: number;
  let artist: { cookie: string; csrf: string; userId: string };
  let poolId: string;

  beforeAll(async () => {
    echo = net.createServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
    await new Promise((r) => echo.once('listening', r));
    echoPort = (echo.address() as net.AddressInfo).port;
    // The same machine's second service (its "RDP"), so one artist can hold two connections on it.
    echo2 = net.createServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
    await new Promise((r) => echo2.once('listening', r));
    echo2Port = (echo2.address() as net.AddressInfo).port;
    const port = await freePort();
    const [gw, gwEnd] = await freePortRange(5);
    base = `http://127.0.0.1:${port}`;
    proc = spawnStagedoor(['dev'], { PORT: String(port), STAGEDOOR_DATA_DIR: dataDir, STAGEDOOR_ADMIN_PASSWORD: 'e2e-admin-pw', STAGEDOOR_DEV_GATEWAY_PORTS: `${gw}-${gwEnd}`, STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1', DATABASE_URL: undefined });
    await waitFor('stagedoor dev', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 60_000, 200);
    const admin = await httpLogin(base, 'admin', 'e2e-admin-pw');
    const call = fetchInject(base);
    const ok = async (method: string, url: string, payload?: unknown) => {
      const r = await call({ method, url, headers: as(admin), payload });
      if (r.statusCode >= 300) throw new Error(`${method} ${url} → ${r.statusCode} ${r.body}`);
      return r.json();
    };
    await waitFor('the dev gateway healthy', async () => (await ok('GET', '/api/v1/gateways')).items[0]?.health === 'healthy', 30_000, 200);
    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'lab' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'lab-01', address: '127.0.0.1', protocols: [{ protocol: 'ssh', port: echoPort }, { protocol: 'rdp', port: echo2Port }], tags: { lab: 'yes' } });
    const pool = await ok('POST', '/api/v1/pools', { name: 'lab', providerId: provider.id, membership: { tags: { lab: ['yes'] } } });
    poolId = pool.id;
    await ok('POST', `/api/v1/pools/${pool.id}/reconcile`);
    const group = await ok('POST', '/api/v1/groups', { name: 'Lab' });
    const plan = await ok('POST', '/api/v1/protocol-plans', { name: 'ssh-via-gateway', protocols: [{ protocol: 'ssh', viaGateway: true }, { protocol: 'rdp', viaGateway: true }] });
    await ok('POST', '/api/v1/policies', { name: 'lab', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
    await ok('POST', '/api/v1/users', { username: 'ana', password: 'ana-password-1', groupIds: [group.id] });
    await ok('POST', '/api/v1/users', { username: 'ben', password: 'ben-password-1', groupIds: [group.id] });
    artist = await httpLogin(base, 'ana', 'ana-password-1');
  });

  afterAll(async () => {
    await proc?.stop('SIGKILL');
    echo?.close();
    echo2?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('the instructions name the gateway, and bytes reach the workstation only through the granted port', async () => {
    const res = await fetchInject(base)({ method: 'POST', url: '/api/v1/connections', headers: as(artist), payload: { poolId } });
    expect(res.statusCode, res.body).toBe(201);
    const c = res.json();
    expect(c.instructions).toMatchObject({ protocol: 'ssh', viaGateway: true, host: '127.0.0.1' });
    expect(c.instructions.port).not.toBe(echoPort);
    expect(c.instructions.command).toBe(`ssh -p ${c.instructions.port} ana@127.0.0.1`);
    // The session stays open while the broker is asked: its end would close the connection.
    const session = await liveSession(c.instructions.port);
    expect(await session.echo('hello through the gateway')).toBe('hello through the gateway');
    // The gateway reports the session; the broker shows the connection connected.
    await waitFor('the connection to be connected', async () => (await fetchInject(base)({ method: 'GET', url: `/api/v1/connections/${c.id}`, headers: as(artist) })).json().state === 'connected', 30_000, 200);
    // Releasing revokes the grant: the live session closes and the port no longer relays.
    expect((await fetchInject(base)({ method: 'DELETE', url: `/api/v1/connections/${c.id}`, headers: as(artist) })).statusCode).toBe(204);
    await session.closed;
    await waitFor('the port to close', async () => (await tryEcho(c.instructions.port, 'again')) === null, 30_000, 200);
  });

  it("after a release with two tabs open, the other tab's grant relays nothing: its live session closes and its port refuses the next artist's machine", async () => {
    const call = fetchInject(base);
    const tab1 = (await call({ method: 'POST', url: '/api/v1/connections', headers: as(artist), payload: { poolId, protocol: 'ssh' } })).json();
    const tab2 = (await call({ method: 'POST', url: '/api/v1/connections', headers: as(artist), payload: { poolId, protocol: 'rdp' } })).json();
    expect(tab1.workstation.id).toBe(tab2.workstation.id);
    expect(tab2.instructions.port).not.toBe(tab1.instructions.port);
    // A live session through the second tab's grant (single use: this is its one session).
    const live = await liveSession(tab2.instructions.port);
    expect(await live.echo('still here')).toBe('still here');
    // The artist releases from the first tab: the whole desktop goes back to the pool.
    expect((await call({ method: 'DELETE', url: `/api/v1/connections/${tab1.id}`, headers: as(artist) })).statusCode).toBe(204);
    await live.closed; // the gateway closed the other tab's session
    expect(await tryEcho(tab2.instructions.port, 'sneak in')).toBeNull();
    expect((await call({ method: 'GET', url: `/api/v1/connections/${tab2.id}`, headers: as(artist) })).json()).toMatchObject({ state: 'closed' });
    // The next artist gets the machine; the first artist's leftover port still reaches nothing.
    const ben = await httpLogin(base, 'ben', 'ben-password-1');
    const theirs = (await call({ method: 'POST', url: '/api/v1/connections', headers: as(ben), payload: { poolId, protocol: 'rdp' } })).json();
    expect(theirs.workstation.id).toBe(tab1.workstation.id);
    expect(theirs.instructions).toMatchObject({ viaGateway: true, port: expect.any(Number) });
    // On a timeout, what the gateway said about that port is the first thing to read.
    const portLines = () => proc.stdout.filter((l) => l.includes(`"port":${theirs.instructions.port}`)).slice(-20).join('\n');
    expect(await waitForEcho(theirs.instructions.port, "ben's desktop").catch((err: Error) => Promise.reject(new Error(`${err.message}\nthe gateway on port ${theirs.instructions.port}:\n${portLines()}`)))).toBe("ben's desktop");
    expect(await tryEcho(tab2.instructions.port, 'sneak in again')).toBeNull();
    expect((await call({ method: 'DELETE', url: `/api/v1/connections/${theirs.id}`, headers: as(ben) })).statusCode).toBe(204);
  });
});

/** The grant reaches the gateway within a second or so of the answer; retry until it relays. */
async function waitForEcho(port: number, text: string): Promise<string> {
  let reply: string | null = null;
  await waitFor('the gateway to relay', async () => (reply = await tryEcho(port, text)) !== null, 30_000, 200);
  return reply!;
}

function tryEcho(port: number, text: string): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (v: string | null) => {
      s.destroy();
      resolve(v);
    };
    // A refusal is a reset or ECONNREFUSED at once; only an admitted session can be slow, and a
    // port-forward grant admits one: give it time on a loaded machine rather than give it up.
    s.setTimeout(10_000, () => done(null));
    s.on('error', () => done(null));
    s.on('connect', () => s.write(text));
    s.on('data', (d) => {
      got += d.toString();
      if (got.length >= text.length) done(got);
    });
    s.on('close', () => done(got.length ? got : null));
  });
}

interface LiveSession {
  echo(text: string): Promise<string | null>;
  closed: Promise<void>;
}

/** A TCP session through the gateway kept open, once the grant has reached it: echo on it, and learn when the gateway closes it. */
async function liveSession(port: number): Promise<LiveSession> {
  let session: LiveSession | null = null;
  await waitFor('a live session through the gateway', async () => {
    const candidate = await openSession(port);
    if ((await candidate.echo('ping')) === 'ping') session = candidate;
    return session !== null;
  }, 30_000, 200);
  return session!;
}

async function openSession(port: number): Promise<LiveSession> {
  const s = net.connect(port, '127.0.0.1');
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  s.on('error', () => undefined);
  const open = await new Promise<boolean>((resolve) => {
    s.once('connect', () => resolve(true));
    s.once('close', () => resolve(false));
  });
  if (!open) return { closed, echo: async () => null };
  return {
    closed,
    echo: (text) =>
      new Promise((resolve) => {
        let got = '';
        void closed.then(() => resolve(got.length >= text.length ? got : null));
        const onData = (d: Buffer) => {
          got += d.toString();
          if (got.length >= text.length) {
            s.off('data', onData);
            resolve(got);
          }
        };
        s.on('data', onData);
        s.write(text);
      }),
  };
}
