import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { connections } from '../../src/db/schema/index.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { WEEK_MS } from '../../src/domain/pools/forecast.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { createTestBroker, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { startTestEmulator } from '../../../../test/support/ec2.ts';
import { calls, connect, powerStudio, type PowerStudio } from './power-fixture.ts';

const MIN = 60_000;

/**
 * Persistent pre-start on the broker's clock and the EC2 emulator: a user who came at 09:00 on the
 * last four Mondays finds their own machine started at 08:52 — only once the policy's switch is on —
 * and a machine pre-started for nobody is stopped again 40 min later.
 */
describe.each(DRIVERS)('persistent pre-start [%s]', (driver) => {
  const clock = new ManualClock('2026-11-30T08:00:00Z'); // a Monday; the pool's time zone is UTC
  let emu: Ec2Emulator;
  let b: TestBroker;
  let st: PowerStudio;
  let policyId: string;
  let workstationId: string;
  let assignmentId: string;

  const machine = async () =>
    rowsOf<{ power_state: string; prestarted_at: Date | null }>(
      await b.database.db.execute(sql`select w.power_state, a.prestarted_at from workstations w join assignments a on a.workstation_id = w.id and a.state = 'active' where w.id = ${workstationId}`),
    )[0]!;
  /** Stop the machine and let the emulator and the inventory agree that it is stopped. */
  const stopMachine = async () => {
    await b.services.workstations.power(systemActor, workstationId, 'stop');
    emu.control.advanceTime(60_000);
    await b.services.providers.syncNow(systemActor, st.providerId);
    expect((await machine()).power_state).toBe('stopped');
  };
  const at = async (iso: string) => {
    clock.set(new Date(iso));
    return b.services.prestart.runDue();
  };

  beforeAll(async () => {
    emu = await startTestEmulator();
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: 'ab'.repeat(32) } });
    st = await powerStudio(b, emu, { machines: 1, users: 1, powerPlan: { name: 'manual' } });
    policyId = (await st.call('GET', '/api/v1/policies')).items[0].id;
    await st.call('PATCH', `/api/v1/policies/${policyId}`, { assignmentMode: 'persistent' });
    const user = st.users[0]!;
    ({ workstationId } = await connect(b, st, user));
    const [a] = rowsOf<{ id: string }>(await b.database.db.execute(sql`select id from assignments where workstation_id = ${workstationId} and state = 'active'`));
    assignmentId = a!.id;
    // Four past Mondays of history: the assignment is older, and the user came at 09:00 each week.
    await b.database.db.execute(sql`update assignments set since = ${new Date(clock.now().getTime() - 5 * WEEK_MS)} where id = ${assignmentId}`);
    await b.database.db.execute(sql`update connections set state = 'closed', closed_at = ${clock.now()}, end_reason = 'client-closed' where workstation_id = ${workstationId}`);
    for (const k of [1, 2, 3, 4]) {
      const t = Date.parse('2026-11-30T09:00:00Z') - k * WEEK_MS;
      await b.database.db.insert(connections).values({ userId: user.id, workstationId, assignmentId, protocol: 'rdp', state: 'closed', requestedAt: new Date(t), closedAt: new Date(t + 8 * 60 * MIN), endReason: 'client-closed' });
    }
    await stopMachine();
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  it('the switch is off by default: no candidates, nothing started', async () => {
    expect(await at('2026-11-30T08:52:00Z')).toMatchObject({ candidates: 0, started: 0 });
    expect((await machine()).power_state).toBe('stopped');
  });

  it('with the switch on: not at 08:40, started at 08:52 with its reason logged and audited, once', async () => {
    expect((await st.call('PATCH', `/api/v1/policies/${policyId}`, { prestartPersistent: true })).prestartPersistent).toBe(true);
    const startsBefore = calls(emu, 'StartInstances');
    expect(await at('2026-11-30T08:40:00Z')).toMatchObject({ candidates: 1, started: 0 });
    expect(calls(emu, 'StartInstances')).toBe(startsBefore);

    expect(await at('2026-11-30T08:52:00Z')).toMatchObject({ candidates: 1, started: 1 });
    expect(calls(emu, 'StartInstances')).toBe(startsBefore + 1);
    const m = await machine();
    expect(['pending', 'running']).toContain(m.power_state);
    expect(new Date(m.prestarted_at!).toISOString()).toBe('2026-11-30T08:52:00.000Z');
    const [audit] = rowsOf<{ details: { reason: string } }>(await b.database.db.execute(sql`select details from audit_events where action = 'workstation.start' and target_id = ${workstationId} order by at desc limit 1`));
    expect(audit!.details.reason).toMatch(/^pre-start: likely arrival: arrived mon 08:52–09:02 UTC in 4 of the last 5 week\(s\)/);
    expect(b.logLines.some((l) => l.includes('persistent pre-start: machine started') && l.includes('in 4 of the last'))).toBe(true);

    emu.control.advanceTime(120_000);
    await b.services.providers.syncNow(systemActor, st.providerId);
    expect(await at('2026-11-30T08:53:00Z')).toMatchObject({ started: 0, stopped: 0 });
    expect(calls(emu, 'StartInstances')).toBe(startsBefore + 1);
  });

  it('nobody came: kept until 40 min after the pre-start, then stopped; not started again in the cool-down', async () => {
    expect(await at('2026-11-30T09:31:00Z')).toMatchObject({ stopped: 0 });
    const stopsBefore = calls(emu, 'StopInstances');
    expect(await at('2026-11-30T09:32:00Z')).toMatchObject({ stopped: 1 });
    expect(calls(emu, 'StopInstances')).toBe(stopsBefore + 1);
    emu.control.advanceTime(60_000);
    await b.services.providers.syncNow(systemActor, st.providerId);
    expect((await machine()).power_state).toBe('stopped');
    expect(await at('2026-11-30T09:40:00Z')).toMatchObject({ started: 0, stopped: 0 });
  });
});
