import { sql } from 'drizzle-orm';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreatePool } from '@stagedoor/contract';
import { startEc2Emulator, type Ec2Emulator } from '../../packages/ec2-emulator/src/index.ts';
import { ManualClock } from '../../apps/broker/src/domain/clock.ts';
import { systemActor } from '../../apps/broker/src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, createTestBroker, type TestBroker } from '../support/broker.ts';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { TEST_ACCESS_KEY, TEST_SECRET } from '../support/ec2.ts';
import { freePort } from '../support/ports.ts';
import { rng } from '../../bench/studio-week/shifts.ts';

const MIN = 60_000;
const WEEK = 7 * 24 * 60 * MIN;
// The broker's clock is the real time (the session cookie's expiry is an absolute date the browser
// checks), so the history is built around today's date: the same weekday in past weeks.
const NOW = Math.floor(Date.now() / MIN) * MIN;
const TODAY = NOW - (NOW % (24 * 60 * MIN));

/** A morning of arrivals: `n` artists around 09:00 (σ ≈ 15 min), the lunch returns around 13:15. */
function morning(day: number, seed: number, n: number): number[] {
  const r = rng(seed);
  const around = (mean: number, sd: number) => day + mean + (r() + r() + r() - 1.5) * 2 * sd;
  return [...Array.from({ length: n }, () => around(9 * 60 * MIN, 15 * MIN)), ...Array.from({ length: Math.round(n * 0.8) }, () => around(13.25 * 60 * MIN, 20 * MIN))];
}

/** The console's pool forecast page: today's forecast against what happened, and why the standby is what it is. */
describe('pool forecast page in the console (Chromium)', () => {
  let b: TestBroker;
  let emu: Ec2Emulator;
  let base: string;
  let browser: Browser;
  const tabs: Tab[] = [];

  beforeAll(async () => {
    const clock = new ManualClock(new Date(NOW));
    emu = await startEc2Emulator({ clock: () => clock.now().getTime(), onError: () => undefined });
    b = await createTestBroker('pglite', { clock, env: { STAGEDOOR_SECRET_KEY: 'ab'.repeat(32) } });
    const provider = await b.services.providers.create(systemActor, {
      kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, tagFilter: {}, syncIntervalSeconds: 300, enabled: true,
      credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET },
    });
    const pool = await b.services.pools.create(systemActor, CreatePool.parse({ name: 'edit', providerId: provider.id, timeZone: 'Europe/London', minAvailable: 1, standby: { mode: 'predictive', quantile: 0.9, bootSeconds: 120 } }));
    await b.services.pools.create(systemActor, CreatePool.parse({ name: 'comp', providerId: provider.id, timeZone: 'Europe/London', minAvailable: 2 }));
    await b.services.pools.idle();
    await b.database.db.execute(sql`update pools set created_at = ${new Date(TODAY - 5 * WEEK - 24 * 60 * MIN).toISOString()} where id = ${pool.id}`);
    // Four past weeks on today's weekday (one a bank holiday with a handful), and today up to now — a busier day.
    const arrivals = [...[1, 2, 4].flatMap((k) => morning(TODAY - k * WEEK, k, 60)), ...morning(TODAY - 3 * WEEK, 3, 6), ...morning(TODAY, 9, 70).filter((t) => t < NOW)];
    const chunk = JSON.stringify(arrivals.map((t) => new Date(Math.round(t)).toISOString()));
    await b.database.db.execute(sql`insert into assignments (pool_id, mode, state, since, released_at, release_reason)
      select ${pool.id}::uuid, 'floating', 'released', t::timestamptz, t::timestamptz + interval '1 hour', 'logout' from jsonb_array_elements_text(${chunk}::jsonb) as t`);
    await b.services.pools.reconcileAll();
    const port = await freePort();
    await b.app.listen({ port, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    browser = await launchBrowser();
  }, 200_000);
  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await b?.services.pools.stop();
    await b?.close();
    await emu?.close();
  });

  it('shows today\'s forecast against what happened, and why the standby is what it is now', async () => {
    const t = await openTab(browser, base, { width: 1280, height: 900 });
    tabs.push(t);
    const { page, problems } = t;
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Pool forecast', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Pool forecast' }).waitFor();
    const chart = page.getByRole('img', { name: 'Arrivals today in pool edit: forecast against what happened' });
    await chart.waitFor();
    // A bar per slot with arrivals so far (the API's own count), the forecast line for the whole day.
    const api = await page.evaluate(async () => {
      const pools = (await (await fetch('/api/v1/pools')).json()) as { items: { id: string; name: string }[] };
      const id = pools.items.find((p) => p.name === 'edit')!.id;
      return (await (await fetch(`/api/v1/pools/${id}/forecast`)).json()) as { today: { actual: number | null }[] };
    });
    expect(api.today.length).toBeGreaterThanOrEqual(92);
    expect(await chart.locator('rect').count()).toBe(api.today.filter((x) => (x.actual ?? 0) > 0).length);
    expect(await chart.locator('path').getAttribute('d')).toMatch(/^M/);
    const why = page.getByLabel('Why');
    await expect.poll(() => why.textContent()).toMatch(/^\d+ warm: q0.9 of arrivals in the next 5 min \(start lead\)/);
    expect(await why.textContent()).toMatch(/at \w{3} \d\d:\d\d Europe\/London over the last 5 week\(s\)/);
    await screenshot(page, 'pool-forecast');

    // A pool sized by its windows says so.
    await page.getByLabel('Pool', { exact: true }).selectOption({ label: 'comp' });
    await expect.poll(() => page.getByLabel('Why').textContent()).toMatch(/Sized by its thresholds: 2 available/);
    expect(unexpected(problems)).toEqual([]);
  });
});
