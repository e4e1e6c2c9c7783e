import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ssh2 } from './ssh2-keys.ts';

/**
 * The SSH jump host's identity (ADR 0017): one Ed25519 key per gateway, made at enrolment and kept
 * beside the credential (`gateway.json`) in the data directory, so a restart or an upgrade keeps the
 * key that users pinned in `known_hosts`. Only the gateway reads it: mode 0600, like the credential.
 */
export interface SshHostKey {
  /** OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), what ssh2's server takes. */
  privateKey: string;
  /** `ssh-ed25519 AAAA…`: the `known_hosts` line after the host name, and what the hello reports. */
  publicKey: string;
  /** `SHA256:…` as `ssh-keygen -lf` and OpenSSH's "host key fingerprint is" print it. */
  fingerprint: string;
}

export const SSH_HOST_KEY_FILE = 'ssh_host_ed25519_key';

export class SshHostKeyError extends Error {
  override name = 'SshHostKeyError';
}

export function loadOrCreateSshHostKey(dataDir: string): SshHostKey {
  const file = path.join(dataDir, SSH_HOST_KEY_FILE);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // The private key first (atomically), then the .pub beside it: the .pub is derived, for people
    // and ssh-keygen, and is rewritten from the private key when missing or stale.
    writeAtomically(file, newOpenSshEd25519Key(), 0o600);
  }
  return readKey(file);
}

function readKey(file: string): SshHostKey {
  const privateKey = fs.readFileSync(file, 'utf8');
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || parsed.type !== 'ssh-ed25519' || !parsed.isPrivateKey()) {
    throw new SshHostKeyError(`${file} is not an unencrypted Ed25519 OpenSSH private key: remove it and a new one is made (users then pin the new fingerprint)`);
  }
  const blob = parsed.getPublicSSH();
  const publicKey = `ssh-ed25519 ${blob.toString('base64')}`;
  const pub = `${file}.pub`;
  if (!fs.existsSync(pub) || fs.readFileSync(pub, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ') !== publicKey) {
    // Public, but 0600 all the same: nothing in the data directory is open to other users.
    writeAtomically(pub, `${publicKey} stagedoor-gateway\n`, 0o600);
  }
  return { privateKey, publicKey, fingerprint: sshFingerprint(blob) };
}

/**
 * A new Ed25519 key in OpenSSH's private key format (PROTOCOL.key: no cipher, no KDF), written here
 * rather than by ssh2's `generateKeyPairSync`: that one drops a leading zero byte of the public key
 * (one key in 256), and then neither ssh2 nor OpenSSH reads the key back.
 */
export function newOpenSshEd25519Key(comment = 'stagedoor-gateway'): string {
  // DER straight from the generator, not a KeyObject exported as JWK: Node 20 can deadlock there, when a
  // garbage collection during the export frees an earlier generation's job (seen in a test that draws
  // thousands of keys: the main thread waited on a mutex it held). Ed25519's PKCS#8 and SPKI forms end
  // with the 32-byte seed and public key (RFC 8410).
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'der' }, publicKeyEncoding: { type: 'spki', format: 'der' } });
  const seed = privateKey.subarray(-32);
  const pub = publicKey.subarray(-32);
  const publicBlob = sshStrings('ssh-ed25519', pub);
  const check = randomBytes(4); // written twice: a wrong passphrase would show as a mismatch
  const unpadded = Buffer.concat([check, check, sshStrings('ssh-ed25519', pub, Buffer.concat([seed, pub]), comment)]);
  const padding = Buffer.from(Array.from({ length: (8 - (unpadded.length % 8)) % 8 }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshStrings('none', 'none', ''), // cipher, KDF, KDF options
    uint32(1), // one key
    sshStrings(publicBlob, Buffer.concat([unpadded, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** SSH wire strings (RFC 4251 §5): each is a 32-bit length and its bytes. */
function sshStrings(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(parts.flatMap((p) => {
    const bytes = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    return [uint32(bytes.length), bytes];
  }));
}

/** OpenSSH's SHA-256 fingerprint of a public key blob: base64 without padding. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function writeAtomically(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode });
  fs.chmodSync(tmp, mode); // writeFileSync's mode goes through the umask; the key's must be exact
  fs.renameSync(tmp, file);
}
