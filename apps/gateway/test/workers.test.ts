import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionRow } from '../../broker/test/gateways/fixtures.ts';
import type { TestBroker } from '../../../test/support/broker.ts';
import { waitFor } from '../../../test/support/ports.ts';
import { createLog } from '../src/log.ts';
import { WorkerPool } from '../src/workers.ts';
import { echoServer, grantFor, listeningBroker, liveSession, roundTrip, sha256, startTestGateway, type GatewayUnderTest } from './harness.ts';

/**
 * STAGEDOOR_GATEWAY_WORKERS > 1: grants are relayed by forked worker processes, which report to the
 * gateway process in batches that name the grant; the gateway process reports to the broker.
 */
describe('port-forward relay in relay workers', () => {
  let broker: TestBroker & { baseUrl: string };
  let gw: GatewayUnderTest;
  let echo: Awaited<ReturnType<typeof echoServer>>;

  beforeAll(async () => {
    broker = await listeningBroker();
    gw = await startTestGateway(broker, [broker.baseUrl], { workers: 2 });
    echo = await echoServer();
  });
  afterAll(async () => {
    gw?.gateway.stop();
    await echo?.close();
    await broker?.close();
  });

  /** Ready once the grant's worker reports its port open. */
  async function ready(grant: { grantId: string }) {
    // Generous: a worker process starts slowly on a loaded machine (and under the sanitizers).
    await waitFor("the grant's worker to open its port", () => gw.gateway.forwarder.isReady(grant.grantId), 30_000, 10);
  }

  it('relays byte-exact through a worker with half-close, and the start, bytes and end reach the broker', async () => {
    const grants = [await grantFor(broker, { host: '127.0.0.1', port: echo.port }), await grantFor(broker, { host: '127.0.0.1', port: echo.port })];
    for (const g of grants) await ready(g);
    const payload = randomBytes(4 * 1024 * 1024);
    const results = await Promise.all(grants.map((g) => roundTrip(g.port, payload, { timeoutMs: 30_000 })));
    for (const [i, r] of results.entries()) {
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(sha256(r.data)).toBe(sha256(payload));
      const id = grants[i]!.connectionId;
      await waitFor('the session end to be recorded', async () => (await connectionRow(broker.database, id)).state === 'closed', 30_000, 25);
      expect(await connectionRow(broker.database, id)).toMatchObject({ state: 'closed', endReason: 'client-closed', bytesUp: payload.length, bytesDown: payload.length, gatewayId: gw.gatewayId });
    }
  });

  it('revoking closes the live session in its worker at once, and the end is reported', async () => {
    const grant = await grantFor(broker, { host: '127.0.0.1', port: echo.port });
    await ready(grant);
    const { closed } = await liveSession(broker, grant, 8000);
    await broker.services.gateways.revokeGrant(grant.grantId, 'admin test');
    await closed;
    await waitFor('the session end to be recorded', async () => (await connectionRow(broker.database, grant.connectionId)).state === 'closed', 30_000, 25);
    expect(await connectionRow(broker.database, grant.connectionId)).toMatchObject({ state: 'closed', endReason: 'revoked: admin test' });
    await waitFor('the session end report', async () => (await broker.services.audit.list({ action: 'gateway.session_end', targetId: grant.grantId }, 5, 0)).total === 1, 30_000, 25);
  });
});

describe('a relay worker that crashes', () => {
  it('is respawned with a doubling backoff, not in a tight loop', { timeout: 120_000 }, async () => {
    // A fault every start meets: the worker cannot parse its PROXY source list and exits at once.
    const deaths: { at: number; retryInMs: number; crashesInARow: number }[] = [];
    const log = createLog('error', {}, (line) => {
      const entry = JSON.parse(line) as { msg: string; retryInMs: number; crashesInARow: number };
      if (entry.msg.startsWith('relay worker died')) deaths.push({ at: Date.now(), retryInMs: entry.retryInMs, crashesInARow: entry.crashesInARow });
    });
    const reporter = { sessionStarted: () => undefined, sessionEnded: () => undefined, refused: () => undefined };
    const pool = new WorkerPool(1, {
      options: { listenHost: '127.0.0.1', lingerMs: 1000, connectTimeoutMs: 1000, proxyProtocol: { enabled: true, sources: ['not-an-address'] } },
      reporter,
      log,
      respawnBackoffMs: { min: 200, max: 1600 },
    });
    try {
      await waitFor('five deaths of the worker', () => deaths.length >= 5, 100_000, 50);
    } finally {
      pool.close();
    }
    expect(deaths.slice(0, 5).map((d) => d.retryInMs)).toEqual([200, 400, 800, 1600, 1600]);
    expect(deaths.slice(0, 5).map((d) => d.crashesInARow)).toEqual([1, 2, 3, 4, 5]);
    // Each restart waited at least its delay (a lower bound: a slow machine only makes it longer).
    for (let i = 1; i < 5; i++) expect(deaths[i]!.at - deaths[i - 1]!.at).toBeGreaterThanOrEqual(deaths[i - 1]!.retryInMs);
  });
});
