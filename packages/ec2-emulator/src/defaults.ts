// What a new AWS account has in a region: a default VPC (172.31.0.0/16) with one default
// subnet per AZ, the VPC's default security group, and a few AMIs. Ids are derived from
// the region so every fresh emulator has the same ones.

import { stableId } from './ids.ts';
import type { Ec2Store } from './store.ts';
import type { ImageRecord } from './types.ts';

/** The documented demo AMI: a Linux workstation image owned by the emulated account. */
export const DEMO_AMI_ID = 'ami-0123456789abcdef0';
export const DEFAULT_ACCOUNT_ID = '123456789012';
export const DEFAULT_VPC_CIDR = '172.31.0.0/16';
const AMAZON_OWNER_ID = '137112412989';
const WINDOWS_OWNER_ID = '801119661308';

const DEFAULT_SUBNET_CIDRS = ['172.31.0.0/20', '172.31.16.0/20', '172.31.32.0/20'];
const ZONE_LETTERS = ['a', 'b', 'c'];

export function zoneNames(region: string): string[] {
  return ZONE_LETTERS.map((letter) => `${region}${letter}`);
}

/** Zone ids look like `use1-az1`: region initials, its number, then the zone's index. */
export function zoneId(zoneName: string): string {
  const region = zoneName.slice(0, -1);
  const letter = zoneName.slice(-1);
  const parts = region.split('-');
  const number = parts.pop() ?? '';
  const initials = parts.map((p, i) => (i === 0 ? p : p.charAt(0))).join('');
  return `${initials}${number}-az${letter.charCodeAt(0) - 96}`;
}

export function defaultImages(accountId: string): ImageRecord[] {
  const created = '2024-11-13T00:00:00.000Z';
  return [
    {
      imageId: DEMO_AMI_ID,
      name: 'stagedoor-demo-workstation',
      description: 'Stagedoor demo workstation (Linux, NICE DCV)',
      ownerId: accountId,
      public: false,
      architecture: 'x86_64',
      platformDetails: 'Linux/UNIX',
      rootDeviceName: '/dev/xvda',
      creationDate: created,
      tags: [{ key: 'Name', value: 'stagedoor-demo-workstation' }],
    },
    {
      imageId: 'ami-0a1b2c3d4e5f60718',
      name: 'al2023-ami-2023.6.20241111.0-kernel-6.1-x86_64',
      description: 'Amazon Linux 2023 AMI 2023.6.20241111.0 x86_64 HVM kernel-6.1',
      ownerId: AMAZON_OWNER_ID,
      ownerAlias: 'amazon',
      public: true,
      architecture: 'x86_64',
      platformDetails: 'Linux/UNIX',
      rootDeviceName: '/dev/xvda',
      creationDate: created,
      tags: [],
    },
    {
      imageId: 'ami-0f1e2d3c4b5a69788',
      name: 'Windows_Server-2022-English-Full-Base-2024.11.13',
      description: 'Microsoft Windows Server 2022 Full Locale English AMI provided by Amazon',
      ownerId: WINDOWS_OWNER_ID,
      ownerAlias: 'amazon',
      public: true,
      architecture: 'x86_64',
      platform: 'windows',
      platformDetails: 'Windows',
      rootDeviceName: '/dev/sda1',
      creationDate: created,
      tags: [],
    },
    {
      imageId: 'ami-0c0ffee0c0ffee001',
      name: 'stagedoor-demo-gpu-workstation',
      description: 'Stagedoor demo GPU workstation (Windows, NVIDIA driver)',
      ownerId: accountId,
      public: false,
      architecture: 'x86_64',
      platform: 'windows',
      platformDetails: 'Windows',
      rootDeviceName: '/dev/sda1',
      creationDate: created,
      tags: [{ key: 'Name', value: 'stagedoor-demo-gpu-workstation' }],
    },
  ];
}

export function seedDefaultAccount(store: Ec2Store): void {
  const region = store.region;
  const vpcId = stableId('vpc', region, 'default');
  store.addVpc({
    vpcId,
    cidrBlock: DEFAULT_VPC_CIDR,
    isDefault: true,
    dhcpOptionsId: stableId('dopt', region, 'default'),
    tags: [],
  });
  zoneNames(region).forEach((zone, i) => {
    store.addSubnet({
      subnetId: stableId('subnet', region, 'default', zone),
      vpcId,
      availabilityZone: zone,
      cidrBlock: DEFAULT_SUBNET_CIDRS[i] ?? `172.31.${i * 16}.0/20`,
      defaultForAz: true,
      mapPublicIpOnLaunch: true,
      tags: [],
    });
  });
  store.addSecurityGroup({
    groupId: stableId('sg', region, 'default', vpcId),
    groupName: 'default',
    description: 'default VPC security group',
    vpcId,
    tags: [],
  });
  for (const image of defaultImages(store.accountId)) store.addImage(image);
}
