import { and, eq } from 'drizzle-orm';
import type { DbOrTx } from '../../../db/database.ts';
import { ssoIdentities } from '../../../db/schema/index.ts';

/** IdP subject ↔ Stagedoor user, per auth server (see the table's comment). */
export class SsoIdentitiesRepository {
  constructor(private readonly db: DbOrTx) {}

  async userFor(authServerId: string, subject: string, db: DbOrTx = this.db): Promise<string | null> {
    const [row] = await db.select({ userId: ssoIdentities.userId }).from(ssoIdentities).where(and(eq(ssoIdentities.authServerId, authServerId), eq(ssoIdentities.subject, subject)));
    return row?.userId ?? null;
  }

  async subjectOf(authServerId: string, userId: string, db: DbOrTx = this.db): Promise<string | null> {
    const [row] = await db.select({ subject: ssoIdentities.subject }).from(ssoIdentities).where(and(eq(ssoIdentities.authServerId, authServerId), eq(ssoIdentities.userId, userId)));
    return row?.subject ?? null;
  }

  /** Record (or touch) the link; a second subject for the same user violates the unique key and is refused by the caller. */
  async link(authServerId: string, subject: string, userId: string, now: Date, db: DbOrTx = this.db): Promise<void> {
    await db
      .insert(ssoIdentities)
      .values({ authServerId, subject, userId, createdAt: now, lastSeenAt: now })
      .onConflictDoUpdate({ target: [ssoIdentities.authServerId, ssoIdentities.subject], set: { lastSeenAt: now } });
  }
}
