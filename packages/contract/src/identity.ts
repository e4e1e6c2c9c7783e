import { z } from 'zod';
import { Page, Timestamp, Uuid } from './common.ts';
import { ROLES } from './roles.ts';

export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/** Usernames: what directories allow, minus what breaks filters and file names. */
export const Username = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9._@-]+$/, 'may contain letters, digits and . _ @ - only');
export const Password = z.string().min(8, 'must be at least 8 characters').max(1024);

export const LoginRequest = z.strictObject({
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(1024),
});

export const User = z.object({
  id: Uuid,
  username: z.string(),
  displayName: z.string().nullable(),
  email: z.string().nullable(),
  role: Role,
  disabled: z.boolean(),
  authServerId: Uuid.nullable(),
  groups: z.array(z.object({ id: Uuid, name: z.string() })),
  lastLoginAt: Timestamp.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type User = z.infer<typeof User>;

export const LoginResponse = z.object({
  user: User,
  csrfToken: z.string().describe('send as X-CSRF-Token on every cookie-authenticated change'),
  expiresAt: Timestamp,
});

export const Me = z.object({
  user: User,
  csrfToken: z.string().nullable().describe('null when authenticated by bearer token'),
  authenticatedBy: z.enum(['session', 'token']),
  session: z.object({ id: Uuid, expiresAt: Timestamp, idleExpiresAt: Timestamp }).nullable(),
  permissions: z.array(z.string()).optional().describe('what this user\'s role may do (e.g. pools:write); the web console shows only these controls'),
});

export const CreateUser = z.strictObject({
  username: Username,
  password: Password.optional().describe('omit for users whose password lives in a directory'),
  displayName: z.string().max(256).optional(),
  email: z.email().max(320).optional(),
  role: Role.default('user'),
  disabled: z.boolean().default(false),
  groupIds: z.array(Uuid).max(1000).default([]),
});
export const UpdateUser = z.strictObject({
  displayName: z.string().max(256).nullable().optional(),
  email: z.email().max(320).nullable().optional(),
  role: Role.optional(),
  disabled: z.boolean().optional(),
  groupIds: z.array(Uuid).max(1000).optional(),
});
export const SetPassword = z.strictObject({ password: Password });
export const ListUsersQuery = Page.extend({
  q: z.string().max(256).optional().describe('substring of the username, display name or email'),
  role: Role.optional(),
  groupId: Uuid.optional().describe('only members of this group (the group page lists its members with it)'),
});

export const Group = z.object({
  id: Uuid,
  name: z.string(),
  description: z.string().nullable(),
  source: z.string(),
  memberCount: z.number().int(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export const GroupName = z.string().min(1).max(256).regex(/^[^\n\r\t]+$/, 'must be one line');
export const CreateGroup = z.strictObject({
  name: GroupName,
  description: z.string().max(2000).optional(),
  memberIds: z.array(Uuid).max(10000).default([]),
});
export const UpdateGroup = z.strictObject({
  name: GroupName.optional(),
  description: z.string().max(2000).nullable().optional(),
});
export const GroupMemberParams = z.strictObject({ id: Uuid, userId: Uuid });

export const ApiToken = z.object({
  id: Uuid,
  name: z.string(),
  prefix: z.string(),
  createdAt: Timestamp,
  lastUsedAt: Timestamp.nullable(),
  expiresAt: Timestamp.describe('when it stops working: its own expiry, or its creation plus the broker\'s maximum token lifetime if that is sooner'),
});
export const CreateApiToken = z.strictObject({
  name: z.string().min(1).max(200),
  expiresInDays: z.number().int().min(1).max(3650).optional().describe('default STAGEDOOR_API_TOKEN_DEFAULT_DAYS (90); at most STAGEDOOR_API_TOKEN_MAX_DAYS (365)'),
});
/** An admin acting on one of a user's API tokens. */
export const UserTokenParams = z.strictObject({ id: Uuid, tokenId: Uuid });
export const LoggedOutEverywhere = z.object({ sessionsEnded: z.number().int(), apiTokensRevoked: z.number().int() });
export const CreatedApiToken = ApiToken.extend({
  token: z.string().describe('shown once; send as Authorization: Bearer <token>'),
});

/** The first answer of a login that needs a second factor: no session yet, only a short-lived login token. */
export const MfaFactor = z.enum(['totp', 'totp-enroll', 'radius']);
export const TotpEnrollment = z.object({
  secret: z.string().describe('base32, for typing into an authenticator app by hand'),
  otpauthUri: z.string().describe('otpauth://totp/… for authenticator apps'),
  qrCode: z.string().describe('the otpauth URI as a QR code, a data:image/png;base64 URL'),
});
export const MfaRequired = z.object({
  mfaRequired: z.object({
    factor: MfaFactor.describe('totp: a code from the authenticator app or a recovery code; totp-enroll: scan the QR code, then send its first code; radius: answer the prompt'),
    prompt: z.string().optional().describe('what to ask the user, e.g. the RADIUS server Reply-Message'),
    loginToken: z.string().describe('send with the code to POST /api/v1/auth/login/mfa'),
    expiresAt: Timestamp,
    enrollment: TotpEnrollment.optional(),
  }),
});
export const LoginAnswer = z.union([LoginResponse, MfaRequired]);
export const MfaLoginRequest = z.strictObject({
  loginToken: z.string().min(1).max(200),
  code: z.string().min(1).max(256),
});
export const MfaLoginAnswer = z.union([
  LoginResponse.extend({ recoveryCodes: z.array(z.string()).optional().describe('shown once, after enrolling during sign-in') }),
  MfaRequired,
]);

export const MfaStatus = z.object({
  totp: z.object({ enrolled: z.boolean(), confirmedAt: Timestamp.nullable(), recoveryCodesLeft: z.number().int() }),
});
export const TotpCode = z.strictObject({ code: z.string().min(1).max(64).describe('a current code, or a recovery code') });
export const RecoveryCodes = z.object({ recoveryCodes: z.array(z.string()).describe('each works once; shown only now') });

export const LoginThrottle = z.object({
  scope: z.enum(['account', 'address']),
  key: z.string().describe('the login name (account) or client address'),
  failureCount: z.number().int(),
  windowStartedAt: Timestamp,
  lastFailureAt: Timestamp.nullable(),
  lockedUntil: Timestamp.nullable(),
});
export const UnlockThrottle = z.strictObject({ scope: z.enum(['account', 'address']), key: z.string().min(1).max(256) });
export const Unlocked = z.object({ cleared: z.number().int().describe('throttle entries removed') });
