import { createCipheriv, randomBytes } from 'node:crypto';

/**
 * A secret in the format SecretBox wrote before key ids (`v1:<iv>:<tag>:<body>`), made with
 * node:crypto here so that tests of old-format secrets do not depend on the code they check.
 */
export function sealV1(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join(':');
}
