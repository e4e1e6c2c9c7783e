import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { TUNNEL_NATIVE_ALPN } from '@stagedoor/contract';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/ports.ts';
import { createLog } from '../src/log.ts';
import { generateSelfSigned, SELF_SIGNED_FILES, TlsCertificate } from '../src/routed/tls-certificate.ts';
import { TunnelServer } from '../src/routed/tunnel.ts';

const log = createLog('silent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-tls-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The fingerprint a TLS client sees on `port` (offering the tunnel's native mode: ADR 0032, its own TLS context). */
function served(port: number, ALPNProtocols?: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...(ALPNProtocols ? { ALPNProtocols } : {}) }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.on('error', reject);
  });
}

describe('the tunnel listener certificate', () => {
  it('self-signed: generated once, key readable by its owner only, the same fingerprint on the next start', async () => {
    const dataDir = path.join(dir, 'self');
    const first = await TlsCertificate.load({ files: null, dataDir, log });
    expect(first.fingerprint256).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    expect(fs.statSync(path.join(dataDir, SELF_SIGNED_FILES.key)).mode & 0o077).toBe(0);
    const again = await TlsCertificate.load({ files: null, dataDir, log });
    expect(again.fingerprint256).toBe(first.fingerprint256);
  });

  it('from files: a renewed pair is served without a restart; a half-written renewal keeps the old one', async () => {
    const files = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    const a = await generateSelfSigned(['127.0.0.1']);
    fs.writeFileSync(files.cert, a.cert);
    fs.writeFileSync(files.key, a.key);
    const warnings: string[] = [];
    const cert = await TlsCertificate.load({ files, dataDir: dir, log: createLog('warn', {}, (l) => void warnings.push(l)), reloadIntervalMs: 50 });
    const server = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit: () => Promise.reject(new Error('unused')), healthy: () => true, log });
    const port = await server.start();
    try {
      const before = cert.fingerprint256;
      expect(await served(port)).toBe(before);
      const b = await generateSelfSigned(['127.0.0.1']);
      // The certificate first, alone: it does not match the key on disk, so nothing changes yet.
      fs.writeFileSync(files.cert, b.cert);
      await waitFor('the half-renewed pair to be noticed', () => warnings.some((l) => l.includes('do not form a valid pair yet')), 30_000, 50);
      expect(cert.fingerprint256).toBe(before);
      expect(await served(port)).toBe(before);
      expect(await served(port, [TUNNEL_NATIVE_ALPN])).toBe(before);
      // Then its key (by rename, as certbot and secret agents do): the pair is complete and is served.
      fs.writeFileSync(`${files.key}.new`, b.key);
      fs.renameSync(`${files.key}.new`, files.key);
      await waitFor('the renewed certificate to be served', async () => (await served(port)) !== before, 30_000, 50);
      expect(await served(port)).toBe(cert.fingerprint256);
      // The native mode's listener serves the renewed pair too.
      expect(await served(port, [TUNNEL_NATIVE_ALPN])).toBe(cert.fingerprint256);
    } finally {
      await server.close();
      cert.close();
    }
  });
});
