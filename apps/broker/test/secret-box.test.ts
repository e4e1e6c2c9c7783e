import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox, secretKeyId } from '../src/domain/secrets/secret-box.ts';
import { InvalidInputError } from '../src/domain/errors.ts';
import { sealV1 } from '../../../test/support/sealed-v1.ts';

describe('SecretBox (AES-256-GCM at rest)', () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);

  it('round-trips, never stores the plaintext, and names the key that sealed it', () => {
    const sealed = box.seal('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'provider:1');
    expect(sealed).not.toContain('wJalrXUtnFEMI');
    expect(sealed.startsWith(`v2:${secretKeyId(key)}:`)).toBe(true);
    expect(box.keyId).toBe(secretKeyId(key));
    expect(box.open(sealed, 'provider:1')).toBe('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
  });

  it('uses a fresh IV each time', () => {
    expect(box.seal('same', 'c')).not.toBe(box.seal('same', 'c'));
  });

  it('refuses a ciphertext moved to another row, a tampered one, or another key', () => {
    const sealed = box.seal('s3cret', 'provider:1');
    expect(() => box.open(sealed, 'provider:2')).toThrow(/cannot be decrypted/);
    const parts = sealed.split(':');
    parts[parts.length - 1] = Buffer.from('tampered').toString('base64url');
    expect(() => box.open(parts.join(':'), 'provider:1')).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'provider:1')).toThrow(/STAGEDOOR_SECRET_KEY/);
  });

  it('a secret whose authentication tag was cut to 4 bytes does not open (GCM tag truncation forgery)', () => {
    const sealed = box.seal('s3cret', 'provider:1');
    const parts = sealed.split(':');
    const tag = Buffer.from(parts[parts.length - 2]!, 'base64url');
    parts[parts.length - 2] = tag.subarray(0, 4).toString('base64url');
    // A 4-byte tag is guessed in 2^32 tries; only the full 16 bytes may pass.
    expect(() => box.open(parts.join(':'), 'provider:1')).toThrow();
  });

  it('a secret stored before key ids (v1) still opens, under the current or a previous key', () => {
    expect(box.open(sealV1(key, 'old-format', 'auth_servers:1'), 'auth_servers:1')).toBe('old-format');
    const rotated = new SecretBox(randomBytes(32), [key]);
    expect(rotated.open(sealV1(key, 'old-format', 'auth_servers:1'), 'auth_servers:1')).toBe('old-format');
    expect(rotated.isStale(sealV1(key, 'x', 'c'))).toBe(true);
  });

  it('after a key change, secrets sealed under the previous key still open and new ones use the new key', () => {
    const sealedOld = box.seal('before rotation', 'providers:7');
    const next = randomBytes(32);
    const rotated = new SecretBox(next, [key]);
    expect(rotated.open(sealedOld, 'providers:7')).toBe('before rotation');
    expect(rotated.isStale(sealedOld)).toBe(true);
    const sealedNew = rotated.seal('after rotation', 'providers:7');
    expect(sealedNew.startsWith(`v2:${secretKeyId(next)}:`)).toBe(true);
    expect(rotated.isStale(sealedNew)).toBe(false);
    // Without the previous key, the old secret names a key that is not configured.
    expect(() => new SecretBox(next).open(sealedOld, 'providers:7')).toThrow(new RegExp(`${secretKeyId(key)}.*STAGEDOOR_SECRET_KEY_PREVIOUS`));
  });

  it('without a key, storing a secret is a clear 4xx naming STAGEDOOR_SECRET_KEY', () => {
    const none = new SecretBox(undefined);
    expect(none.available).toBe(false);
    expect(() => none.seal('x', 'c')).toThrow(InvalidInputError);
    expect(() => none.seal('x', 'c')).toThrow(/STAGEDOOR_SECRET_KEY/);
  });
});
