import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../apps/broker/src/domain/clock.ts';
import { pools, providers, workstationPowerHistory, workstations } from '../../apps/broker/src/db/schema/index.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { spawnStagedoor } from '../support/processes.ts';

/** `stagedoor report cost`: a real process against a broker, with an auditor's API token. */
describe('stagedoor report cost', () => {
  let b: TestBroker;
  let url: string;
  let token: string;

  beforeAll(async () => {
    b = await createTestBroker('pglite', { clock: new ManualClock('2026-12-01T00:00:00Z') });
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(b.app.server.address() as { port: number }).port}`;
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: 'finance', password: 'finance-password', role: 'auditor' } });
    const auditor = await login(b.app, 'finance', 'finance-password');
    token = (await b.app.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: as(auditor), payload: { name: 'reports' } })).json().token;
    const db = b.database.db;
    const [p] = await db.insert(providers).values({ name: 'use1', kind: 'aws-ec2', region: 'us-east-1', credentialsMode: 'default-chain' }).returning();
    const [pool] = await db.insert(pools).values({ name: 'edit', providerId: p!.id }).returning();
    const [w] = await db.insert(workstations).values({ name: 'edit-001', providerId: p!.id, externalId: 'i-1', instanceType: 'g5.xlarge', poolId: pool!.id, powerState: 'stopped' }).returning();
    const iv = (state: string, from: string, to: string | null) => ({ workstationId: w!.id, state, instanceType: 'g5.xlarge', poolId: pool!.id, fromAt: new Date(from), toAt: to ? new Date(to) : null });
    // 10 h running (10.06 USD at the shipped 1.006), 14 h stopped on Monday.
    await db.insert(workstationPowerHistory).values([iv('stopped', '2026-11-23T00:00:00Z', '2026-11-23T08:00:00Z'), iv('running', '2026-11-23T08:00:00Z', '2026-11-23T18:00:00Z'), iv('stopped', '2026-11-23T18:00:00Z', null)]);
  });
  afterAll(async () => b?.close());

  const run = async (args: string[]) => {
    const p = spawnStagedoor(['report', 'cost', '--url', url, '--token', token, ...args], { STAGEDOOR_URL: undefined, STAGEDOOR_TOKEN: undefined });
    const code = await p.exited;
    return { code, out: p.stdout.join('\n'), err: p.stderr.join('\n') };
  };

  it('prints a table, and JSON with --json', async () => {
    const r = await run(['--from', '2026-11-23', '--to', '2026-11-24']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/pool\s+machines\s+running h\s+stopped h\s+other h\s+always-on h\s+saved h\s+cost/);
    expect(r.out).toMatch(/edit\s+1\s+10\.0\s+14\.0\s+0\.0\s+24\.0\s+14\.0\s+10\.06 USD/);
    const j = await run(['--from', '2026-11-23T00:00:00Z', '--to', '2026-11-24T00:00:00Z', '--group-by', 'instanceType', '--json']);
    expect(j.code, j.err).toBe(0);
    expect(JSON.parse(j.out).groups[0]).toMatchObject({ label: 'g5.xlarge', runningHours: 10, cost: [{ currency: 'USD', amount: 10.06 }] });
  });

  it('bad dates and windows are refused with a message', async () => {
    const r = await run(['--from', 'last monday']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('--from: not a date');
    const back = await run(['--from', '2026-11-24', '--to', '2026-11-23']);
    expect(back.code).toBe(1);
    expect(back.err).toContain('to: must be after from');
  });
});
