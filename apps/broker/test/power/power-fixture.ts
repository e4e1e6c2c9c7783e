import type { AgentReport } from '@stagedoor/contract';
import { sql } from 'drizzle-orm';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import type { ManualClock } from '../../src/domain/clock.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import type { GatewayRow } from '../../src/domain/gateways/gateways.repository.ts';
import type { Broker } from '../../src/main.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { SESSION_EVENT_KIND } from '../../src/domain/gateways/session-events.ts';
import { ADMIN_PASSWORD, as, login, type Session } from '../../../../test/support/broker.ts';
import { TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';
import { bearer, mintUsers, type MintedUser } from '../../../../test/support/studio.ts';
import { waitFor } from '../../../../test/support/ports.ts';

export interface PowerStudio {
  admin: Session;
  providerId: string;
  poolId: string;
  users: MintedUser[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are checked by the caller
  call: (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: unknown) => Promise<any>;
}

/**
 * A studio on the EC2 emulator: a pool of `machines` running instances (launched by the pool, then
 * its standby set to 0 so the reconciler leaves power to the plans), a floating policy for `Artists`
 * with the given power and release plans.
 */
export async function powerStudio(b: Broker, emu: Ec2Emulator, opts: { machines: number; powerPlan: unknown; releasePlan?: unknown; users?: number; template?: Record<string, unknown> }): Promise<PowerStudio> {
  const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
  const call = async (method: PowerStudio['call'] extends (m: infer M, ...r: never[]) => unknown ? M : never, url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.body ? res.json() : null;
  };
  const subnets = emu.control.defaultNetwork().subnets.map((s) => s.subnetId);
  const providerId = (await call('POST', '/api/v1/providers', { kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET } })).id;
  const pool = await call('POST', '/api/v1/pools', {
    name: 'edit',
    providerId,
    template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.2xlarge'], subnetIds: subnets.slice(0, 1), namePattern: 'edit-{seq:03}', ...opts.template },
    minAvailable: opts.machines,
    maxTotal: opts.machines + 5,
    launchRatePerMinute: 100,
  });
  await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
  emu.control.advanceTime(10_000);
  await b.services.providers.syncNow(systemActor, providerId);
  await call('PATCH', `/api/v1/pools/${pool.id}`, { minAvailable: 0 });
  const users = await mintUsers(b.database, opts.users ?? 6, 'artist', 'Artists');
  const groups = (await call('GET', '/api/v1/groups')).items as { id: string; name: string }[];
  const powerPlanId = (await call('POST', '/api/v1/power-plans', opts.powerPlan)).id;
  const releasePlanId = opts.releasePlan ? (await call('POST', '/api/v1/release-plans', opts.releasePlan)).id : null;
  await call('POST', '/api/v1/policies', { name: 'artists', groupIds: [groups.find((g) => g.name === 'Artists')!.id], pools: [{ poolId: pool.id }], assignmentMode: 'floating', powerPlanId, releasePlanId });
  return { admin, providerId, poolId: pool.id, users, call };
}

/** A user connects through the API; returns the connection and its machine. */
export async function connect(b: Broker, st: PowerStudio, user: MintedUser): Promise<{ connectionId: string; workstationId: string }> {
  const res = await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(user), payload: { poolId: st.poolId } });
  if (res.statusCode !== 201) throw new Error(`connect → ${res.statusCode} ${res.body}`);
  return { connectionId: res.json().id, workstationId: res.json().workstation.id };
}

/** A gateway that reports sessions the way a real one does (through `gateways.reports`). */
export async function testGateway(b: Broker, clock: ManualClock) {
  const { token } = await b.services.gateways.createEnrollment(systemActor, { cluster: 'default', name: 'gw-power', publicAddress: 'gw.example.test', expiresInMinutes: 5 });
  const { gateway } = await b.services.gateways.enroll({ token, name: 'gw-power', publicAddress: 'gw.example.test', portRangeStart: 23000, portRangeEnd: 23099, version: 'test' }, '192.0.2.9');
  await b.services.gateways.reports.hello(gateway as GatewayRow, { type: 'hello', protocol: 1, version: 'test', sessions: [] } as never, 'test-node', null);
  let seq = 0;
  const healthy = async (): Promise<GatewayRow> => {
    await b.services.gateways.reports.heartbeat(gateway as GatewayRow, { type: 'heartbeat', at: clock.now().toISOString(), sessions: [], grants: 0, bytesInPerSecond: 0, bytesOutPerSecond: 0, refusalsDropped: 0 } as never, 'test-node');
    return gateway as GatewayRow;
  };
  return {
    /** The user's client reaches the workstation through the gateway: a grant, then session-started. */
    async start(connectionId: string, workstationAddress: string): Promise<string> {
      const gw = await healthy();
      const grant = await b.services.gateways.issueGrant({ connectionId, cluster: 'default', clientAddress: '198.51.100.7', targetAddress: workstationAddress, targetPort: 3389, connectBy: new Date(clock.now().getTime() + 60_000) });
      await b.services.gateways.reports.report(gw, { type: 'session-started', seq: ++seq, grantId: grant.grantId, clientAddress: '198.51.100.7', at: clock.now().toISOString() }, null);
      return grant.grantId;
    },
    /**
     * The session events reported for the grant have reached the power and release plans: their delivery
     * runs after the report's commit (session-events.ts `dispatch`), so a test that schedules a timer of its
     * own right after a report would otherwise race the start's cancelling of pending power timers.
     */
    async delivered(grantId: string): Promise<void> {
      await waitFor('the session events to be delivered', async () => {
        const rows = rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from timers where kind = ${SESSION_EVENT_KIND} and key like ${`${grantId}:%`} and state = 'pending'`));
        return rows[0]!.n === 0;
      }, 30_000, 10);
    },
    async end(grantId: string): Promise<void> {
      const gw = await healthy();
      await b.services.gateways.reports.report(gw, { type: 'session-ended', seq: ++seq, grantId, reason: 'client-closed', bytesUp: 10, bytesDown: 20, at: clock.now().toISOString() }, null);
    },
  };
}

/** An agent for one machine: a fresh token from the admin API, then reports through HTTP. */
export async function testAgent(b: Broker, st: PowerStudio, workstationId: string) {
  const { token } = await st.call('POST', `/api/v1/workstations/${workstationId}/agent-token`);
  return {
    token,
    async report(events: AgentReport['events'], extra: Partial<AgentReport> = {}) {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/agent/events', headers: { authorization: `Bearer ${token}` }, payload: { agentVersion: 'test-1', os: 'linux', events, ...extra } });
      if (res.statusCode !== 200) throw new Error(`agent report → ${res.statusCode} ${res.body}`);
      return res.json();
    },
  };
}

/** The session listeners run after the gateway report commits: wait until the machine's timers say `kinds`. */
export async function waitForTimers(b: Broker, workstationId: string, kinds: string[]): Promise<void> {
  await waitFor(`timers ${kinds.join(', ')}`, async () => {
    const pending = (await b.services.timers.pendingForWorkstation(workstationId)).map((t) => t.kind).sort();
    return JSON.stringify(pending) === JSON.stringify([...kinds].sort());
  }, 30_000, 10);
}

export function instanceOf(emu: Ec2Emulator, externalId: string) {
  return emu.control.instances().find((i) => i.instanceId === externalId);
}

export const calls = (emu: Ec2Emulator, action: string) => emu.control.callCounts().byAction[action] ?? 0;
