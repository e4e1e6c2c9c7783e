import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { loadConfig } from '../../src/config/config.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { assembleBroker, type Broker } from '../../src/main.ts';
import { ADMIN_PASSWORD } from '../../../../test/support/broker.ts';
import { createPostgresDatabase, silentLog } from '../../../../test/support/database.ts';
import { startTestEmulator } from '../../../../test/support/ec2.ts';
import { calls, connect, instanceOf, powerStudio, testAgent } from './power-fixture.ts';

const MIN = 60_000;

/** A broker "process": its own pool of connections to the shared database, its own services and timers. */
async function brokerOn(url: string, clock: ManualClock, nodeId: string): Promise<Broker> {
  const database = await openPostgres({ url, poolSize: 4, log: silentLog });
  await runMigrations(database);
  const config = loadConfig({}, { STAGEDOOR_ADMIN_PASSWORD: ADMIN_PASSWORD, STAGEDOOR_JOBS: 'off', STAGEDOOR_NODE_ID: nodeId, STAGEDOOR_SECRET_KEY: 'cd'.repeat(32) });
  const log = pino({ level: 'info' }, new Writable({ write: (_c, _e, cb) => cb() }));
  return assembleBroker(config, database, { log, clock });
}

describe('a broker restart between the event and the due time [postgres]', () => {
  const clock = new ManualClock('2026-03-03T17:00:00Z');
  let emu: Ec2Emulator;
  let url: string;
  let first: Broker;
  let second: Broker | undefined;

  beforeAll(async () => {
    emu = await startTestEmulator();
    url = await createPostgresDatabase();
    first = await brokerOn(url, clock, 'node-before');
  });
  afterAll(async () => {
    await second?.close();
    await emu?.close();
  });

  it('the timer written before the restart fires after it, exactly once (one StopInstances)', async () => {
    const st = await powerStudio(first, emu, { machines: 1, users: 1, powerPlan: { name: 'night', onLogout: { action: 'stop', delaySeconds: 600 } } });
    const { workstationId } = await connect(first, st, st.users[0]!);
    const agent = await testAgent(first, st, workstationId);
    await agent.report([{ type: 'login', user: 'ana' }, { type: 'logout', user: 'ana' }]);
    expect((await first.services.timers.pendingForWorkstation(workstationId)).map((t) => t.kind)).toEqual(['power.logout']);
    const externalId = (await first.services.workstations.get(workstationId)).externalId!;
    await first.close(); // the node goes away with its timer still pending

    clock.advance(11 * MIN);
    second = await brokerOn(url, clock, 'node-after');
    const before = calls(emu, 'StopInstances');
    const fired = await second.services.timers.fireDue();
    expect(fired).toMatchObject({ claimed: 1, done: 1 });
    expect(calls(emu, 'StopInstances')).toBe(before + 1);
    expect(['stopping', 'stopped']).toContain(instanceOf(emu, externalId)!.state);

    // Fired once: the next pass finds nothing; a redelivery (at-least-once) finds the machine stopping.
    expect(await second.services.timers.fireDue()).toMatchObject({ claimed: 0 });
    const [row] = (await second.services.audit.list({ action: 'workstation.stop' }, 5, 0)).items;
    expect(row).toMatchObject({ targetId: workstationId, details: expect.objectContaining({ reason: 'logout + 10 min → stop' }) });
    const timerId = (row!.details as { timer: string }).timer;
    const timer = await second.database.db.query.timers.findFirst({ where: (t, { eq }) => eq(t.id, timerId) });
    expect(timer).toMatchObject({ state: 'done', leasedBy: 'node-after', attempts: 1 });
    await second.services.powerTimers.firePower(timer!);
    expect(calls(emu, 'StopInstances')).toBe(before + 1);
  });
});
