import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { freePort, waitFor } from '../ports.ts';
import { spawnProcess } from '../processes.ts';
import { makeTestCa, requireBinary, type TestCa } from './tls.ts';

export const AD_REALM = 'AD.STAGEDOOR.TEST';
export const AD_DOMAIN = 'ad.stagedoor.test';
export const AD_BASE = 'DC=ad,DC=stagedoor,DC=test';

export interface SambaDc {
  /** ldaps:// on a loopback port of this process, forwarded into the DC's network namespace. */
  ldapsUrl: string;
  /** ldap:// (for StartTLS) the same way. */
  ldapUrl: string;
  ca: TestCa;
  stop(): Promise<void>;
}

export interface AdFixture {
  users: { name: string; password: string; given?: string; surname?: string; disabled?: boolean }[];
  /** Created in order; a member may be a user or an earlier group (nesting). */
  groups: { name: string; members: string[] }[];
}

/**
 * A Samba Active Directory domain controller provisioned for one test file (`samba-tool domain
 * provision` into a temp dir, users and groups added offline), running in the foreground.
 *
 * Samba's LDAP server only listens on 389 and 636, so the DC runs in a network namespace of its own
 * (`unshare -n`, only `lo` inside): it can take the standard ports without touching the host's, and
 * nothing outside can reach it. A small relay inside the namespace listens on Unix sockets in the temp
 * dir (the file system is shared); this process relays free loopback ports to those sockets. The DC
 * presents a certificate from a test CA for 127.0.0.1, configured as its `tls certfile`.
 */
export async function startSambaDc(fixture: AdFixture, adminPassword: string): Promise<SambaDc> {
  const samba = requireBinary('samba', 'samba');
  const sambaTool = requireBinary('samba-tool', 'samba');
  const unshare = requireBinary('unshare', 'util-linux');
  const python = requireBinary('python3', 'python3');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-samba-'));
  const relays: net.Server[] = [];
  try {
    const ca = makeTestCa(dir, { dns: [`dc1.${AD_DOMAIN}`], ips: ['127.0.0.1'] });
    const target = path.join(dir, 'dc');
    const run = path.join(target, 'run');
    const options = {
      interfaces: 'lo',
      'bind interfaces only': 'yes',
      // Only the LDAP server: no SMB, Kerberos, DNS or RPC listeners to start or to collide.
      'server services': 'ldap',
      'tls enabled': 'yes',
      'tls keyfile': ca.keyFile,
      'tls certfile': ca.certFile,
      'tls cafile': ca.caFile,
      'pid directory': run,
      'ncalrpc dir': path.join(run, 'ncalrpc'),
      'winbindd socket directory': path.join(run, 'winbindd'),
      'ntp signd socket directory': path.join(run, 'ntp_signd'),
      'log file': path.join(target, 'log.%m'),
    };
    const optionArgs = Object.entries(options).map(([k, v]) => `--option=${k}=${v}`);
    // Asynchronous on purpose: provisioning takes minutes on a loaded machine, and a worker blocked
    // that long misses vitest's own 60-s RPC deadline ("Timeout calling onTaskUpdate").
    const tool = (args: string[]) => runToEnd(sambaTool, [...args, '-s', path.join(target, 'etc', 'smb.conf')]);
    await runToEnd(sambaTool, ['domain', 'provision', `--realm=${AD_REALM}`, '--domain=SDTEST', '--server-role=dc', '--dns-backend=NONE', `--adminpass=${adminPassword}`, `--targetdir=${target}`, '--host-name=dc1', '--host-ip=127.0.0.1', ...optionArgs]);
    for (const u of fixture.users) {
      await tool(['user', 'create', u.name, u.password, ...(u.given ? [`--given-name=${u.given}`] : []), ...(u.surname ? [`--surname=${u.surname}`] : [])]);
      if (u.disabled) await tool(['user', 'disable', u.name]);
    }
    for (const g of fixture.groups) {
      await tool(['group', 'add', g.name]);
      if (g.members.length) await tool(['group', 'addmembers', g.name, g.members.join(',')]);
    }

    fs.writeFileSync(path.join(dir, 'relay.mjs'), RELAY);
    const socks = { ldaps: path.join(dir, 'ldaps.sock'), ldap: path.join(dir, 'ldap.sock') };
    const script = [
      'set -e',
      `${python} -c ${shellQuote(LO_UP)}`,
      `${shellQuote(process.execPath)} ${shellQuote(path.join(dir, 'relay.mjs'))} ${shellQuote(socks.ldaps)}=636 ${shellQuote(socks.ldap)}=389 &`,
      `exec ${samba} -F -M single --debug-stdout -s ${shellQuote(path.join(target, 'etc', 'smb.conf'))}`,
    ].join('\n');
    const proc = spawnProcess(unshare, ['-n', 'sh', '-c', script], {});
    const ldapsPort = await relayPort(socks.ldaps, relays);
    const ldapPort = await relayPort(socks.ldap, relays);
    await waitFor('the Samba DC to answer LDAPS', () => tlsHandshake(ldapsPort, ca.caPem), 60_000, 200).catch((err) => {
      throw new Error(`${(err as Error).message}\n${proc.stdout.slice(-30).join('\n')}\n${proc.stderr.join('\n')}`);
    });
    return {
      ldapsUrl: `ldaps://127.0.0.1:${ldapsPort}`,
      ldapUrl: `ldap://127.0.0.1:${ldapPort}`,
      ca,
      stop: async () => {
        await proc.stop();
        await Promise.all(relays.map((r) => new Promise((res) => r.close(res))));
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const r of relays) r.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

const execFileAsync = promisify(execFile);

/** Run a command to its end without blocking this process; a failure's message carries its stderr. */
async function runToEnd(file: string, args: string[]): Promise<void> {
  await execFileAsync(file, args, { maxBuffer: 16 * 1024 * 1024 });
}

/** Bring `lo` up inside the new namespace (SIOCGIFFLAGS / SIOCSIFFLAGS), without needing iproute2. */
const LO_UP =
  "import socket,fcntl,struct;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);f=struct.unpack('16sH',fcntl.ioctl(s,0x8913,struct.pack('16sH',b'lo',0)))[1];fcntl.ioctl(s,0x8914,struct.pack('16sH',b'lo',f|1))";

/** Inside the namespace: each `<unix socket>=<port>` argument relays the socket to 127.0.0.1:<port>. */
const RELAY = `import net from 'node:net';
for (const arg of process.argv.slice(2)) {
  const [sock, port] = arg.split('=');
  net.createServer((c) => {
    const u = net.connect(Number(port), '127.0.0.1');
    c.pipe(u).pipe(c);
    u.on('error', () => c.destroy());
    c.on('error', () => u.destroy());
  }).listen(sock);
}
`;

/** Outside: a free loopback port relayed to the Unix socket of the namespace. */
async function relayPort(sock: string, relays: net.Server[]): Promise<number> {
  const port = await freePort();
  const server = net.createServer((c) => {
    const u = net.connect(sock);
    c.pipe(u).pipe(c);
    u.on('error', () => c.destroy());
    c.on('error', () => u.destroy());
  });
  relays.push(server);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  return port;
}

function tlsHandshake(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca: [ca] });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('secureConnect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(2000, () => done(false));
  });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
