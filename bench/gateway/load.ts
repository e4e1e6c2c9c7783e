import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { connectionPool, percentile, pingPong } from './measure.ts';

/**
 * Load generators and target servers for bench/gateway/run.ts, each run as its own process:
 * `tsx bench/gateway/load.ts <mode> '<json args>'`. Every mode prints one JSON line with its result
 * (servers print {"ready":true}). Loopback only; every loop is bounded in count or time.
 */

type Args = Record<string, unknown>;
const [mode, raw] = process.argv.slice(2);
const args = JSON.parse(raw ?? '{}') as Args;
const HOST = '127.0.0.1';
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const portsOf = (a: Args): number[] => (a.ports as number[] | undefined) ?? [a.port as number];

const FRAME = 1200;
const EVENT = 64;
const DATA = 0x46; // 'F'
const ECHO = 0x45; // 'E'

async function main(): Promise<void> {
  switch (mode) {
    case 'echo-server':
      return echoServer(portsOf(args));
    case 'studio-server':
      return studioServer(portsOf(args), args.mbps as number, args.tickMs as number);
    case 'rr':
      return out(await rr(args.port as number, args.seconds as number));
    case 'connrate':
      return out(await connRate(portsOf(args), args.count as number, args.concurrency as number));
    case 'idle':
      return idle(portsOf(args), args.count as number);
    case 'studio-client':
      return out(await studioClient(portsOf(args), args.sessions as number, args.seconds as number, args.eventMs as number));
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

function listen(port: number, onConn: (s: net.Socket) => void): Promise<void> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => undefined);
    onConn(s);
  });
  return new Promise((r) => server.listen({ port, host: HOST, backlog: 4096 }, r));
}

async function echoServer(ports: number[]): Promise<void> {
  await Promise.all(ports.map((p) => listen(p, (s) => s.pipe(s))));
  out({ ready: true });
}

/** Each connection: `mbps` downstream in 1,200-byte frames every tick; each 64-byte event echoed at once. */
async function studioServer(ports: number[], mbps: number, tickMs: number): Promise<void> {
  const perTick = Math.max(1, Math.round((mbps * 1e6) / 8 / (1000 / tickMs) / FRAME));
  const batch = Buffer.alloc(perTick * FRAME, 0x2e);
  for (let i = 0; i < perTick; i++) batch[i * FRAME] = DATA;
  const live = new Set<net.Socket>();
  await Promise.all(
    ports.map((p) =>
      listen(p, (s) => {
        live.add(s);
        let pending: Buffer = Buffer.alloc(0);
        s.on('data', (d: Buffer) => {
          pending = pending.length ? Buffer.concat([pending, d]) : d;
          while (pending.length >= EVENT) {
            const ev = Buffer.from(pending.subarray(0, EVENT));
            ev[0] = ECHO;
            s.write(ev);
            pending = pending.subarray(EVENT);
          }
        });
        s.on('close', () => live.delete(s));
      }),
    ),
  );
  setInterval(() => {
    for (const s of live) if (s.writableLength < 512 * 1024) s.write(batch); // a stalled viewer drops frames, as a real encoder would
  }, tickMs);
  out({ ready: true, framesPerTick: perTick });
}

/** 64-byte ping-pong on one connection for `seconds` (used when sockperf is missing). */
async function rr(port: number, seconds: number): Promise<{ p50Us: number; p99Us: number; samples: number }> {
  const s = net.connect({ port, host: HOST, noDelay: true });
  await new Promise((r) => s.once('connect', r));
  return pingPong({ write: (b) => s.write(b), onData: (cb) => s.on('data', cb), close: () => s.destroy() }, seconds);
}

/** `count` connections, `concurrency` at a time: connect, 1 byte, its echo, close. One port each when several are given. */
function connRate(ports: number[], count: number, concurrency: number): Promise<{ rate: number; elapsedMs: number; ok: number; failed: number }> {
  const one = (i: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.connect({ port: ports.length === 1 ? ports[0]! : ports[i]!, host: HOST, noDelay: true });
      s.once('connect', () => s.write('x'));
      s.once('data', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.once('close', () => resolve(false));
    });
  return connectionPool(count, concurrency, one);
}

/** Open `count` relayed connections (retrying a port that is not open yet), report, hold them until stdin closes. */
async function idle(ports: number[], count: number): Promise<void> {
  const sockets: net.Socket[] = [];
  let failed = 0;
  let next = 0;
  const open = (port: number) =>
    new Promise<void>((resolve) => {
      let tries = 0;
      const attempt = () => {
        const s = net.connect({ port, host: HOST });
        s.once('connect', () => {
          s.write('x');
          s.once('data', () => {
            sockets.push(s);
            resolve();
          });
        });
        s.once('error', () => {
          if (++tries < 40) setTimeout(attempt, 50);
          else {
            failed++;
            resolve();
          }
        });
      };
      attempt();
    });
  await Promise.all(
    Array.from({ length: 200 }, async () => {
      while (next < count) {
        const i = next++;
        await open(ports.length === 1 ? ports[0]! : ports[i]!);
      }
    }),
  );
  out({ ready: true, open: sockets.length, failed });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/** `sessions` viewers: count downstream bytes, send a 64-byte input event every `eventMs`, time its echo. */
async function studioClient(ports: number[], sessions: number, seconds: number, eventMs: number): Promise<{ deliveredMbps: number; perSessionMbps: number; p50Us: number; p99Us: number; events: number; echoes: number; cpuShare: number }> {
  let bytes = 0;
  let measuring = false;
  const rtts: number[] = [];
  let events = 0;
  const socks: net.Socket[] = [];
  await Promise.all(
    Array.from({ length: sessions }, (_, i) =>
      new Promise<void>((resolve, reject) => {
        const s = net.connect({ port: ports.length === 1 ? ports[0]! : ports[i]!, host: HOST, noDelay: true });
        s.once('connect', () => resolve());
        s.once('error', reject);
        let rem = 0;
        let type = 0;
        const echo = Buffer.alloc(EVENT);
        let fill = 0;
        s.on('data', (d: Buffer) => {
          if (measuring) bytes += d.length;
          let pos = 0;
          while (pos < d.length) {
            if (rem === 0) {
              type = d[pos]!;
              rem = type === ECHO ? EVENT : FRAME;
              fill = 0;
            }
            const take = Math.min(rem, d.length - pos);
            if (type === ECHO) {
              d.copy(echo, fill, pos, pos + take);
              fill += take;
            }
            pos += take;
            rem -= take;
            if (rem === 0 && type === ECHO && measuring) rtts.push((performance.now() - echo.readDoubleLE(8)) * 1000);
          }
        });
        socks.push(s);
      }),
    ),
  );
  const ev = Buffer.alloc(EVENT, 0x20);
  ev[0] = 0x49;
  const timer = setInterval(() => {
    for (const s of socks) {
      const e = Buffer.from(ev);
      e.writeDoubleLE(performance.now(), 8);
      s.write(e);
      if (measuring) events++;
    }
  }, eventMs);
  await new Promise((r) => setTimeout(r, 2000)); // warm-up
  measuring = true;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuShare = (cpu.user + cpu.system) / 1e6 / elapsed;
  clearInterval(timer);
  for (const s of socks) s.destroy();
  rtts.sort((a, b) => a - b);
  const deliveredMbps = (bytes * 8) / elapsed / 1e6;
  return { deliveredMbps, perSessionMbps: deliveredMbps / sessions, p50Us: percentile(rtts, 50), p99Us: percentile(rtts, 99), events, echoes: rtts.length, cpuShare };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
