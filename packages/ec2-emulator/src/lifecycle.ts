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

export const DEFAULT_DELAYS: Delays = {
  pendingMs: 5_000,
  stoppingMs: 10_000,
  shuttingDownMs: 10_000,
  terminatedRetentionMs: 60 * 60 * 1000,
  statusInitializingMs: 0,
};

export interface Transition {
  to: InstanceStateName;
  afterMs: number;
}

export function automaticTransition(state: InstanceStateName, delays: Delays): Transition | undefined {
  switch (state) {
    case 'pending':
      return { to: 'running', afterMs: delays.pendingMs };
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
