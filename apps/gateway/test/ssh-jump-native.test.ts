import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Client, ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// First of the gateway's modules: ssh2 loads through it, so the native relay can take the keys (ADR 0033).
import { connectJumpClient, echoOnce, echoServer, forwardOut, grantTable, type TestGrant } from './ssh-jump-harness.ts';
import { waitFor } from '../../../test/support/ports.ts';
import { createLog } from '../src/log.ts';
import { nativeInjectFaults, nativeStats, useRelayEngine } from '../src/native-relay.ts';
import { loadOrCreateSshHostKey, type SshHostKey } from '../src/routed/ssh-host-key.ts';
import { SshJumpServer } from '../src/routed/ssh-jump.ts';

/**
 * The SSH jump host's native mode (ADR 0033): once the one channel is open, the relay threads take
 * the connection with ssh2's AES-GCM keys and move the channel's packets. What only this mode must
 * show: bulk data byte for byte through the client's window, keepalives answered, and a packet that
 * is not the client's next one (tampered, replayed, reordered) or a key re-exchange ending the session
 * with nothing of it relayed. ssh-jump.test.ts runs the common behaviour in both modes.
 */
const log = createLog(process.env.STAGEDOOR_TEST_LOG ? 'debug' : 'silent');
const { admit, grant } = grantTable();
let dir: string;
let hostKey: SshHostKey;
let jump: SshJumpServer;
let echo: Awaited<ReturnType<typeof echoServer>>;
let sshConfig: string;

beforeAll(async () => {
  expect(useRelayEngine('native', 1).engine).toBe('native');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-ssh-native-'));
  hostKey = loadOrCreateSshHostKey(path.join(dir, 'gateway'));
  echo = await echoServer();
  jump = await new SshJumpServer({ hostKey: hostKey.privateKey, listenHost: '127.0.0.1', port: 0, admit, log, nativeRelay: true }).listen();
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${jump.address().port} ${hostKey.publicKey}\n`);
  sshConfig = path.join(dir, 'ssh_config');
  fs.writeFileSync(sshConfig, ['Host *', `  UserKnownHostsFile ${knownHosts}`, '  GlobalKnownHostsFile /dev/null', '  StrictHostKeyChecking yes', '  BatchMode yes', '  ConnectTimeout 60', ''].join('\n'));
});

afterAll(async () => {
  await jump?.close();
  echo?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A TCP hop between an ssh2 client and the jump host that can rewrite what the client sends once
 * `armed`: from then on it cuts the stream into the client's packets (AES-GCM: a clear length, then
 * that many bytes and a 16-byte tag) and hands each to `rewrite`. It is armed while the session is
 * idle, so it starts on a packet boundary.
 */
async function packetHop(): Promise<{ port: number; arm: (rewrite: (packet: Buffer) => Buffer[]) => void; packets: () => number; close: () => void }> {
  let rewrite: ((packet: Buffer) => Buffer[]) | null = null;
  let seen = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: jump.address().port });
    for (const s of [client, upstream]) s.on('error', () => undefined);
    upstream.pipe(client);
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    let pending = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (!rewrite) return void upstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0) + 16) {
        const size = 4 + pending.readUInt32BE(0) + 16;
        const packet = Buffer.from(pending.subarray(0, size));
        pending = pending.subarray(size);
        seen++;
        for (const out of rewrite(packet)) upstream.write(out);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, arm: (r) => (rewrite = r), packets: () => seen, close: () => server.close() };
}

/** A session through the hop, open and echoing (so the native relay holds it), ready to be tampered with. */
async function sessionThroughHop(options: { keepaliveMs?: number } = {}): Promise<{ g: TestGrant; c: Client; ch: ClientChannel; hop: Awaited<ReturnType<typeof packetHop>> }> {
  const hop = await packetHop();
  const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
  const sock = net.connect({ host: '127.0.0.1', port: hop.port });
  await new Promise((r) => sock.once('connect', r));
  const c = options.keepaliveMs ? await connectKeepalive(hop.port, token, sock, options.keepaliveMs) : await connectJumpClient({ port: hop.port, token, sock, hostPublicKey: hostKey.publicKey });
  c.on('error', () => undefined); // the gateway cutting the connection is what some tests expect
  const ch = await forwardOut(c, echo.port);
  expect(await echoOnce(ch, 'ready')).toBe('ready');
  expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: 'native' })]);
  return { g, c, ch, hop };
}

function connectKeepalive(port: number, token: string, sock: net.Socket, keepaliveMs: number): Promise<Client> {
  return connectJumpClient({ port, token, sock, hostPublicKey: hostKey.publicKey, keepalive: { intervalMs: keepaliveMs, countMax: 2 } });
}

/** ssh2's client protocol object, as far as a test starts a re-exchange and sees it under way. */
interface KexProtocol {
  rekey(): void;
  _kexinit: unknown;
}

/**
 * OpenSSH `ssh -W` through the jump host to the echo server with `args`: half of `payload` up and back,
 * then `midway` (the session is live), then the rest and the end. What came back, and how ssh exited.
 */
async function sshW(token: string, payload: Buffer, args: string[], midway: () => void) {
  const ssh = spawn('ssh', ['-F', sshConfig, ...args, '-p', String(jump.address().port), '-W', `127.0.0.1:${echo.port}`, `${token}@127.0.0.1`], { stdio: ['pipe', 'pipe', 'pipe'] });
  const back = createHash('sha256');
  let backBytes = 0;
  let stderr = '';
  ssh.stdout.on('data', (d: Buffer) => {
    back.update(d);
    backBytes += d.length;
  });
  ssh.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => ssh.on('close', r));
  // A stall (a relay that stopped reading) fails the test instead of leaving ssh, and the worker, running.
  const stall = setTimeout(() => ssh.kill('SIGKILL'), 90_000);
  exited.finally(() => clearTimeout(stall));
  ssh.stdin.write(payload.subarray(0, payload.length / 2));
  await waitFor('half of the bytes back', () => backBytes >= payload.length / 2 || ssh.exitCode !== null, 120_000);
  midway();
  ssh.stdin.end(payload.subarray(payload.length / 2));
  const code = await exited;
  return { code, stderr, backBytes, digest: back.digest('hex') };
}

describe('SSH jump host, native mode', () => {
  it('carries 16 MiB each way byte for byte through OpenSSH ssh -W, within the windows, and counts the bytes while it runs', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
    const liveBefore = nativeStats()!.live;
    const payload = randomBytes(16 * 1024 * 1024);
    const r = await sshW(token, payload, [], () => {
      // Half of it is through: the session is the native relay's while it runs, and its bytes are counted.
      expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: 'native' })]);
      expect(nativeStats()!.live).toBe(liveBefore + 1);
      expect(jump.sessions()[0]!.bytesUp).toBeGreaterThanOrEqual(payload.length / 2);
    });
    await waitFor('the session to be reported', () => g.ended.length > 0);
    expect({ code: r.code, stderr: r.stderr, ended: g.ended }).toEqual({ code: 0, stderr: '', ended: [{ reason: 'client-closed', bytesUp: payload.length, bytesDown: payload.length }] });
    expect(r.backBytes).toBe(payload.length);
    expect(r.digest).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(nativeStats()!.live).toBe(liveBefore);
  });

  it('answers OpenSSH\'s key re-exchanges itself (RekeyLimit 1M: dozens of them) and the bytes go on, exact, under each new key', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
    const payload = randomBytes(16 * 1024 * 1024);
    const r = await sshW(token, payload, ['-v', '-o', 'RekeyLimit=1M'], () => {
      expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: 'native' })]);
    });
    // OpenSSH verified each reply: the exchange hash signed with the pinned host key, the new keys agreed.
    const newKeys = r.stderr.split('\n').filter((l) => l.includes('SSH2_MSG_NEWKEYS received')).length;
    expect(newKeys, r.stderr.slice(-2000)).toBeGreaterThan(10); // the first exchange (ssh2's) and the relay's
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.backBytes).toBe(payload.length);
    expect(r.digest).toBe(createHash('sha256').update(payload).digest('hex'));
    await waitFor('the session to be reported', () => g.ended.length > 0);
    expect(g.ended).toEqual([{ reason: 'client-closed', bytesUp: payload.length, bytesDown: payload.length }]);
  });

  it('when the relay cannot take the session (a failed allocation in add), ssh2 relays it in Node and the client sees no difference', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
    const c = await connectJumpClient({ port: jump.address().port, token, hostPublicKey: hostKey.publicKey });
    nativeInjectFaults('alloc', 0, 1);
    try {
      const ch = await forwardOut(c, echo.port);
      expect(await echoOnce(ch, 'in node')).toBe('in node');
    } finally {
      nativeInjectFaults('alloc', 0, 0);
    }
    expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: 'node', bytesUp: 7, bytesDown: 7 })]);
    c.end();
    await waitFor('the session to be reported', () => g.ended.length > 0);
    expect(g.ended).toEqual([{ reason: 'client-closed', bytesUp: 7, bytesDown: 7 }]);
  });

  it('answers keepalives (REQUEST_FAILURE, as sshd does to an unknown request), so a client that sends them stays connected', async () => {
    const { c, ch, hop } = await sessionThroughHop({ keepaliveMs: 100 });
    const idle = hop.packets();
    hop.arm((p) => [p]); // only to count the client's packets: each idle one is a keepalive
    await waitFor('five keepalives', () => hop.packets() >= idle + 5, 30_000);
    expect(await echoOnce(ch, 'still here')).toBe('still here');
    c.end();
    hop.close();
  });

  it('a control: a packet passed on unchanged through the hop is relayed', async () => {
    const { g, c, ch, hop } = await sessionThroughHop();
    hop.arm((p) => [p]);
    expect(await echoOnce(ch, 'through')).toBe('through');
    expect(g.ended).toEqual([]);
    c.end();
    hop.close();
  });

  it('attack: a tampered packet ends the session, and nothing of it reaches the desktop', async () => {
    const { g, ch, hop } = await sessionThroughHop();
    const before = echo.received();
    hop.arm((p) => {
      p[p.length - 20] = p[p.length - 20]! ^ 0x01; // one bit of the ciphertext
      return [p];
    });
    ch.write('forged');
    await waitFor('the session to end', () => g.ended.length > 0);
    expect(g.ended[0]!.reason).toBe('client-error: EBADMSG');
    expect(echo.received()).toBe(before);
    hop.close();
  });

  it('attack: a replayed packet ends the session; the original went through once', async () => {
    const { g, ch, hop } = await sessionThroughHop();
    const before = echo.received();
    hop.arm((p) => [p, Buffer.from(p)]);
    ch.write('once');
    await waitFor('the session to end', () => g.ended.length > 0);
    expect(g.ended[0]!.reason).toBe('client-error: EBADMSG');
    expect(echo.received()).toBe(before + 'once'.length);
    hop.close();
  });

  it('attack: reordered packets end the session, and neither reaches the desktop', async () => {
    const { g, ch, hop } = await sessionThroughHop();
    const before = echo.received();
    let held: Buffer | null = null;
    hop.arm((p) => {
      if (!held) return (held = p), [];
      return [p, held];
    });
    ch.write('first');
    ch.write('second');
    await waitFor('the session to end', () => g.ended.length > 0);
    expect(g.ended[0]!.reason).toBe('client-error: EBADMSG');
    expect(echo.received()).toBe(before);
    hop.close();
  });

  it('a client that stops reading while the desktop echoes, then reads again: its window adjustment is read past what waits for the desktop, and every byte comes back', async () => {
    // The desktop (an echo) stops reading once it cannot write; the relay stops reading it once the
    // client's window is shut. A relay that then also stopped reading the client (because the desktop
    // is full) would never see the client's window adjustment when it reads again: a deadlock.
    const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
    const c = await connectJumpClient({ port: jump.address().port, token, hostPublicKey: hostKey.publicKey });
    const ch = await forwardOut(c, echo.port);
    expect(await echoOnce(ch, 'ready')).toBe('ready');
    expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: 'native' })]);
    const payload = randomBytes(64 * 1024 * 1024); // more than every buffer on the way holds
    const back = createHash('sha256');
    let got = 0;
    ch.pause();
    ch.write(payload);
    let last = -1;
    await waitFor('the stream to stall with the client not reading', () => {
      const up = jump.sessions()[0]!.bytesUp;
      const still = up === last;
      last = up;
      return still;
    }, 60_000, 500);
    expect(last).toBeLessThan(payload.length); // stalled part way, as the test needs
    ch.on('data', (d: Buffer) => {
      back.update(d);
      got += d.length;
    });
    ch.resume();
    await waitFor('every byte back', () => got >= payload.length, 60_000, 50);
    expect(got).toBe(payload.length);
    expect(back.digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    c.end();
    await waitFor('the session to end', () => g.ended.length > 0);
  });

  it('a client that closes the channel at once behind its last bytes: a desktop slow to take them still gets every byte the relay read', async () => {
    let got = 0;
    const slow = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pause(); // takes nothing for 3 s, more than the 2 s a closed channel's connection is given
      s.on('data', (d: Buffer) => (got += d.length));
      setTimeout(() => s.resume(), 3000);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    try {
      const port = (slow.address() as net.AddressInfo).port;
      const { token, g } = grant({ host: '127.0.0.1', port });
      const c = await connectJumpClient({ port: jump.address().port, token, hostPublicKey: hostKey.publicKey });
      c.on('error', () => undefined);
      const ch = await forwardOut(c, port);
      ch.write(randomBytes(16 * 1024 * 1024)); // more than the desktop's socket takes while it reads nothing
      await waitFor('the relay to hold bytes for the desktop', () => (jump.sessions()[0]?.bytesUp ?? 0) >= 4 * 1024 * 1024, 30_000, 20);
      ch.close(); // CLOSE now, without waiting for the desktop (RFC 4254 lets a party do so)
      await waitFor('the session to end', () => g.ended.length > 0, 60_000, 50);
      await waitFor('the desktop to have every byte the relay read', () => got === g.ended[0]!.bytesUp, 30_000, 50);
      expect(got).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    } finally {
      slow.close();
    }
  });

  it('a key re-exchange from ssh2\'s client too, twice: answered, the session stays native and echoes under each new key', async () => {
    const { g, c, ch, hop } = await sessionThroughHop();
    // ssh2's client has no public rekey; its protocol object starts one as OpenSSH's ~R would.
    const rekey = () => (c as unknown as { _protocol: { rekey(): void } })._protocol.rekey();
    for (const word of ['after one', 'after two']) {
      rekey();
      expect(await echoOnce(ch, word)).toBe(word); // queued by ssh2 until its NEWKEYS, then sealed with the new key
    }
    expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: 'native' })]);
    c.end();
    await waitFor('the session to end', () => g.ended.length > 0);
    expect(g.ended[0]!.reason).toBe('client-closed');
    hop.close();
  });

  it("attack: channel data slipped into the client's key exchange ends the session, and none of it reaches the desktop", async () => {
    const { g, c, ch, hop } = await sessionThroughHop();
    c.on('error', () => undefined);
    const before = echo.received();
    const proto = (c as unknown as { _protocol: KexProtocol })._protocol;
    proto.rekey();
    // ssh2 holds channel data back while its exchange runs (RFC 4253 7.1): a hostile client sends it
    // anyway, sealed with the keys of the moment. ssh2 queues while `_kexinit` is set; unset, it sends.
    const held = proto._kexinit;
    proto._kexinit = undefined;
    ch.write('smuggled');
    proto._kexinit = held;
    await waitFor('the session to end', () => g.ended.length > 0);
    expect(g.ended[0]!.reason).toBe('client-error: EPROTO');
    expect(echo.received()).toBe(before);
    hop.close();
  });

  it('a key re-exchange that finds no memory ends that session as a relay error, and the relay takes the next one', async () => {
    const { g, c, hop } = await sessionThroughHop();
    c.on('error', () => undefined);
    const closed = new Promise<void>((r) => c.on('close', () => r()));
    nativeInjectFaults('alloc', 0, 1_000);
    try {
      (c as unknown as { _protocol: { rekey(): void } })._protocol.rekey();
      await waitFor('the session to end', () => g.ended.length > 0);
    } finally {
      nativeInjectFaults('alloc', 0, 0);
    }
    expect(g.ended[0]!.reason).toBe('relay-error: ENOMEM');
    await closed;
    hop.close();
    const next = await sessionThroughHop(); // the relay threads carry on
    next.c.end();
    next.hop.close();
  });

  it('a key re-exchange the relay cannot answer (no curve25519-sha256 offered) ends the session, and says so', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
    const c = await connectJumpClient({ port: jump.address().port, token, hostPublicKey: hostKey.publicKey, algorithms: { kex: ['ecdh-sha2-nistp256'] } });
    c.on('error', () => undefined);
    const closed = new Promise<void>((r) => c.on('close', () => r()));
    const ch = await forwardOut(c, echo.port);
    expect(await echoOnce(ch, 'ready')).toBe('ready');
    expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: 'native' })]);
    (c as unknown as { _protocol: { rekey(): void } })._protocol.rekey();
    await closed;
    await waitFor('the session to end', () => g.ended.length > 0);
    expect(g.ended[0]!.reason).toMatch(/^client-rekey/);
  });
});
