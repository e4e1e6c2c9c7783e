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
      run: async () => services.timers.fireDue(),
    },
    {
      name: 'housekeeping',
      intervalMs: config.jobs.housekeepingIntervalMs,
      // Dead sessions are kept a day for forensics, finished timers a week; the audit trail forever.
      run: async ({ clock }) => {
        const now = clock.now();
        const sessions = await services.sessionsRepo.deleteDead(now, DAY);
        const timers = await timersRepo.deleteFinishedBefore(new Date(now.getTime() - 7 * DAY));
        return { sessionsDeleted: sessions, timersDeleted: timers };
      },
    },
  ];
}
