import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { startBroker, type Broker } from '../src/main.ts';
import { createPostgresDatabase } from '../../../test/support/database.ts';
import { makeTestCa, type TestCa } from '../../../test/support/directory/tls.ts';
import { freePort, waitFor } from '../../../test/support/ports.ts';

const run = promisify(execFile);

/** One TLS handshake (a fresh connection each time) and the GET it carries: status and the certificate the broker presented. */
function get(url: string, ca: string): Promise<{ status: number; fingerprint: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, body }));
    });
    req.on('error', reject);
  });
}

function fingerprintOf(certFile: string): string {
  return new crypto.X509Certificate(fs.readFileSync(certFile)).fingerprint256;
}

describe('the broker serves HTTPS itself (STAGEDOOR_TLS_CERT/KEY)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-https-'));
  const live = { cert: path.join(dir, 'broker.crt'), key: path.join(dir, 'broker.key') };
  const logLines: string[] = [];
  let first: TestCa;
  let second: TestCa;
  let broker: Broker;
  let port: number;

  beforeAll(async () => {
    const mk = (name: string) => {
      const d = path.join(dir, name);
      fs.mkdirSync(d);
      return makeTestCa(d, { dns: ['localhost'], ips: ['127.0.0.1'] });
    };
    [first, second] = [mk('first'), mk('second')];
    fs.copyFileSync(first.certFile, live.cert);
    fs.copyFileSync(first.keyFile, live.key);
    port = await freePort();
    const config = loadConfig({}, {
      DATABASE_URL: await createPostgresDatabase(),
      PORT: String(port),
      STAGEDOOR_JOBS: 'off',
      STAGEDOOR_ADMIN_PASSWORD: 'https-admin-pass',
      STAGEDOOR_TLS_CERT: live.cert,
      STAGEDOOR_TLS_KEY: live.key,
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    broker = await startBroker(config, { log: pino({ level: 'info' }, sink) });
  });
  afterAll(async () => {
    await broker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers over HTTPS with the configured certificate (Node https and curl), and not over plain http', async () => {
    expect(broker.url).toBe(`https://127.0.0.1:${port}`);
    const res = await get(`https://127.0.0.1:${port}/readyz`, first.caPem);
    expect(res.status).toBe(200);
    expect(res.fingerprint).toBe(fingerprintOf(first.certFile));
    const { stdout } = await run('curl', ['--silent', '--show-error', '--cacert', first.caFile, '--output', '/dev/null', '--write-out', '%{http_code} %{scheme}', `https://localhost:${port}/readyz`]);
    expect(stdout).toBe('200 HTTPS');
    await expect(fetch(`http://127.0.0.1:${port}/readyz`)).rejects.toThrow();
  });

  it('reloads a renewed certificate without a restart, and keeps the old one while the new pair does not match', async () => {
    // Half a renewal: the new certificate beside the old key. It must not replace a working pair.
    fs.copyFileSync(second.certFile, live.cert);
    await waitFor('the broker to notice the mismatched pair', () => logLines.some((l) => l.includes('do not load')), 30_000, 100);
    expect((await get(`https://127.0.0.1:${port}/readyz`, first.caPem)).fingerprint).toBe(fingerprintOf(first.certFile));
    // The key follows: the next handshake presents the new certificate, which only the new CA trusts.
    fs.copyFileSync(second.keyFile, live.key);
    await waitFor('the new certificate to be served', async () => (await get(`https://127.0.0.1:${port}/readyz`, second.caPem).catch(() => null))?.fingerprint === fingerprintOf(second.certFile), 30_000, 100);
    expect(logLines.some((l) => l.includes('TLS certificate reloaded'))).toBe(true);
    await expect(get(`https://127.0.0.1:${port}/readyz`, first.caPem)).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    const { stdout } = await run('curl', ['--silent', '--cacert', second.caFile, '--output', '/dev/null', '--write-out', '%{http_code}', `https://localhost:${port}/readyz`]);
    expect(stdout).toBe('200');
  });
});

describe('TLS settings are checked at start', () => {
  it('refuses a certificate without its key, naming the missing variable', () => {
    expect(() => loadConfig({}, { STAGEDOOR_TLS_CERT: '/etc/stagedoor/tls/broker.crt' })).toThrow(ConfigError);
    expect(() => loadConfig({}, { STAGEDOOR_TLS_CERT: '/etc/stagedoor/tls/broker.crt' })).toThrow(/STAGEDOOR_TLS_KEY: must be set too/);
  });

  it('refuses files it cannot read, or a key that is not the certificate’s, before listening', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-https-bad-'));
    try {
      const a = makeTestCa(fs.mkdtempSync(path.join(dir, 'a-')), { dns: ['localhost'], ips: [] });
      const b = makeTestCa(fs.mkdtempSync(path.join(dir, 'b-')), { dns: ['localhost'], ips: [] });
      const base = { DATABASE_URL: await createPostgresDatabase(), PORT: String(await freePort()), STAGEDOOR_JOBS: 'off', STAGEDOOR_ADMIN_PASSWORD: 'https-admin-pass' };
      const log = pino({ level: 'silent' });
      await expect(startBroker(loadConfig({}, { ...base, STAGEDOOR_TLS_CERT: path.join(dir, 'absent.crt'), STAGEDOOR_TLS_KEY: a.keyFile }), { log })).rejects.toThrow(/STAGEDOOR_TLS_CERT: cannot read .*absent\.crt: ENOENT/);
      await expect(startBroker(loadConfig({}, { ...base, STAGEDOOR_TLS_CERT: a.certFile, STAGEDOOR_TLS_KEY: b.keyFile }), { log })).rejects.toThrow(/not a PEM certificate and its key/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
