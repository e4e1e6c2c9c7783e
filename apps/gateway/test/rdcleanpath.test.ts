import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RDCLEANPATH_NOT_RDP_STATUS, RDCLEANPATH_REFUSAL_STATUS, RDCLEANPATH_WRONG_DESTINATION_STATUS, TUNNEL_CLOSE } from '@stagedoor/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from '../../../test/support/ports.ts';
import { decodeRdCleanPath, encodeRdCleanPath, rdCleanPathLength, RDCLEANPATH_VERSION, type RdCleanPathPdu } from '../src/browser/rdcleanpath-der.ts';
import { BROWSER_MODES } from '../src/browser/index.ts';
import { destinationIs } from '../src/browser/rdcleanpath.ts';
import { parseConnectionConfirm } from '../src/browser/x224-confirm.ts';
import { createLog } from '../src/log.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted } from '../src/routed/admission.ts';
import { buildRdpConnectionRequest } from '../src/routed/rdp-routing.ts';
import { TlsCertificate } from '../src/routed/tls-certificate.ts';
import { TunnelServer } from '../src/routed/tunnel.ts';
import { startXrdpOnLoopback, type XrdpPeer } from './xrdp-peer.ts';

/**
 * RDP in the browser, the gateway's half (ADR 0030): a Node client speaks RDCleanPath over the
 * tunnel WebSocket as IronRDP's web client does, against the gateway's TunnelServer and a real xrdp
 * on loopback. The admission is a table of token → target, as in tunnel.test.ts; what it was asked
 * and what was reported ended is recorded. The browser half (IronRDP in Chromium) is in
 * test/web/browser-rdp.test.ts.
 */
const TOKENS = { rdp: 'rdptokenaaaaaaaaaaaaaaaaaaaaaaaa', other: 'othertokenaaaaaaaaaaaaaaaaaaaaaa', wrongDest: 'wrongdestaaaaaaaaaaaaaaaaaaaaaaa', canary: 'canarytokenaaaaaaaaaaaaaaaaaaaaa' };

let dir: string;
let cert: TlsCertificate;
let server: TunnelServer;
let url: string;
let xrdp: XrdpPeer;
let canary: net.Server;
let canaryConnections = 0;
const targets = new Map<string, { host: string; port: number }>();
const asked: string[] = [];
const ended: { token: string; reason: string; bytesUp: number; bytesDown: number }[] = [];

const admit: Admit = async (listener, token) => {
  asked.push(token);
  const target = listener === 'tunnel' ? targets.get(token) : undefined;
  if (!target) return { ok: false, reason: 'no-grant', message: REFUSAL_MESSAGES['no-grant'] };
  targets.delete(token); // single use, as the broker's claim makes it
  let done = false;
  const admitted: Admitted = {
    ok: true,
    grantId: `grant-${token.slice(0, 6)}`,
    target,
    onClose: () => {},
    countBytes: () => {},
    ended: (o) => {
      if (!done) ended.push({ token, ...o });
      done = true;
    },
  };
  return admitted;
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-rdcleanpath-'));
  const log = createLog('silent');
  cert = await TlsCertificate.load({ files: null, dataDir: path.join(dir, 'gateway'), log, hostnames: ['127.0.0.1'] });
  server = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, firstMessageTimeoutMs: 2000, connectTimeoutMs: 5000, modes: BROWSER_MODES });
  url = `wss://127.0.0.1:${await server.start()}/tunnel`;
  canary = await new Promise<net.Server>((resolve) => {
    const s = net.createServer((c) => (canaryConnections++, c.destroy()));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  xrdp = await startXrdpOnLoopback(dir);
});

afterAll(async () => {
  await xrdp?.proc.stop();
  await server?.close();
  cert?.close();
  canary?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Exchange {
  ws: WebSocket;
  /** The gateway's RDCleanPath answer (null if it closed without one). */
  response: RdCleanPathPdu | null;
  closed: Promise<{ code: number; reason: string }>;
}

/** Open the tunnel WebSocket, send `first` (an encoded request, or any bytes), read one RDCleanPath PDU or the close. */
async function exchange(first: Buffer | string): Promise<Exchange> {
  const ws = new WebSocket(url, { rejectUnauthorized: false });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let got = Buffer.alloc(0);
  const response = new Promise<RdCleanPathPdu | null>((resolve) => {
    const onMessage = (data: Buffer) => {
      got = Buffer.concat([got, data]);
      const length = rdCleanPathLength(got);
      if (length === null || got.length < length) return;
      ws.removeListener('message', onMessage);
      resolve(decodeRdCleanPath(got.subarray(0, length)));
    };
    ws.on('message', onMessage);
    void closed.then(() => resolve(null));
  });
  ws.send(first);
  return { ws, response: await response, closed };
}

function request(token: string, destination: string, x224 = buildRdpConnectionRequest({ line: 'Cookie: mstshash=artist', requestedProtocols: 0x3 })): Buffer {
  return encodeRdCleanPath({ version: RDCLEANPATH_VERSION, destination, proxyAuth: token, x224ConnectionPdu: x224 });
}

const xrdpLog = () => (fs.existsSync(xrdp.log) ? fs.readFileSync(xrdp.log, 'utf8') : '');
const xrdpConnections = () => xrdpLog().match(/connection accepted|connected client/gi)?.length ?? 0;

describe('RDCleanPath PDU codec', () => {
  it('round-trips a request and a response, and refuses what DER does not allow', () => {
    const req = { version: RDCLEANPATH_VERSION, destination: '10.0.0.5:3389', proxyAuth: TOKENS.rdp, x224ConnectionPdu: buildRdpConnectionRequest() };
    expect(decodeRdCleanPath(encodeRdCleanPath(req))).toEqual(req);
    const big = crypto.randomBytes(1500);
    const res = { version: RDCLEANPATH_VERSION, x224ConnectionPdu: Buffer.from([3, 0, 0, 19]), serverCertChain: [big, Buffer.from('ca')], serverAddr: '[::1]:3389' };
    expect(decodeRdCleanPath(encodeRdCleanPath(res))).toEqual(res);
    const err = { version: RDCLEANPATH_VERSION, error: { errorCode: 1, httpStatusCode: 409 } };
    expect(decodeRdCleanPath(encodeRdCleanPath(err))).toEqual(err);
    // `RDCleanPathPdu::new_http_error(403)` by the crate's definition, worked out by hand: every field
    // EXPLICIT-tagged, integers minimal.
    expect(encodeRdCleanPath({ version: 3390, error: { errorCode: 1, httpStatusCode: 403 } }).toString('hex')).toBe('3015a00402020d3ea10d300ba003020101a10402020193');
    expect(() => decodeRdCleanPath(Buffer.from('3080a0030201000000', 'hex'))).toThrow(/indefinite/);
    expect(() => decodeRdCleanPath(Buffer.concat([encodeRdCleanPath(err), Buffer.from([0])]))).toThrow(/trailing/);
  });

  it('a destination is the grant\'s only when its host and port are', () => {
    const t = { host: '10.0.0.5', port: 3389 };
    expect(destinationIs('10.0.0.5:3389', t)).toBe(true);
    expect(destinationIs('10.0.0.5', t)).toBe(true);
    expect(destinationIs('10.0.0.5:3390', t)).toBe(false);
    expect(destinationIs('10.0.0.6:3389', t)).toBe(false);
    expect(destinationIs('10.0.0.5:3389x', t)).toBe(false);
    expect(destinationIs('[::ffff:10.0.0.5]:3389', t)).toBe(true);
    expect(destinationIs('WS-1.corp:3389', { host: 'ws-1.corp', port: 3389 })).toBe(true);
  });
});

describe('RDCleanPath on the tunnel WebSocket, against xrdp', () => {
  it('admits the grant, connects to its workstation, and answers with xrdp\'s X.224 confirm and certificate chain; then relays the RDP stream inside TLS', async () => {
    targets.set(TOKENS.rdp, { host: '127.0.0.1', port: xrdp.port });
    const x = await exchange(request(TOKENS.rdp, `127.0.0.1:${xrdp.port}`));
    expect(x.response?.error).toBeUndefined();
    const confirm = parseConnectionConfirm(x.response!.x224ConnectionPdu!);
    expect(confirm).toMatchObject({ kind: 'ok', failureCode: null, selectedProtocol: 1 /* PROTOCOL_SSL: xrdp does TLS, not CredSSP */ });
    expect(x.response!.serverCertChain).toHaveLength(1);
    const leaf = new crypto.X509Certificate(x.response!.serverCertChain![0]!);
    expect(leaf.fingerprint256).toBe(new crypto.X509Certificate(xrdp.certPem).fingerprint256);
    expect(x.response!.serverAddr).toBe(`127.0.0.1:${xrdp.port}`);
    expect(asked).toContain(TOKENS.rdp);
    await waitFor('xrdp to log the TLS security it selected', () => /selected \[SSL\]/.test(xrdpLog()), 15_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}\n${xrdpLog().slice(-2000)}`);
    });

    // What the client sends now is plaintext RDP that the gateway writes into the TLS connection:
    // xrdp reads it as the MCS Connect Initial and, this being none, logs a parse failure and closes.
    const before = xrdpLog().length;
    x.ws.send(Buffer.from('0300000802f08000', 'hex'));
    const closed = await x.closed;
    expect(closed.code).toBe(1000);
    await waitFor('the session to be reported ended', () => ended.some((e) => e.token === TOKENS.rdp), 15_000, 50);
    const e = ended.find((o) => o.token === TOKENS.rdp)!;
    expect(e.bytesUp).toBeGreaterThan(8);
    expect(e.bytesDown).toBeGreaterThan(0);
    // xrdp only reads what came out of the TLS connection: it parsed the bytes as an MCS PDU.
    expect(xrdpLog().slice(before)).toMatch(/MCS[^\n]*(fail|error)|T\.125[^\n]*(fail|error)/i);
  });

  it('refuses a destination other than the grant\'s: no connection to it, nor to the grant\'s workstation', async () => {
    targets.set(TOKENS.wrongDest, { host: '127.0.0.1', port: xrdp.port });
    const seen = xrdpConnections();
    const canaryPort = (canary.address() as net.AddressInfo).port;
    const x = await exchange(request(TOKENS.wrongDest, `127.0.0.1:${canaryPort}`));
    expect(x.response?.error).toEqual({ errorCode: 1, httpStatusCode: RDCLEANPATH_WRONG_DESTINATION_STATUS });
    expect((await x.closed).code).toBe(TUNNEL_CLOSE.refused);
    expect(canaryConnections).toBe(0);
    expect(xrdpConnections()).toBe(seen);
    expect(ended.find((o) => o.token === TOKENS.wrongDest)?.reason).toMatch(/destination .* is not the grant's/);
  });

  it('refuses a malformed request before asking the admission: garbage DER, a truncated X.224 request, a missing token', async () => {
    const before = asked.length;
    for (const bad of [
      Buffer.from('3003020101', 'hex'), // a SEQUENCE holding an untagged INTEGER
      encodeRdCleanPath({ version: RDCLEANPATH_VERSION, destination: 'x:3389', proxyAuth: TOKENS.other, x224ConnectionPdu: Buffer.from('0300', 'hex') }),
      encodeRdCleanPath({ version: 3389, destination: 'x:3389', proxyAuth: TOKENS.other, x224ConnectionPdu: buildRdpConnectionRequest() }),
    ]) {
      const x = await exchange(bad);
      expect(x.response?.error).toEqual({ errorCode: 1, httpStatusCode: 400 });
      expect(await x.closed).toEqual({ code: TUNNEL_CLOSE.badRequest, reason: REFUSAL_MESSAGES['bad-request'] });
    }
    const noToken = await exchange(encodeRdCleanPath({ version: RDCLEANPATH_VERSION, destination: 'x:3389', x224ConnectionPdu: buildRdpConnectionRequest() }));
    expect(noToken.response?.error).toEqual({ errorCode: 1, httpStatusCode: RDCLEANPATH_REFUSAL_STATUS['no-token'] });
    expect(asked.length).toBe(before);
  });

  it('an unknown grant is refused with its own status, and the close says why in words', async () => {
    const unknown = await exchange(request(TOKENS.other, `127.0.0.1:${xrdp.port}`));
    expect(unknown.response?.error).toEqual({ errorCode: 1, httpStatusCode: RDCLEANPATH_REFUSAL_STATUS['no-grant'] });
    expect(await unknown.closed).toEqual({ code: TUNNEL_CLOSE.refused, reason: REFUSAL_MESSAGES['no-grant'] });
  });

  it('an unreachable workstation is a socket error the client can name', async () => {
    const port = (canary.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => canary.close(() => resolve()));
    targets.set(TOKENS.canary, { host: '127.0.0.1', port });
    const x = await exchange(request(TOKENS.canary, `127.0.0.1:${port}`));
    expect(x.response?.error).toEqual({ errorCode: 1, wsaLastError: 10061 });
    expect((await x.closed).code).toBe(TUNNEL_CLOSE.targetUnreachable);
  });

  it('a workstation that offers no TLS (xrdp with security_layer=rdp selects Standard RDP Security) is a 502: the browser cannot reach it', async () => {
    const rdpOnly = await startXrdpOnLoopback(fs.mkdtempSync(path.join(dir, 'rdp-only-')), { security_layer: 'rdp' });
    try {
      targets.set(TOKENS.other, { host: '127.0.0.1', port: rdpOnly.port });
      const x = await exchange(request(TOKENS.other, `127.0.0.1:${rdpOnly.port}`));
      expect(x.response?.error).toEqual({ errorCode: 1, httpStatusCode: RDCLEANPATH_NOT_RDP_STATUS });
      expect((await x.closed).code).toBe(TUNNEL_CLOSE.targetUnreachable);
      await waitFor('the session to be reported ended', () => ended.some((e) => e.token === TOKENS.other), 15_000, 50);
      expect(ended.find((e) => e.token === TOKENS.other)!.reason).toMatch(/Standard RDP Security/);
    } finally {
      await rdpOnly.proc.stop();
    }
  });

  it('the token frame of the plain tunnel still works beside it; a JSON first message cannot ask for rdcleanpath', async () => {
    const x = await exchange(JSON.stringify({ token: TOKENS.other }));
    expect(x.response).toBeNull();
    expect(await x.closed).toEqual({ code: TUNNEL_CLOSE.refused, reason: REFUSAL_MESSAGES['no-grant'] });
    const before = asked.length;
    const y = await exchange(JSON.stringify({ token: TOKENS.other, mode: 'rdcleanpath' }));
    expect(await y.closed).toEqual({ code: TUNNEL_CLOSE.badRequest, reason: REFUSAL_MESSAGES['bad-request'] });
    expect(asked.length).toBe(before);
  });
});
