import type { FastifyRequest } from 'fastify';
import type { Actor } from '../domain/identity/actor.ts';
import type { Authenticated } from '../domain/identity/auth.service.ts';
import type { Permission } from '../domain/identity/permissions.ts';
import type { Role } from '@stagedoor/contract';

/**
 * Who may call a route. Every route states it in `config.access`: `public`, `user` (any signed-in
 * user), or the permission it needs. Routes that forget fall back to `admin-only`.
 */
export type Access = 'public' | 'user' | Permission;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /** The answer stays open (server-sent events, a WebSocket): tests that call every route skip it. */
    stream?: true;
    /**
     * Only a signed-in session (password and second factor) may call it, never an API token: minting
     * tokens and changing MFA must not be what a leaked token can do to make itself permanent.
     */
    sessionOnly?: true;
    /** A browser lands here by navigation (an SSO callback): errors are a small HTML page for people who asked for HTML. */
    htmlErrors?: true;
  }
  interface FastifyRequest {
    auth: Authenticated | null;
  }
}

export function actorOf(request: FastifyRequest): Actor {
  const auth = request.auth;
  return {
    userId: auth?.user.id ?? null,
    username: auth?.user.username ?? 'anonymous',
    role: (auth?.user.role ?? 'user') as Role,
    sourceAddress: request.ip ?? null,
    requestId: String(request.id),
    via: auth ? (auth.session ? 'session' : 'token') : 'anonymous',
  };
}

/** The actor of a route that requires sign-in; the auth hook has already refused anonymous calls. */
export function signedInActor(request: FastifyRequest): Actor & { userId: string } {
  const actor = actorOf(request);
  if (!actor.userId) throw new Error('signedInActor on an anonymous request: the route lacks access config');
  return actor as Actor & { userId: string };
}
