import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerNodes, type BrokerNode } from '../support/broker-nodes.ts';
import { createPostgresDatabase } from '../support/database.ts';
import { fetchInject, httpLogin } from '../support/http.ts';
import { freePort, waitFor } from '../support/ports.ts';
import { spawnProcess, spawnStagedoor, type Spawned } from '../support/processes.ts';
import { as } from '../support/session.ts';

const PASSWORD = 'linux-agent-password';
const USER = 'sd-agent-test';
const UTMP = '/var/run/utmp';
const IDLE_SECONDS = 3;
/** glibc's x86-64/aarch64 utmp record, and where its user name is (apps/agent/src/sources/linux.ts). */
const UTMP_RECORD = 384;
const UTMP_USER = { at: 44, length: 32 };

/**
 * The agent reports the machine's primary session, and utmp is the machine's: other test files log
 * other users in and out at the same time (the browser SSH terminal's sshd user, the xrdp session's
 * user), which once turned this test's idle → active into a logout and another user's login. So the
 * agent reads a copy of utmp with this test's user's records alone (`--utmp`), refreshed atomically.
 */
function copyOwnRecords(to: string): void {
  const all = fs.existsSync(UTMP) ? fs.readFileSync(UTMP) : Buffer.alloc(0);
  const mine: Buffer[] = [];
  for (let at = 0; at + UTMP_RECORD <= all.length; at += UTMP_RECORD) {
    const user = all.subarray(at + UTMP_USER.at, at + UTMP_USER.at + UTMP_USER.length).toString('latin1').replace(/\0.*$/s, '');
    if (user === USER) mine.push(all.subarray(at, at + UTMP_RECORD));
  }
  fs.writeFileSync(`${to}.tmp`, Buffer.concat(mine));
  fs.renameSync(`${to}.tmp`, to);
}

// sshd and ssh are in .ci/packages: a machine without them fails the run's first check, not here.
const canRun = process.getuid?.() === 0;
if (!canRun) console.warn('[linux-agent] SKIPPED: the test adds a user and starts sshd, which needs root; run the suite as root, as CI does');

/**
 * The real Linux agent (`stagedoor agent`, utmp source: this machine runs no systemd) against a
 * real broker. A test user logs in through a real OpenSSH `sshd` with `ssh -tt`, so sshd writes
 * the utmp entry and owns a pty; the agent reports the login, then — nobody types — idle from the
 * tty's access time, then active when the user types, then the logout when the session ends.
 * (utmp is the machine's: the agent reads a copy with this test's user alone, see copyOwnRecords.)
 */
describe.skipIf(!canRun)('the Linux agent reports a real user session [utmp + tty idle]', () => {
  let node: BrokerNode;
  let dir: string;
  let sshd: Spawned;
  let sshPort: number;
  let agent: Spawned | undefined;
  let sshClient: ChildProcess | undefined;
  let createdUtmp = false;
  let copier: NodeJS.Timeout | undefined;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are checked by the caller
  let call: (method: string, url: string, payload?: unknown) => Promise<any>;
  let workstationId: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-agent-'));
    // sshd records logins in utmp only when the file exists (glibc never creates it).
    if (!fs.existsSync(UTMP)) {
      fs.writeFileSync(UTMP, '', { mode: 0o664 });
      createdUtmp = true;
    }
    if (spawnSync('id', [USER]).status !== 0) execFileSync('useradd', ['-m', '-s', '/bin/sh', USER]);
    execFileSync('usermod', ['-p', '*', USER]); // no password, but not locked: key login works
    fs.mkdirSync('/run/sshd', { recursive: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'client_key')]);
    fs.copyFileSync(path.join(dir, 'client_key.pub'), path.join(dir, 'authorized_keys'));
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(path.join(dir, 'authorized_keys'), 0o644);
    sshPort = await freePort();
    fs.writeFileSync(
      path.join(dir, 'sshd_config'),
      [`Port ${sshPort}`, 'ListenAddress 127.0.0.1', `HostKey ${dir}/host_key`, `PidFile ${dir}/sshd.pid`, `AuthorizedKeysFile ${dir}/authorized_keys`, 'StrictModes no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'UseDNS no', 'PrintMotd no', ''].join('\n'),
    );
    sshd = spawnProcess('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], {});
    await waitFor('sshd listening', () => sshd.stderr.join('\n').includes('Server listening'), 30_000, 50);

    node = (await startBrokerNodes(['agent-broker'], { DATABASE_URL: await createPostgresDatabase(), STAGEDOOR_ADMIN_PASSWORD: PASSWORD, STAGEDOOR_LOG_LEVEL: 'warn' }))[0]!;
    const admin = await httpLogin(node.base, 'admin', PASSWORD);
    const inject = fetchInject(node.base);
    call = async (method, url, payload) => {
      const res = await inject({ method, url, headers: as(admin), payload });
      if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
      return res.json();
    };
    // This machine as an on-prem (static) workstation, with an agent token from the admin API.
    const provider = await call('POST', '/api/v1/providers', { kind: 'static', name: 'on-prem' });
    workstationId = (await call('POST', `/api/v1/providers/${provider.id}/hosts`, { name: os.hostname().slice(0, 60) || 'this-host', address: '127.0.0.1', protocols: [{ protocol: 'ssh' }] })).id;
  });

  afterAll(async () => {
    sshClient?.kill('SIGKILL');
    clearInterval(copier);
    await agent?.stop('SIGTERM');
    await node?.proc.stop('SIGKILL');
    await sshd?.stop('SIGTERM');
    if (createdUtmp) fs.rmSync(UTMP, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('login, idle, active and logout of an ssh session reach the broker', async () => {
    const { token } = await call('POST', `/api/v1/workstations/${workstationId}/agent-token`);
    const ownUtmp = path.join(dir, 'utmp');
    copyOwnRecords(ownUtmp);
    copier = setInterval(() => copyOwnRecords(ownUtmp), 100);
    agent = spawnStagedoor(['agent', '--broker', node.base, '--poll', '0.5', '--idle', String(IDLE_SECONDS), '--source', 'utmp', '--utmp', ownUtmp, '--ignore-users', 'root'], { STAGEDOOR_AGENT_TOKEN: token });
    const ws = () => call('GET', `/api/v1/workstations/${workstationId}`);
    await waitFor('the agent heartbeat', async () => (await ws()).agentVersion !== null, 30_000, 200);
    expect((await ws()).agentSessionState).toBe('none');
    // The real agent's reports are what makes the machine healthy, and the API says so (docs/health.md).
    expect(await ws()).toMatchObject({ health: 'healthy', healthSource: 'agent', healthCheckedAt: expect.any(String) });

    // The user logs in: a real pty, a real utmp entry. `cat` reads what they type, so typing touches the tty.
    // (Its own spawn: the helper's processes have no stdin, and an ssh -tt whose stdin ends logs out.)
    const ssh = spawn('ssh', ['-tt', '-i', path.join(dir, 'client_key'), '-p', String(sshPort), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `${USER}@127.0.0.1`, 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
    sshClient = ssh;
    await waitFor('the login to be reported', async () => (await ws()).agentSessionState !== 'none', 30_000, 200);
    expect(await ws()).toMatchObject({ agentSessionUser: USER });

    // Nobody types: the tty's access time ages past the idle threshold.
    await waitFor('the idle period to be reported', async () => (await ws()).agentSessionState === 'idle', 30_000, 200);
    const audit = (await call('GET', `/api/v1/audit?targetId=${workstationId}&limit=50`)).items as { action: string; details: { user?: string; idleSeconds?: number } }[];
    const login = audit.find((a) => a.action === 'workstation.session_login');
    const idle = audit.find((a) => a.action === 'workstation.session_idle');
    expect(login?.details.user).toBe(USER);
    expect(idle?.details.user).toBe(USER);
    expect(idle!.details.idleSeconds).toBeGreaterThanOrEqual(IDLE_SECONDS);

    // The user types (the kernel refreshes a tty's access time in 8-second steps): active again.
    await waitFor('activity to be reported', async () => {
      ssh.stdin!.write('some typing\n');
      return (await ws()).agentSessionState === 'active';
    }, 30_000, 500);

    // The session ends: sshd marks the utmp entry dead, the agent reports the logout.
    const gone = new Promise((r) => ssh.once('exit', r));
    ssh.kill('SIGTERM');
    await gone;
    await waitFor('the logout to be reported', async () => (await ws()).agentSessionState === 'none', 30_000, 200);
    const after = (await call('GET', `/api/v1/audit?targetId=${workstationId}&limit=50`)).items as { action: string }[];
    expect(after.map((a) => a.action)).toEqual(expect.arrayContaining(['workstation.session_login', 'workstation.session_idle', 'workstation.session_active', 'workstation.session_logout', 'workstation.agent_token']));
  });
});
