import { sql } from 'drizzle-orm';
import { check, index, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { authServers } from './auth-servers.ts';
import { createdAt, ts } from './columns.ts';

/**
 * Assertion IDs already used to sign in, until the assertion expires. The primary key makes the
 * second use of an assertion fail in the database, whichever broker node sees it.
 */
export const samlAssertions = pgTable(
  'saml_assertions',
  {
    authServerId: uuid('auth_server_id')
      .notNull()
      .references(() => authServers.id, { onDelete: 'cascade' }),
    assertionId: text('assertion_id').notNull(),
    createdAt: createdAt(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'saml_assertions_pkey', columns: [t.authServerId, t.assertionId] }),
    check('saml_assertions_id_check', sql`length(${t.assertionId}) between 1 and 256`),
    index('saml_assertions_expires_idx').on(t.expiresAt),
  ],
);
