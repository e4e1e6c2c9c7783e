import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { AuthServerRow } from '../auth-servers/auth-servers.repository.ts';
import type { AuthServersService } from '../auth-servers/auth-servers.service.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { InvalidCredentialsError, UnavailableError } from '../errors.ts';
import type { Actor } from './actor.ts';
import type { AuthService, LoginContext } from './auth.service.ts';
import type { LoginThrottleService } from './login-throttle.service.ts';
import type { MfaRepository, PendingLoginRow } from './mfa.repository.ts';
import type { PasswordCheck } from './password-check.ts';
import type { SessionRow } from './sessions.repository.ts';
import { MfaFailedError, SignInUnavailableError } from './sign-in-errors.ts';
import { hashToken, newToken } from './tokens.ts';
import type { TotpEnrollment, TotpService } from './totp.service.ts';
import type { UserRow, UsersRepository, UserWithGroups } from './users.repository.ts';

export type MfaFactor = 'totp' | 'totp-enroll' | 'radius';

export type SignInResult =
  | { kind: 'session'; token: string; session: SessionRow; user: UserWithGroups; recoveryCodes?: string[] }
  | { kind: 'mfa'; factor: MfaFactor; prompt?: string; loginToken: string; expiresAt: Date; enrollment?: TotpEnrollment };

export interface MfaPolicy {
  pendingTtlMs: number;
  maxAttempts: number;
}

const DEFAULT_CODE_PROMPT = 'Enter your one-time code';

/**
 * Sign-in, start to finish: lockout check → password (the first auth server that knows the user) →
 * a second factor when the user's auth server, one of their groups, or their own TOTP enrolment
 * asks for one → session. Every attempt and every step is audited with the user, the source address
 * and the auth server; failures count towards the lockout on every node.
 */
export class SignInService {
  constructor(
    private readonly deps: {
      db: Db;
      users: UsersRepository;
      passwords: PasswordCheck;
      authServers: AuthServersService;
      auth: AuthService;
      throttle: LoginThrottleService;
      totp: TotpService;
      mfa: MfaRepository;
      audit: AuditService;
      clock: Clock;
      log: Logger;
      policy: MfaPolicy;
    },
  ) {}

  async login(login: string, password: string, ctx: LoginContext): Promise<SignInResult> {
    const { throttle, audit } = this.deps;
    const attempt = anonymous(login, ctx);
    const keys = throttle.keys(login, ctx.sourceAddress);
    await throttle.assertOpen(keys, attempt, {});
    let outcome;
    try {
      outcome = await this.deps.passwords.check(login, password, async (canonical) => {
        if (canonical.toLowerCase() !== login.trim().toLowerCase()) await throttle.assertOpen(throttle.keys(canonical, null), attempt, { canonical });
      });
    } catch (err) {
      // A server that cannot answer is not the user's failure: audited, not counted towards the lockout.
      if (err instanceof UnavailableError) {
        await audit.recordRefusal(attempt, { action: 'auth.login', outcome: 'failure', reason: 'auth server unavailable', details: unavailableDetails(err) });
        throw this.#unavailable(err, ctx);
      }
      throw err;
    }
    if (!outcome.ok) {
      const who = outcome.user ? { ...attempt, userId: outcome.user.id } : attempt;
      // Counted against the account the directory resolved (a UPN and a sAMAccountName are one account), else the name as typed.
      const failedKeys = throttle.keys(outcome.canonical ?? login, ctx.sourceAddress);
      await audit.recordRefusal(who, { action: 'auth.login', outcome: 'failure', reason: outcome.reason, details: serverDetails(outcome.server, outcome.canonical) });
      await throttle.recordFailure(failedKeys, who, serverDetails(outcome.server, outcome.canonical));
      throw new InvalidCredentialsError();
    }
    const { user, server, challenge } = outcome;
    const details = { ...serverDetails(server, null), ...(outcome.groups && (outcome.groups.added.length || outcome.groups.removed.length) ? { groups: outcome.groups } : {}) };
    if (user.disabled) {
      const who = actorFor(user, ctx);
      await audit.recordRefusal(who, { action: 'auth.login', outcome: 'failure', reason: 'account disabled', details });
      await throttle.recordFailure(throttle.keys(user.username, ctx.sourceAddress), who, details);
      throw new InvalidCredentialsError();
    }
    if (challenge) {
      // A RADIUS primary asked for more (a push, a code): the password was right, the server is not done.
      return this.#pending(user, server!, server, 'radius', ctx, { state: challenge.state, server: challenge.server, prompt: challenge.message ?? DEFAULT_CODE_PROMPT });
    }
    return this.#afterPrimary(user, server, password, ctx, details);
  }

  /** The second step: the code (or challenge answer) for a pending login. */
  async completeMfa(loginToken: string, code: string, ctx: LoginContext): Promise<SignInResult> {
    const { mfa, clock, audit, throttle, policy } = this.deps;
    const pending = await mfa.claimAttempt(hashToken(loginToken), clock.now(), policy.maxAttempts);
    if (!pending) {
      await audit.recordRefusal(anonymous(null, ctx), { action: 'auth.mfa', outcome: 'failure', reason: 'unknown, expired or used-up login token' });
      throw new MfaFailedError('this sign-in expired, was finished, or had too many wrong codes: sign in again with your password');
    }
    const user = await this.deps.users.findById(pending.userId);
    const servers = await this.deps.authServers.rows();
    const factorServer = servers.find((s) => s.id === pending.mfaServerId);
    const passwordServer = servers.find((s) => s.id === pending.passwordServerId) ?? null;
    if (!user || user.disabled || !factorServer) {
      await mfa.deletePending(pending.id);
      throw new MfaFailedError('this sign-in can no longer be completed: sign in again');
    }
    const who = actorFor(user, ctx);
    const details = { ...serverDetails(passwordServer, null), factor: pending.factor, mfaServer: factorServer.name };
    await throttle.assertOpen(throttle.keys(user.username, ctx.sourceAddress), who, details);

    let failure: string;
    let recoveryCodes: string[] | undefined;
    try {
      if (pending.factor === 'totp') {
        const v = await this.deps.totp.verify(user.id, code);
        if (v.ok) return this.#finish(pending, user, ctx, { ...details, via: v.via });
        failure = v.reason;
      } else if (pending.factor === 'totp-enroll') {
        recoveryCodes = (await this.deps.totp.confirm(who, user.id, code)) ?? undefined;
        if (recoveryCodes) return { ...(await this.#finish(pending, user, ctx, { ...details, enrolled: true })), recoveryCodes } as SignInResult;
        failure = 'wrong code for the new authenticator';
      } else {
        const answer = await this.deps.authServers.verifierFor(factorServer).check({ username: user.username, response: code, state: pending.radiusState, server: pending.radiusServer });
        if (answer.kind === 'accept') {
          if (pending.mfaServerId === pending.passwordServerId) {
            // The RADIUS primary is satisfied; a second factor of its own may still be due. Only the
            // answer that removes the pending login goes on: a server that accepts one State more than
            // once (a push service may) must not open a session per answer.
            if (!(await mfa.deletePending(pending.id))) throw alreadyCompleted();
            await audit.record(who, { action: 'auth.mfa', outcome: 'success', details: { ...details, stage: 'challenge answered' } });
            return this.#afterPrimary(user, passwordServer, null, ctx, serverDetails(passwordServer, null));
          }
          return this.#finish(pending, user, ctx, details);
        }
        if (answer.kind === 'challenge') {
          if (!(await mfa.updatePending(pending.id, { radiusState: answer.state, radiusServer: answer.server }))) throw alreadyCompleted();
          await audit.record(who, { action: 'auth.mfa', outcome: 'success', details: { ...details, stage: 'challenge', server: answer.server } });
          return { kind: 'mfa', factor: 'radius', prompt: answer.message ?? DEFAULT_CODE_PROMPT, loginToken, expiresAt: pending.expiresAt };
        }
        // A reject ends the RADIUS conversation: its State is spent.
        await mfa.deletePending(pending.id);
        failure = answer.message ? `rejected by "${factorServer.name}": ${answer.message}` : `rejected by "${factorServer.name}"`;
      }
    } catch (err) {
      if (err instanceof UnavailableError) {
        await audit.record(who, { action: 'auth.mfa', outcome: 'failure', reason: 'second factor unavailable', details: { ...details, error: err.message } });
        throw this.#unavailable(err, ctx);
      }
      throw err;
    }
    await audit.recordRefusal(who, { action: 'auth.mfa', outcome: 'failure', reason: failure, details: { ...details, attempt: pending.attempts } });
    await throttle.recordFailure(throttle.keys(user.username, ctx.sourceAddress), who, details);
    const left = policy.maxAttempts - pending.attempts;
    if (left <= 0) await mfa.deletePending(pending.id);
    throw new MfaFailedError(left > 0 && pending.factor !== 'radius' ? `wrong code (${left} ${left === 1 ? 'try' : 'tries'} left)` : 'the second factor was refused: sign in again with your password');
  }

  /**
   * A signed-in user proves their TOTP again before changing it (new recovery codes, removal). A wrong
   * code counts towards the account's lockout like a failed sign-in, and a locked account may not try:
   * a stolen session must not become an unlimited code-guessing oracle.
   */
  async proveTotp(actor: Actor & { userId: string }, code: string): Promise<void> {
    const { throttle, audit } = this.deps;
    const keys = throttle.keys(actor.username, actor.sourceAddress);
    const details = { factor: 'totp', stage: 'self-service' };
    await throttle.assertOpen(keys, actor, details);
    const verdict = await this.deps.totp.verify(actor.userId, code);
    if (verdict.ok) return;
    await audit.record(actor, { action: 'auth.mfa', outcome: 'failure', reason: verdict.reason, details });
    await throttle.recordFailure(keys, actor, details);
    throw new MfaFailedError(`the code was refused: ${verdict.reason}`);
  }

  /**
   * After a sign-in at an identity provider (OIDC, SAML): the same second-factor rules as after a
   * password, unless the IdP already did MFA and the auth server trusts that (`skipSecondFactor`).
   * There is no password here, so a RADIUS second factor asks for a code.
   */
  async afterExternalSignIn(user: UserRow, server: AuthServerRow, ctx: LoginContext, details: Record<string, unknown>, opts: { skipSecondFactor: boolean }): Promise<SignInResult> {
    if (opts.skipSecondFactor) {
      await this.deps.throttle.succeeded([user.username]);
      return { kind: 'session', ...(await this.deps.auth.openSession(user, ctx, details)) };
    }
    return this.#afterPrimary(user, server, null, ctx, details);
  }

  /** After the password: a session, or the first exchange of the second factor. */
  async #afterPrimary(user: UserRow, server: AuthServerRow | null, password: string | null, ctx: LoginContext, details: Record<string, unknown>): Promise<SignInResult> {
    const factor = await this.#requiredFactor(user, server);
    if (!factor) {
      await this.deps.throttle.succeeded([user.username]);
      return { kind: 'session', ...(await this.deps.auth.openSession(user, ctx, details)) };
    }
    if (factor.kind === 'totp') {
      if (await this.deps.totp.isEnrolled(user.id)) return this.#pending(user, factor, server, 'totp', ctx, {});
      const enrollment = await this.deps.totp.begin(user, (factor.config as { issuer?: string }).issuer ?? 'Stagedoor');
      return this.#pending(user, factor, server, 'totp-enroll', ctx, { enrollment });
    }
    const settings = factor.config as { secondFactorRequest?: 'password' | 'code'; prompt?: string };
    if (settings.secondFactorRequest === 'code' || password === null) {
      return this.#pending(user, factor, server, 'radius', ctx, { prompt: settings.prompt ?? DEFAULT_CODE_PROMPT });
    }
    // Okta RADIUS agent, Duo proxy …: they take the password, then accept (a push approved) or challenge.
    const who = actorFor(user, ctx);
    const mfaDetails = { ...details, factor: 'radius', mfaServer: factor.name };
    let answer;
    try {
      answer = await this.deps.authServers.verifierFor(factor).check({ username: user.username, response: password });
    } catch (err) {
      if (err instanceof UnavailableError) {
        await this.deps.audit.record(who, { action: 'auth.mfa', outcome: 'failure', reason: 'second factor unavailable', details: { ...mfaDetails, error: err.message } });
        throw this.#unavailable(err, ctx);
      }
      throw err;
    }
    if (answer.kind === 'accept') {
      await this.deps.throttle.succeeded([user.username]);
      return { kind: 'session', ...(await this.deps.auth.openSession(user, ctx, mfaDetails)) };
    }
    if (answer.kind === 'challenge') return this.#pending(user, factor, server, 'radius', ctx, { state: answer.state, server: answer.server, prompt: answer.message ?? DEFAULT_CODE_PROMPT });
    await this.deps.audit.record(who, { action: 'auth.mfa', outcome: 'failure', reason: `rejected by "${factor.name}"`, details: mfaDetails });
    await this.deps.throttle.recordFailure(this.deps.throttle.keys(user.username, ctx.sourceAddress), who, mfaDetails);
    throw new MfaFailedError('the second factor was refused: sign in again with your password');
  }

  /** The error an anonymous caller gets for `err`: nothing about the directory; the log and the audit row keep the rest. */
  #unavailable(err: UnavailableError, ctx: LoginContext): SignInUnavailableError {
    this.deps.log.warn({ requestId: ctx.requestId, err: err.message }, 'sign-in failed: an auth server could not answer');
    return new SignInUnavailableError(err);
  }

  /** Which second factor this login needs: the password server's, else a group's, else the user's own TOTP. Fails closed on a disabled one. */
  async #requiredFactor(user: UserRow, passwordServer: AuthServerRow | null): Promise<AuthServerRow | null> {
    const servers = await this.deps.authServers.rows();
    let factor: AuthServerRow | undefined;
    if (passwordServer?.mfaServerId && passwordServer.mfaServerId !== passwordServer.id) factor = servers.find((s) => s.id === passwordServer.mfaServerId);
    if (!factor) {
      const groupIds = (await this.deps.users.groupsOf([user.id])).get(user.id)?.map((g) => g.id) ?? [];
      factor = await this.deps.authServers.requiredFactorForGroups(groupIds);
    }
    if (!factor) {
      // Someone who enrolled TOTP of their own accord is asked for it too.
      const totp = servers.find((s) => s.kind === 'totp' && s.enabled);
      if (totp && (await this.deps.totp.isEnrolled(user.id))) factor = totp;
    }
    if (factor && factor.id === passwordServer?.id) return null;
    if (factor && !factor.enabled) {
      throw new UnavailableError(`the second factor "${factor.name}" that this account requires is disabled: an admin must enable it or lift the requirement`, { authServer: factor.name });
    }
    return factor ?? null;
  }

  async #pending(
    user: UserRow,
    factorServer: AuthServerRow,
    passwordServer: AuthServerRow | null,
    factor: MfaFactor,
    ctx: LoginContext,
    extra: { state?: string | null; server?: string; prompt?: string; enrollment?: TotpEnrollment },
  ): Promise<SignInResult> {
    const now = this.deps.clock.now();
    const loginToken = newToken();
    const expiresAt = new Date(now.getTime() + this.deps.policy.pendingTtlMs);
    await this.deps.mfa.deleteExpiredPending(now);
    await this.deps.mfa.insertPending({
      tokenHash: hashToken(loginToken),
      userId: user.id,
      factor,
      mfaServerId: factorServer.id,
      passwordServerId: passwordServer?.id ?? null,
      radiusState: factor === 'radius' ? (extra.state ?? null) : null,
      radiusServer: extra.server ?? null,
      sourceAddress: ctx.sourceAddress,
      createdAt: now,
      expiresAt,
    });
    await this.deps.audit.record(actorFor(user, ctx), {
      action: 'auth.mfa',
      outcome: 'success',
      details: { ...serverDetails(passwordServer, null), stage: 'required', factor, mfaServer: factorServer.name, expiresAt: expiresAt.toISOString() },
    });
    return { kind: 'mfa', factor, loginToken, expiresAt, ...(extra.prompt ? { prompt: extra.prompt } : {}), ...(extra.enrollment ? { enrollment: extra.enrollment } : {}) };
  }

  async #finish(pending: PendingLoginRow, user: UserRow, ctx: LoginContext, details: Record<string, unknown>): Promise<SignInResult> {
    // Only the caller that deletes the pending row gets a session: two answers racing cannot both win.
    if (!(await this.deps.mfa.deletePending(pending.id))) throw alreadyCompleted();
    await this.deps.throttle.succeeded([user.username]);
    return { kind: 'session', ...(await this.deps.auth.openSession(user, ctx, details)) };
  }
}

/** Another answer to the same login token removed it first; that answer, not this one, goes on. */
function alreadyCompleted(): MfaFailedError {
  return new MfaFailedError('this sign-in was already completed: sign in again');
}

function anonymous(login: string | null, ctx: LoginContext): Actor {
  return { userId: null, username: login ?? 'anonymous', role: 'user', sourceAddress: ctx.sourceAddress, requestId: ctx.requestId, via: 'anonymous' };
}

function actorFor(user: UserRow, ctx: LoginContext): Actor {
  return { userId: user.id, username: user.username, role: user.role as Actor['role'], sourceAddress: ctx.sourceAddress, requestId: ctx.requestId, via: 'anonymous' };
}

function serverDetails(server: AuthServerRow | null, canonical: string | null): Record<string, unknown> {
  return { authServer: server?.name ?? 'local', ...(server ? { authServerId: server.id } : {}), ...(canonical ? { username: canonical } : {}) };
}

/** The server that could not answer (providers name it in the error's details) and why. */
function unavailableDetails(err: UnavailableError): Record<string, unknown> {
  const d = (err.details ?? {}) as { authServer?: unknown };
  return { ...(typeof d.authServer === 'string' ? { authServer: d.authServer } : {}), error: err.message };
}
