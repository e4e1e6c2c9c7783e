import type { HelloMessage, RefusalReason } from '@stagedoor/contract';
import type { AddressList } from './addresses.ts';
import { BrokerChannel } from './broker-channel.ts';
import type { Log } from './log.ts';
import { isPortGrant, PortForwarder, type Reporter } from './port-forward.ts';
import { GATEWAY_VERSION } from './version.ts';
import { useRelayEngine, type RelaySettings } from './native-relay.ts';
import type { Admit } from './routed/admission.ts';
import { createAdmitter } from './routed/admitter.ts';
import { isRoutedGrant, RoutedGrants } from './routed/routed-grants.ts';
import { RoutedListeners } from './routed/routed-listeners.ts';
import type { TlsCertificate } from './routed/tls-certificate.ts';
import { WorkerPool, type Forwarder } from './workers.ts';

export interface GatewayOptions {
  brokerUrls: string[];
  credential: string;
  listenHost: string;
  proxyProtocol: { enabled: boolean; sources: AddressList };
  failClosedMs: number;
  lingerMs: number;
  connectTimeoutMs: number;
  log: Log;
  now?: () => number;
  backoffMs?: { min: number; max: number };
  /** Relay processes; 1 (the default) relays in this process. */
  workers?: number;
  /** The byte mover of every relay process (default: native when built, 1 thread). */
  relay?: RelaySettings;
  /** The routed single-port modes (ADR 0017); absent: none (port forward only). */
  routed?: RoutedOptions;
}

export interface RoutedOptions {
  /** The routed listeners: a port, 0 for any free one (tests), null for none. */
  rdpPort: number | null;
  tlsPort: number | null;
  sshPort?: number | null;
  tunnelPort?: number | null;
  /** The SSH jump host's private key (made at enrolment); without it the SSH listener does not run. */
  sshHostKey?: { privateKey: string; publicKey: string } | null;
  /** The HTTPS listener's certificate; without it the tunnel does not run. */
  certificate?: TlsCertificate | null;
  /** How long a claim waits for the broker (default 5 s). */
  claimTimeoutMs?: number;
  /** Bounds on a first packet (default 16 KiB, 10 s). */
  firstPacket?: { maxBytes: number; timeoutMs: number };
}

/**
 * One gateway: the port-forward engine and its control channel. It holds no credentials but its
 * own, decides nothing the broker did not grant, and fails closed: once no broker has been heard
 * from for `failClosedMs`, new connections are refused (live sessions run on as their grants allow).
 */
export class Gateway {
  readonly forwarder: Forwarder;
  readonly channel: BrokerChannel;
  /** The routed grants this gateway holds (keyed by token hash). */
  readonly routedGrants = new RoutedGrants();
  /** The one grant check of every routed mode: the SSH jump host and the tunnel plug in here. */
  readonly admit: Admit;
  /** The routed listeners (RDP routing token, TLS SNI, SSH jump host, HTTPS tunnel); null without routed options. */
  readonly listeners: RoutedListeners | null = null;
  /** Resolves once every routed listener listens (or failed to, logged). */
  listening: Promise<void> = Promise.resolve();
  status = 'unknown';
  /** The byte mover this process relays with (relay workers choose the same way), and why not native. */
  readonly relayEngine: { engine: 'native' | 'js'; reason?: string };
  #failClosedLogged = false;
  #stopped = false;
  #watch: NodeJS.Timeout | null = null;
  readonly #now: () => number;

  constructor(private readonly opts: GatewayOptions) {
    this.#now = opts.now ?? Date.now;
    const log = opts.log;
    this.relayEngine = useRelayEngine(opts.relay?.engine ?? 'auto', opts.relay?.threads ?? 1, opts.relay?.halfCloseSeconds);
    const reporter: Reporter = {
      sessionStarted: (grant, clientAddress, at) => this.channel.report({ type: 'session-started', grantId: grant.id, clientAddress, at: at.toISOString() }),
      sessionEnded: (grant, o, at) => this.channel.report({ type: 'session-ended', grantId: grant.id, reason: o.reason.slice(0, 200), bytesUp: o.bytesUp, bytesDown: o.bytesDown, at: at.toISOString() }),
      refused: (port, clientAddress, reason, grantId) => this.channel.report({ type: 'refused', port, clientAddress: clientAddress || 'unknown', reason, grantId, at: new Date(this.#now()).toISOString() }),
    };
    const shared = { listenHost: opts.listenHost, lingerMs: opts.lingerMs, connectTimeoutMs: opts.connectTimeoutMs, relay: opts.relay };
    this.forwarder =
      (opts.workers ?? 1) > 1
        ? new WorkerPool(opts.workers!, { options: { ...shared, proxyProtocol: { enabled: opts.proxyProtocol.enabled, sources: opts.proxyProtocol.sources.entries } }, reporter, log })
        : new PortForwarder({ ...shared, proxyProtocol: opts.proxyProtocol, now: this.#now, refuseAll: () => this.refusing(), log: log.child({ area: 'relay' }), reporter });
    this.channel = new BrokerChannel({
      urls: opts.brokerUrls,
      credential: opts.credential,
      version: GATEWAY_VERSION,
      log: log.child({ area: 'channel' }),
      now: this.#now,
      backoffMs: opts.backoffMs,
      claimTimeoutMs: opts.routed?.claimTimeoutMs,
      identity: opts.routed ? () => this.#identity() : undefined,
      snapshot: () => this.#snapshot(),
      onWelcome: (w) => {
        this.status = w.status;
        this.forwarder.replaceGrants(w.grants.filter(isPortGrant));
        this.routedGrants.replace(w.grants.filter(isRoutedGrant));
        this.forwarder.refusalChanged?.(this.refusing());
      },
      onGrant: (g) => {
        if (isPortGrant(g)) this.forwarder.addGrant(g);
        else if (isRoutedGrant(g)) this.routedGrants.add(g);
      },
      onRevoke: (id, reason) => {
        this.forwarder.revoke(id, reason);
        this.routedGrants.revoke(id, reason);
      },
      onStatus: (s) => {
        log.info({ status: s }, 'status changed by the broker');
        this.status = s;
        this.forwarder.refusalChanged?.(this.refusing());
      },
      onRefused: (code, reason) => log.error({ code, reason }, 'the broker refused this gateway\'s credential: enrol it again (stagedoor gateway --enroll <token>)'),
    });
    this.admit = createAdmitter({
      grants: this.routedGrants,
      claim: (grantId, clientAddress, listener) => this.channel.claim(grantId, clientAddress, listener),
      refusing: () => this.refusing(),
      reporter: {
        sessionStarted: (grantId, clientAddress, at, session) => this.channel.report({ type: 'session-started', grantId, ...(session ? { session } : {}), clientAddress, at: at.toISOString() }),
        sessionEnded: (grantId, o, at, session) => this.channel.report({ type: 'session-ended', grantId, ...(session ? { session } : {}), reason: o.reason.slice(0, 200), bytesUp: o.bytesUp, bytesDown: o.bytesDown, at: at.toISOString() }),
        refused: reporter.refused,
      },
      portOf: (l) => this.#routedPort(l) ?? 1,
      now: this.#now,
      log: log.child({ area: 'routed' }),
    });
    if (opts.routed) {
      // Routed listeners run in this process whatever the relay workers (ADR 0017), on its relay engine.
      const r = opts.routed;
      this.listeners = new RoutedListeners({
        host: opts.listenHost,
        ports: { rdp: r.rdpPort, tls: r.tlsPort, ssh: r.sshPort ?? null, tunnel: r.tunnelPort ?? null },
        proxyProtocol: opts.proxyProtocol,
        admit: this.admit,
        refused: (p, client, reason) => reporter.refused(p, client, reason, null),
        healthy: () => this.channel.connected && this.refusing() === null,
        connectTimeoutMs: opts.connectTimeoutMs,
        nativeRelay: this.relayEngine.engine === 'native',
        firstPacket: r.firstPacket,
        sshHostKey: r.sshHostKey?.privateKey ?? null,
        certificate: r.certificate ?? null,
        log: log.child({ area: 'routed' }),
      });
    }
  }

  /** The start line: which relay engine moves the bytes (and why not the native one) is the first thing asked when throughput disappoints. */
  logStarted(fields: Record<string, unknown>): void {
    const { engine, reason } = this.relayEngine;
    this.opts.log.info({ ...fields, relayEngine: engine, ...(reason ? { relayEngineReason: reason } : {}) }, `gateway started: relay engine ${engine}`);
  }

  #snapshot() {
    const port = this.forwarder.totalBytes();
    const routed = this.routedGrants.totalBytes();
    return {
      sessions: [...this.forwarder.sessions(), ...this.routedGrants.sessions()],
      grants: this.forwarder.grantCount + this.routedGrants.size,
      bytes: { up: port.up + routed.up, down: port.down + routed.down },
      failClosed: this.failClosed,
    };
  }

  /** The port a routed listener accepts on now (null: it does not run). */
  #routedPort(listener: 'rdp' | 'ssh' | 'tls' | 'tunnel'): number | null {
    return this.listeners?.portOf(listener) ?? null;
  }

  #identity(): HelloMessage['identity'] {
    const r = this.opts.routed;
    return {
      sshHostKey: r?.sshHostKey && this.#routedPort('ssh') !== null ? r.sshHostKey.publicKey : null,
      tlsCertificateSha256: r?.certificate && this.#routedPort('tunnel') !== null ? r.certificate.fingerprint256 : null,
      listeners: { rdp: this.#routedPort('rdp'), ssh: this.#routedPort('ssh'), tls: this.#routedPort('tls'), tunnel: this.#routedPort('tunnel') },
    };
  }

  /** True once no broker has been heard from for the grace period (or never was). */
  get failClosed(): boolean {
    const last = this.channel.lastContactMs;
    return last === 0 || this.#now() - last > this.opts.failClosedMs;
  }

  /** Why every new connection is refused now, or null. */
  refusing(): RefusalReason | null {
    if (this.failClosed) return 'fail-closed';
    if (this.status === 'disabled') return 'disabled';
    return null;
  }

  start(): this {
    // Listeners first, so that the hello names the ports they listen on (binding takes a moment;
    // without routed listeners the channel starts at once).
    if (this.listeners) {
      this.listening = this.listeners.listen();
      void this.listening.then(() => {
        if (!this.#stopped) this.channel.start();
      });
    } else this.channel.start();
    this.#watch = setInterval(() => {
      this.forwarder.refusalChanged?.(this.refusing());
      const closed = this.failClosed && this.channel.lastContactMs !== 0;
      if (closed !== this.#failClosedLogged) {
        this.#failClosedLogged = closed;
        if (closed) this.opts.log.error({ graceSeconds: this.opts.failClosedMs / 1000 }, 'no broker reachable for longer than the grace period: refusing new connections (fail closed)');
        else this.opts.log.info({}, 'broker reachable again: accepting connections');
      }
    }, 250); // not unref'd: a started gateway runs until stop(), whatever its channel is doing
    return this;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#watch) clearInterval(this.#watch);
    this.channel.stop();
    this.forwarder.close();
    this.listeners?.close();
    this.routedGrants.close();
  }
}
