import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { systemActor } from '../identity/actor.ts';
import { HISTORY_WEEKS, WEEK_MS } from '../pools/forecast.ts';
import type { WorkstationsService } from '../workstations/workstations.service.ts';
import { prestartCheckDue, prestartDecision, prestartUnused, userDemand, type UserConnection } from './prestart.ts';
import type { PrestartCandidate, PrestartRepository } from './prestart.repository.ts';

/**
 * The `persistent-prestart` job (docs/power.md, "Pre-start"): for each active persistent assignment
 * whose policy has `prestartPersistent`, start the user's stopped machine shortly before a likely
 * arrival, and stop a pre-started machine the user did not come to. Decisions are pure
 * (`prestart.ts`); each start or stop goes through `powerGuarded`, so the machine's row lock and a
 * re-check stand between the decision and the cloud call (a user who connects meanwhile is seen),
 * and is logged and audited with its reason.
 */
export class PrestartService {
  constructor(private readonly deps: { repo: PrestartRepository; workstations: Pick<WorkstationsService, 'powerGuarded'>; clock: Clock; log: Logger }) {}

  async runDue(): Promise<{ candidates: number; started: number; stopped: number; failed: number }> {
    const now = this.deps.clock.now();
    const stats = { candidates: 0, started: 0, stopped: 0, failed: 0 };
    const candidates = await this.deps.repo.candidates();
    stats.candidates = candidates.length;
    const from = new Date(now.getTime() - (HISTORY_WEEKS + 1) * WEEK_MS);
    const byMachine = new Map<string, UserConnection[]>();
    for (const c of await this.deps.repo.connectionsOf(candidates.filter((c) => c.powerState === 'stopped').map((c) => c.workstationId), from)) {
      const key = `${c.userId} ${c.workstationId}`;
      byMachine.set(key, [...(byMachine.get(key) ?? []), { requestedAt: c.requestedAt, closedAt: c.closedAt }]);
    }
    for (const c of candidates) {
      try {
        if (c.powerState === 'stopped') {
          const history = byMachine.get(`${c.userId} ${c.workstationId}`) ?? [];
          const since = new Date(Math.max(c.since.getTime(), from.getTime()));
          const d = prestartDecision({ demand: userDemand(history, since, c.timeZone), now, lastPrestartAt: c.prestartedAt });
          if (!d.start) {
            this.deps.log.debug({ assignment: c.assignmentId, workstation: c.workstationId, reason: d.reason }, 'no pre-start');
            continue;
          }
          if (await this.#start(c, d.reason)) stats.started++;
        } else if (c.powerState === 'running' && c.prestartedAt && prestartCheckDue(c.prestartedAt, now)) {
          const connectedSince = await this.deps.repo.connectedSince(c.userId, c.workstationId, c.prestartedAt);
          if (prestartUnused({ prestartedAt: c.prestartedAt, connectedSince, now }) && (await this.#stopUnused(c, c.prestartedAt))) stats.stopped++;
        }
      } catch (err) {
        // One machine's cloud error must not hold back the others; the next pass tries again.
        stats.failed++;
        this.deps.log.warn({ err, assignment: c.assignmentId, workstation: c.workstationId }, 'persistent pre-start failed');
      }
    }
    return stats;
  }

  async #start(c: PrestartCandidate, reason: string): Promise<boolean> {
    const r = await this.deps.workstations.powerGuarded(
      systemActor,
      c.workstationId,
      'start',
      async (ws, tx) => {
        if (ws.powerState !== 'stopped') return `the machine is ${ws.powerState}`;
        if (!(await this.deps.repo.stillAssigned(c.assignmentId, c.workstationId, tx))) return 'the assignment ended';
        await this.deps.repo.markPrestarted(c.assignmentId, this.deps.clock.now(), tx);
        return null;
      },
      { details: { reason: `pre-start: ${reason}`, assignment: c.assignmentId } },
    );
    if (r.done) this.deps.log.info({ assignment: c.assignmentId, workstation: c.workstationId, user: c.userId, reason }, 'persistent pre-start: machine started before a likely arrival');
    return r.done;
  }

  async #stopUnused(c: PrestartCandidate, since: Date): Promise<boolean> {
    const reason = `pre-started at ${since.toISOString()} and the user did not come`;
    const r = await this.deps.workstations.powerGuarded(
      systemActor,
      c.workstationId,
      'stop',
      async (ws, tx) => {
        if (ws.powerState !== 'running') return `the machine is ${ws.powerState}`;
        if (!(await this.deps.repo.stillAssigned(c.assignmentId, c.workstationId, tx))) return 'the assignment ended';
        if (await this.deps.repo.connectedSince(c.userId, c.workstationId, since, tx)) return 'the user came';
        if ((await this.deps.repo.liveSessions(c.workstationId, tx)) > 0) return 'a session is live';
        return null;
      },
      { details: { reason: `pre-start unused: ${reason}`, assignment: c.assignmentId } },
    );
    if (r.done) this.deps.log.info({ assignment: c.assignmentId, workstation: c.workstationId, user: c.userId, reason }, 'persistent pre-start: unused machine stopped');
    return r.done;
  }
}
