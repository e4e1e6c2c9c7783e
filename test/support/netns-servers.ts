import fs from 'node:fs';
import path from 'node:path';
import type { PrivateNetwork } from './netns.ts';
import type { Spawned } from './processes.ts';
import { waitFor } from './ports.ts';
import { writeSshdFiles } from './sshd.ts';

/**
 * Real servers inside the workstation namespace and real clients' helpers, each started with its
 * own configuration in a temp directory (never the system services the packages install).
 */

export interface SshFixture {
  port: number;
  /** Private key of a user the server accepts (root, by public key only). */
  clientKey: string;
  proc: Spawned;
}

export async function startSshd(net: PrivateNetwork, dir: string): Promise<SshFixture> {
  const { config, clientKey } = writeSshdFiles(dir, { address: net.addr.workstation, port: 22 });
  const proc = net.spawn(net.ns.workstation, '/usr/sbin/sshd', ['-D', '-e', '-f', config]);
  await listening(net, 22, proc, 'sshd');
  return { port: 22, clientKey, proc };
}

export async function startXvnc(net: PrivateNetwork, dir: string): Promise<{ port: number; proc: Spawned }> {
  const display = freeDisplay();
  const port = 5901;
  const proc = net.spawn(net.ns.workstation, 'Xvnc', [`:${display}`, '-rfbport', String(port), '-SecurityTypes', 'None', '-geometry', '320x200', '-depth', '24', '-nolisten', 'tcp', '-desktop', 'stagedoor-test'], { HOME: dir });
  await listening(net, port, proc, 'Xvnc');
  return { port, proc };
}

export async function startXrdp(net: PrivateNetwork, dir: string): Promise<{ port: number; proc: Spawned }> {
  const port = 3389;
  const ini = fs
    .readFileSync('/etc/xrdp/xrdp.ini', 'utf8')
    .replace(/^fork=.*$/m, 'fork=false')
    .replace(/^port=.*$/m, `port=${port}`)
    .replace(/^LogFile=.*$/m, `LogFile=${path.join(dir, 'xrdp.log')}`)
    .replace(/^EnableSyslog=.*$/m, 'EnableSyslog=false');
  const config = path.join(dir, 'xrdp.ini');
  fs.writeFileSync(config, ini);
  const proc = net.spawn(net.ns.workstation, 'xrdp', ['--nodaemon', '--config', config]);
  await listening(net, port, proc, 'xrdp');
  return { port, proc };
}

/** An X display for clients that need one (xfreerdp), in the client namespace. */
export async function startXvfb(net: PrivateNetwork): Promise<{ display: string; proc: Spawned }> {
  const display = freeDisplay();
  const proc = net.spawn(net.ns.client, 'Xvfb', [`:${display}`, '-screen', '0', '800x600x24', '-nolisten', 'tcp']);
  await waitFor('Xvfb', () => fs.existsSync(`/tmp/.X11-unix/X${display}`), 30_000, 50);
  return { display: `:${display}`, proc };
}

async function listening(net: PrivateNetwork, port: number, proc: Spawned, what: string): Promise<void> {
  await waitFor(
    `${what} to listen on ${net.addr.workstation}:${port}`,
    async () => {
      if (proc.proc.exitCode !== null) throw new Error(`${what} exited: ${proc.stderr.join('\n')}`);
      const r = await net.run(net.ns.workstation, 'ss', ['-Hltn', `sport = :${port}`], { timeoutMs: 5000 });
      return r.stdout.includes(`:${port}`);
    },
    15_000,
    100,
  );
}

function freeDisplay(): number {
  for (let i = 0; i < 200; i++) {
    const d = 100 + Math.floor(Math.random() * 800);
    if (!fs.existsSync(`/tmp/.X${d}-lock`) && !fs.existsSync(`/tmp/.X11-unix/X${d}`)) return d;
  }
  throw new Error('no free X display number');
}
