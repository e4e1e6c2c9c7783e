import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/ports.ts';
import { spawnProcess, spawnStagedoor, type Spawned } from '../support/processes.ts';

/**
 * Issue 16 point 8: a first start on a busy port used to create the admin, then die of a raw
 * EADDRINUSE stack, and the generated password was never shown. Now the port is checked first.
 */
describe('first start on a busy port; admin create-user beside the running server', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-busy-port-'));
  const started: Spawned[] = [];
  const busy = net.createServer();
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop('SIGKILL')));
    busy.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('fails with a message naming PORT= and no stack, creates no user; the next start on a free port shows a password that works', async () => {
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const taken = (busy.address() as net.AddressInfo).port;
    const env = { STAGEDOOR_DATA_DIR: dataDir, STAGEDOOR_ADMIN_PASSWORD: undefined, DATABASE_URL: undefined };
    const first = spawnProcess('npm', ['start'], { ...env, PORT: String(taken) });
    started.push(first);
    expect(await first.exited).not.toBe(0);
    const err = first.stderr.join('\n');
    expect(err).toContain(`cannot listen on 127.0.0.1:${taken}: the port is in use`);
    expect(err).toContain(`PORT=${taken + 1} npm start`);
    expect(err).not.toMatch(/EADDRINUSE|\n\s+at /);
    expect(err).not.toContain('created user "admin"');
    // Nothing was written to the database: it was never opened.
    expect(fs.existsSync(path.join(dataDir, 'db', 'PG_VERSION'))).toBe(false);

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const second = spawnStagedoor(['dev'], { ...env, PORT: String(port) });
    started.push(second);
    await waitFor('stagedoor dev to be ready', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 60_000, 200);
    await waitFor('the banner', () => second.stderr.join('\n').includes('First start'), 30_000, 100);
    const password = /created user "admin" with password\s+(\S{20})/.exec(second.stderr.join('\n'))?.[1];
    expect(password, second.stderr.join('\n')).toBeDefined();
    const res = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    expect(res.status).toBe(200);

    // Issue 16 point 9: `stagedoor admin create-user` beside the running server, which holds the
    // embedded database: without a CLI session it says what to do; signed in, it goes through the API.
    const config = path.join(dataDir, 'cli-config');
    const cli = async (args: string[], extra: Record<string, string> = {}) => {
      const p = spawnStagedoor(args, { ...env, XDG_CONFIG_HOME: config, STAGEDOOR_URL: undefined, STAGEDOOR_TOKEN: undefined, ...extra });
      started.push(p);
      return { code: await p.exited, out: p.stdout.join('\n'), err: p.stderr.join('\n') };
    };
    const refused = await cli(['admin', 'create-user', 'ana']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/in use by process \d+/);
    expect(refused.err).toContain('sign in as an admin first (stagedoor login');
    expect((await cli(['login', '--url', base, '--username', 'admin'], { STAGEDOOR_PASSWORD: password! })).code).toBe(0);
    const created = await cli(['admin', 'create-user', 'ana']);
    expect(created.code, created.err).toBe(0);
    expect(created.err).toContain(`creating the user through ${base}`);
    const ana = /password: (\S+)/.exec(created.out)?.[1];
    expect(created.out).toMatch(/created user ana \(user, id [0-9a-f-]{36}\)/);
    const signIn = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ana', password: ana }) });
    expect(signIn.status).toBe(200);
    await second.stop();
  });
});
