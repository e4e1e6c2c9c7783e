import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/ports.ts';
import { spawnStagedoor, type Spawned } from '../support/processes.ts';

const DEMO_AMI = 'ami-0123456789abcdef0';

/** `stagedoor dev --sandbox`: a new user sees provisioning work with no AWS account. */
// A cold `stagedoor dev` start takes 20-40 s on a loaded two-core machine; the waits inside are bounded.
describe('stagedoor dev --sandbox', { timeout: 120_000 }, () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-sandbox-'));
  let proc: Spawned | undefined;
  afterAll(async () => {
    await proc?.stop('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function start() {
    const [port, ec2Port] = [await freePort(), await freePort()];
    const base = `http://127.0.0.1:${port}`;
    proc = spawnStagedoor(['dev', '--sandbox'], { PORT: String(port), STAGEDOOR_SANDBOX_EC2_PORT: String(ec2Port), STAGEDOOR_DATA_DIR: dataDir, STAGEDOOR_ADMIN_PASSWORD: 'sandbox-password', DATABASE_URL: undefined, STAGEDOOR_SECRET_KEY: undefined });
    await waitFor('dev --sandbox ready', async () => (await fetch(`${base}/readyz`)).status === 200, 60_000, 200).catch((err) => {
      throw new Error(`${err.message}\n${proc!.stderr.join('\n')}`);
    });
    const login = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'sandbox-password' }) });
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const headers = { cookie: login.headers.getSetCookie()[0]!.split(';')[0]!, 'x-csrf-token': csrfToken, 'content-type': 'application/json' };
    return { base, ec2Port, headers };
  }

  it('registers the emulator as provider "sandbox" and launches a workstation from the demo AMI', async () => {
    const { base, ec2Port, headers } = await start();
    expect(proc!.stderr.join('\n')).toContain('registered as provider "sandbox"');
    const providers = (await (await fetch(`${base}/api/v1/providers`, { headers })).json()) as { items: { id: string; name: string; kind: string; endpoint: string }[] };
    const sandbox = providers.items.find((p) => p.name === 'sandbox')!;
    expect(sandbox).toMatchObject({ kind: 'aws-ec2', endpoint: `http://127.0.0.1:${ec2Port}` });
    expect((await fetch(`${base}/api/v1/providers/${sandbox.id}/test`, { method: 'POST', headers })).status).toBe(200);
    const launch = await fetch(`${base}/api/v1/workstations`, { method: 'POST', headers, body: JSON.stringify({ providerId: sandbox.id, name: 'demo-01', imageId: DEMO_AMI, instanceType: 'g5.xlarge' }) });
    expect(launch.status).toBe(201);
    expect(await launch.json()).toMatchObject({ name: 'demo-01', powerState: 'pending', externalId: expect.stringMatching(/^i-/) });
    await proc!.stop('SIGTERM');
  });

  it('keeps the sandbox across a restart: the same provider, the instance still there', async () => {
    const { base, headers } = await start();
    const providers = (await (await fetch(`${base}/api/v1/providers`, { headers })).json()) as { items: { id: string; name: string }[] };
    expect(providers.items.filter((p) => p.name === 'sandbox')).toHaveLength(1);
    const id = providers.items.find((p) => p.name === 'sandbox')!.id;
    // The sync the node runs at start may still be going (a 409 that says so): ask again until ours runs.
    let sync: { status?: string; counts?: { seen: number }; error?: { code: string } } = {};
    await waitFor('a provider sync of our own', async () => {
      sync = (await (await fetch(`${base}/api/v1/providers/${id}/sync`, { method: 'POST', headers })).json()) as typeof sync;
      return sync.error?.code !== 'conflict';
    });
    expect(sync).toMatchObject({ status: 'ok', counts: { seen: 1 } });
    expect(fs.existsSync(path.join(dataDir, 'ec2-sandbox.json'))).toBe(true);
    expect(fs.statSync(path.join(dataDir, 'secret.key')).mode & 0o777).toBe(0o600);
  });
});
