import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { PowerScheduleRule } from '../../db/schema/policies.ts';
import type { TimerRow } from '../../jobs/timers.repository.ts';
import type { TimerService } from '../../jobs/timers.service.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import type { ConnectionsService, Released } from '../connections/connections.service.ts';
import { systemActor, type Actor } from '../identity/actor.ts';
import type { PowerAction, WorkstationsService } from '../workstations/workstations.service.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';
import { decideFire, FORCED_LOGOUT_KIND, planForcedLogout, trustedSessionState, POWER_TIMER_KINDS, RELEASE_TIMER_KINDS, SCHEDULE_KIND, type PlanAction, type SessionState, type TimerPayload } from './power-plan.ts';
import { nextRuleTime, scheduleTargetOk } from './power-schedule.ts';
import type { PowerRepository } from './power.repository.ts';

const POWER_OF: Record<Exclude<PlanAction, 'none'>, { action: PowerAction; hibernate?: boolean }> = {
  stop: { action: 'stop' },
  hibernate: { action: 'stop', hibernate: true },
  terminate: { action: 'terminate' },
  restart: { action: 'reboot' },
};

export interface PowerTimerDeps {
  db: Db;
  repo: PowerRepository;
  timers: TimerService;
  workstations: WorkstationsService;
  connections: ConnectionsService;
  audit: AuditService;
  clock: Clock;
  log: Logger;
}

/**
 * What the power and release timers do when due. Each handler decides again at fire time, under
 * the machine's row lock (`decideFire`): a machine with a live session is never stopped, and a
 * timer delivered twice (at-least-once) finds the machine already stopping or the assignment
 * already released, and does nothing.
 */
export class PowerTimers {
  constructor(private readonly deps: PowerTimerDeps) {}

  register(): void {
    for (const kind of Object.values(POWER_TIMER_KINDS)) this.deps.timers.handle(kind, (t) => this.firePower(t));
    for (const kind of Object.values(RELEASE_TIMER_KINDS)) this.deps.timers.handle(kind, (t) => this.fireRelease(t));
    this.deps.timers.handle(FORCED_LOGOUT_KIND, (t) => this.fireRelease(t));
    this.deps.timers.handle(SCHEDULE_KIND, (t) => this.fireSchedule(t));
  }

  #actor(reason: string): Actor {
    return { ...systemActor, username: `system:power-plan (${reason})` };
  }

  async firePower(timer: TimerRow): Promise<void> {
    const p = timer.payload as TimerPayload;
    const action = p.action && p.action !== 'none' ? POWER_OF[p.action] : undefined;
    const log = this.deps.log.child({ workstation: p.workstationId, kind: timer.kind });
    if (!action) return;
    let releaseAfter: Released | null = null;
    const result = await this.deps.workstations.powerGuarded(
      this.#actor(p.reason),
      p.workstationId,
      action.action,
      async (ws, tx) => {
        const snap = await this.deps.repo.snapshot(ws, new Date(p.eventAt), this.deps.clock.now(), tx);
        const decision = decideFire(timer.kind, p, snap);
        if (!decision.act) return decision.skip;
        // Terminating a machine ends whatever assignment it still has (it cannot come back).
        if (p.action === 'terminate' && snap.assignment) {
          releaseAfter = await this.deps.connections.releaseAssignmentIn(this.#actor(p.reason), snap.assignment.id, 'workstation-gone', { timer: timer.id }, tx);
        }
        return null;
      },
      { hibernate: action.hibernate, details: { reason: p.reason, timer: timer.id, trigger: p.trigger } },
    );
    if (releaseAfter) this.deps.connections.afterRelease(releaseAfter);
    if (!result.done) {
      log.info({ skipped: result.skipped }, 'power plan: nothing to do');
      await this.deps.audit.record(this.#actor(p.reason), { action: `power_plan.${p.action}`, outcome: 'denied', targetType: 'workstation', targetId: p.workstationId, reason: `skipped: ${result.skipped}`, details: { timer: timer.id, reason: p.reason } });
    } else log.info({ previous: result.previous, current: result.current, reason: p.reason }, 'power plan acted');
  }

  async fireRelease(timer: TimerRow): Promise<void> {
    const p = timer.payload as TimerPayload;
    const actor = this.#actor(p.reason);
    const outcome = await this.deps.db.transaction(async (tx) => {
      const ws = await this.deps.repo.lock(p.workstationId, tx);
      if (!ws) return { skipped: 'the workstation no longer exists' };
      const snap = await this.deps.repo.snapshot(ws, new Date(p.eventAt), this.deps.clock.now(), tx);
      const decision = decideFire(timer.kind, p, snap);
      if (!decision.act) return { skipped: decision.skip };
      const ctx = await this.deps.repo.planContext(ws.id, tx);
      const now = this.deps.clock.now();
      if (ctx.release && timer.kind !== FORCED_LOGOUT_KIND) {
        const forced = planForcedLogout(ctx.release, trustedSessionState(ws.agentSessionState as SessionState, ws.agentLastSeenAt, now), now);
        if (forced.warnUntil) {
          const message = ctx.release.warnMessage ?? `This desktop is being released: you will be logged out at ${forced.warnUntil.toISOString()}. Save your work.`;
          await this.#notice(ws, 'warn', message, forced.warnUntil, tx);
          await this.deps.timers.schedule({ kind: FORCED_LOGOUT_KIND, key: ws.id, dueAt: forced.warnUntil, payload: { ...p, reason: `${p.reason} (forced logout after a ${ctx.release.warnSeconds} s warning)` } }, tx);
          await this.deps.audit.record(actor, { action: 'workstation.logout_warning', outcome: 'success', targetType: 'workstation', targetId: ws.id, reason: p.reason, details: { user: ws.agentSessionUser, logoutAt: forced.warnUntil.toISOString() } }, tx);
          return { warned: true };
        }
        if (forced.logoutNow) await this.#notice(ws, 'logout', 'Logged out: this desktop was released.', now, tx);
      } else if (timer.kind === FORCED_LOGOUT_KIND) {
        await this.#notice(ws, 'logout', 'Logged out: this desktop was released.', now, tx);
      }
      const reason = p.trigger;
      return { released: await this.deps.connections.releaseAssignmentIn(actor, snap.assignment!.id, reason, { timer: timer.id, reason: p.reason }, tx) };
    });
    if ('released' in outcome && outcome.released) this.deps.connections.afterRelease(outcome.released);
    if ('skipped' in outcome) this.deps.log.info({ workstation: p.workstationId, kind: timer.kind, skipped: outcome.skipped }, 'release plan: nothing to do');
  }

  async #notice(ws: WorkstationRow, kind: 'warn' | 'logout', message: string, logoutAt: Date, tx: DbOrTx): Promise<void> {
    const notice = { id: randomUUID(), kind, message, logoutAt: logoutAt.toISOString(), createdAt: this.deps.clock.now().toISOString() };
    await this.deps.repo.updateWorkstation(ws.id, { agentNotice: notice }, tx);
  }

  /* ---------- schedule rules ---------- */

  /**
   * Keep one pending `power.schedule` timer per rule of every power plan, due at the rule's next
   * time. Run by the `power-schedule` job. A rule that changed moves its timer; a removed one
   * cancels it. A timer that is due (firing now) is left alone: it must not be moved under its handler.
   */
  async keepScheduleTimers(): Promise<{ scheduled: number; moved: number; cancelled: number }> {
    const now = this.deps.clock.now();
    const stats = { scheduled: 0, moved: 0, cancelled: 0 };
    const wanted = new Map<string, { dueAt: Date; payload: Record<string, unknown> }>();
    for (const plan of await this.deps.repo.powerPlansWithRules()) {
      plan.scheduleRules.forEach((rule, i) => {
        const dueAt = nextRuleTime(rule, plan.timeZone, now);
        if (dueAt) wanted.set(`${plan.id}:${i}`, { dueAt, payload: { planId: plan.id, rule: i, at: rule.at, days: rule.days, timeZone: plan.timeZone, reason: `schedule: ${rule.days.join(',')} at ${rule.at} ${plan.timeZone} → ${rule.action} (${rule.target})` } });
      });
    }
    const pending = new Map((await this.deps.timers.pending(SCHEDULE_KIND)).map((t) => [t.key, t]));
    for (const [key, t] of pending) {
      if (t.dueAt <= now) continue;
      const w = wanted.get(key);
      if (!w) {
        stats.cancelled += (await this.deps.timers.cancel(SCHEDULE_KIND, key)) ? 1 : 0;
      } else if (w.dueAt.getTime() !== t.dueAt.getTime()) {
        await this.deps.timers.schedule({ kind: SCHEDULE_KIND, key, dueAt: w.dueAt, payload: w.payload });
        stats.moved++;
      }
    }
    for (const [key, w] of wanted) {
      if (pending.has(key)) continue;
      if (await this.deps.timers.scheduleIfAbsent({ kind: SCHEDULE_KIND, key, dueAt: w.dueAt, payload: w.payload })) stats.scheduled++;
    }
    return stats;
  }

  async fireSchedule(timer: TimerRow): Promise<void> {
    const p = timer.payload as { planId: string; rule: number; reason: string };
    const plan = await this.deps.repo.powerPlan(p.planId);
    const rule: PowerScheduleRule | undefined = plan?.scheduleRules[p.rule];
    if (!plan || !rule) return; // the rule is gone; the job cancels nothing that fired
    const action = POWER_OF[rule.action];
    const actor = this.#actor(p.reason);
    let acted = 0;
    for (const id of await this.deps.repo.scheduleCandidates(plan.id)) {
      const r = await this.deps.workstations
        .powerGuarded(
          actor,
          id,
          action.action,
          async (ws, tx) => {
            const sessionState = trustedSessionState(ws.agentSessionState as SessionState, ws.agentLastSeenAt, this.deps.clock.now());
            const check = scheduleTargetOk(rule, { powerState: ws.powerState, assigned: ws.assignmentId !== null, liveSessions: await this.deps.repo.liveSessions(ws.id, tx), sessionState });
            return check.act ? null : check.skip;
          },
          { hibernate: action.hibernate, details: { reason: p.reason, timer: timer.id } },
        )
        .catch((err: unknown) => {
          // One machine's cloud error must not stop the rule for the others; it is logged and audited.
          this.deps.log.warn({ err, workstation: id }, 'schedule rule: power action failed');
          return { done: false as const, skipped: 'error' };
        });
      if (r.done) acted++;
    }
    this.deps.log.info({ plan: plan.id, rule: p.rule, acted }, 'schedule rule fired');
  }
}
