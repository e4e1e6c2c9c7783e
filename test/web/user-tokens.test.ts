import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { launchBrowser, openTab, screenshot, signIn, unexpected, type Tab } from '../support/browser.ts';
import { freePort } from '../support/ports.ts';

/** A user's API tokens in the console: admins see them (never a secret) and revoke a leaked one. */
describe('API tokens of a user in the console (Chromium)', () => {
  let b: TestBroker;
  let base: string;
  let browser: Browser;
  let token: string;
  const tabs: Tab[] = [];
  const tab = async () => {
    const t = await openTab(browser, base);
    tabs.push(t);
    return t;
  };
  const tokenWorks = async () => (await b.app.inject({ url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } })).statusCode === 200;

  beforeAll(async () => {
    b = await createTestBroker('pglite');
    const port = await freePort();
    await b.app.listen({ port, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    for (const [username, role] of [['tess', 'user'], ['audrey', 'auditor']]) {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username, password: `${username}-password-1`, role } });
      expect(res.statusCode, res.body).toBe(201);
    }
    const tess = await login(b.app, 'tess', 'tess-password-1');
    const minted = await b.app.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: as(tess), payload: { name: 'ci-deploy' } });
    expect(minted.statusCode, minted.body).toBe(201);
    token = minted.json().token;
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    for (const t of tabs) await t.context.close().catch(() => undefined);
    await browser?.close();
    await b?.close();
  });

  it('an auditor sees a user\'s tokens but cannot revoke them', async () => {
    const { page, problems } = await tab();
    await signIn(page, 'audrey', 'audrey-password-1');
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByRole('link', { name: 'API tokens tess' }).click();
    await page.getByRole('heading', { level: 1, name: 'API tokens of tess' }).waitFor();
    await page.getByRole('table', { name: 'API tokens of tess' }).getByRole('rowheader', { name: 'ci-deploy' }).waitFor();
    expect(await page.getByRole('button', { name: /^Revoke/ }).count()).toBe(0);
    expect(await page.content()).not.toContain(token);
    expect(unexpected(problems)).toEqual([]);
  });

  it('an admin revokes a leaked API token of another user from the console, and the token stops working', async () => {
    expect(await tokenWorks()).toBe(true);
    const { page, problems } = await tab();
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByRole('link', { name: 'API tokens tess' }).click();
    const table = page.getByRole('table', { name: 'API tokens of tess' });
    await table.getByRole('rowheader', { name: 'ci-deploy' }).waitFor();
    expect(await page.content()).not.toContain(token);
    await screenshot(page, 'console-api-tokens');
    await table.getByRole('button', { name: 'Revoke ci-deploy' }).click();
    await page.getByRole('alertdialog').getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Token ci-deploy revoked.' }).waitFor();
    await page.getByText('No API tokens.').waitFor();
    expect(await tokenWorks()).toBe(false);
    const [audit] = (await b.services.audit.list({ action: 'api_token.revoke' }, 1, 0)).items;
    expect(audit!.actorName).toBe('admin');
    expect(unexpected(problems)).toEqual([]);
  });
});
