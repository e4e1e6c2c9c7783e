import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, waitFor } from '../../../test/support/ports.ts';
import { spawnProcess, type Spawned } from '../../../test/support/processes.ts';

export interface XrdpPeer {
  port: number;
  proc: Spawned;
  /** The certificate xrdp presents (PEM), made for this run: the test compares what the gateway hands on. */
  certPem: string;
  log: string;
}

/**
 * xrdp on loopback with its own configuration, log and self-signed certificate in `dir` (never the
 * system service or the distribution's snakeoil pair), on a free port. One process (fork=false):
 * it serves one connection at a time, which is all the tests open.
 */
export async function startXrdpOnLoopback(dir: string, settings: Record<string, string> = {}): Promise<XrdpPeer> {
  const port = await freePort();
  const cert = path.join(dir, 'xrdp-cert.pem');
  const key = path.join(dir, 'xrdp-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=xrdp-test.stagedoor.invalid'], { stdio: 'ignore' });
  const log = path.join(dir, 'xrdp.log');
  let ini = fs
    .readFileSync('/etc/xrdp/xrdp.ini', 'utf8')
    .replace(/^fork=.*$/m, 'fork=false')
    .replace(/^port=.*$/m, `port=tcp://127.0.0.1:${port}`)
    .replace(/^certificate=.*$/m, `certificate=${cert}`)
    .replace(/^key_file=.*$/m, `key_file=${key}`)
    .replace(/^LogFile=.*$/m, `LogFile=${log}`)
    .replace(/^LogLevel=.*$/m, 'LogLevel=DEBUG')
    .replace(/^EnableSyslog=.*$/m, 'EnableSyslog=false');
  for (const [key, value] of Object.entries(settings)) ini = ini.replace(new RegExp(`^${key}=.*$`, 'm'), `${key}=${value}`);
  const config = path.join(dir, 'xrdp.ini');
  fs.writeFileSync(config, ini);
  const proc = spawnProcess('xrdp', ['--nodaemon', '--config', config], {});
  await waitFor(
    `xrdp to listen on 127.0.0.1:${port}`,
    () => {
      if (proc.proc.exitCode !== null) throw new Error(`xrdp exited: ${proc.stderr.join('\n')}${proc.stdout.join('\n')}`);
      return new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
    },
    30_000,
    100,
  );
  return { port, proc, certPem: fs.readFileSync(cert, 'utf8'), log };
}
