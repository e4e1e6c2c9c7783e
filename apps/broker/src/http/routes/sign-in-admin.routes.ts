import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiToken, ErrorBody, IdParams, LoggedOutEverywhere, LoginThrottle, Page, UnlockThrottle, Unlocked, UserTokenParams } from '@stagedoor/contract';
import type { Services } from '../../services.ts';
import { apiTokenDto, iso, isoOrNull } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/** What admins do about other people's sign-in: lockouts, sessions, a lost authenticator. */
export function signInAdminRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { loginThrottle, users, auth, totp } = deps.services;
  const tags = ['users'];

  r.get(
    '/api/v1/login-throttles',
    { config: { access: 'users:read' }, schema: { tags, summary: 'Accounts and addresses with recent failed sign-ins or a running lock', querystring: Page, response: { 200: z.object({ items: z.array(LoginThrottle) }), ...errors } } },
    async (request) => ({
      items: (await loginThrottle.list(request.query.limit, request.query.offset)).map((t) => ({
        scope: t.scope as 'account' | 'address',
        key: t.key,
        failureCount: t.failureCount,
        windowStartedAt: iso(t.windowStartedAt),
        lastFailureAt: isoOrNull(t.lastFailureAt),
        lockedUntil: isoOrNull(t.lockedUntil),
      })),
    }),
  );

  r.post(
    '/api/v1/login-throttles/unlock',
    { config: { access: 'users:write' }, schema: { tags, summary: 'Clear the failures and lock of one login name or client address', body: UnlockThrottle, response: { 200: Unlocked, ...errors } } },
    async (request) => ({ cleared: await loginThrottle.unlock(actorOf(request), request.body.scope, request.body.key) }),
  );

  r.post(
    '/api/v1/users/:id/unlock',
    { config: { access: 'users:write' }, schema: { tags, summary: "End a user's sign-in lockout (their username and e-mail address)", params: IdParams, response: { 200: Unlocked, ...errors } } },
    async (request) => ({ cleared: await loginThrottle.unlockUser(actorOf(request), await users.get(request.params.id)) }),
  );

  r.post(
    '/api/v1/users/:id/logout-all',
    { config: { access: 'users:write' }, schema: { tags, summary: 'End every session and revoke every API token of a user (log them out everywhere)', params: IdParams, response: { 200: LoggedOutEverywhere, ...errors } } },
    async (request) => {
      const user = await users.get(request.params.id);
      const ended = await auth.logoutEverywhere(actorOf(request), user.id);
      return { sessionsEnded: ended.sessions, apiTokensRevoked: ended.apiTokens };
    },
  );

  r.get(
    '/api/v1/users/:id/tokens',
    { config: { access: 'users:read' }, schema: { tags, summary: "A user's API tokens that are not revoked (never their secrets)", params: IdParams, response: { 200: z.object({ items: z.array(ApiToken) }), ...errors } } },
    async (request) => ({ items: (await auth.listApiTokens((await users.get(request.params.id)).id)).map(apiTokenDto) }),
  );

  r.delete(
    '/api/v1/users/:id/tokens/:tokenId',
    { config: { access: 'users:write' }, schema: { tags, summary: "Revoke one of a user's API tokens", params: UserTokenParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await auth.revokeUserApiToken(actorOf(request), (await users.get(request.params.id)).id, request.params.tokenId);
      return reply.code(204).send(null);
    },
  );

  r.delete(
    '/api/v1/users/:id/mfa/totp',
    { config: { access: 'users:write' }, schema: { tags, summary: "Reset a user's TOTP (a lost phone); they enrol again at their next sign-in if it is required", params: IdParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await totp.remove(actorOf(request), (await users.get(request.params.id)).id);
      return reply.code(204).send(null);
    },
  );
}
