import type { Config } from '../config/config.ts';
import type { Services } from '../services.ts';
import type { JobDefinition } from './job-runner.ts';
import type { TimersRepository } from './timers.repository.ts';

const DAY = 86_400_000;

/** Jobs every broker node runs (one node at a time per job, by lock). */
export function builtinJobs(services: Services, timersRepo: TimersRepository, config: Pick<Config, 'jobs'>): JobDefinition[] {
  return [
    {
      name: 'timers',
      intervalMs: config.jobs.timersIntervalMs,
      quietWhenIdle: true,
      run: async () => services.timers.fireDue(),
    },
    {
      // One job; each provider is synced under its own lock when its interval has passed.
      name: 'inventory-sync',
      intervalMs: 10_000,
      run: async () => services.inventory.syncDue(),
    },
    {
      // Health between syncs: running machines whose agent stopped reporting (docs/health.md).
      name: 'agent-silence',
      intervalMs: 30_000,
      run: async () => services.inventory.markSilentAgents(),
    },
    {
      // The safety net under the pokes: every pool, each under its own lock (pool:<id>).
      name: 'pool-reconciler',
      intervalMs: 15_000,
      run: async () => services.pools.reconcileAll(),
    },
    {
      // Power plans' schedule rules: one pending timer per rule, due at its next time (the timers job fires it).
      name: 'power-schedule',
      intervalMs: 30_000,
      run: async () => services.powerTimers.keepScheduleTimers(),
    },
    {
      // Persistent assignments whose policy asks for it: the user's machine started before a likely arrival (docs/power.md).
      name: 'persistent-prestart',
      intervalMs: 60_000,
      run: async () => services.prestart.runDue(),
    },
    {
      // Live connections nothing will move on any more (docs/connect-flow.md, "Stale connections").
      name: 'connection-reaper',
      intervalMs: 30_000,
      run: async () => services.connectionReaper.reap(),
    },
    {
      // The safety net under the reviews that run with each user, group and policy change.
      name: 'access-review',
      intervalMs: 60_000,
      run: async () => services.accessReview.reviewAll(),
    },
    {
      // Audit retention and refusal summaries, and login throttles whose window and lock are over.
      // Each part works in bounded batches, so a pass stays short even far behind (docs/security.md).
      name: 'retention',
      intervalMs: config.jobs.housekeepingIntervalMs,
      run: async () => {
        const refusalSummaries = await services.audit.flushRefusalSummaries();
        const auditDeleted = await services.audit.prune();
        const throttlesDeleted = await services.loginThrottle.prune();
        return { refusalSummaries, auditDeleted, throttlesDeleted };
      },
    },
    {
      name: 'housekeeping',
      intervalMs: config.jobs.housekeepingIntervalMs,
      // Dead sessions are kept a day for forensics, finished timers a week; the audit trail: see `retention`.
      run: async ({ clock }) => {
        const now = clock.now();
        const sessions = await services.sessionsRepo.deleteDead(now, DAY);
        const timers = await timersRepo.deleteFinishedBefore(new Date(now.getTime() - 7 * DAY));
        // A retry comes within minutes: an Idempotency-Key is remembered for a day.
        const keys = await services.connections.purgeConnectKeys(new Date(now.getTime() - DAY));
        return { sessionsDeleted: sessions, timersDeleted: timers, connectKeysDeleted: keys };
      },
    },
  ];
}
