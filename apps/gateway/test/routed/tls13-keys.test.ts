import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { generateSelfSigned } from '../../src/routed/tls-certificate.ts';
import { applicationRecords, hkdfExpandLabel, NATIVE_SUITES, nativeTlsParams, openRecord, readKeylogLine, sealRecord, trafficKeys, type TrafficSecrets } from '../../src/routed/tls13-keys.ts';

const AES128 = NATIVE_SUITES.TLS_AES_128_GCM_SHA256!;

describe('TLS 1.3 traffic keys (tls13-keys.ts)', () => {
  it('derives the key and IV of RFC 8448 section 3 (server application traffic secret)', () => {
    const secret = Buffer.from('a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643', 'hex');
    expect(hkdfExpandLabel('sha256', secret, 'key', 16).toString('hex')).toBe('9f02283b6c9c07efc26bb9f2ac92e356');
    expect(hkdfExpandLabel('sha256', secret, 'iv', 12).toString('hex')).toBe('cf782b88dd83549aadf1e984');
  });

  it('reads the application secrets from key log lines and ignores the others', () => {
    const s: TrafficSecrets = { client: null, server: null };
    for (const line of ['SERVER_HANDSHAKE_TRAFFIC_SECRET aa 0102', 'CLIENT_TRAFFIC_SECRET_0 aa 0a0b\n', 'SERVER_TRAFFIC_SECRET_0 aa 0c0d', 'CLIENT_TRAFFIC_SECRET_0 aa not-hex', '']) readKeylogLine(line, s);
    expect(s).toEqual({ client: Buffer.from('0a0b', 'hex'), server: Buffer.from('0c0d', 'hex') });
  });

  it('seals and opens a record; another number or a flipped bit does not open', () => {
    const keys = trafficKeys(AES128, Buffer.alloc(32, 7));
    const r = sealRecord(AES128, keys, 5, Buffer.from('hello'));
    expect(r.subarray(0, 3)).toEqual(Buffer.from([23, 3, 3]));
    expect(openRecord(AES128, keys, 5, r)).toEqual(Buffer.from('hello\x17'));
    expect(openRecord(AES128, keys, 4, r)).toBeNull();
    const bent = Buffer.from(r);
    bent[7]! ^= 1;
    expect(openRecord(AES128, keys, 5, bent)).toBeNull();
  });

  it('the parameters for the native relay: key length, then each side key, IV and next number (little-endian)', () => {
    const c = { key: Buffer.alloc(16, 1), iv: Buffer.alloc(12, 2) };
    const s = { key: Buffer.alloc(16, 3), iv: Buffer.alloc(12, 4) };
    const p = nativeTlsParams(AES128, c, 1, s, 258);
    expect(p.length).toBe(105);
    expect(p[0]).toBe(16);
    expect(p.subarray(1, 17)).toEqual(c.key);
    expect(p.subarray(33, 45)).toEqual(c.iv);
    expect(p.readBigUInt64LE(45)).toBe(1n);
    expect(p.subarray(53, 69)).toEqual(s.key);
    expect(p.readBigUInt64LE(97)).toBe(258n);
  });

  it.each([
    ['no record at all', [], 0],
    ['only the handshake', ['h', 'h', 'h'], 0],
    ['the handshake, then three of the application', ['h', 'h', 0, 1, 2], 3],
    ['the application from the start', [0, 1], 2],
    ['a handshake record after the first of the application', ['h', 0, 'h', 1], null],
    ['a gap in the numbers', ['h', 0, 2], null],
    ['two records of number 1', ['h', 0, 1, 1], null],
  ] as const)('counts the records the application keys opened: %s', (_name, shape, expected) => {
    const app = trafficKeys(AES128, Buffer.alloc(32, 1));
    const handshake = trafficKeys(AES128, Buffer.alloc(32, 2));
    const records = shape.map((r, i) => (r === 'h' ? sealRecord(AES128, handshake, i, Buffer.from('handshake')) : sealRecord(AES128, app, r, Buffer.from(`record ${r}`))));
    expect(applicationRecords(AES128, app, records)).toBe(expected);
  });

  it("counts a real handshake's records: the server's tickets and the client's line are what the application keys opened", async () => {
    const pair = await generateSelfSigned(['127.0.0.1']);
    const fromClient: Buffer[] = [];
    const toClient: Buffer[] = [];
    const secrets: TrafficSecrets = { client: null, server: null };
    const records = (into: Buffer[]) => {
      let pending = Buffer.alloc(0);
      return (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
          const len = 5 + pending.readUInt16BE(3);
          if (pending[0] === 23) into.push(pending.subarray(0, len));
          pending = pending.subarray(len);
        }
      };
    };
    const server = net.createServer((raw) => {
      // A plain TCP relay in front of Node's TLS server sees the records as the tunnel's tap does.
      const up = net.connect((tlsServer.address() as net.AddressInfo).port, '127.0.0.1');
      raw.on('data', records(fromClient));
      up.on('data', records(toClient));
      raw.pipe(up).pipe(raw);
    });
    const tlsServer = tls.createServer({ ...pair, minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256' }, (s) => s.once('data', () => s.write('answer')));
    tlsServer.on('keylog', (line) => readKeylogLine(line, secrets));
    await Promise.all([server, tlsServer].map((x) => new Promise<void>((r) => x.listen(0, '127.0.0.1', r))));
    try {
      const c = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
      await new Promise((r) => c.once('secureConnect', r));
      c.write('token line');
      await new Promise((r) => c.once('data', r));
      c.destroy();
      const client = trafficKeys(AES128, secrets.client!);
      const serverKeys = trafficKeys(AES128, secrets.server!);
      expect(applicationRecords(AES128, client, fromClient)).toBe(1);
      // Node's server sends two session tickets, then the answer.
      const n = applicationRecords(AES128, serverKeys, toClient)!;
      expect(n).toBeGreaterThanOrEqual(2);
      expect(openRecord(AES128, serverKeys, n - 1, toClient.at(-1)!)?.subarray(0, 6).toString()).toBe('answer');
      // A record of the handshake's between the application's: the count cannot be trusted.
      expect(applicationRecords(AES128, serverKeys, [...toClient, toClient[0]!])).toBeNull();
    } finally {
      server.close();
      tlsServer.close();
    }
  });
});
