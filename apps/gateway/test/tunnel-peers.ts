import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, waitFor } from '../../../test/support/ports.ts';
import { spawnProcess, type Spawned } from '../../../test/support/processes.ts';

/**
 * Real peers for the tunnel test, on loopback (the network-namespace versions are in
 * test/support/netns-servers.ts; sshd on loopback is test/support/sshd.ts): TigerVNC's Xvnc and
 * tinyproxy, each with its own configuration in the test's directory and a free port.
 */

export async function startXvncOnLoopback(dir: string): Promise<{ port: number; proc: Spawned }> {
  const display = freeDisplay();
  const port = await freePort();
  const proc = spawnProcess('Xvnc', [`:${display}`, '-rfbport', String(port), '-localhost', '-SecurityTypes', 'None', '-geometry', '320x200', '-depth', '24', '-nolisten', 'tcp', '-desktop', 'stagedoor-test'], { HOME: dir });
  await listening(port, proc, 'Xvnc');
  return { port, proc };
}

/** tinyproxy in the foreground, logging each request line (the CONNECT's host:port) to its output. */
export async function startTinyproxy(dir: string): Promise<{ port: number; proc: Spawned }> {
  const port = await freePort();
  const config = path.join(dir, 'tinyproxy.conf');
  // No ConnectPort line: CONNECT to any port (the test gateway listens on a free one, not 443).
  fs.writeFileSync(config, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 60', 'LogLevel Info', 'MaxClients 20', 'Allow 127.0.0.1', `PidFile "${path.join(dir, 'tinyproxy.pid')}"`, ''].join('\n'));
  const proc = spawnProcess('tinyproxy', ['-d', '-c', config], {});
  await listening(port, proc, 'tinyproxy');
  return { port, proc };
}

async function listening(port: number, proc: Spawned, what: string): Promise<void> {
  await waitFor(
    `${what} to listen on 127.0.0.1:${port}`,
    () => {
      if (proc.proc.exitCode !== null) throw new Error(`${what} exited: ${proc.stderr.join('\n')}`);
      return new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
    },
    30_000,
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
