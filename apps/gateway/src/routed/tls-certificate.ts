import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Log } from '../log.ts';

/**
 * The TLS certificate of the gateway's HTTPS listener (ADR 0017): from files an operator (or
 * certbot, or a secrets agent) keeps up to date, reloaded when they change; or, with no files,
 * self-signed at first start and kept in the data dir, so that its fingerprint — which clients pin
 * (`stagedoor connect --tunnel`) and the hello reports — stays the same across restarts.
 */
export interface CertificateFiles {
  cert: string;
  key: string;
}

export interface TlsCertificateOptions {
  /** `STAGEDOOR_GATEWAY_TLS_CERT` / `_KEY`; null = self-signed in `dataDir`. */
  files: CertificateFiles | null;
  dataDir: string;
  log: Log;
  /** Names and addresses the self-signed certificate lists (clients pin it, so this is for display). */
  hostnames?: string[];
  /** How often the files are re-stat'ed (fs.watchFile; a rename over the file, as certbot does, is seen too). */
  reloadIntervalMs?: number;
}

export interface CertificatePair {
  cert: string;
  key: string;
}

export const SELF_SIGNED_FILES = { cert: 'tls-self-signed-cert.pem', key: 'tls-self-signed-key.pem' } as const;

export class TlsCertificate {
  #pair: CertificatePair;
  #fingerprint: string;
  readonly #listeners = new Set<(pair: CertificatePair) => void>();
  readonly #watched: string[] = [];

  private constructor(
    pair: CertificatePair,
    readonly source: 'files' | 'self-signed',
    private readonly opts: TlsCertificateOptions,
  ) {
    this.#pair = pair;
    this.#fingerprint = checkPair(pair);
  }

  static async load(opts: TlsCertificateOptions): Promise<TlsCertificate> {
    if (opts.files) {
      const c = new TlsCertificate(readPair(opts.files), 'files', opts);
      c.#watch(opts.files);
      return c;
    }
    return new TlsCertificate(await selfSigned(opts), 'self-signed', opts);
  }

  /** The certificate and key for `tls.createSecureContext` / `server.setSecureContext`. */
  get pair(): CertificatePair {
    return this.#pair;
  }

  /** SHA-256 of the leaf certificate, `AA:BB:…` (the hello's `identity.tlsCertificateSha256`). */
  get fingerprint256(): string {
    return this.#fingerprint;
  }

  /** Called with the new pair after a reload (the listener swaps its secure context). */
  onChange(fn: (pair: CertificatePair) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  close(): void {
    for (const f of this.#watched) fs.unwatchFile(f);
    this.#watched.length = 0;
    this.#listeners.clear();
  }

  #watch(files: CertificateFiles): void {
    const interval = this.opts.reloadIntervalMs ?? 5000;
    for (const f of [files.cert, files.key]) {
      // watchFile polls stat rather than inotify: it keeps working when the file is replaced by a
      // rename or a symlink swap (certbot, Kubernetes secrets), where fs.watch loses the inode.
      fs.watchFile(f, { interval, persistent: false }, (cur, prev) => {
        if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) this.#reload(files);
      });
      this.#watched.push(f);
    }
  }

  #reload(files: CertificateFiles): void {
    let pair: CertificatePair;
    let fingerprint: string;
    try {
      pair = readPair(files);
      fingerprint = checkPair(pair);
    } catch (err) {
      // Mid-renewal the new certificate can sit beside the old key for a moment: keep serving the
      // old pair; the second file's change brings the reload that succeeds.
      this.opts.log.warn({ err, cert: files.cert, key: files.key }, 'the TLS certificate files changed but do not form a valid pair yet: still serving the previous certificate');
      return;
    }
    if (fingerprint === this.#fingerprint && pair.key === this.#pair.key) return;
    this.#pair = pair;
    this.#fingerprint = fingerprint;
    this.opts.log.info({ fingerprint, validTo: new X509Certificate(pair.cert).validTo }, 'TLS certificate reloaded');
    for (const fn of this.#listeners) fn(pair);
  }
}

function readPair(files: CertificateFiles): CertificatePair {
  return { cert: fs.readFileSync(files.cert, 'utf8'), key: fs.readFileSync(files.key, 'utf8') };
}

/** The leaf's fingerprint, after checking that the key belongs to it (a mismatch fails at start, not at the first client). */
function checkPair(pair: CertificatePair): string {
  const leaf = new X509Certificate(pair.cert);
  if (!leaf.checkPrivateKey(createPrivateKey(pair.key))) throw new Error('the TLS private key does not belong to the certificate');
  return leaf.fingerprint256;
}

async function selfSigned(opts: TlsCertificateOptions): Promise<CertificatePair> {
  const certFile = path.join(opts.dataDir, SELF_SIGNED_FILES.cert);
  const keyFile = path.join(opts.dataDir, SELF_SIGNED_FILES.key);
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) return readPair({ cert: certFile, key: keyFile });
  const pair = await generateSelfSigned(opts.hostnames ?? []);
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  // Key first, then certificate, each by rename: a crash in between leaves no certificate, so the
  // next start generates a fresh pair instead of serving a certificate without its key.
  writeAtomic(keyFile, pair.key, 0o600);
  writeAtomic(certFile, pair.cert, 0o644);
  const fingerprint = checkPair(pair);
  opts.log.info({ fingerprint, file: certFile }, 'generated a self-signed TLS certificate for the HTTPS tunnel: clients pin its fingerprint');
  return pair;
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
}

/**
 * An ECDSA P-256 certificate signed by its own key, valid ten years (clients pin the fingerprint, so
 * expiry would only break pins; an operator wanting a CA's certificate configures files).
 *
 * Node can make keys but not certificates; @peculiar/x509 builds them on WebCrypto in JavaScript, so
 * a gateway host needs no openssl. It is loaded only here, when a certificate must be made, because it
 * needs the reflect-metadata polyfill (its dependency injection container) on the global Reflect.
 */
export async function generateSelfSigned(hostnames: string[], now = new Date()): Promise<CertificatePair> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const names = [...new Set(['localhost', ...hostnames])];
  const ipPattern = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:]*)$/i;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    // A positive serial: the first byte's top bit clear (RFC 5280 4.1.2.2).
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    name: 'CN=Stagedoor gateway (self-signed)',
    notBefore: new Date(now.getTime() - 60 * 60_000), // a client whose clock is a little behind still accepts it
    notAfter: new Date(now.getTime() + 10 * 365 * 24 * 60 * 60_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (ipPattern.test(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
  return { cert: cert.toString('pem'), key };
}
