import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
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
const HOST = '127.0.0.1';
const GRANT_PORTS = { start: 20000, end: 31999 };
const quick = process.argv.includes('--quick');
/** `--only=idle,studio`: run just those sections (throughput, rtt, connrate, idle, studio). */
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const runs = (section: string) => !only || only.includes(section);
const SECONDS = quick ? 3 : 5;
const CONNRATE_COUNT = quick ? 2000 : 4000;
const IDLE_COUNTS = quick ? [2000] : [2000, 10000];
const IDLE_WARM_UP = 300;
const STUDIO = { sessions: 200, mbps: 25, tickMs: 10, eventMs: 10, seconds: quick ? 5 : 10 };
/**
 * The second gateway the studio load also runs through, beside HAProxy with two threads:
 * `--studio-threads=N` native relay threads (default 2) in `--studio-workers=N` relay processes (default 1).
 */
const STUDIO_WORKERS = Number(process.argv.find((a) => a.startsWith('--studio-workers='))?.slice(17) ?? 1);
const STUDIO_THREADS = Number(process.argv.find((a) => a.startsWith('--studio-threads='))?.slice(17) ?? 2);
const STUDIO_SECOND = `${STUDIO_WORKERS > 1 ? `${STUDIO_WORKERS} relay processes × ` : ''}${STUDIO_THREADS} relay threads`;
const ROUNDS = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? (quick ? 1 : 3));
const workers = Number(process.env.STAGEDOOR_GATEWAY_WORKERS ?? '1');
/** `--relay=js|native`: the gateway's byte mover (default: what the gateway picks, native when built). */
const relayArg = process.argv.find((a) => a.startsWith('--relay='))?.slice(8);
if (relayArg) process.env.STAGEDOOR_GATEWAY_RELAY = relayArg;

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

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// `node --import tsx`, not the tsx command: that one runs the script in a child process, which a kill
// of the command leaves running (a leaked studio server would load the next run).
const tsx = (file: string, ...args: string[]) => start(process.execPath, ['--import', 'tsx', path.join(ROOT, file), ...args]);
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

/** A process and all its descendants (tsx runs the script in a child process). */
function treePids(pid: number): number[] {
  const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean).map(Number);
  return [pid, ...kids.flatMap(treePids)];
}

/** CPU seconds (user + system) these processes have used so far. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch {
      // gone
    }
  }
  return ticks / 100;
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
  console.log(`gateway benchmark on ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, open-file limit ${fdLimit}, gateway workers ${workers}, ${ROUNDS} round(s), load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}${quick ? ', quick' : ''}`);
  if (fdLimit < 19_000) console.log('  note: run through `npm run bench:gateway`, which raises the open-file limit; the 10,000-connection figures need it');

  // Targets ("workstations"): iperf3, sockperf (or an echo), echo and studio servers — one port per path.
  const all = await freePorts(15);
  const [iperfPort, rrPort, harnessPort] = [all[0]!, all[1]!, all[2]!];
  const rest = all.slice(3);
  const echoPorts = { direct: rest[0]!, haproxy: rest[1]!, gateway: rest[2]! };
  const studioPorts = { direct: rest[3]!, haproxy: rest[4]!, gateway: rest[5]! };
  const fe = { iperf: rest[6]!, rr: rest[7]!, echo: rest[8]!, studio: rest[9]!, studio2: rest[10]! };
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
  const haproxyConfig = (threads: number, listens: readonly (readonly [string, number, number])[]) =>
    [
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
      ...listens.flatMap(([name, port, target]) => [`listen ${name}`, `  bind ${HOST}:${port}`, '  maxconn 9900', `  server s1 ${HOST}:${target}`]),
      '',
    ].join('\n');
  fs.writeFileSync(cfg, haproxyConfig(1, fronts));
  const haproxy = start('haproxy', ['-db', '-f', cfg]);
  // The studio load is also run against HAProxy with two threads, and against a gateway with two relay
  // workers: on two cores shared with the load generators a second thread/process can pay, and the
  // gateway's ratio is taken against the better HAProxy.
  const cfg2 = path.join(dir, 'haproxy-2-threads.cfg');
  fs.writeFileSync(cfg2, haproxyConfig(2, [['studio', fe.studio2, studioPorts.haproxy]]));
  const haproxy2 = runs('studio') ? start('haproxy', ['-db', '-f', cfg2]) : null;
  await listening([...fronts.map(([, port]) => port), ...(haproxy2 ? [fe.studio2] : [])]);

  // The gateway: the real process, enrolled with a broker stand-in that speaks the control channel.
  const gw = await startGateway(dir, workers);
  const harness = tsx('bench/gateway/relay-harness.ts', String(harnessPort), String(iperfPort));
  const harnessReady = await waitLine(harness, 'relay harness');
  console.log(`gateway relay engine: ${String(harnessReady.relay)} (STAGEDOOR_GATEWAY_RELAY=${process.env.STAGEDOOR_GATEWAY_RELAY ?? 'auto'})`);
  const granted = gw.granted;

  const results: Record<string, Record<string, number>> = { direct: {}, haproxy: {}, gateway: {} };
  const paths = ['direct', 'haproxy', 'gateway'] as const;
  const note = (line: string) => console.log(`  … ${line}`);

  // Sections 1–3 and 5 run in rounds (`--rounds=N`, default 3, quick 1), the order of the paths
  // reversed every other round so that none always goes first or last; each figure is the median
  // over the rounds, for every path alike. Other work on the two cores moves single runs by ±30 %.
  const inRounds = async <P extends string>(section: string, ps: readonly P[], one: (p: P, round: number) => Promise<Record<string, number>>) => {
    const samples: Record<string, Record<string, number[]>> = {};
    for (let round = 0; runs(section) && round < ROUNDS; round++) {
      for (const p of round % 2 === 0 ? ps : [...ps].reverse()) {
        for (const [k, v] of Object.entries(await one(p, round))) ((samples[p] ??= {})[k] ??= []).push(v);
      }
    }
    for (const [p, keys] of Object.entries(samples)) for (const [k, vs] of Object.entries(keys)) (results[p] ??= {})[k] = median(vs);
  };
  const roundNote = (round: number) => (ROUNDS > 1 ? ` (round ${round + 1})` : '');

  // 1. Throughput (iperf3); the gateway's byte path is measured through the relay harness (see there).
  const iperfTo = { direct: iperfPort, haproxy: fe.iperf, gateway: harnessPort };
  await inRounds('throughput', paths, async (p, round) => {
    const r = { gbps1: await iperf(iperfTo[p], []), gbps8: await iperf(iperfTo[p], ['-P', '8']), gbps1Reverse: await iperf(iperfTo[p], ['-R']) };
    note(`throughput ${p}${roundNote(round)}: ${r.gbps1.toFixed(2)} / ${r.gbps8.toFixed(2)} / reverse ${r.gbps1Reverse.toFixed(2)} Gbit/s; load ${os.loadavg()[0]!.toFixed(2)}`);
    return r;
  });

  // 2. 64-byte round trip.
  await inRounds('rtt', paths, async (p, round) => {
    const port = p === 'direct' ? rrPort : p === 'haproxy' ? fe.rr : (await granted(1, rrPort)).ports[0]!;
    const r = haveSockperf ? await sockperf(port) : ((await run('rr', { port, seconds: SECONDS })) as { p50Us: number; p99Us: number });
    note(`round trip ${p}${roundNote(round)}: ${r.p50Us.toFixed(1)} / ${r.p99Us.toFixed(1)} µs${haveSockperf ? ' (sockperf)' : ' (node tool)'}; load ${os.loadavg()[0]!.toFixed(2)}`);
    return { rttP50: r.p50Us, rttP99: r.p99Us };
  });

  // 3. New relayed connections per second, 32 at a time; through the gateway each one is a grant.
  await inRounds('connrate', paths, async (p, round) => {
    const ports = p === 'direct' ? [echoPorts.direct] : p === 'haproxy' ? [fe.echo] : (await granted(CONNRATE_COUNT, echoPorts.gateway)).ports;
    const r = (await run('connrate', { ports, count: CONNRATE_COUNT, concurrency: 32 })) as { rate: number; failed: number; ok: number };
    note(`connections/s ${p}${roundNote(round)}: ${Math.round(r.rate)} (${r.ok} ok, ${r.failed} failed); load ${os.loadavg()[0]!.toFixed(2)}`);
    await sleep(1500);
    return { connPerSec: r.rate };
  });

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
      // Both relays start warm, as in service: a few hundred relayed connections opened and closed
      // before the baseline (code compiled, lazily loaded parts loaded), so the figure is what each
      // further connection costs, not a fresh process's one-time growth. Far fewer than are measured.
      const warmPorts = p === 'haproxy' ? [fe.echo] : (await idleGw.granted(IDLE_WARM_UP, echoPorts.gateway)).ports;
      await run('connrate', { ports: warmPorts, count: IDLE_WARM_UP, concurrency: 32 });
      await sleep(2000);
      if (p === 'gateway') await idleGw.collectGarbage();
      const before = rssKiB(pids());
      const beforeEach = pids().map((pid) => rssKiB([pid]));
      const ports = p === 'haproxy' ? [fe.echo] : (await idleGw.granted(count, echoPorts.gateway)).ports;
      const holder = load('idle', { ports, count });
      const r = (await waitLine(holder, 'idle holder', 300_000)) as { open: number; failed: number };
      await sleep(2000);
      if (p === 'gateway') await idleGw.collectGarbage();
      const after = rssKiB(pids());
      const growth = pids().map((pid, i) => rssKiB([pid]) - (beforeEach[i] ?? 0));
      const perConn = ((after - before) * 1024) / Math.max(1, r.open);
      results[p]![`rssPerConn${n}`] = perConn;
      results[p]![`rssOpen${n}`] = r.open;
      note(`idle ${p} ${count}: ${r.open} open (${r.failed} failed), RSS ${before} → ${after} KiB = ${(perConn / 1024).toFixed(2)} KiB per connection${growth.length > 1 ? ` (growth per process: ${growth.join(' + ')} KiB)` : ''}`);
      holder.stdin!.end();
      await new Promise((res) => holder.once('exit', res));
      await sleep(2500);
    }
    if (idleGw !== gw) await idleGw.stop();
  }

  // 5. The studio load: 200 viewers × 25 Mbit/s downstream in 1,200-byte frames, a 64-byte input event every 10 ms echoed.
  // Besides the paths above it runs against HAProxy with two threads and against
  // a gateway with `--studio-threads` relay threads in `--studio-workers` processes (see the HAProxy start).
  const studioPaths = ['direct', 'haproxy', 'haproxy2t', 'gateway', 'gateway2w'] as const;
  const gw2 = runs('studio') ? await startGateway(dir, STUDIO_WORKERS, STUDIO_THREADS) : null;
  await inRounds('studio', studioPaths, async (p, round) => {
    const gwOf = p === 'gateway2w' ? gw2! : gw;
    const ports = p === 'direct' ? [studioPorts.direct] : p === 'haproxy' ? [fe.studio] : p === 'haproxy2t' ? [fe.studio2] : (await gwOf.granted(STUDIO.sessions, studioPorts.gateway)).ports;
    // CPU used while the viewers run, as a share of one core: the relay, the studio server, the viewers.
    const relayPids = p === 'direct' ? [] : p === 'haproxy' ? [haproxy.pid!] : p === 'haproxy2t' ? [haproxy2!.pid!] : gatewayPids(gwOf.proc.pid!);
    const serverPids = treePids(studio.pid!);
    const cpu0 = [cpuSeconds(relayPids), cpuSeconds(serverPids), performance.now()] as const;
    const r = (await run('studio-client', { ports, sessions: STUDIO.sessions, seconds: STUDIO.seconds, eventMs: STUDIO.eventMs })) as { deliveredMbps: number; p50Us: number; p99Us: number; echoes: number; cpuShare: number };
    const wall = (performance.now() - cpu0[2]) / 1000;
    const cpu = `CPU relay ${(((cpuSeconds(relayPids) - cpu0[0]) / wall) * 100).toFixed(0)} %, server ${(((cpuSeconds(serverPids) - cpu0[1]) / wall) * 100).toFixed(0)} %, viewers ${(r.cpuShare * 100).toFixed(0)} %`;
    note(`studio ${p}${roundNote(round)}: ${(r.deliveredMbps / 1000).toFixed(2)} Gbit/s delivered (offered ${(STUDIO.sessions * STUDIO.mbps) / 1000}), input round trip ${r.p50Us.toFixed(0)} / ${r.p99Us.toFixed(0)} µs p50/p99 (${r.echoes} echoes); ${cpu}; load ${os.loadavg()[0]!.toFixed(2)}`);
    await sleep(1000);
    return { studioGbps: r.deliveredMbps / 1000, studioP50: r.p50Us, studioP99: r.p99Us };
  });
  await gw2?.stop();

  printTable(results);
  await gw.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

/** Grant ports are handed out in turn across every gateway of the run, so a port another one still holds is not reused. */
let nextPort = GRANT_PORTS.start;

/** A gateway process (`workers` relay processes) enrolled with its own broker stand-in. */
async function startGateway(dir: string, workers: number, relayThreads?: number) {
  const broker = new FakeBroker();
  await broker.start();
  // The inspector (loopback, random port, in each worker too) lets the bench collect garbage before
  // it reads memory: V8 keeps what a burst of connections left behind until it needs the space.
  const proc = start(process.execPath, ['--inspect=127.0.0.1:0', path.join(ROOT, 'apps/gateway/bin/stagedoor-gateway.js'), '--enroll', 'bench'], {
    STAGEDOOR_BROKER_URLS: broker.url,
    STAGEDOOR_GATEWAY_PORTS: `${GRANT_PORTS.start}-${GRANT_PORTS.end}`,
    STAGEDOOR_GATEWAY_LISTEN_HOST: HOST,
    STAGEDOOR_GATEWAY_DATA_DIR: fs.mkdtempSync(path.join(dir, 'gateway-')),
    STAGEDOOR_GATEWAY_LINGER_SECONDS: '1',
    // Port-forward rows only: the routed listeners' fixed ports may be taken on the benchmark host.
    STAGEDOOR_GATEWAY_RDP_PORT: 'off',
    STAGEDOOR_GATEWAY_SSH_PORT: 'off',
    STAGEDOOR_GATEWAY_TLS_PORT: 'off',
    STAGEDOOR_GATEWAY_HTTPS_PORT: 'off',
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
  if (r.haproxy2t?.studioP99 !== undefined) {
    const h = r.haproxy2t;
    const g = r.gateway2w!;
    console.log(`| studio, HAProxy two threads / gateway ${STUDIO_SECOND}: delivered (Gbit/s) | – | ${h.studioGbps!.toFixed(2)} | ${g.studioGbps!.toFixed(2)} | ${(g.studioGbps! / h.studioGbps!).toFixed(2)} |`);
    console.log(`| studio, HAProxy two threads / gateway ${STUDIO_SECOND}: input round trip p50 (µs) | – | ${h.studioP50!.toFixed(0)} | ${g.studioP50!.toFixed(0)} | ${(g.studioP50! / h.studioP50!).toFixed(2)} |`);
    console.log(`| studio, HAProxy two threads / gateway ${STUDIO_SECOND}: input round trip p99 (µs) | – | ${h.studioP99!.toFixed(0)} | ${g.studioP99!.toFixed(0)} | ${(g.studioP99! / h.studioP99!).toFixed(2)} |`);
    const bestH = Math.min(r.haproxy!.studioP99!, h.studioP99!);
    const bestG = Math.min(r.gateway!.studioP99!, g.studioP99!);
    console.log(`(studio input round trip p99, best of each: HAProxy ${bestH.toFixed(0)} µs, gateway ${bestG.toFixed(0)} µs = ${(bestG / bestH).toFixed(2)}; ${STUDIO_SECOND} against the better HAProxy: ${(g.studioP99! / bestH).toFixed(2)})`);
  }
  for (const n of IDLE_COUNTS) console.log(`(idle at ${n}: HAProxy held ${r.haproxy![`rssOpen${n}`]}, the gateway ${r.gateway![`rssOpen${n}`]} connections)`);
}

main().catch((err: unknown) => {
  console.error('bench failed:', err);
  process.exit(1);
});
