/**
 * The RDP listener's first packet (ADR 0017): the client's TPKT + X.224 Connection Request
 * (MS-RDPBCGR 2.2.1.1), which carries the grant token as its routing token — the `.rdp` file's
 * `loadbalanceinfo:s:<token>`, which mstsc and FreeRDP (`/load-balance-info:`) send, ended by CRLF,
 * in place of the `Cookie: mstshash=<user>` cookie. The Session Directory form of a routing token,
 * `Cookie: msts=<value>` ([MSFT-SDLBTS] "Routing Token Format"), is accepted too: a client or a
 * balancer that writes tokens in that form still finds its grant.
 *
 * The workstation is given the request without the token line, its TPKT length and X.224 length
 * indicator fixed, so it sees an ordinary request (the token never reaches it). Pure: no I/O.
 */

const TPKT_VERSION = 0x03;
const X224_CONNECTION_REQUEST = 0xe0;
/** TPKT header (4) + X.224 length indicator, code, dst-ref, src-ref, class (7). */
const FIXED = 11;
const TYPE_RDP_NEG_REQ = 0x01;
const CRLF = Buffer.from('\r\n');
const MSTS_PREFIX = 'cookie: msts=';
const MSTSHASH_PREFIX = 'cookie: mstshash=';

export type RdpParse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  | {
      kind: 'ok';
      /** The routing token the client sent (null: none, or only an `mstshash` cookie). */
      token: string | null;
      /** What the workstation gets: the request without the token line, then any bytes after it. */
      forward: Buffer;
      /** The client sent an RDP Negotiation Request, so it understands a Negotiation Failure. */
      negotiates: boolean;
    };

/** Parse the first PDU of `buf` (all bytes read so far). A request longer than `maxBytes` is invalid. */
export function parseRdpConnectionRequest(buf: Buffer, maxBytes = 16 * 1024): RdpParse {
  if (buf.length >= 1 && buf[0] !== TPKT_VERSION) return { kind: 'invalid', reason: 'not a TPKT header' };
  if (buf.length >= 2 && buf[1] !== 0) return { kind: 'invalid', reason: 'TPKT reserved byte is not zero' };
  if (buf.length < 4) return { kind: 'incomplete' };
  const length = buf.readUInt16BE(2);
  if (length < FIXED) return { kind: 'invalid', reason: 'TPKT length shorter than a Connection Request' };
  if (length > maxBytes) return { kind: 'invalid', reason: 'Connection Request too large' };
  if (buf.length < length) return { kind: 'incomplete' };
  // MS-RDPBCGR 3.3.5.3.1: the length fields must agree with each other; a class 0 CR TPDU.
  if (buf[4]! + 5 !== length) return { kind: 'invalid', reason: 'X.224 length indicator disagrees with the TPKT length' };
  if ((buf[5]! & 0xf0) !== X224_CONNECTION_REQUEST) return { kind: 'invalid', reason: 'not an X.224 Connection Request' };
  if ((buf[10]! & 0xf0) !== 0) return { kind: 'invalid', reason: 'not an X.224 class 0 request' };

  const pdu = buf.subarray(0, length);
  const after = buf.subarray(length);
  const variable = pdu.subarray(FIXED);
  const line = tokenLine(variable);
  if (line === null) {
    return { kind: 'ok', token: null, forward: Buffer.from(buf), negotiates: variable[0] === TYPE_RDP_NEG_REQ };
  }
  const text = variable.subarray(0, line).toString('latin1');
  const rest = variable.subarray(line + CRLF.length);
  const negotiates = rest[0] === TYPE_RDP_NEG_REQ;
  // A user-name cookie is no token, and it stays: the workstation may use it (xrdp logs it).
  if (text.toLowerCase().startsWith(MSTSHASH_PREFIX)) return { kind: 'ok', token: null, forward: Buffer.from(buf), negotiates };
  const token = text.toLowerCase().startsWith(MSTS_PREFIX) ? text.slice(MSTS_PREFIX.length) : text;

  const newLength = length - line - CRLF.length;
  const head = Buffer.from(pdu.subarray(0, FIXED));
  head.writeUInt16BE(newLength, 2);
  head[4] = newLength - 5;
  return { kind: 'ok', token, forward: Buffer.concat([head, rest, after]), negotiates };
}

/**
 * The length of the printable line at the start of the variable part, ended by CRLF, or null when
 * there is none: without a token or cookie the variable part begins with the Negotiation Request
 * (type byte 0x01) or is empty.
 */
function tokenLine(variable: Buffer): number | null {
  const end = variable.indexOf(CRLF);
  if (end <= 0) return null;
  for (let i = 0; i < end; i++) {
    const c = variable[i]!;
    if (c < 0x20 || c > 0x7e) return null;
  }
  return end;
}

/**
 * An X.224 Connection Confirm carrying an RDP Negotiation Failure (MS-RDPBCGR 2.2.1.2.2), so a
 * refused client shows an error instead of "connection reset". No failure code says "refused"; we
 * send INCONSISTENT_FLAGS (0x00000004): unlike SSL_NOT_ALLOWED_BY_SERVER or SSL_CERT_NOT_ON_SERVER
 * it invites no retry with other security (which would only be refused again), and unlike the
 * *_REQUIRED_BY_SERVER codes it does not send the user looking for a security setting to change.
 */
export const RDP_FAILURE_CODE = 0x00000004;

export function rdpNegotiationFailure(): Buffer {
  const b = Buffer.alloc(19);
  b[0] = TPKT_VERSION;
  b.writeUInt16BE(19, 2);
  b[4] = 14; // length indicator: the 6 bytes of the CC TPDU after it + 8 of the failure
  b[5] = 0xd0; // Connection Confirm, credit 0
  // dst-ref, src-ref 0; class 0
  b[11] = 0x03; // TYPE_RDP_NEG_FAILURE
  b[12] = 0; // flags
  b.writeUInt16LE(8, 13);
  b.writeUInt32LE(RDP_FAILURE_CODE, 15);
  return b;
}

/** A Connection Request as a client sends it (tests and the benchmark). */
export function buildRdpConnectionRequest(opts: { line?: string; requestedProtocols?: number | null } = {}): Buffer {
  const line = opts.line === undefined ? Buffer.alloc(0) : Buffer.from(`${opts.line}\r\n`, 'latin1');
  const neg = Buffer.alloc(opts.requestedProtocols === null ? 0 : 8);
  if (neg.length) {
    neg[0] = TYPE_RDP_NEG_REQ;
    neg.writeUInt16LE(8, 2);
    neg.writeUInt32LE(opts.requestedProtocols ?? 0x3, 4);
  }
  const length = FIXED + line.length + neg.length;
  const head = Buffer.alloc(FIXED);
  head[0] = TPKT_VERSION;
  head.writeUInt16BE(length, 2);
  head[4] = length - 5;
  head[5] = X224_CONNECTION_REQUEST;
  return Buffer.concat([head, line, neg]);
}
