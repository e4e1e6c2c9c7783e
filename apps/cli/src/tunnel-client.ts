import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TUNNEL_CLOSE } from '@stagedoor/contract';
import { HttpsProxyAgent } from 'https-proxy-agent';
import WebSocket from 'ws';
import { openNative } from './tunnel-native.ts';

/**
 * The client side of the HTTPS tunnel (`stagedoor connect --tunnel`; wire in
 * packages/contract/src/tunnel.ts): a port on 127.0.0.1 for any native client, like `boundary
 * connect`. Each local TCP connection gets its own connection to the gateway: the native mode first
 * (tunnel-native.ts: TLS with ALPN `stagedoor-tcp/1`, which the gateway relays natively), else a
 * WebSocket — the token frame, wait for `{"ok":true}`, then bytes both ways. Once the gateway (or a
 * proxy that inspects TLS) turned the native mode down, the tunnel keeps to the WebSocket. It never
 * reads the environment: the command passes the proxy it resolved, so this is testable without a
 * broker and without process-wide state.
 */
export interface TunnelClientOptions {
  /** `wss://gateway:443/tunnel` */
  url: string;
  /** The grant token: sent only in the first frame, after the server's certificate checked out. */
  token: string;
  /** `AA:BB:…` SHA-256 of the gateway's certificate (self-signed gateways): accept exactly that one. null = verify against the system CAs. */
  certificateSha256: string | null;
  /** Local port on 127.0.0.1; default a free one. */
  listenPort?: number;
  listenHost?: string;
  /** `http://[user:pass@]proxy:3128`: reach the gateway through an HTTP CONNECT proxy. */
  proxy?: string | null;
  /** Extra CA certificates (PEM) to trust besides the system's (tests; a private CA). */
  ca?: string | string[];
  /** Give up on the gateway after this long (default 20 s): TLS, proxy and the broker's claim included. */
  handshakeTimeoutMs?: number;
  /** `websocket`: skip the native mode (a proxy known to inspect TLS; tests). Default `auto`. */
  transport?: 'auto' | 'websocket';
  onEvent?: (event: TunnelEvent) => void;
}

export type TunnelEvent =
  | { kind: 'connecting'; local: string }
  | { kind: 'open'; local: string; transport: 'native' | 'websocket' }
  | { kind: 'refused'; local: string; code: number; message: string }
  | { kind: 'error'; local: string; message: string }
  /** `endedBy`: which side ended the session first — the local client, or the gateway (the desktop closed, or the connection was released). */
  | { kind: 'closed'; local: string; bytesUp: number; bytesDown: number; endedBy: 'client' | 'gateway' };

export interface Tunnel {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** `AA:BB:…` from any colon/case spelling (`aabb…`, `aa:bb:…`), for comparison. */
export function normaliseFingerprint(text: string): string {
  const hex = text.replace(/^sha256[:=]?/i, '').replace(/[^0-9a-f]/gi, '').toUpperCase();
  if (hex.length !== 64) throw new Error(`not a SHA-256 fingerprint: ${text}`);
  return hex.match(/../g)!.join(':');
}

export async function openTunnel(opts: TunnelClientOptions): Promise<Tunnel> {
  const url = new URL(opts.url);
  if (url.protocol !== 'wss:') throw new Error(`the tunnel URL must be wss:// (got ${url.protocol}//)`);
  const pin = opts.certificateSha256 ? normaliseFingerprint(opts.certificateSha256) : null;
  // One agent for every local connection: it opens a CONNECT tunnel per WebSocket and runs TLS to the
  // gateway inside it, so the proxy sees only the gateway's host and port, never the token.
  const agent = opts.proxy ? new HttpsProxyAgent(opts.proxy) : undefined;
  const live = new Set<{ close(): void }>();
  // No Nagle on the local side either: the native client's small writes (input) go at once.
  const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (local) => connectOne(local));
  const emit = opts.onEvent ?? (() => {});
  let tryNative = opts.transport !== 'websocket';

  const connectOne = (local: net.Socket) => {
    const name = `${local.remoteAddress}:${local.remotePort}`;
    local.on('error', () => {});
    emit({ kind: 'connecting', local: name });
    if (!tryNative) return connectWebSocket(local, name);
    const pending = { close: () => local.destroy() };
    live.add(pending);
    void openNative({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443), token: opts.token, pin, ca: opts.ca, proxy: opts.proxy, timeoutMs: opts.handshakeTimeoutMs ?? 20_000 }).then((r) => {
      live.delete(pending);
      if (r.kind === 'unsupported') {
        tryNative = false;
        return connectWebSocket(local, name);
      }
      if (r.kind === 'open') return relayNative(local, name, r.socket, r.head);
      emit(r.kind === 'refused' ? { kind: 'refused', local: name, code: r.code, message: r.message } : { kind: 'error', local: name, message: r.message });
      local.destroy();
    });
  };

  /** The native mode: the TLS stream is the TCP stream. */
  const relayNative = (local: net.Socket, name: string, socket: TLSSocket, head: Buffer) => {
    if (local.destroyed) return void socket.destroy();
    const entry = { close: () => (socket.destroy(), local.destroy()) };
    live.add(entry);
    let bytesUp = 0;
    let bytesDown = head.length;
    emit({ kind: 'open', local: name, transport: 'native' });
    if (head.length) local.write(head);
    local.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
      if (!socket.write(chunk)) local.pause();
    });
    socket.on('drain', () => local.resume());
    socket.on('data', (chunk: Buffer) => {
      bytesDown += chunk.length;
      if (!local.write(chunk)) socket.pause();
    });
    local.on('drain', () => socket.resume());
    let endedBy: 'client' | 'gateway' | null = null;
    local.on('end', () => {
      endedBy ??= 'client';
      socket.end();
    });
    socket.on('end', () => {
      endedBy ??= 'gateway';
      local.end();
    });
    socket.on('error', () => local.destroy());
    let open = 2;
    const closed = (side: 'client' | 'gateway') => () => {
      endedBy ??= side;
      if (--open > 0) {
        setTimeout(() => (socket.destroy(), local.destroy()), 2000).unref();
        return;
      }
      live.delete(entry);
      emit({ kind: 'closed', local: name, bytesUp, bytesDown, endedBy });
    };
    local.once('close', closed('client'));
    socket.once('close', closed('gateway'));
    socket.resume();
    local.resume();
  };

  const connectWebSocket = (local: net.Socket, name: string) => {
    const ws = new WebSocket(opts.url, {
      agent,
      perMessageDeflate: false,
      maxPayload: 1024 * 1024,
      handshakeTimeout: opts.handshakeTimeoutMs ?? 20_000,
      // With a pin the certificate is checked by its fingerprint below, not by a CA or its names.
      rejectUnauthorized: pin === null,
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    const entry = { close: () => (ws.terminate(), local.destroy()) };
    live.add(entry);
    let state: 'handshake' | 'token-sent' | 'relaying' | 'done' = 'handshake';
    let bytesUp = 0;
    let bytesDown = 0;
    let pinOk = pin === null;
    const fail = (message: string) => {
      if (state === 'done') return;
      state = 'done';
      emit({ kind: 'error', local: name, message });
      ws.terminate();
      local.destroy();
    };

    ws.on('upgrade', (res: IncomingMessage) => {
      if (!pin) return;
      const seen = (res.socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
      if (seen && seen.toUpperCase() === pin) pinOk = true;
      else fail(`the gateway's certificate (${seen ?? 'none'}) is not the pinned one (${pin}): the grant token was not sent`);
    });
    ws.on('open', () => {
      if (!pinOk) return fail('the gateway certificate was not checked: the grant token was not sent');
      if (state !== 'handshake') return;
      state = 'token-sent';
      ws.send(JSON.stringify({ token: opts.token }));
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (state === 'token-sent') {
        if (isBinary || !isOk(data)) return fail('the gateway answered the token with something unexpected');
        state = 'relaying';
        emit({ kind: 'open', local: name, transport: 'websocket' });
        local.resume();
        return;
      }
      if (state !== 'relaying') return;
      bytesDown += data.length;
      if (!local.write(data)) ws.pause();
    });
    local.on('drain', () => ws.resume());
    local.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
      ws.send(chunk, { binary: true }, () => {
        if (local.isPaused() && ws.bufferedAmount < 256 * 1024) local.resume();
      });
      if (ws.bufferedAmount > 1024 * 1024) local.pause();
    });
    let localEnded = false;
    local.on('end', () => {
      localEnded = true;
      ws.close(1000);
    });
    local.on('close', () => {
      localEnded = true;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
      setTimeout(() => ws.terminate(), 2000).unref();
    });
    ws.on('unexpected-response', (_req, res: IncomingMessage) => fail(`the gateway answered HTTP ${res.statusCode} instead of the tunnel (is ${opts.url} a Stagedoor gateway?)`));
    ws.on('error', (err: Error) => fail(`cannot reach the gateway ${url.host}${opts.proxy ? ' through the proxy' : ''}: ${err.message}`));
    ws.on('close', (code: number, reason: Buffer) => {
      live.delete(entry);
      const was = state;
      state = 'done';
      if (was === 'done') return;
      if (code >= 4000 && code < 5000) emit({ kind: 'refused', local: name, code, message: reason.toString('utf8') || describeCode(code) });
      else if (was !== 'relaying') emit({ kind: 'error', local: name, message: `the gateway closed the tunnel before it was open (${code}${reason.length ? `: ${reason.toString('utf8')}` : ''})` });
      else emit({ kind: 'closed', local: name, bytesUp, bytesDown, endedBy: localEnded ? 'client' : 'gateway' });
      local.end();
      setTimeout(() => local.destroy(), 2000).unref();
    });
  };

  const host = opts.listenHost ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.listenPort ?? 0, host }, () => resolve());
  });
  return {
    host,
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const entry of live) entry.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent?.destroy();
    },
  };
}

function isOk(data: Buffer): boolean {
  try {
    return (JSON.parse(data.toString('utf8')) as { ok?: unknown }).ok === true;
  } catch {
    return false;
  }
}

function describeCode(code: number): string {
  if (code === TUNNEL_CLOSE.refused) return 'the gateway refused the grant';
  if (code === TUNNEL_CLOSE.timeout) return 'the gateway got no grant token in time';
  if (code === TUNNEL_CLOSE.targetUnreachable) return 'the desktop did not accept the connection';
  return `the gateway closed the tunnel (${code})`;
}

/** The line a user pastes to reach the desktop through the local port. */
export function clientCommandFor(protocol: string, host: string, port: number): string {
  switch (protocol) {
    case 'ssh':
      return `ssh -p ${port} <user>@${host}`;
    case 'vnc':
      return `vncviewer ${host}::${port}`;
    case 'rdp':
      return `xfreerdp /v:${host}:${port}   (or mstsc /v:${host}:${port})`;
    case 'dcv':
      return `dcvviewer ${host}:${port}`;
    default:
      return `point your ${protocol.toUpperCase()} client at ${host}:${port}`;
  }
}
