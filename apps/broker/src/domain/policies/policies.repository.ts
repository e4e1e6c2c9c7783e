import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { groups as groupsTable, policies, policyGroups, policyPools, pools as poolsTable, protocolPlans } from '../../db/schema/index.ts';
import type { ProtocolPlanEntry } from '../../db/schema/policies.ts';

export type PolicyRow = typeof policies.$inferSelect;
export type PolicyWithLinks = PolicyRow & {
  groupIds: string[];
  pools: { poolId: string; desktops: number }[];
  /** Its protocol plan's entries, when the query that found the policy brought them along. */
  protocols?: ProtocolPlanEntry[] | null;
  /**
   * The names of its groups and pools (id → name), for the API's readers: an admin reading the
   * policies knows who sees what without looking ids up. Not on the connect path's query.
   */
  linkNames?: Record<string, string>;
};

/**
 * Built once and prepared on the server: every connect and every "my desktops" asks it first, and
 * gets the policy's groups, pools and protocol plan in the same round trip.
 */
const firstMatchingPolicy = (db: DbOrTx) =>
  db
    .select({
      policy: policies,
      // "policies"."id" spelled out: Drizzle renders a select-list column unqualified.
      groupIds: sql<string[]>`coalesce((select json_agg(pg.group_id) from ${policyGroups} pg where pg.policy_id = "policies"."id"), '[]'::json)`,
      pools: sql<{ poolId: string; desktops: number }[]>`coalesce((select json_agg(json_build_object('poolId', pp.pool_id, 'desktops', pp.desktop_count) order by pp.position)
        from ${policyPools} pp where pp.policy_id = "policies"."id"), '[]'::json)`,
      protocols: sql<ProtocolPlanEntry[] | null>`(select pr.protocols from ${protocolPlans} pr where pr.id = "policies"."protocol_plan_id")`,
    })
    .from(policies)
    .where(and(eq(policies.enabled, true), sql`exists (select 1 from ${policyGroups} pg where pg.policy_id = ${policies.id} and pg.group_id = any(${sql.placeholder('groupIds')}::uuid[]))`))
    .orderBy(asc(policies.position))
    .limit(1)
    .prepare('stagedoor_first_matching_policy');

export class PoliciesRepository {
  readonly #firstMatching: ReturnType<typeof firstMatchingPolicy>;

  constructor(private readonly db: DbOrTx) {
    this.#firstMatching = firstMatchingPolicy(db);
  }

  async list(db: DbOrTx = this.db): Promise<PolicyWithLinks[]> {
    return this.#withLinks(await db.select().from(policies).orderBy(asc(policies.position)), db);
  }

  async findById(id: string, db: DbOrTx = this.db): Promise<PolicyWithLinks | undefined> {
    const rows = await db.select().from(policies).where(eq(policies.id, id));
    return (await this.#withLinks(rows, db))[0];
  }

  async findByName(name: string, db: DbOrTx = this.db): Promise<PolicyWithLinks | undefined> {
    const rows = await db.select().from(policies).where(sql`lower(${policies.name}) = lower(${name})`);
    return (await this.#withLinks(rows, db))[0];
  }

  /**
   * The first enabled policy, by position, naming any of these groups — with its groups and pools in
   * the same round trip, since every connect asks this first.
   */
  async firstMatching(groupIds: string[]): Promise<PolicyWithLinks | undefined> {
    if (groupIds.length === 0) return undefined;
    const [row] = await this.#firstMatching.execute({ groupIds });
    return row ? { ...row.policy, groupIds: row.groupIds, pools: row.pools, protocols: row.protocols } : undefined;
  }

  async maxPosition(db: DbOrTx = this.db): Promise<number> {
    const [row] = await db.select({ m: sql<number>`coalesce(max(${policies.position}), 0)::int` }).from(policies);
    return row?.m ?? 0;
  }

  async insert(row: typeof policies.$inferInsert, db: DbOrTx): Promise<PolicyRow> {
    const [created] = await db.insert(policies).values(row).returning();
    return created!;
  }

  async update(id: string, patch: Partial<typeof policies.$inferInsert>, db: DbOrTx): Promise<PolicyRow | undefined> {
    const [row] = await db.update(policies).set(patch).where(eq(policies.id, id)).returning();
    return row;
  }

  async delete(id: string, db: DbOrTx): Promise<boolean> {
    return (await db.delete(policies).where(eq(policies.id, id)).returning({ id: policies.id })).length === 1;
  }

  async setLinks(policyId: string, links: { groupIds?: string[]; pools?: { poolId: string; desktops: number }[] }, db: DbOrTx): Promise<void> {
    if (links.groupIds) {
      await db.delete(policyGroups).where(eq(policyGroups.policyId, policyId));
      if (links.groupIds.length) await db.insert(policyGroups).values(links.groupIds.map((groupId) => ({ policyId, groupId })));
    }
    if (links.pools) {
      await db.delete(policyPools).where(eq(policyPools.policyId, policyId));
      if (links.pools.length) await db.insert(policyPools).values(links.pools.map((p, i) => ({ policyId, poolId: p.poolId, desktopCount: p.desktops, position: i + 1 })));
    }
  }

  /** Set every policy's position at once: move them out of the way first (position is unique). */
  async reorder(ids: string[], db: DbOrTx): Promise<void> {
    await db.update(policies).set({ position: sql`-${policies.position}` }).where(inArray(policies.id, ids));
    for (const [i, id] of ids.entries()) await db.update(policies).set({ position: i + 1 }).where(eq(policies.id, id));
  }

  async #withLinks(rows: PolicyRow[], db: DbOrTx): Promise<PolicyWithLinks[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const groups = await db
      .select({ policyId: policyGroups.policyId, groupId: policyGroups.groupId, name: groupsTable.name })
      .from(policyGroups)
      .innerJoin(groupsTable, eq(groupsTable.id, policyGroups.groupId))
      .where(inArray(policyGroups.policyId, ids))
      .orderBy(asc(groupsTable.name));
    const pools = await db
      .select({ policyId: policyPools.policyId, poolId: policyPools.poolId, desktopCount: policyPools.desktopCount, name: poolsTable.name })
      .from(policyPools)
      .innerJoin(poolsTable, eq(poolsTable.id, policyPools.poolId))
      .where(inArray(policyPools.policyId, ids))
      .orderBy(asc(policyPools.position));
    const linkNames = Object.fromEntries([...groups.map((g) => [g.groupId, g.name]), ...pools.map((p) => [p.poolId, p.name])]);
    return rows.map((r) => ({
      ...r,
      groupIds: groups.filter((g) => g.policyId === r.id).map((g) => g.groupId),
      pools: pools.filter((p) => p.policyId === r.id).map((p) => ({ poolId: p.poolId, desktops: p.desktopCount })),
      linkNames,
    }));
  }
}
