// The test-facing control surface, used in-process and behind the HTTP control API.

import type { EmulatorCore } from './core.ts';
import { DEMO_AMI_ID } from './defaults.ts';
import type { FaultRuleView } from './faults.ts';
import { seedImage, seedLaunchTemplate, seedSecurityGroup, seedSubnet } from './seeding.ts';
import type {
  CallCounters,
  CapacityLimit,
  Delays,
  FaultSpec,
  ImageRecord,
  ImageSeed,
  InstanceRecord,
  LaunchTemplateRecord,
  LaunchTemplateSeed,
  SecurityGroupRecord,
  SecurityGroupSeed,
  SubnetRecord,
  SubnetSeed,
} from './types.ts';

export interface DefaultNetwork {
  vpcId: string;
  securityGroupId: string;
  subnets: Array<{ subnetId: string; availabilityZone: string; cidrBlock: string }>;
  demoImageId: string;
}

export interface Ec2EmulatorControl {
  /** Emulated time in ms since the epoch. */
  now(): number;
  /** Moves emulated time forward; pending transitions happen as if that time had passed. */
  advanceTime(ms: number): number;
  getDelays(): Delays;
  setDelays(delays: Partial<Delays>): Delays;
  injectFault(fault: FaultSpec): void;
  listFaults(): FaultRuleView[];
  clearFaults(): void;
  setFaultSeed(seed: number): void;
  setCapacity(limits: CapacityLimit[]): void;
  getCapacity(): CapacityLimit[];
  seedImages(images: ImageSeed[]): ImageRecord[];
  seedSubnets(subnets: SubnetSeed[]): SubnetRecord[];
  seedSecurityGroups(groups: SecurityGroupSeed[]): SecurityGroupRecord[];
  seedLaunchTemplates(templates: LaunchTemplateSeed[]): LaunchTemplateRecord[];
  refuseAccessKey(accessKeyId: string): void;
  allowAccessKey(accessKeyId: string): void;
  refusedAccessKeys(): string[];
  callCounts(): CallCounters;
  resetCallCounts(): void;
  /** A fresh account again: default network and AMIs; faults, limits, keys and counters cleared. */
  reset(): void;
  /**
   * Fail (or pass again) an instance's status checks: DescribeInstanceStatus reports `impaired` for
   * the failed ones while it runs, as AWS does for a host fault (system) or a hung OS (instance).
   */
  impairInstance(instanceId: string, checks: { system?: boolean; instance?: boolean } | null): void;
  /** Every instance still visible, settled at the current emulated time. */
  instances(): InstanceRecord[];
  defaultNetwork(): DefaultNetwork;
  /** Writes the state file now (no-op without statePath). */
  flush(): Promise<void>;
  /** Sets a price in the served Price List: Linux, shared tenancy, used capacity, no software (other variants follow). */
  setOnDemandPrice(regionCode: string, instanceType: string, usdPerHour: number): void;
}

const DELAY_KEYS: ReadonlyArray<keyof Delays> = [
  'pendingMs',
  'pendingJitterMs',
  'stoppingMs',
  'shuttingDownMs',
  'terminatedRetentionMs',
  'statusInitializingMs',
  'hibernatingMs',
  'resumeMs',
];

function checkLimits(limits: unknown): CapacityLimit[] {
  if (!Array.isArray(limits)) throw new Error('capacity limits must be an array');
  return limits.map((raw: Partial<CapacityLimit>) => {
    if (typeof raw?.availabilityZone !== 'string') throw new Error('a capacity limit needs an availabilityZone');
    if (!Number.isInteger(raw.max) || (raw.max ?? -1) < 0) throw new Error('a capacity limit needs a max >= 0');
    return { availabilityZone: raw.availabilityZone, instanceType: raw.instanceType, max: raw.max ?? 0 };
  });
}

export function createControl(core: EmulatorCore, flush: () => Promise<void>): Ec2EmulatorControl {
  const { store } = core;
  const changed = <T>(value: T): T => {
    core.notifyChange();
    return value;
  };
  return {
    now: () => core.clock.now(),
    advanceTime: (ms) => changed(core.clock.advance(ms)),
    getDelays: () => ({ ...store.delays }),
    setDelays(delays) {
      for (const key of DELAY_KEYS) {
        const value = delays[key];
        if (value === undefined) continue;
        if (!Number.isFinite(value) || value < 0) throw new Error(`${key} must be a number of ms >= 0`);
        store.delays[key] = value;
      }
      return changed({ ...store.delays });
    },
    injectFault: (fault) => core.faults.add(fault),
    listFaults: () => core.faults.list(),
    clearFaults: () => core.faults.clear(),
    setFaultSeed: (seed) => core.faults.reseed(seed),
    setCapacity(limits) {
      core.capacityLimits = checkLimits(limits);
      core.notifyChange();
    },
    getCapacity: () => core.capacityLimits.map((l) => ({ ...l })),
    seedImages: (images) => changed(images.map((i) => seedImage(store, i))),
    seedSubnets: (subnets) => changed(subnets.map((s) => seedSubnet(store, s))),
    seedSecurityGroups: (groups) => changed(groups.map((g) => seedSecurityGroup(store, g))),
    seedLaunchTemplates: (templates) => changed(templates.map((t) => seedLaunchTemplate(store, t))),
    refuseAccessKey(accessKeyId) {
      core.refusedKeys.add(accessKeyId);
      core.notifyChange();
    },
    allowAccessKey(accessKeyId) {
      core.refusedKeys.delete(accessKeyId);
      core.notifyChange();
    },
    refusedAccessKeys: () => [...core.refusedKeys],
    callCounts: () => structuredClone(core.counters),
    resetCallCounts: () => core.resetCounters(),
    reset: () => core.reset(),
    impairInstance(instanceId, checks) {
      if (!store.instances.has(instanceId)) throw new Error(`no instance ${instanceId}`);
      if (!checks || (!checks.system && !checks.instance)) store.impaired.delete(instanceId);
      else store.impaired.set(instanceId, { system: checks.system ?? false, instance: checks.instance ?? false });
      core.notifyChange();
    },
    instances: () => [...store.scan(core.clock.now())].map((i) => structuredClone(i)),
    defaultNetwork() {
      const vpc = [...store.vpcs.values()].find((v) => v.isDefault);
      const vpcId = vpc?.vpcId ?? '';
      return {
        vpcId,
        securityGroupId: store.defaultSecurityGroup(vpcId)?.groupId ?? '',
        subnets: [...store.subnets.values()]
          .filter((s) => s.defaultForAz)
          .map((s) => ({ subnetId: s.subnetId, availabilityZone: s.availabilityZone, cidrBlock: s.cidrBlock })),
        demoImageId: DEMO_AMI_ID,
      };
    },
    flush,
    setOnDemandPrice: (regionCode, instanceType, usdPerHour) => core.pricing.setOnDemandPrice(regionCode, instanceType, usdPerHour),
  };
}
