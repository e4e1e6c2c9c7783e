import { lt } from 'drizzle-orm';
import type { DbOrTx } from '../../../db/database.ts';
import { samlAssertions } from '../../../db/schema/index.ts';

/**
 * Assertion IDs already used to sign in, shared by every broker node: recording one is an INSERT
 * whose primary key refuses the second use, so PostgreSQL decides which of two racing nodes wins.
 * (The AuthnRequest ids live in the shared `sso_states`, purpose `saml-request`.)
 */
export class SamlRepository {
  constructor(private readonly db: DbOrTx) {}

  /** Record an assertion as used; false when it already was (on any node). */
  async recordAssertion(row: { authServerId: string; assertionId: string; createdAt: Date; expiresAt: Date }, db: DbOrTx = this.db): Promise<boolean> {
    const inserted = await db.insert(samlAssertions).values(row).onConflictDoNothing().returning({ id: samlAssertions.assertionId });
    return inserted.length === 1;
  }

  /** Forget assertions past their expiry (an expired assertion is refused on its dates anyway). */
  async sweep(now: Date, db: DbOrTx = this.db): Promise<void> {
    await db.delete(samlAssertions).where(lt(samlAssertions.expiresAt, now));
  }
}
