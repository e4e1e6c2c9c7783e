import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Ssh2 from 'ssh2';
import type { CipherAlgorithm, Connection } from 'ssh2';

/**
 * ssh2, loaded so that the jump host can hand a session's packets to the native relay (ADR 0033).
 *
 * ssh2 keeps its traffic keys inside its crypto binding, out of JavaScript's reach. They pass through
 * `createCipher` / `createDecipher` of `ssh2/lib/protocol/crypto.js` once per key exchange, and
 * `kex.js` takes those two functions from the module's exports when it loads. So this module wraps
 * them *before* ssh2 loads, and every gateway module takes ssh2 from here. A process where ssh2 loaded
 * first (another import order) simply has no keys to hand over: the jump host then relays in
 * JavaScript, as it does without the native relay. Pinned to ssh2 1.17.x with ssh2-internals.ts.
 */
const require = createRequire(import.meta.url);

interface Direction {
  keyLen: number;
  key: Buffer;
  iv: Buffer;
  /** The packet sequence number when these keys began: the IV's counter has gone up once per packet since. */
  seqno: number;
}

const captured = new WeakMap<object, Direction>();
const GCM = new Set(['aes-128-gcm', 'aes-256-gcm']);

interface CryptoModule {
  createCipher: (config: { outbound: { cipherInfo: { sslName: string; keyLen: number }; cipherKey: Buffer; cipherIV: Buffer; seqno: number } }) => object;
  createDecipher: (config: { inbound: { decipherInfo: { sslName: string; keyLen: number }; decipherKey: Buffer; decipherIV: Buffer; seqno: number } }) => object;
}

function wrapCrypto(): boolean {
  try {
    const crypto = require('ssh2/lib/protocol/crypto.js') as CryptoModule;
    const { createCipher, createDecipher } = crypto;
    if (typeof createCipher !== 'function' || typeof createDecipher !== 'function') return false;
    crypto.createCipher = (config) => {
      const cipher = createCipher(config);
      const o = config.outbound;
      if (GCM.has(o.cipherInfo.sslName)) captured.set(cipher, { keyLen: o.cipherInfo.keyLen, key: Buffer.from(o.cipherKey), iv: Buffer.from(o.cipherIV), seqno: o.seqno });
      return cipher;
    };
    crypto.createDecipher = (config) => {
      const decipher = createDecipher(config);
      const i = config.inbound;
      if (GCM.has(i.decipherInfo.sslName)) captured.set(decipher, { keyLen: i.decipherInfo.keyLen, key: Buffer.from(i.decipherKey), iv: Buffer.from(i.decipherIV), seqno: i.seqno });
      return decipher;
    };
    return true;
  } catch {
    return false;
  }
}

const wrapped = wrapCrypto();

/** The ssh2 module (its CommonJS exports), loaded after the wrap. */
export const ssh2 = require('ssh2') as typeof Ssh2;

/** The ciphers a jump host offers when it hands sessions to the native relay: AES-GCM alone (OpenSSH prefers ChaCha20 otherwise). */
export const NATIVE_SSH_CIPHERS: CipherAlgorithm[] = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm', 'aes256-gcm'];

/** The channel the client asked to open (its CHANNEL_OPEN) and what we answer with. */
export interface NativeChannel {
  peerId: number;
  peerWindow: number;
  peerMaxPacket: number;
  ourId: number;
  ourWindow: number;
  ourMaxPacket: number;
}

/** The SSH_PARAMS_LEN layout of apps/gateway/native/relay.h. */
const PARAMS_LEN = 1 + 2 * (32 + 12) + 6 * 4;

interface ProtocolState {
  _cipher?: { outSeqno?: number };
  _decipher?: { inSeqno?: number; _lenBytes?: number; _pktLen?: number; _tagPos?: number };
  /** The version strings as the first key exchange hashed them, and its session id. */
  _identRaw?: Buffer;
  _remoteIdentRaw?: Buffer;
  _kex?: { sessionID?: Buffer };
}

/** An Ed25519 private host key, parsed by ssh2 and as a KeyObject; null for any other key. */
function ed25519HostKey(hostKey: string | Buffer): { parsed: Ssh2.ParsedKey; key: KeyObject } | null {
  const parsed = ssh2.utils.parseKey(hostKey);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.type !== 'ssh-ed25519' || !parsed.isPrivateKey()) return null;
  return { parsed, key: createPrivateKey(parsed.getPrivatePEM()) };
}

/**
 * The host key as ssh2's server takes it, signing with a KeyObject made once. ssh2 signs every key
 * exchange with the key's PEM text, which OpenSSL 3 decodes again each time: 288 µs a signature on the
 * benchmark's machine, against 20 µs with a KeyObject, a fifth of what a new jump connection cost the
 * gateway. Another kind of key (the gateway makes Ed25519 only) goes to ssh2 as it came.
 */
export function serverHostKey(hostKey: string | Buffer): string | Buffer | { key: Ssh2.ParsedKey } {
  const ed25519 = ed25519HostKey(hostKey);
  if (!ed25519) return hostKey;
  // As ssh2's own sign: an Error returned, not thrown. Ed25519 takes no hash algorithm (ssh2 passes none for it).
  const signWithKeyObject = (data: Buffer): Buffer | Error => {
    try {
      return sign(null, data, ed25519.key);
    } catch (err) {
      return err as Error;
    }
  };
  Object.defineProperty(ed25519.parsed, 'sign', { value: signWithKeyObject });
  return { key: ed25519.parsed };
}

/**
 * The host key as the relay threads sign a key re-exchange with it (ssh_kex.c): the Ed25519 seed, then
 * the public key. Null for another kind of key (the relay then ends a session at the client's KEXINIT).
 */
export function rekeyHostKey(hostKey: string | Buffer): Buffer | null {
  const jwk = ed25519HostKey(hostKey)?.key.export({ format: 'jwk' });
  if (!jwk?.d || !jwk.x) return null;
  return Buffer.concat([Buffer.from(jwk.d, 'base64url'), Buffer.from(jwk.x, 'base64url')]);
}

/**
 * What a key re-exchange needs beyond the host key (relay.h SSH_PARAMS_LEN's tail): each version string
 * and the session id, a length byte before each, then `hostKey` (rekeyHostKey). Null when ssh2 does not
 * hold them where 1.17 does.
 */
function rekeyMaterial(proto: ProtocolState, hostKey: Buffer): Buffer | null {
  const parts = [proto._remoteIdentRaw, proto._identRaw, proto._kex?.sessionID];
  if (!parts.every((p): p is Buffer => Buffer.isBuffer(p) && p.length > 0 && p.length < 256)) return null;
  return Buffer.concat([...parts.flatMap((p) => [Buffer.from([p.length]), p]), hostKey]);
}

/**
 * The native relay's parameters for this connection now: both directions' keys and IVs at the
 * packet each has reached, and the channel. Null when they cannot be had exactly: keys not captured
 * (not AES-GCM, or ssh2 loaded before the wrap), or ssh2 holding part of a packet from the client.
 */
export function nativeSshParams(connection: Connection, channel: NativeChannel, rekeyKey: Buffer | null = null): Buffer | null {
  if (!wrapped) return null;
  const proto = (connection as unknown as { _protocol?: ProtocolState })._protocol;
  const cipher = proto?._cipher;
  const decipher = proto?._decipher;
  if (!cipher || !decipher) return null;
  const out = captured.get(cipher);
  const inn = captured.get(decipher);
  if (!out || !inn || out.keyLen !== inn.keyLen || typeof cipher.outSeqno !== 'number' || typeof decipher.inSeqno !== 'number') return null;
  // Between two packets: nothing of the next one read yet (else the relay would start mid-packet).
  if (decipher._lenBytes !== 0 || decipher._pktLen !== 0 || decipher._tagPos !== 0) return null;
  const params = Buffer.alloc(PARAMS_LEN);
  params[0] = inn.keyLen;
  inn.key.copy(params, 1);
  advanceIv(inn.iv, (decipher.inSeqno - inn.seqno) >>> 0).copy(params, 33);
  out.key.copy(params, 45);
  advanceIv(out.iv, (cipher.outSeqno - out.seqno) >>> 0).copy(params, 77);
  let p = 89;
  for (const v of [channel.peerId, channel.ourId, channel.peerWindow, channel.peerMaxPacket, channel.ourWindow, channel.ourMaxPacket]) p = params.writeUInt32BE(v >>> 0, p);
  const rekey = rekeyKey && proto ? rekeyMaterial(proto, rekeyKey) : null;
  return rekey ? Buffer.concat([params, rekey]) : params;
}

/** RFC 5647 7.1: the IV's last 8 bytes count packets (big-endian); `packets` on from `iv`. */
export function advanceIv(iv: Buffer, packets: number): Buffer {
  const next = Buffer.from(iv);
  next.writeBigUInt64BE((iv.readBigUInt64BE(4) + BigInt(packets)) & 0xffff_ffff_ffff_ffffn, 4);
  return next;
}

/**
 * ssh2's side of a connection the relay threads took over: its protocol state is freed (the keys in
 * its binding with it) and its own timers stop — the server's keepalive, which would otherwise ping a
 * socket that is gone every 15 s and keep the whole connection alive in the heap. The caller removes
 * its own `close` listener first: for ssh2 this is the socket's close, not the session's end.
 */
export function releaseSsh2Connection(connection: Connection): void {
  const proto = (connection as unknown as { _protocol?: { cleanup?: () => void } })._protocol;
  proto?.cleanup?.();
  connection.on('error', () => undefined);
  connection.emit('close');
}

