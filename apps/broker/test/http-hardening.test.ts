import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { startBroker, type Broker } from '../src/main.ts';
import { createTestBroker, type TestBroker } from '../../../test/support/broker.ts';
import { createPostgresDatabase } from '../../../test/support/database.ts';
import { freePort } from '../../../test/support/ports.ts';

const TOKEN = 'scrape-token-7f2d9a41c0';

describe('HTTP hardening', () => {
  describe('security headers (helmet)', () => {
    let b: TestBroker;
    beforeAll(async () => {
      b = await createTestBroker('pglite');
    });
    afterAll(async () => b?.close());

    it.each([
      ['the web app', '/', 200],
      ['an API answer', '/api/v1/openapi.json', 200],
      ['a refusal without a session', '/api/v1/me', 401],
      ['an unknown route', '/no-such-page', 404],
    ])('%s carries HSTS, nosniff, a frame ban, no referrer and the CSP (SSL stripping, clickjacking, MIME sniffing)', async (_what, url, status) => {
      const res = await b.app.inject(url);
      expect(res.statusCode).toBe(status);
      expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
      const csp = String(res.headers['content-security-policy']);
      for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"]) expect(csp).toContain(directive);
      // dev serves plain HTTP: upgrading the app's own assets to https would break it.
      expect(csp).not.toContain('upgrade-insecure-requests');
      expect(csp).not.toContain('unsafe-inline');
    });

    it('API answers are never cached', async () => {
      expect((await b.app.inject('/api/v1/openapi.json')).headers['cache-control']).toBe('no-store');
    });
  });

  describe('/metrics on the main listener', () => {
    let plain: TestBroker;
    let withToken: TestBroker;
    beforeAll(async () => {
      plain = await createTestBroker('pglite');
      withToken = await createTestBroker('pglite', { env: { STAGEDOOR_METRICS_TOKEN: TOKEN } });
    });
    afterAll(async () => {
      await plain?.close();
      await withToken?.close();
    });

    it('is served to nobody by default: no inventory, routes or load to anyone who can reach the broker', async () => {
      const res = await plain.app.inject('/metrics');
      expect(res.statusCode).toBe(403);
      expect(res.json().error.message).toMatch(/STAGEDOOR_METRICS_TOKEN.*STAGEDOOR_METRICS_LISTEN/);
      expect(res.body).not.toContain('stagedoor_');
    });

    it('with STAGEDOOR_METRICS_TOKEN, a scrape without the bearer token or with a wrong one is refused', async () => {
      for (const headers of [{}, { authorization: 'Bearer wrong-token-000000' }, { authorization: `Bearer ${TOKEN}x` }, { authorization: TOKEN }]) {
        const res = await withToken.app.inject({ url: '/metrics', headers });
        expect(res.statusCode, JSON.stringify(headers)).toBe(401);
        expect(res.body).not.toContain('stagedoor_http');
      }
      const ok = await withToken.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('# TYPE stagedoor_http_request_duration_seconds histogram');
    });
  });

  describe('STAGEDOOR_METRICS_LISTEN', () => {
    let broker: Broker;
    let port: number;
    let metricsPort: number;
    beforeAll(async () => {
      [port, metricsPort] = [await freePort(), await freePort()];
      const config = loadConfig({}, {
        DATABASE_URL: await createPostgresDatabase(),
        PORT: String(port),
        STAGEDOOR_JOBS: 'off',
        STAGEDOOR_ADMIN_PASSWORD: 'metrics-admin-pass',
        STAGEDOOR_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
        STAGEDOOR_METRICS_TOKEN: TOKEN,
      });
      broker = await startBroker(config, { log: pino({ level: 'silent' }) });
    });
    afterAll(async () => broker?.close());

    it('serves /metrics on its own listener only (a private interface), with the token, and not on the main one', async () => {
      expect(broker.metricsUrl).toBe(`http://127.0.0.1:${metricsPort}/metrics`);
      const own = await fetch(broker.metricsUrl!, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(own.status).toBe(200);
      expect(await own.text()).toContain('stagedoor_db_pool_connections');
      expect((await fetch(broker.metricsUrl!)).status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${metricsPort}/api/v1/me`)).status).toBe(404);
      const main = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(main.status).toBe(403);
    });
  });
});
