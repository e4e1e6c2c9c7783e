import { ClaimMessage, GATEWAY_CHANNEL_VERSION, GatewayToBroker, type BrokerToGateway, type ChannelGrant, type GatewayReport } from '@stagedoor/contract';
import type { Logger } from 'pino';
import type { Database } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { systemActor } from '../identity/actor.ts';
import type { ClaimAnswer, GatewayClaims } from './claims.ts';
import type { GatewayReports } from './gateway-reports.ts';
import type { GatewayRow, GatewaysRepository } from './gateways.repository.ts';
import { diffGrants, grantsForGateway } from './plan.ts';
import { deadLetter, failsEveryTime, seqOf, splitReports } from './report-intake.ts';
import { toChannelGrant, type GatewayPolicy, type GrantDelivery } from './types.ts';

/** The transport under a channel: a WebSocket in production, anything with these in tests. */
export interface ChannelSocket {
  send(data: string): void;
  close(code: number, reason: string): void;
}

interface Channel {
  gateway: GatewayRow;
  socket: ChannelSocket;
  remoteAddress: string | null;
  /**
   * Grant ids this gateway holds, as far as this node sent them, each with when it was sent (ms).
   * A pass removes only grants sent before its database read began: one delivered after the read
   * (committed after it) is not in what the pass read, and must not be taken back.
   */
  held: Map<string, number>;
  /** Grants this node revoked on the gateway, with when: a pass that read them live before must not send them again. */
  revoked: Map<string, number>;
  ready: boolean;
  closed: boolean;
  lastHeardMs: number;
  queue: Promise<void>;
  log: Logger;
}

/** Close codes the gateway understands: 44xx are final for this credential, others mean "reconnect". */
export const CLOSE = { replaced: 4000, invalid: 4400, unauthorised: 4401, deleted: 4403, silent: 4408, error: 1011 } as const;
const SYNC_MS = 1000;
/** How long a revocation is remembered against passes that read the database before it. */
const REVOKED_MEMORY_MS = 60_000;

/**
 * The control channels held by this broker node. It answers reports, and keeps each gateway's grant
 * table equal to the database: grants issued or revoked on this node go out at once, and a pass
 * every second (or sooner when kicked) sends what other nodes changed. The database stays the only
 * state: a node that dies loses nothing, its gateways reconnect elsewhere and get their set again.
 */
export class ChannelHub implements GrantDelivery {
  readonly #channels = new Map<string, Channel>();
  #timer: NodeJS.Timeout | null = null;
  #kicks: NodeJS.Timeout[] = [];
  #syncing: Promise<void> | null = null;
  #shuttingDown = false;

  #unlisten: Promise<(() => Promise<void>) | undefined> | undefined;

  constructor(
    private readonly deps: {
      repo: GatewaysRepository;
      reports: GatewayReports;
      claims: GatewayClaims;
      audit: AuditService;
      log: Logger;
      nodeId: string;
      policy: GatewayPolicy;
      /** Another node revoked grants: pass now instead of within the second (LISTEN on `signalChannel`). */
      signals?: Pick<Database, 'listen'>;
      signalChannel?: string;
    },
  ) {}

  get size(): number {
    return this.#channels.size;
  }

  isConnected(gatewayId: string): boolean {
    return this.#channels.get(gatewayId)?.ready ?? false;
  }

  /**
   * A gateway authenticated; returns the handlers the transport calls. Messages are handled one at
   * a time, in order; `message` resolves once this one has been (the transport need not wait).
   */
  attach(gateway: GatewayRow, socket: ChannelSocket, remoteAddress: string | null): { message(text: string): Promise<void>; closed(code: number, reason: string): void } {
    const previous = this.#channels.get(gateway.id);
    const ch: Channel = { gateway, socket, remoteAddress, held: new Map(), revoked: new Map(), ready: false, closed: false, lastHeardMs: Date.now(), queue: Promise.resolve(), log: this.deps.log.child({ gateway: gateway.id, name: gateway.name }) };
    this.#channels.set(gateway.id, ch);
    if (previous) this.#drop(previous, CLOSE.replaced, 'replaced by a newer channel of this gateway');
    this.#ensureTimer();
    this.#listen();
    ch.log.info({ remoteAddress }, 'gateway channel open');
    return {
      message: (text) => {
        ch.lastHeardMs = Date.now();
        // A claim holds a client's connection open on the gateway: answer it at once, beside the
        // queue of reports rather than behind it (a batch of reports can take a while to store).
        const claim = ch.ready ? claimOf(text) : null;
        if (claim) return this.#claim(ch, claim);
        ch.queue = ch.queue.then(() => this.#handle(ch, text)).catch((err: unknown) => {
          // Only failures a retry may cure get here (report-intake.ts): the gateway resends after the reconnect.
          ch.log.error({ err }, 'gateway report failed; closing the channel so that the gateway resends');
          this.#drop(ch, CLOSE.error, 'broker error');
        });
        return ch.queue;
      },
      closed: (code, reason) => {
        if (ch.closed) return;
        ch.closed = true;
        if (this.#channels.get(gateway.id) === ch) this.#channels.delete(gateway.id);
        ch.log.info({ code, reason }, 'gateway channel closed');
        this.#recordClose(ch, reason || `code ${code}`);
        if (this.#channels.size === 0) this.#stopTimer();
      },
    };
  }

  async #handle(ch: Channel, text: string): Promise<void> {
    if (ch.closed) return;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return this.#drop(ch, CLOSE.invalid, 'message is not JSON');
    }
    const reports = ch.ready ? splitReports(raw) : null;
    if (reports) return this.#reports(ch, reports.valid, reports.rejected);
    const parsed = GatewayToBroker.safeParse(raw);
    if (!parsed.success) return this.#drop(ch, CLOSE.invalid, `invalid message: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
    const msg = parsed.data;
    if (!ch.ready && msg.type !== 'hello') return this.#drop(ch, CLOSE.invalid, 'the first message must be hello');
    switch (msg.type) {
      case 'hello': {
        const { gateway, grants } = await this.deps.reports.hello(ch.gateway, msg, this.deps.nodeId, ch.remoteAddress);
        ch.gateway = gateway;
        const at = Date.now();
        ch.held = new Map(grants.map((g) => [g.id, at]));
        this.#send(ch, { type: 'welcome', protocol: GATEWAY_CHANNEL_VERSION, gatewayId: gateway.id, name: gateway.name, cluster: gateway.cluster, status: gateway.status as 'active', brokerNode: this.deps.nodeId, heartbeatSeconds: this.deps.policy.heartbeatSeconds, grants });
        ch.ready = true;
        this.kick(); // grants issued while the welcome was being built
        return;
      }
      case 'heartbeat': {
        for (const r of await this.deps.reports.heartbeat(ch.gateway, msg, this.deps.nodeId)) this.#revokeOn(ch, r.grantId, r.reason);
        return;
      }
      case 'claim':
        return this.#claim(ch, msg);
      default:
        // Reports before the welcome: the first message must be hello.
        return this.#drop(ch, CLOSE.invalid, 'the first message must be hello');
    }
  }

  /**
   * Apply reports in order; dead-letter those that can never be applied (invalid, or failing the same
   * way every time), then acknowledge up to the last. A failure a retry may cure propagates: the
   * channel closes unacknowledged and the gateway resends (applying is idempotent).
   */
  async #reports(ch: Channel, valid: GatewayReport[], rejected: { seq: number | null; raw: unknown; why: string }[]): Promise<void> {
    for (const r of rejected) await this.#deadLetter(ch, r.raw, r.why);
    for (const report of valid) {
      if (report.type === 'session-ended') ch.held.delete(report.grantId);
      try {
        for (const r of await this.deps.reports.report(ch.gateway, report, ch.remoteAddress)) this.#revokeOn(ch, r.grantId, r.reason);
      } catch (err) {
        if (!failsEveryTime(err)) throw err;
        await this.#deadLetter(ch, report, `the report cannot be applied: ${(err as Error).message}`);
      }
    }
    const last = Math.max(0, ...valid.map((r) => r.seq), ...rejected.map((r) => seqOf(r.raw) ?? 0));
    if (last > 0) this.#send(ch, { type: 'ack', seq: last });
  }

  /**
   * Answer a routed claim (ADR 0017). A refusal as `in-use` of a session this very gateway carries
   * may be the end of that session still waiting in this channel's queue (an RDP auto-reconnect comes right after it):
   * wait once for the reports received before the claim, and decide again. A failure refuses (fail
   * closed); the gateway reports the refusal.
   */
  async #claim(ch: Channel, msg: ClaimMessage): Promise<void> {
    let answer: ClaimAnswer;
    try {
      answer = await this.deps.claims.claim(ch.gateway, msg);
      // (No carrier any more: that end was applied a moment ago, between the claim and this look.)
      const carrier = !answer.ok && answer.reason === 'in-use' ? await this.deps.claims.carrier(msg.grantId) : undefined;
      if (carrier === ch.gateway.id || carrier === null) {
        await ch.queue.catch(() => undefined);
        answer = await this.deps.claims.claim(ch.gateway, msg);
      }
    } catch (err) {
      ch.log.warn({ err, grant: msg.grantId }, 'routed claim failed; refused (fail closed)');
      answer = { ok: false, reason: 'fail-closed' };
    }
    this.#send(ch, answer.ok ? { type: 'claimed', claimId: msg.claimId, ok: true, reason: null, session: answer.session } : { type: 'claimed', claimId: msg.claimId, ok: false, reason: answer.reason });
  }

  async #deadLetter(ch: Channel, report: unknown, why: string): Promise<void> {
    ch.log.warn({ why, seq: seqOf(report) }, 'gateway report dead-lettered: acknowledged, kept in the audit log, not applied');
    await this.deps.audit.record(
      { ...systemActor, username: `gateway:${ch.gateway.name}`, sourceAddress: ch.remoteAddress },
      { action: 'gateway.report_rejected', outcome: 'failure', targetType: 'gateway', targetId: ch.gateway.id, ...deadLetter(report, why) },
    );
  }

  /* ---------- GrantDelivery ---------- */

  deliver(cluster: string, grant: ChannelGrant): void {
    for (const ch of this.#channels.values()) {
      // A pass may have sent it already (it read the committed grant first): once is enough.
      if (!ch.ready || ch.gateway.cluster !== cluster || ch.held.has(grant.id)) continue;
      ch.held.set(grant.id, Date.now());
      this.#send(ch, { type: 'grant', grant });
    }
  }

  revoke(cluster: string, grantId: string, reason: string): void {
    for (const ch of this.#channels.values()) if (ch.ready && ch.gateway.cluster === cluster) this.#revokeOn(ch, grantId, reason);
    this.kick();
  }

  kick(): void {
    if (this.#channels.size === 0) return;
    // A caller's transaction commits a moment after it returns: look soon, and once more a bit later.
    for (const ms of [20, 250]) {
      const t = setTimeout(() => {
        this.#kicks = this.#kicks.filter((k) => k !== t);
        void this.sync();
      }, ms);
      t.unref();
      this.#kicks.push(t);
    }
  }

  statusChanged(gatewayId: string, status: string): void {
    const ch = this.#channels.get(gatewayId);
    if (ch?.ready) {
      ch.gateway = { ...ch.gateway, status };
      this.#send(ch, { type: 'status', status: status as 'active' });
    }
  }

  forget(gatewayId: string): void {
    const ch = this.#channels.get(gatewayId);
    if (ch) this.#drop(ch, CLOSE.deleted, 'gateway deleted');
  }

  /** One pass: every held grant table made equal to the database, gateway rows re-read. */
  async sync(): Promise<void> {
    if (this.#syncing) return this.#syncing;
    this.#syncing = this.#syncOnce()
      .catch((err: unknown) => this.deps.log.warn({ err }, 'gateway grant sync failed; retrying on the next pass'))
      .finally(() => (this.#syncing = null));
    return this.#syncing;
  }

  async #syncOnce(): Promise<void> {
    const ready = [...this.#channels.values()].filter((c) => c.ready && !c.closed);
    if (ready.length === 0) return;
    const readAt = Date.now();
    const silentMs = readAt - 3 * this.deps.policy.heartbeatSeconds * 1000 - 2000;
    const rows = new Map((await this.deps.repo.findByIds(ready.map((c) => c.gateway.id))).map((r) => [r.id, r]));
    const live = await this.deps.repo.liveGrantsOfClusters([...new Set(ready.map((c) => c.gateway.cluster))]);
    for (const ch of ready) {
      const row = rows.get(ch.gateway.id);
      if (!row) {
        this.#drop(ch, CLOSE.deleted, 'gateway deleted');
        continue;
      }
      if (row.credentialHash !== ch.gateway.credentialHash) {
        this.#drop(ch, CLOSE.unauthorised, 'credential rotated by re-enrolment');
        continue;
      }
      if (ch.lastHeardMs < silentMs) {
        this.#drop(ch, CLOSE.silent, 'no heartbeat');
        continue;
      }
      if (row.status !== ch.gateway.status) this.statusChanged(row.id, row.status);
      ch.gateway = { ...row };
      const views = live.filter((l) => l.grant.gatewayCluster === row.cluster).map((l) => ({ id: l.grant.id, state: l.grant.state, mode: l.grant.mode, sessionGatewayId: l.sessionGatewayId, grant: l.grant }));
      const desired = grantsForGateway(views, row.id);
      const { add, remove } = diffGrants(new Set(ch.held.keys()), desired);
      for (const [id, at] of ch.revoked) if (at < readAt - REVOKED_MEMORY_MS) ch.revoked.delete(id);
      for (const id of add) {
        if ((ch.revoked.get(id) ?? 0) >= readAt) continue; // revoked after this pass read it live
        const view = desired.find((d) => d.id === id)!;
        ch.held.set(id, Date.now());
        this.#send(ch, { type: 'grant', grant: toChannelGrant(view.grant, row.id) });
      }
      for (const id of remove) {
        if ((ch.held.get(id) ?? 0) >= readAt) continue; // delivered after this pass read the database
        this.#revokeOn(ch, id, views.some((v) => v.id === id) ? 'used-elsewhere' : 'closed');
      }
    }
  }

  /** Stop the passes and close every channel (the node is shutting down). */
  close(): void {
    this.#shuttingDown = true;
    this.#stopTimer();
    void this.#unlisten?.then((stop) => stop?.()).catch(() => undefined);
    for (const ch of this.#channels.values()) this.#drop(ch, 1001, 'broker node shutting down');
  }

  #revokeOn(ch: Channel, grantId: string, reason: string): void {
    ch.held.delete(grantId);
    ch.revoked.set(grantId, Date.now());
    this.#send(ch, { type: 'revoke', grantId, reason });
  }

  #send(ch: Channel, msg: BrokerToGateway): void {
    if (ch.closed) return;
    try {
      ch.socket.send(JSON.stringify(msg));
    } catch (err) {
      ch.log.warn({ err }, 'sending to the gateway failed');
    }
  }

  #drop(ch: Channel, code: number, reason: string): void {
    try {
      ch.socket.close(code, reason);
    } catch {
      // already closing
    }
    if (this.#channels.get(ch.gateway.id) === ch) this.#channels.delete(ch.gateway.id);
    if (!ch.closed) {
      ch.closed = true;
      this.#recordClose(ch, reason);
    }
  }

  #recordClose(ch: Channel, reason: string): void {
    // A newer channel of the same gateway on this node supersedes this one: nothing to record.
    if (this.#shuttingDown || this.#channels.has(ch.gateway.id) || !ch.ready) return;
    void ch.queue
      .then(() => this.deps.reports.channelClosed(ch.gateway, this.deps.nodeId, reason))
      .catch((err: unknown) => ch.log.warn({ err }, 'recording the channel close failed'));
  }

  /** LISTEN once, from the first channel on: revocations on other nodes kick a pass here. */
  #listen(): void {
    const { signals, signalChannel } = this.deps;
    if (this.#unlisten || !signals || !signalChannel) return;
    this.#unlisten = signals.listen(signalChannel, () => this.kick()).catch((err: unknown) => {
      this.deps.log.warn({ err }, 'LISTEN for grant changes failed; relying on the once-a-second pass');
      return undefined;
    });
  }

  #ensureTimer(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.sync(), SYNC_MS);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const k of this.#kicks) clearTimeout(k);
    this.#kicks = [];
  }
}

/** A well-formed claim, or null (anything else goes through the queue, where a malformed claim closes the channel). */
function claimOf(text: string): ClaimMessage | null {
  if (!text.includes('"claim"')) return null;
  try {
    const parsed = ClaimMessage.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
