import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { freePort, waitFor } from '../support/ports.ts';
import { spawnStagedoor, STAGEDOOR_BIN } from '../support/processes.ts';
import { seedRackPool } from '../support/racks.ts';

/**
 * The artist's session from a terminal (issue 16 point 7): the password asked without echo on a
 * real terminal (a pty from util-linux `script`), the broker URL given once, status, disconnect,
 * logout — real `stagedoor` processes against a broker.
 */
describe('stagedoor login (terminal) | status | disconnect | logout', () => {
  let b: TestBroker;
  let url: string;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-cli-session-'));
  const sessionPath = path.join(home, 'stagedoor', 'session.json');

  beforeAll(async () => {
    b = await createTestBroker('pglite');
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(b.app.server.address() as { port: number }).port}`;
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const { group } = await seedRackPool((o) => b.app.inject(o as never) as never, admin, { hosts: 2, groupName: 'Lighting', name: 'lookdev' });
    const user = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: 'rui', password: 'rui-password-1', groupIds: [group.id] } });
    expect(user.statusCode).toBe(201);
  });
  afterAll(async () => {
    await b?.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const env = { XDG_CONFIG_HOME: home, STAGEDOOR_URL: undefined, STAGEDOOR_TOKEN: undefined, STAGEDOOR_PASSWORD: undefined };
  const run = async (args: string[], extra: Record<string, string | undefined> = {}) => {
    const p = spawnStagedoor(args, { ...env, ...extra });
    const code = await p.exited;
    return { code, out: p.stdout.join('\n'), err: p.stderr.join('\n') };
  };

  it('a URL without its scheme gets a hint naming both spellings', async () => {
    const r = await run(['login', '--url', url.replace('http://', ''), '--username', 'rui'], { STAGEDOOR_PASSWORD: 'rui-password-1' });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`the broker URL needs its scheme: https://${url.replace('http://', '')}`);
    expect(r.err).toContain(`or ${url} (a local`);
    expect(r.err).not.toContain('    at '); // no stack
  });

  it('on a terminal the password is asked for without echo; the URL is remembered for the next login', async () => {
    // `script` gives the CLI a pseudo-terminal; what the CLI echoes comes back on its stdout.
    const cmd = `${process.execPath} ${STAGEDOOR_BIN} login --url ${url} --username rui`;
    const pty = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, XDG_CONFIG_HOME: home, STAGEDOOR_URL: '', STAGEDOOR_PASSWORD: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    pty.stdout.on('data', (c: Buffer) => (seen += c.toString()));
    pty.stderr.on('data', (c: Buffer) => (seen += c.toString()));
    const exited = new Promise<number | null>((r) => pty.on('exit', (code) => r(code)));
    // Typed only once the prompt shows: by then the terminal is in raw mode and echoes nothing.
    await waitFor('the password prompt', () => seen.includes(`Password for rui at ${url}: `), 30_000, 50);
    pty.stdin.write('rui-password-1\r');
    await waitFor('the sign-in', () => seen.includes('signed in to'), 30_000, 50);
    pty.stdin.end();
    expect(await exited).toBe(0);
    expect(seen).toContain(`signed in to ${url} as rui`);
    expect(seen).not.toContain('rui-password-1');
    expect(fs.statSync(sessionPath).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(path.join(home, 'stagedoor', 'config.json'), 'utf8'))).toEqual({ url });

    // No --url and no STAGEDOOR_URL: the remembered one; not a terminal: the password from stdin.
    const piped = spawn(process.execPath, [STAGEDOOR_BIN, 'login', '--username', 'rui'], { env: { ...process.env, XDG_CONFIG_HOME: home, STAGEDOOR_URL: '', STAGEDOOR_PASSWORD: '' } });
    let out = '';
    piped.stdout.on('data', (c: Buffer) => (out += c.toString()));
    piped.stderr.on('data', (c: Buffer) => (out += c.toString()));
    piped.stdin.end('rui-password-1\n');
    expect(await new Promise((r) => piped.on('exit', r)), out).toBe(0);
    expect(out).toContain(`signed in to ${url} as rui`);
  });

  it('desktops has a header row; status lists the connection in words; disconnect ends it; status then has none', async () => {
    const d = await run(['desktops']);
    expect(d.code, d.err).toBe(0);
    expect(d.out.split('\n')[0]).toMatch(/^DESKTOP\s+STATE\s+PROTOCOLS\s+YOUR MACHINES$/);
    expect(d.out.split('\n')[1]).toMatch(/^lookdev\s+available\s+rdp$/);

    const c = await run(['connect', 'lookdev', '--out', path.join(home, 'lookdev.rdp')]);
    expect(c.code, c.err).toBe(0);
    const s = await run(['status']);
    expect(s.code, s.err).toBe(0);
    expect(s.out).toContain(`signed in to ${url} as rui (user)`);
    expect(s.out).toMatch(/DESKTOP\s+MACHINE\s+PROTOCOL\s+STATE\s+GRANT/);
    expect(s.out).toMatch(/lookdev\s+lookdev-000\d\s+rdp\s+ready\s+direct/);

    const wrong = await run(['disconnect', 'nowhere']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/you hold no desktop named "nowhere"; yours: lookdev \(lookdev-000\d\)/);
    const r = await run(['release', 'lookdev']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/lookdev-000\d: disconnected; it went back to the pool lookdev/);
    const after = await run(['status']);
    expect(after.out).toContain('no connections');
  });

  it('logout ends the session on the broker and deletes the file; the next command says to sign in', async () => {
    const cookie = (JSON.parse(fs.readFileSync(sessionPath, 'utf8')) as { cookie: string }).cookie;
    const r = await run(['logout']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`signed out of ${url} (rui)`);
    expect(fs.existsSync(sessionPath)).toBe(false);
    expect((await fetch(`${url}/api/v1/me`, { headers: { cookie } })).status).toBe(401);
    const d = await run(['desktops']);
    expect(d.code).toBe(1);
    expect(d.err).toContain('not signed in: run `stagedoor login --username NAME` first'); // the URL is remembered
  });

  it('logout with the broker out of reach deletes the session here and says it lives on there until it times out', async () => {
    const gone = `http://127.0.0.1:${await freePort()}`;
    fs.writeFileSync(sessionPath, JSON.stringify({ url: gone, cookie: 'stagedoor_session=x', csrf: 'y', username: 'rui' }), { mode: 0o600 });
    const r = await run(['logout']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`cannot reach ${gone}`);
    expect(r.err).toContain('the session was deleted here, and ends on the broker when it times out');
    expect(fs.existsSync(sessionPath)).toBe(false);
  });
});
