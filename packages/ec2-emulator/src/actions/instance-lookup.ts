// Reading `InstanceId.N` the way EC2 does: malformed ids are rejected before anything is
// looked up, and every unknown id is named in a single NotFound error.

import { instancesNotFound, invalidParameterCombination, malformedId } from '../errors.ts';
import { STATE_CODES } from '../lifecycle.ts';
import { isWellFormedId } from '../ids.ts';
import type { FieldMap } from '../filters.ts';
import type { QueryParams } from '../query.ts';
import type { Ec2Store } from '../store.ts';
import type { InstanceRecord } from '../types.ts';

export function checkInstanceIds(ids: readonly string[]): void {
  for (const id of ids) if (!isWellFormedId('i', id)) throw malformedId('InvalidInstanceID.Malformed', id);
}

/** The instances named by `ids` (deduplicated, in request order), settled at `now`. */
export function findInstances(store: Ec2Store, ids: readonly string[], now: number): InstanceRecord[] {
  checkInstanceIds(ids);
  const unique = [...new Set(ids)];
  const found: InstanceRecord[] = [];
  const missing: string[] = [];
  for (const id of unique) {
    const instance = store.instance(id, now);
    if (instance) found.push(instance);
    else missing.push(id);
  }
  if (missing.length > 0) throw instancesNotFound(missing);
  return found;
}

/** State-change actions need at least one instance id. */
export function requireInstances(store: Ec2Store, params: QueryParams, now: number): InstanceRecord[] {
  const ids = params.list('InstanceId');
  if (ids.length === 0) throw invalidParameterCombination('No instances specified');
  return findInstances(store, ids, now);
}

export function instanceFilterFields(ownerId: string): FieldMap<InstanceRecord> {
  const groupIds = (i: InstanceRecord): string[] => i.securityGroups.map((g) => g.groupId);
  const groupNames = (i: InstanceRecord): string[] => i.securityGroups.map((g) => g.groupName);
  return {
    'instance-id': (i) => i.instanceId,
    'instance-state-name': (i) => i.state,
    'instance-state-code': (i) => String(STATE_CODES[i.state]),
    'instance-type': (i) => i.instanceType,
    'availability-zone': (i) => i.availabilityZone,
    'subnet-id': (i) => i.subnetId,
    'vpc-id': (i) => i.vpcId,
    'image-id': (i) => i.imageId,
    'key-name': (i) => i.keyName,
    'private-ip-address': (i) => (i.state === 'terminated' ? undefined : i.privateIpAddress),
    'reservation-id': (i) => i.reservationId,
    'client-token': (i) => i.clientToken,
    'owner-id': () => ownerId,
    architecture: (i) => i.architecture,
    platform: (i) => i.platform,
    'platform-details': (i) => i.platformDetails,
    'root-device-type': () => 'ebs',
    'root-device-name': (i) => i.rootDeviceName,
    'ami-launch-index': (i) => String(i.amiLaunchIndex),
    'launch-time': (i) => new Date(i.launchTime).toISOString(),
    'iam-instance-profile.arn': (i) => i.iamInstanceProfile?.arn,
    'iam-instance-profile.id': (i) => i.iamInstanceProfile?.id,
    'instance.group-id': groupIds,
    'instance.group-name': groupNames,
    'group-id': groupIds,
    'group-name': groupNames,
    'network-interface.network-interface-id': (i) => i.networkInterface.networkInterfaceId,
    'network-interface.subnet-id': (i) => i.subnetId,
    'network-interface.vpc-id': (i) => i.vpcId,
    'network-interface.addresses.private-ip-address': (i) => i.privateIpAddress,
    'block-device-mapping.volume-id': (i) => i.rootVolume.volumeId,
    'block-device-mapping.device-name': (i) => i.rootDeviceName,
    'hibernation-options.configured': (i) => String(i.hibernationConfigured),
    'state-reason-code': (i) => i.stateReason?.code,
    'tenancy': () => 'default',
  };
}
