import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/ports.ts';
import { spawnStagedoor, type Spawned } from '../support/processes.ts';

/** The quick start brokers real connections: `stagedoor dev` runs one gateway, enrolled by itself. */
describe('stagedoor dev runs a gateway', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-devgw-'));
  let proc: Spawned | undefined;
  afterAll(async () => {
    await proc?.stop('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('enrols "dev-gateway" on the first start, shows it healthy in the registry, and keeps its credential', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const start = () => spawnStagedoor(['dev'], { PORT: String(port), STAGEDOOR_DATA_DIR: dataDir, STAGEDOOR_ADMIN_PASSWORD: 'dev-gateway-pw', STAGEDOOR_DEV_GATEWAY_PORTS: '24100-24119', STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1', DATABASE_URL: undefined });
    proc = start();
    await waitFor('stagedoor dev', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 60_000, 200);
    const res = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'dev-gateway-pw' }) });
    const cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
    const gateways = async () => (await (await fetch(`${base}/api/v1/gateways`, { headers: { cookie } })).json()) as { items: { name: string; health: string; status: string; portRangeStart: number; publicAddress: string }[] };
    await waitFor('dev-gateway healthy', async () => (await gateways()).items[0]?.health === 'healthy', 30_000, 200);
    expect((await gateways()).items).toEqual([expect.objectContaining({ name: 'dev-gateway', status: 'active', portRangeStart: 24100, publicAddress: '127.0.0.1' })]);
    expect(proc.stderr.join('\n')).toContain('Gateway "dev-gateway" relays granted connections on 127.0.0.1 ports 24100-24119');
    expect(fs.statSync(path.join(dataDir, 'gateway', 'gateway.json')).mode & 0o777).toBe(0o600);
    await proc.stop('SIGTERM');
    await waitFor('the data directory lock to be released', () => !fs.existsSync(path.join(dataDir, 'db', 'stagedoor.pid')), 30_000);

    // A restart reuses the stored credential: still one gateway, no second enrolment.
    proc = start();
    await waitFor('stagedoor dev again', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 60_000, 200);
    const again = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'dev-gateway-pw' }) });
    const cookie2 = again.headers.getSetCookie()[0]!.split(';')[0]!;
    const audit = (await (await fetch(`${base}/api/v1/audit?action=gateway.enroll`, { headers: { cookie: cookie2 } })).json()) as { total: number };
    expect(audit.total).toBe(1);
  }, 240_000); // two starts of `stagedoor dev` and its gateway: its waits add up to 180 s on a loaded machine
});
