import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildRdpConnectionRequest, parseRdpConnectionRequest, rdpNegotiationFailure, RDP_FAILURE_CODE } from '../../src/routed/rdp-routing.ts';
import { parseClientHelloSni, sniToken, tlsUnrecognizedName } from '../../src/routed/tls-sni.ts';

const TOKEN = 'abcdefghijklmnopqrstuvwxyz234567';

describe('RDP Connection Request routing token', () => {
  const neg = buildRdpConnectionRequest(); // no line: just the Negotiation Request
  const cases: { name: string; input: Buffer; token: string | null; forward: Buffer; negotiates: boolean }[] = [
    { name: 'a loadbalanceinfo token (FreeRDP /load-balance-info:, mstsc loadbalanceinfo:s:)', input: buildRdpConnectionRequest({ line: TOKEN }), token: TOKEN, forward: neg, negotiates: true },
    { name: 'the Session Directory form Cookie: msts=<token>', input: buildRdpConnectionRequest({ line: `Cookie: msts=${TOKEN}` }), token: TOKEN, forward: neg, negotiates: true },
    { name: 'a user-name cookie is no token and stays', input: buildRdpConnectionRequest({ line: 'Cookie: mstshash=artist' }), token: null, forward: buildRdpConnectionRequest({ line: 'Cookie: mstshash=artist' }), negotiates: true },
    { name: 'nothing but the Negotiation Request', input: neg, token: null, forward: neg, negotiates: true },
    { name: 'an old client: no Negotiation Request', input: buildRdpConnectionRequest({ line: TOKEN, requestedProtocols: null }), token: TOKEN, forward: buildRdpConnectionRequest({ requestedProtocols: null }), negotiates: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = parseRdpConnectionRequest(c.input);
      expect(p).toEqual({ kind: 'ok', token: c.token, forward: c.forward, negotiates: c.negotiates });
    });
  }

  it('fixes the TPKT length and the X.224 length indicator, and keeps bytes after the request', () => {
    const extra = Buffer.from('more');
    const p = parseRdpConnectionRequest(Buffer.concat([buildRdpConnectionRequest({ line: TOKEN }), extra]));
    if (p.kind !== 'ok') throw new Error(p.kind);
    expect(p.forward.readUInt16BE(2)).toBe(neg.length);
    expect(p.forward[4]).toBe(neg.length - 5);
    expect(p.forward.subarray(neg.length)).toEqual(extra);
  });

  it('incomplete until the whole request is in, at every cut', () => {
    const full = buildRdpConnectionRequest({ line: TOKEN });
    for (let n = 0; n < full.length; n++) expect(parseRdpConnectionRequest(full.subarray(0, n)).kind, `cut at ${n}`).toBe('incomplete');
  });

  const invalid: [string, Buffer, RegExp][] = [
    ['a TLS ClientHello', Buffer.from([0x16, 3, 1, 0, 5]), /TPKT/],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\n'), /TPKT/],
    ['lengths that disagree', (() => { const b = buildRdpConnectionRequest({ line: TOKEN }); b[4] = 3; return b; })(), /length indicator/],
    ['an X.224 Data TPDU', (() => { const b = buildRdpConnectionRequest(); b[5] = 0xf0; return b; })(), /Connection Request/],
    ['a request past the size bound', (() => { const b = Buffer.alloc(4); b[0] = 3; b.writeUInt16BE(60_000, 2); return b; })(), /too large/],
  ];
  for (const [name, input, reason] of invalid) {
    it(`invalid: ${name}`, () => {
      const p = parseRdpConnectionRequest(input, 16 * 1024);
      expect(p.kind).toBe('invalid');
      expect((p as { reason: string }).reason).toMatch(reason);
    });
  }

  it('the refusal is a Connection Confirm with a Negotiation Failure (INCONSISTENT_FLAGS)', () => {
    const f = rdpNegotiationFailure();
    expect(f.readUInt16BE(2)).toBe(f.length);
    expect(f[4]).toBe(f.length - 5);
    expect(f[5]).toBe(0xd0);
    expect(f[11]).toBe(0x03);
    expect(f.readUInt32LE(15)).toBe(RDP_FAILURE_CODE);
  });
});

/** A real ClientHello: what Node's TLS client sends first, captured by a plain TCP server. */
async function realClientHello(servername?: string, ALPNProtocols?: string[]): Promise<Buffer> {
  let resolve!: (b: Buffer) => void;
  const got = new Promise<Buffer>((r) => (resolve = r));
  const server = net.createServer((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
        resolve(all);
        s.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, rejectUnauthorized: false, ...(ALPNProtocols ? { ALPNProtocols } : {}) });
  c.on('error', () => undefined);
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

/** The same handshake message cut into records of at most `size` bytes (TLS allows it; some clients do it). */
function reRecord(hello: Buffer, size: number): Buffer {
  const body = hello.subarray(5);
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    const h = Buffer.from([22, 3, 1, 0, 0]);
    h.writeUInt16BE(part.length, 3);
    out.push(h, part);
  }
  return Buffer.concat(out);
}

describe('TLS ClientHello server name', () => {
  it('reads the SNI of a real ClientHello, whole, split into records, and at every cut', async () => {
    const hello = await realClientHello(`${TOKEN}.gw.test`);
    expect(parseClientHelloSni(hello)).toEqual({ kind: 'ok', serverName: `${TOKEN}.gw.test`, alpn: [] });
    for (const size of [1, 7, 100]) expect(parseClientHelloSni(reRecord(hello, size)), `records of ${size}`).toEqual({ kind: 'ok', serverName: `${TOKEN}.gw.test`, alpn: [] });
    for (let n = 0; n < hello.length; n++) expect(parseClientHelloSni(hello.subarray(0, n)).kind, `cut at ${n}`).toBe('incomplete');
  });

  it('no SNI: a null name', async () => {
    expect(parseClientHelloSni(await realClientHello())).toEqual({ kind: 'ok', serverName: null, alpn: [] });
  });

  it('reads the ALPN protocols offered, in order (the tunnel picks its native mode by them)', async () => {
    expect(parseClientHelloSni(await realClientHello('gw.test', ['stagedoor-tcp/1', 'http/1.1']))).toEqual({ kind: 'ok', serverName: 'gw.test', alpn: ['stagedoor-tcp/1', 'http/1.1'] });
  });

  it('invalid: not TLS, not a ClientHello, too large, a truncated body', async () => {
    expect(parseClientHelloSni(buildRdpConnectionRequest()).kind).toBe('invalid');
    expect(parseClientHelloSni(Buffer.from('GET / HTTP/1.1\r\n\r\n')).kind).toBe('invalid');
    expect(parseClientHelloSni(Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]))).toMatchObject({ kind: 'invalid', reason: /not a ClientHello/ });
    const hello = await realClientHello(`${TOKEN}.gw.test`);
    expect(parseClientHelloSni(hello, 100)).toMatchObject({ kind: 'invalid', reason: /too large/ });
    const lying = Buffer.from(hello);
    lying.writeUInt16BE(lying.readUInt16BE(3) - 40, 3); // the record ends before the hello does, and another record does not follow
    lying.writeUIntBE(lying.readUInt16BE(3) - 4, 6, 3);
    expect(parseClientHelloSni(lying)).toMatchObject({ kind: 'invalid' });
  });

  it('the token is the first label, lowercased', () => {
    expect(sniToken(`${TOKEN.toUpperCase()}.GW.Example.com`)).toBe(TOKEN);
    expect(sniToken(null)).toBeNull();
    expect(sniToken('.gw.test')).toBeNull();
  });

  it('the refusal is a fatal unrecognized_name alert', () => {
    expect([...tlsUnrecognizedName()]).toEqual([21, 3, 3, 0, 2, 2, 112]);
  });
});
