import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { registerSecurityHeaders } from '../../apps/broker/src/http/security-headers.ts';
import { BROWSER_MODES } from '../../apps/gateway/src/browser/index.ts';
import { createLog } from '../../apps/gateway/src/log.ts';
import { REFUSAL_MESSAGES, type Admit } from '../../apps/gateway/src/routed/admission.ts';
import { TlsCertificate } from '../../apps/gateway/src/routed/tls-certificate.ts';
import { TunnelServer } from '../../apps/gateway/src/routed/tunnel.ts';
import { launchBrowser, type Tab } from '../support/browser.ts';
import { REPO_ROOT } from '../support/processes.ts';

/**
 * RDP in Chromium without a whole `stagedoor dev` (ADR 0030): the real session tab
 * (apps/web/dist/session.html, built by Vite with IronRDP's web component and its WebAssembly) under
 * the broker's real security headers, IronRDP speaking RDCleanPath to the gateway's real
 * TunnelServer, which does TLS with a real xrdp at `target`.
 *
 * What stands in: the two API answers the page asks the broker for (/api/v1/me and the browser
 * session of POST /api/v1/connections/:id/browser, in the contract's shape), and the admission (one
 * single-use token, as in the gateway's tunnel tests): the broker's side of both is covered by the
 * broker's browser-session tests and by the routed gateway's system tests.
 */
export const TOKEN = 'rdpbrowseraaaaaaaaaaaaaaaaaaaaaa';
export const CONNECTION = '7d6f3c52-2d7e-4c3a-9a53-8d0f7a3e9b11';

export interface RdpHarness {
  base: string;
  browser: Browser;
  /** Tokens the admission has let in (single use): clear it to admit again. */
  used: Set<string>;
  /** What the gateway reported at each session's end. */
  ended: { reason: string; bytesUp: number; bytesDown: number }[];
  /** The running session's close (an admin's Disconnect), once admitted. */
  closeSession: ((why: string) => void) | null;
  /** The session tab, trusting the gateway's self-signed certificate as a user who accepted it would. */
  sessionTab(viewport?: { width: number; height: number }): Promise<Tab>;
  close(): Promise<void>;
}

export async function startRdpHarness(dir: string, target: { host: string; port: number }): Promise<RdpHarness> {
  const log = createLog('silent');
  const harness: RdpHarness = { base: '', browser: null as unknown as Browser, used: new Set(), ended: [], closeSession: null, sessionTab: null as never, close: null as never };
  const admit: Admit = async (_listener, token) => {
    if (token !== TOKEN) return { ok: false, reason: 'no-grant', message: REFUSAL_MESSAGES['no-grant'] };
    if (harness.used.has(token)) return { ok: false, reason: 'used', message: REFUSAL_MESSAGES.used };
    harness.used.add(token);
    return {
      ok: true,
      grantId: 'grant-rdp',
      target,
      onClose: (close) => void (harness.closeSession = close),
      countBytes: () => {},
      ended: (o) => void harness.ended.push(o),
    };
  };
  const cert = await TlsCertificate.load({ files: null, dataDir: path.join(dir, 'gateway'), log, hostnames: ['127.0.0.1'] });
  const tunnel = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, modes: BROWSER_MODES });
  let web: FastifyInstance | null = null;
  harness.close = async () => {
    await harness.browser?.close();
    await web?.close();
    await tunnel.close();
    cert.close();
  };
  try {
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
      destination: `${target.host}:${target.port}`,
      connectBy: new Date(Date.now() + 60_000).toISOString(),
      singleUse: true,
    }));
    // The built files, as the broker's static handler serves them (session.html, assets/*).
    const dist = path.join(REPO_ROOT, 'apps/web/dist');
    const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.svg': 'image/svg+xml', '.png': 'image/png' };
    const serve = (file: string) => async (_req: unknown, reply: { type: (t: string) => { send: (b: Buffer) => unknown } }) => reply.type(TYPES[path.extname(file)] ?? 'application/octet-stream').send(fs.readFileSync(file));
    web.get('/session.html', serve(path.join(dist, 'session.html')));
    for (const f of fs.readdirSync(path.join(dist, 'assets'))) web.get(`/assets/${f}`, serve(path.join(dist, 'assets', f)));
    harness.base = await web.listen({ port: 0, host: '127.0.0.1' });
    harness.browser = await launchBrowser();
  } catch (err) {
    await harness.close();
    throw err;
  }
  harness.sessionTab = async (viewport = { width: 1280, height: 800 }) => {
    const context = await harness.browser.newContext({ viewport, baseURL: harness.base, ignoreHTTPSErrors: true });
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
    page.on('pageerror', (e) => void problems.push(`page error: ${e.message}`));
    await page.goto(`/session.html#${CONNECTION}`);
    return { context, page, problems };
  };
  return harness;
}

/**
 * The component's canvas, read in the page (copied to a plain canvas: IronRDP's may not be readable
 * directly): its size, distinct colours and the share of the commonest one, and `#rrggbb` of the
 * pixel at a fraction of its width and height. Null before it is drawn.
 */
const readCanvas = (tab: Tab, fx = 0, fy = 0) =>
  tab.page.evaluate(
    ([fx, fy]) => {
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
      const d = ctx.getImageData(Math.floor(canvas.width * fx!), Math.floor(canvas.height * fy!), 1, 1).data;
      const pixel = `#${[d[0], d[1], d[2]].map((v: number) => v.toString(16).padStart(2, '0')).join('')}`;
      return { width: canvas.width, height: canvas.height, colours: counts.size, commonest: Math.max(...counts.values()) / total, pixel };
    },
    [fx, fy],
  );

/** The component's canvas: its size, distinct colours and the share of the commonest one. */
export const canvasColours = async (tab: Tab) => {
  const read = await readCanvas(tab);
  return read && { width: read.width, height: read.height, colours: read.colours, commonest: read.commonest };
};

/** `#rrggbb` of the canvas pixel at a fraction of its width and height (null before it is drawn). */
export const canvasPixel = async (tab: Tab, fx: number, fy: number) => (await readCanvas(tab, fx, fy))?.pixel ?? null;
