// Injected failures. Count rules ("fail the next 2 RunInstances") make tests exact; rate
// rules draw from a seeded generator, so even a probabilistic run repeats exactly.

import { faultError } from './errors.ts';
import type { Ec2Error } from './errors.ts';
import type { FaultSpec } from './types.ts';

interface FaultRule {
  action: string;
  code: string;
  message?: string;
  status?: number;
  remaining?: number;
  rate?: number;
}

export interface FaultRuleView extends FaultRule {
  kind: 'count' | 'rate';
}

/** mulberry32: tiny, fast and good enough to spread injected faults. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultInjector {
  private rules: FaultRule[] = [];
  private random: () => number;

  constructor(seed = 0x5eed) {
    this.random = seededRandom(seed);
  }

  add(spec: FaultSpec): void {
    if (!spec.code) throw new Error('a fault needs a code');
    const action = spec.action ?? '*';
    if (spec.rate !== undefined) {
      if (!(spec.rate >= 0 && spec.rate <= 1)) throw new Error('fault rate must be between 0 and 1');
      this.rules.push({ action, code: spec.code, message: spec.message, status: spec.status, rate: spec.rate });
      return;
    }
    const count = spec.count ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new Error('fault count must be a positive integer');
    this.rules.push({ action, code: spec.code, message: spec.message, status: spec.status, remaining: count });
  }

  clear(): void {
    this.rules = [];
  }

  reseed(seed: number): void {
    this.random = seededRandom(seed);
  }

  list(): FaultRuleView[] {
    return this.rules.map((r) => ({ ...r, kind: r.rate === undefined ? 'count' : 'rate' }));
  }

  /** The fault this call suffers, if any. Count rules are used up before rates are drawn. */
  next(action: string): Ec2Error | undefined {
    const applies = (r: FaultRule): boolean => r.action === '*' || r.action === action;
    const counted = this.rules.find((r) => r.remaining !== undefined && r.remaining > 0 && applies(r));
    if (counted && counted.remaining !== undefined) {
      counted.remaining--;
      if (counted.remaining === 0) this.rules = this.rules.filter((r) => r !== counted);
      return faultError(counted.code, counted.message, counted.status);
    }
    for (const rule of this.rules) {
      if (rule.rate !== undefined && applies(rule) && this.random() < rule.rate) {
        return faultError(rule.code, rule.message, rule.status);
      }
    }
    return undefined;
  }
}
