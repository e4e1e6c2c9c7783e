import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

/** The browser session tab (apps/web/session.html). */
const SESSION_PAGE = '/session.html';

/** How long the gateways' tunnel origins are reused before the next page load reads them again. */
const ORIGINS_TTL_MS = 5_000;

/**
 * The gateways' tunnel origins for connect-src, read from the database (every broker node reads its
 * own: nothing to keep in sync) at most every few seconds, and only when a page is served: the
 * document's CSP is fixed when it loads, so a page must carry every gateway it may open a browser
 * session to. A failed read keeps the last list (a page without a new gateway beats no page).
 */
class GatewayOrigins {
  #origins: string[] = [];
  #readAt = -Infinity;
  #reading: Promise<void> | null = null;

  constructor(private readonly read: () => Promise<string[]>) {}

  get current(): string[] {
    return this.#origins;
  }

  /** `fresh`: the browser session tab, which opens the WebSocket; a list read before a gateway's hello would block it. */
  async refresh(fresh: boolean, now = Date.now()): Promise<void> {
    if (!fresh && now - this.#readAt < ORIGINS_TTL_MS) return;
    this.#reading ??= this.read()
      .then((origins) => {
        this.#origins = origins;
        this.#readAt = Date.now();
      })
      .catch(() => {})
      .finally(() => {
        this.#reading = null;
      });
    await this.#reading;
  }
}

/**
 * Security headers through helmet (HSTS, nosniff, frame and referrer policy, cross-origin isolation
 * headers) with a CSP the built web app lives within: its scripts and styles are files of its own
 * (ADR 0009), images may be data: URLs (the TOTP QR code), fetch and EventSource go to this origin,
 * and WebSockets to this origin and to the gateways' HTTPS tunnels — each named, never `wss:` or `*`
 * (browser sessions, ADR 0028). No `upgrade-insecure-requests`: `stagedoor dev` serves plain HTTP on
 * loopback, where upgrading the app's own assets to https would break it. HSTS is sent always;
 * browsers heed it only over HTTPS.
 */
export async function registerSecurityHeaders(app: FastifyInstance, deps: { gatewayOrigins: () => Promise<string[]> }): Promise<void> {
  const origins = new GatewayOrigins(deps.gatewayOrigins);
  // Before helmet's own hook, which writes the header: an API answer is no document, so it is not waited on.
  app.addHook('onRequest', async (request) => {
    if (request.method === 'GET' && !request.url.startsWith('/api/')) await origins.refresh(request.url.startsWith(SESSION_PAGE));
  });
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        styleSrc: ["'self'"],
        scriptSrc: ["'self'"],
        connectSrc: ["'self'", () => origins.current.join(' ')],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
      },
    },
    strictTransportSecurity: { maxAge: 365 * 24 * 3600, includeSubDomains: true },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });
  app.addHook('onSend', async (request, reply, payload) => {
    // Answers carry sessions, tokens and inventory: no cache keeps them.
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
    // The browser session tab alone may compile WebAssembly (IronRDP's RDP client, ADR 0030); the
    // console never needs it. The module itself is a file of the app's own ('self').
    if (request.url.split('?')[0] === SESSION_PAGE) {
      const csp = reply.getHeader('content-security-policy');
      // IronRDP's web component (Svelte) injects its own <style> elements into its shadow root: inline
      // styles are allowed on this page too. Scripts stay files of our own.
      if (typeof csp === 'string') reply.header('content-security-policy', csp.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'").replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"));
    }
    return payload;
  });
}
