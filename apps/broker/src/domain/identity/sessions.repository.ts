import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { apiTokens, sessions, users } from '../../db/schema/index.ts';
import { groupsOfUser, type UserWithGroups } from './users.repository.ts';

export type SessionRow = typeof sessions.$inferSelect;
export type ApiTokenRow = typeof apiTokens.$inferSelect;

// Every authenticated request runs one of these two: built once (Drizzle spends more CPU building a
// select of ~40 columns than PostgreSQL spends answering it) and prepared on the server.
const liveSessionWithUser = (db: DbOrTx) =>
  db
    .select({ session: sessions, user: users, groups: groupsOfUser })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.tokenHash, sql.placeholder('tokenHash')), isNull(sessions.revokedAt), sql`${sessions.expiresAt} > ${sql.placeholder('now')}`, sql`${sessions.idleExpiresAt} > ${sql.placeholder('now')}`))
    .prepare('stagedoor_session_with_user');

const liveTokenWithUser = (db: DbOrTx) =>
  db
    .select({ token: apiTokens, user: users, groups: groupsOfUser })
    .from(apiTokens)
    .innerJoin(users, eq(users.id, apiTokens.userId))
    .where(
      and(
        eq(apiTokens.tokenHash, sql.placeholder('tokenHash')),
        isNull(apiTokens.revokedAt),
        or(isNull(apiTokens.expiresAt), sql`${apiTokens.expiresAt} > ${sql.placeholder('now')}`),
        // The maximum lifetime holds for every token, also those made before it existed (no expiry) or
        // before an admin shortened it.
        sql`${apiTokens.createdAt} > ${sql.placeholder('oldestCreatedAt')}`,
      ),
    )
    .prepare('stagedoor_token_with_user');

export class SessionsRepository {
  readonly #liveSessionWithUser: ReturnType<typeof liveSessionWithUser>;
  readonly #liveTokenWithUser: ReturnType<typeof liveTokenWithUser>;

  constructor(private readonly db: DbOrTx) {
    this.#liveSessionWithUser = liveSessionWithUser(db);
    this.#liveTokenWithUser = liveTokenWithUser(db);
  }

  async insert(row: typeof sessions.$inferInsert, db: DbOrTx = this.db): Promise<SessionRow> {
    const [created] = await db.insert(sessions).values(row).returning();
    return created!;
  }

  /** Slide the idle deadline; never past the absolute lifetime. */
  async touch(id: string, now: Date, idleExpiresAt: Date): Promise<void> {
    await this.db
      .update(sessions)
      .set({ lastSeenAt: now, idleExpiresAt: sql`least(${idleExpiresAt}::timestamptz, ${sessions.expiresAt})` })
      .where(eq(sessions.id, id));
  }

  async revoke(id: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(sessions)
      .set({ revokedAt: now })
      .where(and(eq(sessions.id, id), isNull(sessions.revokedAt)))
      .returning({ id: sessions.id });
    return rows.length === 1;
  }

  async revokeAllOfUser(userId: string, now: Date, db: DbOrTx = this.db): Promise<number> {
    const rows = await db
      .update(sessions)
      .set({ revokedAt: now })
      .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)))
      .returning({ id: sessions.id });
    return rows.length;
  }

  /** Housekeeping: sessions past either deadline, or revoked, for longer than `graceMs`. */
  async deleteDead(now: Date, graceMs: number): Promise<number> {
    const before = new Date(now.getTime() - graceMs);
    const rows = await this.db
      .delete(sessions)
      .where(or(lt(sessions.expiresAt, before), lt(sessions.idleExpiresAt, before), lt(sessions.revokedAt, before)))
      .returning({ id: sessions.id });
    return rows.length;
  }

  // API tokens live beside sessions: both are bearer secrets stored as hashes.

  async insertToken(row: typeof apiTokens.$inferInsert, db: DbOrTx = this.db): Promise<ApiTokenRow> {
    const [created] = await db.insert(apiTokens).values(row).returning();
    return created!;
  }

  /** Every live API token of a user ends now (password reset, "log out everywhere", account disabled). */
  async revokeAllTokensOfUser(userId: string, now: Date, db: DbOrTx = this.db): Promise<number> {
    const rows = await db
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id });
    return rows.length;
  }

  /** A live session with its user and the user's groups: what every cookie request needs, in one round trip. */
  async findLiveWithUser(tokenHash: string, now: Date): Promise<{ session: SessionRow; user: UserWithGroups } | undefined> {
    const [row] = await this.#liveSessionWithUser.execute({ tokenHash, now });
    return row ? { session: row.session, user: { ...row.user, groups: row.groups } } : undefined;
  }

  /** A live API token (created after `oldestCreatedAt`) with its user and groups, in one round trip. */
  async findLiveTokenWithUser(tokenHash: string, now: Date, oldestCreatedAt: Date): Promise<{ token: ApiTokenRow; user: UserWithGroups } | undefined> {
    const [row] = await this.#liveTokenWithUser.execute({ tokenHash, now, oldestCreatedAt });
    return row ? { token: row.token, user: { ...row.user, groups: row.groups } } : undefined;
  }

  async touchToken(id: string, now: Date): Promise<void> {
    await this.db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, id));
  }

  async listTokens(userId: string): Promise<ApiTokenRow[]> {
    return this.db
      .select()
      .from(apiTokens)
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .orderBy(desc(apiTokens.createdAt));
  }

  async revokeToken(userId: string, id: string, now: Date, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(eq(apiTokens.id, id), eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id });
    return rows.length === 1;
  }
}
