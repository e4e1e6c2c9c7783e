import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cpuSeconds, freePorts, gatewayPids, type GatewayMemory, treePids, HOST, listening, median, rssKiB, sleep, start, startGateway, tsx, waitLine } from './harness.ts';
import { slope } from './measure.ts';
import { aeadSecondsPerGB, ALL, GATEWAY, printRouted, SLOW, type PathName } from './routed-report.ts';
import { ACK, rdpFirstPacket, randomToken } from './preface.ts';
import type { Via } from './routed-load.ts';
import { writeSshdFiles } from '../../test/support/sshd.ts';

/**
 * The routed modes (ADR 0017) beside port forward and HAProxy, in one run: `npm run bench:gateway --
 * --only=routed` (`--routed=throughput,rtt,connrate,idle` and `--paths=rdp,tls,…` to narrow it).
 *
 * iperf3 and sockperf cannot send a first packet, so every path here is driven by one Node client
 * (routed-load.ts) that sends the same first packet (an X.224 Connection Request with
 * `Cookie: msts=<token>`, or a ClientHello naming `<token>.gw.bench`), waits for the target's ack,
 * then streams or ping-pongs; the ratios compare the relays, the client's own cost is in every path
 * (the `direct` row shows what the client and target reach with no relay at all). Each routed
 * connection is a grant of its own, issued in bulk through the broker stand-in beforehand; its claim
 * is a loopback round trip to that stand-in, not to a broker on PostgreSQL.
 */

/** A self-signed ECDSA P-256 certificate and key in one PEM, as HAProxy's `crt` takes it. */
function tlsPem(dir: string): string {
  const key = path.join(dir, 'haproxy-tls.key');
  const crt = path.join(dir, 'haproxy-tls.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=gw.bench'], { stdio: 'ignore' });
  const pem = path.join(dir, 'haproxy-tls.pem');
  fs.writeFileSync(pem, fs.readFileSync(crt, 'utf8') + fs.readFileSync(key, 'utf8'));
  return pem;
}

/** Batches an idle measurement opens its sessions in, the relay's RSS read after each; the first warms the relay. */
const IDLE_STEPS = 5;

/** The SSH client's addresses (its grants name them): the jump host admits 10 unauthenticated connections per address. */
const SSH_CLIENTS = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`);

export interface RoutedSectionOptions {
  dir: string;
  seconds: number;
  rounds: number;
  quick: boolean;
  /** HAProxy's `global` and `defaults` lines, as run.ts starts it (one thread, splice, 128 KiB buffers). */
  haproxyHead: (threads: number) => string[];
}

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3).split(',');

export async function routedSection(o: RoutedSectionOptions): Promise<void> {
  const figures = arg('routed') ?? ['throughput', 'rtt', 'connrate', 'idle'];
  const wanted = (arg('paths') as PathName[] | undefined) ?? ALL;
  const connCount = o.quick ? 1000 : 2000;
  const jsConnCount = o.quick ? 200 : 1000; // an SSH handshake or a TLS + WebSocket upgrade each: far slower
  const idleCount = 2000;
  const note = (line: string) => console.log(`  … ${line}`);
  const load = () => os.loadavg()[0]!.toFixed(2);
  console.log(`\nrouted modes: load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; the claim of each routed connection is a loopback round trip to the broker stand-in (bench/gateway/fake-broker.ts, an in-memory set), not to a broker on PostgreSQL`);

  const [targetPort, fePlain, feRdp, feSni, rdp, tls, ssh, https, feTls, sshdPort] = await freePorts(10) as [number, number, number, number, number, number, number, number, number, number];
  const target = tsx('bench/gateway/routed-load.ts', 'target', JSON.stringify({ port: targetPort }));
  await waitLine(target, 'routed target');

  const cfg = path.join(o.dir, 'haproxy-routed.cfg');
  fs.writeFileSync(cfg, [
    ...o.haproxyHead(1),
    `listen plain`, `  bind ${HOST}:${fePlain}`, '  maxconn 9900', `  server s1 ${HOST}:${targetPort}`,
    // Routing on the first packet, as the routed listeners do (HAProxy checks no grant: its peer figure is the routing alone).
    `frontend rdp`, `  bind ${HOST}:${feRdp}`, '  maxconn 9900', '  tcp-request inspect-delay 5s', '  tcp-request content accept if RDP_COOKIE', '  use_backend target if { req.rdp_cookie(msts) -m found }',
    `frontend sni`, `  bind ${HOST}:${feSni}`, '  maxconn 9900', '  tcp-request inspect-delay 5s', '  tcp-request content accept if { req.ssl_hello_type 1 }', `  use_backend target if { req.ssl_sni -m end .gw.bench }`,
    // The tunnel's fair peer: a relay that terminates TLS as the tunnel does (same key type: ECDSA P-256).
    `listen tls`, `  bind ${HOST}:${feTls} ssl crt ${tlsPem(o.dir)}`, '  maxconn 9900', `  server s1 ${HOST}:${targetPort}`,
    'backend target', `  server s1 ${HOST}:${targetPort}`,
    '',
  ].join('\n'));
  const haproxy = start('haproxy', ['-db', '-f', cfg]);
  // The SSH jump host's fair peer: OpenSSH's sshd forwarding the same client's direct-tcpip channel
  // (ssh -J), with its own host key and a key-only user; no MaxStartups drops at 32 handshakes at once.
  const sshdFiles = writeSshdFiles(fs.mkdtempSync(path.join(o.dir, 'sshd-')), { address: HOST, port: sshdPort });
  fs.appendFileSync(sshdFiles.config, 'MaxStartups 1000\nAllowTcpForwarding yes\n');
  const sshd = start('/usr/sbin/sshd', ['-D', '-e', '-f', sshdFiles.config]);
  await listening([fePlain, feRdp, feSni, feTls, sshdPort]);
  // HAProxy reads our Connection Request's cookie, or the RDP row is compared with plain `mode tcp`.
  const rdpCookieWorks = await acked(feRdp, rdpFirstPacket(randomToken()));
  const peer: Partial<Record<PathName, PathName>> = { 'port-forward': 'haproxy', rdp: rdpCookieWorks ? 'haproxy-rdp' : 'haproxy', tls: 'haproxy-sni', ssh: 'sshd', tunnel: 'haproxy-tls', 'tunnel-native': 'haproxy-tls' };
  const paths = wanted.filter((p) => ALL.includes(p) && (p !== 'haproxy-rdp' || rdpCookieWorks));
  if (!rdpCookieWorks) note('HAProxy did not route our Connection Request by req.rdp_cookie(msts): the RDP row is compared with plain `mode tcp`');

  const gw = await startGateway(o.dir, 1, undefined, { rdp, tls, ssh, https });
  const listeners = gw.broker.hello?.identity?.listeners;
  if (!listeners || listeners.rdp !== rdp || listeners.tls !== tls || listeners.ssh !== ssh || listeners.tunnel !== https) throw new Error(`the gateway's routed listeners did not all start: ${JSON.stringify(listeners)}`);

  /** `n` routed grants to the target, then one more that is dialled until it works: the gateway has them all. */
  const routedTokens = async (n: number, clients = [HOST]): Promise<string[]> => {
    const tokens = Array.from({ length: n }, randomToken);
    for (const [i, t] of tokens.entries()) gw.broker.grantRouted(t, { host: HOST, port: targetPort }, clients[i % clients.length]);
    const probe = randomToken();
    gw.broker.grantRouted(probe, { host: HOST, port: targetPort });
    for (let i = 0; !(await acked(rdp, rdpFirstPacket(probe))); i++) {
      if (i > 600) throw new Error('routed grants did not reach the gateway');
      await sleep(50);
    }
    return tokens;
  };
  const T0 = [randomToken()];
  const via = async (p: PathName, n: number): Promise<Via> => {
    switch (p) {
      case 'direct':
        return { kind: 'tcp', ports: [targetPort], first: 'rdp', tokens: T0 };
      case 'haproxy':
        return { kind: 'tcp', ports: [fePlain], first: 'rdp', tokens: T0 };
      case 'haproxy-rdp':
        return { kind: 'tcp', ports: [feRdp], first: 'rdp', tokens: T0 };
      case 'haproxy-sni':
        return { kind: 'tcp', ports: [feSni], first: 'tls', tokens: T0 };
      case 'haproxy-tls':
        return { kind: 'tls', ports: [feTls], tokens: T0 };
      case 'sshd':
        return { kind: 'ssh', ports: [sshdPort], tokens: [os.userInfo().username], target: targetPort, clients: SSH_CLIENTS, privateKeyFile: sshdFiles.clientKey };
      case 'port-forward':
        return { kind: 'tcp', ports: (await gw.granted(n, targetPort)).ports, first: 'rdp', tokens: T0 };
      case 'rdp':
        return { kind: 'tcp', ports: [rdp], first: 'rdp', tokens: await routedTokens(n) };
      case 'tls':
        return { kind: 'tcp', ports: [tls], first: 'tls', tokens: await routedTokens(n) };
      case 'ssh':
        return { kind: 'ssh', ports: [ssh], tokens: await routedTokens(n, SSH_CLIENTS), target: targetPort, clients: SSH_CLIENTS };
      case 'tunnel':
        return { kind: 'tunnel', ports: [https], tokens: await routedTokens(n) };
      case 'tunnel-native':
        return { kind: 'tunnel-native', ports: [https], tokens: await routedTokens(n) };
    }
  };
  const client = async (mode: string, args: Record<string, unknown>): Promise<Record<string, number | string>> => {
    const c = tsx('bench/gateway/routed-load.ts', mode, JSON.stringify(args));
    const r = await waitLine(c, `routed ${mode}`, 300_000).catch((err: Error) => ({ error: `${err.message}: ${c.errLines.join(' ').slice(-400)}` }));
    c.kill();
    if ('error' in r) throw new Error(`routed ${mode}: ${String(r.error)}`);
    return r as Record<string, number>;
  };

  // Rounds, the order of the paths reversed every other round; each figure the median over the rounds.
  const results: Partial<Record<PathName, Record<string, number>>> = {};
  const inRounds = async (figure: string, ps: PathName[], one: (p: PathName) => Promise<Record<string, number>>) => {
    if (!figures.includes(figure)) return;
    const samples: Partial<Record<PathName, Record<string, number[]>>> = {};
    for (let round = 0; round < o.rounds; round++) {
      for (const p of round % 2 === 0 ? ps : [...ps].reverse()) {
        for (const [k, v] of Object.entries(await one(p))) ((samples[p] ??= {})[k] ??= []).push(v);
      }
    }
    for (const [p, keys] of Object.entries(samples)) for (const [k, vs] of Object.entries(keys)) ((results[p as PathName] ??= {})[k] = median(vs));
  };

  // The relay's processes, for its CPU seconds per gigabyte moved: far less moved by other load on
  // the machine than the rate (a relay that gets less CPU moves fewer bytes, not costlier ones).
  const relayPids = (p: PathName): number[] => (GATEWAY.includes(p) ? gatewayPids(gw.proc.pid!) : p === 'sshd' ? treePids(sshd.pid!) : p === 'direct' ? [] : [haproxy.pid!]);
  /** Start counting a path's relay CPU; the returned function gives the seconds since (NaN for no relay). */
  const relayCpu = (p: PathName) => {
    const pids = relayPids(p);
    // sshd runs each connection in processes of its own: their CPU reaches the listener's children's
    // time once they have exited and been waited for.
    const sshdChildren = p === 'sshd';
    const cpu0 = cpuSeconds(pids, sshdChildren);
    return async () => {
      if (sshdChildren) for (let i = 0; i < 50 && treePids(sshd.pid!).length > 1; i++) await sleep(100);
      return pids.length ? cpuSeconds(pids, sshdChildren) - cpu0 : NaN;
    };
  };
  // The client's and the target's CPU per gigabyte as well: which process bounds a path's throughput
  // (a relay's one thread, or the client, which in a terminating mode decrypts what a `mode tcp`
  // client only copies); terminationBound.
  const streamed = async (p: PathName, streams: number) => {
    const cpu = relayCpu(p);
    const targetPids = treePids(target.pid!);
    const target0 = cpuSeconds(targetPids);
    const r = await client('stream', { via: await via(p, streams), streams, seconds: o.seconds });
    const gb = Number(r.totalBytes) / 1e9;
    return { gbps: Number(r.gbps), cpuPerGB: (await cpu()) / gb, clientCpuPerGB: Number(r.clientCpuS) / gb, targetCpuPerGB: (cpuSeconds(targetPids) - target0) / gb };
  };
  await inRounds('throughput', paths, async (p) => {
    const r1 = await streamed(p, 1);
    const r8 = await streamed(p, 8);
    note(`routed throughput ${p}: ${r1.gbps.toFixed(2)} / ${r8.gbps.toFixed(2)} Gbit/s (1 / 8 streams, workstation→user), CPU s per GB at 8 streams: relay ${r8.cpuPerGB.toFixed(2)}, client ${r8.clientCpuPerGB.toFixed(2)}, target ${r8.targetCpuPerGB.toFixed(2)}; load ${load()}`);
    return { gbps1: r1.gbps, gbps8: r8.gbps, clientCpuPerGB8: r8.clientCpuPerGB, targetCpuPerGB8: r8.targetCpuPerGB, ...(Number.isFinite(r8.cpuPerGB) ? { cpuPerGB8: r8.cpuPerGB } : {}) };
  });
  await inRounds('rtt', paths, async (p) => {
    const r = await client('rr', { via: await via(p, 1), seconds: o.seconds });
    note(`routed round trip ${p}: ${Number(r.p50Us).toFixed(1)} / ${Number(r.p99Us).toFixed(1)} µs (${r.samples} samples); load ${load()}`);
    return { rttP50: Number(r.p50Us), rttP99: Number(r.p99Us) };
  });
  await inRounds('connrate', paths, async (p) => {
    const count = SLOW.includes(p) ? jsConnCount : connCount;
    // Warm first, unmeasured, as a gateway that has run a while is: the first gateway path of round 1 paid for the JIT and
    // V8's heap growing (RDP: 2,733/s at 395 µs of relay CPU, then 4,361–4,542/s at 185–205 µs; 300 first still left 310 µs).
    // sshd forks per connection: nothing to warm.
    const warm = p === 'sshd' ? 0 : SLOW.includes(p) ? 300 : 1500;
    if (warm) await client('connrate', { via: await via(p, warm), count: warm, concurrency: 32 });
    const cpu = relayCpu(p);
    const targetPids = treePids(target.pid!);
    const target0 = cpuSeconds(targetPids);
    const r = await client('connrate', { via: await via(p, count), count, concurrency: 32 });
    // CPU per connection, the relay's, the client's and the target's: which one a path's rate is bound by.
    const relayUs = ((await cpu()) * 1e6) / Number(r.ok);
    const targetUs = ((cpuSeconds(targetPids) - target0) * 1e6) / Number(r.ok);
    note(`routed connections/s ${p}: ${Math.round(Number(r.rate))} (${r.ok} ok, ${r.failed} failed${r.firstError ? `: ${r.firstError}` : ''}); CPU per connection: relay ${Math.round(relayUs)} µs, client ${Math.round(Number(r.clientCpuUs))} µs, target ${Math.round(targetUs)} µs; load ${load()}`);
    await sleep(1500);
    return { connPerSec: Number(r.rate), clientUsPerConn: Number(r.clientCpuUs), targetUsPerConn: targetUs, ...(Number.isFinite(relayUs) ? { relayUsPerConn: relayUs } : {}) };
  });

  const settle = async (p: PathName, pids: () => number[]) => {
    await sleep(1000);
    for (let i = 0, last = Infinity, now = rssKiB(pids()); GATEWAY.includes(p) && i < 8 && (i < 2 || now < last - 256); i++) {
      await gw.collectGarbage();
      await sleep(1000);
      [last, now] = [now, rssKiB(pids())];
    }
  };
  // Memory per idle session: the slope of the relay's RSS over the sessions held, read after each of IDLE_STEPS batches
  // but the first, which warms the relay at the load measured (a reading before the sessions read −5.46 KiB per session
  // for SSH once, 5.0 another time: a fresh gateway gives back up to 10 MiB of native memory a batch into its first holds).
  // A warm-up hold of as many sessions, closed before, reads low: HAProxy's and malloc's pools take the next ones (0.89
  // KiB for HAProxy, against 3.2–3.3). Before each reading, full collections a second apart until the RSS stops falling;
  // the gateway's readings leave out V8's young generation, empty then and of a size V8 chooses (2 MiB once, a 1.8 MiB step).
  for (const p of figures.includes('idle') ? paths.filter((x) => x !== 'direct') : []) {
    // sshd forks a process pair per connection (megabytes each): 100 show its cost per session.
    const count = p === 'sshd' ? 100 : idleCount;
    // sshd forks a process (two, with privilege separation) per connection: all of them count.
    const pids = () => (GATEWAY.includes(p) ? gatewayPids(gw.proc.pid!) : p === 'sshd' ? treePids(sshd.pid!) : [haproxy.pid!]);
    await client('connrate', { via: await via(p, p === 'sshd' ? 32 : 300), count: p === 'sshd' ? 32 : 300, concurrency: 32 });
    const holder = tsx('bench/gateway/routed-load.ts', 'idle', JSON.stringify({ via: await via(p, count), count, steps: IDLE_STEPS }));
    const readings: { open: number; rss: number }[] = [];
    const mem: (GatewayMemory | null)[] = [];
    let r = { open: 0, failed: 0 };
    for (let step = 1; step <= IDLE_STEPS; step++) {
      r = (await waitLine(holder, 'idle holder', 300_000)) as { open: number; failed: number };
      await settle(p, pids);
      const rss = rssKiB(pids());
      const m = GATEWAY.includes(p) ? await gw.memory() : null;
      readings.push({ open: r.open, rss: rss - Math.round((m?.newSpace ?? 0) / 1024) });
      mem.push(m);
      if (step < IDLE_STEPS) holder.stdin!.write('\n');
    }
    const perSession = slope(readings.slice(1).map((x) => [x.open, x.rss]));
    (results[p] ??= {}).idleKiB = perSession;
    note(`routed idle ${p}: ${r.open} open (${r.failed} failed), RSS${GATEWAY.includes(p) ? ' less V8\'s young generation' : ''} ${readings.map((x) => `${x.rss} at ${x.open}`).join(', ')} KiB: ${perSession.toFixed(2)} KiB per session (the slope after the first); load ${load()}`);
    // Where a gateway session's bytes are: JS heap (objects, closures), buffers outside it, and the rest of RSS (native: OpenSSL, libuv, malloc).
    const [first, last] = [mem[1], mem.at(-1)];
    const opened = readings.at(-1)!.open - readings[1]!.open;
    if (first && last && opened > 0) {
      const per = (k: keyof GatewayMemory) => ((last[k] - first[k]) / 1024 / opened).toFixed(2);
      note(`routed idle ${p}, main process per session from the second batch to the last: RSS ${per('rss')} KiB = JS heap ${per('heapUsed')} + external ${per('external')} (of which array buffers ${per('arrayBuffers')}) + native rest`);
    }
    holder.stdin!.end();
    await new Promise((res) => holder.once('exit', res));
    await sleep(2500);
  }

  printRouted(results, paths, peer, { connCount, jsConnCount, idleCount, idleSteps: IDLE_STEPS, rdpCookieWorks, aead: figures.includes('throughput') ? aeadSecondsPerGB() : null });
  await gw.stop();
  haproxy.kill();
  sshd.kill();
  target.kill();
}

/** Whether the target acknowledges `first` sent to `port` (a grant that has arrived; HAProxy routing our packet). */
function acked(port: number, first: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: HOST });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => s.write(first));
    s.once('data', (d: Buffer) => done(d[0] === ACK));
    s.once('error', () => done(false));
    s.once('close', () => done(false));
    setTimeout(() => done(false), 5000).unref();
  });
}
