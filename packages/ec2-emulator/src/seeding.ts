// Adds AMIs, subnets, security groups and launch templates on top of the default account,
// for tests and sandboxes that need more than the defaults. Bad input throws a plain
// Error naming the problem; the control API turns it into a 400.

import { cidrContains, parseCidr } from './cidr.ts';
import { isWellFormedId, randomId, stableId } from './ids.ts';
import type { Ec2Store } from './store.ts';
import { validateTags } from './tag-rules.ts';
import type {
  ImageRecord,
  ImageSeed,
  LaunchTemplateRecord,
  LaunchTemplateSeed,
  SecurityGroupRecord,
  SecurityGroupSeed,
  SubnetRecord,
  SubnetSeed,
} from './types.ts';

function checkId(prefix: string, id: string | undefined, taken: (id: string) => boolean): string {
  if (id === undefined) return randomId(prefix);
  if (!isWellFormedId(prefix, id)) throw new Error(`${id} is not a well-formed ${prefix}- id (${prefix}- plus 8 or 17 hex digits)`);
  if (taken(id)) throw new Error(`${id} already exists`);
  return id;
}

export function seedImage(store: Ec2Store, seed: ImageSeed): ImageRecord {
  if (!seed.name) throw new Error('an image needs a name');
  validateTags(seed.tags ?? []);
  const image: ImageRecord = {
    imageId: checkId('ami', seed.imageId, (id) => store.images.has(id)),
    name: seed.name,
    description: seed.description ?? seed.name,
    ownerId: seed.ownerId ?? store.accountId,
    ownerAlias: seed.ownerAlias,
    public: seed.public ?? false,
    architecture: seed.architecture ?? 'x86_64',
    platform: seed.platform,
    platformDetails: seed.platform === 'windows' ? 'Windows' : 'Linux/UNIX',
    rootDeviceName: seed.platform === 'windows' ? '/dev/sda1' : '/dev/xvda',
    rootVolumeSizeGiB: seed.rootVolumeSizeGiB,
    rootEncrypted: seed.rootEncrypted,
    creationDate: new Date().toISOString(),
    tags: seed.tags ?? [],
  };
  store.addImage(image);
  return image;
}

export function seedSubnet(store: Ec2Store, seed: SubnetSeed): SubnetRecord {
  const cidr = parseCidr(seed.cidrBlock);
  if (!cidr || cidr.prefix < 16 || cidr.prefix > 28) throw new Error(`${seed.cidrBlock} is not a valid subnet CIDR (/16 to /28)`);
  if (!/^[a-z]{2}(-[a-z]+)+-\d+[a-z]$/.test(seed.availabilityZone ?? '')) {
    throw new Error(`${String(seed.availabilityZone)} is not an availability zone name such as ${store.region}a`);
  }
  validateTags(seed.tags ?? []);
  // Without a vpcId the subnet joins the default VPC when it fits there, else a new VPC.
  const defaultVpc = [...store.vpcs.values()].find((v) => v.isDefault);
  const defaultRange = defaultVpc ? parseCidr(defaultVpc.cidrBlock) : undefined;
  const fitsDefault = seed.vpcCidrBlock === undefined && defaultRange !== undefined && cidrContains(defaultRange, cidr);
  let vpc = seed.vpcId === undefined ? (fitsDefault ? defaultVpc : undefined) : store.vpcs.get(seed.vpcId);
  if (!vpc) {
    const vpcCidr = seed.vpcCidrBlock ?? `${seed.cidrBlock.split('.').slice(0, 2).join('.')}.0.0/16`;
    if (!parseCidr(vpcCidr)) throw new Error(`${vpcCidr} is not a valid VPC CIDR`);
    const vpcId = checkId('vpc', seed.vpcId, () => false);
    vpc = { vpcId, cidrBlock: vpcCidr, isDefault: false, dhcpOptionsId: stableId('dopt', store.region, 'default'), tags: [] };
    store.addVpc(vpc);
    store.addSecurityGroup({
      groupId: stableId('sg', store.region, 'default', vpcId),
      groupName: 'default',
      description: 'default VPC security group',
      vpcId,
      tags: [],
    });
  }
  const vpcCidr = parseCidr(vpc.cidrBlock);
  if (!vpcCidr || !cidrContains(vpcCidr, cidr)) throw new Error(`${seed.cidrBlock} is not inside ${vpc.vpcId} (${vpc.cidrBlock})`);
  for (const other of store.subnets.values()) {
    const range = parseCidr(other.cidrBlock);
    if (other.vpcId === vpc.vpcId && range && (cidrContains(range, cidr) || cidrContains(cidr, range))) {
      throw new Error(`${seed.cidrBlock} overlaps ${other.subnetId} (${other.cidrBlock})`);
    }
  }
  const subnet: SubnetRecord = {
    subnetId: checkId('subnet', seed.subnetId, (id) => store.subnets.has(id)),
    vpcId: vpc.vpcId,
    availabilityZone: seed.availabilityZone,
    cidrBlock: seed.cidrBlock,
    defaultForAz: false,
    mapPublicIpOnLaunch: seed.mapPublicIpOnLaunch ?? false,
    tags: seed.tags ?? [],
  };
  store.addSubnet(subnet);
  return subnet;
}

export function seedSecurityGroup(store: Ec2Store, seed: SecurityGroupSeed): SecurityGroupRecord {
  const vpcId = seed.vpcId ?? [...store.vpcs.values()].find((v) => v.isDefault)?.vpcId;
  if (!vpcId || !store.vpcs.has(vpcId)) throw new Error(`VPC ${String(vpcId)} does not exist`);
  if (!seed.groupName) throw new Error('a security group needs a groupName');
  if ([...store.securityGroups.values()].some((g) => g.vpcId === vpcId && g.groupName === seed.groupName)) {
    throw new Error(`security group ${seed.groupName} already exists in ${vpcId}`);
  }
  validateTags(seed.tags ?? []);
  const group: SecurityGroupRecord = {
    groupId: checkId('sg', seed.groupId, (id) => store.securityGroups.has(id)),
    groupName: seed.groupName,
    description: seed.description ?? seed.groupName,
    vpcId,
    tags: seed.tags ?? [],
  };
  store.addSecurityGroup(group);
  return group;
}

export function seedLaunchTemplate(store: Ec2Store, seed: LaunchTemplateSeed): LaunchTemplateRecord {
  if (!seed.launchTemplateName) throw new Error('a launch template needs a launchTemplateName');
  if (!Array.isArray(seed.versions) || seed.versions.length === 0) throw new Error('a launch template needs at least one version');
  if ([...store.launchTemplates.values()].some((t) => t.launchTemplateName === seed.launchTemplateName)) {
    throw new Error(`launch template ${seed.launchTemplateName} already exists`);
  }
  const defaultVersion = seed.defaultVersion ?? 1;
  if (defaultVersion < 1 || defaultVersion > seed.versions.length) throw new Error(`default version ${defaultVersion} does not exist`);
  const template: LaunchTemplateRecord = {
    launchTemplateId: checkId('lt', seed.launchTemplateId, (id) => store.launchTemplates.has(id)),
    launchTemplateName: seed.launchTemplateName,
    defaultVersion,
    versions: seed.versions.map((data, i) => ({ versionNumber: i + 1, data })),
  };
  store.addLaunchTemplate(template);
  return template;
}
