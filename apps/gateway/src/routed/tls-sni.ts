/**
 * The TLS listener's first packet (ADR 0017): a TLS ClientHello, whose server_name (RFC 6066
 * section 3) is `<token>.<the cluster's wildcard domain>`. The gateway reads it and relays every
 * byte unchanged: it never terminates this TLS (the workstation's certificate is what the client
 * checks). The handshake message may arrive in several records, and records in several reads. Pure.
 */

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const NAME_TYPE_HOST = 0;

export type SniParse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  /** `serverName` is null when the hello has no host name (a client dialling by address); `alpn`: the protocols offered (RFC 7301). */
  | { kind: 'ok'; serverName: string | null; alpn: string[] };

/** Parse the ClientHello at the start of `buf`; one larger than `maxBytes` is invalid. */
export function parseClientHelloSni(buf: Buffer, maxBytes = 16 * 1024): SniParse {
  // Gather the handshake bytes from consecutive handshake records.
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1; // the ClientHello's length with its 4-byte header, once known
  let at = 0;
  while (need < 0 || have < need) {
    if (buf.length < at + 5) return { kind: 'incomplete' };
    if (buf[at] !== RECORD_HANDSHAKE) return { kind: 'invalid', reason: at === 0 ? 'not a TLS handshake record' : 'the ClientHello is interrupted by another record' };
    if (buf[at + 1] !== 3) return { kind: 'invalid', reason: 'not a TLS record version' };
    const len = buf.readUInt16BE(at + 3);
    if (len === 0 || len > 16_384) return { kind: 'invalid', reason: 'bad TLS record length' };
    if (at + 5 + len > maxBytes) return { kind: 'invalid', reason: 'ClientHello too large' };
    if (buf.length < at + 5 + len) return { kind: 'incomplete' };
    parts.push(buf.subarray(at + 5, at + 5 + len));
    have += len;
    at += 5 + len;
    if (need < 0 && have >= 4) {
      const hs = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (hs[0] !== HANDSHAKE_CLIENT_HELLO) return { kind: 'invalid', reason: 'the first handshake message is not a ClientHello' };
      need = 4 + hs.readUIntBE(1, 3);
      if (need > maxBytes) return { kind: 'invalid', reason: 'ClientHello too large' };
    }
  }
  const hello = Buffer.concat(parts).subarray(4, need);
  try {
    return { kind: 'ok', ...helloFields(hello) };
  } catch (err) {
    return { kind: 'invalid', reason: (err as Error).message };
  }
}

/** The host name (or null) and the ALPN protocols in a ClientHello body. Throws on a malformed body. */
function helloFields(body: Buffer): { serverName: string | null; alpn: string[] } {
  const out: { serverName: string | null; alpn: string[] } = { serverName: null, alpn: [] };
  const r = new Reader(body);
  r.skip(2 + 32); // legacy_version, random
  r.skip(r.u8()); // legacy_session_id
  r.skip(r.u16()); // cipher_suites
  r.skip(r.u8()); // legacy_compression_methods
  if (r.done()) return out; // no extensions (an old client): no name
  const extensions = new Reader(r.take(r.u16()));
  while (!extensions.done()) {
    const type = extensions.u16();
    const data = new Reader(extensions.take(extensions.u16()));
    if (type === EXT_SERVER_NAME) {
      const names = new Reader(data.take(data.u16()));
      while (!names.done() && out.serverName === null) {
        const nameType = names.u8();
        const name = names.take(names.u16());
        if (nameType === NAME_TYPE_HOST) out.serverName = name.toString('latin1');
      }
    } else if (type === EXT_ALPN) {
      const protocols = new Reader(data.take(data.u16()));
      while (!protocols.done()) out.alpn.push(protocols.take(protocols.u8()).toString('latin1'));
    }
  }
  return out;
}

class Reader {
  #at = 0;
  constructor(private readonly b: Buffer) {}
  done(): boolean {
    return this.#at >= this.b.length;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
  skip(n: number): void {
    this.take(n);
  }
  take(n: number): Buffer {
    if (this.#at + n > this.b.length) throw new Error('ClientHello field runs past its end');
    const out = this.b.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
}

/** The grant token of a server name: its first DNS label, lowercased (DNS names compare without case). */
export function sniToken(serverName: string | null): string | null {
  if (!serverName) return null;
  const label = serverName.split('.')[0]!.toLowerCase();
  return label || null;
}

/** A fatal unrecognized_name alert (RFC 6066 section 3, alert 112), sent before closing a refused client. */
export function tlsUnrecognizedName(): Buffer {
  // Record: alert (21), legacy version TLS 1.2 (RFC 8446 5.1), length 2; alert: fatal (2), 112.
  return Buffer.from([21, 3, 3, 0, 2, 2, 112]);
}
