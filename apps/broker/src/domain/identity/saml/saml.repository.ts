import { and, eq, gt, lt } from 'drizzle-orm';
import type { DbOrTx } from '../../../db/database.ts';
import { samlAssertions, samlRequests } from '../../../db/schema/index.ts';

export type SamlRequestRow = typeof samlRequests.$inferSelect;

/**
 * The SAML state every broker node must share: the AuthnRequests we sent (so a response's
 * InResponseTo is checked against PostgreSQL, not one node's memory) and the assertion IDs already
 * used. Both "use once" rules are single statements whose outcome PostgreSQL decides: a DELETE …
 * RETURNING that only one caller can win, and an INSERT whose primary key refuses the second.
 */
export class SamlRepository {
  constructor(private readonly db: DbOrTx) {}

  async saveRequest(row: { id: string; authServerId: string; returnTo: string; createdAt: Date; expiresAt: Date }, db: DbOrTx = this.db): Promise<void> {
    await db.insert(samlRequests).values(row);
  }

  /** A pending request, without using it up (node-saml looks before it checks the signature). */
  async findRequest(id: string, authServerId: string, now: Date, db: DbOrTx = this.db): Promise<SamlRequestRow | undefined> {
    const [row] = await db
      .select()
      .from(samlRequests)
      .where(and(eq(samlRequests.id, id), eq(samlRequests.authServerId, authServerId), gt(samlRequests.expiresAt, now)));
    return row;
  }

  /** Use the request up; undefined when it is unknown, expired, or another node used it first. */
  async consumeRequest(id: string, authServerId: string, now: Date, db: DbOrTx = this.db): Promise<SamlRequestRow | undefined> {
    const [row] = await db
      .delete(samlRequests)
      .where(and(eq(samlRequests.id, id), eq(samlRequests.authServerId, authServerId), gt(samlRequests.expiresAt, now)))
      .returning();
    return row;
  }

  /** Record an assertion as used; false when it already was (on any node). */
  async recordAssertion(row: { authServerId: string; assertionId: string; createdAt: Date; expiresAt: Date }, db: DbOrTx = this.db): Promise<boolean> {
    const inserted = await db.insert(samlAssertions).values(row).onConflictDoNothing().returning({ id: samlAssertions.assertionId });
    return inserted.length === 1;
  }

  /** Forget requests and assertions past their expiry (an expired assertion is refused on its dates anyway). */
  async sweep(now: Date, db: DbOrTx = this.db): Promise<void> {
    await db.delete(samlRequests).where(lt(samlRequests.expiresAt, now));
    await db.delete(samlAssertions).where(lt(samlAssertions.expiresAt, now));
  }
}
