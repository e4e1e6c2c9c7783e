import { sql } from 'drizzle-orm';
import { check, index, jsonb, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { createdAt, oneOf, ts } from './columns.ts';
import { authServers } from './auth-servers.ts';
import { users } from './identity.ts';

export const SSO_STATE_PURPOSES = ['oidc-login', 'saml-request', 'cli-handoff'] as const;
export type SsoStatePurpose = (typeof SSO_STATE_PURPOSES)[number];

/**
 * One-time sign-in state shared by every broker node: OIDC `state` (with its nonce and PKCE verifier),
 * a SAML AuthnRequest id, the hand-off code of `stagedoor login --sso`. The flow may start on one node
 * and come back to another, so nothing lives in memory. Taken with `delete … returning`: of two
 * callbacks carrying the same key, exactly one gets the row.
 */
export const ssoStates = pgTable(
  'sso_states',
  {
    /** SHA-256 of the value the browser carries (never the value itself: a database read gives no usable state). */
    keyHash: text('key_hash').primaryKey(),
    /** What the row is for, so a SAML request id can never be spent as an OIDC state or a CLI code. */
    purpose: text('purpose').notNull(),
    authServerId: uuid('auth_server_id')
      .notNull()
      .references(() => authServers.id, { onDelete: 'cascade' }),
    /** nonce, PKCE verifier, where to go afterwards …: only the flow that wrote it reads it. */
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: createdAt(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [
    check('sso_states_purpose_check', oneOf(sql`${t.purpose}`, SSO_STATE_PURPOSES)),
    check('sso_states_payload_check', sql`jsonb_typeof(${t.payload}) = 'object'`),
    index('sso_states_expires_idx').on(t.expiresAt),
  ],
);

/**
 * The identity provider's own, stable id for a person (OIDC `sub`, SAML NameID) → the Stagedoor user
 * it signed in. A username can be renamed or reused at the IdP; the subject cannot, so a returning
 * subject finds its user even after a rename, and a new subject is never handed someone else's account.
 */
export const ssoIdentities = pgTable(
  'sso_identities',
  {
    authServerId: uuid('auth_server_id')
      .notNull()
      .references(() => authServers.id, { onDelete: 'cascade' }),
    subject: text('subject').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    lastSeenAt: ts('last_seen_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: 'sso_identities_pkey', columns: [t.authServerId, t.subject] }),
    // One subject per user and server: a second subject may not quietly share an account.
    uniqueIndex('sso_identities_server_user_key').on(t.authServerId, t.userId),
    check('sso_identities_subject_check', sql`length(${t.subject}) between 1 and 1024`),
    index('sso_identities_user_idx').on(t.userId),
  ],
);
