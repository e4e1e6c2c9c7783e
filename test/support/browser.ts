import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from './processes.ts';

/** Debian's chromium (`.ci/run` installs it); playwright-core drives it and downloads no browser. */
export const CHROMIUM = process.env.STAGEDOOR_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(REPO_ROOT, 'test-artifacts/screenshots');

/** `args`: more Chromium switches, e.g. `--ignore-certificate-errors-spki-list=…` for a test gateway's self-signed certificate. */
export async function launchBrowser(args: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), ...args] });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** Console errors and failed requests: a CSP violation shows up here. */
  problems: string[];
}

/** A fresh context (its own cookies) at the console's URL; collects every console error. */
export async function openTab(browser: Browser, base: string, viewport = { width: 1280, height: 800 }): Promise<Tab> {
  const context = await browser.newContext({ viewport, acceptDownloads: true, baseURL: base });
  // Generous for a loaded machine, and below the test timeout (vitest.config.ts), so that a missing
  // element fails with the locator's own message.
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(base);
  return { context, page, problems };
}

/** Sign in through the form (password, and the one-time code when `code` answers one). */
export async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.getByRole('textbox', { name: 'Username' }).fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Problems that are not the API's expected refusals (a 4xx the page shows is not a bug). */
export function unexpected(problems: string[]): string[] {
  return problems.filter((p) => !/status of (400|401|403|404|409)/.test(p));
}
