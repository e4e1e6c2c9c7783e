import { and, asc, eq, gte, inArray, lt, ne, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { authServerGroupMappings, authServers, groupMfaRequirements, groups } from '../../db/schema/index.ts';

export type AuthServerRow = typeof authServers.$inferSelect;
export type NewAuthServerRow = typeof authServers.$inferInsert;
export interface MappingRow {
  authServerId: string;
  externalGroup: string;
  groupId: string;
  groupName: string;
}

export class AuthServersRepository {
  constructor(private readonly db: DbOrTx) {}

  list(db: DbOrTx = this.db): Promise<AuthServerRow[]> {
    return db.select().from(authServers).orderBy(asc(authServers.position));
  }

  async findById(id: string, db: DbOrTx = this.db): Promise<AuthServerRow | undefined> {
    const [row] = await db.select().from(authServers).where(eq(authServers.id, id));
    return row;
  }

  async findByName(name: string, db: DbOrTx = this.db): Promise<AuthServerRow | undefined> {
    const [row] = await db.select().from(authServers).where(sql`lower(${authServers.name}) = lower(${name})`);
    return row;
  }

  async lockById(id: string, tx: DbOrTx): Promise<AuthServerRow | undefined> {
    const [row] = await tx.select().from(authServers).where(eq(authServers.id, id)).for('update');
    return row;
  }

  async insert(row: NewAuthServerRow, db: DbOrTx = this.db): Promise<AuthServerRow> {
    const [created] = await db.insert(authServers).values(row).returning();
    return created!;
  }

  async update(id: string, patch: Partial<NewAuthServerRow>, db: DbOrTx = this.db): Promise<AuthServerRow | undefined> {
    const [row] = await db.update(authServers).set(patch).where(eq(authServers.id, id)).returning();
    return row;
  }

  async delete(id: string, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db.delete(authServers).where(eq(authServers.id, id)).returning({ id: authServers.id });
    return rows.length === 1;
  }

  async maxPosition(db: DbOrTx = this.db): Promise<number> {
    const [row] = await db.select({ n: sql<number>`coalesce(max(${authServers.position}), 0)::int` }).from(authServers);
    return row?.n ?? 0;
  }

  /**
   * Free `position` by moving it and everything after it one down. `position` is unique and checked
   * row by row, so the rows go through negative values first.
   */
  async makeRoomAt(position: number, exceptId: string | null, db: DbOrTx): Promise<void> {
    const others = exceptId ? ne(authServers.id, exceptId) : undefined;
    await db.update(authServers).set({ position: sql`-(${authServers.position} + 1)` }).where(and(gte(authServers.position, position), others));
    await db.update(authServers).set({ position: sql`-${authServers.position}` }).where(lt(authServers.position, 0));
  }

  /** Give `ids` the positions 1…n in this order (every row must be listed). */
  async setOrder(ids: string[], db: DbOrTx): Promise<void> {
    await db.update(authServers).set({ position: sql`-${authServers.position} - 1` });
    for (const [i, id] of ids.entries()) await db.update(authServers).set({ position: i + 1 }).where(eq(authServers.id, id));
  }

  async mappings(serverIds: string[], db: DbOrTx = this.db): Promise<MappingRow[]> {
    if (serverIds.length === 0) return [];
    return db
      .select({ authServerId: authServerGroupMappings.authServerId, externalGroup: authServerGroupMappings.externalGroup, groupId: groups.id, groupName: groups.name })
      .from(authServerGroupMappings)
      .innerJoin(groups, eq(groups.id, authServerGroupMappings.groupId))
      .where(inArray(authServerGroupMappings.authServerId, serverIds))
      .orderBy(asc(authServerGroupMappings.externalGroup), asc(groups.name));
  }

  async setMappings(serverId: string, mappings: { externalGroup: string; groupId: string }[], db: DbOrTx): Promise<void> {
    await db.delete(authServerGroupMappings).where(eq(authServerGroupMappings.authServerId, serverId));
    const unique = new Map(mappings.map((m) => [`${m.externalGroup}\n${m.groupId}`, m]));
    if (unique.size) await db.insert(authServerGroupMappings).values([...unique.values()].map((m) => ({ authServerId: serverId, ...m })));
  }

  async existingGroupIds(ids: string[], db: DbOrTx = this.db): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await db.select({ id: groups.id }).from(groups).where(inArray(groups.id, ids));
    return new Set(rows.map((r) => r.id));
  }

  async requirements(serverIds: string[], db: DbOrTx = this.db): Promise<{ mfaServerId: string; id: string; name: string }[]> {
    if (serverIds.length === 0) return [];
    return db
      .select({ mfaServerId: groupMfaRequirements.mfaServerId, id: groups.id, name: groups.name })
      .from(groupMfaRequirements)
      .innerJoin(groups, eq(groups.id, groupMfaRequirements.groupId))
      .where(inArray(groupMfaRequirements.mfaServerId, serverIds))
      .orderBy(asc(groups.name));
  }

  /** Groups among `groupIds` that already require a different second factor. */
  async requiredElsewhere(serverId: string, groupIds: string[], db: DbOrTx): Promise<{ groupId: string; mfaServerId: string }[]> {
    if (groupIds.length === 0) return [];
    return db
      .select({ groupId: groupMfaRequirements.groupId, mfaServerId: groupMfaRequirements.mfaServerId })
      .from(groupMfaRequirements)
      .where(and(inArray(groupMfaRequirements.groupId, groupIds), ne(groupMfaRequirements.mfaServerId, serverId)));
  }

  async setRequirements(serverId: string, groupIds: string[], db: DbOrTx): Promise<void> {
    await db.delete(groupMfaRequirements).where(eq(groupMfaRequirements.mfaServerId, serverId));
    if (groupIds.length) await db.insert(groupMfaRequirements).values([...new Set(groupIds)].map((groupId) => ({ groupId, mfaServerId: serverId })));
  }

  /** Names of what still points at `id` as its second factor (servers, group requirements). */
  async dependents(id: string, db: DbOrTx): Promise<string[]> {
    const servers = await db.select({ name: authServers.name }).from(authServers).where(eq(authServers.mfaServerId, id));
    const reqs = await db.select({ name: groups.name }).from(groupMfaRequirements).innerJoin(groups, eq(groups.id, groupMfaRequirements.groupId)).where(eq(groupMfaRequirements.mfaServerId, id));
    return [...servers.map((s) => `auth server "${s.name}"`), ...reqs.map((g) => `group "${g.name}"`)];
  }

  /** The second factor a member of any of `groupIds` must pass: the first in server order, enabled or not (the caller fails closed). */
  async requiredFactorForGroups(groupIds: string[], db: DbOrTx = this.db): Promise<AuthServerRow | undefined> {
    if (groupIds.length === 0) return undefined;
    const [row] = await db
      .select({ server: authServers })
      .from(groupMfaRequirements)
      .innerJoin(authServers, eq(authServers.id, groupMfaRequirements.mfaServerId))
      .where(inArray(groupMfaRequirements.groupId, groupIds))
      .orderBy(asc(authServers.position))
      .limit(1);
    return row?.server;
  }
}
