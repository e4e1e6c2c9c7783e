import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { DEFAULT_PORTS } from '@stagedoor/contract';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { Protocol, ProtocolPlanEntry } from '../../db/schema/policies.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, ForbiddenError, InvalidInputError, NoDesktopAvailableError, NotFoundError, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from '../identity/actor.ts';
import type { PlansService } from '../plans/plans.service.ts';
import type { PoliciesService } from '../policies/policies.service.ts';
import type { PolicyWithLinks } from '../policies/policies.repository.ts';
import type { WorkstationsService } from '../workstations/workstations.service.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';
import { HostUnresolvableError, resolveFor, systemResolver, type HostResolver } from '../workstations/host-names.ts';
import type { AssignmentRow, ConnectionRow, ConnectionsRepository, ConnectKey, Ended } from './connections.repository.ts';
import type { GrantIssuer, PoolLaunches } from './ports.ts';
import { firstFreeSlot } from './slots.ts';

/** Without a protocol plan, a policy connects over RDP, directly. */
export const DEFAULT_PROTOCOLS: ProtocolPlanEntry[] = [{ protocol: 'rdp', port: DEFAULT_PORTS.rdp, viaGateway: false }];
/** Lost races (a machine or a slot taken by a concurrent connect) are retried this often. */
const ASSIGN_RETRIES = 5;
const RETRYABLE = ['assignments_active_workstation_key', 'assignments_active_user_slot_key'];
const NOTHING_ENDED: Ended = { connectionIds: [], grants: [] };

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
  /** Static hosts registered by DNS name are resolved with this at connect time (default: the system resolver). */
  resolveHost?: HostResolver;
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

export interface ConnectInput {
  poolId: string;
  workstationId?: string;
  additional?: boolean;
  protocol?: Protocol;
}

/** What a connect answers: a new connection, the user's live one again, or a replay of an earlier request. */
export interface ConnectResult {
  connection: ConnectionRow;
  known?: KnownContext;
  /** `new`: opened now; `existing`: the user's live connection on that desktop; `replayed`: the same Idempotency-Key answered before. */
  outcome: 'new' | 'existing' | 'replayed';
}

/** What one attempt of the connect produced, before the answer is shaped. */
interface Opened {
  connection: ConnectionRow;
  workstation: WorkstationRow;
  assignment: AssignmentRow;
  reused: boolean;
  launched?: WorkstationRow;
  start?: WorkstationRow;
  ended: Ended;
}

/**
 * The connect flow: policy → offer → assignment (one transaction; row locks and SKIP LOCKED so
 * concurrent users spread over free machines; partial unique indexes make a double assignment and
 * more desktops per user than the policy allows impossible, and a lost race is retried) → start or
 * launch when needed, after the commit. See docs/connect-flow.md for the invariants.
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

  /**
   * Connect. With an idempotency key, a repeat of a request that committed (a retry after a lost
   * answer or a crashed broker, a double click) is answered with that request's connection; without
   * one, a repeated connect to a desktop the user holds gets their live connection from the same
   * address back instead of a second one.
   */
  async connect(req: Requester, input: ConnectInput, idempotencyKey?: string): Promise<ConnectResult> {
    const key: ConnectKey | null = idempotencyKey ? { key: idempotencyKey, requestHash: requestHashOf(input) } : null;
    const { policy, desktops } = await this.offerFor(req, input.poolId);
    const protocols = await this.protocolsOf(policy);
    const protocol = input.protocol ?? protocols[0]!.protocol;
    const entry = protocols.find((p) => p.protocol === protocol);
    if (!entry) {
      throw new InvalidInputError(`protocol ${protocol} is not in this desktop's protocol plan (${protocols.map((p) => p.protocol).join(', ')})`, [{ path: 'protocol', message: 'not offered' }]);
    }
    const ctx = { req, policy, desktops, input, protocol, viaGateway: entry.viaGateway, key };
    for (let attempt = 1; ; attempt++) {
      try {
        const opened = (await this.#fastConnect(ctx)) ?? (await this.deps.db.transaction((tx) => this.#assignAndOpen(tx, ctx)));
        this.#afterCommit(req.actor, input.poolId, opened);
        return { connection: opened.connection, known: { policy, protocols, workstation: opened.workstation, assignment: opened.assignment }, outcome: opened.reused ? 'existing' : 'new' };
      } catch (err) {
        if (key && isUniqueViolation(err, 'connect_requests_pkey')) return this.#replay(req, key);
        // A concurrent connect took the machine, or (the same user's) the slot, between our read and our insert.
        if (RETRYABLE.some((c) => isUniqueViolation(err, c)) && attempt < ASSIGN_RETRIES) continue;
        // Nothing of this connect was written (the transaction rolled back); the admin reads why here.
        if (err instanceof HostUnresolvableError) {
          await this.deps.audit.record(req.actor, { action: 'connection.create', outcome: 'failure', targetType: 'workstation', targetId: err.workstation.id, reason: err.message, details: { pool: input.poolId, hostName: err.hostName } });
        }
        throw err;
      }
    }
  }

  /** The connection an earlier request with this key produced; the same key for another request is refused. */
  async #replay(req: Requester, key: ConnectKey): Promise<ConnectResult> {
    const prior = await this.deps.repo.connectionForKey(req.actor.userId, key.key);
    // Only a committed request can collide on the key; gone again means purged meanwhile.
    if (!prior) throw new ConflictError('the Idempotency-Key was used by an earlier request that is no longer remembered; use a new key');
    if (prior.requestHash !== key.requestHash) {
      throw new InvalidInputError('this Idempotency-Key was used for a different connect request; use a new key for a new request', [{ path: 'headers.idempotency-key', message: 'reused for a different request' }]);
    }
    return { connection: prior.connection, outcome: 'replayed' };
  }

  /**
   * The common case — a user who holds nothing here yet (or asks for one more desktop, within the
   * offer) and a running machine is free — in one statement (see `assignRunningAndOpen`). Anything
   * else, or no running machine free, is `undefined` and goes the transactional way.
   */
  async #fastConnect(c: ConnectContext): Promise<Opened | undefined> {
    const { req, input } = c;
    if (input.workstationId) return undefined;
    let slot = 1;
    if (input.additional) {
      const mine = await this.deps.repo.activeAssignments(req.actor.userId, input.poolId);
      if (mine.length >= c.desktops || mine.some((m) => m.workstation.powerState === 'terminated')) return undefined;
      slot = firstFreeSlot(mine.map((m) => m.slot), c.desktops)!;
    }
    const { actor } = req;
    const r = await this.deps.repo.assignRunningAndOpen({
      userId: actor.userId,
      poolId: input.poolId,
      policyId: c.policy.id,
      mode: c.policy.assignmentMode,
      protocol: c.protocol,
      viaGateway: c.viaGateway,
      clientAddress: req.clientAddress,
      now: this.deps.clock.now(),
      evenIfHolding: !!input.additional,
      slot,
      idempotency: c.key,
      audit: { actorName: actor.username, sourceAddress: actor.sourceAddress, requestId: actor.requestId },
    });
    if (!r) return undefined;
    this.deps.audit.logged(actor, { action: 'connection.create', outcome: 'success', targetType: 'connection', targetId: r.connection.id });
    return { ...r, reused: false, ended: NOTHING_ENDED };
  }

  async #assignAndOpen(tx: DbOrTx, c: ConnectContext): Promise<Opened> {
    const { req, input, policy } = c;
    const now = this.deps.clock.now();
    const mine = await this.deps.repo.activeAssignments(req.actor.userId, input.poolId, tx);
    // A machine that is gone (terminated, or a launch that failed) frees its assignment.
    const ended: Ended = { connectionIds: [], grants: [] };
    for (const a of mine.filter((m) => m.workstation.powerState === 'terminated')) {
      const r = await this.deps.repo.releaseAssignment(a.id, 'workstation-gone', now, tx);
      if (r) ended.grants.push(...r.grants);
    }
    const held = mine.filter((m) => m.workstation.powerState !== 'terminated');
    let assignment = input.workstationId ? held.find((a) => a.workstationId === input.workstationId) : input.additional ? undefined : held[0];
    if (input.workstationId && !assignment) {
      await this.deps.audit.record(req.actor, { action: 'connection.denied', outcome: 'denied', targetType: 'workstation', targetId: input.workstationId, reason: 'not assigned to you' });
      throw new ForbiddenError('this workstation is not assigned to you');
    }
    let launched: WorkstationRow | undefined;
    let start: WorkstationRow | undefined;
    if (!assignment) {
      const slot = firstFreeSlot(held.map((a) => a.slot), c.desktops);
      if (held.length >= c.desktops || slot === null) throw new NoDesktopAvailableError(`you already hold ${held.length} of the ${c.desktops} desktop(s) this pool allows you`);
      let ws = await this.deps.repo.lockFreeWorkstation(input.poolId, { allowStopped: policy.startStoppedOnLogin }, tx);
      if (!ws) {
        if (!policy.launchOnLogin) throw new NoDesktopAvailableError('no desktop is free in this pool right now; try again in a few minutes');
        const reserved = await this.deps.pools.reservePendingLaunch(input.poolId, tx);
        if (!reserved.ok) throw new NoDesktopAvailableError(`no desktop available: ${reserved.reason}`);
        ws = launched = reserved.workstation;
      }
      const row = await this.deps.repo.insertAssignment({ userId: req.actor.userId, workstationId: ws.id, poolId: input.poolId, policyId: policy.id, mode: policy.assignmentMode, slot, since: now, updatedAt: now }, tx);
      assignment = { ...row, workstation: ws };
    } else {
      // A held machine: lock its row, so a power-plan stop deciding at this moment either sees this
      // connection or has finished, and we read the power state it left (and start it again). The
      // lock also queues a user's overlapping connects to it, so the second finds the first's connection.
      const fresh = await this.deps.repo.lockWorkstation(assignment.workstationId!, tx);
      if (fresh) assignment = { ...assignment, workstation: fresh };
    }
    const named = assignment.workstation;
    if (named.dnsName) assignment = { ...assignment, workstation: await this.#resolve({ ...named, dnsName: named.dnsName }, tx) };
    if (!launched && policy.startStoppedOnLogin && ['stopped', 'stopping'].includes(assignment.workstation.powerState)) start = assignment.workstation;
    const existing = launched ? undefined : await this.deps.repo.liveConnectionFor(assignment.id, c.protocol, req.clientAddress, tx);
    const connection =
      existing ??
      (await this.deps.repo.insertConnection(
        { userId: req.actor.userId, workstationId: assignment.workstationId!, assignmentId: assignment.id, protocol: c.protocol, viaGateway: c.viaGateway, clientAddress: req.clientAddress, state: 'starting', requestedAt: now, updatedAt: now },
        tx,
      ));
    if (c.key) await this.deps.repo.storeKey(req.actor.userId, c.key, connection.id, now, tx);
    if (!existing) {
      await this.deps.audit.record(
        req.actor,
        { action: 'connection.create', outcome: 'success', targetType: 'connection', targetId: connection.id, details: { pool: input.poolId, workstation: assignment.workstationId, protocol: c.protocol, launched: !!launched, starting: !!start, mode: policy.assignmentMode, slot: assignment.slot } },
        tx,
      );
    }
    return { connection, launched, start, workstation: assignment.workstation, assignment, reused: !!existing, ended };
  }

  /**
   * A static host registered by DNS name (DHCP) is resolved here, where its connection's target is
   * chosen, inside the transaction that holds its row: the answer is written as its address (the
   * grant and the instructions read it), and a name that does not resolve fails the whole connect
   * before anything is written (`HostUnresolvableError`, a 409 naming the host and the reason).
   */
  async #resolve(ws: WorkstationRow & { dnsName: string }, tx: DbOrTx): Promise<WorkstationRow> {
    const address = await resolveFor(this.deps.resolveHost ?? systemResolver, ws);
    if (address === ws.privateAddress) return ws;
    await this.deps.repo.setResolvedAddress(ws.id, address, this.deps.clock.now(), tx);
    return { ...ws, privateAddress: address };
  }

  /** Side effects outside the database happen after the commit, and each is idempotent. */
  #afterCommit(actor: Actor, poolId: string, r: Opened): void {
    const log = this.deps.log.child({ connection: r.connection.id });
    this.deps.gateways.announceRevoked(r.ended.grants, 'assignment released: workstation-gone');
    if (r.launched) {
      this.deps.pools.executeLaunch(r.launched.id).catch((err: unknown) => log.warn({ err }, 'launch on login failed'));
    }
    if (r.start) {
      this.deps.workstations.start(actor, r.start.id).catch(async (err: unknown) => {
        log.warn({ err }, 'start on login failed');
        const closed = await this.deps.repo.closeWithGrants(r.connection.id, 'failed', `the desktop could not be started: ${err instanceof Error ? err.message : String(err)}`, this.deps.clock.now());
        if (closed) this.deps.gateways.announceRevoked(closed.grants, 'the desktop could not be started');
      });
    }
    this.deps.pools.poke(poolId);
  }

  /**
   * Release an assignment in the caller's transaction (release plans, access review): its live
   * connections close and their grants are revoked, the machine goes back to the pool. Returns what
   * to do after the commit (`afterRelease`).
   */
  async releaseAssignmentIn(actor: Actor, assignmentId: string, reason: 'logout' | 'disconnect' | 'idle' | 'workstation-gone' | 'admin', details: Record<string, unknown>, tx: DbOrTx): Promise<Released | null> {
    const released = await this.deps.repo.releaseAssignment(assignmentId, reason, this.deps.clock.now(), tx);
    if (!released) return null;
    await this.deps.audit.record(
      actor,
      { action: 'assignment.release', outcome: 'success', targetType: 'assignment', targetId: assignmentId, reason, details: { workstation: released.workstationId, user: released.userId, connectionsClosed: released.connectionIds.length, grantsRevoked: released.grants.map((g) => g.id), ...details } },
      tx,
    );
    return { grants: released.grants, poolId: released.poolId, reason };
  }

  /** After `releaseAssignmentIn` (or a close) committed: tell the gateways (they close the sessions) and poke the pool. */
  afterRelease(r: Released): void {
    this.deps.gateways.announceRevoked(r.grants, `assignment released: ${r.reason}`);
    if (r.poolId) this.deps.pools.poke(r.poolId);
  }

  async getOwned(actor: Actor, id: string, canSeeAll: boolean): Promise<ConnectionRow> {
    const c = await this.deps.repo.findConnection(id);
    if (!c || (!canSeeAll && c.userId !== actor.userId)) throw new NotFoundError('connection', id);
    return c;
  }

  /**
   * End a connection. A floating assignment (or, when asked, a persistent one) is released, and with
   * it every connection on that desktop — two tabs, the CLI beside the portal — and all their
   * grants; otherwise only this connection and its grants end. Everything is read and written in one
   * transaction, so a grant issued a moment before is revoked too.
   */
  async release(actor: Actor, connection: ConnectionRow, opts: { releaseAssignment?: boolean; reason?: string } = {}): Promise<void> {
    const now = this.deps.clock.now();
    const byUser = (opts.reason ?? 'user') === 'user';
    const outcome = await this.deps.db.transaction(async (tx) => {
      const assignment = connection.assignmentId ? await this.deps.repo.findAssignment(connection.assignmentId, tx) : undefined;
      const releaseIt = assignment?.state === 'active' && (assignment.mode === 'floating' || opts.releaseAssignment === true);
      const released = releaseIt ? await this.deps.repo.releaseAssignment(assignment.id, byUser ? 'user' : 'admin', now, tx) : undefined;
      // Not released here (persistent, or released by someone else a moment ago): this connection alone.
      const closed = released ? undefined : await this.deps.repo.closeWithGrants(connection.id, 'closed', byUser ? 'released by the user' : (opts.reason ?? 'admin'), now, tx);
      const ended = released ?? closed ?? NOTHING_ENDED;
      await this.deps.audit.record(
        actor,
        { action: 'connection.release', outcome: 'success', targetType: 'connection', targetId: connection.id, details: { assignmentReleased: !!released, mode: assignment?.mode, connectionsClosed: ended.connectionIds, grantsRevoked: ended.grants.map((g) => g.id) } },
        tx,
      );
      return { ended, poolId: assignment?.poolId ?? null };
    });
    // The gateway closes the sessions with this reason in words the user's tab shows (browser sessions).
    this.deps.gateways.announceRevoked(outcome.ended.grants, byUser ? 'connection released' : 'disconnected by an administrator');
    if (outcome.poolId) this.deps.pools.poke(outcome.poolId);
  }

  /** Forget idempotency keys older than `before` (housekeeping): a retry comes within minutes, not days. */
  purgeConnectKeys(before: Date): Promise<number> {
    return this.deps.repo.deleteKeysBefore(before);
  }
}

/** What a release committed: the grants to announce and the pool to poke. */
export interface Released {
  grants: Ended['grants'];
  poolId: string | null;
  reason: string;
}

interface ConnectContext {
  req: Requester;
  policy: PolicyWithLinks;
  desktops: number;
  input: ConnectInput;
  protocol: Protocol;
  viaGateway: boolean;
  key: ConnectKey | null;
}

/** The same request gives the same hash: its fields in a fixed order (this runs on every connect). */
function requestHashOf(input: ConnectInput): string {
  return createHash('sha256').update(`${input.poolId}|${input.workstationId ?? ''}|${input.additional ? 'additional' : ''}|${input.protocol ?? ''}`).digest('hex');
}
