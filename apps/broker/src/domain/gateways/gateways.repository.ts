import { and, asc, count, desc, eq, gt, inArray, isNull, lt, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { connections, gatewayEnrollments, gateways, grants } from '../../db/schema/index.ts';

export type GatewayRow = typeof gateways.$inferSelect;
export type NewGatewayRow = typeof gateways.$inferInsert;
export type EnrollmentRow = typeof gatewayEnrollments.$inferSelect;
export type GrantRow = typeof grants.$inferSelect;
export type ConnectionRow = typeof connections.$inferSelect;
export type GatewayWithLive = GatewayRow & { liveGrants: number };

const LIVE_GRANT = sql`${grants.state} in ('issued', 'used')`;
const LIVE_CONNECTION = sql`${connections.state} in ('starting', 'ready', 'connected')`;
// Spelled out: inside a subquery drizzle may render columns unqualified, and "id" would bind to grants.
const liveGrantCount = sql<number>`(select count(*)::int from grants lg where lg.gateway_id = "gateways"."id" and lg.state in ('issued', 'used'))`;

/** A live grant with what a gateway needs to honour it, and who carries its session. */
export interface LiveGrant {
  grant: GrantRow;
  /** The gateway carrying the session (connections.gateway_id); meaningful once the grant is used. */
  sessionGatewayId: string | null;
}

/**
 * Queries over gateways, enrolments and grants. The gateway reports also move the `connections`
 * rows they concern (state, bytes, end reason): those few updates live here, beside the grant they
 * change with, in the same transaction.
 */
export class GatewaysRepository {
  constructor(private readonly db: DbOrTx) {}

  /* ---------- gateways ---------- */

  async list(filter: { cluster?: string; status?: string }, limit: number, offset: number): Promise<{ items: GatewayWithLive[]; total: number }> {
    const where: SQL[] = [];
    if (filter.cluster) where.push(eq(gateways.cluster, filter.cluster));
    if (filter.status) where.push(eq(gateways.status, filter.status));
    const cond = and(...where);
    const items = await this.db
      .select({ g: gateways, liveGrants: liveGrantCount })
      .from(gateways)
      .where(cond)
      .orderBy(asc(gateways.cluster), asc(gateways.name))
      .limit(limit)
      .offset(offset);
    const [row] = await this.db.select({ n: count() }).from(gateways).where(cond);
    return { items: items.map((r) => ({ ...r.g, liveGrants: Number(r.liveGrants) })), total: row?.n ?? 0 };
  }

  /** Every gateway's public address and tunnel port (the CSP's connect-src for browser sessions). */
  tunnelEndpoints() {
    return this.db
      .select({ publicAddress: gateways.publicAddress, routedPorts: gateways.routedPorts, routedPortsSet: gateways.routedPortsSet, listenerPorts: gateways.listenerPorts })
      .from(gateways);
  }

  async findById(id: string, db: DbOrTx = this.db): Promise<GatewayWithLive | undefined> {
    const [row] = await db.select({ g: gateways, liveGrants: liveGrantCount }).from(gateways).where(eq(gateways.id, id));
    return row ? { ...row.g, liveGrants: Number(row.liveGrants) } : undefined;
  }

  async findByIds(ids: string[], db: DbOrTx = this.db): Promise<GatewayRow[]> {
    if (ids.length === 0) return [];
    return db.select().from(gateways).where(inArray(gateways.id, ids));
  }

  async findByName(name: string, db: DbOrTx = this.db): Promise<GatewayRow | undefined> {
    const [row] = await db.select().from(gateways).where(sql`lower(${gateways.name}) = lower(${name})`);
    return row;
  }

  async findByCredentialHash(hash: string): Promise<GatewayRow | undefined> {
    const [row] = await this.db.select().from(gateways).where(eq(gateways.credentialHash, hash));
    return row;
  }

  async lockById(id: string, tx: DbOrTx): Promise<GatewayRow | undefined> {
    const [row] = await tx.select().from(gateways).where(eq(gateways.id, id)).for('update');
    return row;
  }

  async insert(row: NewGatewayRow, db: DbOrTx = this.db): Promise<GatewayRow> {
    const [created] = await db.insert(gateways).values(row).returning();
    return created!;
  }

  async update(id: string, patch: Partial<NewGatewayRow>, db: DbOrTx = this.db): Promise<GatewayRow | undefined> {
    const [row] = await db.update(gateways).set(patch).where(eq(gateways.id, id)).returning();
    return row;
  }

  async delete(id: string, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db.delete(gateways).where(eq(gateways.id, id)).returning({ id: gateways.id });
    return rows.length === 1;
  }

  /** Every gateway of a cluster with its live grant count, for the choice of a gateway. */
  async clusterMembers(cluster: string, db: DbOrTx = this.db): Promise<GatewayWithLive[]> {
    const rows = await db.select({ g: gateways, liveGrants: liveGrantCount }).from(gateways).where(eq(gateways.cluster, cluster));
    return rows.map((r) => ({ ...r.g, liveGrants: Number(r.liveGrants) }));
  }

  /** Gateways that were healthy and have not been heard from since `before`. */
  async markStale(before: Date, now: Date, db: DbOrTx = this.db): Promise<GatewayRow[]> {
    return db
      .update(gateways)
      .set({ health: 'unhealthy', updatedAt: now })
      .where(and(eq(gateways.health, 'healthy'), lt(gateways.lastSeenAt, before)))
      .returning();
  }

  /* ---------- enrolments ---------- */

  async insertEnrollment(row: typeof gatewayEnrollments.$inferInsert, db: DbOrTx = this.db): Promise<EnrollmentRow> {
    const [created] = await db.insert(gatewayEnrollments).values(row).returning();
    return created!;
  }

  async lockEnrollmentByTokenHash(hash: string, tx: DbOrTx): Promise<EnrollmentRow | undefined> {
    const [row] = await tx.select().from(gatewayEnrollments).where(eq(gatewayEnrollments.tokenHash, hash)).for('update');
    return row;
  }

  async markEnrollmentUsed(id: string, gatewayId: string, now: Date, tx: DbOrTx): Promise<void> {
    await tx.update(gatewayEnrollments).set({ usedAt: now, gatewayId }).where(eq(gatewayEnrollments.id, id));
  }

  async listEnrollments(pendingAt: Date | null, limit: number, offset: number): Promise<{ items: EnrollmentRow[]; total: number }> {
    const cond = pendingAt ? and(isNull(gatewayEnrollments.usedAt), gt(gatewayEnrollments.expiresAt, pendingAt)) : undefined;
    const items = await this.db.select().from(gatewayEnrollments).where(cond).orderBy(desc(gatewayEnrollments.createdAt)).limit(limit).offset(offset);
    const [row] = await this.db.select({ n: count() }).from(gatewayEnrollments).where(cond);
    return { items, total: row?.n ?? 0 };
  }

  /* ---------- grants ---------- */

  async insertGrant(row: typeof grants.$inferInsert, db: DbOrTx = this.db): Promise<GrantRow> {
    const [created] = await db.insert(grants).values(row).returning();
    return created!;
  }

  async findGrant(id: string, db: DbOrTx = this.db): Promise<GrantRow | undefined> {
    const [row] = await db.select().from(grants).where(eq(grants.id, id));
    return row;
  }

  /** The connection's newest grant that is issued and not past its connect-by time. */
  async usableGrantOf(connectionId: string, now: Date, db: DbOrTx = this.db): Promise<GrantRow | undefined> {
    const [row] = await db
      .select()
      .from(grants)
      .where(and(eq(grants.connectionId, connectionId), eq(grants.state, 'issued'), gt(grants.validUntil, now)))
      .orderBy(desc(grants.createdAt))
      .limit(1);
    return row;
  }

  async lockGrant(id: string, tx: DbOrTx): Promise<GrantRow | undefined> {
    const [row] = await tx.select().from(grants).where(eq(grants.id, id)).for('update');
    return row;
  }

  async updateGrant(id: string, patch: Partial<typeof grants.$inferInsert>, db: DbOrTx = this.db): Promise<void> {
    await db.update(grants).set(patch).where(eq(grants.id, id));
  }

  async livePortsInCluster(cluster: string, db: DbOrTx = this.db): Promise<Set<number>> {
    const rows = await db.select({ port: grants.gatewayPort }).from(grants).where(and(eq(grants.gatewayCluster, cluster), LIVE_GRANT));
    return new Set(rows.flatMap((r) => (r.port === null ? [] : [r.port])));
  }

  /** Live grants of some clusters, each with the gateway carrying its session. */
  async liveGrantsOfClusters(clusters: string[], db: DbOrTx = this.db): Promise<LiveGrant[]> {
    if (clusters.length === 0) return [];
    const rows = await db
      .select({ grant: grants, sessionGatewayId: connections.gatewayId })
      .from(grants)
      .innerJoin(connections, eq(connections.id, grants.connectionId))
      .where(and(inArray(grants.gatewayCluster, clusters), LIVE_GRANT));
    return rows;
  }

  /** Of the given grant ids, those that are in use with their session on `gatewayId`. */
  async usedOnGateway(ids: string[], gatewayId: string, db: DbOrTx = this.db): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await db
      .select({ id: grants.id })
      .from(grants)
      .innerJoin(connections, eq(connections.id, grants.connectionId))
      .where(and(inArray(grants.id, ids), eq(grants.state, 'used'), eq(connections.gatewayId, gatewayId)));
    return new Set(rows.map((r) => r.id));
  }

  /**
   * A hello: every session the broker holds as running on this gateway counts as reported now.
   * The ones it still carries are named in the hello; the ones that ended while it could not reach
   * a broker are in its outbox, sent right after the welcome — and until they arrive, the
   * reconciliation pass must not take them for lost (it would close them as `gateway-lost`, and the
   * gateway's own reason and byte counts would come too late to count).
   */
  async touchSessionsOf(gatewayId: string, now: Date, db: DbOrTx = this.db): Promise<void> {
    await db.execute(sql`
      update ${grants} g set last_reported_at = ${now.toISOString()}::timestamptz
      from ${connections} c
      where c.id = g.connection_id and c.gateway_id = ${gatewayId} and g.state = 'used'`);
  }

  /**
   * A heartbeat: the sessions the gateway carries are alive now. A figure is the running session's
   * bytes, so the connection's totals are the grant's ended sessions plus it (and only grow). A
   * figure of a session that is not the grant's running one (ended, counted already) moves nothing.
   */
  async recordSessionFigures(gatewayId: string, sessions: { grantId: string; bytesUp: number; bytesDown: number; session?: number }[], now: Date, db: DbOrTx = this.db): Promise<void> {
    if (sessions.length === 0) return;
    const figures = JSON.stringify(sessions.map((s) => ({ grant_id: s.grantId, up: s.bytesUp, down: s.bytesDown, session: s.session ?? null })));
    await db.execute(sql`
      with f as (select * from jsonb_to_recordset(${figures}::jsonb) as x(grant_id uuid, up bigint, down bigint, session int)),
      g as (
        update ${grants} set last_reported_at = ${now.toISOString()}::timestamptz
        from f where ${grants.id} = f.grant_id and ${grants.state} = 'used'
        returning ${grants.connectionId} as connection_id, ${grants.endedBytesUp} + f.up as up, ${grants.endedBytesDown} + f.down as down,
          (${grants.sessionEndedAt} is null and ${grants.bytesSession} < greatest(${grants.sessions}, 1)
            and (f.session is null or f.session = ${grants.sessions})) as running
      )
      update ${connections} c set bytes_up = greatest(c.bytes_up, g.up), bytes_down = greatest(c.bytes_down, g.down), updated_at = ${now.toISOString()}::timestamptz
      from g where c.id = g.connection_id and c.gateway_id = ${gatewayId} and g.running`);
  }

  /** Unused grants whose connect-by time has passed. */
  async lockExpiredIssued(now: Date, limit: number, tx: DbOrTx): Promise<GrantRow[]> {
    return tx
      .select()
      .from(grants)
      .where(and(eq(grants.state, 'issued'), lt(grants.validUntil, now)))
      .orderBy(asc(grants.validUntil))
      .limit(limit)
      .for('update', { skipLocked: true });
  }

  /**
   * Grants in use whose session no gateway reports any more: the gateway carrying it has heartbeated
   * for `graceMs` past the last report that named it (it dropped the session), or has not been seen
   * for `lostMs` (it is gone).
   */
  async lockUnreported(now: Date, graceMs: number, lostMs: number, limit: number, tx: DbOrTx): Promise<(GrantRow & { sessionGatewayId: string | null })[]> {
    const rows = await tx
      .select({ grant: grants, sessionGatewayId: connections.gatewayId })
      .from(grants)
      .innerJoin(connections, eq(connections.id, grants.connectionId))
      .leftJoin(gateways, eq(gateways.id, connections.gatewayId))
      .where(
        and(
          eq(grants.state, 'used'),
          // A routed grant between sessions has none to lose (the reconnect window closes it).
          isNull(grants.sessionEndedAt),
          sql`(
            ${gateways.id} is null
            or ${gateways.lastSeenAt} is null
            or ${gateways.lastSeenAt} > coalesce(${grants.lastReportedAt}, ${grants.usedAt}) + (${Math.round(graceMs)}::int * interval '1 millisecond')
            or ${gateways.lastSeenAt} < ${new Date(now.getTime() - lostMs).toISOString()}::timestamptz
          )`,
        ),
      )
      .limit(limit)
      .for('update', { of: grants, skipLocked: true });
    return rows.map((r) => ({ ...r.grant, sessionGatewayId: r.sessionGatewayId }));
  }

  /**
   * A routed claim (ADR 0017), decided by this one statement: the grant is routed, of `cluster`, for
   * `clientAddress`, its connection live, and either unused before its connect-by time (the first
   * session) or between sessions within its reconnect window with its assignment still active (a
   * reconnect). Two claims of one grant at once: the second waits for the first's row lock, then
   * re-checks the conditions against the row the first left (in use) and takes nothing. Returns the
   * session number it started, or undefined when refused (`claimRefusal` says why).
   */
  async claimRouted(p: { grantId: string; cluster: string; clientAddress: string; gatewayId: string; now: Date }, db: DbOrTx = this.db): Promise<{ sessions: number; connectionId: string } | undefined> {
    const now = p.now.toISOString();
    const result = await db.execute(sql`
      update grants g set state = 'used', used_at = coalesce(g.used_at, ${now}::timestamptz), sessions = g.sessions + 1,
        claimed_gateway_id = ${p.gatewayId}, claimed_at = ${now}::timestamptz, session_ended_at = null, last_reported_at = ${now}::timestamptz
      from connections c
      where g.id = ${p.grantId} and c.id = g.connection_id
        and g.mode = 'routed' and g.gateway_cluster = ${p.cluster} and g.client_address = ${p.clientAddress}::inet
        and c.state in ('starting', 'ready', 'connected')
        and (
          (g.state = 'issued' and g.valid_until > ${now}::timestamptz)
          or (g.state = 'used' and g.session_ended_at is not null and g.reconnect_window_seconds > 0
              and g.session_ended_at + g.reconnect_window_seconds * interval '1 second' > ${now}::timestamptz
              and not exists (select 1 from assignments a where a.id = c.assignment_id and a.state <> 'active'))
        )
      returning g.sessions, g.connection_id`);
    const row = (result as { rows: { sessions: number; connection_id: string }[] }).rows[0];
    return row ? { sessions: Number(row.sessions), connectionId: row.connection_id } : undefined;
  }

  /** What a refused claim found: the grant (if any) and whether its connection is live. */
  async claimRefusal(grantId: string, db: DbOrTx = this.db): Promise<{ grant: GrantRow; connectionLive: boolean } | undefined> {
    const [row] = await db
      .select({ grant: grants, connectionState: connections.state })
      .from(grants)
      .innerJoin(connections, eq(connections.id, grants.connectionId))
      .where(eq(grants.id, grantId));
    return row ? { grant: row.grant, connectionLive: ['starting', 'ready', 'connected'].includes(row.connectionState) } : undefined;
  }

  /** Routed grants between sessions whose reconnect window is over: their connection ends now. */
  async lockReconnectLapsed(now: Date, limit: number, tx: DbOrTx): Promise<GrantRow[]> {
    return tx
      .select()
      .from(grants)
      .where(
        and(
          eq(grants.state, 'used'),
          eq(grants.mode, 'routed'),
          sql`${grants.sessionEndedAt} is not null and ${grants.sessionEndedAt} + ${grants.reconnectWindowSeconds} * interval '1 second' <= ${now.toISOString()}::timestamptz`,
        ),
      )
      .orderBy(asc(grants.sessionEndedAt))
      .limit(limit)
      .for('update', { skipLocked: true });
  }

  async listGrants(live: boolean | undefined, limit: number, offset: number): Promise<{ items: GrantRow[]; total: number }> {
    const cond = live === undefined ? undefined : live ? LIVE_GRANT : sql`not (${LIVE_GRANT})`;
    const items = await this.db.select().from(grants).where(cond).orderBy(desc(grants.createdAt)).limit(limit).offset(offset);
    const [row] = await this.db.select({ n: count() }).from(grants).where(cond);
    return { items, total: row?.n ?? 0 };
  }

  async otherLiveGrants(connectionId: string, exceptGrantId: string, db: DbOrTx = this.db): Promise<number> {
    const [row] = await db
      .select({ n: count() })
      .from(grants)
      .where(and(eq(grants.connectionId, connectionId), sql`${grants.id} <> ${exceptGrantId}`, LIVE_GRANT));
    return row?.n ?? 0;
  }

  /* ---------- the connections rows the gateway reports move ---------- */

  async lockConnection(id: string, tx: DbOrTx): Promise<ConnectionRow | undefined> {
    const [row] = await tx.select().from(connections).where(eq(connections.id, id)).for('update');
    return row;
  }

  async updateConnection(id: string, patch: Partial<typeof connections.$inferInsert>, db: DbOrTx = this.db): Promise<void> {
    await db.update(connections).set(patch).where(eq(connections.id, id));
  }

  async liveConnectionsOnGateway(gatewayId: string, db: DbOrTx = this.db): Promise<number> {
    const [row] = await db.select({ n: count() }).from(connections).where(and(eq(connections.gatewayId, gatewayId), LIVE_CONNECTION));
    return row?.n ?? 0;
  }
}
