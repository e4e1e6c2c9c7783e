import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fetchInject, httpLogin } from './http.ts';
import { freePort, freePortRange, waitFor } from './ports.ts';
import { spawnStagedoor, type Spawned } from './processes.ts';
import { as } from './session.ts';

/** An admin API call that throws on anything but 2xx (the answer's JSON, null for 204). */
export type AdminCall = (method: string, url: string, payload?: unknown) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface DevStack {
  proc: Spawned;
  base: string;
  ok: AdminCall;
  /** The dev gateway's HTTPS tunnel port (where browser sessions go). */
  tunnelPort: number;
}

/**
 * `stagedoor dev` (broker + gateway, real processes) on free ports in `dataDir`, up and with its dev
 * gateway healthy and its tunnel port known: the start of every browser-session test.
 */
export async function startDevStack(dataDir: string, adminPassword: string, env: Record<string, string | undefined> = {}): Promise<DevStack> {
  const [port, [gw, gwEnd]] = [await freePort(), await freePortRange(5)];
  const base = `http://127.0.0.1:${port}`;
  const proc = spawnStagedoor(['dev'], {
    PORT: String(port), STAGEDOOR_DATA_DIR: dataDir, STAGEDOOR_ADMIN_PASSWORD: adminPassword, STAGEDOOR_DEV_GATEWAY_PORTS: `${gw}-${gwEnd}`,
    STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1', DATABASE_URL: undefined, ...env,
  });
  await waitFor('stagedoor dev', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 60_000, 200).catch((err) => {
    throw new Error(`${err.message}\n${proc.stderr.join('\n')}`);
  });
  const admin = await httpLogin(base, 'admin', adminPassword);
  const call = fetchInject(base);
  const ok: AdminCall = async (method, url, payload) => {
    const r = await call({ method, url, headers: as(admin), payload });
    if (r.statusCode >= 300) throw new Error(`${method} ${url} → ${r.statusCode} ${r.body}`);
    return r.statusCode === 204 ? null : r.json();
  };
  let tunnelPort = 0;
  await waitFor('the dev gateway healthy, its tunnel port known', async () => {
    const g = (await ok('GET', '/api/v1/gateways')).items[0];
    tunnelPort = g?.routedPorts?.tunnel ?? 0;
    return g?.health === 'healthy' && tunnelPort > 0;
  }, 60_000, 200).catch(async (err) => {
    throw new Error(`${err.message}: ${JSON.stringify((await ok('GET', '/api/v1/gateways')).items)}\n${proc.stderr.join('\n')}`);
  });
  return { proc, base, ok, tunnelPort };
}

/** Chromium's switch that accepts the dev gateway's self-signed certificate by its key, and nothing else (ADR 0028). */
export function acceptDevGatewayKey(dataDir: string): string {
  const cert = new X509Certificate(fs.readFileSync(path.join(dataDir, 'gateway', 'tls-self-signed-cert.pem')));
  return `--ignore-certificate-errors-spki-list=${createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64')}`;
}
