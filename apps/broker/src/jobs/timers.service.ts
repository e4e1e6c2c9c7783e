import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.ts';
import type { DbOrTx } from '../db/database.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { TimerRow, TimersRepository } from './timers.repository.ts';

export type TimerHandler = (timer: TimerRow) => Promise<void>;

export interface TimerOptions {
  leaseMs?: number;
  batchSize?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

/**
 * Durable timers. `schedule` writes a row (inside the caller's transaction when given one);
 * `fireDue` claims the due rows and runs each kind's handler. Delivery is at least once — a node
 * that dies after the action but before marking the row done lets another node retry after the
 * lease — so handlers must be idempotent, as every Stagedoor action is.
 */
export class TimerService {
  readonly #handlers = new Map<string, TimerHandler>();
  readonly #leaseMs: number;
  readonly #batchSize: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;

  constructor(
    private readonly deps: { repo: TimersRepository; clock: Clock; log: Logger; metrics: Metrics; nodeId: string },
    opts: TimerOptions = {},
  ) {
    this.#leaseMs = opts.leaseMs ?? 60_000;
    this.#batchSize = opts.batchSize ?? 50;
    this.#backoffBaseMs = opts.backoffBaseMs ?? 5_000;
    this.#backoffMaxMs = opts.backoffMaxMs ?? 15 * 60_000;
  }

  handle(kind: string, handler: TimerHandler): void {
    if (this.#handlers.has(kind)) throw new Error(`timer kind ${kind} has a handler already`);
    this.#handlers.set(kind, handler);
  }

  schedule(t: { kind: string; key: string; dueAt: Date; payload?: Record<string, unknown>; maxAttempts?: number }, tx?: DbOrTx): Promise<TimerRow> {
    return this.deps.repo.upsertPending({ kind: t.kind, key: t.key, dueAt: t.dueAt, payload: t.payload ?? {}, maxAttempts: t.maxAttempts ?? 8 }, tx);
  }

  cancel(kind: string, key: string, tx?: DbOrTx): Promise<number> {
    return this.deps.repo.cancelPending(kind, key, this.deps.clock.now(), tx);
  }

  /** Cancel a subject's pending timers of several kinds at once; returns the cancelled rows. */
  cancelKinds(kinds: readonly string[], key: string, tx?: DbOrTx): Promise<TimerRow[]> {
    return this.deps.repo.cancelPendingKinds(kinds, key, this.deps.clock.now(), tx);
  }

  /** Schedule unless one is pending already (a recurring timer that must not be moved while it fires). */
  scheduleIfAbsent(t: { kind: string; key: string; dueAt: Date; payload?: Record<string, unknown>; maxAttempts?: number }, tx?: DbOrTx): Promise<TimerRow | undefined> {
    return this.deps.repo.insertIfAbsent({ kind: t.kind, key: t.key, dueAt: t.dueAt, payload: t.payload ?? {}, maxAttempts: t.maxAttempts ?? 8 }, tx);
  }

  pending(kind: string, tx?: DbOrTx): Promise<TimerRow[]> {
    return this.deps.repo.pendingOfKind(kind, tx);
  }

  /** Pending timers about one workstation (`payload.workstationId`), soonest first. */
  pendingForWorkstation(workstationId: string, tx?: DbOrTx): Promise<TimerRow[]> {
    return this.deps.repo.pendingForWorkstation(workstationId, tx);
  }

  /** Fire every timer due by the clock's now; returns counts for the job's stats. */
  async fireDue(): Promise<{ claimed: number; done: number; retried: number; failed: number }> {
    const stats = { claimed: 0, done: 0, retried: 0, failed: 0 };
    for (;;) {
      const now = this.deps.clock.now();
      const batch = await this.deps.repo.claimDue(now, this.#batchSize, this.deps.nodeId, this.#leaseMs);
      stats.claimed += batch.length;
      for (const timer of batch) stats[await this.#fire(timer)]++;
      if (batch.length < this.#batchSize) return stats;
    }
  }

  /**
   * Run one pending timer now, on this node, if nobody else holds it: the outbox pattern's fast
   * path (a row written in a transaction, handled right after its commit; the timers job handles
   * it instead when this node dies first).
   */
  async fireNow(kind: string, key: string): Promise<'done' | 'retried' | 'failed' | 'absent'> {
    const timer = await this.deps.repo.claimOne(kind, key, this.deps.clock.now(), this.deps.nodeId, this.#leaseMs);
    return timer ? this.#fire(timer) : 'absent';
  }

  async #fire(timer: TimerRow): Promise<'done' | 'retried' | 'failed'> {
    const log = this.deps.log.child({ timer: timer.id, kind: timer.kind, key: timer.key });
    const handler = this.#handlers.get(timer.kind);
    try {
      if (!handler) throw new Error(`no handler for timer kind ${timer.kind}`);
      await handler(timer);
      await this.deps.repo.markDone(timer.id, this.deps.nodeId, this.deps.clock.now());
      this.deps.metrics.timersFired.labels(timer.kind, 'done').inc();
      log.info({ attempts: timer.attempts }, 'timer fired');
      return 'done';
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const now = this.deps.clock.now();
      if (timer.attempts >= timer.maxAttempts) {
        await this.deps.repo.markFailed(timer.id, this.deps.nodeId, now, message);
        this.deps.metrics.timersFired.labels(timer.kind, 'failed').inc();
        log.error({ err, attempts: timer.attempts }, 'timer failed for good');
        return 'failed';
      }
      const delay = Math.min(this.#backoffMaxMs, this.#backoffBaseMs * 2 ** (timer.attempts - 1));
      await this.deps.repo.markRetry(timer.id, this.deps.nodeId, new Date(now.getTime() + delay), message);
      this.deps.metrics.timersFired.labels(timer.kind, 'retry').inc();
      log.warn({ err, attempts: timer.attempts, retryInMs: delay }, 'timer failed; will retry');
      return 'retried';
    }
  }
}
