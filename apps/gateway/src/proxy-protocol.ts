import type net from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * PROXY protocol version 2 (the binary header network load balancers such as AWS NLB prepend), for
 * listeners behind one: the client address is the header's source, not the TCP peer (the balancer).
 * https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt, section 2.2.
 */

export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Header plus TLVs we accept: AWS adds a VPC-endpoint TLV; nothing legitimate comes near this. */
export const PROXY_V2_MAX = 16 + 4096;

export type ProxyParse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  /** `source` is null for a LOCAL command or an unspecified family: use the TCP peer. */
  | { kind: 'ok'; length: number; source: { address: string; port: number } | null };

export function parseProxyV2(buf: Buffer): ProxyParse {
  const sig = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  if (!buf.subarray(0, sig).equals(PROXY_V2_SIGNATURE.subarray(0, sig))) return { kind: 'invalid', reason: 'no PROXY v2 signature' };
  if (buf.length < 16) return { kind: 'incomplete' };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: `PROXY protocol version ${verCmd >> 4}` };
  const command = verCmd & 0x0f;
  if (command > 1) return { kind: 'invalid', reason: `unknown PROXY command ${command}` };
  const famProto = buf[13]!;
  const length = 16 + buf.readUInt16BE(14);
  if (length > PROXY_V2_MAX) return { kind: 'invalid', reason: 'PROXY header too long' };
  if (buf.length < length) return { kind: 'incomplete' };
  if (command === 0) return { kind: 'ok', length, source: null }; // LOCAL: the balancer's own health check
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (transport !== 1 && family !== 0) return { kind: 'invalid', reason: 'PROXY transport is not STREAM' };
  if (family === 1) {
    if (length < 16 + 12) return { kind: 'invalid', reason: 'PROXY IPv4 block too short' };
    return { kind: 'ok', length, source: { address: [...buf.subarray(16, 20)].join('.'), port: buf.readUInt16BE(24) } };
  }
  if (family === 2) {
    if (length < 16 + 36) return { kind: 'invalid', reason: 'PROXY IPv6 block too short' };
    // RFC 5952 form (ipaddr.js), so that it compares equal to the form Node reports peers in.
    const address = ipaddr.fromByteArray([...buf.subarray(16, 32)]).toString();
    return { kind: 'ok', length, source: { address, port: buf.readUInt16BE(48) } };
  }
  return { kind: 'ok', length, source: null };
}

/** Build a PROXY v2 header (tests and the benchmark speak it like a load balancer). */
export function buildProxyV2(source: { address: string; port: number }, destination: { address: string; port: number }): Buffer {
  const from = ipaddr.parse(source.address);
  const to = ipaddr.parse(destination.address);
  const v4 = from.kind() === 'ipv4';
  const bytes = (ip: ipaddr.IPv4 | ipaddr.IPv6): number[] => {
    if (ip instanceof ipaddr.IPv4) return (v4 ? ip : ip.toIPv4MappedAddress()).toByteArray();
    return (v4 ? ip.toIPv4Address() : ip).toByteArray();
  };
  const block = Buffer.alloc(v4 ? 12 : 36);
  const addressBytes = v4 ? 4 : 16;
  Buffer.from(bytes(from)).copy(block, 0);
  Buffer.from(bytes(to)).copy(block, addressBytes);
  block.writeUInt16BE(source.port, 2 * addressBytes);
  block.writeUInt16BE(destination.port, 2 * addressBytes + 2);
  const head = Buffer.alloc(16);
  PROXY_V2_SIGNATURE.copy(head);
  head[12] = 0x21; // version 2, PROXY
  head[13] = v4 ? 0x11 : 0x21; // INET/INET6 over STREAM
  head.writeUInt16BE(block.length, 14);
  return Buffer.concat([head, block]);
}

export type ProxyRead = { kind: 'ok'; source: { address: string; port: number } | null; rest: Buffer } | { kind: 'invalid'; reason: string };

/**
 * Read a PROXY v2 header off a fresh socket, before anything else reads it (the routed listeners
 * that hand the socket to a library afterwards: the SSH jump host). Bounded by `PROXY_V2_MAX` and
 * `timeoutMs`. On `ok` the socket is paused with no listener of ours left on it, and `rest` holds
 * the bytes that came after the header (the caller puts them back with `socket.unshift(rest)`).
 */
export function readProxyV2(socket: net.Socket, timeoutMs: number): Promise<ProxyRead> {
  return new Promise((resolve) => {
    let got: Buffer = Buffer.alloc(0);
    const done = (r: ProxyRead) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.pause();
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      got = got.length ? Buffer.concat([got, chunk]) : chunk;
      const p = parseProxyV2(got);
      if (p.kind === 'invalid') done({ kind: 'invalid', reason: p.reason });
      else if (p.kind === 'ok') done({ kind: 'ok', source: p.source, rest: got.subarray(p.length) });
    };
    const onClose = () => done({ kind: 'invalid', reason: 'closed before the PROXY header' });
    const timer = setTimeout(() => done({ kind: 'invalid', reason: 'timeout' }), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}
