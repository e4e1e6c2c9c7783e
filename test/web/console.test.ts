import fs from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../support/broker.ts';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { freePort } from '../support/ports.ts';

/**
 * The admin console in a real browser against an in-process broker: an admin creates a pool and a
 * policy through the forms (a bad field is refused at the field), the artist then sees the desktop,
 * the dashboard follows live, and an auditor reads everything but finds nothing to change.
 */
/** How long a wait for the page or the broker to catch up may take (a bound, not a timing assertion). */
const WAIT = { timeout: 30_000 };

describe('web console (Chromium)', () => {
  let b: TestBroker;
  let base: string;
  let browser: Browser;
  let admin: Session;
  const tabs: Tab[] = [];
  const tab = async (viewport?: { width: number; height: number }) => {
    const t = await openTab(browser, base, viewport);
    tabs.push(t);
    return t;
  };
  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };

  beforeAll(async () => {
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: 'c3'.repeat(32) } });
    const port = await freePort();
    await b.app.listen({ port, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const provider = await call('POST', '/api/v1/providers', { kind: 'static', name: 'lab' });
    await call('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'lab-01', address: '10.20.30.41', protocols: [{ protocol: 'rdp' }], tags: { lab: 'yes' } });
    const artists = await call('POST', '/api/v1/groups', { name: 'Artists' });
    await call('POST', '/api/v1/users', { username: 'ana', password: 'ana-password-1', groupIds: [artists.id] });
    await call('POST', '/api/v1/users', { username: 'audrey', password: 'audrey-password-1', role: 'auditor' });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await b?.close();
  });

  it('serves the built app under a strict Content-Security-Policy', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/\sstyle=/);
  });

  it('an admin creates a pool in the console; a bad field is refused with the API\'s message at that field', async () => {
    const { page, problems } = await tab();
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Pools' }).click();
    await page.getByRole('button', { name: 'New pool' }).click();
    const form = page.getByRole('form', { name: 'New pool' });
    await form.getByLabel('Name', { exact: true }).fill('edit-suite');
    await form.getByLabel('Provider').selectOption({ label: 'lab' });
    await form.getByLabel('Membership (JSON)').fill('{"tags": {"lab": ["yes"]}}');
    await form.getByLabel('Time zone').fill('Mars/Olympus_Mons');
    await form.getByRole('button', { name: 'Create pool' }).click();

    const zone = form.getByLabel('Time zone');
    await expect.poll(() => zone.getAttribute('aria-invalid'), WAIT).toBe('true');
    const describedBy = (await zone.getAttribute('aria-describedby'))!.split(' ').find((id) => id.endsWith('-error'))!;
    expect(await page.locator(`[id="${describedBy}"]`).textContent()).toContain('is not an IANA time zone');
    // Nothing was created.
    expect((await call('GET', '/api/v1/pools')).items).toHaveLength(0);

    await zone.fill('Europe/London');
    await form.getByRole('button', { name: 'Create pool' }).click();
    await page.getByRole('status').filter({ hasText: 'Pool created.' }).waitFor();
    await page.getByRole('table', { name: 'Pools' }).getByRole('rowheader', { name: 'edit-suite' }).waitFor();
    const pools = (await call('GET', '/api/v1/pools')).items;
    expect(pools).toMatchObject([{ name: 'edit-suite', timeZone: 'Europe/London', membership: { tags: { lab: ['yes'] } }, availability: { available: 1 } }]);
    expect(unexpected(problems)).toEqual([]);
  });

  it('an admin creates a policy in the console, and the artist then sees the new desktop and gets its direct .rdp file', async () => {
    const { page } = tabs[0]!;
    await page.getByRole('link', { name: 'Policies' }).click();
    await page.getByRole('button', { name: 'New policy' }).click();
    const form = page.getByRole('form', { name: 'New policy' });
    await form.getByLabel('Name', { exact: true }).fill('artists');
    // Submitting without a group: the API's own message, at the Groups field.
    await form.getByRole('checkbox', { name: 'edit-suite' }).check();
    await form.getByRole('button', { name: 'Create policy' }).click();
    await form.getByRole('alert').filter({ hasText: 'a policy must name at least one group' }).waitFor();
    await form.getByRole('checkbox', { name: 'Artists' }).check();
    await form.getByRole('button', { name: 'Create policy' }).click();
    await page.getByRole('table', { name: 'Policies' }).getByRole('rowheader', { name: 'artists' }).waitFor();

    const artist = await tab();
    await signIn(artist.page, 'ana', 'ana-password-1');
    const card = artist.page.getByRole('listitem', { name: 'edit-suite' });
    await card.getByText('Available').waitFor();
    await card.getByRole('button', { name: 'Connect to edit-suite' }).click();
    const downloading = artist.page.waitForEvent('download');
    await card.getByRole('link', { name: 'Download RDP file' }).click();
    const file = fs.readFileSync((await (await downloading).path())!, 'utf8');
    // A direct protocol plan (the default): the workstation's own address.
    expect(file).toContain('full address:s:10.20.30.41:3389');
    expect(file).toContain('username:s:ana');
    expect(unexpected(artist.problems)).toEqual([]);
  });

  it('the dashboard follows live: the artist releasing the desktop shows without a reload', async () => {
    const { page } = tabs[0]!;
    await page.getByRole('link', { name: 'Dashboard' }).click();
    const row = page.getByRole('table', { name: 'Pools' }).getByRole('row', { name: /edit-suite/ });
    await expect.poll(async () => (await row.getByRole('cell').allTextContents()).slice(0, 2), WAIT).toEqual(['0', '1']); // available, assigned
    await page.getByText('1 live session', { exact: true }).waitFor();
    await screenshot(page, 'dashboard-1280x800');

    const artist = tabs[1]!.page;
    await artist.getByRole('button', { name: 'Release' }).click();
    await artist.getByRole('alertdialog').getByRole('button', { name: 'Release' }).click();
    await artist.getByRole('button', { name: 'Connect to edit-suite' }).waitFor();
    // The admin's page was not reloaded: the event stream brought the new counts.
    await expect.poll(async () => (await row.getByRole('cell').allTextContents()).slice(0, 2), WAIT).toEqual(['1', '0']);
    await page.getByText('0 live sessions').waitFor();
  });

  it('an admin edits a pool, creates, renames and deletes a group, and reorders and deletes a policy', async () => {
    const { page } = tabs[0]!;
    await page.getByRole('link', { name: 'Pools', exact: true }).click();
    await page.getByRole('button', { name: 'Edit edit-suite' }).click();
    const edit = page.getByRole('form', { name: 'Edit pool edit-suite' });
    expect(await edit.getByLabel('Time zone').inputValue()).toBe('Europe/London');
    await edit.getByLabel('Max total').fill('5');
    await edit.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Pool edit-suite saved.' }).waitFor();
    expect((await call('GET', '/api/v1/pools')).items[0]).toMatchObject({ maxTotal: 5, timeZone: 'Europe/London', membership: { tags: { lab: ['yes'] } } });

    await page.getByRole('link', { name: 'Groups', exact: true }).click();
    await page.getByRole('button', { name: 'New group' }).click();
    await page.getByRole('form', { name: 'New group' }).getByLabel('Name', { exact: true }).fill('Temps');
    await page.getByRole('button', { name: 'Create group' }).click();
    await page.getByRole('button', { name: 'Edit Temps' }).click();
    await page.getByRole('form', { name: 'Edit group Temps' }).getByLabel('Name', { exact: true }).fill('Freelancers');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('button', { name: 'Delete Freelancers' }).click();
    // The row's Delete button gives way to the question while it is asked: the deletion is done when
    // the question goes away, and the row when the list has loaded again.
    const deleteGroup = page.getByRole('alertdialog', { name: 'Delete group Freelancers?' });
    await deleteGroup.getByRole('button', { name: 'Delete' }).click();
    await deleteGroup.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Delete Freelancers' }).waitFor({ state: 'detached' });
    // Policies are an order (first match wins): move one up, then delete it.
    const pools = (await call('GET', '/api/v1/pools')).items;
    const artistsGroup = (await call('GET', '/api/v1/groups')).items.find((g: { name: string }) => g.name === 'Artists');
    await call('POST', '/api/v1/policies', { name: 'night-shift', groupIds: [artistsGroup.id], pools: [{ poolId: pools[0].id }] });
    await page.getByRole('link', { name: 'Policies', exact: true }).click();
    await page.getByRole('button', { name: 'Move up night-shift' }).click();
    await page.getByRole('status').filter({ hasText: 'night-shift moved up.' }).waitFor();
    expect((await call('GET', '/api/v1/policies')).items.map((p: { name: string }) => p.name)).toEqual(['night-shift', 'artists']);
    await page.getByRole('button', { name: 'Delete night-shift' }).click();
    const deletePolicy = page.getByRole('alertdialog', { name: 'Delete policy night-shift?' });
    await deletePolicy.getByRole('button', { name: 'Delete' }).click();
    await deletePolicy.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Delete night-shift' }).waitFor({ state: 'detached' });
    expect((await call('GET', '/api/v1/policies')).items.map((p: { name: string }) => p.name)).toEqual(['artists']);

    const trail = (await call('GET', '/api/v1/audit?action=group.*')).items.map((e: { action: string }) => e.action);
    expect(trail).toEqual(expect.arrayContaining(['group.create', 'group.update', 'group.delete']));
    expect((await call('GET', '/api/v1/groups')).items.map((g: { name: string }) => g.name)).toEqual(['Artists']);
  });

  it('an admin makes a gateway enrolment token in the console: shown once, and it enrols a gateway', async () => {
    const { page } = tabs[0]!;
    await page.getByRole('link', { name: 'Gateway enrolment', exact: true }).click();
    await page.getByRole('button', { name: 'New enrolment token' }).click();
    const form = page.getByRole('form', { name: 'New enrolment token' });
    await form.getByLabel('Cluster').fill('edge');
    await form.getByLabel('Gateway name (optional)').fill('edge-1');
    await form.getByLabel('Public address').fill('edge-1.example.test');
    await page.getByRole('button', { name: 'Create enrolment token' }).click();
    const notice = await page.getByRole('status').filter({ hasText: 'shown only now' }).textContent(WAIT);
    const token = /(sde_\S+)/.exec(notice ?? '')?.[1];
    expect(token, notice ?? '').toBeDefined();
    await page.getByRole('table', { name: 'Gateway enrolment' }).getByRole('row').filter({ hasText: 'edge-1' }).filter({ hasText: 'not yet' }).waitFor(WAIT);
    // The listed row never carries the token; the token itself is real: a gateway enrols with it.
    expect(await page.getByRole('table', { name: 'Gateway enrolment' }).textContent()).not.toContain(token);
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/gateways/enroll', payload: { token, name: 'edge-1', portRangeStart: 30000, portRangeEnd: 30009, version: 'test' } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().publicAddress).toBe('edge-1.example.test'); // from the admin's record
    expect((await call('GET', '/api/v1/gateways')).items.map((g: { name: string; cluster: string }) => `${g.cluster}/${g.name}`)).toContain('edge/edge-1');
  });

  it('an admin re-enrols a gateway from the gateways page, and a moved address is shown there', async () => {
    const { page } = tabs[0]!;
    await page.getByRole('link', { name: 'Gateways', exact: true }).click();
    const row = page.getByRole('table', { name: 'Gateways' }).getByRole('row').filter({ hasText: 'edge-1' });
    await row.getByRole('cell', { name: '—' }).first().waitFor(WAIT); // never moved
    await row.getByRole('button', { name: 'Re-enrol edge-1' }).click();
    const notice = await page.getByRole('status').filter({ hasText: 'Re-enrolment token for edge-1 at edge-1.example.test' }).textContent(WAIT);
    const token = /(sde_\S+)/.exec(notice ?? '')?.[1];
    expect(token, notice ?? '').toBeDefined();
    const again = await b.app.inject({ method: 'POST', url: '/api/v1/gateways/enroll', payload: { token, name: 'edge-1', portRangeStart: 30000, portRangeEnd: 30009 } });
    expect(again.statusCode, again.body).toBe(201);
    // Moving the address is an API call on that gateway; the page then shows where it moved from.
    const id = (await call('GET', '/api/v1/gateways')).items.find((g: { name: string }) => g.name === 'edge-1').id as string;
    const moved = await call('POST', `/api/v1/gateways/${id}/reenrollments`, { publicAddress: 'edge-1b.example.test' });
    expect((await b.app.inject({ method: 'POST', url: '/api/v1/gateways/enroll', payload: { token: moved.token, name: 'edge-1', portRangeStart: 30000, portRangeEnd: 30009 } })).statusCode).toBe(201);
    await page.reload();
    await page.getByRole('table', { name: 'Gateways' }).getByRole('row').filter({ hasText: 'edge-1b.example.test:30000-30009' }).filter({ hasText: 'from edge-1.example.test on' }).waitFor(WAIT);
    const trail = (await call('GET', `/api/v1/audit?action=gateway.*&targetId=${id}`)).items.map((e: { action: string }) => e.action);
    expect(trail).toEqual(expect.arrayContaining(['gateway.reenrollment_create', 'gateway.address_change']));
  });

  it('an admin adds a protocol plan and puts it on the policy; the artist picks SSH and gets the command to copy', async () => {
    const { page } = tabs[0]!;
    await page.getByRole('link', { name: 'Protocol plans', exact: true }).click();
    await page.getByRole('button', { name: 'New protocol plan' }).click();
    const form = page.getByRole('form', { name: 'New protocol plan' });
    await form.getByLabel('Name', { exact: true }).fill('rdp-or-ssh');
    await form.getByLabel('Protocols (JSON)').fill('[{"protocol": "rdp"}, {"protocol": "ssh", "port": 2222}]');
    await form.getByRole('button', { name: 'Create protocol plan' }).click();
    await page.getByRole('table', { name: 'Protocol plans' }).getByRole('rowheader', { name: 'rdp-or-ssh' }).waitFor();

    await page.getByRole('link', { name: 'Policies', exact: true }).click();
    await page.getByRole('button', { name: 'Edit artists' }).click();
    const edit = page.getByRole('form', { name: 'Edit policy artists' });
    await edit.getByLabel('Protocol plan').selectOption({ label: 'rdp-or-ssh' });
    await edit.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Policy artists saved.' }).waitFor();

    const artist = tabs[1]!;
    await artist.context.grantPermissions(['clipboard-read', 'clipboard-write']);
    await artist.page.reload();
    const card = artist.page.getByRole('listitem', { name: 'edit-suite' });
    await card.getByLabel('Protocol').selectOption('ssh');
    await card.getByRole('button', { name: 'Connect to edit-suite' }).click();
    await card.getByText('ssh -p 2222 ana@10.20.30.41', { exact: true }).waitFor();
    await card.getByRole('button', { name: 'Copy ssh command' }).click();
    await card.getByRole('status').filter({ hasText: 'Copied' }).waitFor();
    expect(await artist.page.evaluate('navigator.clipboard.readText()')).toBe('ssh -p 2222 ana@10.20.30.41');
  });

  it('the auth servers page warns about a directory reached over plain ldap:// and a RADIUS server whose answers could be forged', async () => {
    await call('POST', '/api/v1/auth-servers', {
      kind: 'ldap',
      name: 'old-ldap',
      enabled: false,
      config: { urls: ['ldap://ldap.lab.example'], allowInsecure: true, userSearchBase: 'dc=lab,dc=example', userFilter: '(uid={username})', groupMembership: 'posix-group' },
    });
    await call('POST', '/api/v1/auth-servers', { kind: 'radius', name: 'old-radius', enabled: false, config: { servers: [{ host: '10.0.0.5' }], requireMessageAuthenticator: false }, sharedSecret: 'lab-radius-secret' });
    await call('POST', '/api/v1/auth-servers', { kind: 'radius', name: 'new-radius', enabled: false, config: { servers: [{ host: '10.0.0.6' }] }, sharedSecret: 'lab-radius-secret' });
    const { page, problems } = await tab();
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Auth servers' }).click();
    const table = page.getByRole('table', { name: 'Auth servers' });
    await table.getByRole('row', { name: /old-ldap/ }).getByText('Insecure: plain ldap:// sends passwords unencrypted').waitFor(WAIT);
    await table.getByRole('row', { name: /old-radius/ }).getByText(/Message-Authenticator not required/).waitFor(WAIT);
    expect(await table.getByRole('row', { name: /new-radius/ }).textContent()).not.toMatch(/Message-Authenticator|Insecure/);
    expect(unexpected(problems)).toEqual([]);
  });

  it('an auditor reads every page but finds nothing to edit, and the API refuses their change', async () => {
    const { page, context, problems } = await tab();
    // The keyboard alone signs in: the username field has the focus, Tab reaches the password, Enter submits.
    await page.getByRole('textbox', { name: 'Username' }).waitFor();
    await page.keyboard.type('audrey');
    await page.keyboard.press('Tab');
    await page.keyboard.type('audrey-password-1');
    await page.keyboard.press('Enter');
    const editControls = /^(New |Edit |Delete |Create |Save|Start |Stop |Reboot |Terminate |Disconnect |Force-release |Reconcile |Test |Sync |Sign out everywhere |Move )/;
    const pages = ['Dashboard', 'Workstations', 'Live sessions', 'Pools', 'Policies', 'Protocol plans', 'Power plans', 'Release plans', 'Providers', 'Auth servers', 'Gateways', 'Users', 'Groups', 'Audit log'];
    for (const name of pages) {
      await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name, exact: true }).click();
      await page.getByRole('heading', { level: 1, name }).waitFor();
      const buttons = await page.getByRole('main').getByRole('button').allTextContents();
      expect(buttons.filter((t) => editControls.test(t)), name).toEqual([]);
    }
    // They do read: the pool and the policy the admin made are listed.
    await page.getByRole('link', { name: 'Pools', exact: true }).click();
    await page.getByRole('table', { name: 'Pools' }).getByRole('rowheader', { name: 'edit-suite' }).waitFor();
    await page.getByRole('link', { name: 'Audit log', exact: true }).click();
    await page.getByRole('table', { name: 'Audit events' }).getByRole('rowheader', { name: 'pool.create' }).first().waitFor();

    const me = await (await context.request.get(`${base}/api/v1/me`)).json();
    expect(me.permissions).not.toContain('pools:write');
    const refused = await context.request.post(`${base}/api/v1/pools`, { headers: { 'x-csrf-token': me.csrfToken }, data: { name: 'sneaky', providerId: (await call('GET', '/api/v1/providers')).items[0].id } });
    expect(refused.status()).toBe(403);
    expect((await refused.json()).error.message).toContain('auditor');
    // Without the CSRF token the session cannot change anything either.
    expect((await context.request.delete(`${base}/api/v1/me/tokens/00000000-0000-4000-8000-000000000000`)).status()).toBe(403);
    expect(unexpected(problems)).toEqual([]);
  });
});
