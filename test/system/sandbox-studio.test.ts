import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, freePortRange, waitFor } from '../support/ports.ts';
import { jsonLines, REPO_ROOT, spawnStagedoor, type Spawned } from '../support/processes.ts';

const EXAMPLE = path.join(REPO_ROOT, 'docs/examples/studio.yaml');
const DEMO_AMI = 'ami-0123456789abcdef0';

/**
 * Issue 16 as a new user meets it: the README's `npm start -- --sandbox` (a hand launch on the
 * `sandbox` provider), then `stagedoor apply -f docs/examples/studio.yaml` on the same emulator.
 * Every instance is listed once, the cost report counts each machine once, and a provider that would
 * see the others' instances is refused naming both. The same run's log (point 11): unique keys on
 * every line, idle `timers` passes at debug, and the dev gateway's start line naming its engine.
 */
describe('the README sandbox and the studio example on one emulator', { timeout: 240_000 }, () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-sandbox-studio-'));
  let proc: Spawned;
  let base: string;
  let ec2Url: string;
  let headers: Record<string, string>;
  let token: string;

  beforeAll(async () => {
    const [port, ec2Port, [gwPort]] = [await freePort(), await freePort(), await freePortRange(1)];
    base = `http://127.0.0.1:${port}`;
    ec2Url = `http://127.0.0.1:${ec2Port}`;
    proc = spawnStagedoor(['dev', '--sandbox'], {
      PORT: String(port),
      STAGEDOOR_SANDBOX_EC2_PORT: String(ec2Port),
      STAGEDOOR_DEV_GATEWAY_PORTS: `${gwPort}-${gwPort}`,
      STAGEDOOR_DATA_DIR: dataDir,
      STAGEDOOR_ADMIN_PASSWORD: 'sandbox-studio-pw',
      STAGEDOOR_LOG_LEVEL: 'debug',
      DATABASE_URL: undefined,
      STAGEDOOR_SECRET_KEY: undefined,
    });
    await waitFor('dev --sandbox ready', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200, 120_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc.stderr.join('\n')}`);
    });
    const login = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'sandbox-studio-pw' }) });
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    headers = { cookie: login.headers.getSetCookie()[0]!.split(';')[0]!, 'x-csrf-token': csrfToken, 'content-type': 'application/json' };
    token = ((await (await fetch(`${base}/api/v1/me/tokens`, { method: 'POST', headers, body: JSON.stringify({ name: 'apply' }) })).json()) as { token: string }).token;
  });
  afterAll(async () => {
    await proc?.stop('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const api = async <T>(url: string, init: RequestInit = {}) => {
    const res = await fetch(`${base}${url}`, { ...init, headers });
    return { status: res.status, body: (await res.json()) as T };
  };
  const apply = async (file: string) => {
    const p = spawnStagedoor(['apply', '-f', file], { STAGEDOOR_URL: base, STAGEDOOR_TOKEN: token, EC2_ENDPOINT: ec2Url, AWS_ACCESS_KEY_ID: 'AKIASANDBOX000000000', AWS_SECRET_ACCESS_KEY: 'sandbox-secret-the-emulator-ignores' });
    const code = await p.exited;
    return { code, out: `${p.stdout.join('\n')}\n${p.stderr.join('\n')}` };
  };
  type Provider = { id: string; name: string };
  type Ws = { externalId: string | null; providerId: string; name: string; powerState: string };
  const providers = async () => (await api<{ items: Provider[] }>('/api/v1/providers')).body.items;
  const workstations = async () => (await api<{ items: Ws[] }>('/api/v1/workstations?limit=500')).body.items;

  it('lists every instance once, counts each machine once, and refuses an overlapping provider with both names', async () => {
    // The README: a demo machine on the sandbox.
    const sandbox = (await providers()).find((p) => p.name === 'sandbox')!;
    const launch = await api<Ws>('/api/v1/workstations', { method: 'POST', body: JSON.stringify({ providerId: sandbox.id, name: 'demo-01', imageId: DEMO_AMI, instanceType: 'g5.xlarge' }) });
    expect(launch.status).toBe(201);

    // The example, applied to the same emulator.
    const applied = await apply(EXAMPLE);
    expect(applied.code, applied.out).toBe(0);
    const main = (await providers()).find((p) => p.name === 'aws-main')!;

    // The pools launch their standby machines; both providers sync until each has seen all of its own.
    let seen = { sandbox: 0, main: 0 };
    await waitFor('both providers synced with the pools\' machines launched', async () => {
      const s = await api<{ counts: { seen: number; skipped?: number } }>(`/api/v1/providers/${sandbox.id}/sync`, { method: 'POST' });
      const m = await api<{ counts: { seen: number; skipped?: number } }>(`/api/v1/providers/${main.id}/sync`, { method: 'POST' });
      if (s.status !== 200 || m.status !== 200) return false;
      expect(s.body.counts.skipped ?? 0).toBe(0);
      expect(m.body.counts.skipped ?? 0).toBe(0);
      seen = { sandbox: s.body.counts.seen, main: m.body.counts.seen };
      const launched = (await workstations()).filter((w) => w.providerId === main.id && w.externalId !== null).length;
      return seen.main >= 3 && launched === seen.main;
    }, 120_000, 1000);
    expect(seen.sandbox).toBe(1);

    const all = (await workstations()).filter((w) => w.externalId !== null && w.powerState !== 'terminated');
    const ids = all.map((w) => w.externalId);
    expect(new Set(ids).size).toBe(ids.length); // no instance twice
    expect(all).toHaveLength(seen.sandbox + seen.main);
    expect(all.filter((w) => w.providerId === sandbox.id).map((w) => w.name)).toEqual(['demo-01']);

    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const cost = await api<{ total: { machines: number } }>(`/api/v1/reports/cost?from=${from}&to=${to}&groupBy=pool`);
    expect(cost.status).toBe(200);
    expect(cost.body.total.machines).toBe(all.length);

    // A provider that would see the others' instances: refused at creation, naming both.
    const copy = await api<{ error: { message: string } }>('/api/v1/providers', {
      method: 'POST',
      body: JSON.stringify({ kind: 'aws-ec2', name: 'aws-copy', region: 'us-east-1', endpoint: ec2Url, credentials: { mode: 'access-key', accessKeyId: 'AKIASANDBOX000000000', secretAccessKey: 'sandbox-secret-the-emulator-ignores' }, tagFilter: {} }),
    });
    expect(copy.status, JSON.stringify(copy.body)).toBe(409);
    expect(copy.body.error.message).toMatch(/provider "aws-copy" would see instances that provider "(aws-main|sandbox)" already owns/);

    // …and at apply: the example with its site filter removed overlaps the sandbox.
    const wide = path.join(dataDir, 'wide.yaml');
    fs.writeFileSync(wide, fs.readFileSync(EXAMPLE, 'utf8').replace('      site: [studio]\n', ''));
    const refused = await apply(wide);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain('provider "aws-main" would see instances that provider "sandbox" already owns');
    expect((await providers()).map((p) => p.name).sort()).toEqual(['aws-main', 'sandbox']);
  });

  it('logs: every JSON line has unique keys, idle timers passes are debug lines, the gateway names its relay engine', async () => {
    const timers = () => jsonLines(proc.stdout).filter((l) => l.msg === 'job pass' && l.job === 'timers');
    await waitFor('three timers passes', () => timers().length >= 3, 60_000, 200);
    await waitFor('the dev gateway\'s start line', () => jsonLines(proc.stdout).some((l) => String(l.msg).startsWith('gateway started')), 60_000, 200);

    const duplicated = proc.stdout.filter((l) => l.startsWith('{')).flatMap((l) => {
      const keys = topLevelKeys(l);
      return keys.length === new Set(keys).size ? [] : [l];
    });
    expect(duplicated).toEqual([]);

    const idle = timers().filter((l) => Object.values(l.stats as Record<string, number>).every((n) => n === 0));
    expect(idle.length).toBeGreaterThan(0);
    expect(idle.filter((l) => l.level !== 20)).toEqual([]);

    const started = jsonLines(proc.stdout).find((l) => String(l.msg).startsWith('gateway started'))!;
    expect(started).toMatchObject({ role: 'gateway', name: 'dev-gateway', relayEngine: expect.stringMatching(/^(native|js)$/) });
    expect(started.msg).toBe(`gateway started: relay engine ${started.relayEngine as string}`);
  });
});

/** The keys of a JSON object's top level, as written (JSON.parse keeps only the last of a repeated key). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(line.slice(i + 1, j));
      expectKey = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1 && c === '{';
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}
