import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET_KEY } from '../../apps/broker/test/identity/helpers.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../support/broker.ts';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { startTestOp, type TestOp } from '../support/oidc-op.ts';
import { freePort } from '../support/ports.ts';

/**
 * Single sign-on in Chromium against a real OpenID Provider: the login page's button, the IdP's own
 * sign-in form, back to the portal with the IdP's groups mapped (the artist sees the artists'
 * desktops, not the editors'), a refused sign-in shown as a page, and logout offering the IdP's.
 */
describe('OIDC sign-in in the browser (Chromium)', () => {
  let b: TestBroker;
  let op: TestOp;
  let base: string;
  let browser: Browser;
  let admin: Session;
  const tabs: Tab[] = [];
  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const tab = async () => {
    const t = await openTab(browser, base);
    tabs.push(t);
    return t;
  };

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    op = await startTestOp({
      redirectUris: [`${base}/api/v1/auth/oidc/okta/callback`],
      postLogoutRedirectUris: [`${base}/`],
      users: {
        ana: { password: 'ana-idp-pw', amr: ['pwd', 'mfa'], claims: { preferred_username: 'ana', name: 'Ana Artist', groups: ['Studio Artists'] } },
        noam: { password: 'noam-idp-pw', amr: ['pwd'], claims: { preferred_username: 'noam', groups: ['Studio Artists'] } },
      },
    });
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY, STAGEDOOR_PUBLIC_URL: base } });
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
      kind: 'oidc',
      name: 'okta',
      config: { issuer: op.issuer, clientId: op.clientId, scopes: ['openid', 'profile', 'groups'], amrValues: ['mfa'], requireIdpMfa: true, label: 'Sign in with Okta' },
      clientSecret: op.clientSecret,
      groupMappings: [{ externalGroup: 'Studio Artists', groupId: artists.id }],
    });
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await b?.close();
    await op?.close();
  });

  it('the artist signs in with the SSO button, lands in the portal with the artists desktops, and logout offers the IdP sign-out', async () => {
    const { page, problems } = await tab();
    await page.getByRole('link', { name: 'Sign in with Okta' }).click();
    await page.getByRole('heading', { name: 'Test IdP sign-in' }).waitFor();
    await page.getByLabel('Login').fill('ana');
    await page.getByLabel('Password').fill('ana-idp-pw');
    await page.getByRole('button', { name: 'Sign in at IdP' }).click();
    await page.getByRole('listitem', { name: 'paint' }).waitFor();
    expect(await page.getByRole('listitem', { name: 'cut' }).count()).toBe(0);
    await page.getByText('Ana Artist').waitFor();
    await screenshot(page, 'sso-portal');
    await page.getByRole('button', { name: 'Sign out' }).click();
    const idpLogout = page.getByRole('link', { name: 'Also sign out at your identity provider' });
    await idpLogout.waitFor();
    expect(new URL((await idpLogout.getAttribute('href'))!).origin).toBe(op.issuer);
    expect(unexpected(problems)).toEqual([]);
  });

  it('an IdP sign-in without MFA is refused with a page that says why, and audited', async () => {
    const { page } = await tab();
    await page.getByRole('link', { name: 'Sign in with Okta' }).click();
    await page.getByLabel('Login').fill('noam');
    await page.getByLabel('Password').fill('noam-idp-pw');
    const [answer] = await Promise.all([page.waitForResponse((r) => r.url().includes('/api/v1/auth/oidc/okta/callback')), page.getByRole('button', { name: 'Sign in at IdP' }).click()]);
    expect(answer.status()).toBe(401);
    await page.getByRole('heading', { name: 'Sign-in refused' }).waitFor();
    await page.getByText(/multi-factor authentication at your identity provider/).waitFor();
    const [row] = (await b.services.audit.list({ action: 'auth.login' }, 1, 0)).items;
    expect(row).toMatchObject({ outcome: 'failure', details: { check: 'mfa', username: 'noam' } });
    expect((await b.services.users.list({}, 100, 0)).items.some((u) => u.username === 'noam')).toBe(false);
  });

  it('an admin adds an OIDC server in the console form (client secret write-only), and the login page offers it', async () => {
    const { page, problems } = await tab();
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Auth servers' }).click();
    await page.getByRole('button', { name: 'New auth server' }).click();
    const form = page.getByRole('form', { name: 'New auth server' });
    await form.getByLabel('Kind').selectOption('oidc');
    await form.getByLabel('Name', { exact: true }).fill('keycloak');
    await form.getByLabel('Settings (JSON)').fill(JSON.stringify({ issuer: op.issuer, clientId: op.clientId, label: 'Sign in with Keycloak' }));
    await form.getByLabel('OIDC client secret').fill('console-typed-secret');
    await form.getByRole('button', { name: 'Create auth server' }).click();
    await page.getByRole('table', { name: 'Auth servers' }).getByRole('rowheader', { name: 'keycloak' }).waitFor();
    expect(await page.content()).not.toContain('console-typed-secret');
    const stored = (await call('GET', '/api/v1/auth-servers')).items.find((a: { name: string }) => a.name === 'keycloak');
    expect(stored).toMatchObject({ kind: 'oidc', purpose: 'primary', secretSet: true, config: { usernameClaim: 'preferred_username', secondFactor: 'when-idp-mfa-missing' } });
    expect(JSON.stringify(stored)).not.toContain('console-typed-secret');
    const signedOut = await tab();
    await signedOut.page.getByRole('link', { name: 'Sign in with Keycloak' }).waitFor();
    expect(unexpected(problems)).toEqual([]);
  });
});
