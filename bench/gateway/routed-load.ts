import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { TUNNEL_NATIVE_ALPN } from '@stagedoor/contract';
import ssh2 from 'ssh2';
import WebSocket from 'ws';
import { connectionPool, pingPong, type Duplex } from './measure.ts';
import { ACK, firstPacket, firstPacketLength, rdpFirstPacket, STREAM, type FirstPacketKind } from './preface.ts';

/**
 * The routed benchmark's target and client, each run as its own process like load.ts:
 * `node --import tsx bench/gateway/routed-load.ts <mode> '<json args>'`, one JSON line out.
 *
 * Every connection, on every path, starts with a first packet (an RDP Connection Request or a TLS
 * ClientHello naming its token; inside an SSH channel or the tunnel, an RDP request without one);
 * the target skips it and answers `k`, then echoes, or streams when the client sends `S`. So HAProxy,
 * port forward and the routed listeners are driven by the same client doing the same work.
 */

/** How to reach the target, per connection `i`. */
export type Via =
  /** Plain TCP (direct, HAProxy, port forward, the RDP and TLS listeners): `tokens[i]` in the first packet. */
  | { kind: 'tcp'; ports: number[]; first: FirstPacketKind; tokens: string[] }
  /**
   * The SSH jump host: user name `tokens[i]`, one `direct-tcpip` channel to the target, from
   * `clients[i % n]` (it drops an 11th unauthenticated connection from one address, as sshd's
   * MaxStartups would: 32 handshakes at once come from 8 loopback addresses).
   */
  | { kind: 'ssh'; ports: number[]; tokens: string[]; target: number; clients: string[]; privateKeyFile?: string }
  /** The HTTPS tunnel: `{"token"}`, then binary frames. */
  | { kind: 'tunnel'; ports: number[]; tokens: string[] }
  /** The HTTPS tunnel's native mode (ADR 0032): TLS with ALPN `stagedoor-tcp/1`, the token line, the answer line, then the stream. */
  | { kind: 'tunnel-native'; ports: number[]; tokens: string[] }
  /** A TLS-terminating relay (HAProxy `bind ssl`, mode tcp): TLS, then the first packet without a token. */
  | { kind: 'tls'; ports: number[]; tokens: string[] };

type Args = Record<string, unknown>;
const HOST = '127.0.0.1';
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const pick = <T>(xs: T[], i: number): T => (xs.length === 1 ? xs[0]! : xs[i]!);

/** A connection through `via` whose first packet the target has acknowledged. `bulk`: read into one preallocated buffer. */
function open(via: Via, i: number, bulk = false): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let onData: (b: Buffer) => void = () => {};
    let acked = false;
    let conn: Duplex;
    const received = (b: Buffer) => {
      if (acked) return onData(b);
      if (b[0] !== ACK) return fail(new Error(`refused (answered ${b.subarray(0, 8).toString('hex')})`));
      acked = true;
      resolve(conn);
      if (b.length > 1) onData(b.subarray(1));
    };
    const fail = (err: Error) => {
      if (acked) return;
      acked = true;
      conn?.close();
      reject(err);
    };
    const port = pick(via.ports, i);
    const token = pick(via.tokens, i);
    if (via.kind === 'tcp') {
      const s = net.connect({ port, host: HOST, noDelay: true, ...(bulk ? { onread: { buffer: Buffer.alloc(256 * 1024), callback: (n: number, buf: Uint8Array) => (received(Buffer.from(buf.buffer, buf.byteOffset, n)), true) } } : {}) });
      if (!bulk) s.on('data', received);
      conn = { write: (b) => s.write(b), onData: (cb) => (onData = cb), close: () => s.destroy() };
      s.once('connect', () => s.write(firstPacket(via.first, token)));
      s.once('error', fail);
      s.once('close', () => fail(new Error('closed before the ack')));
    } else if (via.kind === 'ssh') {
      const c = new ssh2.Client();
      conn = { write: () => {}, onData: (cb) => (onData = cb), close: () => c.destroy() };
      c.once('ready', () =>
        c.forwardOut(HOST, 0, HOST, via.target, (err, ch) => {
          if (err) return fail(err);
          conn = { write: (b) => ch.write(b), onData: (cb) => (onData = cb), close: () => c.destroy() };
          ch.on('data', received);
          ch.on('error', () => undefined);
          ch.write(rdpFirstPacket('inside-the-channel'));
        }),
      );
      c.on('error', fail);
      c.once('close', () => fail(new Error('SSH closed before the ack')));
      const sock = net.connect({ host: HOST, port, localAddress: via.clients[i % via.clients.length], noDelay: true });
      sock.once('error', fail);
      // The OpenSSH peer: a real user with a key (`tokens` holds the user name); the jump host: the token.
      const privateKey = via.privateKeyFile ? fs.readFileSync(via.privateKeyFile) : undefined;
      c.connect({ sock, username: token, ...(privateKey ? { privateKey } : {}), hostVerifier: () => true, readyTimeout: 30_000 });
    } else if (via.kind === 'tls') {
      const s = tls.connect({ port, host: HOST, rejectUnauthorized: false, servername: 'gw.bench' });
      s.setNoDelay(true);
      s.on('data', received);
      conn = { write: (b) => s.write(b), onData: (cb) => (onData = cb), close: () => s.destroy() };
      s.once('secureConnect', () => s.write(rdpFirstPacket('inside-tls')));
      s.once('error', fail);
      s.once('close', () => fail(new Error('closed before the ack')));
    } else if (via.kind === 'tunnel-native') {
      const s = tls.connect({ port, host: HOST, rejectUnauthorized: false, ALPNProtocols: [TUNNEL_NATIVE_ALPN] });
      s.setNoDelay(true);
      let answer: Buffer | null = Buffer.alloc(0);
      s.on('data', (b: Buffer) => {
        if (!answer) return received(b);
        answer = Buffer.concat([answer, b]);
        const end = answer.indexOf(10);
        if (end < 0) return;
        if (!answer.subarray(0, end).toString().includes('"ok":true')) return fail(new Error(`tunnel answered ${answer.subarray(0, 80).toString()}`));
        const rest = answer.subarray(end + 1);
        answer = null;
        s.write(rdpFirstPacket('inside-the-tunnel'));
        if (rest.length) received(rest);
      });
      conn = { write: (b) => s.write(b), onData: (cb) => (onData = cb), close: () => s.destroy() };
      s.once('secureConnect', () => s.write(`${JSON.stringify({ token })}\n`));
      s.once('error', fail);
      s.once('close', () => fail(new Error('closed before the ack')));
    } else {
      const ws = new WebSocket(`wss://${HOST}:${port}/tunnel`, { rejectUnauthorized: false, perMessageDeflate: false, maxPayload: 1024 * 1024 });
      conn = { write: (b) => ws.send(b, { binary: true }), onData: (cb) => (onData = cb), close: () => ws.terminate() };
      let opened = false;
      ws.once('open', () => ws.send(JSON.stringify({ token })));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (opened) return received(data);
        if (isBinary || !String(data).includes('"ok":true')) return fail(new Error(`tunnel answered ${String(data).slice(0, 80)}`));
        opened = true;
        ws.send(rdpFirstPacket('inside-the-tunnel'), { binary: true });
      });
      ws.on('error', fail);
      ws.once('close', (code: number, reason: Buffer) => fail(new Error(`tunnel closed ${code} ${String(reason)}`)));
    }
  });
}

/** The target ("workstation"): skip the first packet, answer `k`; then echo, or stream after an `S`. */
async function target(port: number): Promise<void> {
  const chunk = Buffer.alloc(256 * 1024, 0x2e);
  const server = net.createServer({ allowHalfOpen: false, noDelay: true }, (s) => {
    s.on('error', () => undefined);
    let got: Buffer = Buffer.alloc(0);
    let state: 'first' | 'next' | 'echo' | 'stream' = 'first';
    s.on('data', (d: Buffer) => {
      if (state === 'echo') return void s.write(d);
      if (state === 'stream') return;
      got = got.length ? Buffer.concat([got, d]) : d;
      if (state === 'first') {
        const n = firstPacketLength(got);
        if (n === -1) return void s.destroy();
        if (n === null || got.length < n) return;
        s.write(Buffer.from([ACK]));
        got = got.subarray(n);
        state = 'next';
      }
      if (got.length === 0) return;
      if (got[0] === STREAM) {
        state = 'stream';
        const pump = () => {
          while (!s.destroyed && s.write(chunk));
        };
        s.on('drain', pump);
        return pump();
      }
      state = 'echo';
      s.write(got);
    });
  });
  await new Promise<void>((r) => server.listen({ port, host: HOST, backlog: 4096 }, r));
  out({ ready: true });
}

/** `streams` connections streaming workstation→user at once: Gbit/s received, after a second of warm-up. */
async function stream(via: Via, streams: number, seconds: number): Promise<{ gbps: number; totalBytes: number; clientCpuS: number }> {
  // The client's own CPU over the same span as totalBytes: receiving (and for TLS and SSH, decrypting) costs it per byte too.
  const cpu0 = process.cpuUsage();
  const conns = await Promise.all(Array.from({ length: streams }, (_, i) => open(via, i, true)));
  let bytes = 0;
  // Every byte received, warm-up included: the relay's CPU seconds per gigabyte are read over the client's whole run.
  let totalBytes = 0;
  let counting = false;
  for (const c of conns) {
    c.onData((b) => {
      totalBytes += b.length;
      if (counting) bytes += b.length;
    });
    c.write(Buffer.from([STREAM]));
  }
  await new Promise((r) => setTimeout(r, 1000));
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  counting = false;
  const gbps = (bytes * 8) / ((performance.now() - t0) / 1000) / 1e9;
  for (const c of conns) c.close();
  const cpu = process.cpuUsage(cpu0);
  return { gbps, totalBytes, clientCpuS: (cpu.user + cpu.system) / 1e6 };
}

/** Connection `i`: open through `via` (first packet, the grant check, the target's ack), then close. */
async function connRate(via: Via, count: number, concurrency: number) {
  let firstError = '';
  const cpu0 = process.cpuUsage();
  const r = await connectionPool(count, concurrency, (i) =>
    open(via, i).then(
      (c) => (c.close(), true),
      (err: Error) => ((firstError ||= err.message), false),
    ),
  );
  const cpu = process.cpuUsage(cpu0);
  return { ...r, firstError, clientCpuUs: (cpu.user + cpu.system) / Math.max(1, r.ok) };
}

/**
 * Open `count` sessions in `steps` equal batches, 32 at a time (the SSH jump host's per-address
 * handshake limit allows no more from 8 addresses). It reports after each batch and waits for a line
 * on stdin before the next (the caller reads the relay's memory in between); it holds them all until
 * stdin closes, and then exits.
 */
async function idle(via: Via, count: number, steps: number): Promise<void> {
  const held: Duplex[] = [];
  const nextLine = stdinLines();
  let failed = 0;
  for (let step = 1; step <= steps; step++) {
    const from = Math.round(((step - 1) * count) / steps);
    const to = Math.round((step * count) / steps);
    const r = await connectionPool(to - from, 32, (i) => open(via, from + i).then((c) => (held.push(c), true), () => false));
    failed += r.failed;
    out({ ready: true, step, open: held.length, failed });
    if (step < steps) await nextLine();
  }
}

/** A promise for each line on stdin, one at a time; the process exits when stdin closes. */
function stdinLines(): () => Promise<void> {
  let pending = 0;
  const waiters: (() => void)[] = [];
  process.stdin.on('data', (chunk: Buffer) => {
    for (const byte of chunk) if (byte === 0x0a) pending++;
    for (; pending > 0 && waiters.length > 0; pending--) waiters.shift()!();
  });
  process.stdin.once('end', () => process.exit(0));
  process.stdin.resume();
  return () => new Promise<void>((resolve) => (pending > 0 ? (pending--, resolve()) : waiters.push(resolve)));
}

async function main(): Promise<void> {
  const [mode, raw] = process.argv.slice(2);
  const args = JSON.parse(raw ?? '{}') as Args;
  const via = args.via as Via;
  switch (mode) {
    case 'target':
      return target(args.port as number);
    case 'stream':
      return out(await stream(via, args.streams as number, args.seconds as number));
    case 'rr':
      return out(await pingPong(await open(via, 0), args.seconds as number));
    case 'connrate':
      return out(await connRate(via, args.count as number, args.concurrency as number));
    case 'idle':
      return idle(via, args.count as number, (args.steps as number | undefined) ?? 1);
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((err: unknown) => {
  out({ error: (err as Error).message });
  process.exit(1);
});
