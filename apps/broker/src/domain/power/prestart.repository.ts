import { and, eq, gte, inArray, isNotNull, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { assignments, connections, policies, pools, workstations } from '../../db/schema/index.ts';

/** An active persistent assignment whose policy pre-starts machines. */
export interface PrestartCandidate {
  assignmentId: string;
  userId: string;
  workstationId: string;
  powerState: string;
  /** The pool's time zone ('UTC' for a machine in no pool): the user's week is read in it. */
  timeZone: string;
  /** Where the user's history starts: the assignment's creation. */
  since: Date;
  prestartedAt: Date | null;
}

const LIVE = ['starting', 'ready', 'connected'];

/** Queries of the persistent pre-start (prestart.service.ts). */
export class PrestartRepository {
  constructor(private readonly db: DbOrTx) {}

  /** Active persistent assignments under a policy with the switch on, machine not in maintenance. */
  async candidates(): Promise<PrestartCandidate[]> {
    return this.db
      .select({
        assignmentId: assignments.id,
        userId: sql<string>`${assignments.userId}`,
        workstationId: sql<string>`${assignments.workstationId}`,
        powerState: workstations.powerState,
        timeZone: sql<string>`coalesce(${pools.timeZone}, 'UTC')`,
        since: assignments.since,
        prestartedAt: assignments.prestartedAt,
      })
      .from(assignments)
      .innerJoin(policies, eq(policies.id, assignments.policyId))
      .innerJoin(workstations, eq(workstations.id, assignments.workstationId))
      .leftJoin(pools, eq(pools.id, assignments.poolId))
      .where(
        and(
          eq(assignments.state, 'active'),
          eq(assignments.mode, 'persistent'),
          eq(policies.prestartPersistent, true),
          eq(workstations.maintenance, false),
          isNotNull(workstations.externalId),
        ),
      );
  }

  /** The users' connections to these machines since `from` (their arrivals are read from them). */
  async connectionsOf(workstationIds: string[], from: Date): Promise<{ userId: string | null; workstationId: string | null; requestedAt: Date; closedAt: Date | null }[]> {
    if (!workstationIds.length) return [];
    return this.db
      .select({ userId: connections.userId, workstationId: connections.workstationId, requestedAt: connections.requestedAt, closedAt: connections.closedAt })
      .from(connections)
      .where(and(inArray(connections.workstationId, workstationIds), gte(connections.requestedAt, from)));
  }

  /** Did the user ask for a connection to the machine since `since`? */
  async connectedSince(userId: string, workstationId: string, since: Date, tx: DbOrTx = this.db): Promise<boolean> {
    const [row] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(connections)
      .where(and(eq(connections.userId, userId), eq(connections.workstationId, workstationId), gte(connections.requestedAt, since)));
    return (row?.n ?? 0) > 0;
  }

  async liveSessions(workstationId: string, tx: DbOrTx): Promise<number> {
    const [n] = await tx.select({ n: sql<number>`count(*)::int` }).from(connections).where(and(eq(connections.workstationId, workstationId), inArray(connections.state, LIVE)));
    return n?.n ?? 0;
  }

  /** The assignment, still active and holding this machine (checked under the machine's row lock). */
  async stillAssigned(assignmentId: string, workstationId: string, tx: DbOrTx): Promise<boolean> {
    const [row] = await tx
      .select({ id: assignments.id })
      .from(assignments)
      .where(and(eq(assignments.id, assignmentId), eq(assignments.state, 'active'), eq(assignments.workstationId, workstationId)));
    return !!row;
  }

  async markPrestarted(assignmentId: string, at: Date, tx: DbOrTx): Promise<void> {
    await tx.update(assignments).set({ prestartedAt: at }).where(eq(assignments.id, assignmentId));
  }
}
