import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditService } from '../domain/audit/audit.service.ts';
import { CsrfError, ForbiddenError, UnauthenticatedError } from '../domain/errors.ts';
import type { AuthService } from '../domain/identity/auth.service.ts';
import { roleHas } from '../domain/identity/permissions.ts';
import type { Role } from '@stagedoor/contract';
import { safeEqual } from '../domain/identity/tokens.ts';
import { actorOf } from './request-context.ts';

export const SESSION_COOKIE = 'stagedoor_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Authentication and authorisation for every route, before the body is even read: a bearer API
 * token or the session cookie; CSRF token on cookie-authenticated changes; the route's access rule.
 */
export function registerAuthHook(app: FastifyInstance, deps: { auth: AuthService; audit: AuditService }): void {
  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (request) => {
    // API routes without an access rule get the strictest one; the static web app is public.
    const access = request.routeOptions.config?.access ?? (request.routeOptions.url?.startsWith('/api/') ? 'users:write' : 'public');
    if (request.is404 || access === 'public') {
      // Public routes still learn who is calling when they can (e.g. logout), but never require it.
      if (access === 'public') request.auth = await authenticate(request, deps.auth).catch(() => null);
      return;
    }
    request.auth = await authenticate(request, deps.auth);
    if (!request.auth) throw new UnauthenticatedError();
    if (request.auth.session && !SAFE_METHODS.has(request.method)) {
      const sent = request.headers['x-csrf-token'];
      if (typeof sent !== 'string' || !safeEqual(sent, request.auth.session.csrfToken)) throw new CsrfError();
    }
    if (request.routeOptions.config?.sessionOnly && !request.auth.session) {
      await deps.audit.record(actorOf(request), { action: 'authz.denied', outcome: 'denied', targetType: 'route', targetId: `${request.method} ${request.routeOptions.url}`, reason: 'API token on a session-only route' });
      throw new ForbiddenError('an API token cannot do this (create API tokens, change MFA): sign in with your password instead');
    }
    if (access !== 'user' && !roleHas(request.auth.user.role as Role, access)) {
      await deps.audit.record(actorOf(request), {
        action: 'authz.denied',
        outcome: 'denied',
        targetType: 'route',
        targetId: `${request.method} ${request.routeOptions.url}`,
        reason: `role ${request.auth.user.role} lacks ${access}`,
      });
      throw new ForbiddenError(`your role (${request.auth.user.role}) may not do this: it needs ${access}`);
    }
  });
}

async function authenticate(request: FastifyRequest, auth: AuthService) {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new UnauthenticatedError('the Authorization header must be "Bearer <API token>"');
    const found = await auth.authenticateToken(match[1]!);
    if (!found) throw new UnauthenticatedError('the API token is unknown, revoked or expired');
    return found;
  }
  const cookie = request.cookies?.[SESSION_COOKIE];
  return cookie ? auth.authenticateSession(cookie) : null;
}
