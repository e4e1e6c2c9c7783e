import net from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_CHANNEL_PATH } from '@stagedoor/contract';
import { loadConfig } from '../../broker/src/config/config.ts';
import { openPostgres } from '../../broker/src/db/postgres.ts';
import { assembleBroker, type Broker } from '../../broker/src/main.ts';
import { connectionRow } from '../../broker/test/gateways/fixtures.ts';
import { createTestBroker, type TestBroker } from '../../../test/support/broker.ts';
import { waitFor } from '../../../test/support/ports.ts';
import { echoServer, FAST_GATEWAY_ENV, grantFor, startTestGateway, type GatewayUnderTest } from './harness.ts';

/**
 * Two broker nodes on one PostgreSQL and one gateway knowing both: the gateway moves to the other
 * node when its node dies, keeps its live session, loses no report and counts none twice; with no
 * node left it fails closed after the grace period while the live session runs on.
 */
describe('control channel: failover between broker nodes, fail closed', () => {
  let a: TestBroker;
  let b: Broker;
  let urlA: string;
  let urlB: string;
  let gw: GatewayUnderTest;
  let echo: Awaited<ReturnType<typeof echoServer>>;

  beforeAll(async () => {
    a = await createTestBroker('postgres', { env: { ...FAST_GATEWAY_ENV, STAGEDOOR_NODE_ID: 'node-a' } });
    const database = await openPostgres({ url: a.testDb.url!, poolSize: 5, log: pino({ level: 'silent' }) });
    b = await assembleBroker(loadConfig({}, { ...FAST_GATEWAY_ENV, STAGEDOOR_JOBS: 'off', STAGEDOOR_NODE_ID: 'node-b' }), database, { log: pino({ level: 'silent' }) });
    for (const broker of [a, b]) await broker.app.listen({ host: '127.0.0.1', port: 0 });
    urlA = `http://127.0.0.1:${(a.app.server.address() as AddressInfo).port}`;
    urlB = `http://127.0.0.1:${(b.app.server.address() as AddressInfo).port}`;
    gw = await startTestGateway(a, [urlA, urlB], { failClosedMs: 1500 });
    echo = await echoServer();
  });
  afterAll(async () => {
    gw?.gateway.stop();
    await echo?.close();
    await b?.close().catch(() => undefined);
    await a?.close().catch(() => undefined);
  });

  it('refuses a control channel without a valid credential (401 before the upgrade)', async () => {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(new URL(GATEWAY_CHANNEL_PATH, urlB.replace('http', 'ws')), { headers: { authorization: 'Bearer sdg_not-a-credential' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(401);
  });

  it('moves to the next node when its node dies, keeps the live session, and reports it there exactly once', async () => {
    expect(gw.gateway.channel.brokerNode).toBe('node-a');
    const g = await grantFor(a, { host: '127.0.0.1', port: echo.port });
    await waitFor('grant at the gateway', () => gw.gateway.forwarder.isReady(g.grantId), 30_000, 10);
    const live = net.connect({ port: g.port, host: '127.0.0.1' });
    await new Promise((r) => live.once('connect', r));
    const echoOnce = (msg: string) =>
      new Promise<string>((resolve) => {
        live.once('data', (d) => resolve(d.toString()));
        live.write(msg);
      });
    expect(await echoOnce('one')).toBe('one');
    await waitFor('session start recorded', async () => (await connectionRow(a.database, g.connectionId)).state === 'connected', 30_000, 25);

    await a.close(); // node A dies: its HTTP server and channels go away
    await waitFor('the gateway to reach node B', () => gw.gateway.channel.connected && gw.gateway.channel.brokerNode === 'node-b', 30_000, 25);
    expect(await echoOnce('two')).toBe('two'); // the session never noticed

    // A grant issued on node B reaches the gateway too.
    const g2 = await grantFor(b as TestBroker, { host: '127.0.0.1', port: echo.port });
    await waitFor('grant from node B at the gateway', () => gw.gateway.forwarder.isReady(g2.grantId), 30_000, 10);

    live.end();
    await waitFor('session end recorded via node B', async () => (await connectionRow(b.database, g.connectionId)).state === 'closed', 30_000, 25);
    const row = await connectionRow(b.database, g.connectionId);
    expect(row).toMatchObject({ endReason: 'client-closed', bytesUp: 6, bytesDown: 6 });
    expect((await b.services.audit.list({ action: 'gateway.session_start', targetId: g.grantId }, 5, 0)).total).toBe(1);
    expect((await b.services.audit.list({ action: 'gateway.session_end', targetId: g.grantId }, 5, 0)).total).toBe(1);
    expect(gw.gateway.channel.pendingReports).toBe(0);
  });

  it('with no broker reachable it fails closed after the grace period; a live session runs on', async () => {
    const g = await grantFor(b as TestBroker, { host: '127.0.0.1', port: echo.port });
    const spare = await grantFor(b as TestBroker, { host: '127.0.0.1', port: echo.port });
    await waitFor('grants at the gateway', () => gw.gateway.forwarder.isReady(g.grantId) && gw.gateway.forwarder.isReady(spare.grantId), 30_000, 10);
    const live = net.connect({ port: g.port, host: '127.0.0.1' });
    await new Promise((r) => live.once('connect', r));
    await b.close(); // the last node goes too
    expect(gw.gateway.refusing()).toBeNull(); // within the grace period the gateway still serves its grants
    await waitFor('fail closed', () => gw.gateway.refusing() === 'fail-closed', 30_000, 50);
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect({ port: spare.port, host: '127.0.0.1' });
      s.on('data', () => resolve('data'));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      s.on('close', () => resolve('closed'));
      s.write('anyone?');
    });
    expect(refused).not.toBe('data');
    const back = await new Promise<string>((resolve) => {
      live.once('data', (d) => resolve(d.toString()));
      live.write('still here');
    });
    expect(back).toBe('still here');
    live.end();
    await waitFor('the fail-closed log line', () => gw.logs.join('').includes('fail closed'), 30_000, 50);
  });
});
