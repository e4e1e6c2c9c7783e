import type { AgentEvent, AgentReport as AgentReportSchema, AgentReportResult } from '@stagedoor/contract';
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../../db/database.ts';
import type { AgentNotice } from '../../db/schema/providers.ts';
import type { TimerService } from '../../jobs/timers.service.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { NotFoundError, UnauthenticatedError } from '../errors.ts';
import { systemActor, type Actor } from '../identity/actor.ts';
import { hashToken } from '../identity/tokens.ts';
import type { SessionEvent } from '../gateways/types.ts';
import { newAgentToken } from '../pools/launch-spec.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';
import { planActivity, type ActivityKind, type SessionState } from './power-plan.ts';
import type { PowerRepository } from './power.repository.ts';

type Report = z.output<typeof AgentReportSchema>;

/** The session state an event leaves the machine in (heartbeat: unchanged). */
const STATE_AFTER: Record<ActivityKind, SessionState | null> = {
  login: 'active',
  unlock: 'active',
  active: 'active',
  reconnect: 'active',
  logout: 'none',
  lock: 'locked',
  idle: 'idle',
  disconnect: 'disconnected',
  heartbeat: null,
};

export interface ActivityDeps {
  db: Db;
  repo: PowerRepository;
  timers: TimerService;
  audit: AuditService;
  clock: Clock;
  log: Logger;
  heartbeatSeconds: number;
}

/**
 * Activity events — from the agent on the machine and from the gateways' session reports — turned
 * into the machine's session state, audit rows and power/release timers (`planActivity`). Each
 * report is one transaction with the machine's row locked, so concurrent reports about one machine
 * apply in order and a timer firing at that moment sees one or the other.
 */
export class ActivityService {
  constructor(private readonly deps: ActivityDeps) {}

  /** The workstation an agent token belongs to, or a 401: a token can only ever name its own machine. */
  async authenticateAgent(token: string): Promise<WorkstationRow> {
    const ws = token.startsWith('sda_') ? await this.deps.repo.findByAgentTokenHash(hashToken(token)) : undefined;
    if (!ws) throw new UnauthenticatedError('the agent token is unknown or was rotated: give the agent the workstation\'s current token');
    return ws;
  }

  /** Apply one agent report (a batch of events, possibly queued through an outage). */
  async agentReport(ws: WorkstationRow, report: Report, sourceAddress: string | null): Promise<AgentReportResult> {
    const actor: Actor = { ...systemActor, username: `agent:${ws.name}`, sourceAddress, via: 'token' };
    const events = report.events.length ? report.events : [{ type: 'heartbeat' as const }];
    const row = await this.deps.db.transaction(async (tx) => {
      let current = await this.deps.repo.lock(ws.id, tx);
      if (!current) throw new NotFoundError('workstation', ws.id);
      for (const e of events) current = await this.#apply(actor, current, e, tx);
      const now = this.deps.clock.now();
      await this.deps.repo.updateWorkstation(ws.id, { agentLastSeenAt: now, agentVersion: report.agentVersion, health: 'healthy', healthSource: 'agent', healthCheckedAt: now }, tx);
      return current;
    });
    return {
      workstationId: row.id,
      workstationName: row.name,
      sessionState: row.agentSessionState as SessionState,
      accepted: report.events.length,
      heartbeatSeconds: this.deps.heartbeatSeconds,
      notice: row.agentNotice ?? null,
    };
  }

  async #apply(actor: Actor, ws: WorkstationRow, e: AgentEvent, tx: DbOrTx): Promise<WorkstationRow> {
    const now = this.deps.clock.now();
    const kind = e.type;
    const before = ws.agentSessionState as SessionState;
    // A heartbeat tells a machine with no known state whether someone is logged in (its `user`).
    const after = STATE_AFTER[kind] ?? (before === 'unknown' && e.user !== undefined ? (e.user ? 'active' : 'none') : before);
    const user = kind === 'logout' ? null : (e.user ?? ws.agentSessionUser);
    const patch: Partial<WorkstationRow> = { agentSessionState: after, agentSessionUser: user, updatedAt: now };
    if (kind === 'idle') {
      patch.agentIdleSeconds = e.idleSeconds ?? 0;
      patch.lastActivityAt = new Date(now.getTime() - (e.idleSeconds ?? 0) * 1000);
    } else if (after === 'active') {
      patch.agentIdleSeconds = null;
      patch.lastActivityAt = now;
    }
    // A user who is back (or gone) no longer needs the release plan's warning.
    if (kind === 'login' || kind === 'reconnect' || kind === 'active' || kind === 'unlock' || (kind === 'logout' && ws.agentNotice?.kind === 'logout')) patch.agentNotice = null;
    await this.deps.repo.updateWorkstation(ws.id, patch, tx);
    // Repeats (the same idle minute after minute, a heartbeat) change no timer and write no audit row.
    const transition = kind !== 'heartbeat' && (after !== before || kind === 'login' || kind === 'logout');
    if (transition) {
      await this.#timers(kind, ws.id, tx, { source: 'agent', user });
      await this.deps.audit.record(actor, {
        action: `workstation.session_${kind}`,
        outcome: 'success',
        targetType: 'workstation',
        targetId: ws.id,
        details: { name: ws.name, user, from: before, to: after, ...(e.idleSeconds !== undefined ? { idleSeconds: e.idleSeconds } : {}), ...(e.session ? { session: e.session } : {}), ...(e.at ? { agentAt: e.at } : {}) },
      }, tx);
    }
    return { ...ws, ...patch } as WorkstationRow;
  }

  /** Cancel and schedule the machine's timers for one event, in the caller's transaction. */
  async #timers(kind: ActivityKind, workstationId: string, tx: DbOrTx, info: Record<string, unknown>): Promise<void> {
    const now = this.deps.clock.now();
    const ctx = await this.deps.repo.planContext(workstationId, tx);
    const plan = planActivity(kind, ctx, workstationId, now);
    const cancelled = await this.deps.timers.cancelKinds(plan.cancel, workstationId, tx);
    for (const t of plan.schedule) await this.deps.timers.schedule({ kind: t.kind, key: workstationId, dueAt: t.dueAt, payload: { ...t.payload, ...info } }, tx);
    if (cancelled.length || plan.schedule.length) {
      this.deps.log.info({ workstation: workstationId, event: kind, cancelled: cancelled.map((c) => c.kind), scheduled: plan.schedule.map((t) => ({ kind: t.kind, dueAt: t.dueAt.toISOString() })) }, 'activity: timers');
    }
  }

  /**
   * A gateway session began or ended (after its commit). A new session is a reconnect; the end of
   * the last connected session on the machine is a disconnect. With an agent installed, its own
   * reports refine this (a disconnect of the transport is not a logout of the user).
   */
  async sessionEvent(event: SessionEvent): Promise<void> {
    const ctx = await this.deps.repo.connectionContext(event.connectionId);
    if (!ctx) return;
    // Delivery is at least once and not in order (each event is its own outbox timer, fired by
    // whichever node gets to it): a start delivered after its session ended, or delivered again,
    // would cancel the disconnect's stop and release timers. Only a session still connected counts.
    if (event.type === 'started' && !ctx.connected) return;
    if (event.type === 'ended' && ctx.otherConnected > 0) return;
    const kind: ActivityKind = event.type === 'started' ? 'reconnect' : 'disconnect';
    await this.deps.db.transaction(async (tx) => {
      const ws = await this.deps.repo.lock(ctx.workstationId, tx);
      if (!ws) return;
      const now = this.deps.clock.now();
      const patch: Partial<WorkstationRow> = { lastActivityAt: kind === 'reconnect' ? now : ws.lastActivityAt, updatedAt: now };
      if (kind === 'reconnect') patch.agentNotice = null;
      await this.deps.repo.updateWorkstation(ws.id, patch, tx);
      await this.#timers(kind, ws.id, tx, { source: 'gateway', connectionId: event.connectionId });
    });
  }

  /** Set (or clear) what the agent must tell its user; release timers use it. */
  async setNotice(workstationId: string, notice: AgentNotice | null, tx: DbOrTx): Promise<void> {
    await this.deps.repo.updateWorkstation(workstationId, { agentNotice: notice, updatedAt: this.deps.clock.now() }, tx);
  }

  /**
   * A new agent token for a machine (static hosts, or a lost one): the old token stops working at
   * once. Shown once; only its SHA-256 is kept.
   */
  async rotateAgentToken(actor: Actor, workstationId: string): Promise<{ workstationId: string; token: string }> {
    const { token, hash } = newAgentToken();
    await this.deps.db.transaction(async (tx) => {
      const ws = await this.deps.repo.lock(workstationId, tx);
      if (!ws) throw new NotFoundError('workstation', workstationId);
      await this.deps.repo.updateWorkstation(workstationId, { agentTokenHash: hash, updatedAt: this.deps.clock.now() }, tx);
      await this.deps.audit.record(actor, { action: 'workstation.agent_token', outcome: 'success', targetType: 'workstation', targetId: workstationId, details: { name: ws.name, rotated: ws.agentTokenHash !== null } }, tx);
    });
    return { workstationId, token };
  }
}
