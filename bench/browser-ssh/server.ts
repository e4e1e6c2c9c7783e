import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { runSshTerminal } from '../../apps/gateway/src/browser/ssh-terminal.ts';
import { createLog } from '../../apps/gateway/src/log.ts';
import type { Admit } from '../../apps/gateway/src/routed/admission.ts';
import { TlsCertificate } from '../../apps/gateway/src/routed/tls-certificate.ts';
import { TunnelServer } from '../../apps/gateway/src/routed/tunnel.ts';

/**
 * The gateway side of the browser-SSH memory measurement (run.ts): the real TunnelServer with the
 * ssh-terminal mode, alone in its process so that its memory is the gateway's only. Every token is a
 * grant to TARGET (a stand-in admission: the measurement is of the sessions, not of the broker).
 * Prints `port N`; answers each `mem` line on stdin with process.memoryUsage() after a full GC.
 * TAP=1: as a gateway on the native relay engine (the default) runs it, every connection's TLS over
 * a RecordTap (record-tap.ts), which browser sessions that Node keeps pay for too.
 */
const [host, port] = process.env.TARGET!.split(':');
const log = createLog('silent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-bench-webssh-'));
const cert = await TlsCertificate.load({ files: null, dataDir: dir, log, hostnames: ['127.0.0.1'] });
const admit: Admit = async (_l, token) => ({ ok: true, grantId: token, target: { host: host!, port: Number(port) }, onClose: () => {}, countBytes: () => {}, ended: () => {} });
const server = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, modes: { 'ssh-terminal': runSshTerminal }, nativeRelay: process.env.TAP === '1' });
console.log(`port ${await server.start()}`);
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'mem') return;
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  console.log(`mem ${JSON.stringify(process.memoryUsage())}`);
});
process.stdin.on('end', () => process.exit(0));
