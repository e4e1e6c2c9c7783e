import { sql } from 'drizzle-orm';
import {
  boolean,
  check,
  index,
  inet,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  unique,
  uniqueIndex,
  uuid,
  type AnyPgColumn,
} from 'drizzle-orm/pg-core';
import { createdAt, id, oneOf, ts, updatedAt } from './columns.ts';
import type { LdapSettings, RadiusSettings, SamlSettings } from '@stagedoor/contract';
import { groups, users } from './identity.ts';

/** Text + check rather than a pg enum: widening a check constraint is a one-line migration. */
export const AUTH_SERVER_KINDS = ['local', 'ldap', 'radius', 'totp', 'oidc', 'saml'] as const;
/** Sign-in at an identity provider that redirects back (no password ever reaches Stagedoor). */
export const SSO_KINDS = ['oidc', 'saml'] as const;
export type AuthServerKind = (typeof AUTH_SERVER_KINDS)[number];

/** `primary` checks passwords, in `position` order; `second-factor` is only ever reached through `mfa_server_id`. */
export const AUTH_SERVER_PURPOSES = ['primary', 'second-factor'] as const;

export const THROTTLE_SCOPES = ['account', 'address'] as const;
/** `totp-enroll`: MFA is required but the user has no confirmed TOTP yet, so the second step enrolls. */
export const MFA_FACTORS = ['totp', 'totp-enroll', 'radius'] as const;

/**
 * Non-secret settings per kind, as the API contract defines and validates them (defaults applied).
 * Secrets never go here: they live in `secret_ciphertext`.
 */
export type LdapConfig = LdapSettings;
export type RadiusConfig = RadiusSettings;
export type TotpConfig = { issuer: string };
export type SamlConfig = SamlSettings;
export type AuthServerConfig = LdapConfig | RadiusConfig | TotpConfig | SamlConfig | Record<string, never>;

export const authServers = pgTable(
  'auth_servers',
  {
    id: id(),
    name: text('name').notNull(),
    kind: text('kind').notNull(),
    purpose: text('purpose').notNull().default('primary'),
    /**
     * Lookup order for primary servers. Unique, so the order is never ambiguous; to reorder in one
     * transaction, first move the affected rows out of the way (e.g. negate them), then write the new values.
     */
    position: integer('position').notNull(),
    enabled: boolean('enabled').notNull().default(true),
    config: jsonb('config').$type<AuthServerConfig>().notNull().default({}),
    /**
     * AES-256-GCM envelope (key from STAGEDOOR_SECRET_KEY) of this server's secrets as JSON: the LDAP
     * bind password, the RADIUS shared secret. Opaque to SQL; never returned by the API or logged.
     */
    secretCiphertext: text('secret_ciphertext'),
    /**
     * The second factor users of this server must pass (a `radius` or `totp` server). Restrict: deleting
     * the MFA server must not silently turn MFA off for everyone who logs in here.
     */
    mfaServerId: uuid('mfa_server_id').references((): AnyPgColumn => authServers.id, { onDelete: 'restrict' }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('auth_servers_name_lower_key').on(sql`lower(${t.name})`),
    // One built-in local password store and one built-in TOTP: users have one password hash and one enrolment.
    uniqueIndex('auth_servers_builtin_kind_key').on(t.kind).where(sql`${t.kind} in ('local', 'totp')`),
    unique('auth_servers_position_key').on(t.position),
    check('auth_servers_name_check', sql`length(${t.name}) between 1 and 128`),
    check('auth_servers_kind_check', oneOf(sql`${t.kind}`, AUTH_SERVER_KINDS)),
    check('auth_servers_purpose_check', oneOf(sql`${t.purpose}`, AUTH_SERVER_PURPOSES)),
    // local, ldap and the SSO kinds sign people in; totp is only a second factor; radius may be either.
    check(
      'auth_servers_kind_purpose_check',
      sql`(${t.kind} in ('local', 'ldap', 'oidc', 'saml') and ${t.purpose} = 'primary')
        or (${t.kind} = 'totp' and ${t.purpose} = 'second-factor')
        or ${t.kind} = 'radius'`,
    ),
    check('auth_servers_mfa_self_check', sql`${t.mfaServerId} is null or ${t.mfaServerId} <> ${t.id}`),
    check('auth_servers_config_check', sql`jsonb_typeof(${t.config}) = 'object'`),
    index('auth_servers_mfa_server_idx').on(t.mfaServerId),
  ],
);

/**
 * Directory group → Stagedoor group, applied at each login. A table rather than config jsonb so that
 * deleting a Stagedoor group removes its mappings instead of leaving a dangling name.
 */
export const authServerGroupMappings = pgTable(
  'auth_server_group_mappings',
  {
    authServerId: uuid('auth_server_id')
      .notNull()
      .references(() => authServers.id, { onDelete: 'cascade' }),
    /** The directory's name for the group: a DN, stored lower-cased because LDAP compares DNs case-insensitively. */
    externalGroup: text('external_group').notNull(),
    groupId: uuid('group_id')
      .notNull()
      .references(() => groups.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ name: 'auth_server_group_mappings_pkey', columns: [t.authServerId, t.externalGroup, t.groupId] }),
    check('auth_server_group_mappings_external_lower_check', sql`${t.externalGroup} = lower(${t.externalGroup})`),
    index('auth_server_group_mappings_group_idx').on(t.groupId),
  ],
);

/**
 * Groups whose members must pass a second factor whatever server checked their password (the other
 * trigger besides `auth_servers.mfa_server_id`). Lives here because `groups` is owned by identity.ts.
 */
export const groupMfaRequirements = pgTable('group_mfa_requirements', {
  groupId: uuid('group_id')
    .primaryKey()
    .references(() => groups.id, { onDelete: 'cascade' }),
  /** Restrict, as for auth_servers.mfa_server_id: removing the factor must not quietly remove the requirement. */
  mfaServerId: uuid('mfa_server_id')
    .notNull()
    .references(() => authServers.id, { onDelete: 'restrict' }),
  createdAt: createdAt(),
});

/** One TOTP enrolment per user; re-enrolling replaces the row (and, by cascade, the recovery codes). */
export const userTotp = pgTable(
  'user_totp',
  {
    userId: uuid('user_id')
      .primaryKey()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** AES-256-GCM envelope of the base32 secret; the server must read it back, so it cannot be hashed. */
    secretCiphertext: text('secret_ciphertext').notNull(),
    /** Fixed at enrolment: the authenticator app was given these in the otpauth:// URI. */
    algorithm: text('algorithm').notNull().default('SHA1'),
    digits: integer('digits').notNull().default(6),
    periodSeconds: integer('period_seconds').notNull().default(30),
    /** Null until the user proves the app works with a first code; an unconfirmed secret does not count as MFA. */
    confirmedAt: ts('confirmed_at'),
    /**
     * Highest time step (unix time / period) accepted so far. A code is accepted only for a step above it,
     * updated with `where last_used_step < $step`, so a replay is refused even across broker nodes.
     */
    lastUsedStep: integer('last_used_step'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('user_totp_algorithm_check', oneOf(sql`${t.algorithm}`, ['SHA1', 'SHA256', 'SHA512'])),
    check('user_totp_digits_check', sql`${t.digits} between 6 and 8`),
    check('user_totp_period_check', sql`${t.periodSeconds} between 15 and 120`),
    check('user_totp_step_check', sql`${t.lastUsedStep} is null or ${t.lastUsedStep} >= 0`),
  ],
);

/** One-time recovery codes, stored hashed like session tokens; a used code keeps its row with `used_at`. */
export const totpRecoveryCodes = pgTable(
  'totp_recovery_codes',
  {
    id: id(),
    /** References the enrolment, not the user: resetting TOTP must void the old codes. */
    userId: uuid('user_id')
      .notNull()
      .references(() => userTotp.userId, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: ts('used_at'),
    createdAt: createdAt(),
  },
  (t) => [unique('totp_recovery_codes_user_hash_key').on(t.userId, t.codeHash)],
);

/**
 * Failed-login counters, shared by every broker node (DESIGN: no in-memory state a second node would
 * miss). Upserted with `on conflict (scope, key)`; an admin unlock deletes the row.
 */
export const loginThrottles = pgTable(
  'login_throttles',
  {
    scope: text('scope').notNull(),
    /**
     * `account`: the lower-cased login name as typed, not a user id, so unknown names are throttled too
     * and the answer does not reveal which accounts exist. `address`: the IP (an IPv6 /64 as its prefix).
     */
    key: text('key').notNull(),
    failureCount: integer('failure_count').notNull().default(0),
    windowStartedAt: ts('window_started_at').notNull().defaultNow(),
    lastFailureAt: ts('last_failure_at'),
    lockedUntil: ts('locked_until'),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ name: 'login_throttles_pkey', columns: [t.scope, t.key] }),
    check('login_throttles_scope_check', oneOf(sql`${t.scope}`, THROTTLE_SCOPES)),
    check('login_throttles_failure_count_check', sql`${t.failureCount} >= 0`),
    index('login_throttles_locked_idx').on(t.lockedUntil).where(sql`${t.lockedUntil} is not null`),
    // Lets a sweeper drop stale rows.
    index('login_throttles_updated_idx').on(t.updatedAt),
  ],
);

/**
 * A login that passed its first factor and waits for the second. The client holds a random token;
 * the row keeps its SHA-256. Deleted when the login completes or fails for good.
 */
export const pendingLogins = pgTable(
  'pending_logins',
  {
    id: id(),
    tokenHash: text('token_hash').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    factor: text('factor').notNull(),
    /** The server that verifies the second factor; deleting it voids half-finished logins. */
    mfaServerId: uuid('mfa_server_id').references(() => authServers.id, { onDelete: 'cascade' }),
    /** The server that checked the password, for the audit line written when the login completes. */
    passwordServerId: uuid('password_server_id').references(() => authServers.id, { onDelete: 'set null' }),
    /** RADIUS `State` from an Access-Challenge (base64), echoed in the answer. */
    radiusState: text('radius_state'),
    /** The RADIUS server (host:port) that sent the challenge: the answer must go back to it, not a failover. */
    radiusServer: text('radius_server'),
    /** Wrong codes on this pending login; the service abandons it past a limit. */
    attempts: integer('attempts').notNull().default(0),
    sourceAddress: inet('source_address'),
    createdAt: createdAt(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [
    unique('pending_logins_token_hash_key').on(t.tokenHash),
    check('pending_logins_factor_check', oneOf(sql`${t.factor}`, MFA_FACTORS)),
    check('pending_logins_attempts_check', sql`${t.attempts} >= 0`),
    check('pending_logins_radius_check', sql`${t.radiusState} is null or ${t.factor} = 'radius'`),
    index('pending_logins_user_idx').on(t.userId),
    index('pending_logins_expires_idx').on(t.expiresAt),
  ],
);
