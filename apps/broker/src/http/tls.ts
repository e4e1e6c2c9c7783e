import fs from 'node:fs';
import type https from 'node:https';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { ConfigError } from '../config/config.ts';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/**
 * Read the certificate chain and key, and check they belong together (a secure context refuses a
 * key that does not match the certificate). At start a problem is a ConfigError naming the variable.
 */
export function readTlsMaterial(files: TlsFiles): TlsMaterial {
  const read = (file: string, variable: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new ConfigError([{ variable, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
    }
  };
  const material = { cert: read(files.certFile, 'STAGEDOOR_TLS_CERT'), key: read(files.keyFile, 'STAGEDOOR_TLS_KEY') };
  try {
    tls.createSecureContext(material);
  } catch (err) {
    throw new ConfigError([{ variable: 'STAGEDOOR_TLS_CERT', message: `${files.certFile} and ${files.keyFile} are not a PEM certificate and its key: ${(err as Error).message}` }]);
  }
  return material;
}

/** How often the files' status is polled. Polling follows symlinks and survives files replaced by rename (certbot, cert-manager, a config-management run), which inotify watches on the old inode do not. */
const POLL_MS = 2000;

/**
 * Reload the certificate when either file changes, without a restart: new connections get the new
 * certificate, established ones keep theirs. A half-written pair (the certificate renewed, the key
 * not yet) fails to load; the broker keeps serving the old pair, logs it, and tries again on the next change.
 */
export function watchTlsFiles(server: https.Server, files: TlsFiles, log: Logger): () => void {
  let loaded = fingerprint(files);
  const onChange = () => {
    const now = fingerprint(files);
    if (now === loaded) return;
    try {
      server.setSecureContext(readTlsMaterial(files));
      loaded = now;
      log.info({ cert: files.certFile }, 'TLS certificate reloaded');
    } catch (err) {
      log.warn({ cert: files.certFile, key: files.keyFile, err: (err as Error).message }, 'TLS files changed but do not load; still serving the previous certificate');
    }
  };
  fs.watchFile(files.certFile, { interval: POLL_MS, persistent: false }, onChange);
  fs.watchFile(files.keyFile, { interval: POLL_MS, persistent: false }, onChange);
  return () => {
    fs.unwatchFile(files.certFile, onChange);
    fs.unwatchFile(files.keyFile, onChange);
  };
}

/** What the pair looks like on disk now (size and change time of each file). */
function fingerprint(files: TlsFiles): string {
  return [files.certFile, files.keyFile]
    .map((f) => {
      const st = fs.statSync(f, { throwIfNoEntry: false });
      return st ? `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}` : 'missing';
    })
    .join('|');
}
