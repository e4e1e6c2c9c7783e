import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { makeTestCa } from '../support/directory/tls.ts';
import { createPrivateNetwork, netnsUnavailable, type PrivateNetwork } from '../support/netns.ts';
import { startSshd, startXrdp, startXvfb, type SshFixture } from '../support/netns-servers.ts';
import { waitFor } from '../support/ports.ts';
import { STAGEDOOR_BIN, type Spawned } from '../support/processes.ts';

/**
 * Issue 14 end to end: the real broker, two real `stagedoor gateway` processes of one cluster, and
 * HAProxy in front of them as the network load balancer (`mode tcp`, `send-proxy-v2`, health checks
 * on the gateways' `GET /healthz`), all in the gateway namespace; real clients in the client
 * namespace reach real servers in the workstation namespace only on the balancer's fixed ports, with
 * the token the broker's connect answer gave them: xfreerdp by routing token, OpenSSH `ssh -J`,
 * openssl s_client by SNI, and `stagedoor connect --tunnel` over HTTPS.
 */
const unavailable = netnsUnavailable() ?? (fs.existsSync('/usr/sbin/haproxy') ? null : 'haproxy is not installed (npm run test:deps)');
if (unavailable) console.warn(`[gateway-cluster-routed] SKIPPED: ${unavailable}`);

const TLS_SERVER_PORT = 4433;
/** Each gateway's own listeners on the namespace's loopback, behind the balancer. */
const GATEWAYS = {
  a: { rdp: 13389, ssh: 12222, tls: 18443, https: 10443, ports: '30000-30009' },
  b: { rdp: 23389, ssh: 22222, tls: 28443, https: 20443, ports: '30010-30019' },
};
/** Fixed frontends that reach one gateway only, to show single use across the cluster. */
const ONLY = { a: 3391, b: 3392 };

describe.skipIf(unavailable !== null)('two gateways behind a network load balancer (HAProxy, PROXY v2): every routed mode, single use across the cluster, failover', () => {
  let net: PrivateNetwork;
  let broker: TestBroker;
  const gateways: Record<'a' | 'b', Spawned | null> = { a: null, b: null };
  let haproxy: Spawned;
  let ssh: SshFixture;
  let xDisplay: string;
  let caFile: string;
  let sshConfig: string;
  let admin: Awaited<ReturnType<typeof login>>;
  let ana: Awaited<ReturnType<typeof login>>;
  let poolId: string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-cluster-'));

  beforeAll(async () => {
    net = createPrivateNetwork();
    broker = await createTestBroker('pglite', { env: { STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1', STAGEDOOR_GATEWAY_STALE_SECONDS: '5', STAGEDOOR_SECRET_KEY: randomBytes(32).toString('base64') } });
    await broker.app.listen({ host: net.addr.host, port: 0 });
    const brokerUrl = `http://${net.addr.host}:${(broker.app.server.address() as AddressInfo).port}`;
    admin = await login(broker.app, 'admin', 'correct horse battery staple');
    const ok = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => {
      const r = await broker.app.inject({ method, url, headers: as(admin), payload: payload as object });
      if (r.statusCode >= 300) throw new Error(`${method} ${url} → ${r.statusCode} ${r.body}`);
      return r.json();
    };

    // One certificate for the cluster (behind one balancer every gateway must present the same one).
    const ca = makeTestCa(fs.mkdtempSync(path.join(dir, 'ca-')), { dns: ['gw.test', '*.gw.test'], ips: [net.addr.gatewayPublic] });
    caFile = ca.caFile;
    for (const name of ['a', 'b'] as const) {
      const g = GATEWAYS[name];
      // The record says what clients dial: the balancer's address and its fixed ports (the defaults).
      // Stated at enrolment (routedPortsSet): the gateways' own listeners sit behind the balancer.
      const { token } = await ok('POST', '/api/v1/gateways/enrollments', {
        cluster: 'default', name: `edge-${name}`, publicAddress: net.addr.gatewayPublic, sniDomain: 'gw.test', routedPorts: { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 },
      });
      gateways[name] = net.spawn(net.ns.gateway, process.execPath, [STAGEDOOR_BIN, 'gateway', '--enroll', token], {
        STAGEDOOR_BROKER_URLS: brokerUrl,
        STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER: 'true',
        STAGEDOOR_GATEWAY_NAME: `edge-${name}`,
        STAGEDOOR_GATEWAY_PORTS: g.ports,
        STAGEDOOR_GATEWAY_LISTEN_HOST: '127.0.0.1',
        STAGEDOOR_GATEWAY_RDP_PORT: String(g.rdp),
        STAGEDOOR_GATEWAY_SSH_PORT: String(g.ssh),
        STAGEDOOR_GATEWAY_TLS_PORT: String(g.tls),
        STAGEDOOR_GATEWAY_HTTPS_PORT: String(g.https),
        STAGEDOOR_GATEWAY_TLS_CERT: ca.certFile,
        STAGEDOOR_GATEWAY_TLS_KEY: ca.keyFile,
        STAGEDOOR_GATEWAY_PROXY_PROTOCOL: 'on',
        STAGEDOOR_GATEWAY_PROXY_SOURCES: '127.0.0.1',
        STAGEDOOR_GATEWAY_DATA_DIR: path.join(dir, `gateway-${name}`),
        STAGEDOOR_GATEWAY_RELAY: 'native',
        STAGEDOOR_LOG_LEVEL: 'info',
      });
    }
    const cfg = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(cfg, haproxyConfig(net.addr.gatewayPublic));
    haproxy = net.spawn(net.ns.gateway, '/usr/sbin/haproxy', ['-db', '-f', cfg]);

    const tlsServer = net.spawn(net.ns.workstation, 'openssl', ['s_server', '-accept', String(TLS_SERVER_PORT), '-cert', ca.certFile, '-key', ca.keyFile, '-www', '-quiet']);
    const [sshd, , xvfb] = await Promise.all([
      startSshd(net, fs.mkdtempSync(path.join(dir, 'ssh-'))),
      startXrdp(net, fs.mkdtempSync(path.join(dir, 'rdp-'))),
      startXvfb(net),
      waitFor('openssl s_server to listen', async () => {
        if (tlsServer.proc.exitCode !== null) throw new Error(`openssl s_server exited: ${tlsServer.stderr.join('\n')}`);
        return (await net.run(net.ns.workstation, 'ss', ['-Hltn', `sport = :${TLS_SERVER_PORT}`], { timeoutMs: 5000 })).stdout.includes(`:${TLS_SERVER_PORT}`);
      }, 30_000, 100),
      waitFor('both gateways to enrol, say hello with their routed listeners, and be healthy', async () => {
        for (const g of Object.values(gateways)) if (g!.proc.exitCode !== null) throw new Error(`a gateway exited: ${g!.stderr.join('\n')}`);
        if (haproxy.proc.exitCode !== null) throw new Error(`haproxy exited: ${haproxy.stderr.join('\n')}`);
        const page = await broker.services.gateways.list({}, 10, 0);
        const edge = page.items.filter((g) => g.cluster === 'default');
        return edge.length === 2 && edge.every((g) => g.health === 'healthy' && g.sshHostKey && g.tlsCertificateSha256);
      }, 90_000, 200),
    ]);
    ssh = sshd;
    xDisplay = xvfb.display;
    // The client's ssh config: the jump host (the balancer) pinned to the gateways' host keys from the
    // API — each gateway has its own, so a client behind the balancer pins both — and the key for the
    // workstation's sshd. ssh passes -F (not -o) on to the jump connection it makes for -J.
    const knownHosts = path.join(dir, 'known_hosts');
    const page = await broker.services.gateways.list({}, 10, 0);
    fs.writeFileSync(knownHosts, page.items.filter((g) => g.cluster === 'default').map((g) => `${net.addr.gatewayPublic} ${g.sshHostKey}`).join('\n') + '\n');
    sshConfig = path.join(dir, 'ssh_config');
    fs.writeFileSync(sshConfig, [`Host ${net.addr.gatewayPublic}`, `  UserKnownHostsFile ${knownHosts}`, '  StrictHostKeyChecking yes', 'Host *', `  IdentityFile ${ssh.clientKey}`, '  BatchMode yes', '  ConnectTimeout 10', '  LogLevel ERROR', ''].join('\n'));

    // A static host in the private subnet, a pool of it, and a plan whose protocols all go routed.
    const provider = await ok('POST', '/api/v1/providers', { kind: 'static', name: 'lab' });
    await ok('POST', `/api/v1/providers/${provider.id}/hosts`, { name: 'ws-01', address: net.addr.workstation, protocols: [{ protocol: 'rdp', port: 3389 }, { protocol: 'ssh', port: 22 }, { protocol: 'dcv', port: TLS_SERVER_PORT }], tags: { lab: 'yes' } });
    const pool = await ok('POST', '/api/v1/pools', { name: 'lab', providerId: provider.id, membership: { tags: { lab: ['yes'] } } });
    poolId = pool.id;
    await ok('POST', `/api/v1/pools/${pool.id}/reconcile`);
    const group = await ok('POST', '/api/v1/groups', { name: 'Lab' });
    const routed = { viaGateway: true, gatewayMode: 'routed' };
    const plan = await ok('POST', '/api/v1/protocol-plans', { name: 'routed', protocols: [{ protocol: 'rdp', ...routed, reconnectWindowSeconds: 0 }, { protocol: 'ssh', ...routed }, { protocol: 'dcv', ...routed }] });
    await ok('POST', '/api/v1/policies', { name: 'lab', groupIds: [group.id], pools: [{ poolId: pool.id }], protocolPlanId: plan.id });
    await ok('POST', '/api/v1/users', { username: 'ana', password: 'ana-password-1', groupIds: [group.id] });
    ana = await login(broker.app, 'ana', 'ana-password-1');
  });

  afterAll(async () => {
    for (const g of Object.values(gateways)) await g?.stop().catch(() => undefined);
    await haproxy?.stop().catch(() => undefined);
    net?.destroy();
    await broker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const logs = () => Object.entries(gateways).map(([n, g]) => `gateway ${n}: ${g?.stderr.slice(-15).join('\n')}\n${g?.stdout.slice(-15).join('\n')}`).join('\n') + `\nhaproxy: ${haproxy.stderr.slice(-10).join('\n')}`;

  /** Connect as the artist from the client namespace's address; the answer carries the token. */
  async function connect(protocol: 'rdp' | 'ssh' | 'dcv') {
    const res = await broker.app.inject({ method: 'POST', url: '/api/v1/connections', headers: as(ana), payload: { poolId, protocol }, remoteAddress: net.addr.client });
    expect(res.statusCode, res.body).toBe(201);
    const c = res.json();
    expect(c.instructions).toMatchObject({ protocol, viaGateway: true, gatewayMode: 'routed', host: net.addr.gatewayPublic });
    return c as { id: string; instructions: { token: string; port: number; command: string | null; file: string | null; knownHosts: string | null; tunnel: { url: string; token: string; certificateSha256: string | null } } };
  }

  async function release(id: string) {
    const r = await broker.app.inject({ method: 'DELETE', url: `/api/v1/connections/${id}`, headers: as(ana) });
    expect(r.statusCode, r.body).toBe(204);
  }

  async function refusalAudited(...reasons: string[]) {
    let seen: unknown[] = [];
    await waitFor(`a ${reasons.join(' or ')} refusal in the audit log`, async () => {
      const page = await broker.services.audit.list({ action: 'gateway.connection_refused' }, 50, 0);
      seen = page.items.map((i) => i.reason);
      return page.items.some((i) => reasons.includes(i.reason as string));
    }, 30_000, 100).catch((err: Error) => {
      throw new Error(`${err.message}; refusals: ${JSON.stringify(seen)}\n${logs()}`);
    });
  }

  /**
   * The grant reaches the gateways over their channels moments after the answer; a client that dials
   * before it lands is refused `no-grant`, which uses nothing. Retry a client until it succeeds.
   */
  async function succeeds(what: string, run: () => Promise<{ code: number | null; stdout: string; stderr: string }>, ok: (r: { code: number | null; stdout: string }) => boolean) {
    let last: { code: number | null; stdout: string; stderr: string } | null = null;
    await waitFor(what, async () => ok((last = await run())), 60_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}: ${last?.stdout}\n${last?.stderr}\n${logs()}`);
    });
    return last!;
  }

  const xfreerdp = (port: number, token: string | null) =>
    net.run(net.ns.client, 'xfreerdp', [`/v:${net.addr.gatewayPublic}:${port}`, ...(token ? [`/load-balance-info:${token}`] : []), '+auth-only', '/u:artist', '/p:not-checked', '/cert:ignore', '/log-level:WARN'], { env: { DISPLAY: xDisplay, HOME: dir }, timeoutMs: 30_000 });

  it('RDP by routing token through the balancer; the same single-use grant through the other gateway is refused', async () => {
    const c = await connect('rdp');
    expect(c.instructions.file).toContain(`loadbalanceinfo:s:${c.instructions.token}`);
    expect(c.instructions.file).toContain(`full address:s:${net.addr.gatewayPublic}:3389`);
    // Through gateway A only: the session runs (xfreerdp +auth-only completes the sequence and ends).
    await succeeds('xfreerdp through gateway A', () => xfreerdp(ONLY.a, c.instructions.token), (r) => r.code === 0);
    // The plan allows no reconnect (window 0): the broker refuses the claim, whichever gateway asks —
    // `used` once gateway A's report of the session's end is in, `in-use` if B asks before it is. B may
    // not have the grant yet (it reaches each gateway over its own channel; a CI run on a loaded
    // machine saw B answer `no-grant`): dial B again until the broker's refusal is audited; B must
    // never admit it.
    let admittedByB = false;
    await waitFor('gateway B to refuse the used grant', async () => {
      if ((await xfreerdp(ONLY.b, c.instructions.token)).code === 0) admittedByB = true;
      const page = await broker.services.audit.list({ action: 'gateway.connection_refused' }, 50, 0);
      return admittedByB || page.items.some((i) => i.reason === 'used' || i.reason === 'in-use');
    }, 60_000, 200).catch(async (err: Error) => {
      const page = await broker.services.audit.list({ action: 'gateway.connection_refused' }, 50, 0);
      throw new Error(`${err.message}; refusals audited: ${JSON.stringify(page.items.map((i) => i.reason))}\n${logs()}`);
    });
    expect(admittedByB).toBe(false);
    await refusalAudited('used', 'in-use');
    // No token at all: refused by the listener, before any grant.
    expect((await xfreerdp(3389, null)).code).not.toBe(0);
    await refusalAudited('no-token');
    await release(c.id);
  });

  it('SSH: ssh -J <token>@balancer runs a command on the workstation, pinned to the gateways\' host key', async () => {
    const c = await connect('ssh');
    expect(c.instructions.command).toBe(`ssh -J ${c.instructions.token}@${net.addr.gatewayPublic}:22 ana@${net.addr.workstation}`);
    const run = () => net.run(net.ns.client, 'ssh', ['-F', sshConfig, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-J', `${c.instructions.token}@${net.addr.gatewayPublic}:22`, `root@${net.addr.workstation}`, 'echo hello from the workstation'], { timeoutMs: 30_000 });
    await succeeds('ssh -J through the balancer', run, (r) => r.stdout.trim() === 'hello from the workstation');
    await release(c.id);
  });

  it('TLS by SNI: openssl s_client reaches the workstation\'s TLS server as <token>.gw.test and verifies it end to end', async () => {
    const c = await connect('dcv');
    const host = `${c.instructions.token}.gw.test`;
    expect(c.instructions.file).toContain(`host=${host}`);
    const run = () => net.run(net.ns.client, 'openssl', ['s_client', '-connect', `${net.addr.gatewayPublic}:8443`, '-servername', host, '-CAfile', caFile, '-verify_return_error', '-verify_hostname', host, '-ign_eof'], { input: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 30_000 });
    await succeeds('openssl s_client by SNI', run, (r) => r.stdout.includes('s_server'));
    await release(c.id);
  });

  it('HTTPS tunnel: stagedoor connect --tunnel opens a local port through the balancer; ssh runs through it', async () => {
    const c = await connect('ssh');
    const t = c.instructions.tunnel;
    expect(t.url).toBe(`wss://${net.addr.gatewayPublic}:443/tunnel`);
    expect(t.certificateSha256).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    const cli = net.spawn(net.ns.client, process.execPath, [STAGEDOOR_BIN, 'connect', '--tunnel', '--tunnel-url', t.url, '--tunnel-token', t.token, '--certificate-sha256', t.certificateSha256!, '--local-port', '50022']);
    try {
      await waitFor('the tunnel to listen', () => {
        if (cli.proc.exitCode !== null) throw new Error(`stagedoor connect --tunnel exited: ${cli.stderr.join('\n')}`);
        return cli.stdout.some((l) => l.includes('is listening on 127.0.0.1:50022'));
      }, 30_000, 100);
      const run = () => net.run(net.ns.client, 'ssh', ['-p', '50022', '-i', ssh.clientKey, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', 'echo through the tunnel'], { timeoutMs: 30_000 });
      await succeeds('ssh through stagedoor connect --tunnel', run, (r) => r.stdout.trim() === 'through the tunnel');
      // The tunnel's native mode (ADR 0032) through the balancer's PROXY v2, not the WebSocket fallback.
      expect(cli.stderr.join('\n')).toContain('tunnel open (native TLS)');
    } finally {
      await cli.stop('SIGTERM');
    }
    await release(c.id);
  });

  it('one gateway killed: the balancer\'s health check takes it out, and new connections succeed through the other', async () => {
    await gateways.a!.stop('SIGKILL');
    gateways.a = null;
    for (let i = 0; i < 3; i++) {
      const c = await connect('ssh').catch(async (err: Error) => {
        throw new Error(`${err.message}\n${logs()}`);
      });
      const run = () => net.run(net.ns.client, 'ssh', ['-F', sshConfig, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-J', `${c.instructions.token}@${net.addr.gatewayPublic}:22`, `root@${net.addr.workstation}`, 'echo still served'], { timeoutMs: 30_000 });
      await succeeds('ssh -J through the remaining gateway', run, (r) => r.stdout.trim() === 'still served');
      await release(c.id);
    }
  });
});

/** HAProxy as the network load balancer: TCP frontends on the fixed ports, PROXY v2 to both gateways. */
function haproxyConfig(publicAddress: string): string {
  const a = GATEWAYS.a;
  const b = GATEWAYS.b;
  // Health: the gateway's HTTPS listener answers /healthz 200 only while its broker channel is up.
  const check = (https: number) => `check port ${https} check-ssl verify none check-send-proxy inter 500 fall 1 rise 1`;
  const backend = (name: string, ports: [number, number] | [number]) =>
    [
      `backend ${name}`,
      '  mode tcp',
      '  option httpchk GET /healthz',
      ...(ports.length === 2 || name.endsWith('-a') ? [`  server a 127.0.0.1:${ports[0]} send-proxy-v2 ${check(a.https)}`] : []),
      ...(ports.length === 2 ? [`  server b 127.0.0.1:${ports[1]} send-proxy-v2 ${check(b.https)}`] : name.endsWith('-b') ? [`  server b 127.0.0.1:${ports[0]} send-proxy-v2 ${check(b.https)}`] : []),
    ].join('\n');
  const frontend = (name: string, port: number, to: string) => [`frontend ${name}`, `  bind ${publicAddress}:${port}`, '  mode tcp', `  default_backend ${to}`].join('\n');
  return [
    'global',
    '  maxconn 1000',
    'defaults',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  retries 2',
    '  option redispatch',
    frontend('rdp', 3389, 'rdp'),
    backend('rdp', [a.rdp, b.rdp]),
    frontend('rdp-only-a', ONLY.a, 'rdp-only-a'),
    backend('rdp-only-a', [a.rdp]),
    frontend('rdp-only-b', ONLY.b, 'rdp-only-b'),
    backend('rdp-only-b', [b.rdp]),
    frontend('ssh', 22, 'ssh'),
    backend('ssh', [a.ssh, b.ssh]),
    frontend('tls', 8443, 'tls'),
    backend('tls', [a.tls, b.tls]),
    frontend('https', 443, 'https'),
    backend('https', [a.https, b.https]),
    '',
  ].join('\n');
}
