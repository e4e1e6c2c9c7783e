/**
 * Power and release plans as pure functions (no I/O, no clock of their own):
 *
 * - `planActivity`: an activity event + the plans in force → the timers to cancel and to schedule;
 * - `decideFire`: a due timer + what the machine looks like now → act, or skip with the reason.
 *
 * Timer convention (the cost report and "why is it still running?" read these): every timer kind
 * starts with `power.` or `release.`; per-machine timers are keyed by the workstation id and carry
 * `payload.workstationId` and a `payload.reason` in words.
 */

export type Trigger = 'disconnect' | 'logout' | 'idle';
export type PlanAction = 'none' | 'stop' | 'hibernate' | 'terminate' | 'restart';
export type ActivityKind = 'login' | 'logout' | 'lock' | 'unlock' | 'idle' | 'active' | 'disconnect' | 'reconnect' | 'heartbeat';
export type SessionState = 'unknown' | 'none' | 'active' | 'locked' | 'idle' | 'disconnected';

export const POWER_TIMER_KINDS = { disconnect: 'power.disconnect', logout: 'power.logout', idle: 'power.idle' } as const;
export const RELEASE_TIMER_KINDS = { disconnect: 'release.disconnect', logout: 'release.logout', idle: 'release.idle' } as const;
/** After a release plan's warning: log the user out and release the assignment. */
export const FORCED_LOGOUT_KIND = 'release.forced-logout';
/** One per (power plan, schedule rule), keyed `<planId>:<rule index>`: no workstationId (it acts on many). */
export const SCHEDULE_KIND = 'power.schedule';
/** Every per-workstation kind, in the order a reconnect or login cancels them. */
export const WORKSTATION_TIMER_KINDS = [...Object.values(POWER_TIMER_KINDS), ...Object.values(RELEASE_TIMER_KINDS), FORCED_LOGOUT_KIND] as const;

export interface PowerPlanRules {
  onDisconnect: { action: PlanAction; delaySeconds: number };
  onLogout: { action: PlanAction; delaySeconds: number };
  onIdle: { action: PlanAction; delaySeconds: number };
}

export interface ReleasePlanRules {
  releaseOnLogout: boolean;
  releaseAfterDisconnectSeconds: number;
  releaseOnIdleSeconds: number;
  forceLogout: boolean;
  warnSeconds: number;
  warnMessage: string | null;
}

/** The plans that apply to the machine: from the policy of its active (or, when none, its last) assignment. */
export interface PlanContext {
  power: PowerPlanRules | null;
  release: ReleasePlanRules | null;
  /** The active assignment, if any: release plans act only on a floating one. */
  assignment: { id: string; mode: 'floating' | 'persistent' } | null;
}

export interface TimerToSchedule {
  kind: string;
  dueAt: Date;
  payload: TimerPayload;
}

export interface TimerPayload extends Record<string, unknown> {
  workstationId: string;
  reason: string;
  trigger: Trigger;
  /** When the triggering event reached the broker: a session that began after it means the user came back. */
  eventAt: string;
  action?: PlanAction;
  assignmentId?: string;
}

export interface ActivityPlan {
  cancel: string[];
  schedule: TimerToSchedule[];
}

const TRIGGER_OF: Partial<Record<ActivityKind, Trigger>> = { disconnect: 'disconnect', logout: 'logout', idle: 'idle' };
const IDLE_KINDS = [POWER_TIMER_KINDS.idle, RELEASE_TIMER_KINDS.idle, FORCED_LOGOUT_KIND];

/** What an activity event does to a machine's timers. */
export function planActivity(event: ActivityKind, ctx: PlanContext, workstationId: string, now: Date): ActivityPlan {
  switch (event) {
    // The user is back: nothing planned for their absence may happen.
    case 'login':
    case 'reconnect':
      return { cancel: [...WORKSTATION_TIMER_KINDS], schedule: [] };
    case 'active':
    case 'unlock':
      return { cancel: IDLE_KINDS, schedule: [] };
    case 'lock':
    case 'heartbeat':
      return { cancel: [], schedule: [] };
    case 'disconnect':
    case 'logout':
    case 'idle': {
      const trigger = TRIGGER_OF[event]!;
      // A logout ends idleness too: its own plan takes over.
      const cancel = event === 'logout' ? IDLE_KINDS : [];
      return { cancel, schedule: [...powerTimer(trigger, ctx, workstationId, now), ...releaseTimer(trigger, ctx, workstationId, now)] };
    }
  }
}

function powerTimer(trigger: Trigger, ctx: PlanContext, workstationId: string, now: Date): TimerToSchedule[] {
  const rule = ctx.power?.[RULE_OF[trigger]];
  if (!rule || rule.action === 'none' || rule.delaySeconds < 0) return [];
  return [
    {
      kind: POWER_TIMER_KINDS[trigger],
      dueAt: new Date(now.getTime() + rule.delaySeconds * 1000),
      payload: { workstationId, trigger, action: rule.action, eventAt: now.toISOString(), reason: `${trigger} + ${words(rule.delaySeconds)} → ${rule.action}` },
    },
  ];
}

function releaseTimer(trigger: Trigger, ctx: PlanContext, workstationId: string, now: Date): TimerToSchedule[] {
  const plan = ctx.release;
  if (!plan || ctx.assignment?.mode !== 'floating') return [];
  const delay = trigger === 'logout' ? (plan.releaseOnLogout ? 0 : -1) : trigger === 'disconnect' ? plan.releaseAfterDisconnectSeconds : plan.releaseOnIdleSeconds;
  if (delay < 0) return [];
  return [
    {
      kind: RELEASE_TIMER_KINDS[trigger],
      dueAt: new Date(now.getTime() + delay * 1000),
      payload: { workstationId, trigger, assignmentId: ctx.assignment.id, eventAt: now.toISOString(), reason: `${trigger} + ${words(delay)} → release` },
    },
  ];
}

const RULE_OF = { disconnect: 'onDisconnect', logout: 'onLogout', idle: 'onIdle' } as const;

/** `90` → `90 s`, `3600` → `60 min`, `86400` → `24 h`: for reasons people read. */
export function words(seconds: number): string {
  if (seconds % 86400 === 0 && seconds > 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0 && seconds > 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** An agent not heard from for this long no longer vouches for the session state. */
export const AGENT_STALE_MS = 5 * 60_000;

/**
 * The session state a decision may rely on: what the agent reported, unless it went quiet (crashed,
 * uninstalled, machine wedged) — a stale "active" must not keep a machine running for ever.
 */
export function trustedSessionState(state: SessionState, agentLastSeenAt: Date | null, now: Date): SessionState {
  if (!agentLastSeenAt || now.getTime() - agentLastSeenAt.getTime() > AGENT_STALE_MS) return 'unknown';
  return state;
}

/** What the machine looks like when its timer is due, read under its row lock. */
export interface FireSnapshot {
  powerState: string;
  sessionState: SessionState;
  /** Connections the gateway reports connected now. */
  connectedSessions: number;
  /** Live connections requested after the event that scheduled the timer: the user came back. */
  newerConnections: number;
  lastActivityAt: Date | null;
  assignment: { id: string; mode: 'floating' | 'persistent' } | null;
}

export type FireDecision = { act: true } | { act: false; skip: string };

const skip = (why: string): FireDecision => ({ act: false, skip: why });

/**
 * The last word before a power or release action: a machine with a live session is never stopped,
 * whatever the timer says. Idle is the one trigger that acts on a logged-in user: the user is there
 * but has not touched the machine, which is exactly what the idle rule is for.
 */
export function decideFire(kind: string, payload: TimerPayload, s: FireSnapshot): FireDecision {
  const eventAt = new Date(payload.eventAt);
  if (s.newerConnections > 0) return skip('the user connected again after the event');
  if (s.lastActivityAt && s.lastActivityAt > eventAt && payload.trigger !== 'idle') return skip('activity after the event');
  const userThere = s.sessionState === 'active' || s.sessionState === 'locked' || s.sessionState === 'idle';
  switch (payload.trigger) {
    case 'disconnect':
      if (s.connectedSessions > 0) return skip('a session is connected');
      if (s.sessionState === 'active') return skip('the agent reports an active user session');
      break;
    case 'logout':
      if (s.connectedSessions > 0) return skip('a session is connected');
      if (userThere) return skip(`the agent reports a user session (${s.sessionState})`);
      break;
    case 'idle':
      if (s.sessionState === 'active') return skip('the user is active again');
      break;
  }
  if (kind.startsWith('release.')) {
    if (!s.assignment || s.assignment.id !== payload.assignmentId) return skip('the assignment was already released');
    if (s.assignment.mode !== 'floating') return skip('the assignment is persistent');
    return { act: true };
  }
  switch (payload.action) {
    case 'stop':
    case 'hibernate':
    case 'restart':
      return s.powerState === 'running' ? { act: true } : skip(`the machine is ${s.powerState}`);
    case 'terminate':
      return s.powerState === 'terminated' ? skip('the machine is terminated already') : { act: true };
    default:
      return skip('nothing to do');
  }
}

/** Release step of a release plan with a forced logout: warn first when it says so, else log out now. */
export function planForcedLogout(plan: ReleasePlanRules, sessionState: SessionState, now: Date): { warnUntil: Date | null; logoutNow: boolean } {
  const someoneLoggedIn = sessionState === 'active' || sessionState === 'locked' || sessionState === 'idle' || sessionState === 'disconnected';
  if (!plan.forceLogout || !someoneLoggedIn) return { warnUntil: null, logoutNow: false };
  if (plan.warnSeconds > 0) return { warnUntil: new Date(now.getTime() + plan.warnSeconds * 1000), logoutNow: false };
  return { warnUntil: null, logoutNow: true };
}
