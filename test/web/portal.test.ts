import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../packages/ec2-emulator/src/index.ts';
import { totpCode } from '../../apps/broker/src/providers/directory/totp.ts';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../support/ec2.ts';
import { fetchInject, httpLogin } from '../support/http.ts';
import { freePort, freePortRange, waitFor } from '../support/ports.ts';
import { spawnStagedoor, type Spawned } from '../support/processes.ts';
import { as } from '../support/session.ts';

const ADMIN_PW = 'portal-admin-pw';

/**
 * The artist's portal in a real browser against `stagedoor dev` (broker and its gateway, real
 * processes) and the EC2 emulator: a desktop launched on login, its progress, then the .rdp file
 * naming the gateway; the TOTP step at sign-in; the portal on a phone.
 */
/** How long a wait for the page or the broker to catch up may take (a bound, not a timing assertion). */
const WAIT = { timeout: 30_000 };

describe('web portal (Chromium, stagedoor dev + EC2 emulator)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-web-'));
  let proc: Spawned;
  let emu: Ec2Emulator;
  let base: string;
  let browser: Browser;
  let providerId: string;
  let ok: (method: string, url: string, payload?: unknown) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  let gateway: { publicAddress: string; portRangeStart: number; portRangeEnd: number };
  const tabs: Tab[] = [];

  /** The machines boot (emulated time) and the broker learns it (an inventory sync). */
  const bootMachines = async (instances: number) => {
    await waitFor('the launch to reach the cloud', () => emu.control.instances().length >= instances, 30_000);
    emu.control.advanceTime(10_000);
    await ok('POST', `/api/v1/providers/${providerId}/sync`);
  };

  beforeAll(async () => {
    emu = await startTestEmulator();
    const [port, [gw, gwEnd]] = [await freePort(), await freePortRange(5)];
    base = `http://127.0.0.1:${port}`;
    proc = spawnStagedoor(['dev'], {
      PORT: String(port),
      STAGEDOOR_DATA_DIR: dataDir,
      STAGEDOOR_ADMIN_PASSWORD: ADMIN_PW,
      STAGEDOOR_DEV_GATEWAY_PORTS: `${gw}-${gwEnd}`,
      STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1',
      DATABASE_URL: undefined,
    });
    await waitFor('stagedoor dev', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 60_000, 200).catch((err) => {
      throw new Error(`${err.message}\n${proc.stderr.join('\n')}`);
    });
    const admin = await httpLogin(base, 'admin', ADMIN_PW);
    const call = fetchInject(base);
    ok = async (method, url, payload) => {
      const r = await call({ method, url, headers: as(admin), payload });
      if (r.statusCode >= 300) throw new Error(`${method} ${url} → ${r.statusCode} ${r.body}`);
      return r.statusCode === 204 ? null : r.json();
    };
    await waitFor('the dev gateway healthy', async () => (await ok('GET', '/api/v1/gateways')).items[0]?.health === 'healthy', 30_000, 200);
    gateway = (await ok('GET', '/api/v1/gateways')).items[0];

    const subnets = emu.control.defaultNetwork().subnets.map((s) => s.subnetId);
    providerId = (await ok('POST', '/api/v1/providers', { kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET } })).id;
    // Nothing on standby: the artist's desktop is launched when they connect.
    const pool = await ok('POST', '/api/v1/pools', { name: 'render', providerId, template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.2xlarge'], subnetIds: subnets.slice(0, 1), namePattern: 'render-{seq:02}' }, minAvailable: 0, maxTotal: 5 });
    const artists = await ok('POST', '/api/v1/groups', { name: 'Artists' });
    const editors = await ok('POST', '/api/v1/groups', { name: 'Editors' });
    const viaGateway = await ok('POST', '/api/v1/protocol-plans', { name: 'rdp-via-gateway', protocols: [{ protocol: 'rdp', viaGateway: true }] });
    await ok('POST', '/api/v1/policies', { name: 'artists', groupIds: [artists.id], pools: [{ poolId: pool.id }], launchOnLogin: true, allowRestart: true, protocolPlanId: viaGateway.id });
    await ok('POST', '/api/v1/policies', { name: 'editors', groupIds: [editors.id], pools: [{ poolId: pool.id }], launchOnLogin: true });
    await ok('POST', '/api/v1/users', { username: 'ana', displayName: 'Ana Artist', password: 'ana-password-1', groupIds: [artists.id] });
    await ok('POST', '/api/v1/users', { username: 'ed', password: 'ed-password-1', groupIds: [editors.id] });
    await ok('POST', '/api/v1/auth-servers', { kind: 'totp', name: 'authenticator', config: { issuer: 'Studio' }, requiredForGroupIds: [editors.id] });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await proc?.stop('SIGTERM');
    await emu?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('an artist connects to a desktop launched on login, watches it start, and downloads an .rdp file that names the gateway', async () => {
    const t = await openTab(browser, base);
    tabs.push(t);
    const { page } = t;
    await signIn(page, 'ana', 'ana-password-1');
    const card = page.getByRole('listitem', { name: 'render' });
    await card.getByText('Available').waitFor();
    const connectRequest = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/v1/connections'));
    await card.getByRole('button', { name: 'Connect to render' }).click();
    // Every connect carries an Idempotency-Key, so a retry after a lost answer gets this connection back.
    expect((await connectRequest).headers()['idempotency-key']).toMatch(/^[0-9a-f]{32}$/);

    // Launched on login: the progress shows while the machine boots.
    const progress = card.getByRole('progressbar', { name: 'Starting render' });
    await progress.waitFor();
    await card.getByText(/launch|boot/i).first().waitFor();
    expect(Number(await progress.getAttribute('value'))).toBeLessThan(100);
    await screenshot(page, 'portal-starting-1280x800');

    await bootMachines(1);
    // The event stream brings "ready" and the instructions; no reload.
    const download = card.getByRole('link', { name: 'Download RDP file' });
    await download.waitFor({ timeout: 20_000 });
    await expect.poll(() => progress.count(), WAIT).toBe(0);
    const downloading = page.waitForEvent('download');
    await download.click();
    const file = fs.readFileSync((await (await downloading).path())!, 'utf8');
    const address = /full address:s:([^:\r\n]+):(\d+)/.exec(file);
    expect(address, file).not.toBeNull();
    expect(address![1]).toBe(gateway.publicAddress);
    const port = Number(address![2]);
    expect(port).toBeGreaterThanOrEqual(gateway.portRangeStart);
    expect(port).toBeLessThanOrEqual(gateway.portRangeEnd);
    expect(file).toContain('username:s:ana');
    await card.getByText(`Through the gateway ${gateway.publicAddress}:${port}`).waitFor();
    // The grant's rules in plain words: single use, and until when (issue 14, point 8).
    await card.locator('.grant-state').filter({ hasText: /^Single use: the first session must start before .+; once it ends, connect again for a fresh one\.$/ }).waitFor();
    await screenshot(page, 'portal-ready-1280x800');

    // The policy allows a restart: the control is there, and it goes through the workstation power operation.
    await card.getByRole('button', { name: 'Restart my machine' }).click();
    await card.getByRole('alertdialog').getByRole('button', { name: 'Restart' }).click();
    await card.getByRole('status').filter({ hasText: 'Restarting' }).waitFor();
    await expect.poll(async () => (await ok('GET', '/api/v1/audit?action=workstation.reboot')).items.length, WAIT).toBeGreaterThan(0);
    expect(unexpected(t.problems)).toEqual([]);
  });

  it('the portal works on a 390-px-wide phone', async () => {
    const t = await openTab(browser, base, { width: 390, height: 844 });
    tabs.push(t);
    await signIn(t.page, 'ana', 'ana-password-1');
    const card = t.page.getByRole('listitem', { name: 'render' });
    await card.getByRole('link', { name: 'Download RDP file' }).waitFor();
    // Nothing is cut off sideways.
    expect(await t.page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await screenshot(t.page, 'portal-390px');
  });

  it('a user whose group requires TOTP enrols at sign-in, and then gets a desktop with the workstation\'s own address (direct plan)', async () => {
    const t = await openTab(browser, base);
    tabs.push(t);
    const { page } = t;
    await signIn(page, 'ed', 'ed-password-1');
    await page.getByRole('img', { name: /QR code/ }).waitFor();
    await page.getByText('Cannot scan? Type the key by hand').click();
    const secret = (await page.locator('code.key').textContent())!.trim();
    await page.getByLabel('One-time code').fill('000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('alert').waitFor();
    await page.getByLabel('One-time code').fill(await totpCode({ secret, algorithm: 'SHA1', digits: 6, periodSeconds: 30, at: new Date() }));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('heading', { name: 'Recovery codes' }).waitFor();
    await page.getByRole('button', { name: 'Continue' }).click();

    const card = page.getByRole('listitem', { name: 'render' });
    await card.getByRole('button', { name: 'Connect to render' }).click();
    await card.getByRole('progressbar', { name: 'Starting render' }).waitFor();
    await bootMachines(2);
    const download = card.getByRole('link', { name: 'Download RDP file' });
    await download.waitFor({ timeout: 20_000 });
    const downloading = page.waitForEvent('download');
    await download.click();
    const file = fs.readFileSync((await (await downloading).path())!, 'utf8');
    const mine = (await ok('GET', '/api/v1/connections')).items.find((c: { username: string }) => c.username === 'ed');
    const ws = await ok('GET', `/api/v1/workstations/${mine.workstationId}`);
    expect(ws.privateAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(file).toContain(`full address:s:${ws.privateAddress}:3389`);
    // No restart control: this policy does not allow it.
    expect(await card.getByRole('button', { name: 'Restart my machine' }).count()).toBe(0);
    expect(unexpected(t.problems)).toEqual([]);
  });

  it('an admin reboots a workstation from the table after confirming, and force-releases a live session', async () => {
    const t = await openTab(browser, base);
    tabs.push(t);
    const { page } = t;
    await signIn(page, 'admin', ADMIN_PW);
    await page.getByRole('link', { name: 'Workstations' }).click();
    await page.getByRole('searchbox', { name: 'Search' }).fill('render-02');
    const table = page.getByRole('table', { name: 'Workstations' });
    await expect.poll(async () => table.getByRole('rowheader').allTextContents(), WAIT).toEqual(['render-02']);
    await table.getByRole('button', { name: 'Actions for render-02' }).click();
    await table.getByRole('menuitem', { name: 'Reboot' }).click();
    await page.getByRole('dialog', { name: 'Reboot render-02?' }).getByRole('button', { name: 'Reboot render-02' }).click();
    await expect.poll(async () => (await ok('GET', '/api/v1/audit?action=workstation.reboot&actor=admin')).items.length, WAIT).toBe(1);

    await page.getByRole('link', { name: 'Live sessions' }).click();
    const sessions = page.getByRole('table', { name: 'Live sessions' });
    await sessions.getByRole('rowheader', { name: 'ed', exact: true }).waitFor();
    await sessions.getByRole('button', { name: 'Force-release ed' }).click();
    await sessions.getByRole('alertdialog').getByRole('button', { name: 'Force release' }).click();
    await sessions.getByRole('rowheader', { name: 'ed', exact: true }).waitFor({ state: 'detached' });
    expect((await ok('GET', '/api/v1/connections')).items.map((c: { username: string }) => c.username)).toEqual(['ana']);
    expect(unexpected(t.problems)).toEqual([]);
  });
});
