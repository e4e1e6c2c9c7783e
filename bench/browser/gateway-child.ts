import { X509Certificate, createHash } from 'node:crypto';
import { createLog } from '../../apps/gateway/src/log.ts';
import { REFUSAL_MESSAGES, type Admit } from '../../apps/gateway/src/routed/admission.ts';
import { TlsCertificate } from '../../apps/gateway/src/routed/tls-certificate.ts';
import { TunnelServer } from '../../apps/gateway/src/routed/tunnel.ts';
import { BROWSER_MODES } from '../../apps/gateway/src/browser/index.ts';

/**
 * The gateway's HTTPS tunnel in a process of its own, so that its memory is the gateway's alone:
 * `<data dir> <token> <target port>`. The admission admits the one token to the one target (the
 * grant model is the broker's, measured elsewhere); the relay, TLS and WebSocket are the gateway's.
 * Prints `{"port", "spki"}`, then answers "mem" on IPC with its memory after a collection.
 */
const [dataDir, token, targetPort] = process.argv.slice(2);
const log = createLog('silent');
const admit: Admit = async (_listener, presented) =>
  presented === token
    ? { ok: true, grantId: 'bench', target: { host: '127.0.0.1', port: Number(targetPort) }, onClose: () => {}, countBytes: () => {}, ended: () => {} }
    : { ok: false, reason: 'no-grant', message: REFUSAL_MESSAGES['no-grant'] };
const cert = await TlsCertificate.load({ files: null, dataDir: dataDir!, log, hostnames: ['127.0.0.1'] });
const server = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, modes: BROWSER_MODES });
const port = await server.start();
const x509 = new X509Certificate(cert.pair.cert);
const spki = createHash('sha256').update(x509.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
process.send!({ port, spki });
process.on('message', (m) => {
  if (m !== 'mem') return;
  (globalThis as { gc?: () => void }).gc?.();
  const u = process.memoryUsage();
  process.send!({ rss: u.rss, heapUsed: u.heapUsed, external: u.external + u.arrayBuffers });
});
process.on('disconnect', () => void server.close().then(() => process.exit(0)));
