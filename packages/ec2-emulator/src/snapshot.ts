// The emulator's state as one JSON document, for `statePath` persistence. Indexes are
// not stored; they are rebuilt from the records on load.

import type { EmulatorCore } from './core.ts';
import type {
  CapacityLimit,
  ClientTokenRecord,
  Delays,
  ImageRecord,
  InstanceRecord,
  LaunchTemplateRecord,
  ReservationRecord,
  SecurityGroupRecord,
  SubnetRecord,
  VpcRecord,
} from './types.ts';

export const SNAPSHOT_FORMAT = 'stagedoor-ec2-emulator/1';

export interface Snapshot {
  format: typeof SNAPSHOT_FORMAT;
  region: string;
  accountId: string;
  savedAt: string;
  /** Fast-forwarded time survives a restart, so instances never travel back in time. */
  clockOffsetMs: number;
  delays: Delays;
  capacityLimits: CapacityLimit[];
  refusedAccessKeys: string[];
  vpcs: VpcRecord[];
  subnets: SubnetRecord[];
  securityGroups: SecurityGroupRecord[];
  images: ImageRecord[];
  launchTemplates: LaunchTemplateRecord[];
  reservations: ReservationRecord[];
  instances: InstanceRecord[];
  clientTokens: Array<{ token: string } & ClientTokenRecord>;
}

export function takeSnapshot(core: EmulatorCore): Snapshot {
  const { store } = core;
  store.sweep(core.clock.now());
  return {
    format: SNAPSHOT_FORMAT,
    region: store.region,
    accountId: store.accountId,
    savedAt: new Date(core.clock.now()).toISOString(),
    clockOffsetMs: core.clock.offset,
    delays: { ...store.delays },
    capacityLimits: core.capacityLimits.map((l) => ({ ...l })),
    refusedAccessKeys: [...core.refusedKeys],
    vpcs: [...store.vpcs.values()],
    subnets: [...store.subnets.values()],
    securityGroups: [...store.securityGroups.values()],
    images: [...store.images.values()],
    launchTemplates: [...store.launchTemplates.values()],
    reservations: [...store.reservations.values()],
    instances: [...store.instances.values()].sort((a, b) => a.seq - b.seq),
    clientTokens: [...store.clientTokens].map(([token, record]) => ({ token, ...record })),
  };
}

export function restoreSnapshot(core: EmulatorCore, snapshot: Snapshot): void {
  if (snapshot.format !== SNAPSHOT_FORMAT) {
    throw new Error(`unsupported EC2 emulator state format: ${String(snapshot.format)}`);
  }
  if (snapshot.region !== core.store.region) {
    throw new Error(`the state file is for region ${snapshot.region}, not ${core.store.region}`);
  }
  if (snapshot.accountId !== core.store.accountId) {
    throw new Error(`the state file is for account ${snapshot.accountId}, not ${core.store.accountId}`);
  }
  const { store } = core;
  store.clear();
  core.clock.offset = Math.max(core.clock.offset, snapshot.clockOffsetMs);
  Object.assign(store.settings.delays, snapshot.delays);
  core.capacityLimits = snapshot.capacityLimits;
  core.refusedKeys.clear();
  for (const key of snapshot.refusedAccessKeys) core.refusedKeys.add(key);
  for (const vpc of snapshot.vpcs) store.addVpc(vpc);
  for (const subnet of snapshot.subnets) store.addSubnet(subnet);
  for (const group of snapshot.securityGroups) store.addSecurityGroup(group);
  for (const image of snapshot.images) store.addImage(image);
  for (const template of snapshot.launchTemplates) store.addLaunchTemplate(template);
  for (const reservation of snapshot.reservations) store.addReservation(reservation);
  for (const instance of snapshot.instances) store.addInstance(instance);
  for (const { token, ...record } of snapshot.clientTokens) store.clientTokens.set(token, record);
}
