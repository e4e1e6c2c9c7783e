import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { ManualClock } from '../src/domain/clock.ts';
import { timers } from '../src/db/schema/index.ts';
import { TimersRepository, type TimerRow } from '../src/jobs/timers.repository.ts';
import { TimerService } from '../src/jobs/timers.service.ts';
import { Metrics } from '../src/observability/metrics.ts';
import { createTestDatabase, DRIVERS, silentLog, type TestDatabase } from '../../../test/support/database.ts';

describe.each(DRIVERS)('durable timers [%s]', (driver) => {
  let t: TestDatabase;
  let clock: ManualClock;
  const node = (nodeId: string) =>
    new TimerService({ repo: new TimersRepository(t.database.db), clock, log: silentLog, metrics: new Metrics(() => t.database.poolStats()), nodeId }, { backoffBaseMs: 10_000 });

  beforeAll(async () => {
    t = await createTestDatabase(driver);
  });
  afterAll(async () => t?.close());
  beforeEach(async () => {
    clock = new ManualClock('2026-06-01T12:00:00Z');
    await t.database.db.delete(timers);
  });

  it('fires a timer only once it is due, by the injected clock', async () => {
    const fired: string[] = [];
    const svc = node('n1');
    svc.handle('stop', async (tm) => void fired.push(tm.key));
    await svc.schedule({ kind: 'stop', key: 'ws-1', dueAt: new Date('2026-06-01T13:00:00Z') });
    expect((await svc.fireDue()).done).toBe(0);
    clock.advance(59 * 60_000);
    expect((await svc.fireDue()).done).toBe(0);
    clock.advance(60_000);
    expect(await svc.fireDue()).toMatchObject({ claimed: 1, done: 1 });
    expect(fired).toEqual(['ws-1']);
    expect((await svc.fireDue()).claimed).toBe(0);
  });

  it('scheduling the same key again moves the timer instead of adding one; cancel removes it', async () => {
    const svc = node('n1');
    await svc.schedule({ kind: 'stop', key: 'ws-2', dueAt: new Date('2026-06-01T12:10:00Z') });
    await svc.schedule({ kind: 'stop', key: 'ws-2', dueAt: new Date('2026-06-01T12:30:00Z') });
    const rows = await t.database.db.select().from(timers).where(sql`${timers.key} = 'ws-2'`);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.dueAt.toISOString()).toBe('2026-06-01T12:30:00.000Z');
    expect(await svc.cancel('stop', 'ws-2')).toBe(1);
    clock.advance(3_600_000);
    svc.handle('stop', async () => {
      throw new Error('must not fire');
    });
    expect((await svc.fireDue()).claimed).toBe(0);
  });

  it('retries a failing handler with growing backoff, then gives up', async () => {
    const svc = node('n1');
    let calls = 0;
    svc.handle('flaky', async () => {
      calls++;
      if (calls < 3) throw new Error(`cloud said no (${calls})`);
    });
    await svc.schedule({ kind: 'flaky', key: 'k', dueAt: clock.now() });
    expect((await svc.fireDue()).retried).toBe(1);
    let [row] = await t.database.db.select().from(timers);
    expect(row!.dueAt.getTime() - clock.now().getTime()).toBe(10_000);
    expect(row!.lastError).toContain('cloud said no (1)');
    clock.advance(10_000);
    expect((await svc.fireDue()).retried).toBe(1);
    [row] = await t.database.db.select().from(timers);
    expect(row!.dueAt.getTime() - clock.now().getTime()).toBe(20_000);
    clock.advance(20_000);
    expect((await svc.fireDue()).done).toBe(1);
    expect(calls).toBe(3);

    svc.handle('doomed', async () => {
      throw new Error('never works');
    });
    await svc.schedule({ kind: 'doomed', key: 'k', dueAt: clock.now(), maxAttempts: 2 });
    await svc.fireDue();
    clock.advance(3_600_000);
    expect((await svc.fireDue()).failed).toBe(1);
    const [doomed] = await t.database.db.select().from(timers).where(sql`${timers.kind} = 'doomed'`);
    expect(doomed!.state).toBe('failed');
  });

  it('survives a restart: a timer written by one service instance fires from a new one', async () => {
    await node('before-restart').schedule({ kind: 'stop', key: 'ws-3', dueAt: new Date('2026-06-01T12:05:00Z') });
    const fired: TimerRow[] = [];
    const after = node('after-restart');
    after.handle('stop', async (tm) => void fired.push(tm));
    clock.advance(5 * 60_000);
    await after.fireDue();
    expect(fired.map((f) => f.key)).toEqual(['ws-3']);
  });

  it('fires each timer exactly once when several nodes claim at the same time', async () => {
    const fired = new Map<string, string[]>();
    const nodes = ['n1', 'n2', 'n3'].map((id) => {
      const svc = node(id);
      svc.handle('stop', async (tm) => {
        fired.set(tm.key, [...(fired.get(tm.key) ?? []), id]);
        await new Promise((r) => setTimeout(r, 1));
      });
      return svc;
    });
    for (let i = 0; i < 60; i++) await nodes[0]!.schedule({ kind: 'stop', key: `ws-${i}`, dueAt: clock.now() });
    const results = await Promise.all(nodes.map((n) => n.fireDue()));
    expect(results.reduce((s, r) => s + r.done, 0)).toBe(60);
    expect(fired.size).toBe(60);
    for (const [, by] of fired) expect(by).toHaveLength(1);
    if (driver === 'postgres') console.log(`[timers] 60 timers over 3 nodes: ${results.map((r) => r.done).join(' + ')}`);
  });

  it('a node that dies holding a lease hands the timer to another after the lease', async () => {
    const repo = new TimersRepository(t.database.db);
    await node('n1').schedule({ kind: 'stop', key: 'ws-crash', dueAt: clock.now() });
    const claimed = await repo.claimDue(clock.now(), 10, 'crashed-node', 60_000);
    expect(claimed).toHaveLength(1);
    const survivor = node('n2');
    const fired: string[] = [];
    survivor.handle('stop', async (tm) => void fired.push(tm.key));
    expect((await survivor.fireDue()).claimed).toBe(0);
    clock.advance(60_000);
    expect((await survivor.fireDue()).done).toBe(1);
    expect(fired).toEqual(['ws-crash']);
    // The crashed node coming back late cannot mark it done a second time.
    expect(await repo.markDone(claimed[0]!.id, 'crashed-node', clock.now())).toBe(false);
  });
});
