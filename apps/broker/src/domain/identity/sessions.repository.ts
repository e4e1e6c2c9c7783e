import { and, desc, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { apiTokens, sessions } from '../../db/schema/index.ts';

export type SessionRow = typeof sessions.$inferSelect;
export type ApiTokenRow = typeof apiTokens.$inferSelect;

export class SessionsRepository {
  constructor(private readonly db: DbOrTx) {}

  async insert(row: typeof sessions.$inferInsert, db: DbOrTx = this.db): Promise<SessionRow> {
    const [created] = await db.insert(sessions).values(row).returning();
    return created!;
  }

  async findLiveByTokenHash(tokenHash: string, now: Date): Promise<SessionRow | undefined> {
    const [row] = await this.db
      .select()
      .from(sessions)
      .where(and(eq(sessions.tokenHash, tokenHash), isNull(sessions.revokedAt), sql`${sessions.expiresAt} > ${now}`, sql`${sessions.idleExpiresAt} > ${now}`));
    return row;
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

  async insertToken(row: typeof apiTokens.$inferInsert): Promise<ApiTokenRow> {
    const [created] = await this.db.insert(apiTokens).values(row).returning();
    return created!;
  }

  async findLiveToken(tokenHash: string, now: Date): Promise<ApiTokenRow | undefined> {
    const [row] = await this.db
      .select()
      .from(apiTokens)
      .where(and(eq(apiTokens.tokenHash, tokenHash), isNull(apiTokens.revokedAt), or(isNull(apiTokens.expiresAt), sql`${apiTokens.expiresAt} > ${now}`)));
    return row;
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

  async revokeToken(userId: string, id: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(eq(apiTokens.id, id), eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id });
    return rows.length === 1;
  }
}
