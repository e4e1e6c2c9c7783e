import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ParsedKey } from 'ssh2';
import { describe, expect, it } from 'vitest';
// First of the gateway's modules: ssh2 loads through it (ADR 0033).
import { serverHostKey, ssh2 } from '../src/routed/ssh2-keys.ts';
import { newOpenSshEd25519Key } from '../src/routed/ssh-host-key.ts';

/**
 * The jump host's key as ssh2's server signs with it. ssh2 signs each key exchange from the key's PEM
 * text, which OpenSSL decodes again every time (288 µs against 20 µs from a KeyObject, about a fifth
 * of a new jump connection's cost to the gateway); `serverHostKey` signs from a KeyObject made once.
 * That real clients accept its signatures is shown by every `ssh -J` test (ssh-jump.test.ts).
 */
function parse(text: string | Buffer): ParsedKey {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('not one key');
  return parsed;
}

describe('serverHostKey', () => {
  it('signs exactly as ssh2 does with the same key, and the signature verifies', () => {
    const text = newOpenSshEd25519Key();
    const served = serverHostKey(text);
    if (typeof served === 'string' || Buffer.isBuffer(served)) throw new Error('an Ed25519 key should be wrapped');
    const reference = parse(text);
    for (let i = 0; i < 5; i++) {
      const exchangeHash = randomBytes(32);
      const signature = served.key.sign(exchangeHash);
      expect(signature).toBeInstanceOf(Buffer);
      expect(signature).toEqual(reference.sign(exchangeHash)); // Ed25519 is deterministic
      expect(reference.verify(exchangeHash, signature as Buffer)).toBe(true);
    }
    expect(served.key.getPublicSSH()).toEqual(reference.getPublicSSH());
  });

  it('signs from its KeyObject, never from the PEM text again (cleared here: ssh2\'s own sign then fails)', () => {
    const text = newOpenSshEd25519Key();
    const served = serverHostKey(text);
    if (typeof served === 'string' || Buffer.isBuffer(served)) throw new Error('an Ed25519 key should be wrapped');
    const plain = parse(text);
    for (const key of [served.key, plain]) {
      const pem = Object.getOwnPropertySymbols(key).find((s) => s.description === 'Private key PEM');
      expect(pem).toBeDefined(); // ssh2 1.17's layout (pinned); a change there must show here
      (key as unknown as Record<symbol, unknown>)[pem!] = null;
    }
    const exchangeHash = randomBytes(32);
    expect(plain.sign(exchangeHash)).toBeInstanceOf(Error);
    expect(served.key.sign(exchangeHash)).toBeInstanceOf(Buffer);
  });

  it('passes another kind of key to ssh2 as it came', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssh2-keys-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', path.join(dir, 'key')]);
      const text = fs.readFileSync(path.join(dir, 'key'), 'utf8');
      expect(serverHostKey(text)).toBe(text);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
