import net from 'node:net';
import type { RefusalReason, RoutedListener } from '@stagedoor/contract';
import { normaliseAddress, type AddressList } from '../addresses.ts';
import type { Log } from '../log.ts';
import { parseProxyV2 } from '../proxy-protocol.ts';
import { listenWithOnread, type RelayOutcome, type RelaySession } from '../relay.ts';
import type { Admit, Admitted } from './admission.ts';
import { parseRdpConnectionRequest, rdpNegotiationFailure } from './rdp-routing.ts';
import { parseClientHelloSni, sniToken, tlsUnrecognizedName } from './tls-sni.ts';

/**
 * What a first-packet mode knows: how to find the token in the first packet, and what to answer a
 * refused client before closing (so it shows an error rather than a reset), if anything.
 */
export interface FirstPacketMode {
  listener: RoutedListener;
  parse(buf: Buffer, maxBytes: number): { kind: 'incomplete' } | { kind: 'invalid'; reason: string } | { kind: 'ok'; token: string | null; forward: Buffer; refusal: Buffer | null };
}

export const RDP_MODE: FirstPacketMode = {
  listener: 'rdp',
  parse(buf, max) {
    const p = parseRdpConnectionRequest(buf, max);
    if (p.kind !== 'ok') return p;
    // A Negotiation Failure only to a client that asked to negotiate: an older one would not read it.
    return { kind: 'ok', token: p.token, forward: p.forward, refusal: p.negotiates ? rdpNegotiationFailure() : null };
  },
};

export const TLS_MODE: FirstPacketMode = {
  listener: 'tls',
  parse(buf, max) {
    const p = parseClientHelloSni(buf, max);
    if (p.kind !== 'ok') return p;
    // The ClientHello goes on unchanged: the workstation terminates this TLS, not the gateway.
    return { kind: 'ok', token: sniToken(p.serverName), forward: Buffer.from(buf), refusal: tlsUnrecognizedName() };
  },
};

export interface FirstPacketListenerOptions {
  mode: FirstPacketMode;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  proxyProtocol: { enabled: boolean; sources: AddressList };
  admit: Admit;
  /** Refusals before there is a token to admit (PROXY header, a first packet that is not the protocol). */
  refused: (port: number, clientAddress: string, reason: RefusalReason) => void;
  connectTimeoutMs: number;
  /** Hand sessions to the native relay once the target answers (like port forward). */
  nativeRelay: boolean;
  /** Bounds on the PROXY header plus first packet: bytes, and time from accept (default 16 KiB, 10 s). */
  firstPacket?: { maxBytes: number; timeoutMs: number };
  log: Log;
}

/** How long a refused client has to read its error before the socket is destroyed. */
const REFUSAL_LINGER_MS = 2000;

/**
 * One fixed-port routed listener whose protocol carries the token in its first packet (RDP routing
 * token, TLS SNI): accept (PROXY v2 from the configured sources only, like port forward), read the
 * first packet within bounds, admit, and hand the socket and the bytes read to the relay — the native
 * relay takes over after the first packet. A refused connection never reaches a workstation.
 */
export class FirstPacketListener {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #bounds: { maxBytes: number; timeoutMs: number };
  #port: number;

  constructor(private readonly opts: FirstPacketListenerOptions) {
    this.#port = opts.port;
    this.#bounds = opts.firstPacket ?? { maxBytes: 16 * 1024, timeoutMs: 10_000 };
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    listenWithOnread(this.#server, (_server, socket, session) => this.#accept(socket, session));
  }

  /** Start listening; resolves when it does, or (logged) when it cannot — the gateway runs on without it. */
  listen(): Promise<boolean> {
    return new Promise((resolve) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.opts.log.error({ listener: this.opts.mode.listener, port: this.opts.port, err }, `cannot listen for the routed ${this.opts.mode.listener} mode; the gateway runs on without it`);
        resolve(false);
      };
      this.#server.once('error', onError);
      this.#server.listen({ port: this.opts.port, host: this.opts.host, backlog: 511 }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.opts.log.error({ listener: this.opts.mode.listener, err }, 'routed listener error'));
        this.#port = (this.#server.address() as net.AddressInfo).port;
        this.opts.log.info({ listener: this.opts.mode.listener, port: this.#port }, 'routed listener open');
        resolve(true);
      });
    });
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  /** The port it listens on (the configured one until it listens). */
  get port(): number {
    return this.#port;
  }

  close(): void {
    this.#server.close();
    for (const s of this.#sockets) s.destroy();
  }

  #accept(socket: net.Socket, session: RelaySession): void {
    socket.on('error', ignore); // a refused or reset client must not crash anything
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    const peer = normaliseAddress(socket.remoteAddress);
    const proxy = this.opts.proxyProtocol;
    if (proxy.enabled && !proxy.sources.has(peer)) {
      // Not one of the load balancers: its header would name any client it likes. Nothing is read.
      this.opts.log.warn({ listener: this.opts.mode.listener, peer }, 'a connection from a peer outside STAGEDOOR_GATEWAY_PROXY_SOURCES on a PROXY protocol port: refused');
      return this.#refuse(socket, peer, 'proxy-protocol', null);
    }
    let got: Buffer = Buffer.alloc(0);
    let client = peer;
    let headerDone = !proxy.enabled;
    let offset = 0;
    const finish = () => {
      clearTimeout(timer);
      session.up.intercept = null;
      socket.removeListener('data', onData);
      socket.pause();
    };
    const timer = setTimeout(() => {
      finish();
      this.#refuse(socket, client, headerDone ? 'bad-request' : 'proxy-protocol', null);
    }, this.#bounds.timeoutMs);
    timer.unref();
    const onData = (chunk: Buffer) => {
      got = got.length ? Buffer.concat([got, chunk]) : chunk;
      if (!headerDone) {
        const p = parseProxyV2(got);
        if (p.kind === 'incomplete') return;
        if (p.kind === 'invalid') {
          finish();
          return this.#refuse(socket, peer, 'proxy-protocol', null);
        }
        headerDone = true;
        offset = p.length;
        if (p.source) client = normaliseAddress(p.source.address);
      }
      const first = this.opts.mode.parse(got.subarray(offset), this.#bounds.maxBytes);
      if (first.kind === 'incomplete' && got.length < offset + this.#bounds.maxBytes) return;
      finish();
      if (first.kind !== 'ok') {
        this.opts.log.info({ listener: this.opts.mode.listener, client, reason: first.kind === 'invalid' ? first.reason : 'first packet too large' }, 'not a first packet of this protocol');
        return this.#refuse(socket, client, 'bad-request', null);
      }
      void this.#admit(socket, session, client, first.token ?? '', first.forward, first.refusal);
    };
    if (session.clientUsesOnread) session.up.intercept = onData;
    else socket.on('data', onData);
    socket.resume();
  }

  async #admit(socket: net.Socket, session: RelaySession, client: string, token: string, forward: Buffer, refusal: Buffer | null): Promise<void> {
    let a: Awaited<ReturnType<Admit>>;
    try {
      a = await this.opts.admit(this.opts.mode.listener, token, client);
    } catch (err) {
      this.opts.log.error({ listener: this.opts.mode.listener, err }, 'admitting a routed connection failed');
      return this.#close(socket, refusal);
    }
    if (!a.ok) return this.#close(socket, refusal); // the admitter reported it
    if (socket.destroyed) {
      a.ended({ reason: 'client-closed', bytesUp: 0, bytesDown: 0 }); // gone while the broker answered
      return;
    }
    const admitted: Admitted = a;
    session.owner = admitted;
    session.onEnd = onSessionEnd;
    session.native = this.opts.nativeRelay;
    admitted.onClose((reason) => session.close(reason));
    admitted.countBytes(() => ({ bytesUp: session.bytesUp, bytesDown: session.bytesDown }));
    // The client socket is the relay's from here (the native relay may take its descriptor).
    this.#sockets.delete(socket);
    session.start(socket, { ...admitted.target, connectTimeoutMs: this.opts.connectTimeoutMs }, forward);
  }

  #refuse(socket: net.Socket, client: string, reason: RefusalReason, refusal: Buffer | null): void {
    this.opts.log.info({ listener: this.opts.mode.listener, client, reason }, 'routed connection refused');
    this.opts.refused(this.#port, client, reason);
    // A first packet that was not this protocol gets no protocol answer: a reset says enough.
    this.#close(socket, reason === 'bad-request' || reason === 'proxy-protocol' ? null : refusal);
  }

  /** Answer a refused client in its protocol where it can read it, then close; else reset. */
  #close(socket: net.Socket, refusal: Buffer | null): void {
    if (socket.destroyed) return;
    if (!refusal) return void socket.resetAndDestroy();
    socket.end(refusal);
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
  }
}

function onSessionEnd(outcome: RelayOutcome, session: RelaySession): void {
  (session.owner as Admitted).ended(outcome);
}

function ignore(): void {}
