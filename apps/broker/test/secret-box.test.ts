import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../src/domain/secrets/secret-box.ts';
import { InvalidInputError } from '../src/domain/errors.ts';

describe('SecretBox (AES-256-GCM at rest)', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips, and never stores the plaintext', () => {
    const sealed = box.seal('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'provider:1');
    expect(sealed).not.toContain('wJalrXUtnFEMI');
    expect(sealed.startsWith('v1:')).toBe(true);
    expect(box.open(sealed, 'provider:1')).toBe('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
  });

  it('uses a fresh IV each time', () => {
    expect(box.seal('same', 'c')).not.toBe(box.seal('same', 'c'));
  });

  it('refuses a ciphertext moved to another row, a tampered one, or another key', () => {
    const sealed = box.seal('s3cret', 'provider:1');
    expect(() => box.open(sealed, 'provider:2')).toThrow(/cannot be decrypted/);
    const parts = sealed.split(':');
    parts[3] = Buffer.from('tampered').toString('base64url');
    expect(() => box.open(parts.join(':'), 'provider:1')).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'provider:1')).toThrow(/STAGEDOOR_SECRET_KEY/);
  });

  it('without a key, storing a secret is a clear 4xx naming STAGEDOOR_SECRET_KEY', () => {
    const none = new SecretBox(undefined);
    expect(none.available).toBe(false);
    expect(() => none.seal('x', 'c')).toThrow(InvalidInputError);
    expect(() => none.seal('x', 'c')).toThrow(/STAGEDOOR_SECRET_KEY/);
  });
});
