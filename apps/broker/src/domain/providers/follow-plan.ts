import type { PowerState } from '../../db/schema/providers.ts';

/**
 * The power follower's decisions, as pure functions of (what is followed, what the cloud said,
 * the clock): which machines to describe on a tick, whether to write an answer, when to stop.
 * No I/O here; `power-follow.ts` carries them out. Table tests: `test/providers/follow-plan.test.ts`.
 */

/** Time between two describes of the machines being followed. */
export const FOLLOW_INTERVAL_MS = 1_500;
/** A machine not settled this long after its operation is left to inventory sync and the reconciler. */
export const FOLLOW_DEADLINE_MS = 10 * 60_000;
/**
 * EC2 is eventually consistent: a describe right after StartInstances may still say `stopped`. An
 * answer that repeats the state from before the operation, this soon after it, is not written.
 */
export const STALE_ANSWER_MS = 5_000;
/** States a machine stays in until someone acts on it; the in-between ones (pending, stopping) are followed. */
export const SETTLED_STATES: readonly PowerState[] = ['running', 'stopped', 'terminated'];

export const isSettled = (state: PowerState): boolean => SETTLED_STATES.includes(state);

/** One machine whose state is moving after an operation (a power action, a launch). */
export interface Followed {
  workstationId: string;
  providerId: string;
  externalId: string;
  /** The state before the operation; null when unknown or for a launch (nothing came before it). */
  from: PowerState | null;
  /** When the operation was made: the stale-answer window and the deadline count from here. */
  since: Date;
}

export interface TickPlan {
  /** Per provider, the machines to describe in this tick (one DescribeInstances per 200 of them). */
  describe: Map<string, Followed[]>;
  /** Past the deadline: no longer followed. */
  expired: Followed[];
}

export function planTick(followed: Iterable<Followed>, now: Date): TickPlan {
  const plan: TickPlan = { describe: new Map(), expired: [] };
  for (const f of followed) {
    if (now.getTime() - f.since.getTime() >= FOLLOW_DEADLINE_MS) {
      plan.expired.push(f);
      continue;
    }
    const list = plan.describe.get(f.providerId);
    if (list) list.push(f);
    else plan.describe.set(f.providerId, [f]);
  }
  return plan;
}

export interface Verdict {
  /** Write the answer (as inventory sync would). */
  apply: boolean;
  /** Stop following this machine. */
  done: boolean;
}

/**
 * What to do with the cloud's answer for one followed machine (`observed` undefined: the instance
 * was not in the answer — just launched and not yet visible everywhere, or long gone; either way
 * nothing is written, and the deadline or inventory sync settles it).
 */
export function judge(f: Followed, observed: PowerState | undefined, now: Date): Verdict {
  if (observed === undefined) return { apply: false, done: false };
  const stale = observed === f.from && isSettled(observed) && now.getTime() - f.since.getTime() < STALE_ANSWER_MS;
  if (stale) return { apply: false, done: false };
  return { apply: true, done: isSettled(observed) };
}
