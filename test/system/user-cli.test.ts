import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connections, users } from '../../apps/broker/src/db/schema/index.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { spawnStagedoor } from '../support/processes.ts';
import { seedRackPool } from '../support/racks.ts';

/** The artist's terminal: stagedoor login, desktops, connect — real processes against a broker. */
describe('stagedoor login | desktops | connect', () => {
  let b: TestBroker;
  let url: string;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-cli-'));

  beforeAll(async () => {
    b = await createTestBroker('pglite');
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(b.app.server.address() as { port: number }).port}`;
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const { group } = await seedRackPool((o) => b.app.inject(o as never) as never, admin, { hosts: 2, groupName: 'Editors', name: 'suite' });
    const user = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: 'ana', password: 'ana-password-1', groupIds: [group.id] } });
    expect(user.statusCode).toBe(201);
  });
  afterAll(async () => {
    await b?.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const run = async (args: string[], env: Record<string, string> = {}) => {
    const p = spawnStagedoor(args, { XDG_CONFIG_HOME: home, STAGEDOOR_URL: undefined, STAGEDOOR_TOKEN: undefined, ...env });
    const code = await p.exited;
    return { code, out: p.stdout.join('\n'), err: p.stderr.join('\n') };
  };

  it('a wrong password is refused, and no session is kept', async () => {
    const r = await run(['login', '--url', url, '--username', 'ana'], { STAGEDOOR_PASSWORD: 'nope-nope-nope' });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('wrong username or password');
    expect(fs.existsSync(path.join(home, 'stagedoor', 'session.json'))).toBe(false);
  });

  it('login keeps a private session; desktops lists the offer', async () => {
    const r = await run(['login', '--url', url, '--username', 'ana'], { STAGEDOOR_PASSWORD: 'ana-password-1' });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`signed in to ${url} as ana`);
    expect(fs.statSync(path.join(home, 'stagedoor', 'session.json')).mode & 0o777).toBe(0o600);
    const d = await run(['desktops']);
    expect(d.code, d.err).toBe(0);
    expect(d.out).toMatch(/suite\s+available\s+rdp/);
  });

  it('connect writes the .rdp file; a protocol outside the plan is refused clearly', async () => {
    const out = path.join(home, 'suite.rdp');
    const r = await run(['connect', 'suite', '--out', out]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`${out} written`);
    expect(fs.readFileSync(out, 'utf8')).toMatch(/full address:s:10\.50\.0\.\d:3389/);
    const ssh = await run(['connect', 'suite', '--protocol', 'ssh']);
    expect(ssh.code).not.toBe(0);
    expect(ssh.err).toContain("protocol ssh is not in this desktop's protocol plan (rdp)");
    const unknown = await run(['connect', 'nowhere']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.err).toContain('no desktop named "nowhere"; yours: suite');
  });

  it('a connect whose answer is lost is retried with the same Idempotency-Key and gets the same connection, not a second one', async () => {
    // A proxy in front of the broker that delivers the first connect and drops its answer.
    const seen: string[] = [];
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const first = req.method === 'POST' && req.url === '/api/v1/connections' && seen.push(String(req.headers['idempotency-key'])) === 1;
        const upstream = http.request(`${url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
          if (first) {
            answer.resume();
            answer.on('end', () => req.socket.destroy()); // committed, never answered
            return;
          }
          res.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(res);
        });
        upstream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const via = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    try {
      const [ana] = await b.database.db.select().from(users).where(eq(users.username, 'ana'));
      const live = () => b.database.db.select().from(connections).where(and(eq(connections.userId, ana!.id), inArray(connections.state, ['starting', 'ready', 'connected'])));
      for (const c of await live()) await b.app.inject({ method: 'DELETE', url: `/api/v1/connections/${c.id}`, headers: as(await login(b.app, 'admin', ADMIN_PASSWORD)) });
      const out = path.join(home, 'retried.rdp');
      const r = await run(['connect', 'suite', '--url', via, '--out', out]);
      expect(r.code, r.err).toBe(0);
      expect(seen).toHaveLength(2);
      expect(seen[0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(seen[1]).toBe(seen[0]);
      expect(await live()).toHaveLength(1);
    } finally {
      proxy.close();
    }
  });
});
