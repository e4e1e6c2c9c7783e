import { and, count, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { pendingLogins, totpRecoveryCodes, userTotp } from '../../db/schema/index.ts';

export type PendingLoginRow = typeof pendingLogins.$inferSelect;
export type UserTotpRow = typeof userTotp.$inferSelect;

/** Half-finished logins, TOTP enrolments and recovery codes: the second factor's state, shared by every node. */
export class MfaRepository {
  constructor(private readonly db: DbOrTx) {}

  // Pending logins

  async insertPending(row: typeof pendingLogins.$inferInsert, db: DbOrTx = this.db): Promise<PendingLoginRow> {
    const [created] = await db.insert(pendingLogins).values(row).returning();
    return created!;
  }

  /**
   * Spend one attempt of a live pending login and return it, or nothing when the token is unknown,
   * expired or out of attempts. Atomic, so two nodes answering at once each spend their own attempt.
   */
  async claimAttempt(tokenHash: string, now: Date, maxAttempts: number, db: DbOrTx = this.db): Promise<PendingLoginRow | undefined> {
    const [row] = await db
      .update(pendingLogins)
      .set({ attempts: sql`${pendingLogins.attempts} + 1` })
      .where(and(eq(pendingLogins.tokenHash, tokenHash), gt(pendingLogins.expiresAt, now), lt(pendingLogins.attempts, maxAttempts)))
      .returning();
    return row;
  }

  /** A live pending login, read without spending an attempt (to show an enrolment again). */
  async findLivePending(tokenHash: string, now: Date, db: DbOrTx = this.db): Promise<PendingLoginRow | undefined> {
    const [row] = await db.select().from(pendingLogins).where(and(eq(pendingLogins.tokenHash, tokenHash), gt(pendingLogins.expiresAt, now)));
    return row;
  }

  /** False when the pending login is gone (completed or ended by a concurrent answer). */
  async updatePending(id: string, patch: Partial<typeof pendingLogins.$inferInsert>, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db.update(pendingLogins).set(patch).where(eq(pendingLogins.id, id)).returning({ id: pendingLogins.id });
    return rows.length === 1;
  }

  /** True for the one caller that removed it: completing a login twice is impossible. */
  async deletePending(id: string, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db.delete(pendingLogins).where(eq(pendingLogins.id, id)).returning({ id: pendingLogins.id });
    return rows.length === 1;
  }

  async deleteExpiredPending(now: Date, db: DbOrTx = this.db): Promise<number> {
    const rows = await db.delete(pendingLogins).where(lt(pendingLogins.expiresAt, now)).returning({ id: pendingLogins.id });
    return rows.length;
  }

  // TOTP enrolments

  async totpOf(userId: string, db: DbOrTx = this.db): Promise<UserTotpRow | undefined> {
    const [row] = await db.select().from(userTotp).where(eq(userTotp.userId, userId));
    return row;
  }

  /** Start (or restart) an unconfirmed enrolment; a confirmed one is replaced only when `replaceConfirmed`. */
  async putUnconfirmed(row: { userId: string; secretCiphertext: string; algorithm: string; digits: number; periodSeconds: number; now: Date }, replaceConfirmed: boolean, db: DbOrTx = this.db): Promise<boolean> {
    const settings = { secretCiphertext: row.secretCiphertext, algorithm: row.algorithm, digits: row.digits, periodSeconds: row.periodSeconds, confirmedAt: null, lastUsedStep: null, createdAt: row.now, updatedAt: row.now };
    const rows = await db
      .insert(userTotp)
      .values({ userId: row.userId, ...settings })
      .onConflictDoUpdate({ target: userTotp.userId, set: settings, where: replaceConfirmed ? undefined : isNull(userTotp.confirmedAt) })
      .returning({ userId: userTotp.userId });
    // Re-enrolling voids the old recovery codes (they belong to the enrolment).
    if (rows.length === 1) await db.delete(totpRecoveryCodes).where(eq(totpRecoveryCodes.userId, row.userId));
    return rows.length === 1;
  }

  async confirm(userId: string, step: number, now: Date, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db
      .update(userTotp)
      .set({ confirmedAt: now, lastUsedStep: step, updatedAt: now })
      .where(and(eq(userTotp.userId, userId), isNull(userTotp.confirmedAt)))
      .returning({ userId: userTotp.userId });
    return rows.length === 1;
  }

  /**
   * Record `step` as used. The `where` makes it atomic across nodes: of two requests with the same
   * code, only one moves the step forward; the other updates nothing and is refused as a replay.
   */
  async useStep(userId: string, step: number, now: Date, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db
      .update(userTotp)
      .set({ lastUsedStep: step, updatedAt: now })
      .where(and(eq(userTotp.userId, userId), or(isNull(userTotp.lastUsedStep), lt(userTotp.lastUsedStep, step))))
      .returning({ userId: userTotp.userId });
    return rows.length === 1;
  }

  async deleteTotp(userId: string, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db.delete(userTotp).where(eq(userTotp.userId, userId)).returning({ userId: userTotp.userId });
    return rows.length === 1;
  }

  // Recovery codes

  async replaceRecoveryCodes(userId: string, hashes: string[], now: Date, db: DbOrTx = this.db): Promise<void> {
    await db.delete(totpRecoveryCodes).where(eq(totpRecoveryCodes.userId, userId));
    await db.insert(totpRecoveryCodes).values(hashes.map((codeHash) => ({ userId, codeHash, createdAt: now })));
  }

  /** Spend a recovery code: true once, false ever after (and for unknown codes). */
  async useRecoveryCode(userId: string, codeHash: string, now: Date, db: DbOrTx = this.db): Promise<boolean> {
    const rows = await db
      .update(totpRecoveryCodes)
      .set({ usedAt: now })
      .where(and(eq(totpRecoveryCodes.userId, userId), eq(totpRecoveryCodes.codeHash, codeHash), isNull(totpRecoveryCodes.usedAt)))
      .returning({ id: totpRecoveryCodes.id });
    return rows.length === 1;
  }

  async recoveryCodesLeft(userId: string, db: DbOrTx = this.db): Promise<number> {
    const [row] = await db
      .select({ n: count() })
      .from(totpRecoveryCodes)
      .where(and(eq(totpRecoveryCodes.userId, userId), isNull(totpRecoveryCodes.usedAt)));
    return row?.n ?? 0;
  }
}
