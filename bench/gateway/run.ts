import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { FakeBroker } from './fake-broker.ts';

/**
 * The gateway next to HAProxy `mode tcp` and a direct connection, on loopback, in one run:
 * iperf3 single-stream / 8-stream / reverse throughput, 64-byte round trip, new relayed connections
 * per second (every one a grant check), RSS per idle relayed connection, and the studio load.
 * `npm run bench:gateway` (raises the open-file limit first). Not a test: it prints figures.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const HOST = '127.0.0.1';
const GRANT_PORTS = { start: 20000, end: 31999 };
const quick = process.argv.includes('--quick');
/** `--only=idle,studio`: run just those sections (throughput, rtt, connrate, idle, studio). */
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const runs = (section: string) => !only || only.includes(section);
const SECONDS = quick ? 3 : 5;
const CONNRATE_COUNT = quick ? 2000 : 4000;
const IDLE_COUNTS = quick ? [2000] : [2000, 10000];
const STUDIO = { sessions: 200, mbps: 25, tickMs: 10, eventMs: 10, seconds: quick ? 5 : 10 };
const workers = Number(process.env.STAGEDOOR_GATEWAY_WORKERS ?? '1');

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

function start(cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess & { lines: string[]; errLines: string[] } {
  const c = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] }) as ChildProcess & { lines: string[]; errLines: string[] };
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

async function waitLine(c: ChildProcess & { lines: string[] }, what: string, ms = 60_000): Promise<Record<string, unknown>> {
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tsx = (file: string, ...args: string[]) => start(TSX, [path.join(ROOT, file), ...args]);
const load = (mode: string, args: unknown) => tsx('bench/gateway/load.ts', mode, JSON.stringify(args));

async function run(mode: string, args: unknown, what = mode): Promise<Record<string, unknown>> {
  const c = load(mode, args);
  const r = await waitLine(c, what, 300_000);
  c.kill();
  return r;
}

function freePorts(n: number): Promise<number[]> {
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

function rssKiB(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return total;
}

/** The gateway's processes: the main one and its workers, if any. */
function gatewayPids(main: number): number[] {
  const kids = spawnSync('pgrep', ['-P', String(main)], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean).map(Number);
  return [main, ...kids];
}

/** Run a tool to completion without blocking this process (the broker stand-in must keep answering). */
function exec(cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
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

async function iperf(port: number, extra: string[], attempt = 0): Promise<number> {
  await sleep(500); // iperf3's server takes a moment to be ready for the next test
  const r = await exec('iperf3', ['-c', HOST, '-p', String(port), '-t', String(SECONDS), '-O', '1', '-J', ...extra], (SECONDS + 30) * 1000);
  const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
  if (!j.end?.sum_received && /busy/.test(j.error ?? '') && attempt < 10) return iperf(port, extra, attempt + 1);
  if (!j.end?.sum_received) throw new Error(`iperf3 failed: ${j.error ?? r.stderr}`);
  return j.end.sum_received.bits_per_second / 1e9;
}

async function sockperf(port: number): Promise<{ p50Us: number; p99Us: number }> {
  const r = await exec('sockperf', ['ping-pong', '-i', HOST, '-p', String(port), '--tcp', '-m', '64', '-t', String(SECONDS), '--full-rtt'], (SECONDS + 30) * 1000);
  const pct = (p: string) => Number(new RegExp(`percentile ${p} =\\s+([\\d.]+)`).exec(r.stdout)?.[1]);
  return { p50Us: pct('50.000'), p99Us: pct('99.000') };
}

async function listening(ports: number[]): Promise<void> {
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

async function main(): Promise<void> {
  for (const tool of ['iperf3', 'haproxy']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: apt-get install -y ${tool}`);
  }
  const haveSockperf = spawnSync('sh', ['-c', 'command -v sockperf']).status === 0;
  const fdLimit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  console.log(`gateway benchmark on ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, open-file limit ${fdLimit}, gateway workers ${workers}${quick ? ', quick' : ''}`);
  if (fdLimit < 19_000) console.log('  note: run through `npm run bench:gateway`, which raises the open-file limit; the 10,000-connection figures need it');

  // Targets ("workstations"): iperf3, sockperf (or an echo), echo and studio servers — one port per path.
  const all = await freePorts(14);
  const [iperfPort, rrPort, harnessPort] = [all[0]!, all[1]!, all[2]!];
  const rest = all.slice(3);
  const echoPorts = { direct: rest[0]!, haproxy: rest[1]!, gateway: rest[2]! };
  const studioPorts = { direct: rest[3]!, haproxy: rest[4]!, gateway: rest[5]! };
  const fe = { iperf: rest[6]!, rr: rest[7]!, echo: rest[8]!, studio: rest[9]! };
  start('iperf3', ['-s', '-B', HOST, '-p', String(iperfPort)]);
  if (haveSockperf) start('sockperf', ['server', '-i', HOST, '-p', String(rrPort), '--tcp']);
  const echo = load('echo-server', { ports: [...Object.values(echoPorts), ...(haveSockperf ? [] : [rrPort])] });
  await waitLine(echo, 'echo server');
  const studio = load('studio-server', { ports: Object.values(studioPorts), mbps: STUDIO.mbps, tickMs: STUDIO.tickMs });
  await waitLine(studio, 'studio server');

  // HAProxy with the settings that were best on this machine class: splice, 128 KiB buffers, one thread.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-bench-'));
  const cfg = path.join(dir, 'haproxy.cfg');
  const fronts = [
    ['iperf', fe.iperf, iperfPort],
    ['rr', fe.rr, rrPort],
    ['echo', fe.echo, echoPorts.haproxy],
    ['studio', fe.studio, studioPorts.haproxy],
  ] as const;
  fs.writeFileSync(
    cfg,
    [
      'global',
      // Two descriptors per connection and two per splice pipe must fit the 20,000 hard limit.
      '  maxconn 9900',
      '  maxpipes 40',
      '  nbthread 1',
      '  tune.bufsize 131072',
      'defaults',
      '  mode tcp',
      '  option splice-auto',
      '  timeout connect 5s',
      '  timeout client 1h',
      '  timeout server 1h',
      ...fronts.flatMap(([name, port, target]) => [`listen ${name}`, `  bind ${HOST}:${port}`, '  maxconn 9900', `  server s1 ${HOST}:${target}`]),
      '',
    ].join('\n'),
  );
  const haproxy = start('haproxy', ['-db', '-f', cfg]);
  await listening(fronts.map(([, port]) => port));

  // The gateway: the real process, enrolled with a broker stand-in that speaks the control channel.
  const gw = await startGateway(dir, workers);
  const harness = tsx('bench/gateway/relay-harness.ts', String(harnessPort), String(iperfPort));
  await waitLine(harness, 'relay harness');
  const granted = gw.granted;

  const results: Record<string, Record<string, number>> = { direct: {}, haproxy: {}, gateway: {} };
  const paths = ['direct', 'haproxy', 'gateway'] as const;
  const note = (line: string) => console.log(`  … ${line}`);

  // 1. Throughput (iperf3); the gateway's byte path is measured through the relay harness (see there).
  const iperfTo = { direct: iperfPort, haproxy: fe.iperf, gateway: harnessPort };
  for (const p of runs('throughput') ? paths : []) {
    results[p]!.gbps1 = await iperf(iperfTo[p], []);
    results[p]!.gbps8 = await iperf(iperfTo[p], ['-P', '8']);
    results[p]!.gbps1Reverse = await iperf(iperfTo[p], ['-R']);
    note(`throughput ${p}: ${results[p]!.gbps1!.toFixed(2)} / ${results[p]!.gbps8!.toFixed(2)} / reverse ${results[p]!.gbps1Reverse!.toFixed(2)} Gbit/s`);
  }

  // 2. 64-byte round trip.
  for (const p of runs('rtt') ? paths : []) {
    const port = p === 'direct' ? rrPort : p === 'haproxy' ? fe.rr : (await granted(1, rrPort)).ports[0]!;
    const r = haveSockperf ? await sockperf(port) : ((await run('rr', { port, seconds: SECONDS })) as { p50Us: number; p99Us: number });
    results[p]!.rttP50 = r.p50Us;
    results[p]!.rttP99 = r.p99Us;
    note(`round trip ${p}: ${r.p50Us.toFixed(1)} / ${r.p99Us.toFixed(1)} µs${haveSockperf ? ' (sockperf)' : ' (node tool)'}`);
  }

  // 3. New relayed connections per second, 32 at a time; through the gateway each one is a grant.
  for (const p of runs('connrate') ? paths : []) {
    const ports = p === 'direct' ? [echoPorts.direct] : p === 'haproxy' ? [fe.echo] : (await granted(CONNRATE_COUNT, echoPorts.gateway)).ports;
    const r = (await run('connrate', { ports, count: CONNRATE_COUNT, concurrency: 32 })) as { rate: number; failed: number; ok: number };
    results[p]!.connPerSec = r.rate;
    note(`connections/s ${p}: ${Math.round(r.rate)} (${r.ok} ok, ${r.failed} failed)`);
    await sleep(1500);
  }

  // 4. RSS per idle relayed connection.
  for (const n of runs('idle') ? IDLE_COUNTS : []) {
    // A relayed session holds three descriptors in the gateway (client, workstation, and its grant's
    // port, which stays open to refuse a second connection): past the open-file limit, more workers.
    const needed = Math.max(workers, Math.ceil((3 * n + 200) / (fdLimit - 500)));
    const idleGw = needed > workers ? await startGateway(dir, needed) : gw;
    if (idleGw !== gw) note(`idle ${n}: a second gateway with ${needed} relay workers (3 descriptors per session, limit ${fdLimit})`);
    for (const p of ['haproxy', 'gateway'] as const) {
      // One HAProxy process needs two descriptors per connection: under a 20,000 hard limit it stops near 9,900.
      const count = p === 'haproxy' ? Math.min(n, 9850) : n;
      const pids = () => (p === 'haproxy' ? [haproxy.pid!] : gatewayPids(idleGw.proc.pid!));
      await sleep(1000);
      if (p === 'gateway') await idleGw.collectGarbage();
      const before = rssKiB(pids());
      const ports = p === 'haproxy' ? [fe.echo] : (await idleGw.granted(count, echoPorts.gateway)).ports;
      const holder = load('idle', { ports, count });
      const r = (await waitLine(holder, 'idle holder', 300_000)) as { open: number; failed: number };
      await sleep(2000);
      if (p === 'gateway') await idleGw.collectGarbage();
      const after = rssKiB(pids());
      const perConn = ((after - before) * 1024) / Math.max(1, r.open);
      results[p]![`rssPerConn${n}`] = perConn;
      results[p]![`rssOpen${n}`] = r.open;
      note(`idle ${p} ${count}: ${r.open} open (${r.failed} failed), RSS ${before} → ${after} KiB = ${(perConn / 1024).toFixed(2)} KiB per connection`);
      holder.stdin!.end();
      await new Promise((res) => holder.once('exit', res));
      await sleep(2500);
    }
    if (idleGw !== gw) await idleGw.stop();
  }

  // 5. The studio load: 200 viewers × 25 Mbit/s downstream in 1,200-byte frames, a 64-byte input event every 10 ms echoed.
  for (const p of runs('studio') ? paths : []) {
    const ports = p === 'direct' ? [studioPorts.direct] : p === 'haproxy' ? [fe.studio] : (await granted(STUDIO.sessions, studioPorts.gateway)).ports;
    const r = (await run('studio-client', { ports, sessions: STUDIO.sessions, seconds: STUDIO.seconds, eventMs: STUDIO.eventMs })) as { deliveredMbps: number; p50Us: number; p99Us: number; echoes: number };
    results[p]!.studioGbps = r.deliveredMbps / 1000;
    results[p]!.studioP50 = r.p50Us;
    results[p]!.studioP99 = r.p99Us;
    note(`studio ${p}: ${(r.deliveredMbps / 1000).toFixed(2)} Gbit/s delivered (offered ${(STUDIO.sessions * STUDIO.mbps) / 1000}), input round trip ${r.p50Us.toFixed(0)} / ${r.p99Us.toFixed(0)} µs p50/p99 (${r.echoes} echoes)`);
    await sleep(1000);
  }

  printTable(results);
  await gw.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

/** A gateway process (`workers` relay processes) enrolled with its own broker stand-in. */
async function startGateway(dir: string, workers: number) {
  const broker = new FakeBroker();
  await broker.start();
  // The inspector (loopback, random port, in each worker too) lets the bench collect garbage before
  // it reads memory: V8 keeps what a burst of connections left behind until it needs the space.
  const proc = start(process.execPath, ['--inspect=127.0.0.1:0', path.join(ROOT, 'apps/gateway/bin/stagedoor-gateway.js'), '--enroll', 'bench'], {
    STAGEDOOR_BROKER_URLS: broker.url,
    STAGEDOOR_GATEWAY_PORTS: `${GRANT_PORTS.start}-${GRANT_PORTS.end}`,
    STAGEDOOR_GATEWAY_LISTEN_HOST: HOST,
    STAGEDOOR_GATEWAY_PUBLIC_ADDRESS: HOST,
    STAGEDOOR_GATEWAY_DATA_DIR: fs.mkdtempSync(path.join(dir, 'gateway-')),
    STAGEDOOR_GATEWAY_LINGER_SECONDS: '1',
    STAGEDOOR_GATEWAY_WORKERS: String(workers),
    STAGEDOOR_LOG_LEVEL: 'warn',
  });
  await broker.welcomed();
  await sleep(300 * workers); // relay workers starting
  let nextPort = GRANT_PORTS.start;
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

function printTable(r: Record<string, Record<string, number>>): void {
  const rows: [string, string, number, 'higher' | 'lower'][] = [
    ['throughput, 1 stream (Gbit/s)', 'gbps1', 2, 'higher'],
    ['throughput, 8 streams (Gbit/s)', 'gbps8', 2, 'higher'],
    ['throughput, 1 stream workstation→user (Gbit/s)', 'gbps1Reverse', 2, 'higher'],
    ['64-byte round trip p50 (µs)', 'rttP50', 1, 'lower'],
    ['64-byte round trip p99 (µs)', 'rttP99', 1, 'lower'],
    ['new relayed connections/s', 'connPerSec', 0, 'higher'],
    ...IDLE_COUNTS.map((n) => [`RSS per idle connection at ${n} (KiB)`, `rssPerConn${n}`, 2, 'lower'] as [string, string, number, 'lower']),
    ['studio: delivered (Gbit/s, offered 5)', 'studioGbps', 2, 'higher'],
    ['studio: input round trip p50 (µs)', 'studioP50', 0, 'lower'],
    ['studio: input round trip p99 (µs)', 'studioP99', 0, 'lower'],
  ];
  const fmt = (v: number | undefined, d: number, key: string) => (v === undefined ? 'n/a' : key.startsWith('rss') ? (v / 1024).toFixed(d) : v.toFixed(d));
  console.log('\n| figure | direct | HAProxy | gateway | gateway / HAProxy |');
  console.log('|---|---|---|---|---|');
  for (const [label, key, d] of rows) {
    const g = r.gateway![key];
    const h = r.haproxy![key];
    const ratio = g !== undefined && h ? (g / h).toFixed(2) : 'n/a';
    console.log(`| ${label} | ${key.startsWith('rss') ? '–' : fmt(r.direct![key], d, key)} | ${fmt(h, d, key)} | ${fmt(g, d, key)} | ${ratio} |`);
  }
  for (const n of IDLE_COUNTS) console.log(`(idle at ${n}: HAProxy held ${r.haproxy![`rssOpen${n}`]}, the gateway ${r.gateway![`rssOpen${n}`]} connections)`);
}

main().catch((err: unknown) => {
  console.error('bench failed:', err);
  process.exit(1);
});
