import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// First of the gateway's modules: ssh2 loads through it, so the native relay can take the keys (ADR 0033).
import { connectJumpClient, echoOnce, echoServer, forwardOut, grantTable, run } from './ssh-jump-harness.ts';
import { freePort, waitFor } from '../../../test/support/ports.ts';
import { startLocalSshd } from '../../../test/support/sshd.ts';
import { AddressList } from '../src/addresses.ts';
import { createLog } from '../src/log.ts';
import { DEFAULT_HALF_CLOSE_SECONDS, setHalfCloseSeconds, useRelayEngine } from '../src/native-relay.ts';
import { buildProxyV2 } from '../src/proxy-protocol.ts';
import { REFUSAL_MESSAGES } from '../src/routed/admission.ts';
import { loadOrCreateSshHostKey, newOpenSshEd25519Key, SSH_HOST_KEY_FILE, type SshHostKey } from '../src/routed/ssh-host-key.ts';
import { ssh2 } from '../src/routed/ssh2-keys.ts';
import { sameTarget } from '../src/routed/ssh-jump-connection.ts';
import { SshJumpServer } from '../src/routed/ssh-jump.ts';

/**
 * The SSH jump host against real OpenSSH: `sshd` as the desktop, `ssh -J` as the user; the grant
 * table is the harness's (token → target, single use). The sessions run twice: relayed by ssh2 in
 * Node, and handed to the native relay at the channel open (ADR 0033).
 */
const ENGINES = ['node', 'native'] as const;
type Engine = (typeof ENGINES)[number];

const { admits, admit, grant } = grantTable();

const log = createLog(process.env.STAGEDOOR_TEST_LOG ? 'debug' : 'silent');
let dir: string;
let hostKey: SshHostKey;
const jumps = {} as Record<Engine, SshJumpServer>;
let sshd: Awaited<ReturnType<typeof startLocalSshd>>;
let echo: Awaited<ReturnType<typeof echoServer>>;
let sshConfig: string;

/** The user's command: `ssh -J <token>@gateway user@desktop`, with the jump host pinned. */
function sshJump(jump: SshJumpServer, token: string, port: number, command = 'echo hello') {
  return run('ssh', ['-F', sshConfig, '-J', `${token}@127.0.0.1:${jump.address().port}`, '-p', String(port), `${sshd.user}@127.0.0.1`, command]);
}

function connectClient(opts: { port: number; token: string; sock?: net.Socket }): Promise<Client> {
  return connectJumpClient({ ...opts, hostPublicKey: hostKey.publicKey });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-ssh-jump-'));
  hostKey = loadOrCreateSshHostKey(path.join(dir, 'gateway'));
  sshd = await startLocalSshd(fs.mkdtempSync(path.join(dir, 'sshd-')), await freePort());
  echo = await echoServer();
  expect(useRelayEngine('native', 1).engine).toBe('native');
  for (const engine of ENGINES) jumps[engine] = await new SshJumpServer({ hostKey: hostKey.privateKey, listenHost: '127.0.0.1', port: 0, admit, log, nativeRelay: engine === 'native' }).listen();
  const knownHosts = path.join(dir, 'known_hosts');
  // The lines the instructions give: the jump host's key pinned, and the desktop's own.
  const jumpLines = ENGINES.map((e) => `[127.0.0.1]:${jumps[e].address().port} ${hostKey.publicKey}\n`).join('');
  fs.writeFileSync(knownHosts, `${jumpLines}[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
  sshConfig = path.join(dir, 'ssh_config');
  fs.writeFileSync(
    sshConfig,
    [
      'Host *',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      `  IdentityFile ${sshd.clientKey}`,
      '  IdentitiesOnly yes',
      '  ConnectTimeout 60',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  for (const j of Object.values(jumps)) await j.close();
  echo?.close();
  await sshd?.proc.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe.each(ENGINES)('SSH jump host with OpenSSH (%s relay)', (engine) => {
  let jump: SshJumpServer;
  beforeAll(() => {
    jump = jumps[engine];
  });

  it('runs a command on the desktop through ssh -J, and reports the session once with its bytes', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: sshd.port });
    const r = await sshJump(jump, token, sshd.port);
    expect(r.stderr).not.toContain('Stagedoor:');
    expect(r.stdout.trim()).toBe('hello');
    expect(r.code).toBe(0);
    await waitFor('the session to be reported', () => g.ended.length > 0);
    expect(g.ended).toHaveLength(1);
    expect(g.ended[0]!.bytesUp).toBeGreaterThan(0);
    expect(g.ended[0]!.bytesDown).toBeGreaterThan(0);
    // OpenSSH tries auth methods in turn; the grant was asked about once, from the client's address.
    expect(admits.filter((a) => a.token === token)).toEqual([{ listener: 'ssh', token, clientAddress: '127.0.0.1' }]);
    expect(jump.sessions()).toEqual([]);

    // The grant is single use here: the same token again is refused, and OpenSSH shows why.
    const again = await sshJump(jump, token, sshd.port);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(REFUSAL_MESSAGES.used);
    expect(again.stderr).toContain('was used');
    expect(again.stdout).toBe('');
  });

  it('works with the ~/.ssh/config snippet the instructions give (ProxyJump, token as User, upper case too)', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: sshd.port });
    const config = path.join(dir, 'ssh_config_snippet');
    fs.writeFileSync(
      config,
      [
        'Host stagedoor-gw',
        '  HostName 127.0.0.1',
        `  Port ${jump.address().port}`,
        `  User ${token.toUpperCase()}`,
        'Host desktop',
        '  HostName 127.0.0.1',
        `  Port ${sshd.port}`,
        `  User ${sshd.user}`,
        '  ProxyJump stagedoor-gw',
        fs.readFileSync(sshConfig, 'utf8'),
      ].join('\n'),
    );
    const r = await run('ssh', ['-F', config, 'desktop', 'echo hello']);
    expect(r.stdout.trim()).toBe('hello');
    expect(r.code).toBe(0);
    await waitFor('the session to be reported', () => g.ended.length === 1);
  });

  it('carries a session whose jump connection re-keys every 16 KiB (RekeyLimit): the jump host answers each exchange', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: sshd.port });
    const config = path.join(dir, `ssh_config_rekey_${engine}`);
    fs.writeFileSync(config, fs.readFileSync(sshConfig, 'utf8').replace('Host *', 'Host *\n  RekeyLimit 16K'));
    const r = await run('ssh', ['-F', config, '-J', `${token}@127.0.0.1:${jump.address().port}`, '-p', String(sshd.port), `${sshd.user}@127.0.0.1`, 'head -c 300000 /dev/zero']);
    expect({ code: r.code, bytes: r.stdout.length }, r.stderr).toEqual({ code: 0, bytes: 300_000 });
    await waitFor('the session to be reported', () => g.ended.length === 1);
    expect(g.ended[0]!.bytesDown).toBeGreaterThan(300_000); // which side ends first is the two OpenSSH ends' race
  });

  it('refuses an unknown token, and OpenSSH prints the reason from the banner', async () => {
    const before = sshd.proc.stderr.length;
    const unknown = (engine === 'node' ? 'a' : 'b').repeat(32);
    const r = await sshJump(jump, unknown, sshd.port);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(REFUSAL_MESSAGES['no-grant']);
    expect(r.stderr).toContain('Permission denied');
    expect(admits.filter((a) => a.token === unknown)).toHaveLength(1);
    expect(sshd.proc.stderr.slice(before).join('\n')).not.toMatch(/Accepted|Connection from/);
  });

  it('refuses a destination other than the grant target, and nothing connects there', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: sshd.port });
    const before = echo.accepted();
    const r = await sshJump(jump, token, echo.port);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('administratively prohibited');
    expect(r.stderr).toContain(`forwards to 127.0.0.1:${sshd.port} only`);
    expect(echo.accepted()).toBe(before);
    await waitFor('the (empty) session to be reported', () => g.ended.length === 1);
    expect(g.ended[0]).toMatchObject({ bytesUp: 0, bytesDown: 0 });
  });

  it('refuses a shell or a command on the jump host itself', async () => {
    const { token } = grant({ host: '127.0.0.1', port: sshd.port });
    const r = await run('ssh', ['-F', sshConfig, '-p', String(jump.address().port), `${token}@127.0.0.1`, 'echo hello']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('administratively prohibited');
    expect(r.stderr).toContain('session channels are refused');
  });
});

describe.each(ENGINES)('SSH jump host channel rules (ssh2 client, %s relay)', (engine) => {
  let jump: SshJumpServer;
  beforeAll(() => {
    jump = jumps[engine];
  });

  it('permits one direct-tcpip channel: a second, a command and remote forwarding are refused; the end reports bytes once', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
    const c = await connectClient({ port: jump.address().port, token });
    const closed = new Promise<void>((r) => c.on('close', () => r()));
    const ch = await forwardOut(c, echo.port);
    expect(await echoOnce(ch, 'ping')).toBe('ping');
    await expect(forwardOut(c, echo.port)).rejects.toThrow(/one forwarded connection per SSH connection/);
    await expect(new Promise((resolve, reject) => c.exec('id', (err, s) => (err ? reject(err) : resolve(s))))).rejects.toThrow(/session channels are refused/);
    await expect(new Promise((resolve, reject) => c.forwardIn('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p))))).rejects.toThrow();
    // Still relaying after the refusals, and by the engine this server was given.
    expect(await echoOnce(ch, 'pong')).toBe('pong');
    expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, clientAddress: '127.0.0.1', bytesUp: 8, bytesDown: 8, relay: engine })]);
    ch.end();
    await closed; // the channel was the session: the gateway ends the connection with it
    await waitFor('the session to be reported', () => g.ended.length > 0);
    expect(g.ended).toEqual([{ reason: 'client-closed', bytesUp: 8, bytesDown: 8 }]);
  });

  it("a desktop that keeps its side open and silent after the client's EOF: the session ends after the half-close bound", async () => {
    const silent = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      s.resume(); // reads, never answers, never ends
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    setHalfCloseSeconds(1);
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const { token, g } = grant({ host: '127.0.0.1', port });
      const c = await connectClient({ port: jump.address().port, token });
      c.on('error', () => undefined);
      const closed = new Promise<void>((r) => c.on('close', () => r()));
      const ch = await forwardOut(c, port);
      expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: engine })]);
      ch.end('last words'); // the channel's EOF: the desktop gets a FIN, and stays
      await closed; // the gateway ended the connection once the desktop had been silent for the bound
      await waitFor('the session to be reported', () => g.ended.length > 0);
      expect(g.ended).toEqual([{ reason: 'client-closed', bytesUp: 10, bytesDown: 0 }]);
    } finally {
      setHalfCloseSeconds(DEFAULT_HALF_CLOSE_SECONDS);
      silent.close();
    }
  });

  it.each([
    ['closed the channel', 'echo'],
    ["sent its channel's EOF, the desktop still open", 'silent'],
  ] as const)('a client that resets its connection once it has %s has hung up: the session ends as its close, not as an error', async (_what, desktop) => {
    // OpenSSH does so when it exits with bytes of ours unread. The echo ends at the client's EOF, and the
    // channel closes (ssh2 answers the CLOSE before 'close'); the silent desktop keeps its side open.
    const silent = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      s.on('end', () => silent.emit('client-eof'));
      s.resume();
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = desktop === 'echo' ? echo.port : (silent.address() as net.AddressInfo).port;
      const { token, g } = grant({ host: '127.0.0.1', port });
      const sock = net.connect({ host: '127.0.0.1', port: jump.address().port });
      await new Promise((r) => sock.once('connect', r));
      const c = await connectClient({ port: jump.address().port, token, sock });
      c.on('error', () => undefined);
      const ch = await forwardOut(c, port);
      ch.resume(); // what comes back is read, so that the channel can end
      ch.write('ready');
      await waitFor('the bytes to be relayed', () => jump.sessions()[0]?.bytesUp === 5, 30_000, 20);
      expect(jump.sessions()).toEqual([expect.objectContaining({ grantId: g.grantId, relay: engine })]);
      const done = new Promise((r) => (desktop === 'echo' ? ch.once('close', r) : silent.once('client-eof', r)));
      ch.end();
      await done;
      sock.resetAndDestroy();
      await waitFor('the session to be reported', () => g.ended.length > 0, 30_000, 20);
      expect(g.ended).toEqual([{ reason: 'client-closed', bytesUp: 5, bytesDown: desktop === 'echo' ? 5 : 0 }]);
    } finally {
      silent.close();
    }
  });

  it('a revoke (the registered close) cuts a running session at once', async () => {
    const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
    const c = await connectClient({ port: jump.address().port, token });
    const closed = new Promise<void>((r) => c.on('close', () => r()));
    const ch = await forwardOut(c, echo.port);
    expect(await echoOnce(ch, 'hello!')).toBe('hello!');
    expect(g.closers).toHaveLength(1);
    g.closers[0]!('revoked');
    await closed;
    // The native relay's end comes back to Node on its own: wait for it (Node's own relay reports at once).
    await waitFor('the session to be reported', () => g.ended.length > 0);
    expect(g.ended).toEqual([{ reason: 'revoked', bytesUp: 6, bytesDown: 6 }]);
    g.closers[0]!('revoked'); // a second close is harmless and reports nothing more
    expect(g.ended).toHaveLength(1);
    expect(jump.sessions()).toEqual([]);
  });
});

describe('SSH jump host listener', () => {
  it('takes the client address from a PROXY v2 header from a configured source', async () => {
    const behind = await new SshJumpServer({ hostKey: hostKey.privateKey, listenHost: '127.0.0.1', port: 0, admit, log, proxyProtocol: { enabled: true, sources: new AddressList(['127.0.0.1']) } }).listen();
    try {
      const { token, g } = grant({ host: '127.0.0.1', port: echo.port });
      const sock = net.connect({ host: '127.0.0.1', port: behind.address().port });
      await new Promise((r) => sock.once('connect', r));
      sock.write(buildProxyV2({ address: '203.0.113.9', port: 40000 }, { address: '127.0.0.1', port: behind.address().port }));
      const c = await connectClient({ port: behind.address().port, token, sock });
      const ch = await forwardOut(c, echo.port);
      expect(await echoOnce(ch, 'via nlb')).toBe('via nlb');
      expect(admits.filter((a) => a.token === token)).toEqual([{ listener: 'ssh', token, clientAddress: '203.0.113.9' }]);
      c.end();
      await waitFor('the session to be reported', () => g.ended.length === 1);

      // No header: the SSH identification line is not a PROXY header, the connection is dropped.
      const bare = net.connect({ host: '127.0.0.1', port: behind.address().port });
      bare.on('error', () => undefined);
      const bareClosed = new Promise((r) => bare.on('close', r));
      bare.write('SSH-2.0-OpenSSH_9.2\r\n');
      await bareClosed;
    } finally {
      await behind.close();
    }
  });

  it('drops connections that do not authenticate in time, and bounds them per client', async () => {
    const strict = await new SshJumpServer({ hostKey: hostKey.privateKey, listenHost: '127.0.0.1', port: 0, admit, log, authTimeoutMs: 4000, maxPreAuthPerClient: 2 }).listen();
    try {
      const open = () => {
        const s = net.connect({ host: '127.0.0.1', port: strict.address().port });
        s.on('error', () => undefined);
        s.resume(); // read (and drop) the server's identification line, so its FIN is seen
        const state = { closed: false, closedAt: 0 };
        s.on('close', () => Object.assign(state, { closed: true, closedAt: Date.now() }));
        return state;
      };
      const first = open();
      const second = open();
      await waitFor('two pre-auth connections', () => strict.sessions().length === 0 && !first.closed && !second.closed, 10_000);
      await new Promise((r) => setTimeout(r, 200)); // let both be accepted before the third arrives
      const third = open();
      await waitFor('the third connection to be dropped', () => third.closed, 30_000);
      expect(first.closed || second.closed).toBe(false);
      await waitFor('the silent connections to be dropped after the auth timeout', () => first.closed && second.closed, 60_000);
    } finally {
      await strict.close();
    }
  });
});

describe('SSH host key', () => {
  it('is made once, kept 0600 beside the credential, and its fingerprint is what ssh-keygen prints', () => {
    const dataDir = path.join(dir, 'gateway-2');
    const key = loadOrCreateSshHostKey(dataDir);
    const file = path.join(dataDir, SSH_HOST_KEY_FILE);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(key.publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/]+={0,2}$/);
    const listed = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' });
    expect(listed.split(' ')[1]).toBe(key.fingerprint);
    // OpenSSH reads the private key too, and derives the same public key.
    expect(execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ')).toBe(key.publicKey);
    expect(loadOrCreateSshHostKey(dataDir)).toEqual(key);
  });

  // ssh2's own generator dropped that zero byte (one key in 256), and the gateway then refused to
  // start on the key it had just made. Draw keys until one has it: about 256 draws, a few ms each.
  it('a key whose public half starts with a zero byte is read back by ssh2 and by OpenSSH', () => {
    let text = '';
    for (let i = 0; i < 20_000 && !text; i++) {
      const candidate = newOpenSshEd25519Key();
      const parsed = ssh2.utils.parseKey(candidate);
      if (parsed instanceof Error) throw parsed;
      const blob = parsed.getPublicSSH(); // string "ssh-ed25519" (4 + 11 bytes), then string key
      expect(blob.readUInt32BE(15)).toBe(32);
      if (blob[19] === 0) text = candidate;
    }
    expect(text).not.toBe('');
    const dataDir = path.join(dir, 'gateway-zero-lead');
    fs.mkdirSync(dataDir);
    const file = path.join(dataDir, SSH_HOST_KEY_FILE);
    fs.writeFileSync(file, text, { mode: 0o600 });
    const key = loadOrCreateSshHostKey(dataDir); // the gateway starts on it
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
    expect(derived).toBe(key.publicKey);
    expect(Buffer.from(key.publicKey.split(' ')[1]!, 'base64')[19]).toBe(0);
  });
});

describe('sameTarget', () => {
  it.each([
    ['10.0.1.5', 22, true],
    ['::ffff:10.0.1.5', 22, true],
    ['[10.0.1.5]', 22, true],
    ['10.0.1.5', 2222, false],
    ['10.0.1.6', 22, false],
    ['010.0.1.5', 22, false],
    ['desktop.example', 22, false],
  ])('%s:%s against 10.0.1.5:22 → %s', (host, port, same) => {
    expect(sameTarget(host, port, { host: '10.0.1.5', port: 22 })).toBe(same);
  });
  it('compares IPv6 in its canonical form and names without case', () => {
    expect(sameTarget('2001:DB8:0::5', 22, { host: '2001:db8::5', port: 22 })).toBe(true);
    expect(sameTarget('Desktop.Example.', 22, { host: 'desktop.example', port: 22 })).toBe(true);
  });
});
