import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { InvalidInputError } from '../errors.ts';

/** GCM's full tag. Given to the decipher too: without it Node accepts a tag cut to 4 bytes, which is forgeable. */
const TAG_BYTES = 16;
const IV_BYTES = 12;

/** A short, stable name for a key: the first 8 bytes of a SHA-256 over a label and the key (ADR 0015). */
export function secretKeyId(key: Buffer): string {
  return createHash('sha256').update('stagedoor secret key id\0').update(key).digest('hex').slice(0, 16);
}

/**
 * Secrets at rest (cloud keys, directory bind passwords, RADIUS shared secrets, TOTP seeds):
 * AES-256-GCM under the key from STAGEDOOR_SECRET_KEY. The stored text is
 * `v2:<key id>:<iv>:<tag>:<ciphertext>` (base64url), so a row never holds plaintext and says which key
 * sealed it. `context` (e.g. `providers:<id>`) is bound as additional authenticated data: a ciphertext
 * copied to another row will not decrypt.
 *
 * Rotation (ADR 0015): new secrets are sealed under the current key; secrets sealed under a key in
 * STAGEDOOR_SECRET_KEY_PREVIOUS still open, until `stagedoor admin rotate-secret-key` re-seals them.
 * `v1:<iv>:<tag>:<ciphertext>` (before key ids) still opens, under any of the keys.
 */
export class SecretBox {
  readonly #current: { id: string; key: Buffer } | undefined;
  readonly #byId = new Map<string, Buffer>();

  constructor(key: Buffer | undefined, previous: Buffer[] = []) {
    this.#current = key ? { id: secretKeyId(key), key } : undefined;
    for (const k of [...(key ? [key] : []), ...previous]) if (!this.#byId.has(secretKeyId(k))) this.#byId.set(secretKeyId(k), k);
  }

  get available(): boolean {
    return this.#current !== undefined;
  }

  /** The id of the key new secrets are sealed under, or undefined without a key. */
  get keyId(): string | undefined {
    return this.#current?.id;
  }

  seal(plaintext: string, context: string): string {
    const { id, key } = this.#requireKey();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v2', id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join(':');
  }

  open(sealed: string, context: string): string {
    const parsed = parse(sealed);
    if (!parsed) throw new Error('stored secret has an unknown format');
    let candidates: Buffer[];
    if (parsed.keyId === null) {
      // v1 names no key: the current one first, then the previous ones.
      candidates = [...this.#byId.values()];
      if (!candidates.length) this.#requireKey();
    } else {
      const key = this.#byId.get(parsed.keyId);
      if (!key) {
        if (!this.#current) this.#requireKey();
        throw new Error(
          `stored secret was sealed under key ${parsed.keyId}, which is neither STAGEDOOR_SECRET_KEY (${this.#current!.id}) nor in STAGEDOOR_SECRET_KEY_PREVIOUS: set the key it was stored with`,
        );
      }
      candidates = [key];
    }
    for (const key of candidates) {
      const opened = decrypt(key, parsed, context);
      if (opened !== null) return opened;
    }
    throw new Error(
      parsed.keyId === null
        ? 'stored secret cannot be decrypted: STAGEDOOR_SECRET_KEY (and STAGEDOOR_SECRET_KEY_PREVIOUS) differ from the key it was stored with, or it was altered'
        : `stored secret cannot be decrypted with key ${parsed.keyId}: it was altered or moved from another row`,
    );
  }

  /** Whether `sealed` should be sealed again under the current key (it names another key, or none). */
  isStale(sealed: string): boolean {
    const parsed = parse(sealed);
    return !parsed || parsed.keyId !== this.#current?.id;
  }

  #requireKey(): { id: string; key: Buffer } {
    if (!this.#current) {
      throw new InvalidInputError('storing a secret needs STAGEDOOR_SECRET_KEY (32 bytes, hex or base64) set on every broker node', [
        { path: 'STAGEDOOR_SECRET_KEY', message: 'is not set' },
      ]);
    }
    return this.#current;
  }
}

interface Parsed {
  keyId: string | null;
  iv: Buffer;
  tag: Buffer;
  body: Buffer;
}

function parse(sealed: string): Parsed | null {
  const parts = sealed.split(':');
  const [version] = parts;
  let rest: string[];
  let keyId: string | null = null;
  if (version === 'v1' && parts.length === 4) rest = parts.slice(1);
  else if (version === 'v2' && parts.length === 5 && /^[0-9a-f]{16}$/.test(parts[1]!)) {
    keyId = parts[1]!;
    rest = parts.slice(2);
  } else return null;
  const [iv, tag, body] = rest.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
  // A short tag would be checked only as far as it goes: refuse it before the cipher sees it.
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return null;
  return { keyId, iv, tag, body };
}

function decrypt(key: Buffer, p: Parsed, context: string): string | null {
  const decipher = createDecipheriv('aes-256-gcm', key, p.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(p.tag);
  try {
    return Buffer.concat([decipher.update(p.body), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
