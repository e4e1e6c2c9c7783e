import { and, count, desc, eq, inArray, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { assignments, connections, pools, users, workstations } from '../../db/schema/index.ts';
import { LIVE_CONNECTION_STATES, type ConnectionRow } from './connections.repository.ts';

export interface LiveSessionRow {
  id: string;
  state: string;
  userId: string | null;
  username: string | null;
  workstationId: string | null;
  workstationName: string | null;
  poolId: string | null;
  poolName: string | null;
  protocol: string;
  clientAddress: string | null;
  requestedAt: Date;
  readyAt: Date | null;
}

export interface UserConnectionRow {
  connection: ConnectionRow;
  workstationName: string | null;
  powerState: string | null;
  poolId: string | null;
}

/** Read side of connections for the console and the event stream: who is on what, right now. */
export class LiveSessionsRepository {
  constructor(private readonly db: DbOrTx) {}

  async list(filter: { userId?: string; poolId?: string }, limit: number, offset: number): Promise<{ items: LiveSessionRow[]; total: number }> {
    const where = this.#where(filter);
    const items = await this.db
      .select({
        id: connections.id,
        state: connections.state,
        userId: connections.userId,
        username: users.username,
        workstationId: connections.workstationId,
        workstationName: workstations.name,
        poolId: assignments.poolId,
        poolName: pools.name,
        protocol: connections.protocol,
        clientAddress: connections.clientAddress,
        requestedAt: connections.requestedAt,
        readyAt: connections.readyAt,
      })
      .from(connections)
      .leftJoin(users, eq(users.id, connections.userId))
      .leftJoin(workstations, eq(workstations.id, connections.workstationId))
      .leftJoin(assignments, eq(assignments.id, connections.assignmentId))
      .leftJoin(pools, eq(pools.id, assignments.poolId))
      .where(where)
      .orderBy(desc(connections.requestedAt))
      .limit(limit)
      .offset(offset);
    return { items, total: await this.count(filter) };
  }

  async count(filter: { userId?: string; poolId?: string } = {}): Promise<number> {
    const [row] = await this.db.select({ n: count() }).from(connections).leftJoin(assignments, eq(assignments.id, connections.assignmentId)).where(this.#where(filter));
    return Number(row?.n ?? 0);
  }

  /** One user's live connections, oldest first, with their machine and pool (for the event stream). */
  async ofUser(userId: string): Promise<UserConnectionRow[]> {
    return this.db
      .select({ connection: connections, workstationName: workstations.name, powerState: workstations.powerState, poolId: assignments.poolId })
      .from(connections)
      .leftJoin(workstations, eq(workstations.id, connections.workstationId))
      .leftJoin(assignments, eq(assignments.id, connections.assignmentId))
      .where(and(eq(connections.userId, userId), inArray(connections.state, [...LIVE_CONNECTION_STATES])))
      .orderBy(connections.requestedAt);
  }

  #where(filter: { userId?: string; poolId?: string }): SQL | undefined {
    return and(
      inArray(connections.state, [...LIVE_CONNECTION_STATES]),
      filter.userId ? eq(connections.userId, filter.userId) : undefined,
      filter.poolId ? eq(assignments.poolId, filter.poolId) : undefined,
    );
  }
}
