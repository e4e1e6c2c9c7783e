import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { hashToken, safeEqual } from '../domain/identity/tokens.ts';
import type { Metrics } from './metrics.ts';

export type MetricsVerdict = { ok: true } | { ok: false; status: 401 | 403; message: string };

/**
 * May this request read `/metrics`? The numbers name routes, job names, pool sizes and load: useful
 * to whoever maps a target, so they are not public. On the main listener they need the bearer
 * token (STAGEDOOR_METRICS_TOKEN) and are not served at all without one, or when they have a
 * listener of their own (STAGEDOOR_METRICS_LISTEN); there, the token is asked for when set.
 */
export function metricsAccess(config: Config['metrics'], where: 'main' | 'own', authorization: string | undefined): MetricsVerdict {
  if (where === 'main' && config.listen) return { ok: false, status: 403, message: 'metrics are served on their own listener (STAGEDOOR_METRICS_LISTEN), not here' };
  if (where === 'main' && !config.token) {
    return { ok: false, status: 403, message: 'metrics are not served here: set STAGEDOOR_METRICS_TOKEN and scrape with "Authorization: Bearer <token>", or STAGEDOOR_METRICS_LISTEN for a listener of their own' };
  }
  if (!config.token) return { ok: true };
  const given = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  // Hashes compare in constant time whatever the lengths.
  if (!given || !safeEqual(hashToken(given), hashToken(config.token))) return { ok: false, status: 401, message: 'metrics need "Authorization: Bearer <STAGEDOOR_METRICS_TOKEN>"' };
  return { ok: true };
}

/** STAGEDOOR_METRICS_LISTEN: `GET /metrics` and nothing else, on an address of the operator's choosing. */
export async function startMetricsListener(metrics: Metrics, config: Config['metrics'] & { listen: { host: string; port: number } }, log: Logger): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const send = (status: number, type: string, body: string) => res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') return send(404, 'text/plain; charset=utf-8', 'only GET /metrics is served here\n');
    const verdict = metricsAccess(config, 'own', req.headers.authorization);
    if (!verdict.ok) return send(verdict.status, 'text/plain; charset=utf-8', `${verdict.message}\n`);
    metrics.registry.metrics().then(
      (text) => send(200, metrics.registry.contentType, text),
      (err: unknown) => {
        log.error({ err }, 'metrics collection failed');
        send(500, 'text/plain; charset=utf-8', 'metrics collection failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`;
  log.info({ url }, 'metrics listener up');
  return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
