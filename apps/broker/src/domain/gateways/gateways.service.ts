import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database, Db, DbOrTx } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, UnavailableError, isUniqueViolation } from '../errors.ts';
import { systemActor, type Actor } from '../identity/actor.ts';
import { hashToken } from '../identity/tokens.ts';
import type { EnrollmentRow, GatewayRow, GatewaysRepository, GatewayWithLive, GrantRow } from './gateways.repository.ts';
import { ChannelHub } from './channel-hub.ts';
import { GatewayClaims } from './claims.ts';
import { GatewayEnrollments, type EnrollInput } from './enrollments.ts';
import { GatewayReports } from './gateway-reports.ts';
import { chooseGateway, pickPort } from './plan.ts';
import { SessionEventOutbox } from './session-events.ts';
import type { TimerService } from '../../jobs/timers.service.ts';
import type { GatewayMode, RoutedPorts } from '@stagedoor/contract';
import { clientPorts, toChannelGrant, type GatewayPolicy, type GrantDelivery, type IssueGrantInput, type IssuedGrant, type SessionListener } from './types.ts';
import { parseAddress, plainAddress } from '../addresses.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import { grantTokenContext, grantTokenHash, newGrantToken } from './grant-tokens.ts';

const PORT_ATTEMPTS = 8;
const LIVE_CONNECTION_STATES = ['starting', 'ready', 'connected'];
/** NOTIFY channel: grants of these clusters changed; every node's hub passes over its channels now. */
export const GRANTS_CHANNEL = 'stagedoor_grants';

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client: store and compare the plain form. */
export const normaliseAddress = plainAddress;

/**
 * The gateway registry (enrolment, health, disable/drain/delete) and the two operations the connect
 * flow calls: `issueGrant` and `revokeGrant`. What gateways report is applied by `GatewayReports`.
 */
export class GatewaysService {
  readonly #delivery: GrantDelivery;
  /** Applies what gateways report (used by the channel hub and the reconciliation job). */
  readonly reports: GatewayReports;
  /** The control channels this node holds. */
  readonly channels: ChannelHub;
  /** Session starts and ends, delivered durably to the power and release plans. */
  readonly sessionEvents: SessionEventOutbox;
  readonly enrollments: GatewayEnrollments;

  constructor(
    private readonly deps: {
      db: Db;
      timers: Pick<TimerService, 'schedule' | 'handle' | 'fireNow'>;
      repo: GatewaysRepository;
      audit: AuditService;
      clock: Clock;
      log: Logger;
      policy: GatewayPolicy;
      nodeId: string;
      /** NOTIFY/LISTEN of the database, so a revocation on one node reaches gateways held by the others at once. */
      signals?: Pick<Database, 'notify' | 'listen'>;
      /** Seals routed grants' tokens (ADR 0015, 0017); without a key no routed grant can be issued. */
      secrets?: Pick<SecretBox, 'available' | 'seal' | 'open'>;
    },
  ) {
    this.sessionEvents = new SessionEventOutbox({ timers: deps.timers, onError: (err, e) => deps.log.warn({ err, grant: e.grantId, type: e.type }, 'session event: delivery failed; the timers job retries it') });
    this.reports = new GatewayReports({ ...deps, sessionEvents: this.sessionEvents });
    // deps.log carries `area: gateways` already; a second `area` would repeat the key in every JSON line.
    const claims = new GatewayClaims({ repo: deps.repo, clock: deps.clock, log: deps.log.child({ part: 'claims' }) });
    this.channels = new ChannelHub({ repo: deps.repo, reports: this.reports, claims, audit: deps.audit, log: deps.log.child({ part: 'channels' }), nodeId: deps.nodeId, policy: deps.policy, signals: deps.signals, signalChannel: GRANTS_CHANNEL });
    this.#delivery = this.channels;
    this.enrollments = new GatewayEnrollments(deps);
  }

  /** The power and release plans subscribe to session starts and ends (delivered at least once). */
  onSessionEvent(listener: SessionListener): () => void {
    return this.sessionEvents.subscribe(listener);
  }

  /* ---------- registry ---------- */

  /** Gateways with `routedPorts` as clients dial them (`clientPorts`). */
  async list(filter: { cluster?: string; status?: string }, limit: number, offset: number) {
    const page = await this.deps.repo.list(filter, limit, offset);
    return { ...page, items: page.items.map((g) => ({ ...g, routedPorts: clientPorts(g) })) };
  }

  /**
   * The WebSocket origins of every gateway's HTTPS tunnel (`wss://host:port`), as browser sessions
   * reach them: the broker's CSP allows exactly these in connect-src (ADR 0028).
   */
  async tunnelOrigins(): Promise<string[]> {
    const rows = await this.deps.repo.tunnelEndpoints();
    return [...new Set(rows.map((g) => `wss://${g.publicAddress.includes(':') ? `[${g.publicAddress}]` : g.publicAddress}:${clientPorts(g).tunnel}`))].sort();
  }

  /** A gateway with `routedPorts` as clients dial them (`clientPorts`). */
  async get(id: string, db?: DbOrTx): Promise<GatewayWithLive> {
    const row = await this.deps.repo.findById(id, db);
    if (!row) throw new NotFoundError('gateway', id);
    return { ...row, routedPorts: clientPorts(row) };
  }

  /**
   * Status, name, and the routed settings clients are sent to (public ports, SNI domain). A routed
   * grant's instructions are drawn from the gateway when shown, so a changed port reaches the next
   * GET of every live connection at once.
   */
  async update(actor: Actor, id: string, input: { status?: 'active' | 'disabled' | 'draining'; name?: string; routedPorts?: Partial<RoutedPorts>; sniDomain?: string | null }, outer?: DbOrTx): Promise<GatewayWithLive> {
    let statusChanged = false;
    // A status change is told to the gateway at once: not from inside a caller's transaction (apply).
    if (outer && input.status !== undefined) throw new InvalidInputError('a gateway status changes on its own, not inside another change');
    try {
      await (outer ?? this.deps.db).transaction(async (tx) => {
        const current = await this.deps.repo.lockById(id, tx);
        if (!current) throw new NotFoundError('gateway', id);
        if (input.status === 'active' && current.status === 'enrolled') {
          throw new ConflictError('this gateway has never connected: it becomes active by itself when it does');
        }
        statusChanged = input.status !== undefined && input.status !== current.status;
        const { routedPorts, ...rest } = input;
        // Ports left out keep what clients dial now; from here on they are the admin's, whatever the gateway reports.
        const patch = { ...rest, ...(routedPorts ? { routedPorts: { ...clientPorts(current), ...routedPorts }, routedPortsSet: true } : {}) };
        await this.deps.repo.update(id, { ...patch, updatedAt: this.deps.clock.now() }, tx);
        const action = input.status === 'disabled' ? 'gateway.disable' : input.status === 'draining' ? 'gateway.drain' : 'gateway.update';
        await this.deps.audit.record(actor, { action, outcome: 'success', targetType: 'gateway', targetId: id, details: { name: current.name, from: current.status, ...patch } }, tx);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a gateway named "${input.name}" already exists`);
      throw err;
    }
    if (statusChanged && input.status) this.#delivery.statusChanged(id, input.status);
    return this.get(id, outer);
  }

  /** For `stagedoor apply`: every gateway of a cluster. */
  inCluster(cluster: string, db?: DbOrTx): Promise<GatewayRow[]> {
    return this.deps.repo.clusterMembers(cluster, db);
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      const current = await this.deps.repo.lockById(id, tx);
      if (!current) throw new NotFoundError('gateway', id);
      const row = await this.deps.repo.findById(id, tx);
      const live = Math.max(row?.liveGrants ?? 0, await this.deps.repo.liveConnectionsOnGateway(id, tx));
      if (live > 0) throw new ConflictError(`gateway ${current.name} carries ${live} live grant(s) or connection(s): drain it and wait, or revoke them first`);
      await this.deps.repo.delete(id, tx);
      await this.deps.audit.record(actor, { action: 'gateway.delete', outcome: 'success', targetType: 'gateway', targetId: id, details: { name: current.name, cluster: current.cluster } }, tx);
    });
    this.#delivery.forget(id);
  }

  /* ---------- enrolment (enrollments.ts, ADR 0016) ---------- */

  /** A one-time token for a new gateway; the record carries the address clients will dial. */
  createEnrollment(actor: Actor, input: { cluster: string; name?: string; publicAddress: string; routedPorts?: Partial<RoutedPorts>; sniDomain?: string; expiresInMinutes: number }): Promise<{ enrollment: EnrollmentRow; token: string }> {
    return this.enrollments.createForNew(actor, input);
  }

  /** A one-time token bound to gateway `id`: it rotates that gateway's credential (and may move its address). */
  createReenrollment(actor: Actor, id: string, input: { publicAddress?: string; expiresInMinutes: number }): Promise<{ enrollment: EnrollmentRow; token: string }> {
    return this.enrollments.createForExisting(actor, id, input);
  }

  listEnrollments(pending: boolean | undefined, limit: number, offset: number) {
    return this.enrollments.list(pending, limit, offset);
  }

  enroll(input: EnrollInput, sourceAddress: string | null): Promise<{ gateway: GatewayRow; credential: string }> {
    return this.enrollments.enroll(input, sourceAddress);
  }

  /** The gateway of that name (names are unique regardless of case), or undefined. */
  findByName(name: string, db?: DbOrTx): Promise<GatewayRow | undefined> {
    return this.deps.repo.findByName(name, db);
  }

  /** The gateway behind a control-channel credential, or null. */
  async authenticateChannel(credential: string): Promise<GatewayRow | null> {
    if (!credential.startsWith('sdg_')) return null;
    return (await this.deps.repo.findByCredentialHash(hashToken(credential))) ?? null;
  }

  /* ---------- grants: the connect flow's boundary ---------- */

  /**
   * Choose a healthy, active, least-loaded gateway of `cluster`, allocate a free port of its range,
   * store the grant and deliver it to every gateway of the cluster. With `tx`, everything happens in
   * the caller's transaction and delivery follows its commit (the hub's next pass, within a second);
   * without, the grant is committed here and delivered at once.
   */
  issueGrant(input: IssueGrantInput & { mode?: 'portForward' }, tx?: DbOrTx): Promise<IssuedGrant & { mode: 'portForward'; port: number }>;
  issueGrant(input: IssueGrantInput, tx?: DbOrTx): Promise<IssuedGrant>;
  async issueGrant(input: IssueGrantInput, tx?: DbOrTx): Promise<IssuedGrant> {
    const now = this.deps.clock.now();
    if (!parseAddress(input.clientAddress)) throw new InvalidInputError(`clientAddress must be an IP address (got "${input.clientAddress}")`);
    if (!parseAddress(input.targetAddress)) throw new InvalidInputError(`targetAddress must be an IP address (got "${input.targetAddress}")`);
    if (input.connectBy <= now) throw new InvalidInputError('connectBy must be in the future');
    const mode = input.mode ?? 'portForward';
    if (mode === 'routed' && !this.deps.secrets?.available) {
      throw new UnavailableError('the routed gateway mode needs STAGEDOOR_SECRET_KEY on the broker (grant tokens are kept sealed); set it, or use gatewayMode "portForward" in the protocol plan');
    }
    const run = async (db: DbOrTx) => {
      const connection = await this.deps.repo.lockConnection(input.connectionId, db);
      if (!connection) throw new NotFoundError('connection', input.connectionId);
      if (!LIVE_CONNECTION_STATES.includes(connection.state)) throw new ConflictError(`connection ${connection.id} is ${connection.state}: no grant for it`);
      // Two status reads of one connection at once: the second waited for the lock above and finds
      // the first one's grant here, instead of issuing another (a connection has one usable grant).
      const usable = await this.deps.repo.usableGrantOf(connection.id, now, db);
      if (usable) {
        const holder = await this.deps.repo.findById(usable.gatewayId!, db);
        if (holder) return { grant: usable, gateway: holder as GatewayRow };
      }
      const all = await this.deps.repo.clusterMembers(input.cluster, db);
      const members = input.requireSniDomain ? all.filter((g) => g.sniDomain) : all;
      if (all.length > 0 && members.length === 0) {
        throw new ConflictError(`no gateway of cluster ${input.cluster} has an sniDomain, which the routed dcv mode needs (the .dcv file names <token>.<domain>): an admin sets it with PATCH /api/v1/gateways/{id}`);
      }
      const gateway = chooseGateway(members, now, this.deps.policy.staleSeconds * 1000);
      if (!gateway) throw new UnavailableError(`no healthy gateway in cluster ${input.cluster}`);
      const grant = mode === 'routed' ? await this.#insertRouted(db, gateway, input, now) : await this.#insertWithFreePort(db, gateway, input, now);
      await this.deps.repo.updateConnection(connection.id, { gatewayId: gateway.id, updatedAt: now }, db);
      await this.deps.audit.record(
        systemActor,
        {
          action: 'grant.issue',
          outcome: 'success',
          targetType: 'grant',
          targetId: grant.id,
          // Never the token: the audit log is read by more people than the grant's owner.
          details: { connectionId: connection.id, userId: connection.userId, gatewayId: gateway.id, cluster: input.cluster, mode: grant.mode, clientAddress: grant.clientAddress, target: `${grant.targetAddress}:${grant.targetPort}`, port: grant.gatewayPort, validUntil: grant.validUntil.toISOString(), ...(grant.mode === 'routed' ? { reconnectWindowSeconds: grant.reconnectWindowSeconds } : {}) },
        },
        db,
      );
      return { grant, gateway };
    };
    if (tx) {
      const { grant, gateway } = await run(tx);
      this.#delivery.kick();
      return { grantId: grant.id, gatewayId: gateway.id, host: gateway.publicAddress, port: grant.gatewayPort, mode: grant.mode as GatewayMode };
    }
    const { grant, gateway } = await this.deps.db.transaction(run);
    this.#delivery.deliver(input.cluster, toChannelGrant(grant));
    return { grantId: grant.id, gatewayId: gateway.id, host: gateway.publicAddress, port: grant.gatewayPort, mode: grant.mode as GatewayMode };
  }

  /**
   * A routed grant (ADR 0017): no port, a fresh token — stored as its SHA-256 (what gateways look up)
   * and sealed (what its owner's later GET shows again). The token itself is returned by `grantToken`.
   */
  async #insertRouted(db: DbOrTx, gateway: GatewayRow, input: IssueGrantInput, now: Date): Promise<GrantRow> {
    const id = randomUUID();
    const token = newGrantToken();
    return this.deps.repo.insertGrant(
      {
        id,
        connectionId: input.connectionId,
        gatewayId: gateway.id,
        gatewayCluster: input.cluster,
        clientAddress: normaliseAddress(input.clientAddress),
        targetAddress: normaliseAddress(input.targetAddress),
        targetPort: input.targetPort,
        mode: 'routed',
        gatewayPort: null,
        tokenHash: grantTokenHash(token),
        tokenSealed: this.deps.secrets!.seal(token, grantTokenContext(id)),
        reconnectWindowSeconds: input.reconnectWindowSeconds ?? 0,
        validUntil: input.connectBy,
        sessionUntil: input.sessionUntil ?? null,
        state: 'issued',
        createdAt: now,
      },
      db,
    );
  }

  /** A routed grant's token, for its owner's instructions only; null for a port-forward grant. */
  grantToken(grant: Pick<GrantRow, 'id' | 'mode' | 'tokenSealed'>): string | null {
    if (grant.mode !== 'routed' || !grant.tokenSealed || !this.deps.secrets) return null;
    return this.deps.secrets.open(grant.tokenSealed, grantTokenContext(grant.id));
  }

  async #insertWithFreePort(db: DbOrTx, gateway: GatewayRow, input: IssueGrantInput, now: Date): Promise<GrantRow> {
    const tried = new Set<number>();
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const used = await this.deps.repo.livePortsInCluster(input.cluster, db);
      for (const p of tried) used.add(p);
      const port = pickPort(gateway.portRangeStart, gateway.portRangeEnd, used);
      if (port === null) throw new UnavailableError(`every port of gateway ${gateway.name} (${gateway.portRangeStart}-${gateway.portRangeEnd}) carries a live grant`);
      tried.add(port);
      try {
        // A savepoint: a lost race on the unique index must not abort the caller's transaction.
        return await db.transaction((sp) =>
          this.deps.repo.insertGrant(
            {
              connectionId: input.connectionId,
              gatewayId: gateway.id,
              gatewayCluster: input.cluster,
              clientAddress: normaliseAddress(input.clientAddress),
              targetAddress: normaliseAddress(input.targetAddress),
              targetPort: input.targetPort,
              gatewayPort: port,
              validUntil: input.connectBy,
              sessionUntil: input.sessionUntil ?? null,
              state: 'issued',
              createdAt: now,
            },
            sp,
          ),
        );
      } catch (err) {
        if (!isUniqueViolation(err, 'grants_live_cluster_port_key')) throw err;
        this.deps.log.debug({ gateway: gateway.id, port }, 'port taken by a concurrent grant; trying another');
      }
    }
    throw new UnavailableError(`no free port on gateway ${gateway.name} after ${PORT_ATTEMPTS} attempts`);
  }

  /** Revoke a grant: it can no longer be used, and a live session on it is closed at once. */
  async revokeGrant(grantId: string, reason: string, actor: Actor = systemActor): Promise<void> {
    const now = this.deps.clock.now();
    const revoked = await this.deps.db.transaction(async (tx) => {
      const grant = await this.deps.repo.lockGrant(grantId, tx);
      if (!grant) throw new NotFoundError('grant', grantId);
      if (grant.state !== 'issued' && grant.state !== 'used') return null;
      await this.deps.repo.updateGrant(grantId, { state: 'revoked', revokedAt: now }, tx);
      const connection = await this.deps.repo.lockConnection(grant.connectionId, tx);
      if (connection && LIVE_CONNECTION_STATES.includes(connection.state) && (await this.deps.repo.otherLiveGrants(connection.id, grantId, tx)) === 0) {
        await this.deps.repo.updateConnection(connection.id, { state: 'closed', closedAt: now, endReason: `revoked: ${reason}`, updatedAt: now }, tx);
      }
      await this.deps.audit.record(actor, { action: 'grant.revoke', outcome: 'success', targetType: 'grant', targetId: grantId, reason, details: { connectionId: grant.connectionId, wasInUse: grant.state === 'used', port: grant.gatewayPort } }, tx);
      return grant;
    });
    if (revoked) this.announceRevoked([revoked], reason);
  }

  /**
   * Grants that a committed transaction revoked (a release, a closed connection, an access review):
   * the gateways held by this node are told at once, and every other node is signalled to pass over
   * its own. A node that misses the signal still catches up within its next pass (a second).
   */
  announceRevoked(grants: readonly { id: string; gatewayCluster: string }[], reason: string): void {
    if (grants.length === 0) return;
    for (const g of grants) this.#delivery.revoke(g.gatewayCluster, g.id, `revoked: ${reason}`);
    for (const cluster of new Set(grants.map((g) => g.gatewayCluster))) {
      this.deps.signals?.notify(GRANTS_CHANNEL, cluster).catch((err: unknown) => this.deps.log.warn({ err, cluster }, 'grant revocation: NOTIFY failed'));
    }
  }

  listGrants(live: boolean | undefined, limit: number, offset: number) {
    return this.deps.repo.listGrants(live, limit, offset);
  }
}
