import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../support/broker.ts';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { freePort } from '../support/ports.ts';
import { startTestIdp, type TestIdp } from '../support/saml-idp.ts';

/**
 * SAML sign-in in Chromium against samlify as the IdP: the login page's SAML button, the IdP's page,
 * its form POST back across sites to the ACS, and the portal with the IdP's groups mapped (the artist
 * sees the artists' desktop, not the editors'). The session cookie set on the cross-site POST's
 * answer must be kept by the browser and sent on the redirect that follows (SameSite=Lax).
 */
describe('SAML sign-in in the browser (Chromium)', () => {
  let b: TestBroker;
  let idp: TestIdp;
  let base: string;
  let browser: Browser;
  let admin: Session;
  const tabs: Tab[] = [];
  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return method === 'GET' && !res.headers['content-type']?.toString().includes('json') ? res.body : res.json();
  };

  beforeAll(async () => {
    // The IdP on another host name than the broker (localhost vs 127.0.0.1): its POST to the ACS is cross-site.
    idp = await startTestIdp({ host: '127.0.0.1' });
    const port = await freePort();
    base = `http://localhost:${port}`;
    b = await createTestBroker('pglite', { env: { STAGEDOOR_PUBLIC_URL: base } });
    await b.app.listen({ port, host: '127.0.0.1' });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const racks = await call('POST', '/api/v1/providers', { kind: 'static', name: 'racks' });
    for (const name of ['paint-01', 'cut-01']) await call('POST', `/api/v1/providers/${racks.id}/hosts`, { name, address: 'localhost', protocols: [{ protocol: 'rdp', port: 3389 }] });
    const paint = await call('POST', '/api/v1/pools', { name: 'paint', providerId: racks.id, membership: { externalIds: ['paint-01'] } });
    const cut = await call('POST', '/api/v1/pools', { name: 'cut', providerId: racks.id, membership: { externalIds: ['cut-01'] } });
    const artists = await call('POST', '/api/v1/groups', { name: 'Artists' });
    const editors = await call('POST', '/api/v1/groups', { name: 'Editors' });
    await call('POST', '/api/v1/policies', { name: 'artists', groupIds: [artists.id], pools: [{ poolId: paint.id }] });
    await call('POST', '/api/v1/policies', { name: 'editors', groupIds: [editors.id], pools: [{ poolId: cut.id }] });
    await call('POST', '/api/v1/auth-servers', {
      kind: 'saml',
      name: 'keycloak',
      config: { idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificates: [idp.certificate], usernameAttribute: 'uid', displayNameAttribute: 'displayName', groupsAttribute: 'groups', label: 'Sign in with Keycloak' },
      groupMappings: [{ externalGroup: 'studio-artists', groupId: artists.id }],
    });
    await idp.listen((await call('GET', '/api/v1/auth-servers/keycloak/saml/metadata')) as string, { nameId: 'ana@studio.example', attributes: { uid: 'ana', displayName: 'Ana Artist', groups: ['studio-artists'] } });
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await b?.close();
    await idp?.close();
  });

  it('the artist signs in with the SAML button, passes the IdP page, and lands in the portal with the artists desktop', async () => {
    const t = await openTab(browser, base);
    tabs.push(t);
    const { page, problems } = t;
    await page.getByRole('link', { name: 'Sign in with Keycloak' }).click();
    await page.getByRole('heading', { name: 'Test IdP' }).waitFor();
    const [acs] = await Promise.all([page.waitForResponse((r) => r.url().includes('/api/v1/auth/saml/keycloak/acs')), page.getByRole('button', { name: 'Continue to Stagedoor' }).click()]);
    expect(acs.status()).toBe(303);
    await page.getByRole('listitem', { name: 'paint' }).waitFor();
    expect(await page.getByRole('listitem', { name: 'cut' }).count()).toBe(0);
    await page.getByText('Ana Artist').waitFor();
    await screenshot(page, 'saml-portal');
    expect(unexpected(problems)).toEqual([]);
  });

  it('an admin adds a SAML server in the console form; the list links its SP metadata and the login page offers it', async () => {
    const t = await openTab(browser, base);
    tabs.push(t);
    const { page, problems } = t;
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Auth servers' }).click();
    await page.getByRole('button', { name: 'New auth server' }).click();
    const form = page.getByRole('form', { name: 'New auth server' });
    await form.getByLabel('Kind').selectOption('saml');
    await form.getByLabel('Name', { exact: true }).fill('entra');
    await form.getByLabel('Settings (JSON)').fill(JSON.stringify({ idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificates: [idp.certificate], label: 'Sign in with Entra ID' }));
    await form.getByRole('button', { name: 'Create auth server' }).click();
    const table = page.getByRole('table', { name: 'Auth servers' });
    await table.getByRole('rowheader', { name: 'entra' }).waitFor();
    expect(await table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'entra' }) }).getByRole('link', { name: 'SP metadata' }).getAttribute('href')).toBe('/api/v1/auth-servers/entra/saml/metadata');
    const stored = ((await call('GET', '/api/v1/auth-servers')) as { items: { name: string }[] }).items.find((a) => a.name === 'entra');
    expect(stored).toMatchObject({ kind: 'saml', purpose: 'primary', config: { wantSignedAssertions: true, signRequests: false } });
    const signedOut = await openTab(browser, base);
    tabs.push(signedOut);
    await signedOut.page.getByRole('link', { name: 'Sign in with Entra ID' }).waitFor();
    expect(unexpected(problems)).toEqual([]);
  });
});
