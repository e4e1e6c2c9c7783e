import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { spawnProcess, type Spawned } from './processes.ts';

/**
 * A private network made of Linux network namespaces, for the gateway system tests:
 *
 *   host (broker, this process) ── 198.18.X.1/30 ─ veth ─ 198.18.X.2/30 ── gateway ns
 *   client ns  198.19.X.10, .11/24 ─ veth ─ 198.19.X.1/24 (public side) ── gateway ns
 *   workstation ns  198.18.X.66/26 ─ veth ─ 198.18.X.65/26 (private side) ── gateway ns
 *
 * Addresses come from 198.18.0.0/15, the range set aside for network benchmark tests (RFC 2544):
 * never routed anywhere, and nothing here leaves these namespaces. The gateway namespace does not
 * forward (ip_forward=0), so the client reaches the workstation only through the gateway process.
 * Everything is created under names carrying this process id and deleted by `destroy()`, by an
 * exit hook if a test dies, and by the next run if this process was killed outright.
 */

const PREFIX = 'sdt';

export interface PrivateNetwork {
  ns: { client: string; gateway: string; workstation: string };
  addr: { host: string; gatewayHost: string; gatewayPublic: string; client: string; client2: string; gatewayPrivate: string; workstation: string; privateSubnet: string };
  /** Start a long-running command in a namespace (killed with the test process at the latest). */
  spawn(ns: string, command: string, args: string[], env?: Record<string, string | undefined>): Spawned;
  /** Run a command in a namespace to completion, with a hard timeout. */
  run(ns: string, command: string, args: string[], opts?: { env?: Record<string, string | undefined>; timeoutMs?: number; input?: string }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /**
   * Cut (`down`) or restore (`up`) the gateway's link to the host — its control channel to the
   * broker — and nothing else: clients and workstations keep their links. Down, neither side gets
   * a reset or a FIN; packets just stop, as in a real partition.
   */
  hostLink(state: 'up' | 'down'): void;
  destroy(): void;
}

/** Why the namespace tests cannot run here, or null when they can (root and a working `ip netns`). */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network-namespace tests need root (ip netns); run the suite as root, as CI does';
  const probe = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return `\`ip netns\` does not work here (${probe.error?.message ?? probe.stderr.trim()}); install iproute2`;
  return null;
}

let counter = 0;

export function createPrivateNetwork(): PrivateNetwork {
  sweepStale();
  const tag = `${PREFIX}${process.pid.toString(36)}${(counter++).toString(36)}`;
  const ns = { client: `${tag}-cl`, gateway: `${tag}-gw`, workstation: `${tag}-ws` };
  const x = freeOctet();
  const addr = {
    host: `198.18.${x}.1`,
    gatewayHost: `198.18.${x}.2`,
    gatewayPublic: `198.19.${x}.1`,
    client: `198.19.${x}.10`,
    client2: `198.19.${x}.11`,
    gatewayPrivate: `198.18.${x}.65`,
    workstation: `198.18.${x}.66`,
    privateSubnet: `198.18.${x}.64/26`,
  };
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const inNs = (n: string, ...args: string[]) => ip('-n', n, ...args);
  const hostVeth = `${tag}h`.slice(0, 15);
  const { spawn, destroy, build } = lifecycle(Object.values(ns), hostVeth);

  build('test network', () => {
    for (const n of Object.values(ns)) {
      ip('netns', 'add', n);
      inNs(n, 'link', 'set', 'lo', 'up');
    }
    // host ↔ gateway: the control channel to the broker
    ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'tohost', 'netns', ns.gateway);
    ip('addr', 'add', `${addr.host}/30`, 'dev', hostVeth);
    ip('link', 'set', hostVeth, 'up');
    inNs(ns.gateway, 'addr', 'add', `${addr.gatewayHost}/30`, 'dev', 'tohost');
    inNs(ns.gateway, 'link', 'set', 'tohost', 'up');
    // client ↔ gateway (public side)
    inNs(ns.gateway, 'link', 'add', 'public', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.client);
    inNs(ns.gateway, 'addr', 'add', `${addr.gatewayPublic}/24`, 'dev', 'public');
    inNs(ns.gateway, 'link', 'set', 'public', 'up');
    inNs(ns.client, 'addr', 'add', `${addr.client}/24`, 'dev', 'eth0');
    inNs(ns.client, 'addr', 'add', `${addr.client2}/24`, 'dev', 'eth0');
    inNs(ns.client, 'link', 'set', 'eth0', 'up');
    // A route to the private subnet via the gateway: only the absence of forwarding keeps the client out.
    inNs(ns.client, 'route', 'add', addr.privateSubnet, 'via', addr.gatewayPublic);
    // workstation ↔ gateway (private side)
    inNs(ns.gateway, 'link', 'add', 'private', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.workstation);
    inNs(ns.gateway, 'addr', 'add', `${addr.gatewayPrivate}/26`, 'dev', 'private');
    inNs(ns.gateway, 'link', 'set', 'private', 'up');
    inNs(ns.workstation, 'addr', 'add', `${addr.workstation}/26`, 'dev', 'eth0');
    inNs(ns.workstation, 'link', 'set', 'eth0', 'up');
    inNs(ns.workstation, 'route', 'add', 'default', 'via', addr.gatewayPrivate);
    execFileSync('ip', ['netns', 'exec', ns.gateway, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']);
  });

  return {
    ns,
    addr,
    spawn,
    run: runIn,
    hostLink: (state) => inNs(ns.gateway, 'link', 'set', 'tohost', state),
    destroy,
  };
}

/** Run a command in a namespace to completion, with a hard timeout. */
function runIn(n: string, command: string, args: string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number; input?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', n, 'timeout', '-k', '2', String(Math.ceil((opts.timeoutMs ?? 30_000) / 1000)), command, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.on('error', () => undefined); // a command that exits at once closes its stdin
    child.stdin.end(opts.input ?? '');
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * One namespace joined to the host by a veth pair (host 198.18.X.1/30, peer 198.18.X.2/30): for a
 * server whose fixed ports or loopback addresses must not meet the host's or another test's (xrdp
 * finds xrdp-sesman only at 127.0.0.1 and the port of /etc/xrdp/sesman.ini). The peer's own
 * loopback is private to it; this process reaches the peer at `addr.peer`. Named like the private
 * network's namespaces, so a killed run's leftovers are swept the same way.
 */
export interface PeerNamespace {
  ns: string;
  addr: { host: string; peer: string };
  spawn: PrivateNetwork['spawn'];
  run: PrivateNetwork['run'];
  destroy(): void;
}

export function createPeerNamespace(): PeerNamespace {
  sweepStale();
  const tag = `${PREFIX}${process.pid.toString(36)}${(counter++).toString(36)}`;
  const ns = `${tag}-ws`;
  const x = freeOctet();
  const addr = { host: `198.18.${x}.1`, peer: `198.18.${x}.2` };
  const hostVeth = `${tag}h`.slice(0, 15);
  const { spawn, destroy, build } = lifecycle([ns], hostVeth);
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  build('test namespace', () => {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `${addr.host}/30`, 'dev', hostVeth);
    ip('link', 'set', hostVeth, 'up');
    ip('-n', ns, 'addr', 'add', `${addr.peer}/30`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
  });
  return {
    ns,
    addr,
    spawn,
    run: runIn,
    destroy,
  };
}

/**
 * What both kinds of test network share: processes spawned in a namespace, and one clean-up (also at
 * exit) that kills them and everything else in the namespaces (a desktop session's X server, its
 * channel server…), deletes the namespaces and the host's veth. `build` runs the set-up and cleans up
 * if a step fails.
 */
function lifecycle(namespaces: string[], hostVeth: string) {
  const spawned: Spawned[] = [];
  let destroyed = false;
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    for (const s of spawned) {
      try {
        process.kill(-s.proc.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const n of namespaces) killAndDelete(n);
    spawnSync('ip', ['link', 'del', hostVeth], { stdio: 'ignore' });
    process.off('exit', destroy);
  };
  process.on('exit', destroy);
  const spawn: PrivateNetwork['spawn'] = (n, command, args, env = {}) => {
    const s = spawnProcess('ip', ['netns', 'exec', n, command, ...args], env);
    spawned.push(s);
    return s;
  };
  const build = (what: string, steps: () => void) => {
    try {
      steps();
    } catch (err) {
      destroy();
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new Error(`creating the ${what} failed: ${(err as Error).message} ${stderr}`, { cause: err });
    }
  };
  return { spawn, destroy, build };
}

function killAndDelete(n: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout?.split(/\s+/).filter(Boolean) ?? [];
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone
    }
  }
  spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}

/** Namespaces left by a test process that no longer exists (killed before its exit hook ran). */
function sweepStale(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}([0-9a-z]+?)[0-9a-z]-(cl|gw|ws)$`).exec(name);
    if (!m) continue;
    const pid = parseInt(name.slice(PREFIX.length, name.indexOf('-') - 1), 36);
    if (pid === process.pid || isAlive(pid)) continue;
    killAndDelete(name);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A third octet whose 198.18.X / 198.19.X subnets no interface on the host uses yet. */
function freeOctet(): number {
  const used = fs.existsSync('/proc/net/fib_trie') ? execFileSync('ip', ['-4', 'addr'], { encoding: 'utf8' }) : '';
  for (let i = 0; i < 100; i++) {
    const x = 1 + Math.floor(Math.random() * 254);
    if (!used.includes(`198.18.${x}.`) && !used.includes(`198.19.${x}.`)) return x;
  }
  throw new Error('no free 198.18.X subnet for the test network');
}
