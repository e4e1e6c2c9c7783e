// Turns a RunInstances request (plus an optional launch template) into a validated
// launch spec: which image, subnet, groups and tags, checked the way EC2 checks them.

import { Ec2Error, invalidParameterValue, malformedId, missingParameter } from '../errors.ts';
import { checkHibernationAtLaunch, rootSnapshotGiB } from '../hibernation.ts';
import type { RootVolume } from '../hibernation.ts';
import { instanceProfileId, isWellFormedId } from '../ids.ts';
import type { QueryParams } from '../query.ts';
import type { Ec2Store } from '../store.ts';
import { validateTags } from '../tag-rules.ts';
import type { GroupRef, ImageRecord, SubnetRecord, Tag } from '../types.ts';
import { resolveLaunchTemplate } from './launch-templates.ts';
import type { ResolvedTemplate } from './launch-templates.ts';

export interface LaunchSpec {
  image: ImageRecord;
  instanceType: string;
  minCount: number;
  maxCount: number;
  /** Set when the caller chose the subnet (directly, via the template or via an AZ). */
  subnet?: SubnetRecord;
  requestedZone?: string;
  groupIds: string[];
  groupNames: string[];
  keyName?: string;
  userData?: string;
  iamInstanceProfile?: { arn: string; id: string };
  privateIpAddress?: string;
  disableApiTermination: boolean;
  hibernationConfigured: boolean;
  rootVolume: RootVolume;
  tags: { instance: Tag[]; volume: Tag[]; networkInterface: Tag[] };
  template?: ResolvedTemplate;
}

const TAGGABLE_ON_LAUNCH = new Set(['instance', 'volume', 'network-interface', 'spot-instances-request', 'elastic-gpu']);
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function readCount(params: QueryParams, name: 'MinCount' | 'MaxCount'): number {
  const value = params.int(name);
  if (value === undefined) throw missingParameter(name);
  if (value < 1) {
    throw invalidParameterValue(`Value (${value}) for parameter ${name.charAt(0).toLowerCase()}${name.slice(1)} is invalid. Expecting a value greater than 0.`);
  }
  return value;
}

function findImage(store: Ec2Store, imageId: string): ImageRecord {
  if (!isWellFormedId('ami', imageId)) throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${imageId}" (expecting "ami-...")`);
  const image = store.images.get(imageId);
  if (!image) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  return image;
}

function zoneExists(store: Ec2Store, zone: string): boolean {
  for (const subnet of store.subnets.values()) if (subnet.availabilityZone === zone) return true;
  return false;
}

function resolveSubnet(store: Ec2Store, subnetId: string | undefined, zone: string | undefined): SubnetRecord | undefined {
  if (zone !== undefined && !zoneExists(store, zone)) throw invalidParameterValue(`Invalid availability zone: [${zone}]`);
  if (subnetId !== undefined) {
    const subnet = store.subnets.get(subnetId);
    if (!subnet) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`);
    if (zone !== undefined && zone !== subnet.availabilityZone) {
      throw invalidParameterValue(
        `The Availability Zone ${zone} does not match the Availability Zone of subnet ${subnetId} (${subnet.availabilityZone}).`,
      );
    }
    return subnet;
  }
  if (zone === undefined) return undefined;
  for (const subnet of store.subnets.values()) if (subnet.defaultForAz && subnet.availabilityZone === zone) return subnet;
  throw invalidParameterValue(`No default subnet for availability zone: '${zone}'.`);
}

function resolveProfile(name: string | undefined, arn: string | undefined, accountId: string): LaunchSpec['iamInstanceProfile'] {
  if (arn !== undefined) {
    if (!/^arn:aws[a-z-]*:iam::\d{12}:instance-profile\/.+$/.test(arn)) {
      throw invalidParameterValue(`Value (${arn}) for parameter iamInstanceProfile.arn is invalid. Invalid ARN`);
    }
    return { arn, id: instanceProfileId(arn) };
  }
  if (name === undefined) return undefined;
  if (name === '') throw invalidParameterValue('Value () for parameter iamInstanceProfile.name is invalid.');
  const profileArn = `arn:aws:iam::${accountId}:instance-profile/${name}`;
  return { arn: profileArn, id: instanceProfileId(profileArn) };
}

function readTags(params: QueryParams, template: ResolvedTemplate | undefined): LaunchSpec['tags'] {
  const byType = new Map<string, Map<string, string>>();
  const add = (type: string, tags: readonly Tag[]): void => {
    if (!TAGGABLE_ON_LAUNCH.has(type)) {
      throw invalidParameterValue(`'${type}' is not a valid taggable resource type for this operation.`);
    }
    validateTags(tags);
    let map = byType.get(type);
    if (!map) byType.set(type, (map = new Map()));
    for (const tag of tags) map.set(tag.key, tag.value);
  };
  for (const spec of template?.data.tagSpecifications ?? []) add(spec.resourceType, spec.tags);
  for (const spec of params.structs('TagSpecification')) {
    const type = spec.get('ResourceType');
    if (!type) throw missingParameter('TagSpecification.N.ResourceType');
    const tags = spec.tags();
    if (tags.length === 0) throw invalidParameterValue('Tag specification must have at least one tag');
    add(type, tags);
  }
  const list = (type: string): Tag[] => [...(byType.get(type) ?? [])].map(([key, value]) => ({ key, value }));
  const instance = list('instance');
  if (template) {
    // EC2 marks instances launched from a template with these AWS-reserved tags.
    instance.push({ key: 'aws:ec2launchtemplate:id', value: template.template.launchTemplateId });
    instance.push({ key: 'aws:ec2launchtemplate:version', value: String(template.versionNumber) });
  }
  return { instance, volume: list('volume'), networkInterface: list('network-interface') };
}

/** The root EBS volume: the image's snapshot, resized or encrypted by a BlockDeviceMapping for its device. */
function readRootVolume(params: QueryParams, image: ImageRecord): RootVolume {
  const snapshotGiB = rootSnapshotGiB(image);
  const mapping = params.structs('BlockDeviceMapping').find((m) => m.get('DeviceName') === image.rootDeviceName);
  const sizeGiB = mapping?.int('Ebs.VolumeSize') ?? snapshotGiB;
  if (sizeGiB < snapshotGiB) {
    throw new Ec2Error('InvalidBlockDeviceMapping', `Volume of size ${sizeGiB}GB is smaller than snapshot, expect size >= ${snapshotGiB}GB`);
  }
  // An encrypted snapshot gives an encrypted volume whatever the mapping says; otherwise the mapping decides.
  const encrypted = image.rootEncrypted === true || mapping?.bool('Ebs.Encrypted') === true;
  return { sizeGiB, encrypted };
}

export function readLaunchSpec(store: Ec2Store, params: QueryParams): LaunchSpec {
  const template = resolveLaunchTemplate(store, params);
  const lt = template?.data;
  const minCount = readCount(params, 'MinCount');
  const maxCount = readCount(params, 'MaxCount');
  if (minCount > maxCount) {
    throw invalidParameterValue(`Value (${minCount}) for parameter minCount is invalid. Expecting a value less than or equal to maxCount.`);
  }
  const imageId = params.get('ImageId') ?? lt?.imageId;
  if (!imageId) throw missingParameter('ImageId');
  const image = findImage(store, imageId);
  // EC2's documented default when no type is given.
  const instanceType = params.get('InstanceType') ?? lt?.instanceType ?? 'm1.small';
  if (!INSTANCE_TYPE.test(instanceType)) throw invalidParameterValue(`Invalid value '${instanceType}' for InstanceType.`);
  const requestedZone = params.get('Placement.AvailabilityZone') || undefined;
  const subnet = resolveSubnet(store, params.get('SubnetId') ?? lt?.subnetId, requestedZone);
  const requestGroupIds = params.list('SecurityGroupId');
  const groupIds = requestGroupIds.length > 0 ? requestGroupIds : (lt?.securityGroupIds ?? []);
  for (const id of groupIds) if (!isWellFormedId('sg', id)) throw malformedId('InvalidGroupId.Malformed', id);
  const userData = params.get('UserData') ?? lt?.userData;
  if (userData !== undefined && (userData.length % 4 !== 0 || !BASE64.test(userData))) {
    throw invalidParameterValue('Invalid BASE64 encoding of user data.');
  }
  const rootVolume = readRootVolume(params, image);
  const hibernationConfigured = params.bool('HibernationOptions.Configured') ?? lt?.hibernationConfigured ?? false;
  if (hibernationConfigured) checkHibernationAtLaunch(instanceType, image.platform === 'windows', rootVolume, rootSnapshotGiB(image));
  const privateIpAddress = params.get('PrivateIpAddress');
  if (privateIpAddress !== undefined && maxCount > 1) {
    throw invalidParameterValue('A private IP address can only be specified when launching a single instance.');
  }
  return {
    image,
    instanceType,
    minCount,
    maxCount,
    subnet,
    requestedZone,
    groupIds,
    groupNames: params.list('SecurityGroup'),
    keyName: params.get('KeyName') ?? lt?.keyName,
    userData,
    iamInstanceProfile: resolveProfile(
      params.get('IamInstanceProfile.Name') ?? lt?.iamInstanceProfile?.name,
      params.get('IamInstanceProfile.Arn') ?? lt?.iamInstanceProfile?.arn,
      store.accountId,
    ),
    privateIpAddress,
    disableApiTermination: params.bool('DisableApiTermination') ?? lt?.disableApiTermination ?? false,
    hibernationConfigured,
    rootVolume,
    tags: readTags(params, template),
    template,
  };
}

/** The groups for an instance in `subnet`: the named ones, or the VPC's default group. */
export function resolveGroups(store: Ec2Store, spec: LaunchSpec, subnet: SubnetRecord): GroupRef[] {
  const groups: GroupRef[] = [];
  for (const id of spec.groupIds) {
    const group = store.securityGroups.get(id);
    if (!group) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
    if (group.vpcId !== subnet.vpcId) {
      throw new Ec2Error('InvalidParameter', `Security group ${id} and subnet ${subnet.subnetId} belong to different networks.`);
    }
    groups.push({ groupId: group.groupId, groupName: group.groupName });
  }
  for (const name of spec.groupNames) {
    const group = [...store.securityGroups.values()].find((g) => g.vpcId === subnet.vpcId && g.groupName === name);
    if (!group) {
      throw new Ec2Error('InvalidGroup.NotFound', `The security group '${name}' does not exist in VPC '${subnet.vpcId}'`);
    }
    groups.push({ groupId: group.groupId, groupName: group.groupName });
  }
  if (groups.length === 0) {
    const fallback = store.defaultSecurityGroup(subnet.vpcId);
    if (fallback) groups.push({ groupId: fallback.groupId, groupName: fallback.groupName });
  }
  return groups;
}
