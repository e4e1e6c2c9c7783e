import type { Logger } from 'pino';
import { DEFAULT_PORTS } from '@stagedoor/contract';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { Protocol, ProtocolPlanEntry } from '../../db/schema/policies.ts';
import type { Clock } from '../clock.ts';
import { ForbiddenError, InvalidInputError, NoDesktopAvailableError, NotFoundError, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from '../identity/actor.ts';
import type { PlansService } from '../plans/plans.service.ts';
import type { PoliciesService } from '../policies/policies.service.ts';
import type { PolicyWithLinks } from '../policies/policies.repository.ts';
import type { WorkstationsService } from '../workstations/workstations.service.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';
import type { AssignmentRow, ConnectionRow, ConnectionsRepository } from './connections.repository.ts';
import type { GrantIssuer, PoolLaunches } from './ports.ts';

/** Without a protocol plan, a policy connects over RDP, directly. */
export const DEFAULT_PROTOCOLS: ProtocolPlanEntry[] = [{ protocol: 'rdp', port: DEFAULT_PORTS.rdp, viaGateway: false }];
const ASSIGN_RETRIES = 5;

export interface ConnectDeps {
  db: Db;
  repo: ConnectionsRepository;
  policies: PoliciesService;
  plans: PlansService;
  pools: PoolLaunches;
  workstations: WorkstationsService;
  gateways: GrantIssuer;
  audit: AuditService;
  clock: Clock;
  log: Logger;
}

/** Rows the connect call already holds, so describing its answer needs no second look-up. */
export interface KnownContext {
  policy: PolicyWithLinks;
  protocols: ProtocolPlanEntry[];
  workstation: WorkstationRow;
  assignment: AssignmentRow;
}

export interface Requester {
  actor: Actor & { userId: string };
  groupIds: string[];
  clientAddress: string;
}

/**
 * The connect flow: policy → offer → assignment (one transaction; row locks and SKIP LOCKED so
 * concurrent users spread over free machines; the partial unique index makes a double assignment
 * impossible and a lost race is retried) → start or launch when needed, after the commit.
 */
export class ConnectionsService {
  constructor(readonly deps: ConnectDeps) {}

  /** The policy and offer that let this user connect to this pool, or a 403 that is audited. */
  async offerFor(req: Requester, poolId: string): Promise<{ policy: PolicyWithLinks; desktops: number }> {
    const policy = await this.deps.policies.forGroups(req.groupIds);
    const offer = policy?.pools.find((p) => p.poolId === poolId);
    if (!policy || !offer) {
      const reason = policy ? `policy "${policy.name}" does not offer pool ${poolId}` : 'no policy matches your groups';
      await this.deps.audit.record(req.actor, { action: 'connection.denied', outcome: 'denied', targetType: 'pool', targetId: poolId, reason });
      throw new ForbiddenError(`this desktop is not offered to you: ${reason}`);
    }
    return { policy, desktops: offer.desktops };
  }

  async protocolsOf(policy: PolicyWithLinks): Promise<ProtocolPlanEntry[]> {
    if (!policy.protocolPlanId) return DEFAULT_PROTOCOLS;
    if (policy.protocols) return policy.protocols;
    return (await this.deps.plans.get('protocol', policy.protocolPlanId)).protocols;
  }

  /** Returns the connection, and what the status step would otherwise look up again. */
  async connect(req: Requester, input: { poolId: string; workstationId?: string; additional?: boolean; protocol?: Protocol }): Promise<{ connection: ConnectionRow; known: KnownContext }> {
    const { policy, desktops } = await this.offerFor(req, input.poolId);
    const protocols = await this.protocolsOf(policy);
    const protocol = input.protocol ?? protocols[0]!.protocol;
    if (!protocols.some((p) => p.protocol === protocol)) {
      throw new InvalidInputError(`protocol ${protocol} is not in this desktop's protocol plan (${protocols.map((p) => p.protocol).join(', ')})`, [{ path: 'protocol', message: 'not offered' }]);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const result = (await this.#fastConnect(req, policy, desktops, input, protocol)) ?? (await this.deps.db.transaction((tx) => this.#assignAndOpen(tx, req, policy, desktops, input, protocol)));
        this.#afterCommit(req.actor, input.poolId, result);
        return { connection: result.connection, known: { policy, protocols, workstation: result.workstation, assignment: result.assignment } };
      } catch (err) {
        // Another transaction assigned the same machine between our read and our insert: try again.
        if (isUniqueViolation(err, 'assignments_active_workstation_key') && attempt < ASSIGN_RETRIES) continue;
        throw err;
      }
    }
  }

  /**
   * The common case — a user who holds nothing here yet (or asks for one more desktop, within the
   * offer) and a running machine is free — in one statement (see `assignRunningAndOpen`). Anything else, or no running machine free, is
   * `undefined` and goes the transactional way.
   */
  async #fastConnect(req: Requester, policy: PolicyWithLinks, desktops: number, input: { poolId: string; workstationId?: string; additional?: boolean }, protocol: Protocol) {
    if (input.workstationId) return undefined;
    if (input.additional) {
      const mine = await this.deps.repo.activeAssignments(req.actor.userId, input.poolId);
      if (mine.length >= desktops || mine.some((m) => m.workstation.powerState === 'terminated')) return undefined;
    }
    const now = this.deps.clock.now();
    const { actor } = req;
    const r = await this.deps.repo.assignRunningAndOpen({
      userId: actor.userId,
      poolId: input.poolId,
      policyId: policy.id,
      mode: policy.assignmentMode,
      protocol,
      clientAddress: req.clientAddress,
      now,
      evenIfHolding: !!input.additional,
      audit: { actorName: actor.username, sourceAddress: actor.sourceAddress, requestId: actor.requestId },
    });
    if (!r) return undefined;
    this.deps.audit.logged(actor, { action: 'connection.create', outcome: 'success', targetType: 'connection', targetId: r.connection.id });
    return { ...r, launched: undefined, start: undefined };
  }

  async #assignAndOpen(tx: DbOrTx, req: Requester, policy: PolicyWithLinks, desktops: number, input: { poolId: string; workstationId?: string; additional?: boolean }, protocol: Protocol) {
    const now = this.deps.clock.now();
    const mine = await this.deps.repo.activeAssignments(req.actor.userId, input.poolId, tx);
    // A machine that is gone (terminated, or a launch that failed) frees its assignment.
    for (const a of mine.filter((m) => m.workstation.powerState === 'terminated')) await this.deps.repo.releaseAssignment(a.id, 'workstation-gone', now, tx);
    const held = mine.filter((m) => m.workstation.powerState !== 'terminated');
    let assignment = input.workstationId ? held.find((a) => a.workstationId === input.workstationId) : input.additional ? undefined : held[0];
    if (input.workstationId && !assignment) {
      await this.deps.audit.record(req.actor, { action: 'connection.denied', outcome: 'denied', targetType: 'workstation', targetId: input.workstationId, reason: 'not assigned to you' });
      throw new ForbiddenError('this workstation is not assigned to you');
    }
    let launched: WorkstationRow | undefined;
    let start: WorkstationRow | undefined;
    if (!assignment) {
      if (held.length >= desktops) throw new NoDesktopAvailableError(`you already hold ${held.length} of the ${desktops} desktop(s) this pool allows you`);
      let ws = await this.deps.repo.lockFreeWorkstation(input.poolId, { allowStopped: policy.startStoppedOnLogin }, tx);
      if (!ws) {
        if (!policy.launchOnLogin) throw new NoDesktopAvailableError('no desktop is free in this pool right now; try again in a few minutes');
        const reserved = await this.deps.pools.reservePendingLaunch(input.poolId, tx);
        if (!reserved.ok) throw new NoDesktopAvailableError(`no desktop available: ${reserved.reason}`);
        ws = launched = reserved.workstation;
      }
      const row = await this.deps.repo.insertAssignment({ userId: req.actor.userId, workstationId: ws.id, poolId: input.poolId, policyId: policy.id, mode: policy.assignmentMode, since: now, updatedAt: now }, tx);
      assignment = { ...row, workstation: ws };
    } else {
      // A held machine: lock its row, so a power-plan stop deciding at this moment either sees this
      // connection or has finished, and we read the power state it left (and start it again).
      const fresh = await this.deps.repo.lockWorkstation(assignment.workstationId!, tx);
      if (fresh) assignment = { ...assignment, workstation: fresh };
    }
    if (!launched && policy.startStoppedOnLogin && ['stopped', 'stopping'].includes(assignment.workstation.powerState)) start = assignment.workstation;
    const connection = await this.deps.repo.insertConnection(
      { userId: req.actor.userId, workstationId: assignment.workstationId!, assignmentId: assignment.id, protocol, clientAddress: req.clientAddress, state: 'starting', requestedAt: now, updatedAt: now },
      tx,
    );
    await this.deps.audit.record(
      req.actor,
      { action: 'connection.create', outcome: 'success', targetType: 'connection', targetId: connection.id, details: { pool: input.poolId, workstation: assignment.workstationId, protocol, launched: !!launched, starting: !!start, mode: policy.assignmentMode } },
      tx,
    );
    return { connection, launched, start, workstation: assignment.workstation, assignment };
  }

  /** Side effects outside the database happen after the commit, and each is idempotent. */
  #afterCommit(actor: Actor, poolId: string, r: { connection: ConnectionRow; launched?: WorkstationRow; start?: WorkstationRow }): void {
    const log = this.deps.log.child({ connection: r.connection.id });
    if (r.launched) {
      this.deps.pools.executeLaunch(r.launched.id).catch((err: unknown) => log.warn({ err }, 'launch on login failed'));
    }
    if (r.start) {
      this.deps.workstations.start(actor, r.start.id).catch(async (err: unknown) => {
        log.warn({ err }, 'start on login failed');
        await this.deps.repo.closeLive(r.connection.id, 'failed', `the desktop could not be started: ${err instanceof Error ? err.message : String(err)}`, this.deps.clock.now());
      });
    }
    this.deps.pools.poke(poolId);
  }

  /**
   * Release an assignment in the caller's transaction (release plans): its live connections close,
   * the machine goes back to the pool. Returns what to do after the commit (`afterRelease`).
   */
  async releaseAssignmentIn(actor: Actor, assignmentId: string, reason: 'logout' | 'disconnect' | 'idle' | 'workstation-gone', details: Record<string, unknown>, tx: DbOrTx): Promise<{ grantIds: string[]; poolId: string | null } | null> {
    const now = this.deps.clock.now();
    const live = await this.deps.repo.liveConnectionsOf([assignmentId], tx);
    const grantIds: string[] = [];
    for (const c of live) {
      grantIds.push(...(await this.deps.repo.liveGrants(c.id, tx)).map((g) => g.id));
      await this.deps.repo.closeLive(c.id, 'closed', `released: ${reason}`, now, tx);
    }
    const released = await this.deps.repo.releaseAssignment(assignmentId, reason, now, tx);
    if (!released) return null;
    await this.deps.audit.record(actor, { action: 'assignment.release', outcome: 'success', targetType: 'assignment', targetId: assignmentId, reason, details: { workstation: released.workstationId, user: released.userId, connectionsClosed: live.length, ...details } }, tx);
    return { grantIds, poolId: released.poolId };
  }

  /** After `releaseAssignmentIn` committed: revoke the grants (gateways close the sessions) and poke the pool. */
  async afterRelease(r: { grantIds: string[]; poolId: string | null }): Promise<void> {
    for (const g of r.grantIds) await this.deps.gateways.revokeGrant(g, 'assignment released').catch((err: unknown) => this.deps.log.warn({ err, grant: g }, 'grant revoke failed'));
    if (r.poolId) this.deps.pools.poke(r.poolId);
  }

  async getOwned(actor: Actor, id: string, canSeeAll: boolean): Promise<ConnectionRow> {
    const c = await this.deps.repo.findConnection(id);
    if (!c || (!canSeeAll && c.userId !== actor.userId)) throw new NotFoundError('connection', id);
    return c;
  }

  /**
   * End a connection: revoke its grants (the gateway closes a live session at once) and, for a
   * floating assignment (or when `release` is asked), give the machine back to the pool.
   */
  async release(actor: Actor, connection: ConnectionRow, opts: { releaseAssignment?: boolean; reason?: string } = {}): Promise<void> {
    const now = this.deps.clock.now();
    const reason = opts.reason ?? 'user';
    const grants = await this.deps.repo.liveGrants(connection.id);
    const assignment = connection.assignmentId ? await this.deps.repo.findAssignment(connection.assignmentId) : undefined;
    const releaseIt = assignment?.state === 'active' && (assignment.mode === 'floating' || opts.releaseAssignment === true);
    await this.deps.db.transaction(async (tx) => {
      await this.deps.repo.closeLive(connection.id, 'closed', reason === 'user' ? 'released by the user' : reason, now, tx);
      if (releaseIt) await this.deps.repo.releaseAssignment(assignment.id, reason === 'user' ? 'user' : 'admin', now, tx);
      await this.deps.audit.record(actor, { action: 'connection.release', outcome: 'success', targetType: 'connection', targetId: connection.id, details: { assignmentReleased: releaseIt, mode: assignment?.mode } }, tx);
    });
    for (const g of grants) await this.deps.gateways.revokeGrant(g.id, 'connection released').catch((err: unknown) => this.deps.log.warn({ err, grant: g.id }, 'grant revoke failed'));
    if (assignment?.poolId) this.deps.pools.poke(assignment.poolId);
  }
}
