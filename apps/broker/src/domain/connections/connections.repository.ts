import { and, asc, desc, eq, inArray, isNull, ne, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { assignments, connections, grants, workstations } from '../../db/schema/index.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';

export type AssignmentRow = typeof assignments.$inferSelect;
export type ConnectionRow = typeof connections.$inferSelect;
export type GrantRow = typeof grants.$inferSelect;

export const LIVE_CONNECTION_STATES = ['starting', 'ready', 'connected'] as const;

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
