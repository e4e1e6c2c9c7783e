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
  expiresAt: Timestamp.nullable(),
});
export const CreateApiToken = z.strictObject({
  name: z.string().min(1).max(200),
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});
export const CreatedApiToken = ApiToken.extend({
  token: z.string().describe('shown once; send as Authorization: Bearer <token>'),
});
