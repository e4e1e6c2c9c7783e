import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpuSeconds, exec, freePorts, gatewayPids, haproxyHead, HOST, listening, load, median, rssKiB, run, sleep, start, startGateway, treePids, tsx, waitLine } from './harness.ts';
import { routedSection } from './routed.ts';

/**
 * The gateway next to HAProxy `mode tcp` and a direct connection, on loopback, in one run:
 * iperf3 single-stream / 8-stream / reverse throughput, 64-byte round trip, new relayed connections
 * per second (every one a grant check), RSS per idle relayed connection, and the studio load.
 * `npm run bench:gateway` (raises the open-file limit first). Not a test: it prints figures.
 */

const quick = process.argv.includes('--quick');
/** `--only=idle,studio`: run just those sections (throughput, rtt, connrate, idle, studio, routed). */
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


async function main(): Promise<void> {
  for (const tool of ['iperf3', 'haproxy']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: apt-get install -y ${tool}`);
  }
  const haveSockperf = spawnSync('sh', ['-c', 'command -v sockperf']).status === 0;
  const fdLimit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  console.log(`gateway benchmark on ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, open-file limit ${fdLimit}, gateway workers ${workers}, ${ROUNDS} round(s), load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}${quick ? ', quick' : ''}`);
  if (fdLimit < 19_000) console.log('  note: run through `npm run bench:gateway`, which raises the open-file limit; the 10,000-connection figures need it');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-bench-'));
  if (['throughput', 'rtt', 'connrate', 'idle', 'studio'].some(runs)) await portForwardSections(dir, haveSockperf, fdLimit);
  // The routed modes beside port forward and HAProxy, driven by a client that sends a first packet (routed.ts).
  if (runs('routed')) await routedSection({ dir, seconds: SECONDS, rounds: ROUNDS, quick, haproxyHead });
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

async function portForwardSections(dir: string, haveSockperf: boolean, fdLimit: number): Promise<void> {
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
  const cfg = path.join(dir, 'haproxy.cfg');
  const fronts = [
    ['iperf', fe.iperf, iperfPort],
    ['rr', fe.rr, rrPort],
    ['echo', fe.echo, echoPorts.haproxy],
    ['studio', fe.studio, studioPorts.haproxy],
  ] as const;
  const haproxyConfig = (threads: number, listens: readonly (readonly [string, number, number])[]) =>
    [
      ...haproxyHead(threads),
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
  harness.kill();
  haproxy.kill();
  haproxy2?.kill();
  echo.kill();
  studio.kill();
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
