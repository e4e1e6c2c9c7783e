import fs from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../support/broker.ts';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { freePort } from '../support/ports.ts';

/** A bound for the page or the broker to catch up (not a timing assertion). */
const WAIT = { timeout: 30_000 };

/**
 * Static hosts in the console (issue 16 point 6): an admin adds an on-prem host by DNS name (a bad
 * address is refused at the field), edits it, puts it in maintenance, and is offered no power
 * action for it — while an EC2-like action set stays for machines whose provider can act.
 */
describe('static hosts in the console (Chromium)', () => {
  let b: TestBroker;
  let base: string;
  let browser: Browser;
  let admin: Session;
  const tabs: Tab[] = [];
  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };

  beforeAll(async () => {
    b = await createTestBroker('pglite');
    const port = await freePort();
    await b.app.listen({ port, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    await call('POST', '/api/v1/providers', { kind: 'static', name: 'soho-racks' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await b?.close();
  });

  it('adds a host by DNS name, edits it, toggles maintenance, and offers no power action', async () => {
    const t = await openTab(browser, base);
    tabs.push(t);
    const { page } = t;
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Workstations' }).click();
    await page.getByRole('button', { name: 'Add static host' }).click();
    const form = page.getByRole('form', { name: 'New static host' });
    await expect.poll(() => form.getByLabel('Static provider').inputValue(), WAIT).not.toBe('');
    await form.getByLabel('Name', { exact: true }).fill('grade-01');
    await form.getByLabel('Address').fill('grade_01.studio.lan');
    await form.getByLabel('Tags').fill('suite=grading');
    await form.getByRole('button', { name: 'Add host' }).click();
    // Refused at the field, with the API's words.
    const address = form.getByLabel('Address');
    await expect.poll(() => address.getAttribute('aria-invalid'), WAIT).toBe('true');
    expect(await form.getByRole('alert').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('must be an IPv4 or IPv6 address or a DNS host name')]));
    await address.fill('Grade-01.Studio.LAN');
    await form.getByRole('button', { name: 'Add host' }).click();

    const table = page.getByRole('table', { name: 'Workstations' });
    const row = table.getByRole('row', { name: /grade-01/ });
    await expect.poll(() => row.getByRole('cell').allTextContents(), WAIT).toContain('grade-01.studio.lan');
    const host = (await call('GET', '/api/v1/workstations?q=grade-01')).items[0];
    expect(host).toMatchObject({ dnsName: 'grade-01.studio.lan', tags: { suite: 'grading' }, availableActions: ['edit', 'remove', 'maintenance'] });

    // Edit: a new address (another DNS name) and a second protocol.
    const menuOf = async () => (await row.getByRole('button', { name: 'Actions for grade-01' }).click(), page.getByRole('menu', { name: 'Actions for grade-01' }));
    await (await menuOf()).getByRole('menuitem', { name: 'Edit' }).click();
    const edit = page.getByRole('form', { name: 'Edit grade-01' });
    expect(await edit.getByLabel('Address').inputValue()).toBe('grade-01.studio.lan');
    await edit.getByLabel('Address').fill('grade-01.soho.lan');
    await edit.getByLabel('Protocols').fill('rdp;vnc:5901');
    await edit.getByRole('button', { name: 'Save host' }).click();
    await expect.poll(() => row.getByRole('cell').allTextContents(), WAIT).toContain('grade-01.soho.lan');
    expect((await call('GET', `/api/v1/workstations/${host.id}`)).protocols).toEqual([{ protocol: 'rdp' }, { protocol: 'vnc', port: 5901 }]);

    // Maintenance, after a confirmation; the row says so.
    await (await menuOf()).getByRole('menuitem', { name: 'Start maintenance' }).click();
    await page.getByRole('dialog', { name: /Put grade-01 in maintenance/ }).getByRole('button', { name: 'Start maintenance grade-01' }).click();
    await row.getByText('maintenance', { exact: true }).waitFor();
    expect((await call('GET', `/api/v1/workstations/${host.id}`)).maintenance).toBe(true);

    // No power action for a machine its provider cannot power; maintenance can now be ended.
    const menu = await menuOf();
    expect(await menu.getByRole('menuitem').allTextContents()).toEqual(['Edit', 'End maintenance', 'Delete']);
    await screenshot(page, 'static-hosts');
    expect(unexpected(t.problems)).toEqual([]);
  });

  it('an artist whose desktop is a host whose name does not resolve is told so in the portal', async () => {
    const racks = (await call('GET', '/api/v1/providers')).items[0];
    await call('POST', `/api/v1/providers/${racks.id}/hosts`, { name: 'gone-01', address: 'gone-01.invalid' });
    const pool = await call('POST', '/api/v1/pools', { name: 'suite-b', providerId: racks.id, membership: { externalIds: ['gone-01'] } });
    const group = await call('POST', '/api/v1/groups', { name: 'Colorists' });
    await call('POST', '/api/v1/users', { username: 'cora', password: 'cora-password-1', groupIds: [group.id] });
    await call('POST', '/api/v1/policies', { name: 'colorists', groupIds: [group.id], pools: [{ poolId: pool.id }] });
    const t = await openTab(browser, base);
    tabs.push(t);
    const { page } = t;
    await signIn(page, 'cora', 'cora-password-1');
    const card = page.getByRole('listitem', { name: 'suite-b' });
    await card.getByRole('button', { name: 'Connect to suite-b' }).click();
    const alert = card.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/the desktop "gone-01" cannot be reached: its address gone-01\.invalid does not resolve/);
    await screenshot(page, 'static-hosts-unresolvable');
    // Nothing was half-made: no connection, and the host is free for the next try.
    expect((await call('GET', '/api/v1/connections')).items).toEqual([]);
    expect(unexpected(t.problems)).toEqual([]);
  });

  it('an artist connecting to a VNC desktop can download the RealVNC file or the TigerVNC one (issue 16 point 3)', async () => {
    const racks = (await call('GET', '/api/v1/providers')).items[0];
    await call('POST', `/api/v1/providers/${racks.id}/hosts`, { name: 'paint-01', address: 'localhost', protocols: [{ protocol: 'vnc', port: 5901 }] });
    const pool = await call('POST', '/api/v1/pools', { name: 'paint', providerId: racks.id, membership: { externalIds: ['paint-01'] } });
    const group = await call('POST', '/api/v1/groups', { name: 'Painters' });
    await call('POST', '/api/v1/users', { username: 'vera', password: 'vera-password-1', groupIds: [group.id] });
    const vncOnly = await call('POST', '/api/v1/protocol-plans', { name: 'vnc-direct', protocols: [{ protocol: 'vnc', port: 5901 }] });
    await call('POST', '/api/v1/policies', { name: 'painters', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: vncOnly.id });
    const t = await openTab(browser, base);
    tabs.push(t);
    const { page } = t;
    await signIn(page, 'vera', 'vera-password-1');
    const card = page.getByRole('listitem', { name: 'paint' });
    await card.getByRole('button', { name: 'Connect to paint' }).click();
    const download = async (name: string) => {
      const link = card.getByRole('link', { name });
      await link.waitFor(WAIT);
      const downloading = page.waitForEvent('download');
      await link.click();
      const d = await downloading;
      return { name: d.suggestedFilename(), text: fs.readFileSync((await d.path())!, 'utf8') };
    };
    const realvnc = await download('Download VNC file');
    expect(realvnc.name).toMatch(/\.vnc$/);
    expect(realvnc.text).toMatch(/^Host=.+:5901\r?$/m);
    const tigervnc = await download('Download TigerVNC file');
    expect(tigervnc.name).toMatch(/\.tigervnc$/);
    // TigerVNC's own format (test/system/vnc-files.test.ts opens it with the real xtigervncviewer).
    expect(tigervnc.text).toMatch(/^ServerName=.+::5901$/m);
    await screenshot(page, 'portal-vnc-files');
    expect(unexpected(t.problems)).toEqual([]);
  });
});
