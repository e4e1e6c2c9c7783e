import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPeerNamespace, type PeerNamespace } from './netns.ts';
import type { Spawned } from './processes.ts';
import { waitFor } from './ports.ts';

/**
 * A real xrdp *desktop session* (issue 17 point 3): xrdp and xrdp-sesman with their own
 * configuration, logs and certificate in a temp directory (never the system services'), a local
 * user with a password made for this run, and sesman starting an Xvnc session (xrdp's [Xvnc]
 * section) with xrdp-chansrv in it, so the session has a clipboard channel.
 *
 * Why a network namespace: xrdp 0.9.21 finds sesman only at the section's `ip` (127.0.0.1, which
 * is also where it then dials the session's Xvnc) and at the ListenPort read from the fixed path
 * /etc/xrdp/sesman.ini (xrdp_mm_get_sesman_port), so a second sesman cannot be given a port of its
 * own. In a namespace of its own, port 3350 on its loopback is ours alone, as are the session's
 * VNC and X ports; the test reaches xrdp over the namespace's veth (createPeerNamespace).
 *
 * The X display is the first free one from a random offset (sesman skips numbers with a socket or
 * lock file in /tmp, so other tests' Xvnc never collide). Only the [Xvnc] section is configured (and
 * `autorun`): xrdp would sign in straight from the Client Info only with INFO_AUTOLOGON, which
 * IronRDP 0.7 never sends, so its sign-in window opens with the user name filled in (ADR 0030).
 */
export interface XrdpSession {
  /** Where the test's gateway reaches xrdp (the namespace's side of the veth). */
  address: string;
  port: number;
  user: string;
  password: string;
  xrdpLog: string;
  sesmanLog: string;
  /** The session's X display number, once sesman has started it (waits for its log line). */
  display(timeoutMs?: number): Promise<number>;
  /** Run an X client on the session's display as the session's user, to completion. */
  x(command: string, args: string[], opts?: { input?: string }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Start a long-running X client there as the user (killed with the namespace). */
  spawnX(command: string, args: string[]): Promise<Spawned>;
  stop(): void;
}

export async function startXrdpSession(): Promise<XrdpSession> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-xrdp-session-'));
  // The user's session runs the window-manager script from here.
  fs.chmodSync(dir, 0o755);
  const user = `sdrdp${crypto.randomBytes(3).toString('hex')}`;
  // Lower-case letters and digits: typed as scancodes on xrdp's sign-in screen, no Shift needed.
  const password = `pw${crypto.randomBytes(8).toString('hex')}`;
  let net: PeerNamespace | null = null;
  let displayNumber: number | null = null;
  const stop = () => {
    net?.destroy();
    spawnSync('userdel', ['-r', '-f', user], { stdio: 'ignore' });
    if (displayNumber !== null) {
      // Xvnc killed outright leaves its socket and lock; chansrv its sockets.
      for (const f of [`/tmp/.X${displayNumber}-lock`, `/tmp/.X11-unix/X${displayNumber}`]) fs.rmSync(f, { force: true });
      const sockdir = '/run/xrdp/sockdir';
      for (const f of fs.existsSync(sockdir) ? fs.readdirSync(sockdir) : []) if (f.endsWith(`_${displayNumber}`)) fs.rmSync(path.join(sockdir, f), { force: true });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    execFileSync('useradd', ['-m', '-s', '/bin/bash', user]);
    execFileSync('chpasswd', [], { input: `${user}:${password}\n` });
    net = createPeerNamespace();
    const files = writeConfig(dir, net.addr.peer);
    const sesman = net.spawn(net.ns, 'xrdp-sesman', ['--nodaemon', '--config', files.sesman]);
    await listening(net, 3350, sesman, 'xrdp-sesman');
    const xrdp = net.spawn(net.ns, 'xrdp', ['--nodaemon', '--config', files.xrdp]);
    await listening(net, 3389, xrdp, 'xrdp');
    const ns = net;
    const asUser = (display: number, command: string, args: string[]) => [
      'runuser', ['-u', user, '--', 'env', `DISPLAY=:${display}`, `XAUTHORITY=/home/${user}/.Xauthority`, command, ...args],
    ] as const;
    const session: XrdpSession = {
      address: net.addr.peer,
      port: 3389,
      user,
      password,
      xrdpLog: files.xrdpLog,
      sesmanLog: files.sesmanLog,
      display: async (timeoutMs = 30_000) => {
        await waitFor('xrdp-sesman to start the desktop session', () => displayNumber !== null || (displayNumber = startedDisplay(files.sesmanLog, user)) !== null, timeoutMs, 200);
        return displayNumber!;
      },
      x: async (command, args, opts = {}) => {
        const [cmd, argv] = asUser(await session.display(), command, args);
        return ns.run(ns.ns, cmd, [...argv], { input: opts.input, timeoutMs: 15_000 });
      },
      spawnX: async (command, args) => {
        const [cmd, argv] = asUser(await session.display(), command, args);
        return ns.spawn(ns.ns, cmd, [...argv]);
      },
      stop,
    };
    return session;
  } catch (err) {
    stop();
    throw err;
  }
}

function writeConfig(dir: string, address: string) {
  const sesmanLog = path.join(dir, 'xrdp-sesman.log');
  const xrdpLog = path.join(dir, 'xrdp.log');
  const wm = path.join(dir, 'startwm.sh');
  // The session lasts while this script runs; the test draws on the bare root window (no desktop).
  fs.writeFileSync(wm, '#!/bin/sh\nexec sleep 86400\n', { mode: 0o755 });
  const offset = 300 + Math.floor(Math.random() * 550);
  const sesman = set(fs.readFileSync('/etc/xrdp/sesman.ini', 'utf8'), {
    ListenAddress: '127.0.0.1',
    ListenPort: '3350',
    X11DisplayOffset: String(offset),
    DefaultWindowManager: wm,
    EnableUserWindowManager: 'false',
    LogFile: sesmanLog,
    LogLevel: 'DEBUG',
    EnableSyslog: 'false',
    KillDisconnected: 'false',
  });
  const cert = path.join(dir, 'xrdp-cert.pem');
  const key = path.join(dir, 'xrdp-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=xrdp-session.stagedoor.invalid'], { stdio: 'ignore' });
  const ini = fs.readFileSync('/etc/xrdp/xrdp.ini', 'utf8');
  // [Globals] … [Channels], then only the [Xvnc] session section (no Xorg backend is installed);
  // its own `port=-1` (ask sesman) stays as packaged.
  const head = ini.slice(0, ini.indexOf('[Xorg]'));
  const xvnc = ini.slice(ini.indexOf('[Xvnc]'), ini.indexOf('[', ini.indexOf('[Xvnc]') + 1));
  const xrdp = set(head, {
    fork: 'false',
    port: `tcp://${address}:3389`,
    certificate: cert,
    key_file: key,
    autorun: 'Xvnc',
    LogFile: xrdpLog,
    LogLevel: 'DEBUG',
    EnableSyslog: 'false',
  });
  fs.writeFileSync(path.join(dir, 'sesman.ini'), sesman);
  fs.writeFileSync(path.join(dir, 'xrdp.ini'), xrdp + xvnc);
  return { sesman: path.join(dir, 'sesman.ini'), xrdp: path.join(dir, 'xrdp.ini'), sesmanLog, xrdpLog };
}

/** Every `key=` line of an ini file set to the value (keys are distinct enough across sections here). */
function set(ini: string, values: Record<string, string>): string {
  let out = ini;
  for (const [k, v] of Object.entries(values)) {
    const re = new RegExp(`^${k}=.*$`, 'gm');
    if (!re.test(out)) throw new Error(`no ${k}= line in the packaged xrdp configuration`);
    out = out.replace(re, `${k}=${v}`);
  }
  return out;
}

function startedDisplay(log: string, user: string): number | null {
  const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  const m = new RegExp(`Session started successfully for user ${user} on display (\\d+)`).exec(text);
  return m ? Number(m[1]) : null;
}

async function listening(net: PeerNamespace, port: number, proc: Spawned, what: string): Promise<void> {
  await waitFor(
    `${what} to listen on port ${port} in its namespace`,
    async () => {
      if (proc.proc.exitCode !== null) throw new Error(`${what} exited: ${proc.stderr.join('\n')}${proc.stdout.join('\n')}`);
      const r = await net.run(net.ns, 'ss', ['-Hltn', `sport = :${port}`], { timeoutMs: 5000 });
      return r.stdout.includes(`:${port}`);
    },
    15_000,
    100,
  );
}
