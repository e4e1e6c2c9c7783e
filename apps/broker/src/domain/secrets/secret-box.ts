import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { InvalidInputError } from '../errors.ts';

/**
 * Secrets at rest (cloud keys, directory bind passwords, RADIUS shared secrets): AES-256-GCM under
 * the key from STAGEDOOR_SECRET_KEY. The stored text is `v1:<iv>:<tag>:<ciphertext>` (base64url),
 * so the format can evolve and a row never holds plaintext. `context` (e.g. `provider:<id>`) is
 * bound as additional authenticated data: a ciphertext copied to another row will not decrypt.
 */
export class SecretBox {
  constructor(private readonly key: Buffer | undefined) {}

  get available(): boolean {
    return this.key !== undefined;
  }

  seal(plaintext: string, context: string): string {
    const key = this.#requireKey();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join(':');
  }

  open(sealed: string, context: string): string {
    const key = this.#requireKey();
    const [version, iv, tag, body] = sealed.split(':');
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('stored secret has an unknown format');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new Error('stored secret cannot be decrypted: STAGEDOOR_SECRET_KEY differs from the key it was stored with', { cause: err });
    }
  }

  #requireKey(): Buffer {
    if (!this.key) {
      throw new InvalidInputError('storing a secret needs STAGEDOOR_SECRET_KEY (32 bytes, hex or base64) set on every broker node', [
        { path: 'STAGEDOOR_SECRET_KEY', message: 'is not set' },
      ]);
    }
    return this.key;
  }
}
