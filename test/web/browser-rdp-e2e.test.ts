import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startXrdpOnLoopback, type XrdpPeer } from '../../apps/gateway/test/xrdp-peer.ts';
import { launchBrowser, openTab, screenshot, signIn, type Tab } from '../support/browser.ts';
import { acceptDevGatewayKey, startDevStack, type AdminCall } from '../support/dev-stack.ts';
import { waitFor } from '../support/ports.ts';
import type { Spawned } from '../support/processes.ts';

const ADMIN_PW = 'browser-rdp-admin-pw';
const WAIT = { timeout: 60_000 };

/**
 * RDP in a browser tab end to end (issue 17 point 3, ADR 0030): `stagedoor dev` (broker and gateway,
 * real processes), a static host whose RDP port is a real xrdp on loopback, a protocol plan with RDP
 * `browser: true` through the routed gateway, Debian's Chromium. The artist opens the desktop from the
 * portal; IronRDP speaks RDCleanPath to the dev gateway with the grant the broker issued, and draws
 * xrdp's sign-in screen; the broker counts the session; an admin's Disconnect ends it in the tab.
 */
describe('browser session: RDP through the gateway (Chromium, stagedoor dev, xrdp)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-browser-rdp-e2e-'));
  let proc: Spawned;
  let xrdp: XrdpPeer;
  let base: string;
  let browser: Browser;
  let ok: AdminCall;
  let tab: Tab;
  let session: Page;
  let connectionId: string;

  beforeAll(async () => {
    xrdp = await startXrdpOnLoopback(fs.mkdtempSync(path.join(dataDir, 'xrdp-')));
    ({ proc, base, ok } = await startDevStack(dataDir, ADMIN_PW));

    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'studio' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'rdp-desk', address: '127.0.0.1', protocols: [{ protocol: 'rdp', port: xrdp.port }], tags: { room: 'c' } });
    const pool = await ok('POST', '/api/v1/pools', { name: 'lighting', providerId: provider.id, membership: { tags: { room: ['c'] } } });
    await ok('POST', `/api/v1/pools/${pool.id}/reconcile`);
    const group = await ok('POST', '/api/v1/groups', { name: 'Lighting' });
    const plan = await ok('POST', '/api/v1/protocol-plans', { name: 'rdp-in-browser', protocols: [{ protocol: 'rdp', viaGateway: true, gatewayMode: 'routed', browser: true, reconnectWindowSeconds: 0 }] });
    await ok('POST', '/api/v1/policies', { name: 'lighting', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
    await ok('POST', '/api/v1/users', { username: 'lea', password: 'lea-password-1', groupIds: [group.id] });

    browser = await launchBrowser([acceptDevGatewayKey(dataDir)]);
  });

  afterAll(async () => {
    await tab?.context.close().catch(() => undefined);
    await browser?.close();
    await proc?.stop('SIGTERM');
    await xrdp?.proc.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** How many colours xrdp's screen shows on IronRDP's canvas (1 while nothing is drawn). */
  const colours = (page: Page): Promise<number> =>
    page.evaluate(() => {
      // The page's own document (this file compiles without the DOM library; the function runs in the page).
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const document = (globalThis as any).document;
      const canvas = document.querySelector('iron-remote-desktop')?.shadowRoot?.querySelector('canvas');
      if (!canvas || canvas.width === 0) return 0;
      const copy = document.createElement('canvas');
      copy.width = canvas.width;
      copy.height = canvas.height;
      const ctx = copy.getContext('2d');
      ctx.drawImage(canvas, 0, 0);
      const data: Uint8ClampedArray = ctx.getImageData(0, 0, copy.width, copy.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < data.length; i += 4 * 13) seen.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
      return seen.size;
    });

  it('the portal opens the RDP desktop in a tab: IronRDP draws xrdp\'s sign-in screen through the gateway, and the broker counts the session', async () => {
    tab = await openTab(browser, base);
    const { page, context } = tab;
    await signIn(page, 'lea', 'lea-password-1');
    const card = page.getByRole('listitem', { name: 'lighting' });
    await card.getByRole('button', { name: 'Connect to lighting' }).click();
    const link = card.getByRole('link', { name: 'Open rdp-desk in browser' });
    await link.waitFor(WAIT);
    connectionId = (await link.getAttribute('href'))!.split('#')[1]!;
    const opened = context.waitForEvent('page');
    await link.click();
    session = await opened;
    await session.getByRole('button', { name: 'Connect', exact: true }).click(WAIT);
    await session.locator('.browser-session[data-phase="connected"]').waitFor(WAIT).catch(async (err: Error) => {
      const end = await session.getByTestId('session-end').textContent().catch(() => null);
      throw new Error(`${err.message}\nsession end: ${end}\nxrdp: ${fs.readFileSync(xrdp.log, 'utf8').slice(-2000)}\n${proc.stdout.slice(-20).join('\n')}`, { cause: err });
    });
    await waitFor('xrdp\'s sign-in screen drawn', async () => (await colours(session)) >= 4, 60_000, 250);
    await screenshot(session, 'browser-rdp-e2e-xrdp-login');
    await waitFor('the connection to be connected', async () => (await ok('GET', `/api/v1/connections/${connectionId}`)).state === 'connected', 30_000, 200);
  });

  it("an admin's Disconnect ends the tab's RDP session", async () => {
    await ok('DELETE', `/api/v1/connections/${connectionId}`);
    const end = session.getByTestId('session-end');
    await end.waitFor(WAIT);
    expect(await end.getByRole('heading').textContent()).toBe('The session was closed');
    expect(await session.locator('.browser-session').getAttribute('data-phase')).toBe('ended');
    await screenshot(session, 'browser-rdp-e2e-admin-disconnect');
  });
});
