import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOT_ON_A_GATEWAY } from '../../release/build.ts';
import { createPostgresDatabase } from '../support/database.ts';
import { fetchInject, httpLogin } from '../support/http.ts';
import { freePort, freePortRange, waitFor } from '../support/ports.ts';
import { REPO_ROOT, spawnProcess, type Spawned } from '../support/processes.ts';
import { ensureRelease, type ReleaseTarballs } from '../support/release-build.ts';
import { as } from '../support/session.ts';
import { startLocalSshd } from '../support/sshd.ts';

const run = promisify(execFile);

/** Every file under a folder, relative to it (symlinks listed, not followed). */
function listTree(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listTree(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

/**
 * The release as an operator gets it (issue 15): the tarballs of `npm run release` unpacked into an
 * empty directory outside the repository, no `npm install`, no sources. `stagedoor broker` from the
 * full artifact on the harness's PostgreSQL, the gateway from the gateway-only artifact (native
 * relay), and one SSH session of a real OpenSSH client through the gateway to a real sshd.
 */
describe('the unpacked release runs without the repository', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-release-'));
  let tarballs: ReleaseTarballs;
  let full: string;
  let gatewayOnly: string;
  let broker: Spawned;
  let gateway: Spawned;
  let sshdServer: Awaited<ReturnType<typeof startLocalSshd>> | undefined;
  let base: string;

  // Cleaned environment: nothing that could point Node or npm back into the checkout.
  const env = (extra: Record<string, string>) => ({ NODE_PATH: undefined, NODE_OPTIONS: undefined, npm_config_prefix: undefined, PATH: '/usr/local/bin:/usr/bin:/bin', ...extra });
  const startedIn = (proc: Spawned) => `\n--- stdout\n${proc.stdout.join('\n')}\n--- stderr\n${proc.stderr.join('\n')}`;

  beforeAll(async () => {
    tarballs = await ensureRelease();
    expect(dir.startsWith(REPO_ROOT)).toBe(false);
    await run('tar', ['-xzf', tarballs.full, '-C', dir]);
    await run('tar', ['-xzf', tarballs.gateway, '-C', dir]);
    full = path.join(dir, `stagedoor-${tarballs.version}`);
    gatewayOnly = path.join(dir, `stagedoor-gateway-${tarballs.version}`);
  }, 1_800_000); // the release build itself, when the sources changed: minutes on a loaded machine

  afterAll(async () => {
    await gateway?.stop();
    await broker?.stop();
    await sshdServer?.proc.stop(); // the worker may be ended without an exit hook: an sshd left here outlived the run
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('carries compiled JavaScript, production dependencies, the units and install.sh; the gateway artifact no database or web code', () => {
    const files = listTree(full);
    for (const f of ['bin/stagedoor', 'bin/stagedoor-gateway', 'install.sh', 'systemd/stagedoor-broker.service', 'systemd/stagedoor-gateway.service', 'systemd/stagedoor-agent.service', 'apps/web/dist/index.html', 'apps/gateway/native/build/splice_relay.node', 'apps/cli/src/main.js', 'apps/broker/src/db/migrations/meta/_journal.json']) {
      expect(files, f).toContain(f);
    }
    // No TypeScript of ours, and none of the tools that run it or test it.
    expect(files.filter((f) => (f.startsWith('apps/') || f.startsWith('packages/')) && !f.includes('/node_modules/') && /\.ts$/.test(f))).toEqual([]);
    for (const dev of ['tsx', 'typescript', 'vitest', 'vite', 'eslint', 'playwright-core', 'drizzle-kit', 'react']) expect(fs.existsSync(path.join(full, 'node_modules', dev)), dev).toBe(false);
    for (const unit of ['broker', 'gateway', 'agent']) {
      const text = fs.readFileSync(path.join(full, `systemd/stagedoor-${unit}.service`), 'utf8');
      for (const line of ['User=stagedoor', 'NoNewPrivileges=yes', 'ProtectSystem=strict', `EnvironmentFile=/etc/stagedoor/${unit}.env`]) expect(text, `${unit}: ${line}`).toContain(line);
      expect(text).toMatch(/^LimitNOFILE=\d+$/m);
      expect(text).toMatch(/^StateDirectory=stagedoor\//m);
    }

    const gwFiles = listTree(gatewayOnly);
    expect(gwFiles).toContain('bin/stagedoor-gateway');
    expect(gwFiles).toContain('systemd/stagedoor-gateway.service');
    expect(gwFiles.filter((f) => f.startsWith('systemd/'))).toEqual(['systemd/stagedoor-gateway.service']);
    for (const p of NOT_ON_A_GATEWAY) expect(fs.existsSync(path.join(gatewayOnly, p.startsWith('apps/') ? p : `node_modules/${p}`)), p).toBe(false);
    expect(gwFiles.some((f) => /migrations|\.sql$/.test(f))).toBe(false);
  });

  it('carries the AWS stack as a CloudFormation template (deploy/aws): brokers, gateways and the database in it', () => {
    const template = JSON.parse(fs.readFileSync(tarballs.awsTemplate, 'utf8')) as { Resources: Record<string, { Type: string }> };
    const types = Object.values(template.Resources).map((r) => r.Type);
    for (const t of ['AWS::AutoScaling::AutoScalingGroup', 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'AWS::RDS::DBCluster', 'AWS::EC2::VPC']) expect(types, t).toContain(t);
    // Plain CloudFormation: no CDK assets to upload first.
    expect(JSON.stringify(template)).not.toMatch(/cdk-hnb659fds-assets/);
  });

  it('the systemd units pass `systemd-analyze verify` without a word about them (an unknown or misspelt key is only a warning there)', async () => {
    for (const unit of ['broker', 'gateway', 'agent']) {
      // ExecStart must name an executable that exists: the unpacked release's, instead of /opt/stagedoor/current.
      const file = path.join(dir, `stagedoor-${unit}.service`);
      fs.writeFileSync(file, fs.readFileSync(path.join(full, `systemd/stagedoor-${unit}.service`), 'utf8').replaceAll('/opt/stagedoor/current', full));
      const { stderr } = await run('systemd-analyze', ['verify', '--man=no', file]);
      expect(stderr.split('\n').filter((l) => l.includes(file)), unit).toEqual([]);
    }
  });

  it('install.sh lays out a prefix, links current and writes the env files (under --root, no systemctl)', async () => {
    const root = path.join(dir, 'root');
    await run(path.join(full, 'install.sh'), ['--root', root, '--role', 'broker', '--role', 'gateway']);
    expect(fs.readlinkSync(path.join(root, 'opt/stagedoor/current'))).toBe(tarballs.version);
    expect(fs.existsSync(path.join(root, 'opt/stagedoor', tarballs.version, 'bin/stagedoor'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'etc/systemd/system/stagedoor-broker.service'))).toBe(true);
    expect(fs.statSync(path.join(root, 'etc/stagedoor/broker.env')).mode & 0o777).toBe(0o640);
    // The gateway-only artifact refuses a role it does not carry.
    await expect(run(path.join(gatewayOnly, 'install.sh'), ['--root', root, '--role', 'broker'])).rejects.toMatchObject({ code: 2 });
  });

  it('stagedoor broker on PostgreSQL and the gateway relay a real SSH session to a real sshd', async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    broker = spawnProcess(path.join(full, 'bin/stagedoor'), ['broker'], env({
      DATABASE_URL: await createPostgresDatabase(),
      PORT: String(port),
      STAGEDOOR_DATA_DIR: path.join(dir, 'broker-data'),
      STAGEDOOR_ADMIN_PASSWORD: 'release-admin-pw',
      STAGEDOOR_SECRET_KEY: randomBytes(32).toString('base64'),
      STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1',
    }), dir);
    await waitFor('stagedoor broker from the release', async () => {
      if (broker.proc.exitCode !== null) throw new Error(`the broker exited${startedIn(broker)}`);
      return (await fetch(`${base}/readyz`).catch(() => null))?.status === 200;
    }, 60_000, 200);

    // The built console and portal ship with the broker (apps/web/dist), not the "no build" page.
    expect(await (await fetch(`${base}/`)).text()).toContain('<script type="module"');
    const admin = await httpLogin(base, 'admin', 'release-admin-pw');
    const call = fetchInject(base);
    const ok = async (method: string, url: string, payload?: unknown) => {
      const r = await call({ method, url, headers: as(admin), payload });
      if (r.statusCode >= 300) throw new Error(`${method} ${url} → ${r.statusCode} ${r.body}`);
      return r.json();
    };
    const { token } = await ok('POST', '/api/v1/gateways/enrollments', { cluster: 'default', name: 'edge-release', publicAddress: '127.0.0.1' });
    const [grantPorts, grantPortsEnd] = await freePortRange(5);
    gateway = spawnProcess(path.join(gatewayOnly, 'bin/stagedoor-gateway'), ['--enroll', token], env({
      STAGEDOOR_BROKER_URLS: base,
      STAGEDOOR_GATEWAY_NAME: 'edge-release',
      STAGEDOOR_GATEWAY_PORTS: `${grantPorts}-${grantPortsEnd}`,
      STAGEDOOR_GATEWAY_LISTEN_HOST: '127.0.0.1',
      STAGEDOOR_GATEWAY_RDP_PORT: 'off',
      STAGEDOOR_GATEWAY_SSH_PORT: 'off',
      STAGEDOOR_GATEWAY_TLS_PORT: 'off',
      STAGEDOOR_GATEWAY_HTTPS_PORT: 'off',
      STAGEDOOR_GATEWAY_DATA_DIR: path.join(dir, 'gateway-data'),
      // The compiled native relay must load from the release: no fallback to the JavaScript relay.
      STAGEDOOR_GATEWAY_RELAY: 'native',
      STAGEDOOR_LOG_LEVEL: 'info',
    }), dir);
    await waitFor('the gateway from the release to enrol and be healthy', async () => {
      if (gateway.proc.exitCode !== null) throw new Error(`the gateway exited${startedIn(gateway)}`);
      return (await ok('GET', '/api/v1/gateways')).items.some((g: { name: string; health: string }) => g.name === 'edge-release' && g.health === 'healthy');
    }, 60_000, 200);

    const sshd = (sshdServer = await startLocalSshd(fs.mkdtempSync(path.join(dir, 'sshd-')), await freePort()));
    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'release-lab' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'release-01', address: '127.0.0.1', protocols: [{ protocol: 'ssh', port: sshd.port }], tags: { lab: 'release' } });
    const pool = await ok('POST', '/api/v1/pools', { name: 'release', providerId: provider.id, membership: { tags: { lab: ['release'] } } });
    await ok('POST', `/api/v1/pools/${pool.id}/reconcile`);
    const group = await ok('POST', '/api/v1/groups', { name: 'Release' });
    const plan = await ok('POST', '/api/v1/protocol-plans', { name: 'ssh-via-gateway', protocols: [{ protocol: 'ssh', viaGateway: true }] });
    await ok('POST', '/api/v1/policies', { name: 'release', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
    await ok('POST', '/api/v1/users', { username: 'ana', password: 'ana-password-1', groupIds: [group.id] });
    const artist = await httpLogin(base, 'ana', 'ana-password-1');

    const res = await call({ method: 'POST', url: '/api/v1/connections', headers: as(artist), payload: { poolId: pool.id } });
    expect(res.statusCode, res.body).toBe(201);
    const { instructions } = res.json();
    expect(instructions).toMatchObject({ protocol: 'ssh', viaGateway: true, host: '127.0.0.1' });
    expect(instructions.port).not.toBe(sshd.port);

    // The host key pinned: the session must end at this sshd, through the gateway's port.
    const knownHosts = path.join(dir, 'known_hosts');
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${instructions.port} ${sshd.hostPublicKey}\n`);
    const ssh = () =>
      run('ssh', ['-F', '/dev/null', '-i', sshd.clientKey, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'ConnectTimeout=10', '-p', String(instructions.port), `${sshd.user}@127.0.0.1`, 'echo hello-from-the-release'], { timeout: 30_000 });
    let output = '';
    // The grant reaches the gateway within a moment of the answer: retry until the port relays.
    await waitFor('an SSH session through the released gateway', async () => {
      output = (await ssh().catch(() => ({ stdout: '' }))).stdout;
      return output.trim() === 'hello-from-the-release';
    }, 60_000, 500);
    expect(gateway.stdout.concat(gateway.stderr).join('\n')).not.toMatch(/relay in JavaScript|native relay not/i);
  });
});
