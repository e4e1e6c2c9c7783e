import { sql } from 'drizzle-orm';
import { boolean, check, index, inet, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { ROLES } from '@stagedoor/contract';
import { createdAt, id, oneOf, ts, updatedAt } from './columns.ts';
import { authServers } from './auth-servers.ts';

export const users = pgTable(
  'users',
  {
    id: id(),
    username: text('username').notNull(),
    displayName: text('display_name'),
    email: text('email'),
    role: text('role').notNull().default('user'),
    /** argon2id PHC string; null for users whose password lives in a directory. */
    passwordHash: text('password_hash'),
    authServerId: uuid('auth_server_id').references(() => authServers.id, { onDelete: 'set null' }),
    disabled: boolean('disabled').notNull().default(false),
    lastLoginAt: ts('last_login_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    // Usernames are case-insensitive, as in every directory a studio runs.
    uniqueIndex('users_username_lower_key').on(sql`lower(${t.username})`),
    check('users_role_check', oneOf(sql`${t.role}`, ROLES)),
    check('users_username_check', sql`length(${t.username}) between 1 and 256`),
  ],
);

export const groups = pgTable(
  'groups',
  {
    id: id(),
    name: text('name').notNull(),
    description: text('description'),
    /** Where the group comes from: `local`, or the id of the directory that maps into it. */
    source: text('source').notNull().default('local'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('groups_name_lower_key').on(sql`lower(${t.name})`)],
);

export const groupMembers = pgTable(
  'group_members',
  {
    groupId: uuid('group_id')
      .notNull()
      .references(() => groups.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.userId] }), index('group_members_user_idx').on(t.userId)],
);

/** Server-side sessions: the cookie carries a random token, the row keeps only its SHA-256. */
export const sessions = pgTable(
  'sessions',
  {
    id: id(),
    tokenHash: text('token_hash').notNull().unique(),
    csrfToken: text('csrf_token').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    sourceAddress: inet('source_address'),
    userAgent: text('user_agent'),
    createdAt: createdAt(),
    lastSeenAt: ts('last_seen_at').notNull().defaultNow(),
    idleExpiresAt: ts('idle_expires_at').notNull(),
    expiresAt: ts('expires_at').notNull(),
    revokedAt: ts('revoked_at'),
  },
  (t) => [index('sessions_user_idx').on(t.userId), index('sessions_expires_idx').on(t.expiresAt)],
);

/** Bearer tokens for automation; stored hashed, shown once at creation. */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    tokenHash: text('token_hash').notNull().unique(),
    /** First characters of the token, so an admin can tell tokens apart without the secret. */
    prefix: text('prefix').notNull(),
    createdAt: createdAt(),
    lastUsedAt: ts('last_used_at'),
    expiresAt: ts('expires_at'),
    revokedAt: ts('revoked_at'),
  },
  (t) => [uniqueIndex('api_tokens_user_name_key').on(t.userId, t.name), index('api_tokens_user_idx').on(t.userId)],
);
