import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../apps/broker/src/db/database.ts';
import { rowsOf } from '../../apps/broker/src/db/migrate.ts';
import { openPostgres } from '../../apps/broker/src/db/postgres.ts';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../packages/ec2-emulator/src/index.ts';
import { startBrokerNodes, type BrokerNode } from '../support/broker-nodes.ts';
import { createPostgresDatabase, silentLog } from '../support/database.ts';
import { startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../support/ec2.ts';
import { fetchInject, httpLogin } from '../support/http.ts';
import { waitFor } from '../support/ports.ts';
import { as } from '../support/session.ts';
import { mintUsers } from '../support/studio.ts';

const PASSWORD = 'power-cluster-password';
const MACHINES = 8;

/**
 * Two real `stagedoor broker` processes on one PostgreSQL, both running the timers job every 200 ms
 * with the real clock. Timers are scheduled a couple of seconds ahead (the plan's delay), so they
 * fall due while both nodes are claiming: each must be fired by exactly one of them.
 */
describe('power timers across two broker processes [postgres]', () => {
  const nodes: BrokerNode[] = [];
  let emu: Ec2Emulator;
  let database: Database;

  beforeAll(async () => {
    emu = await startTestEmulator({ delays: { pendingMs: 0, stoppingMs: 500, shuttingDownMs: 500 } });
    const url = await createPostgresDatabase();
    nodes.push(
      ...(await startBrokerNodes(['power-a', 'power-b'], {
        DATABASE_URL: url,
        STAGEDOOR_ADMIN_PASSWORD: PASSWORD,
        STAGEDOOR_SECRET_KEY: 'ef'.repeat(32),
        STAGEDOOR_LOG_LEVEL: 'warn',
        STAGEDOOR_TIMERS_INTERVAL_SECONDS: '0.2',
      })),
    );
    database = await openPostgres({ url, poolSize: 2, log: silentLog });
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.proc.stop('SIGKILL')));
    await database?.close();
    await emu?.close();
  });

  it(`${MACHINES} users log out on either node; each machine is stopped exactly once`, async () => {
    const [a, b] = [nodes[0]!, nodes[1]!];
    const admin = await httpLogin(a.base, 'admin', PASSWORD);
    const inject = fetchInject(a.base);
    const call = async (method: string, url: string, payload?: unknown) => {
      const res = await inject({ method, url, headers: as(admin), payload });
      if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
      return res.json();
    };
    const subnet = emu.control.defaultNetwork().subnets[0]!.subnetId;
    const provider = await call('POST', '/api/v1/providers', { kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET } });
    const pool = await call('POST', '/api/v1/pools', { name: 'night', providerId: provider.id, template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge'], subnetIds: [subnet] }, minAvailable: MACHINES, maxTotal: MACHINES, launchRatePerMinute: 100 });
    await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
    // Reconcile and sync on each look (not the nodes' jobs, whose turns stretch on a loaded machine);
    // the bound is generous for the same reason: it only ends a hung run.
    await waitFor('the machines to run', async () => {
      await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
      await call('POST', `/api/v1/providers/${provider.id}/sync`);
      return (await call('GET', `/api/v1/workstations?poolId=${pool.id}&powerState=running`)).total === MACHINES;
    }, 120_000, 500);
    await call('PATCH', `/api/v1/pools/${pool.id}`, { minAvailable: 0 });
    const plan = await call('POST', '/api/v1/power-plans', { name: 'stop at logout', onLogout: { action: 'stop', delaySeconds: 2 } });
    const users = await mintUsers(database, MACHINES, 'night', 'Night');
    const group = (await call('GET', '/api/v1/groups')).items.find((g: { name: string }) => g.name === 'Night');
    await call('POST', '/api/v1/policies', { name: 'night', groupIds: [group.id], pools: [{ poolId: pool.id }], assignmentMode: 'persistent', powerPlanId: plan.id });

    const stopsBefore = emu.control.callCounts().byAction.StopInstances ?? 0;
    await Promise.all(
      users.map(async (u, i) => {
        const node = i % 2 ? b : a;
        const res = await fetch(`${node.base}/api/v1/connections`, { method: 'POST', headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ poolId: pool.id }) });
        const workstationId = ((await res.json()) as { workstation: { id: string } }).workstation.id;
        const { token } = await call('POST', `/api/v1/workstations/${workstationId}/agent-token`);
        // The agent reports to the other node than the one the user connected through.
        const agentNode = i % 2 ? a : b;
        const report = await fetch(`${agentNode.base}/api/v1/agent/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ agentVersion: 'test', os: 'linux', events: [{ type: 'login', user: u.username }, { type: 'logout', user: u.username }] }),
        });
        expect(report.status).toBe(200);
      }),
    );
    await waitFor('every machine stopped', () => emu.control.instances().filter((i) => i.state === 'stopping' || i.state === 'stopped').length === MACHINES, 120_000, 100).catch(async (err: Error) => {
      const timers = rowsOf<{ state: string; attempts: number; due_at: string }>(await database.db.execute(sql`select state, attempts, due_at::text from timers where kind = 'power.logout'`));
      throw new Error(`${err.message}; instances ${JSON.stringify(emu.control.instances().map((i) => i.state))}; power.logout timers ${JSON.stringify(timers)}`);
    });
    // Both nodes keep claiming for a while longer: nothing fires twice.
    await new Promise((r) => setTimeout(r, 2_000));
    expect((emu.control.callCounts().byAction.StopInstances ?? 0) - stopsBefore).toBe(MACHINES);
    const timers = rowsOf<{ state: string; attempts: number; leased_by: string }>(await database.db.execute(sql`select state, attempts, leased_by from timers where kind = 'power.logout'`));
    expect(timers).toHaveLength(MACHINES);
    expect(timers.every((t) => t.state === 'done' && t.attempts === 1)).toBe(true);
    const stops = rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from audit_events where action = 'workstation.stop' and outcome = 'success'`));
    expect(stops[0]!.n).toBe(MACHINES);
  }, 300_000); // above its two 120 s waits: a slow run then fails naming the wait, not the hang guard
});
