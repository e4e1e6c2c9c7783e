import { describe, expect, it } from 'vitest';
import type { PowerState } from '../../src/db/schema/providers.ts';
import { FOLLOW_DEADLINE_MS, judge, planTick, STALE_ANSWER_MS, type Followed } from '../../src/domain/providers/follow-plan.ts';

const T0 = new Date('2026-03-04T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const followed = (id: string, over: Partial<Followed> = {}): Followed => ({ workstationId: id, providerId: 'aws-1', externalId: `i-${id}`, from: 'running', since: T0, ...over });

describe('planTick: which machines to describe', () => {
  it('one batch per provider, every followed machine of it in the batch', () => {
    const plan = planTick([followed('a'), followed('b', { providerId: 'aws-2' }), followed('c'), followed('d')], at(1_500));
    expect([...plan.describe.keys()].sort()).toEqual(['aws-1', 'aws-2']);
    expect(plan.describe.get('aws-1')!.map((f) => f.workstationId)).toEqual(['a', 'c', 'd']);
    expect(plan.describe.get('aws-2')!.map((f) => f.workstationId)).toEqual(['b']);
    expect(plan.expired).toEqual([]);
  });

  it('a machine not settled by the deadline is no longer described (inventory sync takes over)', () => {
    const plan = planTick([followed('old', { since: at(-FOLLOW_DEADLINE_MS) }), followed('young', { since: at(-FOLLOW_DEADLINE_MS + 1) })], T0);
    expect(plan.expired.map((f) => f.workstationId)).toEqual(['old']);
    expect(plan.describe.get('aws-1')!.map((f) => f.workstationId)).toEqual(['young']);
  });

  it('nothing followed: nothing to describe', () => {
    expect(planTick([], T0)).toEqual({ describe: new Map(), expired: [] });
  });
});

describe('judge: what to do with the answer for one machine', () => {
  const rows: { what: string; from: PowerState | null; observed: PowerState | undefined; afterMs: number; apply: boolean; done: boolean }[] = [
    { what: 'a stop still stopping: written, followed on', from: 'running', observed: 'stopping', afterMs: 1_500, apply: true, done: false },
    { what: 'a stop that reached stopped: written, done', from: 'running', observed: 'stopped', afterMs: 3_000, apply: true, done: true },
    { what: 'a start still booting: written, followed on', from: 'stopped', observed: 'pending', afterMs: 1_500, apply: true, done: false },
    { what: 'a start that runs: written, done', from: 'stopped', observed: 'running', afterMs: 20_000, apply: true, done: true },
    { what: 'a launch that runs: written, done', from: null, observed: 'running', afterMs: 1_500, apply: true, done: true },
    { what: 'a launch that died while booting: written, done', from: null, observed: 'terminated', afterMs: 1_500, apply: true, done: true },
    { what: 'a launch not yet visible to describe: nothing written, followed on', from: null, observed: undefined, afterMs: 1_500, apply: false, done: false },
    { what: 'a stale answer (still stopped) right after a start: not written, asked again', from: 'stopped', observed: 'stopped', afterMs: STALE_ANSWER_MS - 1, apply: false, done: false },
    { what: 'a stale answer (still running) right after a stop: not written, asked again', from: 'running', observed: 'running', afterMs: 1_500, apply: false, done: false },
    { what: 'still stopped well after a start (it fell back, e.g. no capacity): written, done', from: 'stopped', observed: 'stopped', afterMs: STALE_ANSWER_MS, apply: true, done: true },
    { what: 'a state the provider cannot name: written, followed on', from: 'running', observed: 'unknown', afterMs: 1_500, apply: true, done: false },
  ];
  it.each(rows)('$what', ({ from, observed, afterMs, apply, done }) => {
    expect(judge(followed('m', { from }), observed, at(afterMs))).toEqual({ apply, done });
  });
});
