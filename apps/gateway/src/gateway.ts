import type { RefusalReason } from '@stagedoor/contract';
import type { AddressList } from './addresses.ts';
import { BrokerChannel } from './broker-channel.ts';
import type { Log } from './log.ts';
import { isPortGrant, PortForwarder, type Reporter } from './port-forward.ts';
import { GATEWAY_VERSION } from './version.ts';
import type { RelayEngineChoice } from './native-relay.ts';
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
  relay?: { engine: RelayEngineChoice; threads: number };
}

/**
 * One gateway: the port-forward engine and its control channel. It holds no credentials but its
 * own, decides nothing the broker did not grant, and fails closed: once no broker has been heard
 * from for `failClosedMs`, new connections are refused (live sessions run on as their grants allow).
 */
export class Gateway {
  readonly forwarder: Forwarder;
  readonly channel: BrokerChannel;
  status = 'unknown';
  #failClosedLogged = false;
  #watch: NodeJS.Timeout | null = null;
  readonly #now: () => number;

  constructor(private readonly opts: GatewayOptions) {
    this.#now = opts.now ?? Date.now;
    const log = opts.log;
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
      snapshot: () => ({ sessions: this.forwarder.sessions(), grants: this.forwarder.grantCount, bytes: this.forwarder.totalBytes(), failClosed: this.failClosed }),
      onWelcome: (w) => {
        this.status = w.status;
        this.forwarder.replaceGrants(w.grants.filter(isPortGrant));
        this.forwarder.refusalChanged?.(this.refusing());
      },
      onGrant: (g) => {
        if (isPortGrant(g)) this.forwarder.addGrant(g);
      },
      onRevoke: (id, reason) => this.forwarder.revoke(id, reason),
      onStatus: (s) => {
        log.info({ status: s }, 'status changed by the broker');
        this.status = s;
        this.forwarder.refusalChanged?.(this.refusing());
      },
      onRefused: (code, reason) => log.error({ code, reason }, 'the broker refused this gateway\'s credential: enrol it again (stagedoor gateway --enroll <token>)'),
    });
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
    this.channel.start();
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
    if (this.#watch) clearInterval(this.#watch);
    this.channel.stop();
    this.forwarder.close();
  }
}
