import crypto from 'node:crypto';

/**
 * What the HTTPS tunnel's native mode (ADR 0032) needs to hand a TLS 1.3 connection, handshake done in
 * Node, to the native relay: the application traffic keys (from the secrets Node's TLS reports through
 * its key log, RFC 8446 section 7.1/7.3) and how many records each side already protected with them.
 * Node does not say how many it wrote (session tickets) or read, so the records that passed are tried:
 * the application keys open exactly the records after the handshake's, in order. Pure.
 */

export interface TrafficSecrets {
  client: Buffer | null;
  server: Buffer | null;
}

/** `CLIENT_TRAFFIC_SECRET_0 <random> <secret>` (NSS key log format) into the secrets; other lines change nothing. */
export function readKeylogLine(line: Buffer | string, into: TrafficSecrets): void {
  const [label, , secret] = String(line).trim().split(' ');
  if (!secret || !/^[0-9a-f]+$/i.test(secret)) return;
  if (label === 'CLIENT_TRAFFIC_SECRET_0') into.client = Buffer.from(secret, 'hex');
  else if (label === 'SERVER_TRAFFIC_SECRET_0') into.server = Buffer.from(secret, 'hex');
}

/** The AEADs the relay implements, by the TLS 1.3 cipher suite's name (Node's `getCipher().standardName`). */
export const NATIVE_SUITES: Record<string, { aead: 'aes-128-gcm' | 'aes-256-gcm'; hash: 'sha256' | 'sha384'; keyLength: 16 | 32 }> = {
  TLS_AES_128_GCM_SHA256: { aead: 'aes-128-gcm', hash: 'sha256', keyLength: 16 },
  TLS_AES_256_GCM_SHA384: { aead: 'aes-256-gcm', hash: 'sha384', keyLength: 32 },
};
export type NativeSuite = (typeof NATIVE_SUITES)[string];

/** HKDF-Expand-Label(secret, label, "", length) for the lengths a key or IV needs (one HMAC block). */
export function hkdfExpandLabel(hash: string, secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])]);
  const block = crypto.createHmac(hash, secret).update(info).update(Buffer.from([1])).digest();
  if (length > block.length) throw new Error('hkdfExpandLabel: longer than one block');
  return block.subarray(0, length);
}

export interface TrafficKeys {
  key: Buffer;
  iv: Buffer;
}

export function trafficKeys(suite: NativeSuite, secret: Buffer): TrafficKeys {
  return { key: hkdfExpandLabel(suite.hash, secret, 'key', suite.keyLength), iv: hkdfExpandLabel(suite.hash, secret, 'iv', 12) };
}

function nonce(keys: TrafficKeys, seq: number): Buffer {
  const n = Buffer.from(keys.iv);
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(BigInt(seq));
  for (let k = 0; k < 8; k++) n[4 + k]! ^= s[k]!;
  return n;
}

/** Open one protected record (header included) as record number `seq`: its plaintext with the inner type last, or null. */
export function openRecord(suite: NativeSuite, keys: TrafficKeys, seq: number, record: Buffer): Buffer | null {
  if (record.length < 5 + 17) return null;
  try {
    const d = crypto.createDecipheriv(suite.aead, keys.key, nonce(keys, seq));
    d.setAAD(record.subarray(0, 5));
    d.setAuthTag(record.subarray(record.length - 16));
    return Buffer.concat([d.update(record.subarray(5, record.length - 16)), d.final()]);
  } catch {
    return null;
  }
}

/** Seal plaintext as record number `seq` (tests, and a client of the native mode). */
export function sealRecord(suite: NativeSuite, keys: TrafficKeys, seq: number, plaintext: Buffer, innerType = 23): Buffer {
  const header = Buffer.from([23, 3, 3, 0, 0]);
  header.writeUInt16BE(plaintext.length + 17, 3);
  const c = crypto.createCipheriv(suite.aead, keys.key, nonce(keys, seq));
  c.setAAD(header);
  const body = Buffer.concat([c.update(plaintext), c.update(Buffer.from([innerType])), c.final()]);
  return Buffer.concat([header, body, c.getAuthTag()]);
}

/**
 * How many of `records` (the protected records one side sent, in order) the application keys open:
 * the next record number. The records before the first that opens are the handshake's; after it, every
 * record must open, or the count cannot be trusted (null: the session stays with Node).
 *
 * Searched from the end: only record number 0 opens as number 0, and the application's records are the
 * last few (the tickets, the token line), so the handshake's records, each a failed open that throws
 * inside node:crypto, are not tried at all (a handoff's costliest step in the connection-rate profile).
 */
export function applicationRecords(suite: NativeSuite, keys: TrafficKeys, records: readonly Buffer[]): number | null {
  let first = records.length;
  for (let i = records.length - 1; i >= 0; i--) {
    if (openRecord(suite, keys, 0, records[i]!)) {
      first = i;
      break;
    }
  }
  for (let i = first + 1; i < records.length; i++) if (!openRecord(suite, keys, i - first, records[i]!)) return null;
  return records.length - first;
}

/** The native relay's parameters (binding.c `setup_tls`): key length, then the client's key, IV, next record number, then ours. */
export function nativeTlsParams(suite: NativeSuite, client: TrafficKeys, clientSeq: number, server: TrafficKeys, serverSeq: number): Buffer {
  const out = Buffer.alloc(1 + 2 * 52);
  out[0] = suite.keyLength;
  let at = 1;
  for (const [keys, seq] of [
    [client, clientSeq],
    [server, serverSeq],
  ] as const) {
    keys.key.copy(out, at);
    keys.iv.copy(out, at + 32);
    out.writeBigUInt64LE(BigInt(seq), at + 44);
    at += 52;
  }
  return out;
}
