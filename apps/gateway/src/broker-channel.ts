import { BrokerToGateway, GATEWAY_CHANNEL_PATH, GATEWAY_CHANNEL_VERSION, type GatewayReport, type GatewayToBroker, type HelloMessage, type RefusalReason, type RoutedListener, type WelcomeMessage } from '@stagedoor/contract';
import WebSocket from 'ws';
import type { Log } from './log.ts';

type Report = GatewayReport;
type ReportBody = Report extends infer R ? (R extends { seq: number } ? Omit<R, 'seq'> : never) : never;

export interface BrokerChannelOptions {
  /** Broker node URLs (http or https); on loss the channel moves to the next one. */
  urls: string[];
  credential: string;
  version: string;
  log: Log;
  /** What the gateway carries now, for the hello and each heartbeat. */
  snapshot: () => {
    sessions: { grantId: string; bytesUp: number; bytesDown: number; startedAt: string; clientAddress: string; session?: number }[];
    grants: number;
    bytes: { up: number; down: number };
    failClosed: boolean;
  };
  onWelcome: (welcome: WelcomeMessage) => void;
  onGrant: (grant: Extract<BrokerToGateway, { type: 'grant' }>['grant']) => void;
  onRevoke: (grantId: string, reason: string) => void;
  onStatus: (status: string) => void;
  /** The credential was refused (deleted gateway, rotated credential): keep trying, slowly, and say so. */
  onRefused?: (code: number, reason: string) => void;
  now?: () => number;
  /** Reconnect backoff bounds (tests shorten them). */
  backoffMs?: { min: number; max: number };
  connectTimeoutMs?: number;
  /** How long a claim waits for the broker's answer before it counts as refused (default 5 s). */
  claimTimeoutMs?: number;
  /** What clients pin and which routed listeners run, for the hello (ADR 0017); none without routed modes. */
  identity?: () => HelloMessage['identity'];
}

/** `session`: the number of the session an accepted claim started (absent from a broker before the field). */
export type ClaimAnswer = { ok: boolean; reason: RefusalReason | null; session?: number };

const OUTBOX_MAX = 50_000;
const REFUSALS_PER_SECOND = 20;
const REFUSAL_BURST = 100;

/**
 * The authenticated control channel to the broker: a WebSocket to one broker node at a time, moving
 * to the next URL when the node is lost. Reports carry a sequence number and stay in the outbox
 * until the broker acknowledges them, so a report sent just before a node died reaches another node
 * after the reconnect. `lastContactMs` is what fail-closed measures.
 */
export class BrokerChannel {
  #ws: WebSocket | null = null;
  #urlIndex = 0;
  #attempt = 0;
  #seq = 0;
  readonly #outbox = new Map<number, Report>();
  /** Reports queued for the next flush (sent together at the end of this event-loop turn). */
  #unsent: Report[] = [];
  #ready = false;
  #stopped = false;
  #heartbeatMs = 5000;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #awaitingPong = false;
  #lastBytes = { up: 0, down: 0, at: 0 };
  #refusalTokens = REFUSAL_BURST;
  #refusalRefillAt = 0;
  #refusalsDropped = 0;
  #claimId = 0;
  /** Claims sent and not yet answered, by claim id. */
  readonly #claims = new Map<number, { resolve: (a: ClaimAnswer) => void; timer: NodeJS.Timeout }>();
  /** When the broker was last heard from (welcome, any message, a pong); 0 = never. */
  lastContactMs = 0;
  brokerNode: string | null = null;

  constructor(private readonly opts: BrokerChannelOptions) {
    if (opts.urls.length === 0) throw new Error('no broker URL');
  }

  get connected(): boolean {
    return this.#ready;
  }

  get pendingReports(): number {
    return this.#outbox.size;
  }

  #now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  start(): void {
    this.#stopped = false;
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    this.#ready = false;
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#failClaims();
    this.#ws?.close(1001, 'gateway shutting down');
    this.#ws?.terminate();
    this.#ws = null;
  }

  /** Queue a report; it is sent now if connected, else after the next welcome. */
  report(body: ReportBody): void {
    if (body.type === 'refused' && !this.#takeRefusalToken()) {
      this.#refusalsDropped++;
      return;
    }
    const msg = { ...body, seq: ++this.#seq } as Report;
    this.#outbox.set(msg.seq, msg);
    if (this.#outbox.size > OUTBOX_MAX) this.#trimOutbox();
    if (!this.#ready) return;
    // Reports of one event-loop turn leave together, in one frame: at a thousand sessions a second
    // that is a fraction of the frames, acknowledgements and wake-ups.
    this.#unsent.push(msg);
    if (this.#unsent.length === 1) setImmediate(() => this.#flush());
  }

  /**
   * Ask the broker whether a routed connection may start a session of this grant (ADR 0017: single
   * use across the cluster, reconnects). Fails closed: no channel, no answer within the claim
   * timeout, or the channel lost meanwhile all answer `claim-timeout`, and a late answer is ignored.
   */
  claim(grantId: string, clientAddress: string, listener: RoutedListener): Promise<ClaimAnswer> {
    if (!this.#ready) return Promise.resolve({ ok: false, reason: 'claim-timeout' });
    const claimId = ++this.#claimId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#settleClaim(claimId, { ok: false, reason: 'claim-timeout' }), this.opts.claimTimeoutMs ?? 5000);
      timer.unref();
      this.#claims.set(claimId, { resolve, timer });
      this.#sendRaw({ type: 'claim', claimId, grantId, clientAddress, listener });
    });
  }

  #settleClaim(claimId: number, answer: ClaimAnswer): void {
    const pending = this.#claims.get(claimId);
    if (!pending) return; // answered after its timeout, or never ours
    this.#claims.delete(claimId);
    clearTimeout(pending.timer);
    pending.resolve(answer);
  }

  /** The channel is gone: no pending claim can be answered on it. */
  #failClaims(): void {
    for (const id of [...this.#claims.keys()]) this.#settleClaim(id, { ok: false, reason: 'claim-timeout' });
  }

  #flush(): void {
    const batch = this.#unsent;
    this.#unsent = [];
    if (batch.length === 0 || !this.#ready) return;
    for (let i = 0; i < batch.length; i += 10_000) {
      const part = batch.slice(i, i + 10_000);
      this.#sendRaw(part.length === 1 ? part[0]! : { type: 'batch', reports: part });
    }
  }

  #takeRefusalToken(): boolean {
    const now = this.#now();
    this.#refusalTokens = Math.min(REFUSAL_BURST, this.#refusalTokens + ((now - this.#refusalRefillAt) / 1000) * REFUSALS_PER_SECOND);
    this.#refusalRefillAt = now;
    if (this.#refusalTokens < 1) return false;
    this.#refusalTokens -= 1;
    return true;
  }

  #trimOutbox(): void {
    // Refusal reports go first: session reports keep the broker's books right.
    for (const [seq, m] of this.#outbox) {
      if (this.#outbox.size <= OUTBOX_MAX) return;
      if (m.type === 'refused') {
        this.#outbox.delete(seq);
        this.#refusalsDropped++;
      }
    }
    while (this.#outbox.size > OUTBOX_MAX) this.#outbox.delete(this.#outbox.keys().next().value!);
  }

  #connect(): void {
    if (this.#stopped) return;
    const base = this.opts.urls[this.#urlIndex % this.opts.urls.length]!;
    const url = new URL(GATEWAY_CHANNEL_PATH, base.replace(/^http/, 'ws'));
    const log = this.opts.log.child({ broker: base });
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.opts.credential}` }, handshakeTimeout: this.opts.connectTimeoutMs ?? 10_000, maxPayload: 64 * 1024 * 1024 });
    this.#ws = ws;
    ws.on('open', () => {
      log.info({}, 'control channel open; saying hello');
      const snap = this.opts.snapshot();
      const identity = this.opts.identity?.();
      this.#sendRaw({ type: 'hello', protocol: GATEWAY_CHANNEL_VERSION, version: this.opts.version, sessions: snap.sessions, ...(identity ? { identity } : {}) });
    });
    ws.on('message', (data) => {
      this.lastContactMs = this.#now();
      this.#awaitingPong = false;
      let msg: BrokerToGateway;
      try {
        const raw = JSON.parse(String(data)) as { type?: unknown; seq?: unknown };
        // Acknowledgements are most of the traffic: take them without the schema walk.
        if (raw.type === 'ack' && Number.isSafeInteger(raw.seq)) {
          this.#acked(raw.seq as number);
          return;
        }
        msg = BrokerToGateway.parse(raw);
      } catch (err) {
        log.warn({ err }, 'invalid message from the broker; reconnecting');
        ws.terminate();
        return;
      }
      this.#onMessage(msg, log);
    });
    ws.on('pong', () => {
      this.lastContactMs = this.#now();
      this.#awaitingPong = false;
    });
    ws.on('unexpected-response', (_req, res) => {
      const code = res.statusCode ?? 0;
      log.warn({ status: code }, 'the broker refused the control channel');
      if (code === 401 || code === 403) this.opts.onRefused?.(code, 'credential refused');
      ws.terminate();
    });
    ws.on('error', (err) => log.warn({ err }, 'control channel error'));
    ws.on('close', (code, reason) => {
      if (this.#ws !== ws) return;
      this.#ready = false;
      this.#unsent = [];
      this.#ws = null;
      this.#failClaims();
      if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
      this.#heartbeatTimer = null;
      if (code >= 4400 && code < 4500) this.opts.onRefused?.(code, reason.toString());
      if (this.#stopped) return;
      log.warn({ code, reason: reason.toString() }, 'control channel lost; trying the next broker');
      this.#urlIndex++;
      this.#scheduleReconnect();
    });
  }

  #scheduleReconnect(): void {
    const { min, max } = this.opts.backoffMs ?? { min: 250, max: 5000 };
    // Every URL once quickly, then back off: a dead node should not delay reaching a live one.
    const round = Math.floor(this.#attempt / this.opts.urls.length);
    const delay = Math.min(max, min * 2 ** round) * (0.5 + Math.random() / 2);
    this.#attempt++;
    // Not unref'd: while it waits to reconnect, this timer is what keeps a gateway process alive.
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #onMessage(msg: BrokerToGateway, log: Log): void {
    switch (msg.type) {
      case 'welcome': {
        this.#ready = true;
        this.#attempt = 0;
        this.brokerNode = msg.brokerNode;
        this.#heartbeatMs = msg.heartbeatSeconds * 1000;
        log.info({ node: msg.brokerNode, grants: msg.grants.length, status: msg.status }, 'welcomed by the broker');
        this.opts.onWelcome(msg);
        // Reports the broker has not acknowledged, in order; it applies each idempotently.
        this.#unsent = [...this.#outbox.values()];
        this.#flush();
        this.#startHeartbeat();
        return;
      }
      case 'grant':
        return this.opts.onGrant(msg.grant);
      case 'revoke':
        return this.opts.onRevoke(msg.grantId, msg.reason);
      case 'status':
        return this.opts.onStatus(msg.status);
      case 'ack':
        this.#acked(msg.seq);
        return;
      case 'claimed':
        // An ok without a reason, or a refusal with one; a refusal without one is still a refusal.
        this.#settleClaim(msg.claimId, msg.ok ? { ok: true, reason: null, ...(msg.session ? { session: msg.session } : {}) } : { ok: false, reason: msg.reason ?? 'claim-timeout' });
        return;
    }
  }

  /** The broker applies a channel's reports in order: an ack covers every report up to it. */
  #acked(seq: number): void {
    for (const k of this.#outbox.keys()) {
      if (k > seq) break;
      this.#outbox.delete(k);
    }
  }

  #startHeartbeat(): void {
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#heartbeat();
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), this.#heartbeatMs);
    this.#heartbeatTimer.unref();
  }

  #heartbeat(): void {
    const ws = this.#ws;
    if (!ws || !this.#ready) return;
    if (this.#awaitingPong && this.#now() - this.lastContactMs > 2 * this.#heartbeatMs) {
      this.opts.log.warn({}, 'the broker stopped answering; reconnecting');
      ws.terminate();
      return;
    }
    const snap = this.opts.snapshot();
    const now = this.#now();
    const seconds = this.#lastBytes.at ? Math.max(0.001, (now - this.#lastBytes.at) / 1000) : 0;
    const rate = (a: number, b: number) => (seconds ? Math.max(0, (a - b) / seconds) : 0);
    this.#sendRaw({
      type: 'heartbeat',
      at: new Date(now).toISOString(),
      sessions: snap.sessions.map((s) => ({ grantId: s.grantId, bytesUp: s.bytesUp, bytesDown: s.bytesDown, ...(s.session ? { session: s.session } : {}) })),
      grants: snap.grants,
      bytesInPerSecond: rate(snap.bytes.up, this.#lastBytes.up),
      bytesOutPerSecond: rate(snap.bytes.down, this.#lastBytes.down),
      refusalsDropped: this.#refusalsDropped,
      failClosed: snap.failClosed,
    });
    this.#refusalsDropped = 0;
    this.#lastBytes = { ...snap.bytes, at: now };
    this.#awaitingPong = true;
    ws.ping();
  }

  #sendRaw(msg: GatewayToBroker): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(msg));
  }
}
