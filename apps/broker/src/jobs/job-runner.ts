import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.ts';
import type { Database } from '../db/database.ts';
import { isDatabaseUnavailable } from '../domain/errors.ts';
import type { Metrics } from '../observability/metrics.ts';

export type JobStats = Record<string, number>;

export interface JobDefinition {
  /** Stable name: it is the advisory lock key, the metric label and the log field. */
  name: string;
  intervalMs: number;
  /**
   * A pass whose stats are all zero logs at debug, not info: for jobs that run every second
   * (`timers`), whose idle passes would otherwise be half of all log lines.
   */
  quietWhenIdle?: boolean;
  run(ctx: { clock: Clock; log: Logger }): Promise<JobStats | void>;
}

export type JobOutcome = { outcome: 'ok'; stats: JobStats } | { outcome: 'error'; error: string } | { outcome: 'skipped' };

/**
 * Named jobs on an interval. Every node runs the same runner; an advisory lock per job lets one
 * node at a time do a pass, and the others skip that tick. Each pass is logged and counted.
 */
export class JobRunner {
  readonly #jobs = new Map<string, JobDefinition>();
  readonly #handles = new Map<string, NodeJS.Timeout>();
  #running = new Set<Promise<unknown>>();
  #stopped = true;

  constructor(
    private readonly deps: { database: Database; clock: Clock; log: Logger; metrics: Metrics },
  ) {}

  register(job: JobDefinition): void {
    if (this.#jobs.has(job.name)) throw new Error(`job ${job.name} is registered twice`);
    this.#jobs.set(job.name, job);
  }

  start(): void {
    this.#stopped = false;
    for (const job of this.#jobs.values()) this.#schedule(job, jitter(job.intervalMs));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const h of this.#handles.values()) clearTimeout(h);
    this.#handles.clear();
    await Promise.allSettled([...this.#running]);
  }

  /** One pass now, under the job's lock; also what the interval calls. */
  async runOnce(name: string): Promise<JobOutcome> {
    const job = this.#jobs.get(name);
    if (!job) throw new Error(`no job named ${name}`);
    const log = this.deps.log.child({ job: job.name });
    const startedAt = new Date();
    let result: JobOutcome;
    try {
      const locked = await this.deps.database.tryWithAdvisoryLock(`job:${job.name}`, async () => {
        const lockedAt = new Date();
        const stats = (await job.run({ clock: this.deps.clock, log })) ?? {};
        return { stats, lockedAt, finishedAt: new Date() };
      });
      if (!locked.acquired) {
        result = { outcome: 'skipped' };
        log.debug('job pass skipped: another node holds its lock');
      } else {
        result = { outcome: 'ok', stats: locked.value.stats };
        // startedAt/finishedAt bracket the time inside the lock; cluster tests read them from the log.
        const idle = job.quietWhenIdle && Object.values(locked.value.stats).every((n) => n === 0);
        log[idle ? 'debug' : 'info'](
          { stats: locked.value.stats, startedAt: locked.value.lockedAt.toISOString(), finishedAt: locked.value.finishedAt.toISOString(), ms: locked.value.finishedAt.getTime() - locked.value.lockedAt.getTime() },
          'job pass',
        );
        this.deps.metrics.jobDuration.labels(job.name).observe((locked.value.finishedAt.getTime() - startedAt.getTime()) / 1000);
      }
    } catch (err) {
      result = { outcome: 'error', error: err instanceof Error ? err.message : String(err) };
      // A database restarting or failing over fails every pass until it is back: one line each, not a stack.
      if (isDatabaseUnavailable(err)) log.warn({ error: result.error.slice(-300) }, 'job pass failed: database unavailable');
      else log.error({ err }, 'job pass failed');
    }
    this.deps.metrics.jobRuns.labels(job.name, result.outcome).inc();
    return result;
  }

  #schedule(job: JobDefinition, delay: number): void {
    if (this.#stopped) return;
    const handle = setTimeout(() => {
      const pass = this.runOnce(job.name).finally(() => {
        this.#running.delete(pass);
        this.#schedule(job, job.intervalMs);
      });
      this.#running.add(pass);
    }, delay);
    handle.unref();
    this.#handles.set(job.name, handle);
  }
}

/** Spread first runs so that nodes started together do not all knock at once. */
function jitter(ms: number): number {
  return Math.floor(Math.random() * Math.min(ms, 1000));
}
