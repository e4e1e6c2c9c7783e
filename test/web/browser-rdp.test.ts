import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerSecurityHeaders } from '../../apps/broker/src/http/security-headers.ts';
import { BROWSER_MODES } from '../../apps/gateway/src/browser/index.ts';
import { createLog } from '../../apps/gateway/src/log.ts';
import { REFUSAL_MESSAGES, type Admit } from '../../apps/gateway/src/routed/admission.ts';
import { TlsCertificate } from '../../apps/gateway/src/routed/tls-certificate.ts';
import { TunnelServer } from '../../apps/gateway/src/routed/tunnel.ts';
import { startXrdpOnLoopback, type XrdpPeer } from '../../apps/gateway/test/xrdp-peer.ts';
import { launchBrowser, screenshot, type Tab } from '../support/browser.ts';
import { REPO_ROOT } from '../support/processes.ts';

/**
 * RDP in Chromium (issue 17 point 3, ADR 0030): the real session tab (apps/web/dist/session.html,
 * built by Vite with IronRDP's web component and its WebAssembly) under the broker's real security
 * headers (registerSecurityHeaders: the CSP with 'wasm-unsafe-eval' on this page only), IronRDP
 * speaking RDCleanPath to the gateway's real TunnelServer, which does TLS with a real xrdp.
 *
 * What stands in: the two API answers the page asks the broker for (/api/v1/me and the browser
 * session of POST /api/v1/connections/:id/browser, in the contract's shape), and the admission (a
 * token table, as in the gateway's tunnel tests): the broker's side of both is covered by the broker's
 * browser-session tests and by the routed gateway's system tests.
 */
const TOKEN = 'rdpbrowseraaaaaaaaaaaaaaaaaaaaaa';
const CONNECTION = '7d6f3c52-2d7e-4c3a-9a53-8d0f7a3e9b11';

describe('RDP in the browser: IronRDP → gateway RDCleanPath → xrdp (Chromium)', () => {
  let dir: string;
  let xrdp: XrdpPeer;
  let cert: TlsCertificate;
  let tunnel: TunnelServer;
  let web: FastifyInstance;
  let base: string;
  let browser: Browser;
  const used = new Set<string>();
  const ended: { reason: string; bytesUp: number; bytesDown: number }[] = [];
  let closeSession: ((why: string) => void) | null = null;

  const admit: Admit = async (_listener, token) => {
    if (token !== TOKEN) return { ok: false, reason: 'no-grant', message: REFUSAL_MESSAGES['no-grant'] };
    if (used.has(token)) return { ok: false, reason: 'used', message: REFUSAL_MESSAGES.used };
    used.add(token);
    return {
      ok: true,
      grantId: 'grant-rdp',
      target: { host: '127.0.0.1', port: xrdp.port },
      onClose: (close) => void (closeSession = close),
      countBytes: () => {},
      ended: (o) => void ended.push(o),
    };
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-browser-rdp-'));
    const log = createLog('silent');
    xrdp = await startXrdpOnLoopback(dir);
    cert = await TlsCertificate.load({ files: null, dataDir: path.join(dir, 'gateway'), log, hostnames: ['127.0.0.1'] });
    tunnel = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, modes: BROWSER_MODES });
    const tunnelPort = await tunnel.start();
    const origin = `wss://127.0.0.1:${tunnelPort}`;

    web = Fastify();
    await registerSecurityHeaders(web, { gatewayOrigins: async () => [origin] });
    web.get('/api/v1/me', async () => ({ user: { id: crypto.randomUUID(), username: 'ana' }, csrfToken: 'csrf', authenticatedBy: 'session', session: null }));
    web.post(`/api/v1/connections/${CONNECTION}/browser`, async () => ({
      connectionId: CONNECTION,
      protocol: 'rdp',
      desktopName: 'lighting-ws',
      url: `${origin}/tunnel`,
      token: TOKEN,
      mode: 'rdcleanpath',
      viewOnly: false,
      destination: `127.0.0.1:${xrdp.port}`,
      connectBy: new Date(Date.now() + 60_000).toISOString(),
      singleUse: true,
    }));
    // The built files, as the broker's static handler serves them (session.html, assets/*).
    const dist = path.join(REPO_ROOT, 'apps/web/dist');
    const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.svg': 'image/svg+xml', '.png': 'image/png' };
    const serve = (file: string) => async (_req: unknown, reply: { type: (t: string) => { send: (b: Buffer) => unknown } }) => reply.type(TYPES[path.extname(file)] ?? 'application/octet-stream').send(fs.readFileSync(file));
    web.get('/session.html', serve(path.join(dist, 'session.html')));
    for (const f of fs.readdirSync(path.join(dist, 'assets'))) web.get(`/assets/${f}`, serve(path.join(dist, 'assets', f)));
    base = await web.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await tunnel?.close();
    cert?.close();
    await xrdp?.proc.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The session tab, trusting the gateway's self-signed certificate as a user who accepted it would. */
  async function sessionTab(): Promise<Tab> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: base, ignoreHTTPSErrors: true });
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
    page.on('pageerror', (e) => void problems.push(`page error: ${e.message}`));
    await page.goto(`/session.html#${CONNECTION}`);
    return { context, page, problems };
  }

  /** Distinct colours and the share of the commonest one, drawn from the component's canvas. */
  const canvasColours = (tab: Tab) =>
    tab.page.evaluate(() => {
      // The page's own document (this file compiles without the DOM library; the function runs in the page).
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const document = (globalThis as any).document;
      const canvas = document.querySelector('iron-remote-desktop')?.shadowRoot?.querySelector('canvas');
      if (!canvas || canvas.width === 0) return null;
      const copy = document.createElement('canvas');
      copy.width = canvas.width;
      copy.height = canvas.height;
      const ctx = copy.getContext('2d')!;
      ctx.drawImage(canvas, 0, 0);
      const data = ctx.getImageData(0, 0, copy.width, copy.height).data;
      const counts = new Map<number, number>();
      for (let i = 0; i < data.length; i += 4 * 7) {
        const c = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
        counts.set(c, (counts.get(c) ?? 0) + 1);
      }
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      return { width: canvas.width, height: canvas.height, colours: counts.size, commonest: Math.max(...counts.values()) / total };
    });

  /** The pixels of xrdp's user-name field (its login window is centred; the field is right of centre, a little below). */
  const regionSignature = (tab: Tab) =>
    tab.page.evaluate(() => {
      // The page's own document (this file compiles without the DOM library; the function runs in the page).
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const document = (globalThis as any).document;
      const canvas = document.querySelector('iron-remote-desktop')!.shadowRoot!.querySelector('canvas')!;
      const copy = document.createElement('canvas');
      copy.width = canvas.width;
      copy.height = canvas.height;
      const ctx = copy.getContext('2d')!;
      ctx.drawImage(canvas, 0, 0);
      const [cx, cy] = [Math.floor(canvas.width / 2), Math.floor(canvas.height / 2)];
      const data = ctx.getImageData(cx - 70, cy + 30, 220, 30).data;
      let h = 0;
      for (let i = 0; i < data.length; i++) h = (h * 31 + data[i]!) >>> 0;
      return h;
    });

  it('only the session tab may compile WebAssembly and take inline styles; other pages keep the strict policy', async () => {
    const page = await fetch(`${base}/session.html`);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp.split(';').find((d) => d.trim().startsWith('connect-src'))).not.toContain('data:');
    const other = (await fetch(`${base}/api/v1/me`)).headers.get('content-security-policy')!;
    expect(other).not.toContain('wasm-unsafe-eval');
    expect(other).not.toContain('unsafe-inline');
    // The module is a file of the app's own, not a data: URL.
    expect(fs.readdirSync(path.join(REPO_ROOT, 'apps/web/dist/assets')).some((f) => /^ironrdp-.*\.wasm$/.test(f))).toBe(true);
  });

  it('reaches the xrdp sign-in screen: the canvas shows it (many colours), the session runs through the gateway', async () => {
    const tab = await sessionTab();
    await tab.page.getByRole('button', { name: 'Connect', exact: true }).click();
    await tab.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor().catch(async (err: Error) => {
      const end = await tab.page.getByTestId('session-end').textContent().catch(() => null);
      throw new Error(`${err.message}\nsession end: ${end}\nconsole: ${tab.problems.join('\n')}\nxrdp: ${fs.readFileSync(xrdp.log, 'utf8').slice(-3000)}`);
    });
    // xrdp paints its login window over a plain background once the connection sequence is done.
    let last: Awaited<ReturnType<typeof canvasColours>> = null;
    try {
      await expect.poll(async () => {
        last = await canvasColours(tab);
        return last !== null && last.colours >= 4 && last.commonest < 0.98;
      }, { timeout: 60_000, interval: 250 }).toBe(true);
    } catch (err) {
      throw new Error(`${(err as Error).message}\ncanvas: ${JSON.stringify(last)}\nconsole: ${tab.problems.join('\n')}`, { cause: err });
    }
    await screenshot(tab.page, 'browser-rdp-xrdp-login');
    expect(fs.readFileSync(xrdp.log, 'utf8')).toMatch(/selected \[SSL\]/);
    expect(tab.problems.filter((p) => /Content Security Policy|Refused to/.test(p))).toEqual([]);

    // Keys reach the desktop: typing into xrdp's focused user-name field changes the pixels there
    // (the scancodes go through the gateway; xrdp draws the characters).
    const before = await regionSignature(tab);
    // A click in the field (the mouse reaches xrdp too: a click outside its window deactivates it).
    const box = (await tab.page.locator('iron-remote-desktop').boundingBox())!;
    await tab.page.locator('iron-remote-desktop').click({ position: { x: box.width / 2 + 38, y: box.height / 2 + 39 } });
    await tab.page.keyboard.type('artist');
    await expect.poll(async () => (await regionSignature(tab)) !== before, { timeout: 30_000, interval: 250 }).toBe(true);
    await screenshot(tab.page, 'browser-rdp-xrdp-typed');

    // The toolbar's Disconnect ends it; the gateway reports the session's end with its bytes.
    await tab.page.getByRole('button', { name: 'Disconnect' }).click();
    await tab.page.getByTestId('session-end').filter({ hasText: 'Disconnected' }).waitFor();
    await expect.poll(() => ended.length, { timeout: 30_000 }).toBe(1);
    expect(ended[0]!.bytesDown).toBeGreaterThan(10_000);
    await tab.context.close();
  });

  it('a used grant shows the refusal in words, from the RDCleanPath error the gateway sent', async () => {
    const tab = await sessionTab();
    await tab.page.getByRole('button', { name: 'Connect', exact: true }).click();
    const end = tab.page.getByTestId('session-end');
    await end.waitFor();
    expect(await end.textContent()).toContain('The gateway refused this session');
    expect(await end.textContent()).toContain('This connection grant was used');
    await screenshot(tab.page, 'browser-rdp-refused-used');
    await tab.context.close();
  });

  it('a revoke (an admin\'s Disconnect) ends the running session in the tab', async () => {
    used.clear();
    closeSession = null;
    const tab = await sessionTab();
    await tab.page.getByRole('button', { name: 'Connect', exact: true }).click();
    await tab.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
    await expect.poll(() => closeSession !== null).toBe(true);
    closeSession!('revoked');
    const end = tab.page.getByTestId('session-end');
    await end.waitFor();
    expect(await end.getByRole('heading').textContent()).toBe('The session was closed');
    await expect.poll(() => ended.length, { timeout: 30_000 }).toBe(2);
    expect(ended[1]!.reason).toMatch(/revoked/);
    await screenshot(tab.page, 'browser-rdp-revoked');
    await tab.context.close();
  });
});
