import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/ports.ts';
import { nativeStats, useRelayEngine } from '../src/native-relay.ts';
import { listenWithOnread, type RelayOutcome, type RelaySession } from '../src/relay.ts';
import { RELAY_ENGINES, sha256 } from './harness.ts';

/**
 * The byte path alone (no broker, no grants), many sessions at once, each doing something else:
 * bulk echoes of odd sizes with half-close, a workstation that talks and half-closes first, slow
 * readers, resets from either side mid-transfer, revocation mid-transfer. Every session must end
 * exactly once with the right kind of reason, every surviving byte stream must be exact, and the
 * relay must be left with no live session. Scenarios come from a seeded generator: a failure names
 * its seed and session.
 */
const SESSIONS = 120;
// `RELAY_STRESS_SEED=N npx vitest run apps/gateway/test/relay-stress.test.ts` tries another mix.
const SEED = Number(process.env.RELAY_STRESS_SEED ?? 20261129);

type Kind = 'echo' | 'talker' | 'slow-reader' | 'client-reset' | 'target-reset' | 'revoke';
const KINDS: Kind[] = ['echo', 'talker', 'slow-reader', 'client-reset', 'target-reset', 'revoke'];

function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe.each(RELAY_ENGINES)('relay under mixed load [%s relay]', (engine) => {
  const servers: net.Server[] = [];
  const ends = new Map<RelaySession, RelayOutcome[]>();
  const live = new Set<RelaySession>();
  /** By `kind:client port`: clients of different relay ports may share a local port. */
  const byClientPort = new Map<string, RelaySession>();
  let relayPort: Record<Kind, number>;
  let talkerPayload = new Map<number, Buffer>();

  beforeAll(async () => {
    const native = useRelayEngine(engine, 1).engine === 'native';
    expect(native).toBe(engine === 'native');
    // Workstations: an echo that half-closes after its input ends; a talker that sends what the
    // client asked for (an 8-byte length) and half-closes; a resetter that resets after 64 KiB.
    const echo = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    const talker = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      s.once('readable', function first() {
        const head = s.read(8) as Buffer | null;
        if (!head) return s.once('readable', first);
        const id = Number(head.readBigUInt64BE());
        s.end(talkerPayload.get(id) ?? Buffer.alloc(0));
        s.resume(); // what the client uploads after its header is read and dropped
      });
    });
    const resetter = net.createServer((s) => {
      let got = 0;
      s.on('error', () => undefined);
      s.on('data', (d) => {
        got += d.length;
        if (got >= 64 * 1024) s.resetAndDestroy();
      });
    });
    const targets = { echo: await listen(echo), talker: await listen(talker), resetter: await listen(resetter) };
    servers.push(echo, talker, resetter);
    const targetOf: Record<Kind, number> = { echo: targets.echo, 'slow-reader': targets.echo, 'client-reset': targets.echo, revoke: targets.echo, talker: targets.talker, 'target-reset': targets.resetter };
    relayPort = {} as Record<Kind, number>;
    for (const kind of KINDS) {
      const relay = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
      listenWithOnread(relay, (_server, socket, session) => {
        socket.on('error', () => undefined);
        session.native = native;
        live.add(session);
        byClientPort.set(`${kind}:${socket.remotePort}`, session);
        session.onEnd = (o, s) => {
          live.delete(s);
          ends.set(s, [...(ends.get(s) ?? []), o]);
        };
        session.start(socket, { host: '127.0.0.1', port: targetOf[kind], connectTimeoutMs: 5000 });
      });
      relayPort[kind] = await listen(relay);
      servers.push(relay);
    }
  });
  afterAll(() => {
    for (const s of servers) s.close();
  });

  it(`${SESSIONS} sessions of six kinds at once end exactly once each, with exact bytes where bytes survive (seed ${SEED})`, async () => {
    const rnd = prng(SEED);
    talkerPayload = new Map();
    const plans = Array.from({ length: SESSIONS }, (_, id) => ({ id, kind: KINDS[Math.floor(rnd() * KINDS.length)]!, size: 1 + Math.floor(rnd() ** 2 * 3 * 1024 * 1024) }));
    for (const p of plans) if (p.kind === 'talker') talkerPayload.set(p.id, randomBytes(p.size));

    const results = await Promise.all(plans.map((p) => runOne(p)));
    for (const [i, r] of results.entries()) expect(r, `session ${i} (${plans[i]!.kind}, ${plans[i]!.size} bytes)`).toBe('ok');

    await waitFor('every relayed session to end', () => live.size === 0 && ends.size === SESSIONS, 30_000, 20);
    for (const list of ends.values()) expect(list.length, `ended ${list.length} times: ${JSON.stringify(list)}`).toBe(1);
    const reasons = [...ends.values()].map((l) => l[0]!.reason);
    expect(reasons.filter((r) => r.startsWith('revoked')).length).toBe(plans.filter((p) => p.kind === 'revoke').length);
    expect(reasons.filter((r) => r.startsWith('target-error')).length).toBeGreaterThan(0);
    if (engine === 'native') expect(nativeStats()?.live).toBe(0);
  });

  function runOne(p: { id: number; kind: Kind; size: number }): Promise<string> {
    return new Promise((resolve) => {
      const c = net.connect({ port: relayPort[p.kind], host: '127.0.0.1', allowHalfOpen: true });
      const chunks: Buffer[] = [];
      let got = 0;
      const timer = setTimeout(() => resolve(`timed out with ${got} bytes`), 60_000);
      const done = (r: string) => {
        clearTimeout(timer);
        resolve(r);
      };
      c.on('error', (err: NodeJS.ErrnoException) => {
        // Resets and revocations end a client with an error or a plain close; either is fine there.
        if (p.kind === 'client-reset' || p.kind === 'target-reset' || p.kind === 'revoke') return;
        done(`client error ${err.code}`);
      });
      // The relay lets such a client go with a FIN (or a reset): with allowHalfOpen, a FIN is 'end'.
      const cutOff = () => {
        if (p.kind !== 'client-reset' && p.kind !== 'target-reset' && p.kind !== 'revoke') return;
        c.destroy();
        done('ok');
      };
      c.on('close', cutOff);
      c.on('end', cutOff);
      c.on('data', (d) => {
        chunks.push(d);
        got += d.length;
        if (p.kind === 'client-reset' && got >= 32 * 1024) c.resetAndDestroy();
      });
      const payload = randomBytes(Math.max(p.size, 128 * 1024));
      c.on('connect', () => {
        switch (p.kind) {
          case 'echo':
            c.end(payload.subarray(0, p.size));
            c.on('end', () => done(got === p.size && sha256(Buffer.concat(chunks)) === sha256(payload.subarray(0, p.size)) ? 'ok' : `echo got ${got} of ${p.size}`));
            break;
          case 'slow-reader':
            c.write(payload.subarray(0, p.size));
            c.pause();
            setTimeout(() => {
              c.resume();
              c.end();
            }, 150);
            c.on('end', () => done(got === p.size && sha256(Buffer.concat(chunks)) === sha256(payload.subarray(0, p.size)) ? 'ok' : `slow reader got ${got} of ${p.size}`));
            break;
          case 'talker': {
            const head = Buffer.alloc(8);
            head.writeBigUInt64BE(BigInt(p.id));
            c.write(head);
            c.on('end', () => {
              const want = talkerPayload.get(p.id)!;
              const ok = got === want.length && sha256(Buffer.concat(chunks)) === sha256(want);
              // The far side is done; this side uploads a little more, then half-closes too.
              c.end(payload.subarray(0, 1000), () => done(ok ? 'ok' : `talker got ${got} of ${want.length}`));
            });
            break;
          }
          case 'client-reset':
          case 'target-reset':
            c.write(payload); // at least 128 KiB: the resetter resets after 64 KiB, the client after 32 KiB echoed
            break;
          case 'revoke':
            c.write(payload.subarray(0, 64 * 1024));
            c.once('data', () => revokeOneOf(c));
            break;
        }
      });
    });
  }

  /** Revoke the session this client goes through (known by the client's port, recorded at accept). */
  function revokeOneOf(c: net.Socket): void {
    byClientPort.get(`revoke:${c.localPort}`)?.close('revoked: stress test');
  }
});
