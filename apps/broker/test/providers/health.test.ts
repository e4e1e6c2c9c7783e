import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { AGENT_SILENT_MS, decideHealth } from '../../src/domain/workstations/health.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { frozenClock, providerFor, startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';

describe('decideHealth', () => {
  const now = new Date('2026-12-03T12:00:00Z');
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const running = { powerState: 'running', powerStateChangedAt: ago(3_600_000), agentLastSeenAt: null };
  const ok = { system: 'ok', instance: 'ok' };
  it.each([
    ['stopped: nothing to check', { ...running, powerState: 'stopped' }, ok, { health: 'unknown', source: null }],
    ['both checks ok, no agent', running, ok, { health: 'healthy', source: 'status-checks' }],
    ['checks initializing', running, { system: 'initializing', instance: 'initializing' }, { health: 'unknown', source: 'status-checks' }],
    ['no status answer, no agent', running, undefined, { health: 'unknown', source: null }],
    ['system check impaired', running, { system: 'impaired', instance: 'ok' }, { health: 'unhealthy', source: 'status-checks' }],
    ['instance check impaired, agent fresh: the checks win', { ...running, agentLastSeenAt: ago(1000) }, { system: 'ok', instance: 'impaired' }, { health: 'unhealthy', source: 'status-checks' }],
    ['agent fresh', { ...running, agentLastSeenAt: ago(60_000) }, ok, { health: 'healthy', source: 'agent' }],
    ['agent silent too long: the agent wins over passing checks', { ...running, agentLastSeenAt: ago(AGENT_SILENT_MS + 1) }, ok, { health: 'unhealthy', source: 'agent' }],
    ['agent last seen long ago, but the machine just started', { ...running, powerStateChangedAt: ago(1000), agentLastSeenAt: ago(86_400_000) }, undefined, { health: 'healthy', source: 'agent' }],
  ] as const)('%s', (_what, facts, checks, verdict) => {
    expect(decideHealth(facts, checks, now)).toEqual(verdict);
  });
});

describe.each(DRIVERS)('workstation health from status checks and the agent [%s]', (driver) => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let admin: Session;
  let providerId: string;
  const clock = new ManualClock();
  const ids: string[] = [];

  beforeAll(async () => {
    emu = await startTestEmulator({ clock: frozenClock(), delays: { pendingMs: 1_000, statusInitializingMs: 60_000 } });
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: 'ef'.repeat(32) } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    for (const i of [1, 2]) ids.push((await providerFor(emu).launch({ imageId: DEMO_AMI_ID, name: `ws-${i}`, tags: { site: 'h' }, clientToken: `h-${i}` }))[0]!.id);
    const res = await b.app.inject({
      method: 'POST',
      url: '/api/v1/providers',
      headers: as(admin),
      payload: { kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET }, tagFilter: { site: ['h'] } },
    });
    providerId = res.json().id;
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  type Ws = { id: string; name: string; externalId: string; health: string; healthSource: string | null; healthCheckedAt: string | null };
  const list = async () => {
    const res = await b.app.inject({ url: `/api/v1/workstations?providerId=${providerId}&sort=name`, headers: as(admin) });
    expect(res.statusCode).toBe(200);
    return res.json().items as Ws[];
  };
  const sync = () => b.services.providers.syncNow(systemActor, providerId);
  const health = async () => (await list()).map((w) => [w.name, w.health, w.healthSource]);

  it('follows EC2 status checks: initializing is unknown, ok is healthy, an impaired check is unhealthy, and the API says which', async () => {
    await sync();
    expect(await health()).toEqual([['ws-1', 'unknown', null], ['ws-2', 'unknown', null]]); // pending: nothing to check
    emu.control.advanceTime(2_000);
    await sync();
    expect(await health()).toEqual([['ws-1', 'unknown', 'status-checks'], ['ws-2', 'unknown', 'status-checks']]);
    emu.control.advanceTime(60_000);
    await sync();
    const [one] = await list();
    expect(one).toMatchObject({ health: 'healthy', healthSource: 'status-checks', healthCheckedAt: clock.now().toISOString() });
    emu.control.impairInstance(ids[1]!, { system: true });
    await sync();
    expect(await health()).toEqual([['ws-1', 'healthy', 'status-checks'], ['ws-2', 'unhealthy', 'status-checks']]);
    emu.control.impairInstance(ids[1]!, null);
    await sync();
    expect(await health()).toEqual([['ws-1', 'healthy', 'status-checks'], ['ws-2', 'healthy', 'status-checks']]);
  });

  it('follows the agent: its reports make the machine healthy, its silence unhealthy, until it reports again', async () => {
    const ws = (await list())[0]!;
    const { token } = (await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${ws.id}/agent-token`, headers: as(admin) })).json() as { token: string };
    const report = async () => {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/agent/events', headers: { authorization: `Bearer ${token}` }, payload: { agentVersion: 'test-1', os: 'linux', events: [{ type: 'heartbeat' }] } });
      expect(res.statusCode).toBe(200);
    };
    await report();
    expect((await list())[0]).toMatchObject({ health: 'healthy', healthSource: 'agent', healthCheckedAt: clock.now().toISOString() });
    expect(await b.services.inventory.markSilentAgents()).toEqual({ silent: 0 });

    clock.advance(AGENT_SILENT_MS + 1000);
    expect(await b.services.inventory.markSilentAgents()).toEqual({ silent: 1 });
    expect((await list())[0]).toMatchObject({ health: 'unhealthy', healthSource: 'agent', healthCheckedAt: clock.now().toISOString() });
    // A sync agrees (passing status checks do not cover for a silent agent), and the other machine keeps its checks.
    await sync();
    expect(await health()).toEqual([['ws-1', 'unhealthy', 'agent'], ['ws-2', 'healthy', 'status-checks']]);

    await report();
    expect((await list())[0]).toMatchObject({ health: 'healthy', healthSource: 'agent' });
    await sync();
    expect((await list())[0]).toMatchObject({ health: 'healthy', healthSource: 'agent' });
  });

  it('a stopped machine is neither healthy nor unhealthy', async () => {
    await providerFor(emu).stop([ids[1]!]);
    emu.control.advanceTime(10_000);
    await sync();
    expect((await list())[1]).toMatchObject({ health: 'unknown', healthSource: null });
  });
});
