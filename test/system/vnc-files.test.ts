import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tigervncFile } from '../../apps/broker/src/domain/connections/connection-files.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { freePort, waitFor } from '../support/ports.ts';
import { spawnProcess, spawnStagedoor, type Spawned } from '../support/processes.ts';
import { bearer, mintUsers, type MintedUser } from '../support/studio.ts';

/**
 * Issue 16 point 3: the VNC files a user downloads open in the viewers they have. TigerVNC's real
 * viewer (`xtigervncviewer`, under Xvfb) is given each file the broker serves and must reach a real
 * TigerVNC server (Xvnc) — or, for the RealVNC `.vnc`, refuse it as TigerVNC does, which is why
 * both formats are offered (docs/connect-flow.md, "VNC files").
 */
describe('VNC connection files, opened by the real TigerVNC viewer', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-vnc-files-'));
  const procs: Spawned[] = [];
  let b: TestBroker;
  let user: MintedUser;
  let xvnc: Spawned;
  let display: string;
  let vncPort: number;

  /** An X server that picks its own free display and writes its number to stdout (-displayfd 1). */
  async function xServer(cmd: string, args: string[]): Promise<{ proc: Spawned; display: string }> {
    const proc = spawnProcess(cmd, ['-displayfd', '1', '-nolisten', 'tcp', ...args], { HOME: dir }, dir);
    procs.push(proc);
    await waitFor(`${cmd} to start`, () => proc.stdout.some((l) => /^\d+$/.test(l.trim())), 30_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc.stderr.join('\n')}`);
    });
    return { proc, display: `:${proc.stdout.find((l) => /^\d+$/.test(l.trim()))!.trim()}` };
  }

  beforeAll(async () => {
    vncPort = await freePort();
    const [vnc, xvfb] = await Promise.all([xServer('Xvnc', ['-rfbport', String(vncPort), '-SecurityTypes', 'None', '-geometry', '320x200', '-depth', '24', '-desktop', 'stagedoor-test']), xServer('Xvfb', ['-screen', '0', '640x480x24'])]);
    xvnc = vnc.proc;
    display = xvfb.display;

    b = await createTestBroker('pglite');
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
      const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
      if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
      return res.json();
    };
    const provider = await call('POST', '/api/v1/providers', { kind: 'static', name: 'vnc-hosts' });
    await call('POST', `/api/v1/providers/${provider.id}/hosts/import`, { csv: `name,address,protocols,tags\nvnc-1,127.0.0.1,vnc:${vncPort},kind=vnc\n` });
    const pool = await call('POST', '/api/v1/pools', { name: 'vnc-pool', providerId: provider.id, membership: { tags: { kind: ['vnc'] } } });
    await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
    [user] = (await mintUsers(b.database, 1, 'viewer', 'Viewers')) as [MintedUser];
    const group = ((await call('GET', '/api/v1/groups')).items as { id: string; name: string }[]).find((g) => g.name === 'Viewers')!;
    const plan = await call('POST', '/api/v1/protocol-plans', { name: 'vnc-direct', protocols: [{ protocol: 'vnc' }] });
    await call('POST', '/api/v1/policies', { name: 'viewers', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
  });
  afterAll(async () => {
    await b?.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Run the viewer on a file (by path: with a `/`, TigerVNC reads it as a configuration file). */
  function viewer(file: string): Spawned {
    const proc = spawnProcess('xtigervncviewer', ['-AlertOnFatalError=0', file], { DISPLAY: display, HOME: dir }, dir);
    procs.push(proc);
    return proc;
  }

  it('the .tigervnc file from the API opens in xtigervncviewer and reaches the Xvnc server; the RealVNC .vnc is refused by it', async () => {
    const conn = (await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(user), payload: { poolId: (await b.app.inject({ url: '/api/v1/desktops', headers: bearer(user) })).json().desktops[0].poolId } })).json();
    expect(conn).toMatchObject({ state: 'ready', protocol: 'vnc', instructions: { host: '127.0.0.1', port: vncPort } });

    const tiger = await b.app.inject({ url: `/api/v1/connections/${conn.id}/file?format=tigervnc`, headers: bearer(user) });
    expect(tiger.statusCode, tiger.body).toBe(200);
    expect(tiger.headers['content-type']).toContain('application/x-tigervnc');
    expect(tiger.headers['content-disposition']).toContain('vnc-1.tigervnc');
    expect(tiger.body).toBe(tigervncFile('127.0.0.1', vncPort));
    const tigerPath = path.join(dir, 'vnc-1.tigervnc');
    fs.writeFileSync(tigerPath, tiger.body);
    const accepted = () => xvnc.stderr.filter((l) => l.includes('Connections: accepted: 127.0.0.1::')).length;
    const before = accepted();
    const v = viewer(tigerPath);
    await waitFor('Xvnc to accept the viewer', () => accepted() > before || v.proc.exitCode !== null, 60_000, 100);
    expect(accepted(), `viewer:\n${v.stderr.join('\n')}`).toBeGreaterThan(before);
    await waitFor('the viewer to agree on a security type', () => xvnc.stderr.some((l) => l.includes('Client requests security type None')), 30_000, 100);
    await v.stop();

    const real = await b.app.inject({ url: `/api/v1/connections/${conn.id}/file`, headers: bearer(user) });
    expect(real.headers['content-disposition']).toContain('vnc-1.vnc');
    const realPath = path.join(dir, 'vnc-1.vnc');
    fs.writeFileSync(realPath, real.body);
    const refused = viewer(realPath);
    expect(await refused.exited).not.toBe(0);
    // TigerVNC's log wraps long lines: compare with the blanks folded.
    const said = [...refused.stderr, ...refused.stdout].join(' ').replace(/\s+/g, ' ');
    expect(said).toContain(`Configuration file ${realPath} is in an invalid format`);
  });

  it('stagedoor connect --vnc-format tigervnc writes the .tigervnc file', async () => {
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(b.app.server.address() as { port: number }).port}`;
    const out = path.join(dir, 'from-cli.tigervnc');
    const cli = spawnStagedoor(['connect', 'vnc-pool', '--vnc-format', 'tigervnc', '--out', out], { STAGEDOOR_URL: url, STAGEDOOR_TOKEN: user.token, XDG_CONFIG_HOME: dir });
    expect(await cli.exited, cli.stderr.join('\n')).toBe(0);
    expect(cli.stdout.join('\n')).toContain(`${out} written`);
    expect(fs.readFileSync(out, 'utf8')).toBe(tigervncFile('127.0.0.1', vncPort));
  });

  it('format is refused with a 400 for anything but VNC, and for an unknown format', async () => {
    const bad = await b.app.inject({ url: `/api/v1/connections/00000000-0000-4000-8000-000000000000/file?format=tightvnc`, headers: bearer(user) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('format');
  });
});
