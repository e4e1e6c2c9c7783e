import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/migrate.ts';
import { ManualClock } from '../src/domain/clock.ts';
import { createTestBroker, type TestBroker } from '../../../test/support/broker.ts';
import { DRIVERS } from '../../../test/support/database.ts';
import { loginRaw } from './identity/helpers.ts';

const DAY = 86_400_000;

describe.each(DRIVERS)('audit retention and refusal storms [%s]', (driver) => {
  const clock = new ManualClock('2031-03-04T10:00:00Z');
  let b: TestBroker;
  const count = async (where: ReturnType<typeof sql>) => rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from audit_events where ${where}`))[0]!.n;

  beforeAll(async () => {
    b = await createTestBroker(driver, {
      clock,
      env: {
        STAGEDOOR_AUDIT_RETENTION_DAYS: '30',
        STAGEDOOR_AUDIT_REFUSALS_PER_MINUTE: '5',
        STAGEDOOR_LOGIN_RATE_PER_MINUTE: '1000',
        STAGEDOOR_TRUSTED_PROXIES: '127.0.0.1',
        STAGEDOOR_LOCKOUT_WINDOW_MINUTES: '10',
        STAGEDOOR_LOCKOUT_MINUTES: '5',
      },
    });
  });
  afterAll(async () => b?.close());

  it('audit rows older than the retention period are deleted by the retention job in batches, and the deletion is itself audited (an audit table growing forever)', async () => {
    const old = new Date(clock.now().getTime() - 40 * DAY);
    const recent = new Date(clock.now().getTime() - 29 * DAY);
    await b.database.db.execute(sql`insert into audit_events (at, action, outcome) select ${old}::timestamptz + (g * interval '1 second'), 'test.old', 'success' from generate_series(1, 2500) g`);
    await b.database.db.execute(sql`insert into audit_events (at, action, outcome) select ${recent}::timestamptz, 'test.recent', 'success' from generate_series(1, 3) g`);
    const pass = await b.jobs.runOnce('retention');
    expect(pass).toMatchObject({ outcome: 'ok', stats: { auditDeleted: 2500 } });
    expect(await count(sql`action = 'test.old'`)).toBe(0);
    expect(await count(sql`action = 'test.recent'`)).toBe(3);
    const [prune] = (await b.services.audit.list({ action: 'audit.prune' }, 1, 0)).items;
    expect(prune).toMatchObject({ actorName: 'system', details: { deleted: 2500 } });
    // Nothing left to do: a second pass deletes nothing and writes nothing.
    expect(await b.jobs.runOnce('retention')).toMatchObject({ outcome: 'ok', stats: { auditDeleted: 0 } });
    expect((await b.services.audit.list({ action: 'audit.prune' }, 10, 0)).total).toBe(1);
  });

  it('login throttle entries whose window and lock are over are deleted by the job; a running lock and a fresh window stay', async () => {
    const ago = (ms: number) => new Date(clock.now().getTime() - ms);
    await b.database.db.execute(sql`insert into login_throttles (scope, key, failure_count, window_started_at, last_failure_at, updated_at, locked_until) values
      ('account', 'stale-name', 2, ${ago(3 * 3600_000)}, ${ago(3 * 3600_000)}, ${ago(3 * 3600_000)}, null),
      ('address', '198.51.100.200', 9, ${ago(3 * 3600_000)}, ${ago(3 * 3600_000)}, ${ago(3 * 3600_000)}, ${ago(2 * 3600_000)}),
      ('account', 'still-locked', 5, ${ago(3 * 3600_000)}, ${ago(3 * 3600_000)}, ${ago(3 * 3600_000)}, ${new Date(clock.now().getTime() + 3600_000)}),
      ('account', 'fresh', 1, ${ago(60_000)}, ${ago(60_000)}, ${ago(60_000)}, null)`);
    expect(await b.jobs.runOnce('retention')).toMatchObject({ outcome: 'ok', stats: { throttlesDeleted: 2 } });
    const left = rowsOf<{ key: string }>(await b.database.db.execute(sql`select key from login_throttles order by key`)).map((r) => r.key);
    expect(left).toEqual(['fresh', 'still-locked']);
  });

  it('a refusal storm from one address writes at most the cap of audit rows per minute, and the rest is counted in one summary row', { timeout: 120_000 }, async () => {
    clock.advance(60 * 60_000);
    const storm = { 'x-forwarded-for': '203.0.113.99' };
    // Wrong passwords until the account locks, then refusals of the lock: 40 attempts in one minute.
    for (let i = 0; i < 40; i++) expect([401, 429]).toContain((await loginRaw(b.app, 'target', `guess-${i}`, storm)).statusCode);
    expect(await count(sql`action = 'auth.login' and source_address = '203.0.113.99'`)).toBe(5);
    // The lockout itself is always written; another address is not held back by the storm.
    expect(await count(sql`action = 'auth.lockout' and source_address = '203.0.113.99'`)).toBe(1);
    await loginRaw(b.app, 'someone', 'wrong', { 'x-forwarded-for': '203.0.113.100' });
    expect(await count(sql`action = 'auth.login' and source_address = '203.0.113.100'`)).toBe(1);

    // Until the minute is over, nothing is summed up; then one row says how many were not written.
    expect(await b.jobs.runOnce('retention')).toMatchObject({ stats: { refusalSummaries: 0 } });
    clock.advance(61_000);
    expect(await b.jobs.runOnce('retention')).toMatchObject({ stats: { refusalSummaries: 1 } });
    const summaries = (await b.services.audit.list({ action: 'audit.refusals_suppressed' }, 10, 0)).items;
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ targetId: '203.0.113.99', sourceAddress: '203.0.113.99', details: { written: 5, suppressed: 35, actions: { 'auth.login': 35 } } });
    expect(rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from audit_refusal_counts`))[0]!.n).toBe(0);
    // A new minute: refusals are written again.
    await loginRaw(b.app, 'target', 'again', storm);
    expect(await count(sql`action = 'auth.login' and source_address = '203.0.113.99'`)).toBe(6);
  });
});
