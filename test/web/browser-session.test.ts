import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { acceptDevGatewayKey, startDevStack, type AdminCall } from '../support/dev-stack.ts';
import { waitFor } from '../support/ports.ts';
import { spawnProcess, type Spawned } from '../support/processes.ts';
import { pressed } from '../support/xev.ts';
import { startXvncDisplay, vncPixel } from './browser-session-peers.ts';

const ADMIN_PW = 'browser-admin-pw';
/** A bound on each wait for the page or the broker, not a timing assertion. */
const WAIT = { timeout: 30_000 };

/**
 * A desktop in a browser tab (issue 17, ADR 0028), end to end: `stagedoor dev` (broker and gateway,
 * real processes), a real Xvnc on loopback painted a random colour, Debian's Chromium. The artist
 * opens the desktop from the portal; noVNC draws it through the gateway's HTTPS tunnel (the pixels are
 * read back from the canvas), typed keys reach the X server (xev records them), a second tab finds
 * the single-use grant in use, an admin's Disconnect ends the session at once and the tab says why.
 * The gateway's certificate is self-signed: Chromium is told to accept exactly its key
 * (--ignore-certificate-errors-spki-list), as ADR 0028 describes for tests.
 */
describe('browser session: VNC through the gateway (Chromium, stagedoor dev, Xvnc)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-browser-'));
  const colour = [0x20 + randomBytes(1)[0]! % 0xc0, 0x20 + randomBytes(1)[0]! % 0xc0, 0x20 + randomBytes(1)[0]! % 0xc0] as const;
  let proc: Spawned;
  let xvnc: Awaited<ReturnType<typeof startXvncDisplay>>;
  let xev: Spawned;
  let base: string;
  let browser: Browser;
  let ok: AdminCall;
  let tunnelUrl: string;
  let tab: Tab;
  let session: Page;
  let connectionId: string;
  const tabs: Tab[] = [];

  beforeAll(async () => {
    xvnc = await startXvncDisplay(dataDir, { width: 640, height: 480 });
    const hex = `#${colour.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
    const paint = spawnProcess('xsetroot', ['-display', `:${xvnc.display}`, '-solid', hex], {});
    await waitFor('xsetroot', () => paint.proc.exitCode !== null, 30_000);
    expect(paint.proc.exitCode).toBe(0);
    // Keys typed on the desktop land on the root window (no other window): xev prints each one.
    // Line-buffered: xev writes to a pipe here, which C's stdio would otherwise hold back in blocks.
    xev = spawnProcess('stdbuf', ['-oL', 'xev', '-display', `:${xvnc.display}`, '-root', '-event', 'keyboard'], {});

    const stack = await startDevStack(dataDir, ADMIN_PW);
    ({ proc, base, ok } = stack);
    tunnelUrl = `wss://127.0.0.1:${stack.tunnelPort}/tunnel`;

    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'studio' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'vnc-desk', address: '127.0.0.1', protocols: [{ protocol: 'vnc', port: xvnc.port }], tags: { room: 'b' } });
    const pool = await ok('POST', '/api/v1/pools', { name: 'review', providerId: provider.id, membership: { tags: { room: ['b'] } } });
    await ok('POST', `/api/v1/pools/${pool.id}/reconcile`);
    const group = await ok('POST', '/api/v1/groups', { name: 'Review' });
    const plan = await ok('POST', '/api/v1/protocol-plans', { name: 'vnc-in-browser', protocols: [{ protocol: 'vnc', viaGateway: true, gatewayMode: 'routed', browser: true, reconnectWindowSeconds: 0 }] });
    await ok('POST', '/api/v1/policies', { name: 'review', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
    await ok('POST', '/api/v1/users', { username: 'sue', password: 'sue-password-1', groupIds: [group.id] });

    browser = await launchBrowser([acceptDevGatewayKey(dataDir)]);
  });

  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await proc?.stop('SIGTERM');
    await xev?.stop();
    await xvnc?.proc.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('the portal opens the desktop in a new tab: the canvas shows the desktop, typed keys reach it, the session is reported', async () => {
    tab = await openTab(browser, base);
    tabs.push(tab);
    const { page, context } = tab;
    await signIn(page, 'sue', 'sue-password-1');
    const card = page.getByRole('listitem', { name: 'review' });
    await card.getByRole('button', { name: 'Connect to review' }).click();
    const link = card.getByRole('link', { name: 'Open vnc-desk in browser' });
    await link.waitFor(WAIT);
    expect(await link.getAttribute('href')).toMatch(/^\/session\.html#[0-9a-f-]{36}$/);
    connectionId = (await link.getAttribute('href'))!.split('#')[1]!;
    await screenshot(page, 'browser-session-portal-1280x800');

    const sockets: string[] = [];
    const opened = context.waitForEvent('page');
    await link.click();
    session = await opened;
    session.on('websocket', (ws) => void sockets.push(ws.url()));
    await waitFor('the tab titled with the desktop', async () => (await session.title()) === 'vnc-desk — Stagedoor', 30_000, 100);
    await session.locator('.browser-session[data-phase="connected"]').waitFor(WAIT);
    await waitFor('the desktop drawn', async () => JSON.stringify(await vncPixel(session, 600, 440)) === JSON.stringify([...colour]), 30_000, 100);
    await screenshot(session, 'browser-session-vnc-1280x800');

    // Keys: a click gives noVNC the keyboard; xev on the X display records what arrives.
    const word = `k${randomBytes(3).toString('hex').replace(/\d/g, '')}`.slice(0, 6);
    await session.locator('.vnc-screen canvas').click({ position: { x: 300, y: 200 } });
    await session.keyboard.type(word);
    await waitFor(`"${word}" typed on the desktop`, () => pressed(xev.stdout).join('').includes(word), 30_000, 100);

    // The token never travelled in a URL; the broker counts the session as the native ones.
    expect(sockets.length).toBeGreaterThan(0);
    expect(sockets.every((u) => u === tunnelUrl)).toBe(true);
    await waitFor('the connection to be connected', async () => (await ok('GET', `/api/v1/connections/${connectionId}`)).state === 'connected', 30_000, 200);
    expect(unexpected(tab.problems)).toEqual([]);
  });

  it('the toolbar offers disconnect, full screen, scaling, the clipboard and Ctrl+Alt+Del', async () => {
    const toolbar = session.getByRole('toolbar', { name: 'Session' });
    for (const name of ['Disconnect', 'Full screen', 'Scale to window', 'Clipboard', 'Keys']) await toolbar.getByRole('button', { name }).waitFor(WAIT);
    await toolbar.getByRole('button', { name: 'Keys' }).click();
    await session.getByRole('button', { name: 'Send Ctrl+Alt+Del' }).click();
    await waitFor('Delete pressed on the desktop', () => pressed(xev.stdout).includes('Delete'), 30_000, 100);
    await toolbar.getByRole('button', { name: 'Clipboard' }).click();
    await session.getByLabel(/^Clipboard/).waitFor(WAIT);
    await screenshot(session, 'browser-session-vnc-toolbar');
  });

  it('a second tab finds the single-use grant in use, and says so', async () => {
    const second = await tab.context.newPage();
    await second.goto(`${base}/session.html#${connectionId}`);
    const end = second.getByTestId('session-end');
    await end.waitFor(WAIT);
    expect(await end.getByRole('heading').textContent()).toBe('The gateway refused this session');
    expect(await end.textContent()).toContain('This connection grant is in use by another session');
    await screenshot(second, 'browser-session-refused-in-use');
    await second.close();
  });

  it("an admin's Disconnect ends the tab's session at once, and the tab says why; the grant is then used up", async () => {
    await ok('DELETE', `/api/v1/connections/${connectionId}`);
    const end = session.getByTestId('session-end');
    await end.waitFor(WAIT);
    expect(await end.getByRole('heading').textContent()).toBe('The session was closed');
    expect(await end.textContent()).toContain('An administrator disconnected this session: connect again from your Stagedoor portal');
    expect(await session.locator('.browser-session').getAttribute('data-phase')).toBe('ended');
    await screenshot(session, 'browser-session-admin-disconnect');
    // Opening it again: the connection is over, in plain words, with no tunnel opened.
    await session.reload();
    await session.getByTestId('session-end').getByRole('heading', { name: 'This desktop cannot be opened here' }).waitFor(WAIT);
    expect(await session.getByTestId('session-end').textContent()).toContain('connect again from your Stagedoor portal');
  });
});
