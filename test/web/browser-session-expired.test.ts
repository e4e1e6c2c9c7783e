import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { acceptDevGatewayKey, startDevStack, type AdminCall } from '../support/dev-stack.ts';
import { freePort, waitFor } from '../support/ports.ts';
import type { Spawned } from '../support/processes.ts';

const ADMIN_PW = 'expired-admin-pw';
/** A bound on each wait for the page or the broker, not a timing assertion. */
const WAIT = { timeout: 30_000 };

/**
 * A browser tab whose grant lapses before its token reaches the gateway (issue 17): the gateway
 * refuses it and the tab says the grant expired, in words. The broker runs with the shortest
 * connect-by it accepts (15 s); the test holds the page's WebSocket until the broker's own connect-by
 * instant has passed (a condition, not a fixed time). No desktop is needed: an expired grant never
 * reaches one.
 */
describe('browser session: an expired grant (Chromium, stagedoor dev)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-expired-'));
  let proc: Spawned;
  let base: string;
  let browser: Browser;
  let tab: Tab;

  beforeAll(async () => {
    const desk = await freePort();
    let ok: AdminCall;
    ({ proc, base, ok } = await startDevStack(dataDir, ADMIN_PW, { STAGEDOOR_GRANT_CONNECT_BY_SECONDS: '15' }));
    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'studio' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'late-desk', address: '127.0.0.1', protocols: [{ protocol: 'vnc', port: desk }], tags: { room: 'c' } });
    const pool = await ok('POST', '/api/v1/pools', { name: 'late', providerId: provider.id, membership: { tags: { room: ['c'] } } });
    await ok('POST', `/api/v1/pools/${pool.id}/reconcile`);
    const group = await ok('POST', '/api/v1/groups', { name: 'Late' });
    const plan = await ok('POST', '/api/v1/protocol-plans', { name: 'vnc-in-browser', protocols: [{ protocol: 'vnc', viaGateway: true, gatewayMode: 'routed', browser: true, reconnectWindowSeconds: 0 }] });
    await ok('POST', '/api/v1/policies', { name: 'late', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
    await ok('POST', '/api/v1/users', { username: 'lee', password: 'lee-password-1', groupIds: [group.id] });
    browser = await launchBrowser([acceptDevGatewayKey(dataDir)]);
  });

  afterAll(async () => {
    await tab?.context.close().catch(() => undefined);
    await browser?.close();
    await proc?.stop('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('a tab whose token reaches the gateway after the connect-by time is refused, and says the grant expired', async () => {
    tab = await openTab(browser, base);
    const { page } = tab;
    await signIn(page, 'lee', 'lee-password-1');
    const card = page.getByRole('listitem', { name: 'late' });
    await card.getByRole('button', { name: 'Connect to late' }).click();
    const link = card.getByRole('link', { name: 'Open late-desk in browser' });
    await link.waitFor(WAIT);
    const connectionId = (await link.getAttribute('href'))!.split('#')[1]!;

    // The artist is slow (a tab left on a sign-in form, a laptop lid closed): the page's WebSocket is
    // held back, with what the page sends, until the grant's connect-by time has passed, then goes to
    // the real gateway. Showing the connection again renews an unused grant, so the page's own
    // request for the session says when this one lapses.
    let connectBy = Infinity;
    const issued = page.waitForResponse((r) => r.url().endsWith(`/api/v1/connections/${connectionId}/browser`));
    const relayed: string[] = [];
    await page.routeWebSocket(/\/tunnel$/, async (ws) => {
      const held: (string | Buffer)[] = [];
      ws.onMessage((m) => void held.push(m));
      await waitFor('the connect-by time to pass', () => Date.now() > connectBy + 1000, 120_000, 200);
      const server = ws.connectToServer();
      relayed.push(ws.url());
      server.onMessage((m) => ws.send(m));
      server.onClose((code, reason) => ws.close({ code, reason }));
      ws.onMessage((m) => server.send(m));
      for (const m of held) server.send(m);
    });
    await page.goto(`${base}/session.html#${connectionId}`);
    const answer = (await (await issued).json()) as { connectBy: string | null };
    expect(answer.connectBy).not.toBeNull();
    connectBy = Date.parse(answer.connectBy!);

    const end = page.getByTestId('session-end');
    await end.waitFor({ timeout: 120_000 });
    expect(relayed).toHaveLength(1);
    expect(await end.getByRole('heading').textContent()).toBe('The gateway refused this session');
    expect(await end.textContent()).toContain('expired before it was used: connect again from your Stagedoor portal');
    await screenshot(page, 'browser-session-refused-expired');
    expect(unexpected(tab.problems)).toEqual([]);
  }, 180_000);
});
