import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiToken, CreateApiToken, CreatedApiToken, ErrorBody, IdParams, LoggedOutEverywhere, LoginAnswer, LoginRequest, Me, MfaLoginAnswer, MfaLoginRequest, type Role } from '@stagedoor/contract';
import type { SignInResult } from '../../domain/identity/sign-in.service.ts';
import { PERMISSIONS, roleHas } from '../../domain/identity/permissions.ts';
import type { Services } from '../../services.ts';
import { SESSION_COOKIE } from '../auth-hook.ts';
import { apiTokenDto, iso, userDto } from '../dto.ts';
import { actorOf, signedInActor } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody, 503: ErrorBody };

export function authRoutes(app: FastifyInstance, deps: { services: Services; loginRatePerMinute: number; secureCookie: 'always' | 'when-https' }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { auth, signIn } = deps.services;

  const answer = (request: FastifyRequest, reply: FastifyReply, result: SignInResult) => signInAnswer(request, reply, result, deps.secureCookie);

  r.post(
    '/api/v1/auth/login',
    {
      config: { access: 'public', rateLimit: { max: deps.loginRatePerMinute, timeWindow: 60_000 } },
      schema: {
        tags: ['auth'],
        summary: 'Sign in with a username and password; sets the session cookie, or answers which second factor is needed',
        body: LoginRequest,
        response: { 200: LoginAnswer, ...errors },
      },
    },
    async (request, reply) => answer(request, reply, await signIn.login(request.body.username, request.body.password, ctx(request))),
  );

  r.post(
    '/api/v1/auth/login/mfa',
    {
      config: { access: 'public', rateLimit: { max: deps.loginRatePerMinute, timeWindow: 60_000 } },
      schema: {
        tags: ['auth'],
        summary: 'Second sign-in step: the code (TOTP, recovery code, or the answer to a RADIUS prompt) for a login token',
        body: MfaLoginRequest,
        response: { 200: MfaLoginAnswer, ...errors },
      },
    },
    async (request, reply) => answer(request, reply, await signIn.completeMfa(request.body.loginToken, request.body.code, ctx(request))),
  );

  r.post(
    '/api/v1/auth/logout',
    { config: { access: 'public' }, schema: { tags: ['auth'], summary: 'End this session (no-op without one)', response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      const session = request.auth?.session;
      if (session) await auth.logout(actorOf(request), session.id);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  );

  r.post(
    '/api/v1/auth/logout-all',
    { config: { access: 'user' }, schema: { tags: ['auth'], summary: 'End every session and revoke every API token of the signed-in user', response: { 200: LoggedOutEverywhere, ...errors } } },
    async (request, reply) => {
      const actor = signedInActor(request);
      const ended = await auth.logoutEverywhere(actor, actor.userId);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return { sessionsEnded: ended.sessions, apiTokensRevoked: ended.apiTokens };
    },
  );

  r.get('/api/v1/me', { config: { access: 'user' }, schema: { tags: ['auth'], summary: 'Who am I', response: { 200: Me, ...errors } } }, async (request) => {
    const a = request.auth!;
    return {
      user: userDto(a.user),
      csrfToken: a.session?.csrfToken ?? null,
      authenticatedBy: a.session ? ('session' as const) : ('token' as const),
      session: a.session ? { id: a.session.id, expiresAt: iso(a.session.expiresAt), idleExpiresAt: iso(a.session.idleExpiresAt) } : null,
      permissions: PERMISSIONS.filter((p) => roleHas(a.user.role as Role, p)),
    };
  });

  r.get(
    '/api/v1/me/tokens',
    { config: { access: 'user' }, schema: { tags: ['auth'], summary: 'My API tokens (never their secrets)', response: { 200: z.object({ items: z.array(ApiToken) }), ...errors } } },
    async (request) => ({ items: (await auth.listApiTokens(signedInActor(request).userId)).map(apiTokenDto) }),
  );

  r.post(
    '/api/v1/me/tokens',
    {
      config: { access: 'user', sessionOnly: true },
      schema: { tags: ['auth'], summary: 'Create an API token for automation (signed-in session only); its secret is shown once', body: CreateApiToken, response: { 201: CreatedApiToken, ...errors } },
    },
    async (request, reply) => {
      const { row, token } = await auth.createApiToken(signedInActor(request), request.body.name, request.body.expiresInDays);
      return reply.code(201).send({ ...apiTokenDto(row), token });
    },
  );

  r.delete(
    '/api/v1/me/tokens/:id',
    { config: { access: 'user' }, schema: { tags: ['auth'], summary: 'Revoke one of my API tokens', params: IdParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await auth.revokeApiToken(signedInActor(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
}

export const loginContext = (request: FastifyRequest) => ({ sourceAddress: request.ip, userAgent: request.headers['user-agent'] ?? null, requestId: String(request.id) });
const ctx = loginContext;

/** The answer to a finished sign-in step (password, second factor, SSO hand-off): the session cookie, or which factor is due. */
export function signInAnswer(request: FastifyRequest, reply: FastifyReply, result: SignInResult, secureCookie: 'always' | 'when-https') {
  if (result.kind === 'mfa') {
    // No session cookie until the second factor is done.
    const { factor, prompt, loginToken, expiresAt, enrollment } = result;
    return { mfaRequired: { factor, loginToken, expiresAt: iso(expiresAt), ...(prompt ? { prompt } : {}), ...(enrollment ? { enrollment } : {}) } };
  }
  setSessionCookie(reply, result.token, result.session.expiresAt, secureCookie === 'always' || request.protocol === 'https');
  return { user: userDto(result.user), csrfToken: result.session.csrfToken, expiresAt: iso(result.session.expiresAt), ...(result.recoveryCodes ? { recoveryCodes: result.recoveryCodes } : {}) };
}

/**
 * `secure`: always in the production role, whatever the request looked like (a proxy whose
 * X-Forwarded-Proto is not trusted must not downgrade the cookie); otherwise when the user reached us
 * over HTTPS (directly, or via a trusted proxy's X-Forwarded-Proto), so `stagedoor dev` works on http.
 */
export function setSessionCookie(reply: FastifyReply, token: string, expiresAt: Date, secure: boolean): void {
  reply.setCookie(SESSION_COOKIE, token, { path: '/', httpOnly: true, sameSite: 'lax', secure, expires: expiresAt });
}
