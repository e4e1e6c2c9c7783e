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

  it('enrols "dev-gateway" on the first start, shows it healthy in the registry, keeps its credential, and re-enrols itself when the credential is lost', { timeout: 360_000 }, async () => {
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
    expect(proc.stderr.join('\n')).toMatch(/Gateway "dev-gateway" relays granted connections on 127\.0\.0\.1 ports 24100-24119; routed modes: RDP \d+, SSH jump \d+, TLS \(SNI \*\.gw\.localhost\) \d+, HTTPS tunnel \d+/);
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
    await proc.stop('SIGTERM');
    await waitFor('the data directory lock to be released', () => !fs.existsSync(path.join(dataDir, 'db', 'stagedoor.pid')), 30_000);

    // The credential is lost, the gateway is not: the dev gateway re-enrols itself through a token
    // bound to its id (a new-gateway token under its name would be refused), and stays one gateway.
    fs.rmSync(path.join(dataDir, 'gateway', 'gateway.json'));
    proc = start();
    await waitFor('stagedoor dev a third time', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 60_000, 200);
    const third = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'dev-gateway-pw' }) });
    const cookie3 = third.headers.getSetCookie()[0]!.split(';')[0]!;
    const list = async () => (await (await fetch(`${base}/api/v1/gateways`, { headers: { cookie: cookie3 } })).json()) as { items: { id: string; name: string; health: string; publicAddress: string }[] };
    const trail = async () => ((await (await fetch(`${base}/api/v1/audit?action=gateway.*&limit=50`, { headers: { cookie: cookie3 } })).json()) as { items: { action: string; outcome: string; at: string }[] }).items;
    // (Not "healthy": the row may still say so from the last run. The second enrolment is the sign.)
    await waitFor('the dev gateway to re-enrol', async () => (await trail()).filter((e) => e.action === 'gateway.enroll' && e.outcome === 'success').length === 2, 30_000, 200);
    expect((await list()).items).toEqual([expect.objectContaining({ name: 'dev-gateway', publicAddress: '127.0.0.1' })]);
    const actions = (await trail()).map((e) => `${e.action}:${e.outcome}`);
    expect(actions.filter((a) => a.startsWith('gateway.reenrollment_create'))).toEqual(['gateway.reenrollment_create:success']);
    expect(actions).not.toContain('gateway.enroll:denied');
    // Connected with the new credential: a channel opened after the re-enrolment.
    const reenrolledAt = Math.max(...(await trail()).filter((e) => e.action === 'gateway.enroll').map((e) => Date.parse(e.at)));
    await waitFor('dev-gateway connected on its new credential', async () => (await trail()).some((e) => e.action === 'gateway.connect' && Date.parse(e.at) >= reenrolledAt), 30_000, 200);
  }); // three starts of `stagedoor dev` and its gateway: their waits add up on a loaded machine (360 s above)
});
