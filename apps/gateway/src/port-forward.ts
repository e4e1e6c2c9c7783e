import net from 'node:net';
import type { ChannelGrant, RefusalReason } from '@stagedoor/contract';

/** A port-forward grant: the gateway's routing hands the engine only these (routed grants have no port). */
export type PortGrant = ChannelGrant & { mode: 'portForward'; port: number };
export function isPortGrant(g: ChannelGrant): g is PortGrant {
  return g.mode === 'portForward' && g.port !== null;
}
import { normaliseAddress, type AddressList } from './addresses.ts';
import type { Log } from './log.ts';
import { parseProxyV2 } from './proxy-protocol.ts';
import { useRelayEngine, type RelaySettings } from './native-relay.ts';
import { listenWithOnread, type Acceptor, type RelayOutcome, type RelaySession } from './relay.ts';

/** What the port-forward engine tells the broker channel. */
export interface Reporter {
  sessionStarted(grant: PortGrant, clientAddress: string, at: Date): void;
  sessionEnded(grant: PortGrant, outcome: RelayOutcome, at: Date): void;
  refused(port: number, clientAddress: string, reason: RefusalReason, grantId: string | null): void;
  /** The grant's port accepts connections now (relay workers tell the gateway process). */
  listening?(grantId: string): void;
}

export interface PortForwardOptions {
  listenHost: string;
  /** PROXY protocol v2 on every grant port, accepted only from `sources` (empty: from nobody). */
  proxyProtocol: { enabled: boolean; sources: AddressList };
  /** After a grant is done, its port keeps refusing (and reporting) connections this long, then closes. */
  lingerMs: number;
  connectTimeoutMs: number;
  proxyHeaderTimeoutMs?: number;
  /** The byte mover (default `auto`: native when built) and its threads (default 1). */
  relay?: RelaySettings;
  now: () => number;
  /** Why new connections are refused right now (fail closed, disabled), or null when they are not. */
  refuseAll: () => RefusalReason | null;
  reporter: Reporter;
  log: Log;
}

interface GrantState {
  grant: PortGrant;
  validUntilMs: number;
  /** `issued`: waiting for its one session; `active`: relaying here; `elsewhere`: in use, not here (after a reconnect). */
  state: 'issued' | 'active' | 'elsewhere';
  session: RelaySession | null;
  /** When the session started (epoch ms; a number, not a Date: memory per idle session is measured). */
  startedAtMs: number;
  clientAddress: string | null;
  /** The one pending timer: connect-by while issued, the session's end time while active. */
  timer: NodeJS.Timeout | null;
}

const PORT = Symbol('stagedoor.port');
type PortServer = net.Server & { [PORT]?: PortState };

interface PortState {
  port: number;
  server: net.Server;
  grantId: string | null;
  /** Set while the port lingers after its grant: the reason every connection is refused with. */
  lingerReason: RefusalReason | null;
  /** The grant the port served before it began to linger, named in refusal reports. */
  lingerGrantId: string | null;
  lingerTimer: NodeJS.Timeout | null;
  /** Set while another socket of this host holds the port: the next attempt to listen on it. */
  retryTimer: NodeJS.Timeout | null;
  /** A listen is under way (neither `listening` nor `error` yet). */
  binding: boolean;
}

/** How often a granted port that is in use is tried again, until its grant is done. */
const LISTEN_RETRY_MS = 500;

/**
 * Port-forward mode: one listener per granted port, accepting exactly the grant's client address,
 * one session per grant, relaying to the grant's target. It checks, relays and reports; every
 * decision about who may connect was made by the broker.
 */
export class PortForwarder {
  readonly #grants = new Map<string, GrantState>();
  readonly #ports = new Map<number, PortState>();
  #closed = false;
  readonly #endedBytes = { up: 0, down: 0 };
  /** Shared by every listener and session (one function each, not one closure per grant). */
  readonly #onSocket: Acceptor;
  readonly #onServerError: (this: PortServer, err: NodeJS.ErrnoException) => void;
  readonly #onListening: (this: PortServer) => void;
  readonly #onSessionEnd: (outcome: RelayOutcome, session: RelaySession) => void;
  /** Sessions go to the native relay once their target answers. */
  readonly nativeRelay: boolean;

  constructor(private readonly opts: PortForwardOptions) {
    const relay = useRelayEngine(opts.relay?.engine ?? 'auto', opts.relay?.threads ?? 1, opts.relay?.halfCloseSeconds);
    this.nativeRelay = relay.engine === 'native';
    if (relay.reason) opts.log.warn({ reason: relay.reason }, 'the native relay is not available: relaying in JavaScript');
    this.#onSocket = (server, socket, session) => this.#accept((server as PortServer)[PORT]!, socket, session);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the listener's `this` is the server
    const self = this;
    this.#onServerError = function (err) {
      self.#serverError(this[PORT]!, err);
    };
    this.#onListening = function () {
      const port = this[PORT]!;
      port.binding = false;
      if (port.retryTimer) self.opts.log.info({ port: port.port, grant: port.grantId }, 'the granted port is free again: listening');
      port.retryTimer = null;
      const grantId = port.grantId;
      if (grantId) self.opts.reporter.listening?.(grantId);
    };
    this.#onSessionEnd = (outcome, session) => this.#sessionEnded(session.owner as GrantState, outcome);
  }

  get grantCount(): number {
    return this.#grants.size;
  }

  /** Whether the grant is held and its port is accepting (tests wait for this before dialling). */
  isReady(grantId: string): boolean {
    const g = this.#grants.get(grantId);
    return Boolean(g && this.#ports.get(g.grant.port)?.server.listening);
  }

  /** The sessions relaying now, with their byte counts (for the heartbeat and the hello). */
  sessions(): { grantId: string; bytesUp: number; bytesDown: number; startedAt: string; clientAddress: string }[] {
    const out = [];
    for (const g of this.#grants.values()) {
      if (g.state === 'active' && g.session) {
        out.push({ grantId: g.grant.id, bytesUp: g.session.bytesUp, bytesDown: g.session.bytesDown, startedAt: new Date(g.startedAtMs).toISOString(), clientAddress: g.clientAddress! });
      }
    }
    return out;
  }

  /** Bytes relayed since start, ended sessions included (the heartbeat turns it into bytes per second). */
  totalBytes(): { up: number; down: number } {
    let up = this.#endedBytes.up;
    let down = this.#endedBytes.down;
    for (const g of this.#grants.values()) {
      if (g.session) {
        up += g.session.bytesUp;
        down += g.session.bytesDown;
      }
    }
    return { up, down };
  }

  /** The welcome after a (re)connect: the broker's set replaces ours; sessions it no longer knows are closed. */
  replaceGrants(grants: PortGrant[]): void {
    const want = new Map(grants.map((g) => [g.id, g]));
    for (const [id, g] of this.#grants) {
      if (!want.has(id)) this.revoke(id, g.state === 'active' ? 'revoked: not live at the broker' : 'closed');
    }
    for (const g of grants) {
      const held = this.#grants.get(g.id);
      if (!held) this.addGrant(g);
      else {
        held.grant = g;
        if (held.state === 'issued' && g.inUse) held.state = 'elsewhere'; // its session began on another gateway
      }
    }
  }

  addGrant(grant: PortGrant): void {
    if (this.#closed || this.#grants.has(grant.id)) return;
    const validUntilMs = Date.parse(grant.validUntil);
    const state: GrantState = { grant, validUntilMs, state: grant.inUse ? 'elsewhere' : 'issued', session: null, startedAtMs: 0, clientAddress: null, timer: null };
    if (state.state === 'issued' && validUntilMs <= this.opts.now()) return; // arrived dead
    const previous = this.#ports.get(grant.port);
    if (previous?.grantId && previous.grantId !== grant.id) {
      // Two live grants on one port cannot happen at the broker (unique index); a stale one here loses.
      this.revoke(previous.grantId, 'closed');
    }
    this.#grants.set(grant.id, state);
    if (state.state === 'issued') {
      state.timer = this.#timer(validUntilMs - this.opts.now(), () => this.#expire(grant.id));
    }
    this.#open(grant.port, grant.id);
  }

  /** The broker revoked the grant (or it is no longer live there): close the port and any session at once. */
  revoke(grantId: string, reason: string): void {
    const g = this.#grants.get(grantId);
    if (!g) return;
    if (g.state === 'active' && g.session) {
      g.session.close(reason.startsWith('revoked') ? reason : `revoked: ${reason}`);
      return; // the session's end reports it and lingers the port
    }
    this.#finish(g, lingerReasonFor(reason));
  }

  #expire(grantId: string): void {
    const g = this.#grants.get(grantId);
    if (g?.state === 'issued') this.#finish(g, 'expired');
  }

  #finish(g: GrantState, reason: RefusalReason): void {
    if (g.timer) clearTimeout(g.timer);
    g.timer = null;
    this.#grants.delete(g.grant.id);
    const port = this.#ports.get(g.grant.port);
    if (port && port.grantId === g.grant.id) this.#linger(port, reason);
  }

  #open(portNumber: number, grantId: string): void {
    const existing = this.#ports.get(portNumber);
    if (existing) {
      if (existing.lingerTimer) clearTimeout(existing.lingerTimer);
      existing.lingerTimer = null;
      existing.lingerReason = null;
      existing.lingerGrantId = null;
      existing.grantId = grantId;
      if (existing.server.listening) this.opts.reporter.listening?.(grantId);
      else if (!existing.retryTimer) this.#listen(existing); // it lingered while its number was held
      return;
    }
    const server: PortServer = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const port: PortState = { port: portNumber, server, grantId, lingerReason: null, lingerGrantId: null, lingerTimer: null, retryTimer: null, binding: false };
    server[PORT] = port;
    this.#ports.set(portNumber, port);
    listenWithOnread(server, this.#onSocket);
    server.on('error', this.#onServerError);
    server.on('listening', this.#onListening);
    this.#listen(port);
  }

  #listen(port: PortState): void {
    if (port.server.listening || port.binding) return;
    port.binding = true;
    port.server.listen({ port: port.port, host: this.opts.listenHost, backlog: 511 });
  }

  #serverError(port: PortState, err: NodeJS.ErrnoException): void {
    port.binding = false;
    const current = this.#ports.get(port.port) === port;
    if (err.code === 'EADDRINUSE' && current && port.grantId && !this.#closed) {
      // Another socket of this host holds the number: most often an outgoing connection given it as
      // its local port (a grant range inside the kernel's ephemeral range; the start warns about
      // that). Those end: try again until the grant is done, rather than leave its user refused.
      // retryTimer stays set from the first failure until the port listens: one warning, not one a try.
      if (!port.retryTimer) this.opts.log.warn({ port: port.port, grant: port.grantId, err }, 'the granted port is in use on this host; trying again until the grant is done');
      port.retryTimer = this.#timer(LISTEN_RETRY_MS, () => {
        if (this.#ports.get(port.port) === port && port.grantId && !this.#closed) this.#listen(port);
        else port.retryTimer = null;
      });
      return;
    }
    this.opts.log.error({ port: port.port, err }, 'cannot listen on the granted port; this gateway cannot serve its grant');
    if (current) this.#ports.delete(port.port);
  }

  #linger(port: PortState, reason: RefusalReason): void {
    port.lingerGrantId = port.grantId;
    port.grantId = null;
    port.lingerReason = reason;
    if (port.lingerTimer) clearTimeout(port.lingerTimer);
    port.lingerTimer = this.#timer(this.opts.lingerMs, () => {
      if (port.grantId !== null) return;
      this.#ports.delete(port.port);
      if (port.retryTimer) clearTimeout(port.retryTimer);
      port.server.close();
    });
  }

  #accept(port: PortState, socket: net.Socket, session: RelaySession): void {
    socket.on('error', ignore); // a refused or reset client must not crash anything
    const peer = normaliseAddress(socket.remoteAddress);
    if (!this.opts.proxyProtocol.enabled) return this.#decide(port, socket, session, peer, undefined);
    if (!this.opts.proxyProtocol.sources.has(peer)) {
      // Not one of the load balancers: its header would name any client it likes. Nothing is read.
      this.opts.log.warn({ port: port.port, peer }, 'a connection from a peer outside STAGEDOOR_GATEWAY_PROXY_SOURCES on a PROXY protocol port: refused');
      return this.#refuse(port, socket, peer, 'proxy-protocol', port.grantId ?? port.lingerGrantId);
    }
    let got = Buffer.alloc(0);
    const timer = this.#timer(this.opts.proxyHeaderTimeoutMs ?? 5000, () => done({ kind: 'invalid', reason: 'timeout' }));
    const done = (r: { kind: 'ok'; address: string | null; rest: Buffer } | { kind: 'invalid'; reason: string }) => {
      clearTimeout(timer);
      session.up.intercept = null;
      socket.removeListener('data', onData);
      socket.pause();
      if (r.kind === 'invalid') return this.#refuse(port, socket, peer, 'proxy-protocol', port.grantId ?? port.lingerGrantId);
      this.#decide(port, socket, session, r.address ? normaliseAddress(r.address) : peer, r.rest);
    };
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const p = parseProxyV2(got);
      if (p.kind === 'invalid') done({ kind: 'invalid', reason: p.reason });
      else if (p.kind === 'ok') done({ kind: 'ok', address: p.source?.address ?? null, rest: got.subarray(p.length) });
    };
    if (session.clientUsesOnread) session.up.intercept = onData;
    else socket.on('data', onData);
    socket.resume();
  }

  #decide(port: PortState, socket: net.Socket, session: RelaySession, client: string, initial: Buffer | undefined): void {
    if (socket.destroyed) return;
    const g = port.grantId ? this.#grants.get(port.grantId) : undefined;
    const reason: RefusalReason | null =
      this.opts.refuseAll() ??
      (!g ? (port.lingerReason ?? 'no-grant') : client !== normaliseAddress(g.grant.clientAddress) ? 'wrong-client' : g.state !== 'issued' ? 'used' : this.opts.now() >= g.validUntilMs ? 'expired' : null);
    if (reason || !g) return this.#refuse(port, socket, client, reason ?? 'no-grant', g?.grant.id ?? port.lingerGrantId);

    g.state = 'active';
    g.session = session;
    g.startedAtMs = this.opts.now();
    g.clientAddress = client;
    if (g.timer) clearTimeout(g.timer);
    g.timer = g.grant.sessionUntil ? this.#timer(Date.parse(g.grant.sessionUntil) - this.opts.now(), () => session.close('session-expired')) : null;
    this.opts.log.info({ grant: g.grant.id, port: port.port, client, target: `${g.grant.targetAddress}:${g.grant.targetPort}` }, 'session started');
    this.opts.reporter.sessionStarted(g.grant, client, new Date(g.startedAtMs));
    session.owner = g;
    session.onEnd = this.#onSessionEnd;
    session.native = this.nativeRelay;
    session.start(socket, { host: g.grant.targetAddress, port: g.grant.targetPort, connectTimeoutMs: this.opts.connectTimeoutMs }, initial);
  }

  #sessionEnded(g: GrantState, outcome: RelayOutcome): void {
    this.#endedBytes.up += outcome.bytesUp;
    this.#endedBytes.down += outcome.bytesDown;
    g.session = null;
    this.opts.log.info({ grant: g.grant.id, port: g.grant.port, ...outcome }, 'session ended');
    this.opts.reporter.sessionEnded(g.grant, outcome, new Date(this.opts.now()));
    if (this.#grants.get(g.grant.id) === g) this.#finish(g, outcome.reason.startsWith('revoked') ? 'revoked' : 'used');
  }

  #refuse(port: PortState, socket: net.Socket, client: string, reason: RefusalReason, grantId: string | null): void {
    this.opts.log.info({ port: port.port, client, reason, grant: grantId }, 'connection refused');
    // RST, not FIN: the client learns at once that nothing is there for it.
    if (!socket.destroyed) socket.resetAndDestroy();
    this.opts.reporter.refused(port.port, client, reason, grantId);
  }

  #timer(ms: number, fn: () => void): NodeJS.Timeout {
    // setTimeout caps near 24.8 days; a longer validity is re-armed when it fires early.
    const t = setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    t.unref();
    return t;
  }

  /** Stop: close every listener and session (process shutdown). */
  close(): void {
    this.#closed = true;
    for (const g of this.#grants.values()) {
      if (g.timer) clearTimeout(g.timer);
      g.session?.close('gateway-shutdown');
    }
    for (const p of this.#ports.values()) {
      if (p.lingerTimer) clearTimeout(p.lingerTimer);
      if (p.retryTimer) clearTimeout(p.retryTimer);
      p.server.close();
    }
    this.#ports.clear();
  }
}

function ignore(): void {}

function lingerReasonFor(reason: string): RefusalReason {
  if (reason.startsWith('revoked')) return 'revoked';
  if (reason === 'used-elsewhere' || reason === 'used') return 'used';
  if (reason === 'expired') return 'expired';
  return 'closed';
}
