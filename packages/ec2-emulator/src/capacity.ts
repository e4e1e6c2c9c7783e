// Per-AZ (optionally per-type) capacity. Counts of instances holding capacity are kept
// incrementally as states change, so a launch checks its limit without scanning every
// instance; only instances on their way out (stopping, shutting-down) are settled first.

import type { CapacityLimit, InstanceRecord } from './types.ts';

export class CapacityIndex {
  private readonly byAz = new Map<string, number>();
  private readonly byAzType = new Map<string, number>();
  /** Instances in stopping / shutting-down: they stop holding capacity once settled. */
  readonly releasing = new Set<InstanceRecord>();

  add(instance: InstanceRecord): void {
    this.bump(instance, 1);
  }

  remove(instance: InstanceRecord): void {
    this.bump(instance, -1);
  }

  holding(availabilityZone: string, instanceType?: string): number {
    if (instanceType === undefined) return this.byAz.get(availabilityZone) ?? 0;
    return this.byAzType.get(`${availabilityZone}|${instanceType}`) ?? 0;
  }

  clear(): void {
    this.byAz.clear();
    this.byAzType.clear();
    this.releasing.clear();
  }

  private bump(instance: InstanceRecord, delta: number): void {
    const az = instance.availabilityZone;
    const typeKey = `${az}|${instance.instanceType}`;
    this.byAz.set(az, (this.byAz.get(az) ?? 0) + delta);
    this.byAzType.set(typeKey, (this.byAzType.get(typeKey) ?? 0) + delta);
  }
}

/** How many more instances of `instanceType` fit in `availabilityZone` under the limits. */
export function freeSlots(
  limits: readonly CapacityLimit[],
  index: CapacityIndex,
  availabilityZone: string,
  instanceType: string,
): number {
  let free = Number.POSITIVE_INFINITY;
  for (const limit of limits) {
    if (limit.availabilityZone !== availabilityZone) continue;
    if (limit.instanceType !== undefined && limit.instanceType !== instanceType) continue;
    const used = index.holding(availabilityZone, limit.instanceType);
    free = Math.min(free, Math.max(0, limit.max - used));
  }
  return free;
}

export function hasLimitsFor(limits: readonly CapacityLimit[], availabilityZone: string): boolean {
  return limits.some((l) => l.availabilityZone === availabilityZone);
}
