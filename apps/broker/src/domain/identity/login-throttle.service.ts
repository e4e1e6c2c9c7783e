import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import type { Actor } from './actor.ts';
import type { LoginThrottlesRepository, ThrottleKey, ThrottleRow, ThrottleScope } from './login-throttles.repository.ts';
import { LoginLockedError } from './sign-in-errors.ts';
import { clientKey } from '../addresses.ts';

export interface LockoutPolicy {
  /** Failures of one login name within the window that lock it. */
  accountThreshold: number;
  /** Failures from one client address (an IPv6 /64) within the window that lock it. */
  addressThreshold: number;
  windowMs: number;
  durationMs: number;
}

/**
 * Rate limiting and lockout per account and per source address, kept in `login_throttles` so that
 * every broker node counts the same failures and honours the same locks.
 */
export class LoginThrottleService {
  #lastSweep = 0;

  constructor(private readonly deps: { repo: LoginThrottlesRepository; audit: AuditService; clock: Clock; policy: LockoutPolicy; log: Logger }) {}

  /** The throttle keys of a sign-in attempt: the lower-cased login name and the client address. */
  keys(login: string | null, sourceAddress: string | null): ThrottleKey[] {
    const out: ThrottleKey[] = [];
    if (login) out.push({ scope: 'account', key: accountKey(login) });
    const address = addressKey(sourceAddress);
    if (address) out.push({ scope: 'address', key: address });
    return out;
  }

  /** Refuse at once when any key is locked; audited as a failed sign-in whose reason names the lock (capped per address: a locked-out storm writes little). */
  async assertOpen(keys: ThrottleKey[], attempt: Actor, details: Record<string, unknown>): Promise<void> {
    const now = this.deps.clock.now();
    const [lock] = await this.deps.repo.locked(keys, now);
    if (!lock) return;
    await this.deps.audit.recordRefusal(attempt, { action: 'auth.login', outcome: 'failure', reason: `${lock.scope} locked`, details: { ...details, lockedUntil: lock.lockedUntil!.toISOString() } });
    throw new LoginLockedError(lock.lockedUntil!, now);
  }

  /** Count one failure against each key; a key that reaches its threshold is locked, and the lockout audited. */
  async recordFailure(keys: ThrottleKey[], attempt: Actor, details: Record<string, unknown>): Promise<void> {
    const { policy, clock, repo, audit } = this.deps;
    const now = clock.now();
    for (const k of keys) {
      const threshold = k.scope === 'account' ? policy.accountThreshold : policy.addressThreshold;
      const r = await repo.recordFailure(k, { now, windowStart: new Date(now.getTime() - policy.windowMs), threshold, lockUntil: new Date(now.getTime() + policy.durationMs) });
      if (r.justLocked) {
        await audit.record(attempt, {
          action: 'auth.lockout',
          outcome: 'success',
          targetType: 'login_throttle',
          targetId: `${k.scope}:${k.key}`,
          reason: `${r.failureCount} failed sign-ins within ${policy.windowMs / 60_000} minutes`,
          details: { ...details, scope: k.scope, key: k.key, failures: r.failureCount, lockedUntil: r.lockedUntil!.toISOString() },
        });
      }
    }
    await this.#sweepNowAndThen(now);
  }

  /** A successful sign-in forgets the account's failures (never the address's: one good account must not launder an address). */
  async succeeded(names: string[]): Promise<void> {
    await this.deps.repo.clearAccounts([...new Set(names.map(accountKey))]);
  }

  async list(limit: number, offset: number): Promise<ThrottleRow[]> {
    const now = this.deps.clock.now();
    return this.deps.repo.list(now, new Date(now.getTime() - this.deps.policy.windowMs), limit, offset);
  }

  /** Admin unlock of a user: every account entry under their username or e-mail address. */
  async unlockUser(actor: Actor, user: { id: string; username: string; email: string | null }): Promise<number> {
    const names = [user.username, ...(user.email ? [user.email] : [])].map(accountKey);
    const cleared = await this.deps.repo.clearAccounts(names);
    await this.deps.audit.record(actor, { action: 'user.unlock', outcome: 'success', targetType: 'user', targetId: user.id, details: { username: user.username, cleared } });
    return cleared;
  }

  /** Admin unlock of one entry, e.g. an address, or a login name that matches no user. */
  async unlock(actor: Actor, scope: ThrottleScope, key: string): Promise<number> {
    const normalized = scope === 'account' ? accountKey(key) : addressKey(key);
    if (!normalized) throw new InvalidInputError(`"${key}" is not an IP address`, [{ path: 'key', message: 'must be an IP address for the address scope' }]);
    const cleared = await this.deps.repo.clear([{ scope, key: normalized }]);
    if (!cleared) throw new NotFoundError('login throttle', `${scope}:${normalized}`);
    await this.deps.audit.record(actor, { action: 'login_throttle.unlock', outcome: 'success', targetType: 'login_throttle', targetId: `${scope}:${normalized}`, details: { scope, key: normalized } });
    return cleared;
  }

  /**
   * Drop entries whose window and lock are over, in batches (the `retention` job; a spray of random
   * names leaves one row per name). Returns how many went.
   */
  async prune(batch = 1000, maxBatches = 50): Promise<number> {
    const now = this.deps.clock.now();
    const before = new Date(now.getTime() - this.deps.policy.windowMs - this.deps.policy.durationMs);
    let dropped = 0;
    for (let i = 0; i < maxBatches; i++) {
      const n = await this.deps.repo.sweep(before, now, batch);
      dropped += n;
      if (n < batch) break;
    }
    return dropped;
  }

  /** Old rows are also dropped at most once a minute per node, after a failure. */
  async #sweepNowAndThen(now: Date): Promise<void> {
    if (now.getTime() - this.#lastSweep < 60_000) return;
    this.#lastSweep = now.getTime();
    const { windowMs, durationMs } = this.deps.policy;
    const dropped = await this.deps.repo.sweep(new Date(now.getTime() - windowMs - durationMs), now).catch(() => 0);
    if (dropped) this.deps.log.debug({ dropped }, 'old login throttle entries dropped');
  }
}

export function accountKey(login: string): string {
  return login.trim().toLowerCase().slice(0, 256);
}

/** IPv4 as is (IPv4-mapped IPv6 too); IPv6 by its /64, since one client usually holds a whole /64. */
export function addressKey(address: string | null): string | null {
  return address ? clientKey(address) : null;
}
