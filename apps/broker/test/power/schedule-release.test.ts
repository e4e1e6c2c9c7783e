import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { bearer } from '../../../../test/support/studio.ts';
import { createTestBroker, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { startTestEmulator } from '../../../../test/support/ec2.ts';
import { waitFor } from '../../../../test/support/ports.ts';
import { calls, connect, instanceOf, powerStudio, testAgent, testGateway, type PowerStudio } from './power-fixture.ts';

/** A release plan's warning and forced logout through the agent, then a schedule rule at 20:00 London. */
describe.each(DRIVERS)('release warnings and schedule rules [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T19:00:00Z'); // a Monday; London is on UTC in March
  let emu: Ec2Emulator;
  let b: TestBroker;
  let st: PowerStudio;
  let benAgent: Awaited<ReturnType<typeof testAgent>>;
  /** Time passes with the agents heartbeating (once a minute, as they do), so what they said stays trusted. */
  const pass = async (ms: number, ...agents: Awaited<ReturnType<typeof testAgent>>[]) => {
    for (let left = ms; left > 0; left -= 60_000) {
      clock.advance(Math.min(60_000, left));
      for (const a of agents) await a.report([{ type: 'heartbeat' }]);
    }
  };

  beforeAll(async () => {
    emu = await startTestEmulator();
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: 'ab'.repeat(32) } });
    st = await powerStudio(b, emu, {
      machines: 4,
      powerPlan: { name: 'evenings', scheduleRules: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], at: '20:00', action: 'stop', target: 'no-session' }], timeZone: 'Europe/London' },
      releasePlan: { name: 'idle gives back', releaseOnIdleSeconds: 300, forceLogout: true, warnSeconds: 120, warnMessage: 'Save your work: this desktop is released in 2 minutes.' },
    });
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  it('idle → the agent gets the warning, then the logout order; the floating assignment is released', async () => {
    const { workstationId } = await connect(b, st, st.users[0]!);
    const agent = await testAgent(b, st, workstationId);
    await agent.report([{ type: 'login', user: 'ana' }, { type: 'idle', user: 'ana', idleSeconds: 300 }]);
    await pass(301_000, agent);
    await b.services.timers.fireDue();
    const warned = await agent.report([{ type: 'heartbeat' }]);
    expect(warned.notice).toMatchObject({ kind: 'warn', message: 'Save your work: this desktop is released in 2 minutes.', logoutAt: new Date(clock.now().getTime() + 120_000).toISOString() });
    expect((await b.services.timers.pendingForWorkstation(workstationId)).map((t) => t.kind)).toEqual(['release.forced-logout']);

    await pass(121_000, agent);
    await b.services.timers.fireDue();
    const ordered = await agent.report([]);
    expect(ordered.notice).toMatchObject({ kind: 'logout' });
    const [a] = rowsOf<{ state: string; release_reason: string }>(await b.database.db.execute(sql`select state, release_reason from assignments where workstation_id = ${workstationId}`));
    expect(a).toEqual({ state: 'released', release_reason: 'idle' });
    // The agent logs the user out and says so: the order is done.
    expect((await agent.report([{ type: 'logout', user: 'ana' }])).notice).toBeNull();
  });

  it('a user back before the logout keeps the desktop: activity cancels the forced logout and clears the warning', async () => {
    const { workstationId } = await connect(b, st, st.users[1]!);
    const agent = (benAgent = await testAgent(b, st, workstationId));
    await agent.report([{ type: 'login', user: 'ben' }, { type: 'idle', user: 'ben', idleSeconds: 300 }]);
    await pass(301_000, agent);
    await b.services.timers.fireDue();
    expect((await agent.report([])).notice?.kind).toBe('warn');
    const back = await agent.report([{ type: 'active', user: 'ben' }]);
    expect(back.notice).toBeNull();
    expect(await b.services.timers.pendingForWorkstation(workstationId)).toEqual([]);
    await pass(10 * 60_000, agent);
    await b.services.timers.fireDue();
    const [a] = rowsOf<{ state: string }>(await b.database.db.execute(sql`select state from assignments where workstation_id = ${workstationId}`));
    expect(a!.state).toBe('active');
  });

  it('weekdays at 20:00 London: running machines with no session stop; the one in use does not', async () => {
    const gw = await testGateway(b, clock);
    // ben's machine (assigned, agent active) stays; one more user with a live gateway session stays.
    const live = await connect(b, st, st.users[2]!);
    const liveWs = await st.call('GET', `/api/v1/workstations/${live.workstationId}`);
    await gw.start(live.connectionId, liveWs.privateAddress);

    expect(await b.services.powerTimers.keepScheduleTimers()).toEqual({ scheduled: 1, moved: 0, cancelled: 0 });
    expect(await b.services.powerTimers.keepScheduleTimers()).toEqual({ scheduled: 0, moved: 0, cancelled: 0 });
    const [timer] = await b.services.timers.pending('power.schedule');
    expect(timer!.dueAt.toISOString()).toBe('2026-03-02T20:00:00.000Z');
    expect(timer!.payload.reason).toBe('schedule: mon,tue,wed,thu,fri at 20:00 Europe/London → stop (no-session)');

    const machines = (await st.call('GET', `/api/v1/workstations?poolId=${st.poolId}`)).items as { id: string; externalId: string; powerState: string; agentSessionState: string }[];
    const before = calls(emu, 'StopInstances');
    clock.set('2026-03-02T20:00:30Z');
    await benAgent.report([{ type: 'heartbeat' }]);
    await b.services.timers.fireDue();
    const stopped = machines.filter((m) => ['stopping', 'stopped'].includes(instanceOf(emu, m.externalId)!.state));
    // Stopped: ana's released machine and the machine nobody took. Kept: ben's (agent active) and the live session.
    expect(stopped.map((m) => m.id).sort()).toEqual(machines.filter((m) => m.id !== live.workstationId && m.agentSessionState !== 'active').map((m) => m.id).sort());
    expect(stopped).toHaveLength(2);
    expect(calls(emu, 'StopInstances') - before).toBe(2);
    // The next occurrence is Tuesday's, once the job runs again.
    await b.services.powerTimers.keepScheduleTimers();
    expect((await b.services.timers.pending('power.schedule'))[0]!.dueAt.toISOString()).toBe('2026-03-03T20:00:00.000Z');
    // The admin moves the rule: the pending timer moves with it; removing the rule cancels it.
    const plan = ((await st.call('GET', '/api/v1/power-plans')).items as { id: string; name: string }[]).find((p) => p.name === 'evenings')!;
    await st.call('PUT', `/api/v1/power-plans/${plan.id}`, { name: 'evenings', scheduleRules: [{ days: ['mon'], at: '21:00', action: 'stop', target: 'no-session' }], timeZone: 'Europe/London' });
    expect(await b.services.powerTimers.keepScheduleTimers()).toEqual({ scheduled: 0, moved: 1, cancelled: 0 });
    expect((await b.services.timers.pending('power.schedule'))[0]!.dueAt.toISOString()).toBe('2026-03-02T21:00:00.000Z');
    await st.call('PUT', `/api/v1/power-plans/${plan.id}`, { name: 'evenings', timeZone: 'Europe/London' });
    expect(await b.services.powerTimers.keepScheduleTimers()).toEqual({ scheduled: 0, moved: 0, cancelled: 1 });
    // A user of a stopped floating machine connects again: start on login uses the same start operation.
    const starts = calls(emu, 'StartInstances');
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(st.users[3]!), payload: { poolId: st.poolId } });
    expect(res.statusCode).toBe(201);
    await waitFor('start on login, audited', async () => (await b.services.audit.list({ action: 'workstation.start' }, 1, 0)).items[0]?.targetId === res.json().workstation.id, 30_000, 10);
    expect(calls(emu, 'StartInstances')).toBe(starts + 1);
  });
});
