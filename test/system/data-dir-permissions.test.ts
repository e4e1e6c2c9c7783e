import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/ports.ts';
import { openToOthers } from '../support/private-files.ts';
import { spawnProcess, STAGEDOOR_BIN, type Spawned } from '../support/processes.ts';

/**
 * `stagedoor dev --sandbox` started under `umask 000` (a careless service unit, a shared host): the
 * data directory, the embedded database, the dev secret key and the sandbox state are the
 * owner's alone, and a key file left readable by others is tightened with a log line.
 */
describe('the data directory of stagedoor dev', { timeout: 180_000 }, () => {
  const dataDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-perms-')), 'data');
  let proc: Spawned | undefined;
  afterAll(async () => {
    await proc?.stop('SIGKILL');
    fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
  });

  it('under umask 000, no file of the data directory (database, secret.key, sandbox state) is readable or writable by other local users', async () => {
    // A key file left world-readable, in a world-writable directory.
    fs.mkdirSync(dataDir, { mode: 0o777 });
    fs.chmodSync(dataDir, 0o777);
    fs.writeFileSync(path.join(dataDir, 'secret.key'), randomBytes(32).toString('hex'));
    fs.chmodSync(path.join(dataDir, 'secret.key'), 0o644);

    const [port, ec2Port] = [await freePort(), await freePort()];
    const base = `http://127.0.0.1:${port}`;
    proc = spawnProcess('/bin/sh', ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, STAGEDOOR_BIN, 'dev', '--sandbox'], {
      PORT: String(port),
      STAGEDOOR_SANDBOX_EC2_PORT: String(ec2Port),
      STAGEDOOR_DEV_GATEWAY_PORTS: 'off',
      STAGEDOOR_DATA_DIR: dataDir,
      STAGEDOOR_ADMIN_PASSWORD: 'perms-password',
      DATABASE_URL: undefined,
      STAGEDOOR_SECRET_KEY: undefined,
    });
    await waitFor('dev --sandbox ready', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 90_000, 200).catch((err) => {
      throw new Error(`${(err as Error).message}\n${proc!.stderr.join('\n')}`);
    });
    // A launch changes the emulator's state, which it writes to the data directory.
    const login = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'perms-password' }) });
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const headers = { cookie: login.headers.getSetCookie()[0]!.split(';')[0]!, 'x-csrf-token': csrfToken, 'content-type': 'application/json' };
    const providers = (await (await fetch(`${base}/api/v1/providers`, { headers })).json()) as { items: { id: string; name: string }[] };
    const sandbox = providers.items.find((p) => p.name === 'sandbox')!;
    const launch = await fetch(`${base}/api/v1/workstations`, { method: 'POST', headers, body: JSON.stringify({ providerId: sandbox.id, name: 'perm-01', imageId: 'ami-0123456789abcdef0', instanceType: 'g5.xlarge' }) });
    expect(launch.status).toBe(201);
    expect(await proc.stop('SIGTERM')).toBe(0);

    expect(fs.existsSync(path.join(dataDir, 'ec2-sandbox.json'))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'db', 'PG_VERSION'))).toBe(true);
    expect(openToOthers(dataDir)).toEqual([]);
    const log = proc.stdout.join('\n');
    expect(log).toMatch(/data directory was open to other users: tightened to 0700/);
    expect(log).toMatch(/secret\.key.*file was open to other users: tightened to 0600/);
  });
});
