import { DomainError, UnavailableError } from '../errors.ts';

/**
 * Too many failed sign-ins for this account or source address. Raised before any password is
 * checked, so the answer is the same whether the password was right or not.
 */
export class LoginLockedError extends DomainError {
  readonly code = 'login_locked';
  constructor(readonly lockedUntil: Date, now: Date) {
    super(`too many failed sign-ins: sign-in is locked for this account or address until ${lockedUntil.toISOString()}; try again then, or ask an admin to unlock it`, {
      lockedUntil: lockedUntil.toISOString(),
      retryAfterSeconds: Math.max(1, Math.ceil((lockedUntil.getTime() - now.getTime()) / 1000)),
    });
  }
}

/** The second sign-in step failed: a wrong code, a refused push, or a login token that expired or was used up. */
export class MfaFailedError extends DomainError {
  readonly code = 'mfa_failed';
}

/**
 * An auth server could not give a trustworthy answer during sign-in. This is what the (anonymous)
 * client sees: no directory URL, RADIUS address, bind DN or server message, which would map the
 * internal network for anyone who can reach the sign-in page. The full error stays in the audit row
 * (`details.error`) and the log; admins see it in the auth server test as well.
 */
export class SignInUnavailableError extends UnavailableError {
  constructor(cause: UnavailableError) {
    super('sign-in is unavailable right now: a server that checks this account cannot be reached or gave an answer that cannot be trusted. Try again later, or give the request id to your administrator', undefined, { cause });
  }
}

/**
 * A single sign-on attempt was refused: the identity provider's answer did not pass a check (state,
 * signature, audience, expiry, a replay), or the person it names may not sign in here. The message
 * says what to do, without the token's contents; the audit row keeps the reason.
 */
export class SsoRefusedError extends DomainError {
  readonly code = 'sso_refused';
}
