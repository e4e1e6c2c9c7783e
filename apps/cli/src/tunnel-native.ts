import net from 'node:net';
import tls from 'node:tls';
import { TUNNEL_NATIVE_ALPN, TUNNEL_NATIVE_MAX_LINE } from '@stagedoor/contract';

/**
 * The client side of the tunnel's native mode (ADR 0032; wire in packages/contract/src/tunnel.ts): TLS
 * 1.3 offering ALPN `stagedoor-tcp/1`, the token line, the gateway's answer line, then the TCP stream
 * itself — no HTTP, no WebSocket framing, so the gateway can hand the connection to its native relay.
 * `open` resolves with the connected TLS socket (the answer's extra bytes, if any, in `head`), with
 * `refused` (the gateway's code and words), or with `unsupported` when the gateway or a proxy on the
 * way did not take the mode: the caller then uses the WebSocket.
 */
export type NativeOpen =
  | { kind: 'open'; socket: tls.TLSSocket; head: Buffer }
  | { kind: 'refused'; code: number; message: string }
  | { kind: 'unsupported'; why: string }
  | { kind: 'error'; message: string };

export interface NativeOpenOptions {
  host: string;
  port: number;
  token: string;
  /** `AA:BB:…`: accept exactly this certificate; null: verify against the CAs. */
  pin: string | null;
  ca?: string | string[];
  proxy?: string | null;
  timeoutMs: number;
}

export async function openNative(opts: NativeOpenOptions): Promise<NativeOpen> {
  let raw: net.Socket | undefined;
  if (opts.proxy) {
    const r = await connectThroughProxy(opts.proxy, opts.host, opts.port, opts.timeoutMs);
    if (typeof r === 'string') return { kind: 'error', message: r };
    raw = r;
  }
  return new Promise((resolve) => {
    let settled = false;
    const socket = tls.connect({
      host: opts.host,
      port: opts.port,
      ...(raw ? { socket: raw } : {}),
      servername: net.isIP(opts.host) ? undefined : opts.host,
      ALPNProtocols: [TUNNEL_NATIVE_ALPN],
      minVersion: 'TLSv1.3',
      rejectUnauthorized: opts.pin === null,
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    socket.setNoDelay(true); // a keystroke, or the answer after the tickets, should not wait for Nagle
    const done = (r: NativeOpen) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      if (r.kind !== 'open') socket.destroy();
      else socket.pause();
      resolve(r);
    };
    const timer = setTimeout(() => done({ kind: 'error', message: `no answer from the gateway in ${opts.timeoutMs / 1000} s` }), opts.timeoutMs);
    let answered = false;
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== TUNNEL_NATIVE_ALPN) return done({ kind: 'unsupported', why: 'the gateway did not select the native mode' });
      if (opts.pin) {
        const seen = socket.getPeerCertificate()?.fingerprint256?.toUpperCase();
        if (seen !== opts.pin) return done({ kind: 'error', message: `the gateway's certificate (${seen ?? 'none'}) is not the pinned one (${opts.pin}): the grant token was not sent` });
      }
      socket.write(`${JSON.stringify({ token: opts.token })}\n`);
    });
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf(10);
      if (end < 0) {
        if (got.length >= TUNNEL_NATIVE_MAX_LINE) done({ kind: 'error', message: 'the gateway answered the token with something unexpected' });
        return;
      }
      answered = true;
      const answer = readAnswer(got.subarray(0, end).toString('utf8'));
      if (!answer) return done({ kind: 'error', message: 'the gateway answered the token with something unexpected' });
      if (!answer.ok) return done({ kind: 'refused', code: answer.code, message: answer.message });
      done({ kind: 'open', socket, head: got.subarray(end + 1) });
    };
    socket.on('data', onData);
    socket.on('error', (err: Error) => {
      // Before the handshake finished, a gateway without the mode (or a proxy that inspects TLS) is
      // the likely cause: the WebSocket may still get through. After the token, it is an error.
      if (!socket.alpnProtocol) done({ kind: 'unsupported', why: err.message });
      else done({ kind: 'error', message: `the gateway closed the tunnel: ${err.message}` });
    });
    socket.once('close', () => {
      if (!answered) done(socket.alpnProtocol ? { kind: 'error', message: 'the gateway closed the tunnel before it answered' } : { kind: 'unsupported', why: 'closed during the handshake' });
    });
  });
}

function readAnswer(line: string): { ok: true } | { ok: false; code: number; message: string } | null {
  try {
    const a = JSON.parse(line) as { ok?: unknown; code?: unknown; message?: unknown };
    if (a.ok === true) return { ok: true };
    if (a.ok === false) return { ok: false, code: typeof a.code === 'number' ? a.code : 0, message: typeof a.message === 'string' ? a.message : 'the gateway refused the grant' };
    return null;
  } catch {
    return null;
  }
}

/** An HTTP CONNECT tunnel to host:port through `proxy` (http://[user:pass@]host:port), or why not. */
export function connectThroughProxy(proxy: string, host: string, port: number, timeoutMs: number): Promise<net.Socket | string> {
  const u = new URL(proxy);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80), noDelay: true });
    const timer = setTimeout(() => finish(`the proxy ${u.host} did not answer in ${timeoutMs / 1000} s`), timeoutMs);
    let got = Buffer.alloc(0);
    const finish = (r: net.Socket | string) => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      if (typeof r === 'string') socket.destroy();
      resolve(r);
    };
    const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    const auth = u.username ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}\r\n` : '';
    socket.once('connect', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`));
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return got.length > 16 * 1024 ? finish('the proxy sent an endless answer') : undefined;
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(got.toString('latin1'))?.[1];
      if (status !== '200') return finish(`the proxy ${u.host} refused the tunnel (HTTP ${status ?? '?'})`);
      socket.pause();
      if (got.length > end + 4) socket.unshift(got.subarray(end + 4));
      finish(socket);
    };
    socket.on('data', onData);
    socket.on('error', (err) => finish(`cannot reach the proxy ${u.host}: ${err.message}`));
  });
}
