import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../packages/ec2-emulator/src/index.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../support/broker.ts';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../support/ec2.ts';
import { freePort } from '../support/ports.ts';

/**
 * The console pages an admin uses in the first week (issue 16 point 10), in Chromium against an
 * in-process broker, a static provider and the EC2 emulator: who sees what on the policies page,
 * whose machine is whose on the workstations page (destructive actions behind a menu and a typed
 * confirmation), names in the audit log, a password set for a user, group members edited.
 */
const WAIT = { timeout: 30_000 };

describe('console admin pages (Chromium)', () => {
  let b: TestBroker;
  let emu: Ec2Emulator;
  let base: string;
  let browser: Browser;
  let admin: Session;
  let page: Page;
  let tab: Tab;
  const ids = {} as Record<'artists' | 'editSuite' | 'aws', string>;
  const call = async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.statusCode === 204 ? null : res.json();
  };
  const canSignIn = async (username: string, password: string) =>
    (await b.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } })).statusCode === 200;
  const nav = (name: string) => page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name, exact: true }).click();

  beforeAll(async () => {
    emu = await startTestEmulator();
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: 'd4'.repeat(32) } });
    const port = await freePort();
    await b.app.listen({ port, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const lab = await call('POST', '/api/v1/providers', { kind: 'static', name: 'lab' });
    await call('POST', `/api/v1/providers/${lab.id}/hosts`, { name: 'lab-01', address: '10.20.30.41', tags: { lab: 'yes' } });
    const aws = await call('POST', '/api/v1/providers', { kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET } });
    ids.aws = aws.id;
    await call('POST', '/api/v1/workstations', { providerId: aws.id, name: 'render-01', imageId: DEMO_AMI_ID, instanceType: 'g5.2xlarge' });
    emu.control.advanceTime(10_000);
    await call('POST', `/api/v1/providers/${aws.id}/sync`);
    const artists = await call('POST', '/api/v1/groups', { name: 'Artists' });
    const editors = await call('POST', '/api/v1/groups', { name: 'Editors' });
    ids.artists = artists.id;
    await call('POST', '/api/v1/users', { username: 'ana', displayName: 'Ana Artist', password: 'ana-password-1', groupIds: [artists.id] });
    await call('POST', '/api/v1/users', { username: 'ed', displayName: 'Ed Editor', password: 'ed-password-1', groupIds: [editors.id] });
    await call('POST', '/api/v1/users', { username: 'audrey', password: 'audrey-password-1', role: 'auditor' });
    const editSuite = await call('POST', '/api/v1/pools', { name: 'edit-suite', providerId: lab.id, membership: { tags: { lab: ['yes'] } } });
    ids.editSuite = editSuite.id;
    await call('POST', '/api/v1/policies', { name: 'artists', groupIds: [artists.id], pools: [{ poolId: editSuite.id }] });
    await call('POST', '/api/v1/policies', { name: 'editors', groupIds: [editors.id, artists.id], pools: [{ poolId: editSuite.id, desktops: 2 }] });
    // Ana holds lab-01, so the workstations page has someone to name.
    const ana = await login(b.app, 'ana', 'ana-password-1');
    expect((await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: as(ana), payload: { poolId: editSuite.id } })).statusCode).toBe(201);
    browser = await launchBrowser();
    tab = await openTab(browser, base);
    page = tab.page;
    await signIn(page, 'admin', ADMIN_PASSWORD);
  });

  afterAll(async () => {
    await tab?.context.close().catch(() => undefined);
    await browser?.close();
    await b?.close();
    await emu?.close();
  });

  it('the policies page names each policy\'s groups and pools, linked to their pages', async () => {
    await nav('Policies');
    const table = page.getByRole('table', { name: 'Policies' });
    const editors = table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'editors' }) });
    await editors.getByRole('link', { name: 'Artists' }).waitFor(WAIT);
    await editors.getByRole('link', { name: 'Editors' }).waitFor();
    expect(await editors.getByRole('link', { name: 'edit-suite (×2)' }).getAttribute('href')).toBe(`#/pools/${ids.editSuite}/workstations`);
    expect(await editors.getByRole('link', { name: 'Artists' }).getAttribute('href')).toBe(`#/groups/${ids.artists}`);
    await screenshot(page, 'console-policies');
    // The pool link shows that pool's machines, the group link its members.
    await editors.getByRole('link', { name: 'edit-suite (×2)' }).click();
    await page.getByRole('heading', { level: 1, name: 'Workstations' }).waitFor();
    await expect.poll(async () => page.getByRole('table', { name: 'Workstations' }).getByRole('rowheader').allTextContents(), WAIT).toEqual(['lab-01']);
    expect(await page.getByLabel('Pool').inputValue()).toBe(ids.editSuite);
    await page.goBack();
    await page.getByRole('table', { name: 'Policies' }).getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'artists' }) }).getByRole('link', { name: 'Artists' }).click();
    await page.getByRole('heading', { level: 1, name: 'Members of Artists' }).waitFor();
    await page.getByRole('table', { name: 'Members of Artists' }).getByRole('rowheader', { name: 'ana' }).waitFor();
  });

  it('the workstations page shows provider, assigned user and health; destructive actions wait in a row menu behind a typed confirmation', async () => {
    await nav('Workstations');
    const table = page.getByRole('table', { name: 'Workstations' });
    const row = (name: string) => table.getByRole('row').filter({ has: page.getByRole('rowheader', { name }) });
    await row('lab-01').getByRole('cell', { name: 'ana', exact: true }).waitFor(WAIT);
    await row('lab-01').getByRole('cell', { name: 'lab', exact: true }).waitFor();
    await row('render-01').getByRole('cell', { name: 'aws', exact: true }).waitFor();
    expect(await row('lab-01').getByRole('cell', { name: 'ana', exact: true }).getAttribute('title')).toBe('Ana Artist');
    // Health as the API gives it, with where it came from as the tooltip.
    const health = row('render-01').locator('.badge[class*="health-"]');
    expect(await health.textContent()).toMatch(/^(unknown|healthy|unhealthy|degraded)$/);
    expect(await health.getAttribute('title')).toBeTruthy();
    // No red buttons on the rows.
    expect(await table.getByRole('button', { name: /^(Terminate|Delete|Stop|Reboot|Start)/ }).count()).toBe(0);

    // A static host offers only what its provider can do: no power actions; ana holds it, so no Delete either.
    await row('lab-01').getByRole('button', { name: 'Actions for lab-01' }).click();
    expect(await page.getByRole('menu', { name: 'Actions for lab-01' }).getByRole('menuitem').allTextContents()).toEqual(['Edit', 'Start maintenance']);
    await page.keyboard.press('Escape');
    await page.getByRole('menu').waitFor({ state: 'detached' });

    await row('render-01').getByRole('button', { name: 'Actions for render-01' }).click();
    const menu = page.getByRole('menu', { name: 'Actions for render-01' });
    expect(await menu.getByRole('menuitem').allTextContents()).toEqual(['Start maintenance', 'Stop', 'Reboot', 'Terminate']);
    await screenshot(page, 'console-workstations-menu');
    await menu.getByRole('menuitem', { name: 'Terminate' }).click();
    const dialog = page.getByRole('dialog', { name: 'Terminate render-01? The machine and its disk are destroyed.' });
    const confirm = dialog.getByRole('button', { name: 'Terminate render-01' });
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel('Type render-01 to confirm').fill('render-02');
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel('Type render-01 to confirm').fill('render-01');
    await screenshot(page, 'console-workstations-confirm');
    await confirm.click();
    await page.getByRole('status').filter({ hasText: 'Terminate: render-01 — done.' }).waitFor(WAIT);
    await dialog.waitFor({ state: 'detached' });
    const [terminated] = (await call('GET', '/api/v1/audit?action=workstation.terminate')).items;
    expect(terminated).toMatchObject({ actorName: 'admin', targetName: 'render-01' });
    expect(emu.control.instances().map((i) => i.state)).not.toContain('running');

    // Cancel changes nothing.
    await row('lab-01').getByRole('button', { name: 'Actions for lab-01' }).click();
    await page.getByRole('menuitem', { name: 'Start maintenance' }).click();
    await page.getByRole('dialog', { name: /^Put lab-01 in maintenance\?/ }).getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect((await call('GET', '/api/v1/workstations?q=lab-01')).items[0].maintenance).toBe(false);
    // The focus is back on the row's menu button.
    expect(await page.evaluate('document.activeElement?.textContent')).toContain('Actions for lab-01');
    expect(unexpected(tab.problems)).toEqual([]);
  });

  it('an admin sets a user\'s password from the users page: mismatch and a short one are refused at the field, then the new one works', async () => {
    await nav('Users');
    await page.getByRole('link', { name: 'Set password of ana' }).click();
    const form = page.getByRole('form', { name: 'Set the password of ana' });
    await form.getByLabel('New password', { exact: true }).fill('ana-new-password-2');
    await form.getByLabel('Repeat the new password').fill('ana-new-password-3');
    await form.getByRole('button', { name: 'Set password' }).click();
    await form.getByRole('alert').filter({ hasText: 'the two passwords differ' }).waitFor();
    await form.getByLabel('New password', { exact: true }).fill('short');
    await form.getByLabel('Repeat the new password').fill('short');
    await form.getByRole('button', { name: 'Set password' }).click();
    await form.getByRole('alert').filter({ hasText: 'must be at least 8 characters' }).waitFor();
    expect(await form.getByLabel('New password', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(await canSignIn('ana', 'ana-password-1')).toBe(true);

    await form.getByLabel('New password', { exact: true }).fill('ana-new-password-2');
    await form.getByLabel('Repeat the new password').fill('ana-new-password-2');
    await form.getByRole('button', { name: 'Set password' }).click();
    await page.getByRole('status').filter({ hasText: 'Password of ana set.' }).waitFor(WAIT);
    await screenshot(page, 'console-user-password');
    expect(await canSignIn('ana', 'ana-password-1')).toBe(false);
    expect(await canSignIn('ana', 'ana-new-password-2')).toBe(true);
  });

  it('an admin adds and removes group members from the group page', async () => {
    await nav('Groups');
    await page.getByRole('link', { name: 'Members of Artists' }).click();
    const members = page.getByRole('table', { name: 'Members of Artists' });
    await members.getByRole('rowheader', { name: 'ana' }).waitFor();
    const add = page.getByRole('form', { name: 'Add a member to Artists' });
    await add.getByLabel('User to add').selectOption({ label: 'ed (Ed Editor)' });
    await add.getByRole('button', { name: 'Add to Artists' }).click();
    await page.getByRole('status').filter({ hasText: 'ed added to Artists.' }).waitFor(WAIT);
    await members.getByRole('rowheader', { name: 'ed' }).waitFor();
    await screenshot(page, 'console-group-members');
    const names = async () => (await call('GET', `/api/v1/users?groupId=${ids.artists}`)).items.map((u: { username: string }) => u.username);
    expect(await names()).toEqual(['ana', 'ed']);

    await members.getByRole('button', { name: 'Remove ed' }).click();
    await members.getByRole('alertdialog', { name: /^Remove ed from Artists\?/ }).getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('status').filter({ hasText: 'ed removed from Artists.' }).waitFor(WAIT);
    await members.getByRole('rowheader', { name: 'ed' }).waitFor({ state: 'detached' });
    expect(await names()).toEqual(['ana']);
  });

  it('the audit log shows names next to ids, in the one request of the page (no lookups per row)', async () => {
    // Another page first, whose own list request must be answered before counting starts (on a
    // loaded machine it can leave after nav() returns).
    await Promise.all([page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/groups'), nav('Groups')]);
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/')) requests.push(new URL(r.url()).pathname);
    });
    await nav('Audit log');
    const table = page.getByRole('table', { name: 'Audit events' });
    const memberAdd = table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'group.member_add' }) });
    await memberAdd.getByText('Artists', { exact: true }).waitFor(WAIT);
    expect(await memberAdd.getByRole('cell').nth(1).textContent()).toBe('admin');
    expect(await memberAdd.textContent()).toContain(ids.artists);
    expect(await memberAdd.textContent()).toContain('user ed');
    const reset = table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'user.password_reset' }) });
    await reset.getByText('ana', { exact: true }).waitFor();
    await table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'workstation.terminate' }) }).getByText('render-01', { exact: true }).waitFor();
    await screenshot(page, 'console-audit-names');
    // Only the audit list itself is asked for: no user, group or workstation lookups per row.
    expect(new Set(requests.filter((p) => p !== '/api/v1/events'))).toEqual(new Set(['/api/v1/audit']));
    expect(unexpected(tab.problems)).toEqual([]);
  });

  it('an auditor reads group members, users and workstations but gets none of the controls', async () => {
    const auditor = await openTab(browser, base);
    try {
      const p = auditor.page;
      await signIn(p, 'audrey', 'audrey-password-1');
      await p.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Groups', exact: true }).click();
      await p.getByRole('link', { name: 'Members of Artists' }).click();
      await p.getByRole('table', { name: 'Members of Artists' }).getByRole('rowheader', { name: 'ana' }).waitFor();
      expect(await p.getByRole('main').getByRole('button').count()).toBe(0);
      await p.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Users', exact: true }).click();
      await p.getByRole('table', { name: 'Users' }).getByRole('rowheader', { name: 'ana' }).waitFor();
      expect(await p.getByRole('link', { name: /^Set password of/ }).count()).toBe(0);
      await p.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Workstations', exact: true }).click();
      await p.getByRole('table', { name: 'Workstations' }).getByRole('rowheader', { name: 'lab-01' }).waitFor();
      expect(await p.getByRole('button', { name: /^Actions for/ }).count()).toBe(0);
      // The page itself is not reachable by its address either.
      await p.goto(`${base}/#/users/${(await call('GET', '/api/v1/users?q=ana')).items[0].id}/password`);
      await p.getByRole('heading', { level: 1, name: 'My desktops' }).waitFor();
      expect(await p.getByRole('form', { name: /^Set the password/ }).count()).toBe(0);
      expect(unexpected(auditor.problems)).toEqual([]);
    } finally {
      await auditor.context.close();
    }
  });
});
