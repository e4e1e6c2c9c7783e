import { DomainError } from '../errors.ts';

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
