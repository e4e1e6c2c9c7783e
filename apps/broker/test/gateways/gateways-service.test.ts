import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.ts';
import { ConflictError, UnauthenticatedError, UnavailableError } from '../../src/domain/errors.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import type { SessionEvent } from '../../src/domain/gateways/types.ts';
import { grants } from '../../src/db/schema/index.ts';
import { createTestBroker, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { connectionRow, fakeChannel, insertConnection, waitUntil } from './fixtures.ts';

describe.each(DRIVERS)('gateways service [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  let broker: TestBroker;
  const connectBy = () => new Date(clock.now().getTime() + 60_000);

  beforeAll(async () => {
    broker = await createTestBroker(driver, { clock, env: { STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1', STAGEDOOR_GATEWAY_STALE_SECONDS: '10' } });
  });
  afterAll(async () => {
    broker.services.gateways.channels.close();
    await broker?.close();
  });

  async function enrolled(name: string, cluster = 'studio', ports: [number, number] = [21000, 21019]) {
    const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster, name, publicAddress: `${name}.example.test`, expiresInMinutes: 5 });
    return broker.services.gateways.enroll({ token, name, portRangeStart: ports[0], portRangeEnd: ports[1], version: 'test' }, '192.0.2.9');
  }

  it('an enrolment token works once, expires, and a refusal is audited', async () => {
    const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster: 'studio', name: 'once', publicAddress: 'gw.example.test', expiresInMinutes: 5 });
    const body = { token, name: 'whatever', portRangeStart: 22000, portRangeEnd: 22009 };
    const { gateway, credential } = await broker.services.gateways.enroll(body, '192.0.2.9');
    expect(gateway).toMatchObject({ name: 'once', cluster: 'studio', status: 'enrolled' });
    expect((await broker.services.gateways.authenticateChannel(credential))?.id).toBe(gateway.id);
    await expect(broker.services.gateways.enroll(body, '192.0.2.9')).rejects.toThrow(UnauthenticatedError);
    const denied = await broker.services.audit.list({ action: 'gateway.enroll', outcome: 'denied' }, 10, 0);
    expect(denied.items[0]).toMatchObject({ reason: 'the enrolment token was used already', sourceAddress: '192.0.2.9' });

    const late = await broker.services.gateways.createEnrollment(systemActor, { cluster: 'studio', publicAddress: 'late.example.test', expiresInMinutes: 1 });
    clock.advance(61_000);
    await expect(broker.services.gateways.enroll({ ...body, token: late.token, name: 'late' }, null)).rejects.toThrow(/expired/);

    // Re-enrolling is bound to the gateway's id, and rotates the credential: the old one stops working.
    const reenrol = await broker.services.gateways.createReenrollment(systemActor, gateway.id, { expiresInMinutes: 5 });
    const again = await broker.services.gateways.enroll({ ...body, token: reenrol.token }, '192.0.2.9');
    expect(again.gateway.id).toBe(gateway.id);
    expect(await broker.services.gateways.authenticateChannel(credential)).toBeNull();
    expect((await broker.services.gateways.authenticateChannel(again.credential))?.id).toBe(gateway.id);
  });

  it('issueGrant refuses with a typed error until a healthy active gateway of the cluster is connected', async () => {
    const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.5', clientAddress: '203.0.113.7' });
    const input = { connectionId, cluster: 'nowhere', clientAddress: '203.0.113.7', targetAddress: '10.1.0.5', targetPort: 22, connectBy: connectBy() };
    await expect(broker.services.gateways.issueGrant(input)).rejects.toThrow(new UnavailableError('no healthy gateway in cluster nowhere'));
    const { gateway } = await enrolled('edge-a', 'nowhere');
    await expect(broker.services.gateways.issueGrant(input)).rejects.toThrow(UnavailableError); // enrolled, never connected
    const ch = fakeChannel(broker, gateway);
    await ch.hello();
    const issued = await broker.services.gateways.issueGrant(input);
    expect(issued).toMatchObject({ gatewayId: gateway.id, host: 'edge-a.example.test' });
    expect(ch.sent.find((m) => m.type === 'grant')).toMatchObject({ grant: { id: issued.grantId, port: issued.port, clientAddress: '203.0.113.7', targetAddress: '10.1.0.5', targetPort: 22 } });
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ gatewayId: gateway.id });
    // The connection's usable grant is its grant: asking again (two status reads at once) gives the same one.
    expect(await broker.services.gateways.issueGrant(input)).toEqual(issued);
    // Disabled and draining gateways take no new grant.
    await broker.services.gateways.update(systemActor, gateway.id, { status: 'draining' });
    expect(ch.sent).toContainEqual({ type: 'status', status: 'draining' });
    const another = await insertConnection(broker.database, { workstationAddress: '10.1.0.5', clientAddress: '203.0.113.7' });
    await expect(broker.services.gateways.issueGrant({ ...input, connectionId: another.connectionId })).rejects.toThrow(UnavailableError);
    await broker.services.gateways.update(systemActor, gateway.id, { status: 'active' });
    ch.close();
  });

  it('allocates distinct ports under concurrency, per cluster, until the range is full', async () => {
    const a = await enrolled('ports-a', 'ports', [23000, 23011]);
    const b = await enrolled('ports-b', 'ports', [23000, 23011]);
    const cha = fakeChannel(broker, a.gateway);
    const chb = fakeChannel(broker, b.gateway);
    await cha.hello();
    await chb.hello();
    const issue = async () => {
      const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.6', clientAddress: '203.0.113.8' });
      return broker.services.gateways.issueGrant({ connectionId, cluster: 'ports', clientAddress: '203.0.113.8', targetAddress: '10.1.0.6', targetPort: 3389, connectBy: connectBy() });
    };
    // One at a time, the least loaded alternates; then a concurrent storm takes the rest.
    const first = [await issue(), await issue()];
    expect(new Set(first.map((r) => r.gatewayId))).toEqual(new Set([a.gateway.id, b.gateway.id]));
    const results = [...first, ...(await Promise.all(Array.from({ length: 10 }, issue)))];
    // Two gateways share one cluster, hence one port space: 12 ports, 12 grants, no port twice.
    expect(new Set(results.map((r) => r.port)).size).toBe(12);
    await expect(issue()).rejects.toThrow(UnavailableError);
    // Every gateway of the cluster received every grant (any of them may take the connection).
    expect(cha.sent.filter((m) => m.type === 'grant')).toHaveLength(12);
    expect(chb.sent.filter((m) => m.type === 'grant')).toHaveLength(12);
    cha.close();
    chb.close();
  });

  it('concurrent status reads of one connection cannot each issue it a grant (one usable grant per connection)', async () => {
    const { gateway } = await enrolled('race-gw', 'race');
    const ch = fakeChannel(broker, gateway);
    await ch.hello();
    const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.11', clientAddress: '203.0.113.20' });
    const input = { connectionId, cluster: 'race', clientAddress: '203.0.113.20', targetAddress: '10.1.0.11', targetPort: 22, connectBy: connectBy() };
    const issued = await Promise.all(Array.from({ length: 6 }, () => broker.services.gateways.issueGrant(input)));
    expect(new Set(issued.map((i) => i.grantId)).size).toBe(1);
    const rows = (await broker.database.db.select().from(grants)).filter((g) => g.connectionId === connectionId);
    expect(rows).toHaveLength(1);
    ch.close();
  });

  it("inside the caller's transaction a grant commits or rolls back with it", async () => {
    const { gateway } = await enrolled('tx-gw', 'tx');
    const ch = fakeChannel(broker, gateway);
    await ch.hello();
    const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.7', clientAddress: '203.0.113.9' });
    const input = { connectionId, cluster: 'tx', clientAddress: '203.0.113.9', targetAddress: '10.1.0.7', targetPort: 22, connectBy: connectBy() };
    await expect(
      broker.database.db.transaction(async (tx) => {
        await broker.services.gateways.issueGrant(input, tx);
        throw new Error('the connect flow failed later');
      }),
    ).rejects.toThrow('the connect flow failed later');
    expect((await broker.database.db.select().from(grants)).filter((g) => g.connectionId === connectionId)).toHaveLength(0);
    const issued = await broker.database.db.transaction((tx) => broker.services.gateways.issueGrant(input, tx));
    // Delivered after the commit, by the hub's next pass.
    await waitUntil(() => ch.sent.some((m) => m.type === 'grant' && m.grant.id === issued.grantId));
    ch.close();
  });

  it('session reports move the connection and grant once, are audited, and reach session listeners once', async () => {
    const { gateway } = await enrolled('rep-gw', 'rep');
    const ch = fakeChannel(broker, gateway);
    await ch.hello();
    const events: SessionEvent[] = [];
    const off = broker.services.gateways.onSessionEvent((e) => void events.push(e));
    const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.8', clientAddress: '203.0.113.10' });
    const g = await broker.services.gateways.issueGrant({ connectionId, cluster: 'rep', clientAddress: '203.0.113.10', targetAddress: '10.1.0.8', targetPort: 22, connectBy: connectBy() });
    const start = { type: 'session-started', grantId: g.grantId, clientAddress: '203.0.113.10', at: clock.now().toISOString() };
    await ch.report(start);
    await ch.report(start); // resent after a reconnect: applied once
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'connected', gatewayId: gateway.id });
    const end = { type: 'session-ended', grantId: g.grantId, reason: 'client-closed', bytesUp: 1234, bytesDown: 567_890, at: clock.now().toISOString() };
    await ch.report(end);
    await ch.report({ ...end, bytesUp: 1000 });
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'closed', endReason: 'client-closed', bytesUp: 1234, bytesDown: 567_890 });
    expect((await broker.services.audit.list({ action: 'gateway.session_start', targetId: g.grantId }, 5, 0)).total).toBe(1);
    expect((await broker.services.audit.list({ action: 'gateway.session_end', targetId: g.grantId }, 5, 0)).total).toBe(1);
    await waitUntil(() => events.length >= 2);
    // Each event is delivered once here, in no promised order (the listeners take either order:
    // test/power/power-plans.test.ts, a start delivered after its end).
    expect(events.map((e) => [e.type, e.connectionId]).sort()).toEqual([
      ['ended', connectionId],
      ['started', connectionId],
    ]);
    off();
    // A session another gateway reports for a grant already used here is told to close.
    const other = await enrolled('rep-gw2', 'rep');
    const ch2 = fakeChannel(broker, other.gateway);
    await ch2.hello();
    const { connectionId: c2 } = await insertConnection(broker.database, { workstationAddress: '10.1.0.8', clientAddress: '203.0.113.10' });
    const g2 = await broker.services.gateways.issueGrant({ connectionId: c2, cluster: 'rep', clientAddress: '203.0.113.10', targetAddress: '10.1.0.8', targetPort: 22, connectBy: connectBy() });
    await ch.report({ ...start, grantId: g2.grantId });
    await ch2.report({ ...start, grantId: g2.grantId });
    expect(ch2.sent).toContainEqual({ type: 'revoke', grantId: g2.grantId, reason: 'used-elsewhere' });
    ch.close();
    ch2.close();
  });

  it('revoking sends the revocation at once and closes the connection; a refused connection is audited', async () => {
    const { gateway } = await enrolled('rev-gw', 'rev');
    const ch = fakeChannel(broker, gateway);
    await ch.hello();
    const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.9', clientAddress: '203.0.113.11' });
    const g = await broker.services.gateways.issueGrant({ connectionId, cluster: 'rev', clientAddress: '203.0.113.11', targetAddress: '10.1.0.9', targetPort: 22, connectBy: connectBy() });
    await ch.report({ type: 'refused', port: g.port, clientAddress: '198.51.100.66', reason: 'wrong-client', grantId: g.grantId, at: clock.now().toISOString() });
    const refused = await broker.services.audit.list({ action: 'gateway.connection_refused', targetId: g.grantId }, 5, 0);
    expect(refused.items[0]).toMatchObject({ outcome: 'denied', reason: 'wrong-client', sourceAddress: '198.51.100.66' });
    await expect(broker.services.gateways.delete(systemActor, gateway.id)).rejects.toThrow(ConflictError);
    await broker.services.gateways.revokeGrant(g.grantId, 'user released');
    expect(ch.sent).toContainEqual({ type: 'revoke', grantId: g.grantId, reason: 'revoked: user released' });
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'closed', endReason: 'revoked: user released' });
    await broker.services.gateways.revokeGrant(g.grantId, 'again'); // idempotent
    expect((await broker.services.audit.list({ action: 'grant.revoke', targetId: g.grantId }, 5, 0)).total).toBe(1);
    ch.close();
    await broker.services.gateways.delete(systemActor, gateway.id);
  });

  it('a gateway back from a partition: a reconciliation pass between its hello and its pending reports takes none of its sessions for lost', async () => {
    const { gateway } = await enrolled('part-gw', 'part');
    const ch = fakeChannel(broker, gateway);
    await ch.hello();
    const session = async (n: number) => {
      const { connectionId } = await insertConnection(broker.database, { workstationAddress: `10.1.0.${20 + n}`, clientAddress: '203.0.113.13' });
      const g = await broker.services.gateways.issueGrant({ connectionId, cluster: 'part', clientAddress: '203.0.113.13', targetAddress: `10.1.0.${20 + n}`, targetPort: 22, connectBy: connectBy() });
      await ch.report({ type: 'session-started', grantId: g.grantId, clientAddress: '203.0.113.13', at: clock.now().toISOString() });
      return { connectionId, grantId: g.grantId };
    };
    const [carried, endedDuringCut, gone] = [await session(1), await session(2), await session(3)];
    clock.advance(1000);
    await ch.heartbeat([carried, endedDuringCut, gone].map((s) => ({ grantId: s.grantId, bytesUp: 10, bytesDown: 20 })));
    // The cut: the broker drops the silent channel; the gateway's reports wait in its outbox.
    ch.close();
    clock.advance(30_000);
    // The link returns: hello (with the session it still carries), then — a moment later — the
    // outbox. A reconciliation pass in that moment must not close the sessions as lost.
    const back = fakeChannel(broker, gateway);
    await back.hello([{ grantId: carried.grantId, bytesUp: 30, bytesDown: 40, startedAt: clock.now().toISOString(), clientAddress: '203.0.113.13' }]);
    await broker.services.gateways.reports.reconcile();
    for (const s of [carried, endedDuringCut, gone]) expect((await connectionRow(broker.database, s.connectionId)).state).toBe('connected');
    await back.report({ type: 'session-ended', grantId: endedDuringCut.grantId, reason: 'client-closed', bytesUp: 50, bytesDown: 60, at: clock.now().toISOString() });
    expect(await connectionRow(broker.database, endedDuringCut.connectionId)).toMatchObject({ state: 'closed', endReason: 'client-closed', bytesUp: 50, bytesDown: 60 });
    // A session the gateway neither carries nor reports (it restarted and forgot it) is still closed
    // as lost, once the grace period after the hello has passed; the carried one is not.
    clock.advance(4000);
    await back.heartbeat([{ grantId: carried.grantId, bytesUp: 31, bytesDown: 41 }]);
    await broker.services.gateways.reports.reconcile();
    expect(await connectionRow(broker.database, gone.connectionId)).toMatchObject({ state: 'closed', endReason: 'gateway-lost' });
    expect(await connectionRow(broker.database, carried.connectionId)).toMatchObject({ state: 'connected', bytesUp: 31, bytesDown: 41 });
    back.close();
  });

  it('reconciliation closes a session its gateway stopped reporting, and marks silent gateways unhealthy', async () => {
    const { gateway } = await enrolled('rec-gw', 'rec');
    const ch = fakeChannel(broker, gateway);
    await ch.hello();
    const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.10', clientAddress: '203.0.113.12' });
    const g = await broker.services.gateways.issueGrant({ connectionId, cluster: 'rec', clientAddress: '203.0.113.12', targetAddress: '10.1.0.10', targetPort: 22, connectBy: connectBy() });
    await ch.report({ type: 'session-started', grantId: g.grantId, clientAddress: '203.0.113.12', at: clock.now().toISOString() });
    clock.advance(1000);
    await ch.heartbeat([{ grantId: g.grantId, bytesUp: 10, bytesDown: 20 }]);
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'connected', bytesUp: 10, bytesDown: 20 });
    await broker.services.gateways.reports.reconcile();
    expect((await connectionRow(broker.database, connectionId)).state).toBe('connected'); // still reported
    clock.advance(4000);
    const replies = await ch.heartbeat([]); // the gateway no longer carries it (restart, lost end report)
    expect(replies.filter((m) => m.type === 'revoke')).toEqual([]); // nothing to revoke: the grant is live
    const stats = await broker.services.gateways.reports.reconcile();
    expect(stats.sessionsClosed).toBeGreaterThanOrEqual(1);
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'closed', endReason: 'gateway-lost' });
    // A heartbeat naming a session the broker does not hold for this gateway is answered with a revoke.
    // (The hub's once-a-second pass may send its own revoke of the now closed grant at the same
    // moment — `closed` — so the answer is looked for among what was sent, not as all of it.)
    const answer = await ch.heartbeat([{ grantId: g.grantId, bytesUp: 11, bytesDown: 21 }]);
    expect(answer).toContainEqual({ type: 'revoke', grantId: g.grantId, reason: 'not-live' });
    expect(answer.every((m) => m.type === 'revoke' && m.grantId === g.grantId)).toBe(true);
    clock.advance(11_000);
    await broker.services.gateways.reports.reconcile();
    expect((await broker.services.gateways.get(gateway.id)).health).toBe('unhealthy');
    ch.close();
  });
});
