import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { closeReason, TUNNEL_CLOSE, TUNNEL_HEALTH_PATH, TUNNEL_NATIVE_ALPN, TUNNEL_PATH, type TunnelMode } from '@stagedoor/contract';
import { WebSocketServer, type WebSocket } from 'ws';
import { normaliseAddress, type AddressList } from '../addresses.ts';
import type { EarlyFrame, ModeHandlers } from '../browser/modes.ts';
import { isRdCleanPathFrame, readRdCleanPathRequest, refuseRdCleanPath } from '../browser/rdcleanpath.ts';
import type { Log } from '../log.ts';
import { parseProxyV2 } from '../proxy-protocol.ts';
import { REFUSAL_MESSAGES, type Admit } from './admission.ts';
import { NativeTunnelMode } from './native-tunnel.ts';
import { RecordTap } from './record-tap.ts';
import type { TlsCertificate } from './tls-certificate.ts';
import { parseClientHelloSni } from './tls-sni.ts';
import { readFirstMessage, type FirstMessage } from './tunnel-first-message.ts';
import { readKeylogLine } from './tls13-keys.ts';
import { relayTunnel } from './tunnel-relay.ts';
import type { TappedTls } from './tunnel-ws-native.ts';

/**
 * The HTTPS tunnel listener (ADR 0017, default port 443): one TCP stream per WebSocket for clients
 * whose protocol has no field for a grant token (VNC, PCoIP), and for any routed grant through
 * `stagedoor connect --tunnel`, which also gets through corporate HTTP proxies. It also answers the
 * network load balancer's health check. The wire is in packages/contract/src/tunnel.ts.
 */
export interface TunnelServerOptions {
  /** Default 443; 0 picks a free port (tests). */
  port?: number;
  /** Default 0.0.0.0. */
  host?: string;
  certificate: TlsCertificate;
  admit: Admit;
  /** Whether the balancer should send new connections here: a broker channel up, not failed closed. */
  healthy: () => boolean;
  /** Behind a balancer: every connection starts with a PROXY v2 header from one of `sources`. */
  proxyProtocol?: { sources: AddressList; headerTimeoutMs?: number } | null;
  log: Log;
  /** How long a client has to send its token after the upgrade (default 10 s). */
  firstMessageTimeoutMs?: number;
  /** TCP connect to the workstation gives up after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** Largest frame accepted (default 1 MiB): bounds what one client can make the gateway buffer. */
  maxPayload?: number;
  /** Stop reading one side while the other has this much queued (default 1 MiB). */
  highWaterMark?: number;
  /** The modes offered beyond `tcp` (the browser's: apps/gateway/src/browser/); none by default. */
  modes?: ModeHandlers;
  /** Hand native-mode sessions (ALPN `stagedoor-tcp/1`, ADR 0032) to the native relay; default false (Node relays them). */
  nativeRelay?: boolean;
}

/** How much of a ClientHello (and PROXY header) is read to find its ALPN offer, and for how long. */
const HELLO_MAX_BYTES = 16 * 1024;
const HELLO_TIMEOUT_MS = 10_000;
/** A client that opens TCP and never completes the handshake holds a socket: not for long. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** What the tunnel knows of one HTTPS connection: the client (PROXY header or peer), and its records when kept. */
interface HttpsConnection {
  client: string;
  tapped: TappedTls | null;
}

export class TunnelServer {
  /** HTTP over the TLS connections this server makes (the health check, the WebSocket upgrade). */
  readonly #http: http.Server;
  #context: tls.SecureContext;
  readonly #raw: net.Server;
  readonly #native: NativeTunnelMode;
  readonly #wss: WebSocketServer;
  readonly #connections = new WeakMap<tls.TLSSocket, HttpsConnection>();
  /** Every TLS connection not closed yet (shutdown destroys them). */
  readonly #tlsSockets = new Set<tls.TLSSocket>();
  readonly #sockets = new Set<WebSocket>();
  readonly #unsubscribe: () => void;

  constructor(private readonly opts: TunnelServerOptions) {
    // The TLS connections are made here rather than by an https.Server, so that with the native relay
    // each one runs over a RecordTap, whose records let the relay threads take a WebSocket session.
    this.#http = http.createServer({ headersTimeout: 10_000, requestTimeout: 15_000 });
    const context = (pair: { key: string | Buffer; cert: string | Buffer }) => tls.createSecureContext({ ...pair, minVersion: 'TLSv1.2' });
    this.#context = context(opts.certificate.pair);
    this.#unsubscribe = opts.certificate.onChange((pair) => {
      this.#context = context(pair);
    });
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: opts.maxPayload ?? 1024 * 1024, clientTracking: false });
    this.#http.on('request', this.#onRequest);
    this.#http.on('upgrade', this.#onUpgrade);
    // Every connection is accepted here: the PROXY header (behind a balancer), then the ClientHello's
    // ALPN offer says whether it is the native mode or HTTPS (the WebSocket, the health check).
    // No Nagle, as on every other listener: the session tickets, then the answer to the token (or a
    // keystroke) would otherwise wait for the client's delayed ACK, up to 40 ms each connection.
    this.#raw = net.createServer({ pauseOnConnect: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, this.#onRawSocket);
    this.#native = new NativeTunnelMode({
      certificate: opts.certificate,
      admit: opts.admit,
      log: opts.log,
      nativeRelay: opts.nativeRelay ?? false,
      handshakeTimeoutMs: 10_000,
      firstMessageTimeoutMs: opts.firstMessageTimeoutMs ?? 10_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
    });
  }

  /** Listen; resolves with the port (useful with port 0). */
  async start(): Promise<number> {
    const server = this.#raw;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.opts.port ?? 443, host: this.opts.host ?? '0.0.0.0' }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const port = (server.address() as net.AddressInfo).port;
    this.opts.log.info({ port, fingerprint: this.opts.certificate.fingerprint256, proxyProtocol: Boolean(this.opts.proxyProtocol), nativeRelay: this.opts.nativeRelay ?? false }, 'HTTPS tunnel listening');
    return port;
  }

  get port(): number | null {
    const a = this.#raw.address();
    return a && typeof a === 'object' ? a.port : null;
  }

  /** Stop listening and end every tunnel (gateway shutdown). */
  async close(): Promise<void> {
    this.#unsubscribe();
    for (const ws of this.#sockets) ws.close(TUNNEL_CLOSE.closed, closeReason('the gateway is shutting down: connect again'));
    for (const ws of this.#sockets) setTimeout(() => ws.terminate(), 1000).unref();
    this.#native.close();
    await new Promise<void>((resolve) => this.#raw.close(() => resolve()));
    this.#http.closeAllConnections();
    for (const s of this.#tlsSockets) s.destroy();
  }

  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path === TUNNEL_HEALTH_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      const ok = this.opts.healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      return void res.end(ok ? 'ok\n' : 'unavailable\n');
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  };

  #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    // The path alone: a query string is ignored, so a token someone put in the URL admits nothing.
    if ((req.url ?? '').split('?')[0] !== TUNNEL_PATH || req.method !== 'GET') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const connection = this.#connections.get(req.socket as tls.TLSSocket);
    if (!connection) return void socket.destroy(); // not one of ours: cannot happen
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#session(ws, connection.client, connection.tapped));
  };

  /** One WebSocket: the first message, the admission, then the mode (the tcp relay by default). */
  #session(ws: WebSocket, client: string, tapped: TappedTls | null): void {
    this.#sockets.add(ws);
    ws.on('close', () => this.#sockets.delete(ws));
    ws.on('error', () => ws.terminate());
    const log = this.opts.log.child({ listener: 'tunnel', client });
    const timer = setTimeout(() => {
      log.info({}, 'tunnel refused: no grant token in time');
      ws.close(TUNNEL_CLOSE.timeout, closeReason(REFUSAL_MESSAGES['no-token']));
    }, this.opts.firstMessageTimeoutMs ?? 10_000);
    // Frames after the first message and before the workstation answers (a client that does not wait
    // for `ok`) are kept in order and handed to the mode once it is up.
    const early: EarlyFrame[] = [];
    let earlyBytes = 0;
    let mode: TunnelMode | null = null;
    const onMessage = (data: Buffer, isBinary: boolean) => {
      if (mode) {
        earlyBytes += data.length;
        // The tcp stream is binary only; the other modes define their own text messages.
        if ((mode === 'tcp' && !isBinary) || earlyBytes > (this.opts.highWaterMark ?? 1024 * 1024)) ws.close(TUNNEL_CLOSE.badRequest, closeReason(REFUSAL_MESSAGES['bad-request']));
        else early.push({ data, isBinary });
        return;
      }
      clearTimeout(timer);
      // IronRDP's browser client opens this WebSocket itself and starts with its RDCleanPath request,
      // the grant token inside, instead of the JSON first message (ADR 0030).
      if (isRdCleanPathFrame(data, isBinary) && this.opts.modes?.rdcleanpath) {
        mode = 'rdcleanpath';
        tapped?.tap.keepsNode();
        ws.removeListener('message', onMessage);
        return readRdCleanPathRequest(ws, data, { log, highWaterMark: this.opts.highWaterMark ?? 1024 * 1024 }, (token, request, takeEarly) => {
          void this.#admit(ws, client, { token, mode: 'rdcleanpath', options: { request } }, log, takeEarly);
        });
      }
      const first = isBinary ? null : readFirstMessage(data);
      if (first === null) {
        mode = 'tcp';
        log.info({}, 'tunnel refused: the first message was not a token frame');
        return ws.close(TUNNEL_CLOSE.badRequest, closeReason(REFUSAL_MESSAGES['bad-request']));
      }
      mode = first.mode;
      // Only the tcp stream goes to the relay threads; Node keeps every other mode's session.
      if (mode !== 'tcp') tapped?.tap.keepsNode();
      // Checked before the admission: asking an older gateway for a mode it lacks does not use up the grant.
      if (mode !== 'tcp' && !this.opts.modes?.[mode]) {
        log.info({ mode }, 'tunnel refused: a mode this gateway does not offer');
        return ws.close(TUNNEL_CLOSE.badRequest, closeReason(`this gateway does not offer ${mode} sessions: ask your administrator to update it`));
      }
      // The rdcleanpath mode begins with the binary request above, never with a JSON message.
      if (mode === 'rdcleanpath') return ws.close(TUNNEL_CLOSE.badRequest, closeReason(REFUSAL_MESSAGES['bad-request']));
      void this.#admit(ws, client, first, log, () => {
        ws.removeListener('message', onMessage);
        return early;
      }, tapped);
    };
    ws.on('message', onMessage);
    ws.once('close', () => clearTimeout(timer));
  }

  async #admit(ws: WebSocket, client: string, first: FirstMessage, log: Log, takeEarly: () => EarlyFrame[], tapped: TappedTls | null = null): Promise<void> {
    let r;
    try {
      r = await this.opts.admit('tunnel', first.token, client);
    } catch (err) {
      log.error({ err }, 'tunnel admission failed');
      if (first.mode === 'rdcleanpath') refuseRdCleanPath(ws, 'claim-timeout');
      return ws.close(TUNNEL_CLOSE.refused, closeReason(REFUSAL_MESSAGES['claim-timeout']));
    }
    if (!r.ok) {
      log.info({ reason: r.reason, mode: first.mode }, 'tunnel refused');
      // IronRDP reads an RDCleanPath error, not the close reason: a status per refusal (contract).
      if (first.mode === 'rdcleanpath') refuseRdCleanPath(ws, r.reason);
      return ws.close(TUNNEL_CLOSE.refused, closeReason(r.message));
    }
    const admitted = r;
    if (ws.readyState !== ws.OPEN) return admitted.ended({ reason: 'client-closed', bytesUp: 0, bytesDown: 0 });
    const sessionLog = log.child({ grant: admitted.grantId, mode: first.mode });
    sessionLog.info({ target: `${admitted.target.host}:${admitted.target.port}` }, 'tunnel session started');
    const connectTimeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    const highWaterMark = this.opts.highWaterMark ?? 1024 * 1024;
    if (first.mode === 'tcp') {
      return relayTunnel({
        ws,
        admitted,
        takeEarly: () => takeEarly().map((f) => f.data),
        connectTimeoutMs,
        highWaterMark,
        log: sessionLog,
        native: tapped,
      });
    }
    let reported = false;
    const ended = (outcome: { reason: string; bytesUp: number; bytesDown: number }) => {
      if (reported) return;
      reported = true;
      admitted.ended(outcome);
      sessionLog.info({ ...outcome }, 'tunnel session ended');
    };
    try {
      this.opts.modes![first.mode]!({ ws, admitted, options: first.options, takeEarly, log: sessionLog, connectTimeoutMs, highWaterMark, ended });
    } catch (err) {
      // A mode's bug ends its own session, not the gateway.
      sessionLog.error({ err }, 'tunnel mode failed');
      ws.close(TUNNEL_CLOSE.closed, closeReason(REFUSAL_MESSAGES.closed));
      ended({ reason: 'gateway-error', bytesUp: 0, bytesDown: 0 });
    }
  }

  /**
   * Every accepted connection: behind a balancer, its PROXY v2 header (from the configured sources
   * only); then its ClientHello, read but not consumed, whose ALPN offer picks the native mode or HTTPS.
   */
  #onRawSocket = (socket: net.Socket): void => {
    socket.on('error', () => socket.destroy());
    const peer = normaliseAddress(socket.remoteAddress);
    const proxy = this.opts.proxyProtocol;
    if (proxy && !proxy.sources.has(peer)) {
      // Not one of the balancers: its header would name any client it likes. Nothing is read.
      this.opts.log.warn({ peer }, 'tunnel: a connection from a peer outside the PROXY protocol sources: refused');
      return void socket.resetAndDestroy();
    }
    let got = Buffer.alloc(0);
    let client: string | null = proxy ? null : peer;
    let offset = 0;
    const timer = setTimeout(() => socket.destroy(), proxy?.headerTimeoutMs ?? HELLO_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (client === null) {
        const p = parseProxyV2(got);
        if (p.kind === 'incomplete') return;
        if (p.kind === 'invalid') {
          clearTimeout(timer);
          this.opts.log.info({ peer, reason: p.reason }, 'tunnel: bad PROXY header: refused');
          return void socket.destroy();
        }
        // LOCAL (the balancer's own health check) has no source: the peer is the client.
        client = p.source ? normaliseAddress(p.source.address) : peer;
        offset = p.length;
      }
      const hello = parseClientHelloSni(got.subarray(offset), HELLO_MAX_BYTES);
      if (hello.kind === 'incomplete' && got.length < offset + HELLO_MAX_BYTES) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      const rest = got.subarray(offset);
      if (hello.kind === 'ok' && hello.alpn.includes(TUNNEL_NATIVE_ALPN)) return this.#native.accept(socket, rest, client);
      // Not the native mode (or not TLS at all: the handshake fails).
      this.#serveHttps(socket, rest, client);
    };
    socket.on('data', onData);
    socket.resume();
  };
  /**
   * HTTPS on a connection whose ClientHello did not ask for the native mode: TLS here, then HTTP (the
   * health check, the WebSocket upgrade). With the native relay, the TLS runs over a RecordTap that keeps
   * the records and the traffic secrets, for the WebSocket sessions the relay threads may take.
   */
  #serveHttps(socket: net.Socket, head: Buffer, client: string): void {
    const tap = this.opts.nativeRelay ? new RecordTap(socket, head) : null;
    // Without a tap, the TLS socket reads what was unshifted before the socket's own data (tls's _init drains it).
    if (!tap && head.length > 0) socket.unshift(head);
    const secure = new tls.TLSSocket(tap ? (tap as unknown as net.Socket) : socket, { isServer: true, secureContext: this.#context, ALPNProtocols: ['http/1.1'] });
    const secrets = { client: null, server: null };
    if (tap) secure.on('keylog', (line: Buffer) => readKeylogLine(line, secrets));
    this.#connections.set(secure, { client, tapped: tap ? { secure, tap, secrets } : null });
    this.#tlsSockets.add(secure);
    const timer = setTimeout(() => secure.destroy(), HANDSHAKE_TIMEOUT_MS);
    secure.on('error', (err: Error) => {
      this.opts.log.debug({ err }, 'tunnel: TLS connection failed');
      secure.destroy();
    });
    secure.once('close', () => {
      clearTimeout(timer);
      this.#tlsSockets.delete(secure);
    });
    secure.once('secure', () => {
      clearTimeout(timer);
      this.#http.emit('connection', secure);
    });
  }
}
