import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { FakeBroker } from './fake-broker.ts';

/**
 * What the gateway benchmark's sections share (run.ts, routed.ts): child processes that are killed
 * with the run, their JSON answers, free ports, memory and CPU of processes, and the real gateway
 * process enrolled with a broker stand-in.
 */

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HOST = '127.0.0.1';
export const GRANT_PORTS = { start: 20000, end: 31999 };
/** The routed listeners' ports for a gateway that runs them (off when absent). */
export interface RoutedPorts {
  rdp: number;
  tls: number;
  ssh: number;
  https: number;
}

/** HAProxy's `global` and `defaults` with what was best on this machine class: splice, 128 KiB buffers. */
export function haproxyHead(threads: number): string[] {
  return [
    'global',
    // Two descriptors per connection and two per splice pipe must fit the 20,000 hard limit.
    '  maxconn 9900',
    '  maxpipes 40',
    `  nbthread ${threads}`,
    '  tune.bufsize 131072',
    'defaults',
    '  mode tcp',
    '  option splice-auto',
    '  timeout connect 5s',
    '  timeout client 1h',
    '  timeout server 1h',
  ];
}

/** A gateway's `process.memoryUsage()`, and the pages V8's young generation holds (`newSpace`), in bytes. */
export type GatewayMemory = { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; newSpace: number };

export type Child = ChildProcess & { lines: string[]; errLines: string[] };

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

export function start(cmd: string, args: string[], env: Record<string, string> = {}): Child {
  const c = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] }) as Child;
  c.lines = [];
  c.errLines = [];
  c.stderr!.on('data', (d) => c.errLines.push(...String(d).split('\n')));
  let buf = '';
  c.stdout!.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      c.lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  c.stderr!.on('data', (d) => process.env.BENCH_DEBUG && process.stderr.write(d));
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

export async function waitLine(c: ChildProcess & { lines: string[] }, what: string, ms = 60_000): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const line = c.lines.find((l) => l.startsWith('{'));
    if (line) {
      c.lines.splice(c.lines.indexOf(line), 1);
      return JSON.parse(line) as Record<string, unknown>;
    }
    if (c.exitCode !== null) throw new Error(`${what} exited (${c.exitCode})`);
    if (Date.now() > end) throw new Error(`${what}: no answer in ${ms} ms`);
    await sleep(20);
  }
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// `node --import tsx`, not the tsx command: that one runs the script in a child process, which a kill
// of the command leaves running (a leaked studio server would load the next run).
export const tsx = (file: string, ...args: string[]) => start(process.execPath, ['--import', 'tsx', path.join(ROOT, file), ...args]);
export const load = (mode: string, args: unknown) => tsx('bench/gateway/load.ts', mode, JSON.stringify(args));

export async function run(mode: string, args: unknown, what = mode): Promise<Record<string, unknown>> {
  const c = load(mode, args);
  const r = await waitLine(c, what, 300_000);
  c.kill();
  return r;
}

export function freePorts(n: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      new Promise<number>((resolve) => {
        const s = net.createServer();
        s.listen(0, HOST, () => {
          const { port } = s.address() as net.AddressInfo;
          s.close(() => resolve(port));
        });
      }),
    ),
  );
}

export function rssKiB(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return total;
}

/** The gateway's processes: the main one and its workers, if any. */
export function gatewayPids(main: number): number[] {
  const kids = spawnSync('pgrep', ['-P', String(main)], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean).map(Number);
  return [main, ...kids];
}

/** A process and all its descendants (tsx runs the script in a child process). */
export function treePids(pid: number): number[] {
  const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean).map(Number);
  return [pid, ...kids.flatMap(treePids)];
}

/** CPU seconds (user + system) these processes have used so far. */
export function cpuSeconds(pids: number[], reapedChildren = false): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
      // cutime, cstime (16 and 17): children that exited and were waited for (sshd's per-connection processes)
      if (reapedChildren) ticks += Number(f[13]) + Number(f[14]);
    } catch {
      // gone
    }
  }
  return ticks / 100;
}

/** Run a tool to completion without blocking this process (the broker stand-in must keep answering). */
export function exec(cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', () => {
      clearTimeout(t);
      resolve({ stdout, stderr });
    });
  });
}

export async function listening(ports: number[]): Promise<void> {
  const want = new Set(ports);
  for (let i = 0; i < 600; i++) {
    const out = execFileSync('ss', ['-Hltn'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    let n = 0;
    for (const line of out.split('\n')) {
      const m = /127\.0\.0\.1:(\d+)\s/.exec(line);
      if (m && want.has(Number(m[1]))) n++;
    }
    if (n >= want.size) return;
    await sleep(50);
  }
  throw new Error('granted ports did not open');
}


/** Grant ports are handed out in turn across every gateway of the run, so a port another one still holds is not reused. */
let nextPort = GRANT_PORTS.start;

/** A gateway process (`workers` relay processes) enrolled with its own broker stand-in. */
export async function startGateway(dir: string, workers: number, relayThreads?: number, routed?: RoutedPorts) {
  const broker = new FakeBroker();
  await broker.start();
  // The inspector (loopback, random port, in each worker too) lets the bench collect garbage before
  // it reads memory: V8 keeps what a burst of connections left behind until it needs the space.
  // `STAGEDOOR_BENCH_GATEWAY_PROFILE=<dir>`: a V8 CPU profile of the gateway's main process, written when it stops.
  const profile = process.env.STAGEDOOR_BENCH_GATEWAY_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.STAGEDOOR_BENCH_GATEWAY_PROFILE}`] : [];
  // `STAGEDOOR_BENCH_GATEWAY_NODE_ARGS="--max-semi-space-size=32"`: V8 options for the gateway only (an A/B of a runtime setting).
  profile.push(...(process.env.STAGEDOOR_BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean));
  const proc = start(process.execPath, [...profile, '--inspect=127.0.0.1:0', path.join(ROOT, 'apps/gateway/bin/stagedoor-gateway.js'), '--enroll', 'bench'], {
    STAGEDOOR_BROKER_URLS: broker.url,
    STAGEDOOR_GATEWAY_PORTS: `${GRANT_PORTS.start}-${GRANT_PORTS.end}`,
    STAGEDOOR_GATEWAY_LISTEN_HOST: HOST,
    STAGEDOOR_GATEWAY_DATA_DIR: fs.mkdtempSync(path.join(dir, 'gateway-')),
    STAGEDOOR_GATEWAY_LINGER_SECONDS: '1',
    // Off unless asked for (free ports then): the fixed default ports may be taken on the benchmark host.
    STAGEDOOR_GATEWAY_RDP_PORT: routed ? String(routed.rdp) : 'off',
    STAGEDOOR_GATEWAY_SSH_PORT: routed ? String(routed.ssh) : 'off',
    STAGEDOOR_GATEWAY_TLS_PORT: routed ? String(routed.tls) : 'off',
    STAGEDOOR_GATEWAY_HTTPS_PORT: routed ? String(routed.https) : 'off',
    STAGEDOOR_GATEWAY_WORKERS: String(workers),
    ...(relayThreads ? { STAGEDOOR_GATEWAY_RELAY_THREADS: String(relayThreads) } : {}),
    STAGEDOOR_LOG_LEVEL: 'warn',
  });
  await broker.welcomed();
  await sleep(300 * workers); // relay workers starting
  const grantPorts = (n: number) => {
    if (nextPort + n - 1 > GRANT_PORTS.end) nextPort = GRANT_PORTS.start;
    const ports = Array.from({ length: n }, (_, i) => nextPort + i);
    nextPort += n;
    return ports;
  };
  return {
    proc,
    broker,
    /** Full garbage collection in the gateway and its workers (through their inspectors). */
    collectGarbage: async () => {
      const urls = [...new Set(proc.errLines.flatMap((l) => /Debugger listening on (ws:\/\/\S+)/.exec(l)?.[1] ?? []))];
      await Promise.all(urls.map((u) => collect(u).catch(() => undefined)));
    },
    /** The main process's `process.memoryUsage()` (through its inspector): what of its RSS is JS heap, and what buffers. */
    memory: async (): Promise<GatewayMemory | null> => {
      const url = proc.errLines.flatMap((l) => /Debugger listening on (ws:\/\/\S+)/.exec(l)?.[1] ?? [])[0];
      return url ? evaluate(url, MEMORY_EXPRESSION).then((v) => JSON.parse(v) as GatewayMemory).catch(() => null) : null;
    },
    /** Grants on `n` fresh ports to `target`, once the gateway has opened them all. */
    granted: async (n: number, target: number): Promise<{ ports: number[]; ids: string[] }> => {
      const ports = grantPorts(n);
      const ids = broker.grant(ports, { host: HOST, port: target });
      await listening(ports).catch((err: Error) => {
        throw new Error(`${err.message}; gateway exit ${proc.exitCode}; log:\n${proc.lines.slice(-10).join('\n')}`);
      });
      return { ports, ids };
    },
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      await broker.close();
    },
  };
}

function collect(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('inspector timeout'));
    }, 20_000);
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })));
    ws.on('message', (d) => {
      if ((JSON.parse(String(d)) as { id?: number }).id !== 1) return;
      clearTimeout(timer);
      ws.close();
      resolve();
    });
    ws.on('error', reject);
  });
}

const MEMORY_EXPRESSION = `JSON.stringify({ ...process.memoryUsage(), newSpace: process.getBuiltinModule('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0 })`;

/** One expression evaluated in a process through its inspector; its value as a string. */
function evaluate(url: string, expression: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('inspector timeout'));
    }, 20_000);
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression, returnByValue: true } })));
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as { id?: number; result?: { result?: { value?: unknown } } };
      if (m.id !== 1) return;
      clearTimeout(timer);
      ws.close();
      resolve(String(m.result?.result?.value));
    });
    ws.on('error', reject);
  });
}
