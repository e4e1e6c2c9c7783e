import { and, asc, count, eq, inArray, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { groupMembers, groups } from '../../db/schema/index.ts';

export type GroupRow = typeof groups.$inferSelect;
export type GroupWithCount = GroupRow & { memberCount: number };

export class GroupsRepository {
  constructor(private readonly db: DbOrTx) {}

  async list(limit: number, offset: number): Promise<{ items: GroupWithCount[]; total: number }> {
    const items = await this.db
      .select({ ...fields(), memberCount: sql<number>`(select count(*)::int from ${groupMembers} where ${groupMembers.groupId} = ${groups.id})` })
      .from(groups)
      .orderBy(asc(groups.name))
      .limit(limit)
      .offset(offset);
    const [row] = await this.db.select({ n: count() }).from(groups);
    return { items, total: row?.n ?? 0 };
  }

  async findById(id: string, db: DbOrTx = this.db): Promise<GroupWithCount | undefined> {
    const [row] = await db
      .select({ ...fields(), memberCount: sql<number>`(select count(*)::int from ${groupMembers} where ${groupMembers.groupId} = ${groups.id})` })
      .from(groups)
      .where(eq(groups.id, id));
    return row;
  }

  async findByName(name: string, db: DbOrTx = this.db): Promise<GroupWithCount | undefined> {
    const [row] = await db
      .select({ ...fields(), memberCount: sql<number>`(select count(*)::int from ${groupMembers} where ${groupMembers.groupId} = ${groups.id})` })
      .from(groups)
      .where(sql`lower(${groups.name}) = lower(${name})`);
    return row;
  }

  async existingIds(ids: string[], db: DbOrTx = this.db): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await db.select({ id: groups.id }).from(groups).where(inArray(groups.id, ids));
    return new Set(rows.map((r) => r.id));
  }

  async insert(row: typeof groups.$inferInsert, db: DbOrTx = this.db): Promise<GroupRow> {
    const [created] = await db.insert(groups).values(row).returning();
    return created!;
  }

  async update(id: string, patch: Partial<typeof groups.$inferInsert>, db: DbOrTx = this.db): Promise<GroupRow | undefined> {
    const [row] = await db.update(groups).set(patch).where(eq(groups.id, id)).returning();
    return row;
  }

  async delete(id: string, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db.delete(groups).where(eq(groups.id, id)).returning({ id: groups.id });
    return rows.length === 1;
  }

  async addMembers(groupId: string, userIds: string[], db: DbOrTx = this.db): Promise<number> {
    if (userIds.length === 0) return 0;
    const rows = await db
      .insert(groupMembers)
      .values([...new Set(userIds)].map((userId) => ({ groupId, userId })))
      .onConflictDoNothing()
      .returning({ userId: groupMembers.userId });
    return rows.length;
  }

  async memberIds(groupId: string, db: DbOrTx = this.db): Promise<string[]> {
    return (await db.select({ userId: groupMembers.userId }).from(groupMembers).where(eq(groupMembers.groupId, groupId))).map((r) => r.userId);
  }

  async removeMember(groupId: string, userId: string, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db
      .delete(groupMembers)
      .where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.userId, userId)))
      .returning({ userId: groupMembers.userId });
    return rows.length === 1;
  }
}

function fields() {
  return {
    id: groups.id,
    name: groups.name,
    description: groups.description,
    source: groups.source,
    createdAt: groups.createdAt,
    updatedAt: groups.updatedAt,
  };
}
