import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { acceptDevGatewayKey, startDevStack, type AdminCall } from '../support/dev-stack.ts';
import { freePort, waitFor } from '../support/ports.ts';
import type { Spawned } from '../support/processes.ts';
import { startPasswordSshd } from '../support/sshd.ts';

const ADMIN_PW = 'browser-ssh-admin-pw';
const USER = 'sd-webssh-web';
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
/** A bound on each wait for the page or the broker, not a timing assertion. */
const WAIT = { timeout: 30_000 };

/**
 * SSH in a browser tab (issue 17 point 2, ADR 0029), end to end: `stagedoor dev` (broker and
 * gateway, real processes), a real OpenSSH server with a password user, Debian's Chromium. The
 * artist opens the desktop from the portal; the tab asks about the host key on first use, the
 * workstation's own prompts are answered in the terminal (xterm.js), a command's output is read back
 * from the terminal through the page, and the terminal follows the window's size. No CSP violation
 * is allowed (xterm's styles go through constructed stylesheets). The gateway's self-signed
 * certificate is accepted by its key only (--ignore-certificate-errors-spki-list).
 */
describe('browser session: SSH through the gateway (Chromium, stagedoor dev, sshd)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-browser-ssh-'));
  let proc: Spawned;
  let sshd: Awaited<ReturnType<typeof startPasswordSshd>>;
  let base: string;
  let browser: Browser;
  let ok: AdminCall;
  let tab: Tab;
  let session: Page;

  beforeAll(async () => {
    sshd = await startPasswordSshd(fs.mkdtempSync(path.join(dataDir, 'sshd-')), await freePort(), USER, PASSWORD);
    ({ proc, base, ok } = await startDevStack(dataDir, ADMIN_PW));

    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'lab' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'shell-desk', address: '127.0.0.1', protocols: [{ protocol: 'ssh', port: sshd.port }], tags: { room: 'c' } });
    const pool = await ok('POST', '/api/v1/pools', { name: 'shells', providerId: provider.id, membership: { tags: { room: ['c'] } } });
    await ok('POST', `/api/v1/pools/${pool.id}/reconcile`);
    const group = await ok('POST', '/api/v1/groups', { name: 'Shells' });
    const plan = await ok('POST', '/api/v1/protocol-plans', { name: 'ssh-in-browser', protocols: [{ protocol: 'ssh', viaGateway: true, gatewayMode: 'routed', browser: true, reconnectWindowSeconds: 300 }] });
    await ok('POST', '/api/v1/policies', { name: 'shells', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
    await ok('POST', '/api/v1/users', { username: 'tom', password: 'tom-password-1', groupIds: [group.id] });

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), acceptDevGatewayKey(dataDir)] });
  });

  afterAll(async () => {
    await tab?.context.close().catch(() => undefined);
    await browser?.close();
    await proc?.stop('SIGTERM');
    await sshd?.proc.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** The terminal's screen as text, read from xterm's rows in the page (a string: no DOM types here). */
  const screen = (page: Page): Promise<string> =>
    page.evaluate(`Array.from(document.querySelectorAll('.xterm-rows > div')).map((r) => r.textContent.replace(/\\u00a0/g, ' ').trimEnd()).join('\\n')`);
  const seen = (page: Page, re: RegExp) => waitFor(`${re} on the terminal`, async () => re.test(await screen(page)), 30_000, 100);

  it('opens from the portal, asks about the host key, signs in with the password typed in the terminal and runs a command', async () => {
    tab = await openTab(browser, base);
    const { page, context } = tab;
    await signIn(page, 'tom', 'tom-password-1');
    const card = page.getByRole('listitem', { name: 'shells' });
    await card.getByRole('button', { name: 'Connect to shells' }).click();
    const link = card.getByRole('link', { name: 'Open shell-desk in browser' });
    await link.waitFor(WAIT);
    const opened = context.waitForEvent('page');
    await link.click();
    session = await opened;
    session.on('console', (m) => void (m.type() === 'error' && tab.problems.push(m.text())));
    session.on('pageerror', (e) => void tab.problems.push(`page error: ${e.message}`));

    // First use: the host key's fingerprint is shown, and nothing is sent until it is trusted.
    const dialog = session.getByRole('dialog', { name: 'Host key' });
    await dialog.waitFor(WAIT).catch(async (err: Error) => {
      await screenshot(session, 'browser-session-ssh-debug');
      throw new Error(`${err.message}\n${tab.problems.join('\n')}\n${await screen(session)}`);
    });
    expect(await dialog.textContent()).toMatch(/First connection to shell-desk .* ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}/);
    await screenshot(session, 'browser-session-ssh-host-key');
    await dialog.getByRole('button', { name: 'Trust and connect' }).click();

    await seen(session, /login as:$/m);
    await session.keyboard.type(`${USER}\n`);
    await seen(session, /password:$/m);
    await session.keyboard.type(`${PASSWORD}\n`);
    await session.locator('.browser-session[data-phase="connected"]').waitFor(WAIT);
    const marker = `m${randomBytes(5).toString('hex')}`;
    await session.keyboard.type(`echo ${marker}-$((6*7))-\u00e9\u2713\n`);
    await seen(session, new RegExp(`^${marker}-42-\u00e9\u2713$`, 'm'));
    // The password never reached the screen.
    expect(await screen(session)).not.toContain(PASSWORD);
    await screenshot(session, 'browser-session-ssh-1280x800');
  });

  it('follows the window: a smaller window is a smaller terminal on the workstation', async () => {
    await session.keyboard.type('clear; stty size\n');
    const size = async () => (await screen(session)).match(/^(\d+) (\d+)$/m);
    await waitFor('stty size', async () => (await size()) !== null, 30_000, 100);
    const [, rows, cols] = (await size())!.map(Number);
    await session.setViewportSize({ width: 800, height: 500 });
    await waitFor('a new size on the workstation', async () => {
      await session.keyboard.type('clear; stty size\n');
      const m = await size();
      return m !== null && Number(m[2]) < cols! && Number(m[1]) < rows!;
    }, 30_000, 500);
    await screenshot(session, 'browser-session-ssh-800x500');
    expect(unexpected(tab.problems)).toEqual([]);
  });

  it('exit ends the session with the desktop\'s words; connecting again asks nothing about a remembered host key', async () => {
    await session.keyboard.type('exit\n');
    const end = session.getByTestId('session-end');
    await end.waitFor(WAIT);
    expect(await end.getByRole('heading').textContent()).toBe('The desktop ended the session');
    // Again, within the plan's reconnect window: the key is the one this browser remembered.
    await end.getByRole('button', { name: 'Connect again' }).click();
    await seen(session, /login as:$/m);
    expect(await screen(session)).toMatch(/Host key SHA256:\S+ as remembered in this browser\./);
    expect(await session.getByRole('dialog', { name: 'Host key' }).count()).toBe(0);
    expect(unexpected(tab.problems)).toEqual([]);
  });
});
