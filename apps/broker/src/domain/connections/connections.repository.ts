import { and, asc, desc, eq, inArray, isNull, ne, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { rowFromJson } from '../../db/json-rows.ts';
import { executeNamed } from '../../db/named-statement.ts';
import { assignments, connectRequests, connections, grants, workstations } from '../../db/schema/index.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';

export type AssignmentRow = typeof assignments.$inferSelect;
export type ConnectionRow = typeof connections.$inferSelect;
export type GrantRow = typeof grants.$inferSelect;

export const LIVE_CONNECTION_STATES = ['starting', 'ready', 'connected'] as const;

/** A grant revoked in the database, for the gateways to be told after the commit. */
export interface RevokedGrant {
  id: string;
  gatewayCluster: string;
  connectionId: string;
}

/** What a release or a close changed, in one statement. */
export interface Ended {
  connectionIds: string[];
  grants: RevokedGrant[];
}

/** The idempotency key of a connect, kept with the connection it produced. */
export interface ConnectKey {
  key: string;
  requestHash: string;
}

/** What the one-statement connect writes besides the rows' own ids. */
export interface FastConnect {
  userId: string;
  poolId: string;
  policyId: string;
  mode: string;
  protocol: string;
  clientAddress: string;
  viaGateway: boolean;
  now: Date;
  /** Assign even when the user holds a desktop of this pool already (an additional desktop). */
  evenIfHolding: boolean;
  /** Which of the user's desktops in this pool (1 when they hold none; the first free one otherwise). */
  slot: number;
  idempotency: ConnectKey | null;
  audit: { actorName: string; sourceAddress: string | null; requestId: string | null };
}

export class ConnectionsRepository {
  constructor(private readonly db: DbOrTx) {}

  /**
   * Lock one available machine of the pool for this transaction. `SKIP LOCKED` sends concurrent
   * users to different machines instead of queueing them on the same row. Running machines first,
   * then booting ones, then stopped ones (which must start) — one small query per tier, without a
   * sort, so the scan stops at the first free row. The `assignment_id` marker is what makes SKIP
   * LOCKED exact: a row assigned by a transaction that committed after this one began is re-checked
   * when locked and skipped. (The partial unique index on assignments stays the real invariant.)
   */
  async lockFreeWorkstation(poolId: string, opts: { allowStopped: boolean }, tx: DbOrTx): Promise<WorkstationRow | undefined> {
    const tiers: PowerState[][] = opts.allowStopped ? [['running'], ['pending'], ['stopped', 'stopping']] : [['running'], ['pending']];
    for (const states of tiers) {
      const [row] = await tx
        .select()
        .from(workstations)
        .where(
          and(
            eq(workstations.poolId, poolId),
            isNull(workstations.assignmentId),
            eq(workstations.maintenance, false),
            ne(workstations.health, 'unhealthy'),
            inArray(workstations.powerState, states),
          ),
        )
        .limit(1)
        .for('update', { skipLocked: true });
      if (row) return row;
    }
    return undefined;
  }

  /**
   * The common connect in ONE statement, so it costs one round trip instead of eight (begin, lock,
   * assignment, marker, connection, audit, commit): lock a free *running* machine of the pool
   * (`SKIP LOCKED`, same conditions as the first tier of `lockFreeWorkstation`), assign it, set its
   * marker, open the connection as `ready` (the machine is running) and write the audit row. Hosts
   * known by DNS name are left to the transactional path, which resolves the name before it writes. A
   * statement is atomic, so either all of it happens or none; the partial unique index on active
   * assignments stays the invariant (a lost race raises it, and the caller retries). `undefined`
   * when no running machine is free, or the user holds a desktop here already (unless
   * `evenIfHolding`): the caller takes the transactional path (their own machine back, booting or
   * stopped machines, launch on login). The audit row's columns are spelled here because it is part of the
   * same statement; its shape is `AuditService.record`'s. (Data-modifying WITH parts run whether
   * or not the final select reads them.) Two overlapping connects of one user both pass the
   * `not exists` (each sees the snapshot before the other's commit) but insert the same `slot`: the
   * second waits for the first and gets 23505 on `assignments_active_user_slot_key`, and nothing of
   * it is written; an `Idempotency-Key` already stored fails the same way on `connect_requests_pkey`.
   */
  async assignRunningAndOpen(p: FastConnect, db: DbOrTx = this.db): Promise<{ workstation: WorkstationRow; assignment: AssignmentRow; connection: ConnectionRow } | undefined> {
    const result = await executeNamed(db, 'stagedoor_connect_fast', sql`
      with free as (
        select w.* from workstations w
        where w.pool_id = ${p.poolId} and w.assignment_id is null and w.maintenance = false
          and w.health <> 'unhealthy' and w.power_state = 'running' and w.dns_name is null
          and (${p.evenIfHolding} or not exists (select 1 from assignments h where h.user_id = ${p.userId} and h.pool_id = ${p.poolId} and h.state = 'active'))
        limit 1 for update skip locked
      ), a as (
        insert into assignments (user_id, workstation_id, pool_id, policy_id, mode, slot, state, since, updated_at)
        select ${p.userId}, free.id, ${p.poolId}, ${p.policyId}, ${p.mode}, ${p.slot}::int, 'active', ${p.now}, ${p.now} from free
        returning *
      ), marked as (
        update workstations w set assignment_id = a.id from a where w.id = a.workstation_id
      ), c as (
        insert into connections (user_id, workstation_id, assignment_id, protocol, via_gateway, client_address, state, requested_at, ready_at, updated_at)
        select ${p.userId}, a.workstation_id, a.id, ${p.protocol}, ${p.viaGateway}::boolean, ${p.clientAddress}, 'ready', ${p.now}, ${p.now}, ${p.now} from a
        returning *
      ), keyed as (
        insert into connect_requests (user_id, key, request_hash, connection_id, created_at)
        select ${p.userId}, ${p.idempotency?.key ?? null}::text, ${p.idempotency?.requestHash ?? null}::text, c.id, ${p.now} from c
        where ${p.idempotency?.key ?? null}::text is not null
      ), audit as (
        insert into audit_events (at, actor_user_id, actor_name, source_address, action, target_type, target_id, outcome, details, request_id)
        select ${p.now}, ${p.userId}, ${p.audit.actorName}, ${p.audit.sourceAddress}, 'connection.create', 'connection', c.id::text, 'success',
          jsonb_build_object('pool', ${p.poolId}::text, 'workstation', c.workstation_id, 'protocol', c.protocol, 'launched', false, 'starting', false, 'mode', ${p.mode}::text),
          ${p.audit.requestId}
        from c
      )
      select to_jsonb(free) as w, to_jsonb(a) as a, to_jsonb(c) as c from free, a, c`);
    const row = result.rows[0] as Record<'w' | 'a' | 'c', unknown> | undefined;
    if (!row) return undefined;
    return { workstation: rowFromJson(workstations, row.w), assignment: rowFromJson(assignments, row.a), connection: rowFromJson(connections, row.c) };
  }

  /** A static host's DNS name resolved to this address at connect time (its row is locked by the caller). */
  async setResolvedAddress(id: string, address: string, at: Date, tx: DbOrTx): Promise<void> {
    await tx.update(workstations).set({ privateAddress: address, updatedAt: at }).where(eq(workstations.id, id));
  }

  async lockWorkstation(id: string, tx: DbOrTx): Promise<WorkstationRow | undefined> {
    const [row] = await tx.select().from(workstations).where(eq(workstations.id, id)).for('update');
    return row;
  }

  async activeAssignments(userId: string, poolId: string | null, db: DbOrTx = this.db): Promise<(AssignmentRow & { workstation: WorkstationRow })[]> {
    const rows = await db
      .select({ a: assignments, w: workstations })
      .from(assignments)
      .innerJoin(workstations, eq(workstations.id, assignments.workstationId))
      .where(and(eq(assignments.userId, userId), eq(assignments.state, 'active'), poolId ? eq(assignments.poolId, poolId) : sql`true`))
      .orderBy(asc(assignments.since));
    return rows.map((r) => ({ ...r.a, workstation: r.w }));
  }

  /** Insert the assignment and mark its machine, in the caller's transaction. */
  async insertAssignment(row: typeof assignments.$inferInsert & { workstationId: string }, tx: DbOrTx): Promise<AssignmentRow> {
    const [created] = await tx.insert(assignments).values(row).returning();
    await tx.update(workstations).set({ assignmentId: created!.id }).where(eq(workstations.id, row.workstationId));
    return created!;
  }

  /**
   * Release an active assignment, in the caller's transaction, and with it everything that reached
   * the machine through it: every live connection on it closes and every live grant of those
   * connections is revoked — in the same statement, so no path that releases can leave a grant that
   * still relays to a machine the next user gets (the gateways are told after the commit).
   * Undefined when it was not active (released already by someone else).
   */
  async releaseAssignment(id: string, reason: string, at: Date, tx: DbOrTx): Promise<(AssignmentRow & Ended) | undefined> {
    const result = await tx.execute(sql`
      with a as (
        update assignments set state = 'released', released_at = greatest(since, ${at}::timestamptz), release_reason = ${reason}, updated_at = ${at}::timestamptz
        where id = ${id} and state = 'active'
        returning *
      ), unmarked as (
        update workstations w set assignment_id = null from a where w.assignment_id = a.id
      ), c as (
        update connections c set state = 'closed', closed_at = ${at}::timestamptz, end_reason = ${`released: ${reason}`}, updated_at = ${at}::timestamptz
        from a where c.assignment_id = a.id and c.state in ('starting', 'ready', 'connected')
        returning c.id
      ), g as (
        update grants g set state = 'revoked', revoked_at = ${at}::timestamptz
        from connections c2, a where c2.assignment_id = a.id and g.connection_id = c2.id and g.state in ('issued', 'used')
        returning g.id, g.gateway_cluster, g.connection_id
      )
      select to_jsonb(a) as a,
        (select coalesce(jsonb_agg(c.id), '[]'::jsonb) from c) as connections,
        (select coalesce(jsonb_agg(jsonb_build_object('id', g.id, 'gatewayCluster', g.gateway_cluster, 'connectionId', g.connection_id)), '[]'::jsonb) from g) as grants
      from a`);
    const row = (result as { rows: Record<'a' | 'connections' | 'grants', unknown>[] }).rows[0];
    if (!row) return undefined;
    return { ...rowFromJson(assignments, row.a), ...endedOf(row) };
  }

  /**
   * Close one live connection and revoke its live grants, in one statement (a persistent desktop's
   * disconnect: the assignment stays). Undefined when it was not live.
   */
  async closeWithGrants(id: string, state: 'closed' | 'failed', reason: string, at: Date, db: DbOrTx = this.db): Promise<(ConnectionRow & Ended) | undefined> {
    const result = await db.execute(sql`
      with c as (
        update connections set state = ${state}, closed_at = ${at}::timestamptz, end_reason = ${reason}, updated_at = ${at}::timestamptz
        where id = ${id} and state in ('starting', 'ready', 'connected')
        returning *
      ), g as (
        update grants g set state = 'revoked', revoked_at = ${at}::timestamptz
        from c where g.connection_id = c.id and g.state in ('issued', 'used')
        returning g.id, g.gateway_cluster, g.connection_id
      )
      select to_jsonb(c) as c, jsonb_build_array(c.id) as connections,
        (select coalesce(jsonb_agg(jsonb_build_object('id', g.id, 'gatewayCluster', g.gateway_cluster, 'connectionId', g.connection_id)), '[]'::jsonb) from g) as grants
      from c`);
    const row = (result as { rows: Record<'c' | 'connections' | 'grants', unknown>[] }).rows[0];
    if (!row) return undefined;
    return { ...rowFromJson(connections, row.c), ...endedOf(row) };
  }

  /** Close every live connection on an assignment that stays (a persistent desktop its user may no longer use), with their grants. */
  async closeLiveOn(assignmentId: string, reason: string, at: Date, tx: DbOrTx): Promise<Ended> {
    const result = await tx.execute(sql`
      with c as (
        update connections set state = 'closed', closed_at = ${at}::timestamptz, end_reason = ${reason}, updated_at = ${at}::timestamptz
        where assignment_id = ${assignmentId} and state in ('starting', 'ready', 'connected')
        returning id
      ), g as (
        update grants g set state = 'revoked', revoked_at = ${at}::timestamptz
        from c where g.connection_id = c.id and g.state in ('issued', 'used')
        returning g.id, g.gateway_cluster, g.connection_id
      )
      select (select coalesce(jsonb_agg(c.id), '[]'::jsonb) from c) as connections,
        (select coalesce(jsonb_agg(jsonb_build_object('id', g.id, 'gatewayCluster', g.gateway_cluster, 'connectionId', g.connection_id)), '[]'::jsonb) from g) as grants`);
    return endedOf((result as { rows: Record<'connections' | 'grants', unknown>[] }).rows[0]!);
  }

  /** The user's live connection on this assignment for this protocol and client address, if any (a repeated connect gets it back). */
  async liveConnectionFor(assignmentId: string, protocol: string, clientAddress: string, db: DbOrTx = this.db): Promise<ConnectionRow | undefined> {
    const [row] = await db
      .select()
      .from(connections)
      .where(and(eq(connections.assignmentId, assignmentId), eq(connections.protocol, protocol), sql`${connections.clientAddress} = ${clientAddress}::inet`, inArray(connections.state, [...LIVE_CONNECTION_STATES])))
      .orderBy(desc(connections.requestedAt))
      .limit(1);
    return row;
  }

  /* ---------- idempotency keys ---------- */

  async connectionForKey(userId: string, key: string, db: DbOrTx = this.db): Promise<{ requestHash: string; connection: ConnectionRow } | undefined> {
    const [row] = await db
      .select({ requestHash: connectRequests.requestHash, connection: connections })
      .from(connectRequests)
      .innerJoin(connections, eq(connections.id, connectRequests.connectionId))
      .where(and(eq(connectRequests.userId, userId), eq(connectRequests.key, key)));
    return row;
  }

  async storeKey(userId: string, k: ConnectKey, connectionId: string, at: Date, tx: DbOrTx): Promise<void> {
    await tx.insert(connectRequests).values({ userId, key: k.key, requestHash: k.requestHash, connectionId, createdAt: at });
  }

  async deleteKeysBefore(before: Date, db: DbOrTx = this.db): Promise<number> {
    const rows = await db.delete(connectRequests).where(sql`${connectRequests.createdAt} < ${before}`).returning({ key: connectRequests.key });
    return rows.length;
  }

  async findAssignment(id: string, db: DbOrTx = this.db): Promise<AssignmentRow | undefined> {
    const [row] = await db.select().from(assignments).where(eq(assignments.id, id));
    return row;
  }

  async insertConnection(row: typeof connections.$inferInsert, tx: DbOrTx): Promise<ConnectionRow> {
    const [created] = await tx.insert(connections).values(row).returning();
    return created!;
  }

  async findConnection(id: string, db: DbOrTx = this.db): Promise<ConnectionRow | undefined> {
    const [row] = await db.select().from(connections).where(eq(connections.id, id));
    return row;
  }

  async liveConnectionsOf(assignmentIds: string[], db: DbOrTx = this.db): Promise<ConnectionRow[]> {
    if (assignmentIds.length === 0) return [];
    return db
      .select()
      .from(connections)
      .where(and(inArray(connections.assignmentId, assignmentIds), inArray(connections.state, [...LIVE_CONNECTION_STATES])))
      .orderBy(desc(connections.requestedAt));
  }

  /** Move a connection forward only from the state the caller saw, so two nodes never both do it. */
  async transition(id: string, from: string, patch: Partial<typeof connections.$inferInsert>, db: DbOrTx = this.db): Promise<ConnectionRow | undefined> {
    const [row] = await db.update(connections).set(patch).where(and(eq(connections.id, id), eq(connections.state, from))).returning();
    return row;
  }

  /** The newest grant of the connection that can still be used (issued and not past its connect-by). */
  async usableGrant(connectionId: string, now: Date, db: DbOrTx = this.db): Promise<GrantRow | undefined> {
    const [row] = await db
      .select()
      .from(grants)
      .where(and(eq(grants.connectionId, connectionId), eq(grants.state, 'issued'), sql`${grants.validUntil} > ${now}`))
      .orderBy(desc(grants.createdAt))
      .limit(1);
    return row;
  }

  /**
   * The connection's live grant: issued and not past its connect-by time, or in use (a routed one
   * also between sessions, within its reconnect window). Newest first.
   */
  async liveGrant(connectionId: string, now: Date, db: DbOrTx = this.db): Promise<GrantRow | undefined> {
    const [row] = await db
      .select()
      .from(grants)
      .where(and(eq(grants.connectionId, connectionId), sql`(${grants.state} = 'used' or (${grants.state} = 'issued' and ${grants.validUntil} > ${now}))`))
      .orderBy(desc(grants.createdAt))
      .limit(1);
    return row;
  }

  async findGrant(id: string, db: DbOrTx = this.db): Promise<GrantRow | undefined> {
    const [row] = await db.select().from(grants).where(eq(grants.id, id));
    return row;
  }

  async anyGrant(connectionId: string, db: DbOrTx = this.db): Promise<GrantRow | undefined> {
    const [row] = await db.select().from(grants).where(eq(grants.connectionId, connectionId)).orderBy(desc(grants.createdAt)).limit(1);
    return row;
  }
}

function endedOf(row: { connections: unknown; grants: unknown }): Ended {
  const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
  return { connectionIds: parse(row.connections) as string[], grants: parse(row.grants) as RevokedGrant[] };
}
