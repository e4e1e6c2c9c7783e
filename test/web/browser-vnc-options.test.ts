import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
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
const run = promisify(execFile);

/**
 * The VNC tab's options (issue 17 point 1) against a VNC server that asks for its own password, as a
 * studio's may: `stagedoor dev`, a real Xvnc with VncAuth, Debian's Chromium. The tab asks the artist
 * for the desktop's password (a wrong one is refused in words, and Connect again asks again); text
 * copied on the desktop shows in the toolbar's clipboard panel and Send to desktop puts text on the
 * desktop's clipboard (xclip on the X display, both ways); a plan with `clientOptions.viewOnly` shows
 * the same desktop with no keys, no sending and no input reaching it, while the interactive tab's keys do.
 */
describe('browser session: VNC password, clipboard and view-only (Chromium, stagedoor dev, Xvnc with VncAuth)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-browser-vnc-'));
  const vncPassword = `pw${randomBytes(3).toString('hex')}`; // VncAuth uses 8 characters at most
  const colour = [0x20 + randomBytes(1)[0]! % 0xc0, 0x20 + randomBytes(1)[0]! % 0xc0, 0x20 + randomBytes(1)[0]! % 0xc0] as const;
  let proc: Spawned;
  let xvnc: Awaited<ReturnType<typeof startXvncDisplay>>;
  let xev: Spawned;
  let copier: Spawned | undefined;
  let base: string;
  let browser: Browser;
  let ok: AdminCall;
  let tab: Tab;
  let desk: Page;
  const tabs: Tab[] = [];

  beforeAll(async () => {
    xvnc = await startXvncDisplay(dataDir, { width: 640, height: 480 }, { password: vncPassword });
    const hex = `#${colour.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
    await run('xsetroot', ['-display', `:${xvnc.display}`, '-solid', hex]);
    xev = spawnProcess('stdbuf', ['-oL', 'xev', '-display', `:${xvnc.display}`, '-root', '-event', 'keyboard'], {});

    const stack = await startDevStack(dataDir, ADMIN_PW);
    ({ proc, base, ok } = stack);
    // One VNC server, offered twice: at the artist's desk (interactive) and on the review wall (view only).
    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'studio' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'vnc-desk', address: '127.0.0.1', protocols: [{ protocol: 'vnc', port: xvnc.port }], tags: { room: 'desk' } });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'vnc-wall', address: '127.0.0.1', protocols: [{ protocol: 'vnc', port: xvnc.port }], tags: { room: 'wall' } });
    // A user is served by one policy (the first that matches): the desk and the wall are two people's.
    const browserVnc = { protocol: 'vnc', viaGateway: true, gatewayMode: 'routed', browser: true };
    const interactive = await ok('POST', '/api/v1/protocol-plans', { name: 'vnc-in-browser', protocols: [{ ...browserVnc, reconnectWindowSeconds: 600 }] });
    const watchOnly = await ok('POST', '/api/v1/protocol-plans', { name: 'vnc-view-only', protocols: [{ ...browserVnc, reconnectWindowSeconds: 0, clientOptions: { viewOnly: true } }] });
    for (const [room, plan, user] of [['desk', interactive, 'ivy'], ['wall', watchOnly, 'wes']] as const) {
      const pool = await ok('POST', '/api/v1/pools', { name: room, providerId: provider.id, membership: { tags: { room: [room] } } });
      await ok('POST', `/api/v1/pools/${pool.id}/reconcile`);
      const group = await ok('POST', '/api/v1/groups', { name: `${room} users` });
      await ok('POST', '/api/v1/policies', { name: room, groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
      await ok('POST', '/api/v1/users', { username: user, password: `${user}-password-1`, groupIds: [group.id] });
    }

    browser = await launchBrowser([acceptDevGatewayKey(dataDir)]);
    tab = await openTab(browser, base);
    tabs.push(tab);
    await signIn(tab.page, 'ivy', 'ivy-password-1');
  });

  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await proc?.stop('SIGTERM');
    await copier?.stop();
    await xev?.stop();
    await xvnc?.proc.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const drawn = (page: Page) => waitFor('the desktop drawn', async () => JSON.stringify(await vncPixel(page, 600, 440)) === JSON.stringify([...colour]), 30_000, 100);

  /** Connect from the portal and open the desktop's browser tab. */
  const openInBrowser = async (from: Tab, room: string, desktop: string): Promise<Page> => {
    const card = from.page.getByRole('listitem', { name: room });
    await card.getByRole('button', { name: `Connect to ${room}` }).click();
    const link = card.getByRole('link', { name: `Open ${desktop} in browser` });
    await link.waitFor(WAIT);
    const opened = from.context.waitForEvent('page');
    await link.click();
    const page = await opened;
    await waitFor('the tab titled with the desktop', async () => (await page.title()) === `${desktop} — Stagedoor`, 30_000, 100);
    return page;
  };

  /** The desktop's CLIPBOARD as an X client on its display reads it ('' while nobody owns it). */
  const desktopClipboard = async (): Promise<string> => {
    try {
      return (await run('xclip', ['-o', '-selection', 'clipboard', '-display', `:${xvnc.display}`], { timeout: 10_000 })).stdout;
    } catch {
      return '';
    }
  };

  it("asks for the desktop's own VNC password: a wrong one is refused in words, Connect again asks again, the right one shows the desktop", async () => {
    desk = await openInBrowser(tab, 'desk', 'vnc-desk');
    const prompt = desk.getByLabel('The desktop asks for its VNC password');
    await prompt.waitFor(WAIT);
    await screenshot(desk, 'browser-session-vnc-password');
    await prompt.fill('wrong-pw');
    await desk.getByRole('button', { name: 'Send' }).click();
    const end = desk.getByTestId('session-end');
    await end.waitFor(WAIT);
    expect(await end.getByRole('heading').textContent()).toBe('The desktop refused the sign-in');
    expect(await end.textContent()).toMatch(/The VNC server said: .*(fail|password|auth)/i);

    await end.getByRole('button', { name: 'Connect again' }).click();
    await prompt.waitFor(WAIT);
    await prompt.fill(vncPassword);
    await desk.getByRole('button', { name: 'Send' }).click();
    await desk.locator('.browser-session[data-phase="connected"]').waitFor(WAIT);
    await drawn(desk);
    await screenshot(desk, 'browser-session-vnc-signed-in');
    expect(unexpected(tabs[0]!.problems)).toEqual([]);
  });

  it("clipboard both ways: text copied on the desktop appears in the toolbar's panel, Send to desktop puts the panel's text on the desktop's clipboard", async () => {
    const toolbar = desk.getByRole('toolbar', { name: 'Session' });
    await toolbar.getByRole('button', { name: 'Clipboard' }).click();
    const panel = desk.getByLabel(/^Clipboard/);
    await panel.waitFor(WAIT);

    // Copied on the desktop: an X client takes the CLIPBOARD selection; Xvnc tells its VNC clients.
    const copied = `from-desktop-${randomBytes(4).toString('hex')}`;
    const file = path.join(dataDir, 'copied.txt');
    fs.writeFileSync(file, copied);
    copier = spawnProcess('xclip', ['-quiet', '-selection', 'clipboard', '-display', `:${xvnc.display}`, '-i', file], {});
    await waitFor('the desktop\'s copied text in the panel', async () => (await panel.inputValue()) === copied, 30_000, 100);
    await screenshot(desk, 'browser-session-vnc-clipboard');

    // Sent from the panel: the desktop's clipboard then holds it, as any X client there reads it.
    const sent = `from-browser-${randomBytes(4).toString('hex')}`;
    await panel.fill(sent);
    await desk.getByRole('button', { name: 'Send to desktop' }).click();
    await waitFor('the sent text on the desktop\'s clipboard', async () => (await desktopClipboard()) === sent, 30_000, 200);
  });

  it("a view-only plan shows the same desktop with no keys and no sending, and the tab's input never reaches it while the interactive tab's does", async () => {
    const viewer = await openTab(browser, base);
    tabs.push(viewer);
    await signIn(viewer.page, 'wes', 'wes-password-1');
    const wall = await openInBrowser(viewer, 'wall', 'vnc-wall');
    const prompt = wall.getByLabel('The desktop asks for its VNC password');
    await prompt.waitFor(WAIT);
    await prompt.fill(vncPassword);
    await wall.getByRole('button', { name: 'Send' }).click();
    await wall.locator('.browser-session[data-phase="connected"]').waitFor(WAIT);
    await drawn(wall);
    expect(await wall.getByRole('status').textContent()).toBe('Connected · view only');
    const toolbar = wall.getByRole('toolbar', { name: 'Session' });
    expect(await toolbar.getByRole('button', { name: 'Keys' }).count()).toBe(0);
    await toolbar.getByRole('button', { name: 'Clipboard' }).click();
    await wall.getByLabel(/^Clipboard/).waitFor(WAIT);
    expect(await wall.getByRole('button', { name: 'Send to desktop' }).count()).toBe(0);
    await wall.getByLabel(/view only: nothing is sent/).waitFor(WAIT);
    await screenshot(wall, 'browser-session-vnc-view-only');

    // Typed on the wall first, then at the desk: the desk's word arriving shows the keys' path works,
    // and by then the wall's earlier word would have arrived too, had the tab sent it.
    const word = (prefix: string) => `${prefix}${randomBytes(4).toString('hex').replace(/\d/g, '')}`.slice(0, 6);
    const watched = word('w');
    const typed = word('d');
    await wall.locator('.vnc-screen canvas').click({ position: { x: 300, y: 200 } });
    await wall.keyboard.type(watched);
    await desk.bringToFront();
    await desk.locator('.vnc-screen canvas').click({ position: { x: 300, y: 200 } });
    await desk.keyboard.type(typed);
    await waitFor(`"${typed}" typed at the desk`, () => pressed(xev.stdout).join('').includes(typed), 30_000, 100);
    expect(pressed(xev.stdout).join('')).not.toContain(watched);
  });
});
