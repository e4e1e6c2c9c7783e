// RunInstances: idempotency by ClientToken, subnet / capacity / address checks, then the
// new reservation in `pending`. Instances become `running` lazily after the pending delay.

import { freeSlots, hasLimitsFor } from '../capacity.ts';
import { Ec2Error, invalidParameterValue } from '../errors.ts';
import { macAddress, randomId } from '../ids.ts';
import { PENDING_REASON } from '../lifecycle.ts';
import type { QueryParams } from '../query.ts';
import { reservationFields } from '../render-instance.ts';
import type { Ec2Store } from '../store.ts';
import type { InstanceRecord, SubnetRecord } from '../types.ts';
import type { ActionContext, ActionDefinition } from './context.ts';
import { readLaunchSpec, resolveGroups } from './launch-spec.ts';
import type { LaunchSpec } from './launch-spec.ts';

/** EC2 lets a retry differ in Region or Availability Zone only; everything else must match. */
const NOT_COMPARED = new Set(['Action', 'Version', 'ClientToken', 'DryRun', 'Placement.AvailabilityZone', 'Placement.AvailabilityZoneId']);

function fingerprint(params: QueryParams): string {
  const compared = [...params.entries()].filter(([key]) => !NOT_COMPARED.has(key) && !key.startsWith('X-Amz-'));
  compared.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return JSON.stringify(compared);
}

function replay(ctx: ActionContext, reservationId: string): string {
  const { store, now } = ctx;
  const ids = store.reservations.get(reservationId)?.instanceIds ?? [];
  const instances = ids.map((id) => store.instance(id, now)).filter((i): i is InstanceRecord => i !== undefined);
  return reservationFields(reservationId, store.accountId, instances, store.region);
}

function fitsIn(ctx: ActionContext, spec: LaunchSpec, subnet: SubnetRecord): number {
  const free = hasLimitsFor(ctx.capacityLimits, subnet.availabilityZone)
    ? freeSlots(ctx.capacityLimits, ctx.store.capacity, subnet.availabilityZone, spec.instanceType)
    : Number.POSITIVE_INFINITY;
  return Math.min(free, ctx.store.ipPool(subnet.subnetId)?.available ?? 0);
}

/** Without a subnet, EC2 picks a default subnet; we take the first that can hold the launch. */
function chooseDefaultSubnet(ctx: ActionContext, spec: LaunchSpec): SubnetRecord {
  const defaults = [...ctx.store.subnets.values()].filter((s) => s.defaultForAz);
  const first = defaults[0];
  if (!first) throw new Ec2Error('VPCIdNotSpecified', 'No default VPC for this user.');
  return defaults.find((s) => fitsIn(ctx, spec, s) >= spec.minCount) ?? first;
}

function capacityError(ctx: ActionContext, spec: LaunchSpec, zone: string): Ec2Error {
  const others = [...new Set([...ctx.store.subnets.values()].map((s) => s.availabilityZone))]
    .filter((z) => z !== zone && freeSlots(ctx.capacityLimits, ctx.store.capacity, z, spec.instanceType) >= spec.minCount)
    .sort();
  const type = spec.instanceType;
  const alternatives = others.length > 0 ? ` or choosing ${others.join(', ')}` : '';
  return new Ec2Error(
    'InsufficientInstanceCapacity',
    `We currently do not have sufficient ${type} capacity in the Availability Zone you requested (${zone}). ` +
      `Our system will be working on provisioning additional capacity. You can currently get ${type} capacity ` +
      `by not specifying an Availability Zone in your request${alternatives}.`,
    500,
  );
}

function launchCount(ctx: ActionContext, spec: LaunchSpec, subnet: SubnetRecord): number {
  const zone = subnet.availabilityZone;
  let count = spec.maxCount;
  if (hasLimitsFor(ctx.capacityLimits, zone)) {
    ctx.store.settleReleasing(ctx.now);
    const free = freeSlots(ctx.capacityLimits, ctx.store.capacity, zone, spec.instanceType);
    if (free < spec.minCount) throw capacityError(ctx, spec, zone);
    count = Math.min(count, free);
  }
  const pool = ctx.store.ipPool(subnet.subnetId);
  const available = pool?.available ?? 0;
  if (available < spec.minCount) {
    throw new Ec2Error(
      'InsufficientFreeAddressesInSubnet',
      `There are not enough free addresses in subnet '${subnet.subnetId}' to satisfy the requested number of instances.`,
    );
  }
  if (spec.privateIpAddress !== undefined && pool) {
    if (!pool.contains(spec.privateIpAddress)) {
      throw invalidParameterValue(`Address ${spec.privateIpAddress} does not fall within the subnet's address range`);
    }
    if (pool.isUsed(spec.privateIpAddress)) {
      throw new Ec2Error('InvalidIPAddress.InUse', `Address ${spec.privateIpAddress} is in use.`);
    }
  }
  return Math.min(count, available);
}

function uniqueId(store: Ec2Store, prefix: string, taken: (id: string) => boolean): string {
  for (;;) {
    const id = randomId(prefix);
    if (!taken(id) && !store.instances.has(id)) return id;
  }
}

export const runInstances: ActionDefinition = {
  mutates: true,
  handle(ctx) {
    const { store, params, now } = ctx;
    const clientToken = params.get('ClientToken') || undefined;
    if (clientToken !== undefined && clientToken.length > 64) {
      throw invalidParameterValue('Value for parameter clientToken is invalid. Length exceeds maximum of 64 characters.');
    }
    const print = fingerprint(params);
    const previous = clientToken === undefined ? undefined : store.clientTokens.get(clientToken);
    if (previous) {
      if (previous.fingerprint !== print) {
        throw new Ec2Error(
          'IdempotentParameterMismatch',
          'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).',
        );
      }
      return replay(ctx, previous.reservationId);
    }

    const spec = readLaunchSpec(store, params);
    const subnet = spec.subnet ?? chooseDefaultSubnet(ctx, spec);
    const groups = resolveGroups(store, spec, subnet);
    const count = launchCount(ctx, spec, subnet);
    const pool = store.ipPool(subnet.subnetId);
    const reservationId = uniqueId(store, 'r', (id) => store.reservations.has(id));
    const instances: InstanceRecord[] = [];
    for (let index = 0; index < count; index++) {
      const ip = spec.privateIpAddress ?? pool?.allocate();
      if (ip === undefined) break;
      const instance: InstanceRecord = {
        seq: store.allocateSeq(),
        instanceId: uniqueId(store, 'i', () => false),
        reservationId,
        imageId: spec.image.imageId,
        instanceType: spec.instanceType,
        subnetId: subnet.subnetId,
        vpcId: subnet.vpcId,
        availabilityZone: subnet.availabilityZone,
        privateIpAddress: ip,
        keyName: spec.keyName,
        userData: spec.userData,
        clientToken,
        iamInstanceProfile: spec.iamInstanceProfile,
        securityGroups: groups,
        tags: spec.tags.instance.map((t) => ({ ...t })),
        state: 'pending',
        stateSince: now,
        launchTime: now,
        amiLaunchIndex: index,
        stateReason: PENDING_REASON,
        stateTransitionReason: '',
        hasRun: false,
        disableApiTermination: spec.disableApiTermination,
        hibernationConfigured: spec.hibernationConfigured,
        architecture: spec.image.architecture,
        platform: spec.image.platform,
        platformDetails: spec.image.platformDetails,
        rootDeviceName: spec.image.rootDeviceName,
        rootVolume: { volumeId: randomId('vol'), tags: spec.tags.volume.map((t) => ({ ...t })), ...spec.rootVolume },
        networkInterface: {
          networkInterfaceId: randomId('eni'),
          macAddress: macAddress(),
          tags: spec.tags.networkInterface.map((t) => ({ ...t })),
        },
      };
      store.addInstance(instance);
      instances.push(instance);
    }
    store.addReservation({ reservationId, ownerId: store.accountId, instanceIds: instances.map((i) => i.instanceId) });
    if (clientToken !== undefined) store.clientTokens.set(clientToken, { reservationId, fingerprint: print });
    return reservationFields(reservationId, store.accountId, instances, store.region);
  },
};
