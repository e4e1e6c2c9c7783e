import { and, desc, eq, inArray, isNotNull, ne, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { rowsOf } from '../../db/migrate.ts';
import { assignments, connections, policies, policyPools, powerPlans, releasePlans, workstations } from '../../db/schema/index.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';
import { trustedSessionState, type FireSnapshot, type PlanContext, type PowerPlanRules, type ReleasePlanRules, type SessionState } from './power-plan.ts';

const LIVE = ['starting', 'ready', 'connected'];
type PowerPlanRow = typeof powerPlans.$inferSelect;
type ReleasePlanRow = typeof releasePlans.$inferSelect;

/** Reads and writes of the power domain: agent state on the workstation, and the plans in force. */
export class PowerRepository {
  constructor(private readonly db: DbOrTx) {}

  async findByAgentTokenHash(hash: string, db: DbOrTx = this.db): Promise<WorkstationRow | undefined> {
    const [row] = await db.select().from(workstations).where(eq(workstations.agentTokenHash, hash));
    return row;
  }

  async lock(id: string, tx: DbOrTx): Promise<WorkstationRow | undefined> {
    const [row] = await tx.select().from(workstations).where(eq(workstations.id, id)).for('update');
    return row;
  }

  async updateWorkstation(id: string, patch: Partial<typeof workstations.$inferInsert>, tx: DbOrTx = this.db): Promise<void> {
    await tx.update(workstations).set(patch).where(eq(workstations.id, id));
  }

  /**
   * The plans that apply to a machine: those of the policy of its active assignment or, when it has
   * none (a floating user released it), of its most recent assignment.
   */
  async planContext(workstationId: string, db: DbOrTx = this.db): Promise<PlanContext & { policyId: string | null }> {
    const [row] = await db
      .select({ a: assignments, power: powerPlans, release: releasePlans })
      .from(assignments)
      .leftJoin(policies, eq(policies.id, assignments.policyId))
      .leftJoin(powerPlans, eq(powerPlans.id, policies.powerPlanId))
      .leftJoin(releasePlans, eq(releasePlans.id, policies.releasePlanId))
      .where(eq(assignments.workstationId, workstationId))
      .orderBy(sql`(${assignments.state} = 'active') desc`, desc(assignments.since))
      .limit(1);
    if (!row) return { power: null, release: null, assignment: null, policyId: null };
    return {
      power: row.power ? powerRules(row.power) : null,
      release: row.release ? releaseRules(row.release) : null,
      assignment: row.a.state === 'active' ? { id: row.a.id, mode: row.a.mode as 'floating' | 'persistent' } : null,
      policyId: row.a.policyId,
    };
  }

  /** What `decideFire` needs, read in the caller's transaction (the machine's row locked first). */
  async snapshot(ws: WorkstationRow, eventAt: Date, now: Date, tx: DbOrTx): Promise<FireSnapshot> {
    const [counts] = rowsOf<{ connected: number; newer: number }>(
      await tx.execute(sql`
        select count(*) filter (where state = 'connected')::int as connected,
               count(*) filter (where requested_at > ${eventAt}::timestamptz)::int as newer
        from ${connections} where workstation_id = ${ws.id} and state in ('starting', 'ready', 'connected')`),
    );
    const [a] = await tx
      .select({ id: assignments.id, mode: assignments.mode })
      .from(assignments)
      .where(and(eq(assignments.workstationId, ws.id), eq(assignments.state, 'active')));
    return {
      powerState: ws.powerState,
      sessionState: trustedSessionState(ws.agentSessionState as SessionState, ws.agentLastSeenAt, now),
      connectedSessions: counts?.connected ?? 0,
      newerConnections: counts?.newer ?? 0,
      lastActivityAt: ws.lastActivityAt,
      assignment: a ? { id: a.id, mode: a.mode as 'floating' | 'persistent' } : null,
    };
  }

  /** The connection's machine, and how many other connections on it the gateway reports connected. */
  async connectionContext(connectionId: string, db: DbOrTx = this.db): Promise<{ workstationId: string; connected: boolean; otherConnected: number } | undefined> {
    const [c] = await db.select({ workstationId: connections.workstationId, state: connections.state }).from(connections).where(eq(connections.id, connectionId));
    if (!c?.workstationId) return undefined;
    const [n] = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(connections)
      .where(and(eq(connections.workstationId, c.workstationId), ne(connections.id, connectionId), eq(connections.state, 'connected')));
    return { workstationId: c.workstationId, connected: c.state === 'connected', otherConnected: n?.n ?? 0 };
  }

  async powerPlansWithRules(db: DbOrTx = this.db): Promise<PowerPlanRow[]> {
    return db.select().from(powerPlans).where(sql`jsonb_array_length(${powerPlans.scheduleRules}) > 0`);
  }

  async powerPlan(id: string, db: DbOrTx = this.db): Promise<PowerPlanRow | undefined> {
    const [row] = await db.select().from(powerPlans).where(eq(powerPlans.id, id));
    return row;
  }

  /**
   * Machines a schedule rule of this plan may act on: in a pool offered by a policy with the plan,
   * or held through such a policy. Candidates only: each is checked again under its row lock.
   */
  async scheduleCandidates(planId: string, db: DbOrTx = this.db): Promise<string[]> {
    const viaPool = db.select({ poolId: policyPools.poolId }).from(policyPools).innerJoin(policies, eq(policies.id, policyPools.policyId)).where(eq(policies.powerPlanId, planId));
    const viaAssignment = db
      .select({ id: assignments.workstationId })
      .from(assignments)
      .innerJoin(policies, eq(policies.id, assignments.policyId))
      .where(and(eq(assignments.state, 'active'), eq(policies.powerPlanId, planId), isNotNull(assignments.workstationId)));
    const rows = await db
      .select({ id: workstations.id })
      .from(workstations)
      .where(and(ne(workstations.powerState, 'terminated'), or(inArray(workstations.poolId, viaPool), inArray(workstations.id, viaAssignment))));
    return rows.map((r) => r.id);
  }

  /** Live connections of a machine (for a schedule rule's check). */
  async liveSessions(workstationId: string, tx: DbOrTx): Promise<number> {
    const [n] = await tx.select({ n: sql<number>`count(*)::int` }).from(connections).where(and(eq(connections.workstationId, workstationId), inArray(connections.state, LIVE)));
    return n?.n ?? 0;
  }
}

export function powerRules(p: PowerPlanRow): PowerPlanRules {
  return {
    onDisconnect: { action: p.onDisconnectAction as PowerPlanRules['onDisconnect']['action'], delaySeconds: p.onDisconnectDelaySeconds },
    onLogout: { action: p.onLogoutAction as PowerPlanRules['onLogout']['action'], delaySeconds: p.onLogoutDelaySeconds },
    onIdle: { action: p.onIdleAction as PowerPlanRules['onIdle']['action'], delaySeconds: p.onIdleDelaySeconds },
  };
}

export function releaseRules(r: ReleasePlanRow): ReleasePlanRules {
  return {
    releaseOnLogout: r.releaseOnLogout,
    releaseAfterDisconnectSeconds: r.releaseAfterDisconnectSeconds,
    releaseOnIdleSeconds: r.releaseOnIdleSeconds,
    forceLogout: r.forceLogout,
    warnSeconds: r.warnSeconds,
    warnMessage: r.warnMessage,
  };
}
