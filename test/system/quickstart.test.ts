import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/ports.ts';
import { REPO_ROOT, spawnProcess, spawnStagedoor, type Spawned } from '../support/processes.ts';

/**
 * The README's quick start, for real: `npm start` on a fresh data directory serves /readyz,
 * the admin password from the environment signs in, and a restart keeps it.
 */
describe('quick start (npm start → stagedoor dev on the embedded database)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-quickstart-'));
  const started: Spawned[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop('SIGKILL')));
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(how: 'npm' | 'cli', env: Record<string, string | undefined>) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const fullEnv = { PORT: String(port), STAGEDOOR_DATA_DIR: dataDir, DATABASE_URL: undefined, ...env };
    const proc = how === 'npm' ? spawnProcess('npm', ['start'], fullEnv) : spawnStagedoor(['dev'], fullEnv);
    started.push(proc);
    await waitFor('stagedoor dev to be ready', async () => (await fetch(`${base}/readyz`)).status === 200, 60_000, 200).catch((err) => {
      throw new Error(`${err.message}\nstderr:\n${proc.stderr.join('\n')}`);
    });
    return { proc, base };
  }

  async function loginStatus(base: string, password: string) {
    const res = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    return { status: res.status, cookie: res.headers.getSetCookie().find((c) => c.startsWith('stagedoor_session='))?.split(';')[0] };
  }

  it('serves readyz, signs the admin in with STAGEDOOR_ADMIN_PASSWORD, refuses a wrong password', async () => {
    const { proc, base } = await start('npm', { STAGEDOOR_ADMIN_PASSWORD: 'first-password-1' });
    const ready = await (await fetch(`${base}/readyz`)).json();
    expect(ready).toMatchObject({ status: 'ready', database: { driver: 'pglite' } });
    const ok = await loginStatus(base, 'first-password-1');
    expect(ok.status).toBe(200);
    const me = await fetch(`${base}/api/v1/me`, { headers: { cookie: ok.cookie! } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: { username: string } }).user.username).toBe('admin');
    expect((await loginStatus(base, 'not-the-password')).status).toBe(401);
    expect(proc.stderr.join('\n')).toContain(`up at ${base}`);
    await proc.stop('SIGTERM');
    // npm itself dies of the signal; the broker under it shut down cleanly if it released the data directory.
    await waitFor('the data directory lock to be released', () => !fs.existsSync(path.join(dataDir, 'db', 'stagedoor.pid')), 30_000);
  });

  it('after a restart the same password works, and a different STAGEDOOR_ADMIN_PASSWORD changes nothing', async () => {
    const { proc, base } = await start('cli', { STAGEDOOR_ADMIN_PASSWORD: 'second-password-2' });
    expect((await loginStatus(base, 'first-password-1')).status).toBe(200);
    expect((await loginStatus(base, 'second-password-2')).status).toBe(401);
    expect(proc.stderr.join('\n')).not.toContain('created user "admin"');
    // The embedded database belongs to one process: a second one on the same directory is refused.
    const port = await freePort();
    const second = spawnStagedoor(['dev'], { PORT: String(port), STAGEDOOR_DATA_DIR: dataDir, DATABASE_URL: undefined });
    expect(await second.exited).not.toBe(0);
    expect(second.stderr.join('\n')).toMatch(/in use by process \d+/);
    expect(await proc.stop('SIGTERM')).toBe(0);
  });

  it('without STAGEDOOR_ADMIN_PASSWORD the first start prints a generated password once, and it works', async () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-generated-'));
    try {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const proc = spawnStagedoor(['dev'], { PORT: String(port), STAGEDOOR_DATA_DIR: fresh, STAGEDOOR_ADMIN_PASSWORD: undefined, DATABASE_URL: undefined });
      started.push(proc);
      await waitFor('ready', async () => (await fetch(`${base}/readyz`)).status === 200, 60_000, 200);
      const printed = /password\s+(\S{20})/.exec(proc.stderr.join('\n'))?.[1];
      expect(printed).toBeDefined();
      expect((await loginStatus(base, printed!)).status).toBe(200);
      expect(proc.stdout.join('\n')).not.toContain(printed!);
      await proc.stop();
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('PORT=not-a-port npm start exits non-zero at once, naming PORT', async () => {
    const proc = spawnProcess('npm', ['start'], { PORT: 'not-a-port', STAGEDOOR_DATA_DIR: dataDir });
    started.push(proc);
    const code = await proc.exited;
    expect(code).not.toBe(0);
    const message = proc.stderr.find((l) => l.startsWith('stagedoor: invalid configuration'));
    expect(message).toBeDefined();
    expect(message).toContain('PORT');
    expect(message).toContain('not-a-port');
  });

  it('the data directory lives where STAGEDOOR_DATA_DIR says', () => {
    expect(fs.existsSync(path.join(dataDir, 'db'))).toBe(true);
    expect(REPO_ROOT).toBeTruthy();
  });
});
