import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { Db } from '../../db/database.ts';
import { ConflictError, InvalidInputError, NotFoundError, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from './actor.ts';
import type { ApiTokenRow, SessionRow, SessionsRepository } from './sessions.repository.ts';
import { hashToken, newToken } from './tokens.ts';
import type { UserRow, UsersRepository, UserWithGroups } from './users.repository.ts';

export interface SessionPolicy {
  idleMinutes: number;
  maxHours: number;
}

export interface ApiTokenPolicy {
  /** Lifetime of a token created without `expiresInDays`. */
  defaultDays: number;
  /** No token lives longer, whatever it was created with. */
  maxDays: number;
}

export interface LoginContext {
  sourceAddress: string | null;
  userAgent: string | null;
  requestId: string | null;
}

export interface Authenticated {
  user: UserWithGroups;
  session: SessionRow | null;
  token: ApiTokenRow | null;
}

/** An API token as callers see it: with the expiry that applies to it now (never open-ended). */
export type ApiTokenView = ApiTokenRow & { expiresAt: Date };

/** Prefix that makes a leaked API token recognisable to secret scanners and to people. */
export const API_TOKEN_PREFIX = 'sdt_';
/** Only write `last_seen_at` when it is this stale, so reads do not each cost a write. */
const TOUCH_EVERY_MS = 60_000;
const DAY_MS = 86_400_000;

/** Server-side sessions and API tokens. Who may have a session is decided by `SignInService`. */
export class AuthService {
  constructor(
    private readonly deps: {
      db: Db;
      users: UsersRepository;
      sessions: SessionsRepository;
      audit: AuditService;
      clock: Clock;
      log: Logger;
      policy: SessionPolicy;
      tokenPolicy: ApiTokenPolicy;
    },
  ) {}

  /**
   * Start a session for a user who passed every sign-in check (`SignInService` decides that), and
   * audit the login with the server(s) that checked it.
   */
  async openSession(user: UserRow, ctx: LoginContext, details: Record<string, unknown>): Promise<{ token: string; session: SessionRow; user: UserWithGroups }> {
    const now = this.deps.clock.now();
    const token = newToken();
    const actor: Actor = { userId: user.id, username: user.username, role: user.role as Actor['role'], sourceAddress: ctx.sourceAddress, requestId: ctx.requestId, via: 'session' };
    const session = await this.deps.db.transaction(async (tx) => {
      const s = await this.deps.sessions.insert(
        {
          tokenHash: hashToken(token),
          csrfToken: newToken(),
          userId: user.id,
          sourceAddress: ctx.sourceAddress,
          userAgent: ctx.userAgent?.slice(0, 512) ?? null,
          createdAt: now,
          lastSeenAt: now,
          idleExpiresAt: this.#idleDeadline(now),
          expiresAt: new Date(now.getTime() + this.deps.policy.maxHours * 3_600_000),
        },
        tx,
      );
      await this.deps.users.update(user.id, { lastLoginAt: now }, tx);
      await this.deps.audit.record(actor, { action: 'auth.login', outcome: 'success', targetType: 'session', targetId: s.id, details }, tx);
      return s;
    });
    const [withGroups] = await this.deps.users.withGroups([{ ...user, lastLoginAt: now }]);
    return { token, session, user: withGroups! };
  }

  async authenticateSession(token: string): Promise<Authenticated | null> {
    const now = this.deps.clock.now();
    const found = await this.deps.sessions.findLiveWithUser(hashToken(token), now);
    if (!found || found.user.disabled) return null;
    const { session, user } = found;
    if (now.getTime() - session.lastSeenAt.getTime() > TOUCH_EVERY_MS) {
      await this.deps.sessions.touch(session.id, now, this.#idleDeadline(now));
    }
    return { user, session, token: null };
  }

  async authenticateToken(token: string): Promise<Authenticated | null> {
    if (!token.startsWith(API_TOKEN_PREFIX)) return null;
    const now = this.deps.clock.now();
    const found = await this.deps.sessions.findLiveTokenWithUser(hashToken(token), now, this.#oldestLiveTokenCreatedAt(now));
    if (!found || found.user.disabled) return null;
    const { token: row, user } = found;
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > TOUCH_EVERY_MS) await this.deps.sessions.touchToken(row.id, now);
    return { user, session: null, token: row };
  }

  /**
   * Who a session cookie or API token belongs to right now (role, groups), or null once it has ended or
   * the user is disabled. Touches nothing: an open event stream alone must not keep a session alive.
   */
  async currentUser(credential: { bearer: string } | { cookie: string }): Promise<UserWithGroups | null> {
    const now = this.deps.clock.now();
    const found =
      'bearer' in credential
        ? credential.bearer.startsWith(API_TOKEN_PREFIX)
          ? await this.deps.sessions.findLiveTokenWithUser(hashToken(credential.bearer), now, this.#oldestLiveTokenCreatedAt(now))
          : undefined
        : await this.deps.sessions.findLiveWithUser(hashToken(credential.cookie), now);
    return found && !found.user.disabled ? found.user : null;
  }

  async logout(actor: Actor, sessionId: string): Promise<void> {
    await this.deps.sessions.revoke(sessionId, this.deps.clock.now());
    await this.deps.audit.record(actor, { action: 'auth.logout', outcome: 'success', targetType: 'session', targetId: sessionId });
  }

  /**
   * "Log out everywhere": every session and every API token of the user ends now, in one transaction.
   * A token is a standing credential: if someone stole a session, they may have minted one.
   */
  async logoutEverywhere(actor: Actor, userId: string): Promise<{ sessions: number; apiTokens: number }> {
    const now = this.deps.clock.now();
    return this.deps.db.transaction(async (tx) => {
      const ended = { sessions: await this.deps.sessions.revokeAllOfUser(userId, now, tx), apiTokens: await this.deps.sessions.revokeAllTokensOfUser(userId, now, tx) };
      await this.deps.audit.record(actor, { action: 'auth.logout_all', outcome: 'success', targetType: 'user', targetId: userId, details: ended }, tx);
      return ended;
    });
  }

  /** A token for the caller: `expiresInDays` defaults to the policy's default and may not exceed its maximum. */
  async createApiToken(actor: Actor & { userId: string }, name: string, expiresInDays?: number): Promise<{ row: ApiTokenView; token: string }> {
    const { defaultDays, maxDays } = this.deps.tokenPolicy;
    const days = expiresInDays ?? defaultDays;
    if (days > maxDays) {
      throw new InvalidInputError(`an API token lives at most ${maxDays} days here (STAGEDOOR_API_TOKEN_MAX_DAYS)`, [{ path: 'body.expiresInDays', message: `must be at most ${maxDays}` }]);
    }
    const now = this.deps.clock.now();
    const token = newToken(API_TOKEN_PREFIX);
    try {
      const expiresAt = new Date(now.getTime() + days * DAY_MS);
      const row = await this.deps.db.transaction(async (tx) => {
        const created = await this.deps.sessions.insertToken({ userId: actor.userId, name, tokenHash: hashToken(token), prefix: token.slice(0, API_TOKEN_PREFIX.length + 6), createdAt: now, expiresAt }, tx);
        await this.deps.audit.record(actor, { action: 'api_token.create', outcome: 'success', targetType: 'api_token', targetId: created.id, details: { name, expiresAt: expiresAt.toISOString() } }, tx);
        return { ...created, expiresAt };
      });
      return { row, token };
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`you already have an API token named "${name}"`);
      throw err;
    }
  }

  /** A user's tokens that have not been revoked, each with the expiry that applies to it now. */
  async listApiTokens(userId: string): Promise<ApiTokenView[]> {
    return (await this.deps.sessions.listTokens(userId)).map((t) => ({ ...t, expiresAt: this.#effectiveExpiry(t) }));
  }

  async revokeApiToken(actor: Actor & { userId: string }, id: string): Promise<void> {
    await this.#revoke(actor, actor.userId, id);
  }

  /** An admin revokes someone's token (a leaked CI secret, someone who left). */
  async revokeUserApiToken(actor: Actor, userId: string, id: string): Promise<void> {
    await this.#revoke(actor, userId, id);
  }

  async #revoke(actor: Actor, userId: string, id: string): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      if (!(await this.deps.sessions.revokeToken(userId, id, this.deps.clock.now(), tx))) throw new NotFoundError('API token', id);
      await this.deps.audit.record(actor, { action: 'api_token.revoke', outcome: 'success', targetType: 'api_token', targetId: id, details: { userId } }, tx);
    });
  }

  /** The earlier of the token's own expiry and its creation plus the maximum lifetime. */
  #effectiveExpiry(t: ApiTokenRow): Date {
    const cap = t.createdAt.getTime() + this.deps.tokenPolicy.maxDays * DAY_MS;
    return new Date(Math.min(t.expiresAt?.getTime() ?? cap, cap));
  }

  #oldestLiveTokenCreatedAt(now: Date): Date {
    return new Date(now.getTime() - this.deps.tokenPolicy.maxDays * DAY_MS);
  }

  #idleDeadline(now: Date): Date {
    return new Date(now.getTime() + this.deps.policy.idleMinutes * 60_000);
  }
}
