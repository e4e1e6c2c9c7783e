import { and, eq, gt, lte, sql } from 'drizzle-orm';
import type { DbOrTx } from '../../../db/database.ts';
import { ssoStates, type SsoStatePurpose } from '../../../db/schema/index.ts';
import { hashToken } from '../tokens.ts';

export interface SsoStateRow {
  authServerId: string;
  payload: Record<string, unknown>;
  expiresAt: Date;
}

/**
 * The one-time state of SSO sign-ins (OIDC state/nonce/PKCE verifier, SAML request ids, CLI hand-off
 * codes), in PostgreSQL so that a flow started on one broker node can finish on any other. A value is
 * spent by `take`, a single `delete … returning`: a replayed or raced callback finds nothing.
 */
export class SsoStatesRepository {
  constructor(private readonly db: DbOrTx) {}

  /** `key`: the value the browser or client carries; only its SHA-256 is stored. */
  async put(key: string, row: SsoStateRow & { purpose: SsoStatePurpose; now: Date }, db: DbOrTx = this.db): Promise<void> {
    // Abandoned flows (the user closed the tab at the IdP) are swept here, so the table stays small without a job.
    await db.delete(ssoStates).where(lte(ssoStates.expiresAt, row.now));
    await db.insert(ssoStates).values({ keyHash: hashToken(key), purpose: row.purpose, authServerId: row.authServerId, payload: row.payload, createdAt: row.now, expiresAt: row.expiresAt });
  }

  /** The row for `key` if it exists, is for `purpose` and has not expired — removed in the same statement. */
  async take(key: string, purpose: SsoStatePurpose, now: Date, db: DbOrTx = this.db): Promise<SsoStateRow | null> {
    const [row] = await db
      .delete(ssoStates)
      .where(and(eq(ssoStates.keyHash, hashToken(key)), eq(ssoStates.purpose, purpose), gt(ssoStates.expiresAt, now)))
      .returning({ authServerId: ssoStates.authServerId, payload: ssoStates.payload, expiresAt: ssoStates.expiresAt });
    return row ?? null;
  }

  async count(db: DbOrTx = this.db): Promise<number> {
    const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(ssoStates);
    return row?.n ?? 0;
  }
}
