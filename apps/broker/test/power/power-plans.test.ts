import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { createTestBroker, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { startTestEmulator } from '../../../../test/support/ec2.ts';
import { calls, connect, instanceOf, powerStudio, testAgent, testGateway, waitForTimers, type PowerStudio } from './power-fixture.ts';

const MIN = 60_000;

/**
 * Power and release plans end to end, in process: the real gateway-report and agent paths, durable
 * timers fired by hand after moving the injected clock, and the EC2 emulator as the cloud (its call
 * counters say how many StopInstances/TerminateInstances really happened).
 */
describe.each(DRIVERS)('power and release plans with the EC2 emulator [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  let emu: Ec2Emulator;
  let b: TestBroker;
  let st: PowerStudio;
  let gw: Awaited<ReturnType<typeof testGateway>>;

  const ws = async (id: string) => (await st.call('GET', `/api/v1/workstations/${id}`)) as { id: string; externalId: string; privateAddress: string; powerState: string };
  const fire = () => b.services.timers.fireDue();
  const assignmentState = async (workstationId: string) =>
    rowsOf<{ state: string; release_reason: string | null }>(await b.database.db.execute(sql`select state, release_reason from assignments where workstation_id = ${workstationId} order by since desc limit 1`))[0];

  beforeAll(async () => {
    emu = await startTestEmulator();
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: 'ab'.repeat(32) } });
    st = await powerStudio(b, emu, {
      machines: 7,
      users: 7,
      powerPlan: { name: 'save money', onDisconnect: { action: 'stop', delaySeconds: 3600 }, onLogout: { action: 'terminate', delaySeconds: 300 }, onIdle: { action: 'stop', delaySeconds: 1800 } },
      releasePlan: { name: 'give back', releaseOnLogout: true },
    });
    gw = await testGateway(b, clock);
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  /** A user connects through the gateway and leaves: the disconnect's stop is pending. */
  async function connectedThenGone(user: (typeof st.users)[number]) {
    const { connectionId, workstationId } = await connect(b, st, user);
    const m = await ws(workstationId);
    const grant = await gw.start(connectionId, m.privateAddress);
    await gw.end(grant);
    await waitForTimers(b, workstationId, ['power.disconnect']);
    return { connectionId, workstationId, m, grant };
  }

  it('a user disconnects; an hour later the instance is stopped — one StopInstances, audited with the reason', async () => {
    const { workstationId, m } = await connectedThenGone(st.users[0]!);
    const [timer] = await b.services.timers.pendingForWorkstation(workstationId);
    expect(timer!.payload).toMatchObject({ workstationId, reason: 'disconnect + 60 min → stop', action: 'stop', source: 'gateway' });
    expect(timer!.dueAt.getTime()).toBe(clock.now().getTime() + 60 * MIN);

    const stopsBefore = calls(emu, 'StopInstances');
    clock.advance(59 * MIN);
    await fire();
    expect(calls(emu, 'StopInstances')).toBe(stopsBefore);
    expect(instanceOf(emu, m.externalId)!.state).toBe('running');

    clock.advance(2 * MIN);
    await fire();
    expect(calls(emu, 'StopInstances')).toBe(stopsBefore + 1);
    expect(['stopping', 'stopped']).toContain(instanceOf(emu, m.externalId)!.state);
    expect((await ws(workstationId)).powerState).toBe('stopping');
    const audit = await b.services.audit.list({ action: 'workstation.stop' }, 5, 0);
    expect(audit.items[0]).toMatchObject({ targetId: workstationId, outcome: 'success', details: expect.objectContaining({ reason: 'disconnect + 60 min → stop' }) });
    // Fired once: nothing pending, nothing more to fire.
    expect(await b.services.timers.pendingForWorkstation(workstationId)).toEqual([]);
    await fire();
    expect(calls(emu, 'StopInstances')).toBe(stopsBefore + 1);
  });

  it('reconnecting before the delay cancels the stop', async () => {
    const user = st.users[1]!;
    const first = await connect(b, st, user);
    const m = await ws(first.workstationId);
    await gw.end(await gw.start(first.connectionId, m.privateAddress));
    await waitForTimers(b, m.id, ['power.disconnect']);
    clock.advance(30 * MIN);
    const again = await connect(b, st, user);
    expect(again.workstationId).toBe(m.id); // the same machine: the assignment was kept
    await gw.start(again.connectionId, m.privateAddress);
    await waitForTimers(b, m.id, []);
    const stopsBefore = calls(emu, 'StopInstances');
    clock.advance(3 * 60 * MIN);
    await fire();
    const stops = await b.services.audit.list({ action: 'workstation.stop' }, 5, 0);
    expect(stops.items.map((i: { targetId: string | null; details: unknown }) => [i.targetId, i.details]), `machine ${m.id}`).toHaveLength(1);
    expect(calls(emu, 'StopInstances')).toBe(stopsBefore);
    expect(instanceOf(emu, m.externalId)!.state).toBe('running');
  });

  it('a session start delivered after its end (the outbox is at least once, not ordered) does not cancel the stop', async () => {
    const { connectionId, workstationId, grant } = await connectedThenGone(st.users[6]!);
    // The start again, as a node that crashed between delivering it and marking it done would leave
    // it, or as it arrives when the end's delivery overtook it: through the outbox's own timer.
    await b.services.gateways.sessionEvents.record({ type: 'started', connectionId, grantId: grant, gatewayId: null, at: clock.now(), clientAddress: '198.51.100.7', bytesUp: 0, bytesDown: 0 }, b.database.db);
    await fire();
    expect((await b.services.timers.pendingForWorkstation(workstationId)).map((t) => t.kind)).toEqual(['power.disconnect']);
    const stopsBefore = calls(emu, 'StopInstances');
    clock.advance(61 * MIN);
    await fire();
    expect(calls(emu, 'StopInstances')).toBe(stopsBefore + 1);
  });

  it('logout reported by the agent → the floating assignment is released and the instance terminated after the delay', async () => {
    const { workstationId } = await connect(b, st, st.users[2]!);
    const m = await ws(workstationId);
    const agent = await testAgent(b, st, workstationId);
    expect((await agent.report([{ type: 'login', user: 'artist0002' }])).sessionState).toBe('active');
    const out = await agent.report([{ type: 'logout', user: 'artist0002' }]);
    expect(out).toMatchObject({ workstationId, sessionState: 'none', notice: null });
    const pending = await b.services.timers.pendingForWorkstation(workstationId);
    expect(pending.map((t) => [t.kind, t.payload.reason])).toEqual([
      ['release.logout', 'logout + 0 s → release'],
      ['power.logout', 'logout + 5 min → terminate'],
    ]);
    await fire(); // the release is due at once
    expect(await assignmentState(workstationId)).toEqual({ state: 'released', release_reason: 'logout' });
    const before = calls(emu, 'TerminateInstances');
    clock.advance(5 * MIN + 1000);
    await fire();
    expect(calls(emu, 'TerminateInstances')).toBe(before + 1);
    expect(['shutting-down', 'terminated']).toContain(instanceOf(emu, m.externalId)!.state);
  });

  it('idle reported by the agent → stop after the idle delay; activity before it cancels', async () => {
    const { workstationId } = await connect(b, st, st.users[3]!);
    const m = await ws(workstationId);
    const agent = await testAgent(b, st, workstationId);
    await agent.report([{ type: 'login', user: 'artist0003' }]);
    await agent.report([{ type: 'idle', user: 'artist0003', idleSeconds: 600 }]);
    expect((await b.services.timers.pendingForWorkstation(workstationId)).map((t) => t.kind)).toEqual(['power.idle']);
    clock.advance(10 * MIN);
    await agent.report([{ type: 'active', user: 'artist0003' }]);
    expect(await b.services.timers.pendingForWorkstation(workstationId)).toEqual([]);

    const r = await agent.report([{ type: 'idle', user: 'artist0003', idleSeconds: 900 }]);
    expect(r.sessionState).toBe('idle');
    // Repeated idle reports do not push the timer back.
    const due = (await b.services.timers.pendingForWorkstation(workstationId))[0]!.dueAt;
    clock.advance(5 * MIN);
    await agent.report([{ type: 'idle', user: 'artist0003', idleSeconds: 1200 }, { type: 'heartbeat' }]);
    expect((await b.services.timers.pendingForWorkstation(workstationId))[0]!.dueAt).toEqual(due);
    const before = calls(emu, 'StopInstances');
    clock.advance(26 * MIN);
    await fire();
    expect(calls(emu, 'StopInstances')).toBe(before + 1);
    expect(['stopping', 'stopped']).toContain(instanceOf(emu, m.externalId)!.state);
  });

  it('a machine with a live session is never stopped, even by a timer that is due', async () => {
    const { connectionId, workstationId } = await connect(b, st, st.users[4]!);
    const m = await ws(workstationId);
    await gw.delivered(await gw.start(connectionId, m.privateAddress)); // its cancelling of power timers is over
    // A disconnect timer the reconnect did not cancel (say, scheduled by another node a moment before).
    await b.services.timers.schedule({ kind: 'power.disconnect', key: workstationId, dueAt: clock.now(), payload: { workstationId, trigger: 'disconnect', action: 'stop', eventAt: clock.now().toISOString(), reason: 'disconnect + 0 s → stop' } });
    const before = calls(emu, 'StopInstances');
    await fire();
    expect(calls(emu, 'StopInstances')).toBe(before);
    expect(instanceOf(emu, m.externalId)!.state).toBe('running');
    const skipped = await b.services.audit.list({ action: 'power_plan.stop' }, 5, 0);
    expect(skipped.items[0]).toMatchObject({ targetId: workstationId, reason: 'skipped: a session is connected' });
  });

  it('an agent token speaks only for its own machine; a rotated token stops working', async () => {
    const a = await connect(b, st, st.users[5]!);
    const agentA = await testAgent(b, st, a.workstationId);
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/agent/events', headers: { authorization: `Bearer ${agentA.token}` }, payload: { agentVersion: 't', events: [{ type: 'login', user: 'x' }] } });
    expect(res.json().workstationId).toBe(a.workstationId);
    const rotated = await st.call('POST', `/api/v1/workstations/${a.workstationId}/agent-token`);
    expect(rotated.token).not.toBe(agentA.token);
    const old = await b.app.inject({ method: 'POST', url: '/api/v1/agent/events', headers: { authorization: `Bearer ${agentA.token}` }, payload: { agentVersion: 't', events: [] } });
    expect(old.statusCode).toBe(401);
    for (const bad of ['', 'Bearer nonsense', `Bearer ${agentA.token}x`]) {
      const r = await b.app.inject({ method: 'POST', url: '/api/v1/agent/events', headers: bad ? { authorization: bad } : {}, payload: { agentVersion: 't', events: [] } });
      expect(r.statusCode).toBe(401);
    }
    const unknownField = await b.app.inject({ method: 'POST', url: '/api/v1/agent/events', headers: { authorization: `Bearer ${rotated.token}` }, payload: { agentVersion: 't', workstationId: a.workstationId, events: [] } });
    expect(unknownField.statusCode).toBe(400);
    const audit = await b.services.audit.list({ action: 'workstation.agent_token' }, 10, 0);
    expect(audit.items.filter((i: { targetId: string | null }) => i.targetId === a.workstationId)).toHaveLength(2);
  });
});
