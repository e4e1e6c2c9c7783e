import { createHash, randomBytes } from 'node:crypto';
import { GRANT_TOKEN_PATTERN } from '@stagedoor/contract';

/** RFC 4648 base32, lowercase: the alphabet fits an RDP routing token, an SSH user name and a DNS label. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const TOKEN_BYTES = 20;

/** 20 random bytes as 32 characters of unpadded lowercase base32 (160 bits; ADR 0017). */
export function newGrantToken(random: (n: number) => Buffer = randomBytes): string {
  const bytes = random(TOKEN_BYTES);
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1; // keep only the bits not written yet, so the number never grows
  }
  // 160 bits are exactly 32 characters: nothing is left over, no padding.
  if (!GRANT_TOKEN_PATTERN.test(out)) throw new Error('grant token does not match GRANT_TOKEN_PATTERN');
  return out;
}

/** What the broker stores and gateways compare: SHA-256 (hex) of the token's lowercase form. */
export function grantTokenHash(token: string): string {
  return createHash('sha256').update(token.toLowerCase()).digest('hex');
}

/** The secret-box context a grant's token is sealed under: a sealed token moved to another grant does not open. */
export function grantTokenContext(grantId: string): string {
  return `grants:${grantId}`;
}
