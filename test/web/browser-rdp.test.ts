import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startXrdpOnLoopback, type XrdpPeer } from '../../apps/gateway/test/xrdp-peer.ts';
import { screenshot, type Tab } from '../support/browser.ts';
import { REPO_ROOT } from '../support/processes.ts';
import { canvasColours, startRdpHarness, type RdpHarness } from './browser-rdp-harness.ts';

/**
 * RDP in Chromium (issue 17 point 3, ADR 0030) up to xrdp's sign-in screen: the real session tab,
 * IronRDP, the gateway's real TunnelServer and a real xrdp (browser-rdp-harness.ts says what stands
 * in). The signed-in desktop session, its clipboard and resizing: browser-rdp-session.test.ts.
 */
describe('RDP in the browser: IronRDP → gateway RDCleanPath → xrdp (Chromium)', () => {
  let dir: string;
  let xrdp: XrdpPeer;
  let h: RdpHarness;
  let base: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-browser-rdp-'));
    xrdp = await startXrdpOnLoopback(dir);
    h = await startRdpHarness(dir, { host: '127.0.0.1', port: xrdp.port });
    base = h.base;
  });

  afterAll(async () => {
    await h?.close();
    await xrdp?.proc.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const sessionTab = () => h.sessionTab();

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
    await expect.poll(() => h.ended.length, { timeout: 30_000 }).toBe(1);
    expect(h.ended[0]!.bytesDown).toBeGreaterThan(10_000);
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
    h.used.clear();
    h.closeSession = null;
    const tab = await sessionTab();
    await tab.page.getByRole('button', { name: 'Connect', exact: true }).click();
    await tab.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
    await expect.poll(() => h.closeSession !== null).toBe(true);
    h.closeSession!('revoked');
    const end = tab.page.getByTestId('session-end');
    await end.waitFor();
    expect(await end.getByRole('heading').textContent()).toBe('The session was closed');
    await expect.poll(() => h.ended.length, { timeout: 30_000 }).toBe(2);
    expect(h.ended[1]!.reason).toMatch(/revoked/);
    await screenshot(tab.page, 'browser-rdp-revoked');
    await tab.context.close();
  });
});
