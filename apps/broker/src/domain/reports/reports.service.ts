import type { Clock } from '../clock.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { computeCostReport, type CostResult, type GroupBy } from './cost.ts';
import type { ReportsRepository, RunningRow } from './reports.repository.ts';

export const MAX_REPORT_MS = 366 * 86_400_000;

export type Verdict = 'in-use' | 'action-pending' | 'standby' | 'no-plan';

/** "Why is it still running?" in one word and one sentence (pure; the first reason that holds wins). */
export function explainRunning(w: Pick<RunningRow, 'sessions' | 'timers' | 'assignment' | 'poolId' | 'poolName'>): { verdict: Verdict; why: string } {
  if (w.sessions.length) {
    const who = [...new Set(w.sessions.map((s) => s.username ?? 'a deleted user'))].join(', ');
    return { verdict: 'in-use', why: `${w.sessions.length} live session${w.sessions.length > 1 ? 's' : ''} (${who}): plans never stop a machine in use` };
  }
  const next = w.timers[0];
  if (next) return { verdict: 'action-pending', why: `${next.kind} due at ${next.dueAt.toISOString()}${next.reason ? ` (${next.reason})` : ''}` };
  if (!w.assignment && w.poolId) return { verdict: 'standby', why: `unassigned member of pool ${w.poolName ?? w.poolId}: kept running as warm standby (minAvailable)` };
  if (w.assignment) return { verdict: 'no-plan', why: `assigned to ${w.assignment.username ?? 'a deleted user'} with no live session and no pending power or release timer: nothing will stop it (no power plan, or its delay is -1)` };
  return { verdict: 'no-plan', why: 'not in a pool and not assigned: nothing manages its power' };
}

export class ReportsService {
  constructor(private readonly deps: { repo: ReportsRepository; clock: Clock }) {}

  async cost(q: { from: Date; to: Date; groupBy: GroupBy }): Promise<CostResult & { from: Date; to: Date; generatedAt: Date; groupBy: GroupBy }> {
    // The route's schema checks these already; the service keeps its own promise for other callers (CLI, bench).
    if (!(q.to.getTime() > q.from.getTime())) throw new InvalidInputError('to must be after from', [{ path: 'to', message: 'must be after from' }]);
    if (q.to.getTime() - q.from.getTime() > MAX_REPORT_MS) throw new InvalidInputError('the window may span at most 366 days', [{ path: 'to', message: 'the window may span at most 366 days' }]);
    const now = this.deps.clock.now();
    const { repo } = this.deps;
    const [intervals, prices, assignments] = await Promise.all([
      repo.intervals(q.from, q.to),
      repo.prices(),
      q.groupBy === 'user' ? repo.assignments(q.from, q.to) : Promise.resolve([]),
    ]);
    const labels =
      q.groupBy === 'pool'
        ? { pools: await repo.names('pools', [...new Set(intervals.flatMap((i) => (i.poolId ? [i.poolId] : [])))]) }
        : q.groupBy === 'user'
          ? { users: await repo.names('users', [...new Set(assignments.flatMap((a) => (a.userId ? [a.userId] : [])))]) }
          : {};
    const result = computeCostReport({ ...q, now, intervals, assignments, prices, labels });
    return { ...result, from: q.from, to: q.to, generatedAt: now, groupBy: q.groupBy };
  }

  async running(filter: { poolId?: string }, limit: number, offset: number) {
    const page = await this.deps.repo.running(filter, limit, offset);
    return { ...page, items: page.items.map((w) => ({ ...w, ...explainRunning(w) })) };
  }

  async runningOne(id: string) {
    const page = await this.deps.repo.running({ id }, 1, 0);
    const w = page.items[0];
    if (!w) throw new NotFoundError('running workstation', id);
    return { ...w, ...explainRunning(w) };
  }
}
