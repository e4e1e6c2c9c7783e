import { and, asc, desc, eq, inArray, isNull, ne, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { rowFromJson } from '../../db/json-rows.ts';
import { executeNamed } from '../../db/named-statement.ts';
import { assignments, connections, grants, workstations } from '../../db/schema/index.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';

export type AssignmentRow = typeof assignments.$inferSelect;
export type ConnectionRow = typeof connections.$inferSelect;
export type GrantRow = typeof grants.$inferSelect;

export const LIVE_CONNECTION_STATES = ['starting', 'ready', 'connected'] as const;

/** What the one-statement connect writes besides the rows' own ids. */
export interface FastConnect {
  userId: string;
  poolId: string;
  policyId: string;
  mode: string;
  protocol: string;
  clientAddress: string;
  now: Date;
  /** Assign even when the user holds a desktop of this pool already (an additional desktop). */
  evenIfHolding: boolean;
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
   * marker, open the connection as `ready` (the machine is running) and write the audit row. A
   * statement is atomic, so either all of it happens or none; the partial unique index on active
   * assignments stays the invariant (a lost race raises it, and the caller retries). `undefined`
   * when no running machine is free, or the user holds a desktop here already (unless
   * `evenIfHolding`): the caller takes the transactional path (their own machine back, booting or
   * stopped machines, launch on login). The audit row's columns are spelled here because it is part of the
   * same statement; its shape is `AuditService.record`'s. (Data-modifying WITH parts run whether
   * or not the final select reads them.)
   */
  async assignRunningAndOpen(p: FastConnect, db: DbOrTx = this.db): Promise<{ workstation: WorkstationRow; assignment: AssignmentRow; connection: ConnectionRow } | undefined> {
    const result = await executeNamed(db, 'stagedoor_connect_fast', sql`
      with free as (
        select w.* from workstations w
        where w.pool_id = ${p.poolId} and w.assignment_id is null and w.maintenance = false
          and w.health <> 'unhealthy' and w.power_state = 'running'
          and (${p.evenIfHolding} or not exists (select 1 from assignments h where h.user_id = ${p.userId} and h.pool_id = ${p.poolId} and h.state = 'active'))
        limit 1 for update skip locked
      ), a as (
        insert into assignments (user_id, workstation_id, pool_id, policy_id, mode, state, since, updated_at)
        select ${p.userId}, free.id, ${p.poolId}, ${p.policyId}, ${p.mode}, 'active', ${p.now}, ${p.now} from free
        returning *
      ), marked as (
        update workstations w set assignment_id = a.id from a where w.id = a.workstation_id
      ), c as (
        insert into connections (user_id, workstation_id, assignment_id, protocol, client_address, state, requested_at, ready_at, updated_at)
        select ${p.userId}, a.workstation_id, a.id, ${p.protocol}, ${p.clientAddress}, 'ready', ${p.now}, ${p.now}, ${p.now} from a
        returning *
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

  async releaseAssignment(id: string, reason: string, at: Date, tx: DbOrTx): Promise<AssignmentRow | undefined> {
    const [row] = await tx
      .update(assignments)
      .set({ state: 'released', releasedAt: sql`greatest(${assignments.since}, ${at}::timestamptz)`, releaseReason: reason, updatedAt: at })
      .where(and(eq(assignments.id, id), eq(assignments.state, 'active')))
      .returning();
    if (row) await tx.update(workstations).set({ assignmentId: null }).where(eq(workstations.assignmentId, id));
    return row;
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

  async closeLive(id: string, state: 'closed' | 'failed', reason: string, at: Date, db: DbOrTx = this.db): Promise<ConnectionRow | undefined> {
    const [row] = await db
      .update(connections)
      .set({ state, closedAt: at, endReason: reason, updatedAt: at })
      .where(and(eq(connections.id, id), inArray(connections.state, [...LIVE_CONNECTION_STATES])))
      .returning();
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

  async liveGrants(connectionId: string, db: DbOrTx = this.db): Promise<GrantRow[]> {
    return db.select().from(grants).where(and(eq(grants.connectionId, connectionId), inArray(grants.state, ['issued', 'used'])));
  }

  async anyGrant(connectionId: string, db: DbOrTx = this.db): Promise<GrantRow | undefined> {
    const [row] = await db.select().from(grants).where(eq(grants.connectionId, connectionId)).orderBy(desc(grants.createdAt)).limit(1);
    return row;
  }
}
