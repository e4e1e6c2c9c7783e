/**
 * The RDCleanPath PDU (IronRDP's `ironrdp-rdcleanpath` crate; Devolutions Gateway speaks the server
 * side) in ASN.1 DER. Pure: no I/O. The browser's IronRDP client sends one as the first WebSocket
 * message and reads one back before RDP proper starts.
 *
 *   RDCleanPathPdu ::= SEQUENCE {                      -- every field EXPLICIT-tagged
 *     version            [0] INTEGER,                  -- 3390
 *     error              [1] RDCleanPathErr OPTIONAL,   -- proxy → client
 *     destination        [2] UTF8String OPTIONAL,       -- client → proxy
 *     proxyAuth          [3] UTF8String OPTIONAL,       -- client → proxy (our grant token)
 *     serverAuth         [4] UTF8String OPTIONAL,
 *     preconnectionBlob  [5] UTF8String OPTIONAL,
 *     x224ConnectionPdu  [6] OCTET STRING OPTIONAL,     -- both ways
 *     serverCertChain    [7] SEQUENCE OF OCTET STRING OPTIONAL,
 *     serverAddr         [9] UTF8String OPTIONAL }
 *   RDCleanPathErr ::= SEQUENCE {
 *     errorCode [0] INTEGER, httpStatusCode [1] INTEGER OPTIONAL,
 *     wsaLastError [2] INTEGER OPTIONAL, tlsAlertCode [3] INTEGER OPTIONAL }
 */

export const RDCLEANPATH_VERSION = 3390;
export const RDCLEANPATH_GENERAL_ERROR = 1;
export const RDCLEANPATH_NEGOTIATION_ERROR = 2;

export interface RdCleanPathError {
  errorCode: number;
  httpStatusCode?: number;
  wsaLastError?: number;
  tlsAlertCode?: number;
}

export interface RdCleanPathPdu {
  version: number;
  error?: RdCleanPathError;
  destination?: string;
  proxyAuth?: string;
  serverAuth?: string;
  preconnectionBlob?: string;
  x224ConnectionPdu?: Buffer;
  serverCertChain?: Buffer[];
  serverAddr?: string;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const UTF8_STRING = 0x0c;
const context = (n: number) => 0xa0 | n;

export class DerError extends Error {}

// ---- encoding ----

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

function integer(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new DerError(`not a non-negative integer: ${value}`);
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0); // minimal, and positive
  return tlv(INTEGER, Buffer.from(bytes));
}

const utf8 = (s: string) => tlv(UTF8_STRING, Buffer.from(s, 'utf8'));
const explicit = (n: number, inner: Buffer) => tlv(context(n), inner);

export function encodeRdCleanPath(pdu: RdCleanPathPdu): Buffer {
  const fields: Buffer[] = [explicit(0, integer(pdu.version))];
  if (pdu.error) {
    const e = pdu.error;
    const inner = [explicit(0, integer(e.errorCode))];
    if (e.httpStatusCode !== undefined) inner.push(explicit(1, integer(e.httpStatusCode)));
    if (e.wsaLastError !== undefined) inner.push(explicit(2, integer(e.wsaLastError)));
    if (e.tlsAlertCode !== undefined) inner.push(explicit(3, integer(e.tlsAlertCode)));
    fields.push(explicit(1, tlv(SEQUENCE, Buffer.concat(inner))));
  }
  if (pdu.destination !== undefined) fields.push(explicit(2, utf8(pdu.destination)));
  if (pdu.proxyAuth !== undefined) fields.push(explicit(3, utf8(pdu.proxyAuth)));
  if (pdu.serverAuth !== undefined) fields.push(explicit(4, utf8(pdu.serverAuth)));
  if (pdu.preconnectionBlob !== undefined) fields.push(explicit(5, utf8(pdu.preconnectionBlob)));
  if (pdu.x224ConnectionPdu !== undefined) fields.push(explicit(6, tlv(OCTET_STRING, pdu.x224ConnectionPdu)));
  if (pdu.serverCertChain !== undefined) fields.push(explicit(7, tlv(SEQUENCE, Buffer.concat(pdu.serverCertChain.map((c) => tlv(OCTET_STRING, c))))));
  if (pdu.serverAddr !== undefined) fields.push(explicit(9, utf8(pdu.serverAddr)));
  return tlv(SEQUENCE, Buffer.concat(fields));
}

// ---- decoding ----

interface Tlv {
  tag: number;
  body: Buffer;
  /** Bytes the whole element took. */
  size: number;
}

/** The element at the start of `buf`; null when more bytes are needed. */
function readTlv(buf: Buffer): Tlv | null {
  if (buf.length < 2) return null;
  const tag = buf[0]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used by RDCleanPath');
  const first = buf[1]!;
  let length: number;
  let header: number;
  if (first < 0x80) {
    length = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 3) throw new DerError('length too large');
    if (buf.length < 2 + n) return null;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[2 + i]!;
    if (buf[2]! === 0 || length < 0x80) throw new DerError('length is not in its shortest form');
    header = 2 + n;
  }
  if (buf.length < header + length) return null;
  return { tag, body: buf.subarray(header, header + length), size: header + length };
}

/** A TLV that must be complete within `buf` (a nested element). */
function readInner(buf: Buffer, what: string): Tlv {
  const t = readTlv(buf);
  if (!t) throw new DerError(`${what}: truncated`);
  return t;
}

/** The elements of a constructed body, in order, each complete. */
function children(body: Buffer, what: string): Tlv[] {
  const out: Tlv[] = [];
  for (let rest = body; rest.length > 0; ) {
    const t = readInner(rest, what);
    out.push(t);
    rest = rest.subarray(t.size);
  }
  return out;
}

function readInteger(t: Tlv, what: string): number {
  if (t.tag !== INTEGER) throw new DerError(`${what}: not an INTEGER`);
  const b = t.body;
  if (b.length === 0 || b.length > 7) throw new DerError(`${what}: integer length`);
  if (b[0]! & 0x80) throw new DerError(`${what}: negative integer`);
  if (b.length > 1 && b[0] === 0 && !(b[1]! & 0x80)) throw new DerError(`${what}: integer not in its shortest form`);
  let v = 0;
  for (const byte of b) v = v * 256 + byte;
  return v;
}

function readUtf8(t: Tlv, what: string): string {
  if (t.tag !== UTF8_STRING) throw new DerError(`${what}: not a UTF8String`);
  const s = new TextDecoder('utf-8', { fatal: true });
  try {
    return s.decode(t.body);
  } catch {
    throw new DerError(`${what}: not valid UTF-8`);
  }
}

function readOctets(t: Tlv, what: string): Buffer {
  if (t.tag !== OCTET_STRING) throw new DerError(`${what}: not an OCTET STRING`);
  return Buffer.from(t.body);
}

/** The explicit-tagged fields of a SEQUENCE body, by tag number, in increasing order (DER). */
function taggedFields(body: Buffer, what: string, allowed: number): Map<number, Tlv> {
  const out = new Map<number, Tlv>();
  let last = -1;
  for (const t of children(body, what)) {
    if ((t.tag & 0xe0) !== 0xa0) throw new DerError(`${what}: a field without a context tag`);
    const n = t.tag & 0x1f;
    if (n <= last) throw new DerError(`${what}: fields out of order or repeated`);
    if (!((allowed >> n) & 1)) throw new DerError(`${what}: unknown field [${n}]`);
    last = n;
    const inner = children(t.body, `${what} [${n}]`);
    if (inner.length !== 1) throw new DerError(`${what} [${n}]: an explicit tag holds one element`);
    out.set(n, inner[0]!);
  }
  return out;
}

/**
 * How many bytes the PDU at the start of `buf` takes: null while its header is incomplete (the
 * caller reads on). Throws when the bytes cannot be an RDCleanPath PDU at all.
 */
export function rdCleanPathLength(buf: Buffer): number | null {
  if (buf.length >= 1 && buf[0] !== SEQUENCE) throw new DerError('not an RDCleanPath PDU (no SEQUENCE)');
  try {
    const t = readTlv(buf);
    return t ? t.size : null;
  } catch (err) {
    if (err instanceof DerError) throw err;
    throw new DerError('bad header');
  }
}

/** Decode one whole PDU (exactly `buf`). */
export function decodeRdCleanPath(buf: Buffer): RdCleanPathPdu {
  const outer = readInner(buf, 'RDCleanPathPdu');
  if (outer.tag !== SEQUENCE) throw new DerError('RDCleanPathPdu: not a SEQUENCE');
  if (outer.size !== buf.length) throw new DerError('RDCleanPathPdu: trailing bytes');
  const f = taggedFields(outer.body, 'RDCleanPathPdu', 0b10_1111_1111);
  const versionField = f.get(0);
  if (!versionField) throw new DerError('RDCleanPathPdu: no version');
  const pdu: RdCleanPathPdu = { version: readInteger(versionField, 'version') };
  const err = f.get(1);
  if (err) {
    if (err.tag !== SEQUENCE) throw new DerError('error: not a SEQUENCE');
    const e = taggedFields(err.body, 'error', 0b1111);
    const code = e.get(0);
    if (!code) throw new DerError('error: no error code');
    pdu.error = { errorCode: readInteger(code, 'errorCode') };
    if (e.has(1)) pdu.error.httpStatusCode = readInteger(e.get(1)!, 'httpStatusCode');
    if (e.has(2)) pdu.error.wsaLastError = readInteger(e.get(2)!, 'wsaLastError');
    if (e.has(3)) pdu.error.tlsAlertCode = readInteger(e.get(3)!, 'tlsAlertCode');
  }
  if (f.has(2)) pdu.destination = readUtf8(f.get(2)!, 'destination');
  if (f.has(3)) pdu.proxyAuth = readUtf8(f.get(3)!, 'proxyAuth');
  if (f.has(4)) pdu.serverAuth = readUtf8(f.get(4)!, 'serverAuth');
  if (f.has(5)) pdu.preconnectionBlob = readUtf8(f.get(5)!, 'preconnectionBlob');
  if (f.has(6)) pdu.x224ConnectionPdu = readOctets(f.get(6)!, 'x224ConnectionPdu');
  if (f.has(7)) {
    const chain = f.get(7)!;
    if (chain.tag !== SEQUENCE) throw new DerError('serverCertChain: not a SEQUENCE');
    pdu.serverCertChain = children(chain.body, 'serverCertChain').map((c) => readOctets(c, 'certificate'));
  }
  if (f.has(9)) pdu.serverAddr = readUtf8(f.get(9)!, 'serverAddr');
  return pdu;
}
