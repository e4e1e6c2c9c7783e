import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID } from '../src/index.ts';
import type { Ec2Emulator } from '../src/index.ts';
import { ec2Client, expectEc2Error, startTestEmulator } from './support.ts';

let emulator: Ec2Emulator;
let ec2: ReturnType<typeof ec2Client>;

beforeEach(async () => {
  emulator = await startTestEmulator();
  ec2 = ec2Client(emulator);
});

afterEach(async () => {
  ec2.destroy();
  await emulator.close();
});

describe('CreateTags / DeleteTags', () => {
  it('adds, replaces and removes tags on instances and their volumes', async () => {
    const out = await ec2.send(
      new RunInstancesCommand({
        ImageId: DEMO_AMI_ID,
        MinCount: 2,
        MaxCount: 2,
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'ws' }] }],
      }),
    );
    const ids = out.Instances?.map((i) => i.InstanceId ?? '') ?? [];
    const volumeId = out.Instances?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.VolumeId ?? '';
    await ec2.send(
      new CreateTagsCommand({
        Resources: [...ids, volumeId],
        Tags: [
          { Key: 'stagedoor:user', Value: 'ana' },
          { Key: 'Name', Value: 'ws-ana' },
        ],
      }),
    );
    const tagged = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:stagedoor:user', Values: ['ana'] }] }));
    const instances = tagged.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(instances).toHaveLength(2);
    expect(instances[0]?.Tags).toEqual([
      { Key: 'Name', Value: 'ws-ana' },
      { Key: 'stagedoor:user', Value: 'ana' },
    ]);

    // A value that does not match leaves the tag; no value removes the key whatever its value.
    await ec2.send(new DeleteTagsCommand({ Resources: [ids[0] ?? ''], Tags: [{ Key: 'Name', Value: 'other' }, { Key: 'stagedoor:user' }] }));
    const first = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [ids[0] ?? ''] }));
    expect(first.Reservations?.[0]?.Instances?.[0]?.Tags).toEqual([{ Key: 'Name', Value: 'ws-ana' }]);
    await ec2.send(new DeleteTagsCommand({ Resources: [ids[0] ?? ''] }));
    const bare = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [ids[0] ?? ''] }));
    expect(bare.Reservations?.[0]?.Instances?.[0]?.Tags).toBeUndefined();
    const byKey = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: ['stagedoor:*'] }] }));
    expect(byKey.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId)).toEqual([ids[1]]);
  });

  it('tags subnets and refuses unknown resources, reserved keys and too many tags', async () => {
    const subnetId = emulator.control.defaultNetwork().subnets[0]?.subnetId ?? '';
    await ec2.send(new CreateTagsCommand({ Resources: [subnetId], Tags: [{ Key: 'tier', Value: 'private' }] }));
    const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'tag:tier', Values: ['private'] }] }));
    expect(subnets.Subnets?.map((s) => s.SubnetId)).toEqual([subnetId]);

    await expectEc2Error(ec2.send(new CreateTagsCommand({ Resources: ['i-0123456789abcdef0'], Tags: [{ Key: 'a', Value: 'b' }] })), 'InvalidInstanceID.NotFound');
    await expectEc2Error(ec2.send(new CreateTagsCommand({ Resources: ['i-xyz'], Tags: [{ Key: 'a', Value: 'b' }] })), 'InvalidInstanceID.Malformed');
    await expectEc2Error(ec2.send(new CreateTagsCommand({ Resources: ['bogus'], Tags: [{ Key: 'a', Value: 'b' }] })), 'InvalidID');
    await expectEc2Error(ec2.send(new CreateTagsCommand({ Resources: [subnetId], Tags: [{ Key: 'aws:x', Value: 'b' }] })), 'InvalidParameterValue');
    const many = Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    await expectEc2Error(ec2.send(new CreateTagsCommand({ Resources: [subnetId], Tags: many })), 'TagLimitExceeded');
  });
});

describe('the default account', () => {
  it('has a default VPC with a default subnet in each of three AZs', async () => {
    const vpcs = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }));
    expect(vpcs.Vpcs).toHaveLength(1);
    expect(vpcs.Vpcs?.[0]?.CidrBlock).toBe('172.31.0.0/16');
    const subnets = await ec2.send(new DescribeSubnetsCommand({}));
    const summary = subnets.Subnets?.map((s) => [s.AvailabilityZone, s.CidrBlock, s.DefaultForAz, s.AvailableIpAddressCount, s.VpcId]);
    expect(summary?.sort()).toEqual([
      ['us-east-1a', '172.31.0.0/20', true, 4091, vpcs.Vpcs?.[0]?.VpcId],
      ['us-east-1b', '172.31.16.0/20', true, 4091, vpcs.Vpcs?.[0]?.VpcId],
      ['us-east-1c', '172.31.32.0/20', true, 4091, vpcs.Vpcs?.[0]?.VpcId],
    ]);
    await expectEc2Error(ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-0123456789abcdef0'] })), 'InvalidSubnetID.NotFound');
  });

  it('lists the availability zones of the region', async () => {
    const out = await ec2.send(new DescribeAvailabilityZonesCommand({}));
    expect(out.AvailabilityZones?.map((z) => [z.ZoneName, z.ZoneId, z.State, z.RegionName])).toEqual([
      ['us-east-1a', 'use1-az1', 'available', 'us-east-1'],
      ['us-east-1b', 'use1-az2', 'available', 'us-east-1'],
      ['us-east-1c', 'use1-az3', 'available', 'us-east-1'],
    ]);
    const one = await ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: ['us-east-1b'] }));
    expect(one.AvailabilityZones).toHaveLength(1);
  });

  it('has the default security group and seeded ones', async () => {
    const [group] = emulator.control.seedSecurityGroups([{ groupName: 'workstations', description: 'DCV from gateways' }]);
    const all = await ec2.send(new DescribeSecurityGroupsCommand({}));
    expect(all.SecurityGroups?.map((g) => g.GroupName).sort()).toEqual(['default', 'workstations']);
    const byName = await ec2.send(new DescribeSecurityGroupsCommand({ GroupNames: ['default'] }));
    expect(byName.SecurityGroups?.[0]?.IpPermissionsEgress?.[0]?.IpRanges?.[0]?.CidrIp).toBe('0.0.0.0/0');
    const byId = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [group?.groupId ?? ''] }));
    expect(byId.SecurityGroups?.[0]?.Description).toBe('DCV from gateways');
    await expectEc2Error(ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ['sg-0123456789abcdef0'] })), 'InvalidGroup.NotFound');
    await expectEc2Error(ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: ['sg-nope'] })), 'InvalidGroupId.Malformed');

    const launched = await ec2.send(
      new RunInstancesCommand({ ImageId: DEMO_AMI_ID, MinCount: 1, MaxCount: 1, SecurityGroupIds: [group?.groupId ?? ''] }),
    );
    expect(launched.Instances?.[0]?.SecurityGroups).toEqual([{ GroupId: group?.groupId, GroupName: 'workstations' }]);
  });

  it('has the demo AMI and public Amazon AMIs, and takes seeded ones', async () => {
    const mine = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(mine.Images?.map((i) => i.ImageId)).toContain(DEMO_AMI_ID);
    const demo = await ec2.send(new DescribeImagesCommand({ ImageIds: [DEMO_AMI_ID] }));
    expect(demo.Images?.[0]).toMatchObject({ Name: 'stagedoor-demo-workstation', State: 'available', OwnerId: '123456789012', Public: false });
    const amazon = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'], Filters: [{ Name: 'platform', Values: ['windows'] }] }));
    expect(amazon.Images?.map((i) => i.Name)).toEqual(['Windows_Server-2022-English-Full-Base-2024.11.13']);

    const [seeded] = emulator.control.seedImages([{ name: 'resolve-19-workstation', platform: 'windows', tags: [{ key: 'app', value: 'resolve' }] }]);
    const byTag = await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'tag:app', Values: ['resolve'] }] }));
    expect(byTag.Images?.map((i) => i.ImageId)).toEqual([seeded?.imageId]);
    const byName = await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'name', Values: ['resolve-*'] }] }));
    expect(byName.Images).toHaveLength(1);
    await expectEc2Error(ec2.send(new DescribeImagesCommand({ ImageIds: ['ami-0fffffffffffffff0'] })), 'InvalidAMIID.NotFound');
    await expectEc2Error(ec2.send(new DescribeImagesCommand({ ImageIds: ['ami-x'] })), 'InvalidAMIID.Malformed');
  });

  it('launches into a seeded subnet of a new VPC', async () => {
    const [subnet] = emulator.control.seedSubnets([{ availabilityZone: 'us-east-1c', cidrBlock: '10.20.1.0/24', vpcCidrBlock: '10.20.0.0/16' }]);
    const out = await ec2.send(new RunInstancesCommand({ ImageId: DEMO_AMI_ID, MinCount: 1, MaxCount: 1, SubnetId: subnet?.subnetId }));
    expect(out.Instances?.[0]).toMatchObject({ PrivateIpAddress: '10.20.1.4', VpcId: subnet?.vpcId, Placement: { AvailabilityZone: 'us-east-1c' } });
    // The new VPC has its own default group, which the instance got.
    expect(out.Instances?.[0]?.SecurityGroups?.[0]?.GroupName).toBe('default');
    const sgOfDefaultVpc = emulator.control.defaultNetwork().securityGroupId;
    await expectEc2Error(
      ec2.send(new RunInstancesCommand({ ImageId: DEMO_AMI_ID, MinCount: 1, MaxCount: 1, SubnetId: subnet?.subnetId, SecurityGroupIds: [sgOfDefaultVpc] })),
      'InvalidParameter',
    );
    expect(() => emulator.control.seedSubnets([{ availabilityZone: 'us-east-1a', cidrBlock: '172.31.0.0/24' }])).toThrow(/overlaps/);
  });
});
