import type { PowerScheduleRule } from '../../db/schema/policies.ts';
import { localTime } from '../pools/schedule.ts';

const MINUTE = 60_000;

/**
 * The first moment strictly after `after` at which the rule's local time (`HH:MM` on one of its
 * days, in `timeZone`) comes round. Pure. Walks in jumps (to the target minute, or to the next
 * local midnight), so it needs a handful of steps; a time skipped by a DST change that day is
 * skipped by the rule too.
 */
export function nextRuleTime(rule: Pick<PowerScheduleRule, 'days' | 'at'>, timeZone: string, after: Date): Date | null {
  if (rule.days.length === 0) return null;
  const target = Number(rule.at.slice(0, 2)) * 60 + Number(rule.at.slice(3, 5));
  let t = Math.floor(after.getTime() / MINUTE) * MINUTE + MINUTE;
  // A jump across a DST change lands an hour off; step back once per day (not past `after`).
  let corrected = false;
  for (let step = 0; step < 64; step++) {
    const local = localTime(new Date(t), timeZone);
    const onDay = rule.days.includes(local.day);
    if (onDay && local.minutes === target) return new Date(t);
    if (onDay && local.minutes < target) {
      t += (target - local.minutes) * MINUTE;
      continue;
    }
    const back = (local.minutes - target) * MINUTE;
    if (onDay && !corrected && t - back > after.getTime()) {
      t -= back;
      corrected = true;
      continue;
    }
    corrected = false;
    t += (1440 - local.minutes) * MINUTE;
  }
  return null;
}

/** Which machines a fired schedule rule acts on (decided again per machine under its row lock). */
export function scheduleTargetOk(
  rule: Pick<PowerScheduleRule, 'target' | 'action'>,
  m: { powerState: string; assigned: boolean; liveSessions: number; sessionState: string },
): { act: true } | { act: false; skip: string } {
  if (rule.action === 'terminate' ? m.powerState === 'terminated' : m.powerState !== 'running') return { act: false, skip: `the machine is ${m.powerState}` };
  if (m.liveSessions > 0) return { act: false, skip: 'a session is live' };
  if (['active', 'locked', 'idle'].includes(m.sessionState)) return { act: false, skip: `the agent reports a user session (${m.sessionState})` };
  if (rule.target === 'unassigned' && m.assigned) return { act: false, skip: 'the machine is assigned' };
  return { act: true };
}
