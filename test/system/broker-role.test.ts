import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../support/database.ts';
import { freePort, waitFor } from '../support/ports.ts';
import { spawnStagedoor, type Spawned } from '../support/processes.ts';

const ADMIN_PASSWORD = 'first-admin-password-1';

/** Start a role and wait for /readyz; the process goes at the end of the file. */
async function start(args: string[], env: Record<string, string | undefined>, started: Spawned[]): Promise<string> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const proc = spawnStagedoor(args, { PORT: String(port), STAGEDOOR_ADMIN_PASSWORD: ADMIN_PASSWORD, STAGEDOOR_LOG_LEVEL: 'warn', ...env });
  started.push(proc);
  await waitFor(`stagedoor ${args[0]} to be ready`, async () => (await fetch(`${base}/readyz`)).status === 200, 60_000, 200).catch((err: Error) => {
    throw new Error(`${err.message}\nstderr:\n${proc.stderr.join('\n')}`);
  });
  return base;
}

async function signIn(base: string, username: string, password: string) {
  const res = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('stagedoor_session='));
  const body = (await res.json()) as { csrfToken?: string; user?: { id: string } };
  return { status: res.status, setCookie, headers: { cookie: setCookie?.split(';')[0] ?? '', 'x-csrf-token': body.csrfToken ?? '', 'content-type': 'application/json' }, userId: body.user?.id };
}

/** The production role and the break-glass CLI, as real processes on one PostgreSQL database. */
describe('stagedoor broker and stagedoor admin (real processes)', () => {
  const started: Spawned[] = [];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-role-'));
  let databaseUrl: string;
  let broker: string;

  beforeAll(async () => {
    databaseUrl = await createPostgresDatabase();
    broker = await start(['broker'], { DATABASE_URL: databaseUrl, STAGEDOOR_DATA_DIR: dataDir }, started);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('the session cookie of stagedoor broker is Secure even on a plain-http request, with no proxy header to keep it off the wire', async () => {
    const admin = await signIn(broker, 'admin', ADMIN_PASSWORD);
    expect(admin.status).toBe(200);
    const attributes = admin.setCookie!.split(';').map((a) => a.trim().toLowerCase());
    expect(attributes).toEqual(expect.arrayContaining(['secure', 'httponly', 'samesite=lax']));
  });

  it('stagedoor dev on http://127.0.0.1 still signs in, its cookie Secure only over HTTPS', async () => {
    const dev = await start(['dev'], { DATABASE_URL: undefined, STAGEDOOR_DATA_DIR: path.join(dataDir, 'dev'), STAGEDOOR_DEV_GATEWAY_PORTS: 'off' }, started);
    const admin = await signIn(dev, 'admin', ADMIN_PASSWORD);
    expect(admin.status).toBe(200);
    expect(admin.setCookie!.toLowerCase()).not.toContain('secure');
    expect((await fetch(`${dev}/api/v1/me`, { headers: admin.headers })).status).toBe(200);
  }, 90_000);

  it('stagedoor admin reset-password also revokes the user\'s API tokens: a token minted with a stolen session dies with the password', async () => {
    const admin = await signIn(broker, 'admin', ADMIN_PASSWORD);
    const created = await fetch(`${broker}/api/v1/users`, { method: 'POST', headers: admin.headers, body: JSON.stringify({ username: 'carl', password: 'carl-old-password' }) });
    expect(created.status).toBe(201);
    const carl = await signIn(broker, 'carl', 'carl-old-password');
    const minted = await fetch(`${broker}/api/v1/me/tokens`, { method: 'POST', headers: carl.headers, body: JSON.stringify({ name: 'laptop' }) });
    expect(minted.status).toBe(201);
    const { token } = (await minted.json()) as { token: string };
    const me = () => fetch(`${broker}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect((await me()).status).toBe(200);

    const cli = spawnStagedoor(['admin', 'reset-password', 'carl'], { DATABASE_URL: databaseUrl, STAGEDOOR_DATA_DIR: dataDir, STAGEDOOR_LOG_LEVEL: 'warn' });
    expect(await cli.exited, cli.stderr.join('\n')).toBe(0);
    expect((await me()).status).toBe(401);
    const out = cli.stdout.join('\n');
    expect(out).toContain('password of carl reset; 1 session(s) ended and 1 API token(s) revoked');
    const password = /^password: (\S+)$/m.exec(out)![1]!;
    expect((await signIn(broker, 'carl', 'carl-old-password')).status).toBe(401);
    expect((await signIn(broker, 'carl', password)).status).toBe(200);
  }, 60_000);
});
