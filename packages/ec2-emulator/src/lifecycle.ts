// The instance state machine. Transitions out of the in-between states happen after a
// configured delay; nothing runs a timer — `settle` works out, whenever an instance is
// looked at, which transitions have happened since and when.

import type { Delays, InstanceStateName, StateReason } from './types.ts';

export const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** States in which an instance occupies capacity on a host. */
export const HOLDS_CAPACITY: ReadonlySet<InstanceStateName> = new Set(['pending', 'running', 'stopping', 'shutting-down']);

const HIBERNATING_MS = 20_000;
const RESUME_MS = 2_000;

export const DEFAULT_DELAYS: Delays = {
  pendingMs: 5_000,
  stoppingMs: 10_000,
  shuttingDownMs: 10_000,
  terminatedRetentionMs: 60 * 60 * 1000,
  statusInitializingMs: 0,
  hibernatingMs: HIBERNATING_MS,
  resumeMs: RESUME_MS,
};

/**
 * The delays that apply to an instance that is hibernating or resuming: writing the RAM out takes
 * longer than a shutdown, reading it back is quicker than a boot (and does not vary like one).
 */
export function hibernationDelays(delays: Delays): Delays {
  return {
    ...delays,
    stoppingMs: delays.hibernatingMs ?? HIBERNATING_MS,
    pendingMs: delays.resumeMs ?? RESUME_MS,
    pendingJitterMs: 0,
  };
}

export interface Transition {
  to: InstanceStateName;
  afterMs: number;
}

export function automaticTransition(state: InstanceStateName, delays: Delays): Transition | undefined {
  switch (state) {
    case 'pending':
      return { to: 'running', afterMs: delays.pendingMs + (delays.pendingJitterMs ?? 0) };
    case 'stopping':
      return { to: 'stopped', afterMs: delays.stoppingMs };
    case 'shutting-down':
      return { to: 'terminated', afterMs: delays.shuttingDownMs };
    default:
      return undefined;
  }
}

export interface SettledStep {
  to: InstanceStateName;
  at: number;
}

/** The transitions that have happened by `now` for an instance in `state` since `since`. */
export function pendingSteps(state: InstanceStateName, since: number, now: number, delays: Delays): SettledStep[] {
  const steps: SettledStep[] = [];
  let current = state;
  let at = since;
  for (let next = automaticTransition(current, delays); next; next = automaticTransition(current, delays)) {
    const when = at + Math.max(0, next.afterMs);
    if (when > now) break;
    steps.push({ to: next.to, at: when });
    current = next.to;
    at = when;
  }
  return steps;
}

/**
 * The delays for one instance's current boot: `pendingJitterMs` becomes a fixed extra for this
 * instance and this boot (FNV-1a of its launch order and the boot's start — not of its random id,
 * so a simulation that launches in the same order repeats), and every look sees the same time.
 */
export function delaysFor(delays: Delays, launchSeq: number, stateSince: number): Delays {
  const jitter = delays.pendingJitterMs ?? 0;
  if (jitter <= 0) return delays;
  let h = 0x811c9dc5;
  for (const c of `${launchSeq}@${stateSince}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return { ...delays, pendingJitterMs: h % (Math.floor(jitter) + 1) };
}

/** EC2 writes the UTC time into user-initiated transition reasons. */
export function userInitiatedReason(now: number): string {
  const stamp = new Date(now).toISOString().replace('T', ' ').slice(0, 19);
  return `User initiated (${stamp} GMT)`;
}

export const SHUTDOWN_REASON: StateReason = {
  code: 'Client.UserInitiatedShutdown',
  message: 'Client.UserInitiatedShutdown: User initiated shutdown',
};

export const HIBERNATE_REASON: StateReason = {
  code: 'Client.UserInitiatedHibernate',
  message: 'Client.UserInitiatedHibernate: User initiated hibernate',
};

export const PENDING_REASON: StateReason = { code: 'pending', message: 'pending' };
