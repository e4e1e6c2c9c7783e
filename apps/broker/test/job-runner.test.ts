import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/domain/clock.ts';
import { JobRunner } from '../src/jobs/job-runner.ts';
import { Metrics } from '../src/observability/metrics.ts';
import { createTestDatabase, DRIVERS, silentLog, type TestDatabase } from '../../../test/support/database.ts';

describe.each(DRIVERS)('job runner [%s]', (driver) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(driver);
  });
  afterAll(async () => t?.close());

  it('runs a job on one runner at a time; the other skips while the lock is held', async () => {
    const metrics = [new Metrics(() => t.database.poolStats()), new Metrics(() => t.database.poolStats())];
    let inside = 0;
    let maxInside = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const runners = metrics.map((m) => {
      const r = new JobRunner({ database: t.database, clock: systemClock, log: silentLog, metrics: m });
      r.register({
        name: 'reconcile',
        intervalMs: 1000,
        run: async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await gate;
          inside--;
          return { touched: 1 };
        },
      });
      return r;
    });
    const first = runners[0]!.runOnce('reconcile');
    await new Promise((r) => setTimeout(r, 50));
    const second = await runners[1]!.runOnce('reconcile');
    release();
    expect(await first).toEqual({ outcome: 'ok', stats: { touched: 1 } });
    expect(second).toEqual({ outcome: 'skipped' });
    expect(maxInside).toBe(1);
    const text = await metrics[1]!.registry.getSingleMetricAsString('stagedoor_job_runs_total');
    expect(text).toContain('job="reconcile",outcome="skipped"} 1');
  });

  it('records a failing pass as an error and keeps going', async () => {
    const m = new Metrics(() => t.database.poolStats());
    const r = new JobRunner({ database: t.database, clock: systemClock, log: silentLog, metrics: m });
    r.register({ name: 'broken', intervalMs: 1000, run: async () => Promise.reject(new Error('boom')) });
    expect(await r.runOnce('broken')).toEqual({ outcome: 'error', error: 'boom' });
    expect(await m.registry.getSingleMetricAsString('stagedoor_job_runs_total')).toContain('job="broken",outcome="error"} 1');
  });

  it('a quietWhenIdle job logs its idle passes at debug and its busy ones at info; other jobs log every pass at info', async () => {
    const lines: { level: number; job: string; stats: Record<string, number> }[] = [];
    const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
    const r = new JobRunner({ database: t.database, clock: systemClock, log, metrics: new Metrics(() => t.database.poolStats()) });
    let fired = 0;
    r.register({ name: 'every-second', intervalMs: 1000, quietWhenIdle: true, run: async () => ({ fired }) });
    r.register({ name: 'hourly', intervalMs: 3_600_000, run: async () => ({ deleted: 0 }) });
    await r.runOnce('every-second');
    fired = 2;
    await r.runOnce('every-second');
    await r.runOnce('hourly');
    expect(lines.map((l) => [l.job, l.stats, l.level])).toEqual([['every-second', { fired: 0 }, 20], ['every-second', { fired: 2 }, 30], ['hourly', { deleted: 0 }, 30]]);
  });
});
