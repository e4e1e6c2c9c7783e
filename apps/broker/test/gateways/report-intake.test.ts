import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerToGateway } from '@stagedoor/contract';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { failsEveryTime } from '../../src/domain/gateways/report-intake.ts';
import { createTestBroker, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { connectionRow, insertConnection } from './fixtures.ts';

/**
 * Reports a gateway sends that can never be applied are acknowledged and dead-lettered (an audit row
 * with the raw report); failures a retry may cure close the channel unacknowledged, so that the
 * gateway sends the report again. Real databases raise the errors (PGlite and PostgreSQL).
 */
describe.each(DRIVERS)('gateway report intake [%s]', (driver) => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await createTestBroker(driver, { env: { STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1' } });
  });
  afterAll(async () => {
    broker?.services.gateways.channels.close();
    await broker?.close();
  });

  /** An enrolled gateway on a control channel without a network, welcomed, with one live grant. */
  async function channelWithGrant(name: string) {
    const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster: name, name, publicAddress: `${name}.example.test`, expiresInMinutes: 5 });
    const { gateway } = await broker.services.gateways.enroll({ token, name, portRangeStart: 24000, portRangeEnd: 24009, version: 'test' }, '192.0.2.9');
    const sent: BrokerToGateway[] = [];
    const closed: { code: number; reason: string }[] = [];
    const handlers = broker.services.gateways.channels.attach(gateway, { send: (d) => void sent.push(JSON.parse(d) as BrokerToGateway), close: (code, reason) => void closed.push({ code, reason }) }, '192.0.2.50');
    await handlers.message(JSON.stringify({ type: 'hello', protocol: 1, version: 'test', sessions: [] }));
    const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.8', clientAddress: '203.0.113.10' });
    const grant = await broker.services.gateways.issueGrant({ connectionId, cluster: name, clientAddress: '203.0.113.10', targetAddress: '10.1.0.8', targetPort: 22, connectBy: new Date(Date.now() + 60_000) });
    const started = (seq: number, at = new Date().toISOString()) => ({ type: 'session-started', seq, grantId: grant.grantId, clientAddress: '203.0.113.10', at });
    return { gateway, sent, closed, send: (m: unknown) => handlers.message(JSON.stringify(m)), grant, connectionId, started, acks: () => sent.filter((m) => m.type === 'ack').map((m) => m.seq) };
  }
  const rejected = async (gatewayId: string) => (await broker.services.audit.list({ action: 'gateway.report_rejected', targetId: gatewayId }, 50, 0)).items;

  it('a report with an invalid timestamp is acknowledged and dead-lettered, not resent forever', async () => {
    const ch = await channelWithGrant('bad-at');
    await ch.send(ch.started(1, 'yesterday'));
    expect(ch.closed).toEqual([]); // the channel stays up…
    expect(ch.acks()).toEqual([1]); // …and the gateway forgets the report
    const [row] = await rejected(ch.gateway.id);
    expect(row).toMatchObject({ outcome: 'failure', actorName: 'gateway:bad-at', sourceAddress: '192.0.2.50' });
    expect(row!.reason).toContain('at');
    expect(row!.details).toMatchObject({ seq: 1 });
    expect(String(row!.details.raw)).toContain('"at":"yesterday"');
    expect((await connectionRow(broker.database, ch.connectionId)).state).toBe('ready'); // nothing applied
    // The reports behind it flow: the same session, reported properly, is applied.
    await ch.send(ch.started(2));
    expect(ch.acks()).toEqual([1, 2]);
    expect((await connectionRow(broker.database, ch.connectionId)).state).toBe('connected');
  });

  it('one bad report in a batch is dead-lettered alone; the others are applied and the batch acknowledged', async () => {
    const ch = await channelWithGrant('bad-batch');
    const refused = { type: 'refused', seq: 3, port: 24001, clientAddress: '198.51.100.7', reason: 'wrong-client', grantId: null, at: new Date().toISOString() };
    const huge = { ...ch.started(2), clientAddress: 'x'.repeat(5000) };
    await ch.send({ type: 'batch', reports: [ch.started(1), huge, refused] });
    expect(ch.closed).toEqual([]);
    expect(ch.acks()).toEqual([3]);
    expect((await connectionRow(broker.database, ch.connectionId)).state).toBe('connected');
    expect((await broker.services.audit.list({ action: 'gateway.connection_refused', targetId: ch.gateway.id }, 5, 0)).total).toBe(1);
    const rows = await rejected(ch.gateway.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.details).toMatchObject({ seq: 2, rawLength: JSON.stringify(huge).length });
    expect(String(rows[0]!.details.raw).length).toBeLessThan(2100); // the raw report, truncated
  });

  it('a report the database refuses the same way every time (a data exception) is acknowledged and dead-lettered', async () => {
    const ch = await channelWithGrant('bad-data');
    await withTrigger('22007', async () => {
      await ch.send(ch.started(1));
    });
    expect(ch.closed).toEqual([]);
    expect(ch.acks()).toEqual([1]);
    expect((await rejected(ch.gateway.id))[0]?.reason).toMatch(/^the report cannot be applied/);
  });

  it('a report that meets a transient database failure is not acknowledged: the channel closes, and the resent report is applied', async () => {
    const ch = await channelWithGrant('transient');
    await withTrigger('40001', async () => {
      await ch.send(ch.started(1));
    });
    expect(ch.acks()).toEqual([]);
    expect(ch.closed).toEqual([{ code: 1011, reason: 'broker error' }]);
    expect(await rejected(ch.gateway.id)).toEqual([]);
    // The gateway reconnects and sends it again: now it is applied and acknowledged.
    const sent: BrokerToGateway[] = [];
    const again = broker.services.gateways.channels.attach(ch.gateway, { send: (d) => void sent.push(JSON.parse(d) as BrokerToGateway), close: () => undefined }, '192.0.2.50');
    await again.message(JSON.stringify({ type: 'hello', protocol: 1, version: 'test', sessions: [] }));
    await again.message(JSON.stringify(ch.started(1)));
    expect(sent).toContainEqual({ type: 'ack', seq: 1 });
    expect((await connectionRow(broker.database, ch.connectionId)).state).toBe('connected');
  });

  it('tells failures that repeat from those a retry may cure, on real database errors', async () => {
    const raise = async (code: string) => {
      try {
        await broker.database.db.execute(sql.raw(`do $$ begin raise exception 'test' using errcode = '${code}'; end $$`));
      } catch (err) {
        return err;
      }
      throw new Error('no error raised');
    };
    expect(failsEveryTime(await raise('22007'))).toBe(true); // invalid_datetime_format
    expect(failsEveryTime(await raise('22003'))).toBe(true); // numeric_value_out_of_range
    expect(failsEveryTime(await raise('23514'))).toBe(true); // check_violation
    expect(failsEveryTime(await raise('40001'))).toBe(false); // serialization_failure
    expect(failsEveryTime(await raise('23505'))).toBe(false); // unique_violation: maybe a race
    expect(failsEveryTime(await raise('57P01'))).toBe(false); // admin_shutdown
    expect(failsEveryTime(new Error('connection terminated unexpectedly'))).toBe(false);
  });

  /** While `fn` runs, every update of a grant fails with SQLSTATE `code`, raised by the database itself. */
  async function withTrigger(code: string, fn: () => Promise<void>) {
    const db = broker.database.db;
    await db.execute(sql.raw(`create or replace function test_fail_grant_update() returns trigger language plpgsql as $$ begin raise exception 'injected failure' using errcode = '${code}'; end $$`));
    await db.execute(sql.raw('create trigger test_fail_grant_update before update on grants for each row execute function test_fail_grant_update()'));
    try {
      await fn();
    } finally {
      await db.execute(sql.raw('drop trigger test_fail_grant_update on grants'));
      await db.execute(sql.raw('drop function test_fail_grant_update()'));
    }
  }
});
