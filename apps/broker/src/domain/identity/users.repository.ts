import { and, asc, count, eq, ilike, inArray, ne, or, sql, type SQL } from 'drizzle-orm';
import type { Role } from '@stagedoor/contract';
import type { DbOrTx } from '../../db/database.ts';
import { groupMembers, groups, users } from '../../db/schema/index.ts';

export type UserRow = typeof users.$inferSelect;
export type NewUserRow = typeof users.$inferInsert;
export type UserWithGroups = UserRow & { groups: { id: string; name: string }[] };

/**
 * The groups of the `users` row of the enclosing query, as a select-list column. The outer column is
 * spelled out: in a select list Drizzle renders `users.id` unqualified, which inside the subquery
 * would mean `g.id`.
 */
export const groupsOfUser = sql<{ id: string; name: string }[]>`coalesce((select json_agg(json_build_object('id', g.id, 'name', g.name) order by g.name)
  from ${groupMembers} gm join ${groups} g on g.id = gm.group_id where gm.user_id = "users"."id"), '[]'::json)`;

export class UsersRepository {
  constructor(private readonly db: DbOrTx) {}

  async findByUsername(username: string, db: DbOrTx = this.db): Promise<UserRow | undefined> {
    const [row] = await db.select().from(users).where(sql`lower(${users.username}) = lower(${username})`);
    return row;
  }

  async findById(id: string, db: DbOrTx = this.db): Promise<UserRow | undefined> {
    const [row] = await db.select().from(users).where(eq(users.id, id));
    return row;
  }

  /** The user with their groups in one round trip (every authenticated request needs both). */
  async findByIdWithGroups(id: string, db: DbOrTx = this.db): Promise<UserWithGroups | undefined> {
    const [row] = await db.select({ user: users, groups: groupsOfUser }).from(users).where(eq(users.id, id));
    return row ? { ...row.user, groups: row.groups } : undefined;
  }

  /** Read the row and hold it (`FOR UPDATE`) until the caller's transaction ends. */
  async lockById(id: string, tx: DbOrTx): Promise<UserRow | undefined> {
    const [row] = await tx.select().from(users).where(eq(users.id, id)).for('update');
    return row;
  }

  async insert(row: NewUserRow, db: DbOrTx = this.db): Promise<UserRow> {
    const [created] = await db.insert(users).values(row).returning();
    return created!;
  }

  async update(id: string, patch: Partial<NewUserRow>, db: DbOrTx = this.db): Promise<UserRow | undefined> {
    const [row] = await db.update(users).set(patch).where(eq(users.id, id)).returning();
    return row;
  }

  async delete(id: string, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
    return rows.length === 1;
  }

  async count(db: DbOrTx = this.db): Promise<number> {
    const [row] = await db.select({ n: count() }).from(users);
    return row?.n ?? 0;
  }

  /** Enabled admins other than `exceptId`: the last one may not be demoted, disabled or deleted. */
  async countOtherEnabledAdmins(exceptId: string, db: DbOrTx = this.db): Promise<number> {
    const [row] = await db
      .select({ n: count() })
      .from(users)
      .where(and(eq(users.role, 'admin'), eq(users.disabled, false), ne(users.id, exceptId)));
    return row?.n ?? 0;
  }

  async list(filter: { q?: string; role?: Role; groupId?: string }, limit: number, offset: number): Promise<{ items: UserRow[]; total: number }> {
    const where: SQL[] = [];
    if (filter.q) {
      const pattern = `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push(or(ilike(users.username, pattern), ilike(users.displayName, pattern), ilike(users.email, pattern))!);
    }
    if (filter.role) where.push(eq(users.role, filter.role));
    if (filter.groupId) where.push(inArray(users.id, this.db.select({ id: groupMembers.userId }).from(groupMembers).where(eq(groupMembers.groupId, filter.groupId))));
    const cond = and(...where);
    const items = await this.db.select().from(users).where(cond).orderBy(asc(users.username)).limit(limit).offset(offset);
    const [row] = await this.db.select({ n: count() }).from(users).where(cond);
    return { items, total: row?.n ?? 0 };
  }

  async groupsOf(userIds: string[], db: DbOrTx = this.db): Promise<Map<string, { id: string; name: string }[]>> {
    const out = new Map<string, { id: string; name: string }[]>(userIds.map((id) => [id, []]));
    if (userIds.length === 0) return out;
    const rows = await db
      .select({ userId: groupMembers.userId, id: groups.id, name: groups.name })
      .from(groupMembers)
      .innerJoin(groups, eq(groups.id, groupMembers.groupId))
      .where(inArray(groupMembers.userId, userIds))
      .orderBy(asc(groups.name));
    for (const r of rows) out.get(r.userId)?.push({ id: r.id, name: r.name });
    return out;
  }

  async withGroups(rows: UserRow[], db: DbOrTx = this.db): Promise<UserWithGroups[]> {
    const map = await this.groupsOf(
      rows.map((r) => r.id),
      db,
    );
    return rows.map((r) => ({ ...r, groups: map.get(r.id) ?? [] }));
  }

  /** Replace the user's group memberships with exactly `groupIds`. */
  async setGroups(userId: string, groupIds: string[], db: DbOrTx = this.db): Promise<void> {
    await db.delete(groupMembers).where(eq(groupMembers.userId, userId));
    if (groupIds.length) await db.insert(groupMembers).values([...new Set(groupIds)].map((groupId) => ({ groupId, userId })));
  }

  /**
   * Directory sign-in: make the user a member of exactly `wanted` among the `managed` groups (those the
   * directory maps into), leaving memberships an admin gave by hand in other groups alone.
   */
  async syncManagedGroups(userId: string, managed: string[], wanted: string[], db: DbOrTx = this.db): Promise<{ added: string[]; removed: string[] }> {
    const drop = managed.filter((g) => !wanted.includes(g));
    const removed = drop.length
      ? (await db.delete(groupMembers).where(and(eq(groupMembers.userId, userId), inArray(groupMembers.groupId, drop))).returning({ id: groupMembers.groupId })).map((r) => r.id)
      : [];
    const added = wanted.length
      ? (await db.insert(groupMembers).values(wanted.map((groupId) => ({ groupId, userId }))).onConflictDoNothing().returning({ id: groupMembers.groupId })).map((r) => r.id)
      : [];
    return { added, removed };
  }
}
