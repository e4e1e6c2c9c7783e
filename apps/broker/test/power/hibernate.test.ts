import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { as, createTestBroker, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { frozenClock, startTestEmulator } from '../../../../test/support/ec2.ts';
import { calls, connect, instanceOf, powerStudio, testAgent, type PowerStudio } from './power-fixture.ts';

const MIN = 60_000;
// Emulated EC2: a cold boot takes 10 s, a resume 3 s; a plain stop 5 s, a hibernation 20 s.
const DELAYS = { pendingMs: 10_000, resumeMs: 3_000, stoppingMs: 5_000, hibernatingMs: 20_000, shuttingDownMs: 5_000 };

/**
 * A power plan that hibernates (issue 19 point 3): the pool launches its machines hibernation-ready
 * (m5.xlarge, encrypted 30 GiB root), the idle timer hibernates one, and it comes back faster than
 * a machine that was stopped, on the emulator's clock. A machine that cannot hibernate is stopped
 * instead, and the audit row says why.
 */
describe.each(DRIVERS)('hibernate as a power action, on the EC2 emulator [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  let emu: Ec2Emulator;
  let b: TestBroker;
  let st: PowerStudio;

  const ws = async (id: string) => (await st.call('GET', `/api/v1/workstations/${id}`)) as { id: string; externalId: string; powerState: string };
  /** Emulated ms until the instance reports `state`, moving the emulator's clock 500 ms at a time. */
  const msUntil = (externalId: string, state: string) => {
    for (let ms = 0; ms <= 120_000; ms += 500) {
      if (instanceOf(emu, externalId)?.state === state) return ms;
      emu.control.advanceTime(500);
    }
    throw new Error(`${externalId} never became ${state}`);
  };

  beforeAll(async () => {
    emu = await startTestEmulator({ clock: frozenClock(), delays: DELAYS });
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: 'ab'.repeat(32) } });
    st = await powerStudio(b, emu, {
      machines: 2,
      template: { instanceTypes: ['m5.xlarge'], hibernation: true, rootVolumeGiB: 30 },
      powerPlan: { name: 'sleep when idle', onIdle: { action: 'hibernate', delaySeconds: 1800 } },
    });
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  it('the pool launches hibernation-ready machines; the idle timer hibernates one, which then resumes faster than a stopped one boots', async () => {
    const members = (await st.call('GET', `/api/v1/workstations?poolId=${st.poolId}`)).items as { id: string; externalId: string }[];
    expect(members).toHaveLength(2);
    for (const m of members) {
      const instance = instanceOf(emu, m.externalId)!;
      expect(instance).toMatchObject({ state: 'running', hibernationConfigured: true, rootVolume: expect.objectContaining({ encrypted: true, sizeGiB: 30 }) });
    }

    const { workstationId } = await connect(b, st, st.users[0]!);
    const idle = await ws(workstationId);
    const other = members.find((m) => m.id !== workstationId)!;
    const agent = await testAgent(b, st, workstationId);
    await agent.report([{ type: 'login', user: 'artist0000' }]);
    await agent.report([{ type: 'idle', user: 'artist0000', idleSeconds: 600 }]);
    const [timer] = await b.services.timers.pendingForWorkstation(workstationId);
    expect(timer!.payload).toMatchObject({ action: 'hibernate', reason: 'idle + 30 min → hibernate' });

    const stops = calls(emu, 'StopInstances');
    clock.advance(31 * MIN);
    await b.services.timers.fireDue();
    expect(calls(emu, 'StopInstances')).toBe(stops + 1);
    expect(instanceOf(emu, idle.externalId)).toMatchObject({ state: 'stopping', hibernated: true, stateReason: { code: 'Client.UserInitiatedHibernate' } });
    const audit = await b.services.audit.list({ action: 'workstation.stop', targetId: workstationId }, 1, 0);
    expect(audit.items[0]).toMatchObject({ outcome: 'success', details: expect.objectContaining({ hibernate: true, reason: 'idle + 30 min → hibernate' }) });
    expect(audit.items[0]!.details).not.toHaveProperty('hibernateFallback');

    // The other machine is stopped the ordinary way, at the same moment.
    await st.call('POST', `/api/v1/workstations/${other.id}/stop`, {});
    const stoppedAfter = { hibernated: 0, stopped: 0 };
    for (let ms = 0; ms <= 60_000 && !(stoppedAfter.hibernated && stoppedAfter.stopped); ms += 500) {
      if (!stoppedAfter.stopped && instanceOf(emu, other.externalId)?.state === 'stopped') stoppedAfter.stopped = ms;
      if (!stoppedAfter.hibernated && instanceOf(emu, idle.externalId)?.state === 'stopped') stoppedAfter.hibernated = ms;
      emu.control.advanceTime(500);
    }
    // Hibernating takes longer than stopping (the RAM goes to the root volume)...
    expect(stoppedAfter.hibernated).toBeGreaterThan(stoppedAfter.stopped);

    // ...and coming back is faster: a resume, not a boot.
    await st.call('POST', `/api/v1/workstations/${workstationId}/start`);
    const resume = msUntil(idle.externalId, 'running');
    await st.call('POST', `/api/v1/workstations/${other.id}/start`);
    const boot = msUntil(other.externalId, 'running');
    expect({ resume, boot }).toEqual({ resume: DELAYS.resumeMs, boot: DELAYS.pendingMs });
    expect(resume).toBeLessThan(boot);
    await b.services.providers.syncNow(systemActor, st.providerId);
    expect((await ws(workstationId)).powerState).toBe('running');
  });

  it('a machine launched without hibernation (GPU family) is stopped instead, and the audit row says why', async () => {
    const subnetId = emu.control.defaultNetwork().subnets[0]!.subnetId;
    const gpu = await st.call('POST', '/api/v1/workstations', { providerId: st.providerId, name: 'gpu-1', imageId: 'ami-0c0ffee0c0ffee001', instanceType: 'g5.xlarge', subnetId });
    // EC2 refuses hibernation for the g5 family at launch: a clear 409, nothing launched, no row left.
    const refused = await b.app.inject({ method: 'POST', url: '/api/v1/workstations', headers: as(st.admin), payload: { providerId: st.providerId, name: 'gpu-2', imageId: 'ami-0c0ffee0c0ffee001', instanceType: 'g5.xlarge', subnetId, hibernation: true } });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toMatch(/UnsupportedHibernationConfiguration/);
    expect(emu.control.instances().filter((i) => i.instanceType === 'g5.xlarge')).toHaveLength(1);
    // A pool that asks for hibernation on a type that cannot is refused up front, naming the type.
    const pool = await b.app.inject({ method: 'POST', url: '/api/v1/pools', headers: as(st.admin), payload: { name: 'gpu', providerId: st.providerId, template: { imageId: 'ami-0c0ffee0c0ffee001', instanceTypes: ['m5.xlarge', 'g5.xlarge'], subnetIds: [subnetId], hibernation: true, rootVolumeGiB: 60 } } });
    expect(pool.statusCode).toBe(400);
    expect(pool.json().error.details.fields).toEqual([{ path: 'template.instanceTypes[1]', message: expect.stringMatching(/^g5\.xlarge cannot hibernate/) }]);

    emu.control.advanceTime(DELAYS.pendingMs);
    await b.services.providers.syncNow(systemActor, st.providerId);
    const stops = calls(emu, 'StopInstances');
    const res = await st.call('POST', `/api/v1/workstations/${gpu.id}/stop`, { hibernate: true });
    expect(res.current).toBe('stopping');
    // One refused hibernation, then the plain stop.
    expect(calls(emu, 'StopInstances')).toBe(stops + 2);
    expect(instanceOf(emu, gpu.externalId)).toMatchObject({ state: 'stopping', stateReason: { code: 'Client.UserInitiatedShutdown' } });
    const audit = await b.services.audit.list({ action: 'workstation.stop', targetId: gpu.id }, 1, 0);
    expect(audit.items[0]).toMatchObject({
      outcome: 'success',
      details: expect.objectContaining({ hibernate: false, hibernateFallback: 'stop', hibernateRefused: expect.stringMatching(/UnsupportedHibernationConfiguration: Hibernation is not configured for the instance/) }),
    });
  });
});
