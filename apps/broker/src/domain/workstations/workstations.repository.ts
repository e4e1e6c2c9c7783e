import { and, asc, count, desc, eq, ilike, inArray, isNull, ne, or, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { rowsOf } from '../../db/migrate.ts';
import { assignments, providers, users, workstationPowerHistory, workstations } from '../../db/schema/index.ts';
import type { PowerState } from '../../db/schema/providers.ts';
import type { KnownWorkstation, SyncFields } from '../providers/sync-plan.ts';

export type WorkstationRow = typeof workstations.$inferSelect;
export type NewWorkstationRow = typeof workstations.$inferInsert;

export interface WorkstationFilter {
  providerId?: string;
  poolId?: string;
  powerState?: PowerState;
  q?: string;
  tag?: { key: string; value?: string };
}

const SORTS = {
  name: asc(workstations.name),
  '-name': desc(workstations.name),
  createdAt: asc(workstations.createdAt),
  '-createdAt': desc(workstations.createdAt),
  powerState: asc(workstations.powerState),
  '-powerState': desc(workstations.powerState),
} as const;
export type WorkstationSort = keyof typeof SORTS;

/** The fields inventory sync compares (sync-plan.ts `KnownWorkstation`). */
const KNOWN_COLUMNS = {
  id: workstations.id,
  externalId: workstations.externalId,
  launchToken: workstations.launchToken,
  name: workstations.name,
  powerState: workstations.powerState,
  privateAddress: workstations.privateAddress,
  instanceType: workstations.instanceType,
  availabilityZone: workstations.availabilityZone,
  subnetId: workstations.subnetId,
  imageId: workstations.imageId,
  tags: workstations.tags,
};

/** A row's version (`xmin`: the transaction that last wrote it), as text. */
const ROW_VERSION = sql<string>`${workstations}.xmin::text`;

/** Rows per statement in batch writes: large enough to be fast, small enough for any parameter limit. */
const BATCH = 1000;

export class WorkstationsRepository {
  constructor(private readonly db: DbOrTx) {}

  async findById(id: string, db: DbOrTx = this.db): Promise<WorkstationRow | undefined> {
    const [row] = await db.select().from(workstations).where(eq(workstations.id, id));
    return row;
  }

  async lockById(id: string, tx: DbOrTx): Promise<WorkstationRow | undefined> {
    const [row] = await tx.select().from(workstations).where(eq(workstations.id, id)).for('update');
    return row;
  }

  async list(filter: WorkstationFilter, sort: WorkstationSort, limit: number, offset: number): Promise<{ items: WorkstationRow[]; total: number }> {
    const where = and(...conditions(filter));
    const items = await this.db.select().from(workstations).where(where).orderBy(SORTS[sort], asc(workstations.id)).limit(limit).offset(offset);
    const [row] = await this.db.select({ n: count() }).from(workstations).where(where);
    return { items, total: row?.n ?? 0 };
  }

  async countByProvider(providerId: string, db: DbOrTx = this.db): Promise<number> {
    const [row] = await db.select({ n: count() }).from(workstations).where(eq(workstations.providerId, providerId));
    return row?.n ?? 0;
  }

  /** What inventory sync compares against: every machine of the provider, terminated included. */
  async known(providerId: string, db: DbOrTx = this.db): Promise<KnownWorkstation[]> {
    const rows = await db.select(KNOWN_COLUMNS).from(workstations).where(eq(workstations.providerId, providerId));
    return rows.map((r) => ({ ...r, powerState: r.powerState as PowerState }));
  }

  /** What health is decided from (health.ts), for the provider's machines that are or were running. */
  async healthFacts(providerId: string, db: DbOrTx = this.db) {
    return db
      .select({ id: workstations.id, externalId: workstations.externalId, powerState: workstations.powerState, powerStateChangedAt: workstations.powerStateChangedAt, agentLastSeenAt: workstations.agentLastSeenAt, health: workstations.health, healthSource: workstations.healthSource })
      .from(workstations)
      .where(and(eq(workstations.providerId, providerId), or(eq(workstations.powerState, 'running'), ne(workstations.health, 'unknown'), sql`${workstations.healthSource} is not null`)));
  }

  /** Write health verdicts (only rows whose verdict changed are passed); `health_checked_at` = when it was reached. */
  async setHealth(rows: { id: string; health: string; source: string | null }[], at: Date, tx: DbOrTx): Promise<void> {
    for (let i = 0; i < rows.length; i += BATCH) {
      const payload = JSON.stringify(rows.slice(i, i + BATCH));
      await tx.execute(sql`
        update workstations w set health = v.health, health_source = v.source, health_checked_at = ${at}::timestamptz
        from jsonb_to_recordset(${payload}::jsonb) as v(id uuid, health text, source text)
        where w.id = v.id`);
    }
  }

  /**
   * Running machines whose agent has gone silent (nothing since it last reported or the machine last
   * started, whichever is later): unhealthy, by the agent. One statement, so any node may run it.
   */
  async markSilentAgents(now: Date, silentMs: number, db: DbOrTx = this.db): Promise<number> {
    const before = new Date(now.getTime() - silentMs);
    const rows = await db
      .update(workstations)
      .set({ health: 'unhealthy', healthSource: 'agent', healthCheckedAt: now })
      .where(
        and(
          eq(workstations.powerState, 'running'),
          sql`${workstations.agentLastSeenAt} is not null`,
          sql`greatest(${workstations.agentLastSeenAt}, ${workstations.powerStateChangedAt}) < ${before}::timestamptz`,
          or(ne(workstations.health, 'unhealthy'), sql`${workstations.healthSource} is distinct from 'agent'`),
        ),
      )
      .returning({ id: workstations.id });
    return rows.length;
  }

  /**
   * Instances in this provider's scope that other providers own, with the owner's name: an instance
   * has one owner (ADR 0018), so sync leaves these alone. Empty unless providers overlap.
   */
  async ownedElsewhere(providerId: string, db: DbOrTx = this.db): Promise<Map<string, string>> {
    const rows = rowsOf<{ external_id: string; owner: string }>(
      await db.execute(sql`
        select w.external_id, o.name as owner
        from providers me
        join workstations w on w.instance_scope = stagedoor_instance_scope(me.kind, me.endpoint, me.region, me.id) and w.provider_id <> me.id
        join providers o on o.id = w.provider_id
        where me.id = ${providerId} and w.external_id is not null`),
    );
    return new Map(rows.map((r) => [r.external_id, r.owner]));
  }

  /**
   * Each machine's row version: PostgreSQL's `xmin`, which changes with every write to the row,
   * whatever the clocks of the nodes say. The power follower reads it before asking the cloud.
   */
  async versions(ids: string[], db: DbOrTx = this.db): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await db.select({ id: workstations.id, version: ROW_VERSION }).from(workstations).where(inArray(workstations.id, ids));
    return new Map(rows.map((r) => [r.id, r.version]));
  }

  /**
   * What inventory sync compares against, for some machines, locked for the caller's transaction,
   * with their row version. A row someone else holds right now is skipped (`SKIP LOCKED`: never a
   * wait, never a deadlock with a sync or a power operation); the caller asks again later.
   */
  async lockKnown(ids: string[], tx: DbOrTx): Promise<(KnownWorkstation & { poolId: string | null; version: string })[]> {
    if (ids.length === 0) return [];
    const rows = await tx
      .select({ ...KNOWN_COLUMNS, poolId: workstations.poolId, version: ROW_VERSION })
      .from(workstations)
      .where(inArray(workstations.id, ids))
      .orderBy(asc(workstations.id))
      .for('update', { skipLocked: true });
    return rows.map((r) => ({ ...r, powerState: r.powerState as PowerState }));
  }

  async insertMany(providerId: string, rows: SyncFields[], at: Date, tx: DbOrTx): Promise<{ id: string; powerState: string; instanceType: string | null }[]> {
    const out: { id: string; powerState: string; instanceType: string | null }[] = [];
    for (let i = 0; i < rows.length; i += BATCH) {
      const values = rows.slice(i, i + BATCH).map((f) => ({ ...f, providerId, powerStateChangedAt: at, createdAt: at, updatedAt: at }));
      // Do nothing on a conflict: another provider's sync on another node took the instance a moment ago
      // (workstations_instance_scope_external_key); this provider's next sync skips it, naming the owner.
      out.push(...(await tx.insert(workstations).values(values).onConflictDoNothing().returning({ id: workstations.id, powerState: workstations.powerState, instanceType: workstations.instanceType })));
    }
    return out;
  }

  async insertOne(row: NewWorkstationRow, tx: DbOrTx): Promise<WorkstationRow> {
    const [created] = await tx.insert(workstations).values(row).returning();
    return created!;
  }

  /** Apply sync results in batches: one UPDATE … FROM jsonb_to_recordset per thousand rows. */
  async updateMany(rows: { id: string; fields: SyncFields }[], at: Date, tx: DbOrTx): Promise<void> {
    for (let i = 0; i < rows.length; i += BATCH) {
      const payload = JSON.stringify(
        rows.slice(i, i + BATCH).map(({ id, fields: f }) => ({
          id,
          external_id: f.externalId,
          name: f.name,
          power_state: f.powerState,
          private_address: f.privateAddress,
          instance_type: f.instanceType,
          availability_zone: f.availabilityZone,
          subnet_id: f.subnetId,
          image_id: f.imageId,
          tags: f.tags,
        })),
      );
      await tx.execute(sql`
        update workstations w set
          external_id = v.external_id, name = v.name,
          power_state_changed_at = case when w.power_state <> v.power_state then ${at}::timestamptz else w.power_state_changed_at end,
          power_state = v.power_state, private_address = v.private_address::inet, instance_type = v.instance_type,
          availability_zone = v.availability_zone, subnet_id = v.subnet_id, image_id = v.image_id, tags = v.tags,
          updated_at = ${at}::timestamptz
        from jsonb_to_recordset(${payload}::jsonb) as v(id uuid, external_id text, name text, power_state text, private_address text,
          instance_type text, availability_zone text, subnet_id text, image_id text, tags jsonb)
        where w.id = v.id`);
    }
  }

  async setPowerState(ids: string[], state: PowerState, at: Date, tx: DbOrTx): Promise<{ id: string; instanceType: string | null; poolId: string | null }[]> {
    if (ids.length === 0) return [];
    return tx
      .update(workstations)
      .set({ powerState: state, powerStateChangedAt: at, updatedAt: at })
      .where(and(inArray(workstations.id, ids), ne(workstations.powerState, state)))
      .returning({ id: workstations.id, instanceType: workstations.instanceType, poolId: workstations.poolId });
  }

  /**
   * Close each machine's open power-state interval and open the next one from its current row
   * (state, instance type, pool), so the cost report sums exact running and stopped hours.
   * Callers pass machines whose state has just changed, after writing the new state.
   */
  async turnOverPowerHistory(workstationIds: string[], at: Date, tx: DbOrTx): Promise<void> {
    for (let i = 0; i < workstationIds.length; i += BATCH) {
      const ids = workstationIds.slice(i, i + BATCH);
      await tx
        .update(workstationPowerHistory)
        .set({ toAt: sql`greatest(${workstationPowerHistory.fromAt}, ${at}::timestamptz)` })
        .where(and(inArray(workstationPowerHistory.workstationId, ids), isNull(workstationPowerHistory.toAt)));
      await tx.execute(sql`
        insert into workstation_power_history (workstation_id, state, instance_type, pool_id, from_at)
        select id, power_state, instance_type, pool_id, ${at}::timestamptz from workstations where id in ${ids}`);
    }
  }

  async update(id: string, patch: Partial<NewWorkstationRow>, tx: DbOrTx = this.db): Promise<void> {
    await tx.update(workstations).set(patch).where(eq(workstations.id, id));
  }

  async hasActiveAssignment(id: string, db: DbOrTx = this.db): Promise<boolean> {
    const [row] = await db.select({ id: assignments.id }).from(assignments).where(and(eq(assignments.workstationId, id), eq(assignments.state, 'active'))).limit(1);
    return row !== undefined;
  }

  /** A provider's machines by external id (a static host's is its name). */
  async findByExternalIds(providerId: string, externalIds: string[], db: DbOrTx = this.db): Promise<WorkstationRow[]> {
    if (externalIds.length === 0) return [];
    const out: WorkstationRow[] = [];
    for (let i = 0; i < externalIds.length; i += BATCH) {
      out.push(...(await db.select().from(workstations).where(and(eq(workstations.providerId, providerId), inArray(workstations.externalId, externalIds.slice(i, i + BATCH))))));
    }
    return out;
  }

  /** The kind of each of these providers (what the API offers per machine depends on it). */
  async providerKinds(providerIds: string[], db: DbOrTx = this.db): Promise<Map<string, string>> {
    const ids = [...new Set(providerIds)];
    if (ids.length === 0) return new Map();
    const rows = await db.select({ id: providers.id, kind: providers.kind }).from(providers).where(inArray(providers.id, ids));
    return new Map(rows.map((r) => [r.id, r.kind]));
  }

  async delete(id: string, tx: DbOrTx): Promise<boolean> {
    const rows = await tx.delete(workstations).where(eq(workstations.id, id)).returning({ id: workstations.id });
    return rows.length === 1;
  }

  /**
   * Who and what each listed machine belongs to (its provider, the user it is assigned to): one
   * query for the whole page, so the console shows names without a request per row.
   */
  async contextOf(ids: string[], db: DbOrTx = this.db): Promise<Map<string, WorkstationContext>> {
    if (ids.length === 0) return new Map();
    const rows = await db
      .select({
        id: workstations.id,
        providerId: providers.id,
        providerName: providers.name,
        providerKind: providers.kind,
        userId: users.id,
        username: users.username,
        displayName: users.displayName,
      })
      .from(workstations)
      .innerJoin(providers, eq(providers.id, workstations.providerId))
      .leftJoin(assignments, and(eq(assignments.workstationId, workstations.id), eq(assignments.state, 'active')))
      .leftJoin(users, eq(users.id, assignments.userId))
      .where(inArray(workstations.id, ids));
    return new Map(
      rows.map((r) => [
        r.id,
        {
          provider: { id: r.providerId, name: r.providerName, kind: r.providerKind },
          assignedUser: r.userId && r.username ? { id: r.userId, username: r.username, displayName: r.displayName } : null,
        },
      ]),
    );
  }
}

export interface WorkstationContext {
  provider: { id: string; name: string; kind: string };
  assignedUser: { id: string; username: string; displayName: string | null } | null;
}

function conditions(f: WorkstationFilter): SQL[] {
  const out: SQL[] = [];
  if (f.providerId) out.push(eq(workstations.providerId, f.providerId));
  if (f.poolId) out.push(eq(workstations.poolId, f.poolId));
  if (f.powerState) out.push(eq(workstations.powerState, f.powerState));
  if (f.q) {
    const p = `%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    out.push(or(ilike(workstations.name, p), ilike(workstations.externalId, p), ilike(workstations.dnsName, p), sql`host(${workstations.privateAddress}) like ${p}`)!);
  }
  if (f.tag) {
    out.push(f.tag.value === undefined ? sql`${workstations.tags} ? ${f.tag.key}` : sql`${workstations.tags} @> ${JSON.stringify({ [f.tag.key]: f.tag.value })}::jsonb`);
  }
  return out;
}
