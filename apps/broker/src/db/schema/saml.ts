import { sql } from 'drizzle-orm';
import { check, index, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { authServers } from './auth-servers.ts';
import { createdAt, ts } from './columns.ts';

/**
 * SAML AuthnRequests the broker sent and has not yet seen answered. A row is the only proof that a
 * response's InResponseTo is ours; consuming it is one DELETE … RETURNING, so of two broker nodes
 * handed the same response only one gets the row. Expired rows are swept by the next sign-in.
 */
export const samlRequests = pgTable(
  'saml_requests',
  {
    /** The AuthnRequest ID (an XML ID: starts with a letter or underscore). */
    id: text('id').primaryKey(),
    authServerId: uuid('auth_server_id')
      .notNull()
      .references(() => authServers.id, { onDelete: 'cascade' }),
    /** Where the browser goes after signing in: a path on this site, never a full URL. */
    returnTo: text('return_to').notNull().default('/'),
    createdAt: createdAt(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [
    check('saml_requests_id_check', sql`length(${t.id}) between 1 and 256`),
    check('saml_requests_return_to_check', sql`left(${t.returnTo}, 1) = '/' and left(${t.returnTo}, 2) <> '//'`),
    index('saml_requests_expires_idx').on(t.expiresAt),
  ],
);

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
