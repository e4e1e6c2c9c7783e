import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnProcess, type Spawned } from './processes.ts';
import { waitFor } from './ports.ts';

/**
 * A real OpenSSH server's files in a temp directory (its own host key, one client key it accepts,
 * its own config), never the system's sshd configuration. Key authentication only.
 */
export interface SshdFiles {
  config: string;
  /** Private key of a user the server accepts, by public key only. */
  clientKey: string;
  /** `ssh-ed25519 AAAA…` of the server's host key (for a known_hosts line). */
  hostPublicKey: string;
}

export function writeSshdFiles(dir: string, listen: { address: string; port: number }): SshdFiles {
  try {
    fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation directory (as root)
  } catch {
    // not root: sshd then runs without privilege separation, for this user only
  }
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const clientKey = path.join(dir, 'client_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
  fs.copyFileSync(`${clientKey}.pub`, path.join(dir, 'authorized_keys'));
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${listen.port}`,
      `ListenAddress ${listen.address}`,
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'UseDNS no',
      'PrintMotd no',
      '',
    ].join('\n'),
  );
  const hostPublicKey = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  return { config, clientKey, hostPublicKey };
}

/** sshd on this machine (loopback), for tests that need no network namespace. */
export async function startLocalSshd(dir: string, port: number): Promise<SshdFiles & { port: number; user: string; proc: Spawned }> {
  const files = writeSshdFiles(dir, { address: '127.0.0.1', port });
  const proc = spawnProcess('/usr/sbin/sshd', ['-D', '-e', '-f', files.config], {});
  await waitForSshd(proc, port);
  return { ...files, port, user: os.userInfo().username, proc };
}

/**
 * sshd on loopback that signs a local user in with a password (the browser terminal's case: the
 * user answers the workstation's own prompt). The user is made once (`useradd`, needs root, as the
 * linux-agent test does) with a bash login shell and the given password; sshd runs without PAM, so
 * it checks /etc/shadow itself and asks with the password method (or, with `keyboardInteractive`,
 * through PAM, which asks its own `Password: `). Only that user may sign in.
 */
export async function startPasswordSshd(
  dir: string,
  port: number,
  user: string,
  password: string,
  opts: { keyboardInteractive?: boolean } = {},
): Promise<SshdFiles & { port: number; user: string; proc: Spawned }> {
  if (spawnSync('id', [user]).status !== 0) execFileSync('useradd', ['-m', '-s', '/bin/bash', user]);
  execFileSync('chpasswd', [], { input: `${user}:${password}\n` });
  const files = writeSshdFiles(dir, { address: '127.0.0.1', port });
  let config = fs.readFileSync(files.config, 'utf8');
  // Keyboard-interactive through PAM (Debian's /etc/pam.d/sshd): the prompts are PAM's own words.
  if (opts.keyboardInteractive) config = config.replace('KbdInteractiveAuthentication no', 'KbdInteractiveAuthentication yes').replace('UsePAM no', 'UsePAM yes');
  else config = config.replace('PasswordAuthentication no', 'PasswordAuthentication yes');
  fs.writeFileSync(files.config, `${config}AllowUsers ${user}\nAcceptEnv LANG LC_*\n`);
  const proc = spawnProcess('/usr/sbin/sshd', ['-D', '-e', '-f', files.config], {});
  await waitForSshd(proc, port);
  return { ...files, port, user, proc };
}

function waitForSshd(proc: Spawned, port: number): Promise<void> {
  return waitFor(
    `sshd to listen on 127.0.0.1:${port}`,
    () => {
      if (proc.proc.exitCode !== null) throw new Error(`sshd exited: ${proc.stderr.join('\n')}`);
      return new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
    },
    30_000,
    100,
  );
}
