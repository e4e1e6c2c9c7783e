import { execFileSync } from 'node:child_process';
import os from 'node:os';

/**
 * The routed benchmark's paths and its report (routed.ts runs them): the table of figures with each
 * path's ratio to its peer, and the bounds a terminating relay meets on this machine (ADR 0034).
 */

export type PathName = 'direct' | 'haproxy' | 'haproxy-rdp' | 'haproxy-sni' | 'haproxy-tls' | 'sshd' | 'port-forward' | 'rdp' | 'tls' | 'ssh' | 'tunnel' | 'tunnel-native';
export const ALL: PathName[] = ['direct', 'haproxy', 'haproxy-rdp', 'haproxy-sni', 'haproxy-tls', 'sshd', 'port-forward', 'rdp', 'tls', 'ssh', 'tunnel-native', 'tunnel'];
export const GATEWAY: PathName[] = ['port-forward', 'rdp', 'tls', 'ssh', 'tunnel-native', 'tunnel'];
export const LABEL: Record<PathName, string> = {
  direct: 'direct (no relay)',
  haproxy: 'HAProxy `mode tcp`',
  'haproxy-rdp': 'HAProxy `req.rdp_cookie(msts)` routing',
  'haproxy-sni': 'HAProxy `req.ssl_sni` routing',
  'haproxy-tls': 'HAProxy `bind ssl` (TLS terminated), mode tcp',
  sshd: 'OpenSSH sshd as the jump host (`ssh -J`)',
  'port-forward': 'gateway, port forward',
  rdp: 'gateway, RDP routing token',
  tls: 'gateway, TLS SNI',
  ssh: 'gateway, SSH jump host (native relay after the channel opens)',
  'tunnel-native': 'gateway, HTTPS tunnel, native mode',
  tunnel: 'gateway, HTTPS tunnel, WebSocket',
};

/** The gateway's modes that terminate a protocol (ADR 0034): compared with a fair peer and with `mode tcp`. */
export const TERMINATING: PathName[] = ['ssh', 'tunnel-native', 'tunnel'];
/** Paths whose connections each cost a key exchange or a TLS handshake: fewer per round. */
export const SLOW: PathName[] = [...TERMINATING, 'sshd', 'haproxy-tls'];

export type Results = Partial<Record<PathName, Record<string, number>>>;

export function printRouted(r: Results, paths: PathName[], peer: Partial<Record<PathName, PathName>>, n: { connCount: number; jsConnCount: number; idleCount: number; idleSteps: number; rdpCookieWorks: boolean; aead: number | null }): void {
  const cols: [string, string, number, 'higher' | 'lower', number | null][] = [
    // label, key, decimals, better, target ratio (null: reported, no target)
    ['1 stream Gbit/s', 'gbps1', 2, 'higher', 1.0],
    ['8 streams Gbit/s', 'gbps8', 2, 'higher', 1.0],
    ['RTT p50 µs', 'rttP50', 1, 'lower', null],
    ['RTT p99 µs', 'rttP99', 1, 'lower', 1.2],
    ['new conn/s', 'connPerSec', 0, 'higher', 0.5],
    ['KiB / idle session', 'idleKiB', 2, 'lower', null],
    ['relay CPU s / GB (8 streams)', 'cpuPerGB8', 2, 'lower', null],
    ['client CPU s / GB (8 streams)', 'clientCpuPerGB8', 2, 'lower', null],
  ];
  console.log('\n| path (peer for the ratio) | ' + cols.map(([l]) => l).join(' | ') + ' |');
  console.log('|---|' + cols.map(() => '---|').join(''));
  // The SSH and tunnel rows against their fair peers (sshd, a TLS-terminating HAProxy), and against
  // plain `mode tcp` as before (what a first-packet mode is held to).
  const rows: [PathName, PathName | undefined][] = paths.flatMap((p): [PathName, PathName | undefined][] =>
    TERMINATING.includes(p) && peer[p] !== 'haproxy' && paths.includes('haproxy') ? [[p, paths.includes(peer[p]!) ? peer[p] : undefined], [p, 'haproxy']] : [[p, peer[p]]],
  );
  for (const [p, q] of rows) {
    const cells = cols.map(([, key, d, , tgt]) => {
      const v = r[p]?.[key];
      if (v === undefined) return 'n/a';
      const pv = q ? r[q]?.[key] : undefined;
      const ratio = pv ? v / pv : undefined;
      // A negative memory figure is a failed reading (the process gave back more than the sessions took): ✗, not a pass.
      const ok = key === 'idleKiB' ? v >= 0 && v <= 8 : tgt === null || ratio === undefined ? null : key === 'rttP99' ? ratio <= tgt : ratio >= tgt;
      return `${v.toFixed(d)}${ratio !== undefined && key !== 'idleKiB' ? ` (${ratio.toFixed(2)}×)` : ''}${ok === null || !q ? '' : ok ? ' ✓' : ' ✗'}`;
    });
    console.log(`| ${LABEL[p]}${q ? ` (vs ${q})` : ''} | ${cells.join(' | ')} |`);
  }
  console.log(`(targets: throughput ≥ 1.0× the peer, p99 ≤ 1.2×, new connections ≥ 0.5×, ≤ 8 KiB per idle session. Throughput is workstation→user through one Node client and target for every path. New connections: ${n.connCount} per round, SSH and tunnel ${n.jsConnCount}; each routed one a grant of its own, its claim a loopback round trip to the broker stand-in, not PostgreSQL. Idle: ${n.idleCount} sessions in ${n.idleSteps} batches, the KiB the slope of the relay's RSS over the last ${n.idleSteps - 1}.)`);
  console.log('(The tunnel\'s native mode hands its TLS records to the native relay after the token line (ADR 0032), its WebSocket path the records with the frames inside after the answer (ADR 0035), the SSH jump host its channel\'s AES-GCM packets once the channel is open (ADR 0033); HAProxy and the first-packet modes splice plain TCP.)');
  if (!n.rdpCookieWorks) console.log('(HAProxy did not route by req.rdp_cookie here; the RDP row\'s peer is plain `mode tcp`.)');
  for (const line of terminationBound(r, paths, n.aead)) console.log(line);
  for (const line of handshakeBound(r, paths)) console.log(line);
}

/** CPU seconds per gigabyte that AES-128-GCM alone costs on this machine (OpenSSL's own loop, 16 KiB records), or null. */
export function aeadSecondsPerGB(): number | null {
  try {
    const out = execFileSync('openssl', ['speed', '-evp', 'aes-128-gcm', '-bytes', '16384', '-seconds', '2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const kBps = Number(/AES-128-GCM\s+([\d.]+)k/.exec(out)?.[1]);
    return kBps > 0 ? 1e9 / (kBps * 1000) : null;
  } catch {
    return null;
  }
}

/**
 * Why the terminating modes stay under `mode tcp`'s throughput (ADR 0034), from this run's figures.
 * Every relay here runs one thread; at 8 streams either it is busy (relay CPU per GB × GB/s ≈ 1
 * core), and the path's throughput is about 1 / its CPU per GB, or the client is, which for a
 * terminating mode also decrypts every byte. A relay that terminates TLS or SSH seals
 * every byte it sends the user: at the very least, it moves bytes as cheaply as port forward's
 * splice (which it cannot use) and pays the AEAD at OpenSSL's own speed. That sum bounds what any
 * one-thread terminating relay could reach against `mode tcp` on this machine.
 */
function terminationBound(r: Results, paths: PathName[], aead: number | null): string[] {
  // Cores a process kept busy: its CPU seconds per GB × GB/s. Near 1, that one-thread process bounds the path.
  const busy = (p: PathName) => {
    const x = r[p];
    if (x?.gbps8 === undefined || x.clientCpuPerGB8 === undefined) return null;
    const cores = (perGB: number) => ((perGB * x.gbps8!) / 8).toFixed(2);
    return `${p}: relay ${x.cpuPerGB8 === undefined ? '–' : cores(x.cpuPerGB8)}, client ${cores(x.clientCpuPerGB8)}`;
  };
  const busies = paths.map(busy).filter(Boolean);
  if (!busies.length) return [];
  const lines = [`(Cores busy at 8 streams (CPU s/GB × GB/s; the relays run one thread each, the client is one Node process): ${busies.join('; ')}.)`];
  const tcp = r.haproxy;
  const moving = r['port-forward']?.cpuPerGB8;
  if (!tcp?.cpuPerGB8 || !tcp.gbps8 || moving === undefined || aead === null) return lines;
  const floor = moving + aead;
  const reached = paths.filter((p) => TERMINATING.includes(p) && r[p]?.gbps8).map((p) => `${LABEL[p]} ${(r[p]!.gbps8! / tcp.gbps8!).toFixed(2)}×`);
  lines.push(
    `(AES-128-GCM alone costs ${aead.toFixed(2)} CPU s/GB here (openssl speed, 16 KiB). Moving bytes as cheaply as port forward's splice (${moving.toFixed(2)} s/GB) and sealing them would cost ${floor.toFixed(2)} s/GB, against \`mode tcp\`'s ${tcp.cpuPerGB8.toFixed(2)}: a one-thread relay that terminates TLS or SSH could reach at most ${(tcp.cpuPerGB8 / floor).toFixed(2)}× \`mode tcp\`'s 8-stream throughput on this machine. Reached: ${reached.join('; ')}.)`,
  );
  return lines;
}

/**
 * The same question for new connections. A relay that cost nothing would leave each connection its
 * client's handshake and its target's accept; with every core of the machine on those two alone, a
 * path could open at most cores / (client + target CPU per connection) a second. Against the rate
 * `mode tcp` reached in the run, that bounds what any terminating relay could reach with this client
 * on this machine (generously: the Node client is one process, and `mode tcp` did not fill the cores).
 */
function handshakeBound(r: Results, paths: PathName[]): string[] {
  const perConn = (p: PathName) => {
    const x = r[p];
    return x?.connPerSec && x.clientUsPerConn !== undefined && x.targetUsPerConn !== undefined ? { relay: x.relayUsPerConn ?? 0, client: x.clientUsPerConn, target: x.targetUsPerConn, rate: x.connPerSec } : null;
  };
  const tcp = perConn('haproxy');
  if (!tcp) return [];
  const cores = (c: NonNullable<ReturnType<typeof perConn>>) => (((c.relay + c.client + c.target) * c.rate) / 1e6).toFixed(2);
  const lines = [`(New connections, CPU µs per connection relay + client + target and cores busy: \`mode tcp\` ${Math.round(tcp.relay)} + ${Math.round(tcp.client)} + ${Math.round(tcp.target)}, ${cores(tcp)} cores.)`];
  for (const p of paths.filter((x) => SLOW.includes(x))) {
    const c = perConn(p);
    if (!c) continue;
    const ceiling = (os.cpus().length * 1e6) / (c.client + c.target) / tcp.rate;
    lines.push(`(${LABEL[p]}: ${Math.round(c.relay)} + ${Math.round(c.client)} + ${Math.round(c.target)} µs, ${cores(c)} cores; with a relay that cost nothing, at most ${ceiling.toFixed(2)}× \`mode tcp\`'s rate; reached ${(c.rate / tcp.rate).toFixed(2)}×.)`);
  }
  return lines;
}

