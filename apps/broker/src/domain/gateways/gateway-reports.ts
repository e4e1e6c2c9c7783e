import net from 'node:net';
import type { ChannelGrant, GatewayReport, HeartbeatMessage, HelloMessage } from '@stagedoor/contract';
import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { systemActor, type Actor } from '../identity/actor.ts';
import type { GatewayRow, GatewaysRepository, GrantRow } from './gateways.repository.ts';
import type { SessionEventOutbox } from './session-events.ts';
import { decideSessionStart, grantsForGateway } from './plan.ts';
import { toChannelGrant, type GatewayPolicy, type SessionEvent } from './types.ts';

function ipOrNull(address: string): string | null {
  return net.isIP(address) ? address : null;
}

const LIVE_CONNECTION_STATES = ['starting', 'ready', 'connected'];
const RECONCILE_BATCH = 500;

/** A message the broker owes a gateway after a report (a session it must not carry). */
export interface Revocation {
  grantId: string;
  reason: string;
}

/**
 * What gateways report, applied to the `grants` and `connections` rows and audited: a channel
 * opening (hello), heartbeats, session start/end, refused connections; and the reconciliation pass
 * that closes what no gateway reports any more. Every report is idempotent: a gateway resends the
 * ones it has no acknowledgement for after a reconnect, possibly to another broker node.
 */
export class GatewayReports {
  constructor(
    private readonly deps: { db: Db; repo: GatewaysRepository; audit: AuditService; clock: Clock; log: Logger; policy: GatewayPolicy; sessionEvents: SessionEventOutbox },
  ) {}

  /** A gateway opened its channel on `node`: record it, take over the sessions it carries, and return its grant set. */
  async hello(gateway: GatewayRow, hello: HelloMessage, node: string, remoteAddress: string | null): Promise<{ gateway: GatewayRow; grants: ChannelGrant[] }> {
    const now = this.deps.clock.now();
    const updated = await this.deps.db.transaction(async (tx) => {
      // What clients pin (ADR 0017); a gateway too old to report it keeps what was stored.
      // Its listener ports too: until the admin sets the public ones, they are what clients dial (clientPorts).
      const identity = hello.identity ? { sshHostKey: hello.identity.sshHostKey, tlsCertificateSha256: hello.identity.tlsCertificateSha256, listenerPorts: hello.identity.listeners } : {};
      const row = await this.deps.repo.update(
        gateway.id,
        { status: gateway.status === 'enrolled' ? 'active' : gateway.status, health: 'healthy', lastSeenAt: now, version: hello.version, brokerNode: node, ...identity, updatedAt: now },
        tx,
      );
      await this.deps.audit.record(this.#actor(gateway, remoteAddress), {
        action: 'gateway.connect',
        outcome: 'success',
        targetType: 'gateway',
        targetId: gateway.id,
        details: { node, version: hello.version, sessions: hello.sessions.length, protocol: hello.protocol, ...(hello.identity ? { listeners: hello.identity.listeners, identityChanged: hello.identity.sshHostKey !== gateway.sshHostKey || hello.identity.tlsCertificateSha256 !== gateway.tlsCertificateSha256 } : {}) },
      }, tx);
      // Back from a partition (or a restart), a gateway sends its hello first and its pending reports
      // right after the welcome: give those one grace period to arrive. A session it no longer has
      // and never reports is closed as lost by the reconciliation pass after that.
      await this.deps.repo.touchSessionsOf(gateway.id, now, tx);
      return row!;
    });
    for (const s of hello.sessions) {
      await this.#sessionStarted(updated, { grantId: s.grantId, clientAddress: s.clientAddress, at: s.startedAt, session: s.session });
    }
    return { gateway: updated, grants: await this.grantsFor(updated) };
  }

  /** The grants a gateway should hold now. */
  async grantsFor(gateway: GatewayRow, db: DbOrTx = this.deps.db): Promise<ChannelGrant[]> {
    const live = await this.deps.repo.liveGrantsOfClusters([gateway.cluster], db);
    const views = live.map((l) => ({ id: l.grant.id, state: l.grant.state, mode: l.grant.mode, sessionGatewayId: l.sessionGatewayId, grant: l.grant }));
    return grantsForGateway(views, gateway.id).map((v) => toChannelGrant(v.grant, gateway.id));
  }

  /** The channel closed (or moved to another node): unhealthy unless it already came back elsewhere. */
  async channelClosed(gateway: GatewayRow, node: string, why: string): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.db.transaction(async (tx) => {
      const current = await this.deps.repo.lockById(gateway.id, tx);
      if (!current || current.brokerNode !== node) return;
      await this.deps.repo.update(gateway.id, { health: 'unhealthy', brokerNode: null, updatedAt: now }, tx);
      await this.deps.audit.record(this.#actor(gateway, null), { action: 'gateway.disconnect', outcome: 'success', targetType: 'gateway', targetId: gateway.id, reason: why, details: { node } }, tx);
    });
  }

  /** Health, load and the sessions alive now. Returns sessions the gateway must close (not live for it). */
  async heartbeat(gateway: GatewayRow, hb: HeartbeatMessage, node: string): Promise<Revocation[]> {
    const now = this.deps.clock.now();
    const ids = hb.sessions.map((s) => s.grantId);
    return this.deps.db.transaction(async (tx) => {
      await this.deps.repo.update(
        gateway.id,
        {
          health: 'healthy',
          lastSeenAt: now,
          brokerNode: node,
          load: { sessions: hb.sessions.length, grants: hb.grants, bytesInPerSecond: Math.round(hb.bytesInPerSecond), bytesOutPerSecond: Math.round(hb.bytesOutPerSecond) },
          updatedAt: now,
        },
        tx,
      );
      await this.deps.repo.recordSessionFigures(gateway.id, hb.sessions, now, tx);
      if (hb.refusalsDropped > 0) {
        await this.deps.audit.record(this.#actor(gateway, null), { action: 'gateway.connection_refused', outcome: 'denied', targetType: 'gateway', targetId: gateway.id, reason: 'rate-limited', details: { dropped: hb.refusalsDropped } }, tx);
      }
      const mine = await this.deps.repo.usedOnGateway(ids, gateway.id, tx);
      return ids.filter((id) => !mine.has(id)).map((grantId) => ({ grantId, reason: 'not-live' }));
    });
  }

  /** One acknowledged report. Returns what the gateway must be told in turn. */
  async report(gateway: GatewayRow, msg: GatewayReport, remoteAddress: string | null): Promise<Revocation[]> {
    switch (msg.type) {
      case 'session-started':
        return this.#sessionStarted(gateway, msg);
      case 'session-ended':
        await this.#sessionEnded(gateway, msg);
        return [];
      case 'refused':
        await this.deps.audit.record(
          { ...this.#actor(gateway, remoteAddress), sourceAddress: ipOrNull(msg.clientAddress) },
          {
            action: 'gateway.connection_refused',
            outcome: 'denied',
            targetType: msg.grantId ? 'grant' : 'gateway',
            targetId: msg.grantId ?? gateway.id,
            reason: msg.reason,
            details: { gatewayId: gateway.id, gateway: gateway.name, port: msg.port, clientAddress: msg.clientAddress, at: msg.at },
          },
        );
        return [];
    }
  }

  async #sessionStarted(gateway: GatewayRow, msg: { grantId: string; clientAddress: string; at: string; session?: number }): Promise<Revocation[]> {
    const now = this.deps.clock.now();
    const at = new Date(msg.at);
    const outcome = await this.deps.db.transaction(async (tx) => {
      const grant = await this.deps.repo.lockGrant(msg.grantId, tx);
      if (!grant) return { refuse: 'unknown' } as const;
      const connection = await this.deps.repo.lockConnection(grant.connectionId, tx);
      const decision = decideSessionStart(grant, connection?.gatewayId ?? null, gateway.id, connection?.state, msg.session);
      if (decision.action === 'refuse') return { refuse: decision.reason } as const;
      if (decision.action === 'already') return { already: true } as const;
      // A grant is usable only while its connection lives (and so its assignment: a release closes
      // both in one statement). Belt and braces under the revocation: refuse, the gateway closes it.
      if (!connection || !LIVE_CONNECTION_STATES.includes(connection.state)) {
        await this.deps.repo.updateGrant(grant.id, { state: 'revoked', revokedAt: now }, tx);
        return { refuse: 'connection-closed' } as const;
      }
      // A routed grant was taken by its claim already (state, used_at); a port-forward one is taken here.
      const routed = grant.mode === 'routed';
      await this.deps.repo.updateGrant(grant.id, routed ? { lastReportedAt: now } : { state: 'used', usedAt: at, lastReportedAt: now }, tx);
      // A reconnect keeps the connection's first connected time.
      await this.deps.repo.updateConnection(connection.id, { state: 'connected', connectedAt: connection.connectedAt ?? at, gatewayId: gateway.id, updatedAt: now }, tx);
      const session = routed ? grant.sessions : 1;
      await this.deps.audit.record(
        { ...this.#actor(gateway, null), sourceAddress: ipOrNull(msg.clientAddress) },
        { action: 'gateway.session_start', outcome: 'success', targetType: 'grant', targetId: grant.id, details: { connectionId: grant.connectionId, gatewayId: gateway.id, mode: grant.mode, port: grant.gatewayPort, session, clientAddress: msg.clientAddress, target: `${grant.targetAddress}:${grant.targetPort}` } },
        tx,
      );
      const event: SessionEvent = { type: 'started', connectionId: grant.connectionId, grantId: grant.id, gatewayId: gateway.id, at, clientAddress: msg.clientAddress, bytesUp: 0, bytesDown: 0, session };
      await this.deps.sessionEvents.record(event, tx);
      return { started: event };
    });
    if ('refuse' in outcome) return [{ grantId: msg.grantId, reason: outcome.refuse ?? 'not-live' }];
    if ('started' in outcome && outcome.started) this.deps.sessionEvents.dispatch([outcome.started]);
    return [];
  }

  async #sessionEnded(gateway: GatewayRow, msg: { grantId: string; session?: number; reason: string; bytesUp: number; bytesDown: number; at: string }): Promise<void> {
    const now = this.deps.clock.now();
    const at = new Date(msg.at);
    const ended = await this.deps.db.transaction(async (tx) => {
      const grant = await this.deps.repo.lockGrant(msg.grantId, tx);
      if (!grant) return null;
      const connection = await this.deps.repo.lockConnection(grant.connectionId, tx);
      if (!connection) return null;
      const routed = grant.mode === 'routed';
      // Which session ended: the report says (routed, since the claim numbers them); else the latest.
      const session = routed ? Math.min(msg.session ?? grant.sessions, grant.sessions) : 1;
      const earlier = routed && session < grant.sessions;
      // An earlier session's end sent again after a lost acknowledgement, while a later session runs
      // (possibly through another gateway of the cluster): its bytes count once, nothing else changes.
      if (earlier) {
        if (grant.gatewayCluster !== gateway.cluster) return null;
        const folded = foldSessionBytes(grant, connection, session, msg);
        if (folded) {
          await this.deps.repo.updateGrant(grant.id, folded.grant, tx);
          await this.deps.repo.updateConnection(connection.id, { ...folded.connection, updatedAt: now }, tx);
        }
        return null;
      }
      if (connection.gatewayId !== gateway.id) return null; // not the session this gateway carried
      // The connection's totals are the sum over the grant's sessions (a reconnect adds, never replaces).
      const folded = foldSessionBytes(grant, connection, session, msg);
      if (folded) await this.deps.repo.updateGrant(grant.id, folded.grant, tx);
      const bytes = folded?.connection ?? { bytesUp: connection.bytesUp, bytesDown: connection.bytesDown };
      // A repeat (or, routed, the end of a session already ended): bytes only.
      if (grant.closedAt || (routed && grant.state === 'used' && grant.sessionEndedAt !== null)) {
        await this.deps.repo.updateConnection(connection.id, { ...bytes, updatedAt: now }, tx);
        return null;
      }
      const audit = { action: 'gateway.session_end', outcome: 'success' as const, targetType: 'grant', targetId: grant.id, reason: msg.reason, details: { connectionId: grant.connectionId, gatewayId: gateway.id, session, ...bytes, endedAt: msg.at } };
      const ended: SessionEvent = { type: 'ended', connectionId: grant.connectionId, grantId: grant.id, gatewayId: gateway.id, at, reason: msg.reason, ...bytes, session };
      if (grant.mode === 'routed' && grant.state === 'used' && grant.reconnectWindowSeconds > 0 && LIVE_CONNECTION_STATES.includes(connection.state)) {
        // Routed with a reconnect window (docs/connect-flow.md, "Reconnects"): the grant stays in
        // use, between sessions, and the connection goes back to `ready` (live, not connected) until
        // the same client claims it again or the window closes it. The session's end is an event like
        // any other, so the disconnect timers start now.
        await this.deps.repo.updateGrant(grant.id, { sessionEndedAt: now }, tx);
        await this.deps.repo.updateConnection(connection.id, { ...bytes, state: 'ready', updatedAt: now }, tx);
        await this.deps.audit.record(this.#actor(gateway, null), { ...audit, details: { ...audit.details, reconnectUntil: new Date(now.getTime() + grant.reconnectWindowSeconds * 1000).toISOString() } }, tx);
        await this.deps.sessionEvents.record(ended, tx);
        return ended;
      }
      // A revoked grant keeps its state; closed_at records that its session is over.
      const wasLive = grant.state === 'used' || grant.state === 'issued';
      await this.deps.repo.updateGrant(grant.id, wasLive ? { state: 'closed', closedAt: now } : { closedAt: now }, tx);
      const closes = LIVE_CONNECTION_STATES.includes(connection.state) && (await this.deps.repo.otherLiveGrants(connection.id, grant.id, tx)) === 0;
      await this.deps.repo.updateConnection(connection.id, closes ? { ...bytes, state: 'closed', closedAt: now, endReason: msg.reason, updatedAt: now } : { ...bytes, updatedAt: now }, tx);
      await this.deps.audit.record(this.#actor(gateway, null), audit, tx);
      if (!grant.usedAt) return null;
      await this.deps.sessionEvents.record(ended, tx);
      return ended;
    });
    if (ended) this.deps.sessionEvents.dispatch([ended]);
  }

  /**
   * The reconciliation pass (a job): unhealthy gateways, expired unused grants, and sessions the
   * broker believes live that no gateway reports any more. Returns what changed, for the job's stats.
   */
  async reconcile(): Promise<{ gatewaysStale: number; grantsExpired: number; sessionsClosed: number; reconnectWindowsClosed: number }> {
    const now = this.deps.clock.now();
    const stale = await this.deps.repo.markStale(new Date(now.getTime() - this.deps.policy.staleSeconds * 1000), now);
    for (const g of stale) {
      await this.deps.audit.record(systemActor, { action: 'gateway.unhealthy', outcome: 'success', targetType: 'gateway', targetId: g.id, reason: `not heard from for ${this.deps.policy.staleSeconds} s`, details: { name: g.name, lastSeenAt: g.lastSeenAt?.toISOString() ?? null } });
    }
    const expired = await this.#closeGrants('expire', (tx) => this.deps.repo.lockExpiredIssued(now, RECONCILE_BATCH, tx), now);
    const graceMs = 3 * this.deps.policy.heartbeatSeconds * 1000;
    const lost = await this.#closeGrants('lost', (tx) => this.deps.repo.lockUnreported(now, graceMs, this.deps.policy.lostSeconds * 1000, RECONCILE_BATCH, tx), now);
    const lapsed = await this.#closeGrants('lapsed', (tx) => this.deps.repo.lockReconnectLapsed(now, RECONCILE_BATCH, tx), now);
    return { gatewaysStale: stale.length, grantsExpired: expired, sessionsClosed: lost, reconnectWindowsClosed: lapsed };
  }

  /**
   * `expire`: unused past connect-by; `lost`: a session no gateway reports; `lapsed`: a routed grant
   * between sessions past its reconnect window (its session's end was an event already: none here).
   */
  async #closeGrants(kind: 'expire' | 'lost' | 'lapsed', lock: (tx: DbOrTx) => Promise<(GrantRow & { sessionGatewayId?: string | null })[]>, now: Date): Promise<number> {
    const events: SessionEvent[] = [];
    const closed = await this.deps.db.transaction(async (tx) => {
      const rows = await lock(tx);
      for (const grant of rows) {
        const reason = kind === 'expire' ? 'grant-expired' : kind === 'lost' ? 'gateway-lost' : 'reconnect-window-over';
        await this.deps.repo.updateGrant(grant.id, kind === 'expire' ? { state: 'expired' } : { state: 'closed', closedAt: now }, tx);
        const connection = await this.deps.repo.lockConnection(grant.connectionId, tx);
        if (connection && LIVE_CONNECTION_STATES.includes(connection.state) && (await this.deps.repo.otherLiveGrants(connection.id, grant.id, tx)) === 0) {
          await this.deps.repo.updateConnection(connection.id, { state: 'closed', closedAt: now, endReason: reason, updatedAt: now }, tx);
        }
        await this.deps.audit.record(
          systemActor,
          { action: kind === 'expire' ? 'grant.expire' : kind === 'lost' ? 'gateway.session_lost' : 'grant.close', outcome: 'success', targetType: 'grant', targetId: grant.id, reason, details: { connectionId: grant.connectionId, port: grant.gatewayPort, gatewayId: grant.sessionGatewayId ?? grant.gatewayId } },
          tx,
        );
        if (kind === 'lost') {
          const event: SessionEvent = { type: 'ended', connectionId: grant.connectionId, grantId: grant.id, gatewayId: grant.sessionGatewayId ?? null, at: now, reason, bytesUp: connection?.bytesUp ?? 0, bytesDown: connection?.bytesDown ?? 0, session: grant.mode === 'routed' ? grant.sessions : 1 };
          await this.deps.sessionEvents.record(event, tx);
          events.push(event);
        }
      }
      return rows.length;
    });
    this.deps.sessionEvents.dispatch(events);
    return closed;
  }

  #actor(gateway: GatewayRow, remoteAddress: string | null): Actor {
    return { ...systemActor, username: `gateway:${gateway.name}`, sourceAddress: remoteAddress };
  }
}

/**
 * A session's end adds its bytes to the grant's ended sessions once (`bytesSession` is the last
 * counted), and the connection's totals become at least that sum. Null when it was counted already.
 */
function foldSessionBytes(grant: GrantRow, connection: { bytesUp: number; bytesDown: number }, session: number, msg: { bytesUp: number; bytesDown: number }) {
  if (session <= grant.bytesSession) return null;
  const endedBytesUp = grant.endedBytesUp + msg.bytesUp;
  const endedBytesDown = grant.endedBytesDown + msg.bytesDown;
  return {
    grant: { endedBytesUp, endedBytesDown, bytesSession: session },
    connection: { bytesUp: Math.max(connection.bytesUp, endedBytesUp), bytesDown: Math.max(connection.bytesDown, endedBytesDown) },
  };
}
