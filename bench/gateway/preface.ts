import { randomBytes } from 'node:crypto';
import { buildRdpConnectionRequest } from '../../apps/gateway/src/routed/rdp-routing.ts';

/**
 * The first packets of the routed benchmark (routed.ts): what a client sends before its bytes. Every
 * path gets the same first packet from the same client (HAProxy, port forward and the routed
 * listeners alike), and the target skips it and answers one byte, `k`, before it echoes or streams.
 * Pure, apart from the random bytes of a ClientHello.
 */

/** The domain the SNI names end in: `<token>.gw.bench` (HAProxy routes on the suffix). */
export const SNI_DOMAIN = 'gw.bench';
/** The byte the target answers a first packet with. */
export const ACK = 0x6b;
/** A client asks the target to stream to it (workstation→user) by sending this after the ack. */
export const STREAM = 0x53;

/**
 * RDP: an X.224 Connection Request with the token in the Session Directory cookie form
 * (`Cookie: msts=<token>`), which the gateway reads and strips and HAProxy's `req.rdp_cookie(msts)` reads.
 */
export function rdpFirstPacket(token: string): Buffer {
  return buildRdpConnectionRequest({ line: `Cookie: msts=${token}` });
}

/**
 * TLS: a ClientHello that names `<token>.gw.bench`. Enough for the gateway and HAProxy, which read
 * the server name and pass the rest on; the target is no TLS server (nobody terminates it here).
 */
export function tlsFirstPacket(token: string): Buffer {
  const name = Buffer.from(`${token}.${SNI_DOMAIN}`, 'latin1');
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const sniList = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
  const sni = Buffer.concat([u16(0), u16(sniList.length + 2), u16(sniList.length), sniList]);
  const body = Buffer.concat([
    Buffer.from([3, 3]), // legacy_version TLS 1.2
    randomBytes(32),
    Buffer.from([32]),
    randomBytes(32), // legacy_session_id
    u16(4),
    Buffer.from([0x13, 0x01, 0x13, 0x02]), // TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384
    Buffer.from([1, 0]), // null compression
    u16(sni.length),
    sni,
  ]);
  const hs = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, 3, 1]), u16(hs.length), hs]);
}

export type FirstPacketKind = 'rdp' | 'tls';
export const firstPacket = (kind: FirstPacketKind, token: string): Buffer => (kind === 'rdp' ? rdpFirstPacket(token) : tlsFirstPacket(token));

/**
 * The length of the first packet at the start of `buf` (a TPKT-framed RDP request, with or without
 * its token line, or one TLS record), null until its header is in, -1 when it is neither.
 */
export function firstPacketLength(buf: Buffer): number | null {
  if (buf.length === 0) return null;
  if (buf[0] === 0x03) return buf.length < 4 ? null : buf.readUInt16BE(2);
  if (buf[0] === 22) return buf.length < 5 ? null : 5 + buf.readUInt16BE(3);
  return -1;
}

/** A token of the grant form (32 lowercase base32 characters), random. */
export function randomToken(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  return [...randomBytes(32)].map((b) => alphabet[b % 32]).join('');
}
