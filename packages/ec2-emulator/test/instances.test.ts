import {
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  RunInstancesCommand,
  paginateDescribeInstances,
} from '@aws-sdk/client-ec2';
import type { Instance, RunInstancesCommandInput } from '@aws-sdk/client-ec2';
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

async function allInstances(filters: Array<{ Name: string; Values: string[] }> = []): Promise<Instance[]> {
  const out = await ec2.send(new DescribeInstancesCommand({ Filters: filters }));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

describe('RunInstances', () => {
  it('launches tagged instances into subnets of two AZs with addresses from each subnet', async () => {
    const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
    const [a, b] = (subnets.Subnets ?? []).sort((x, y) => (x.AvailabilityZone ?? '').localeCompare(y.AvailabilityZone ?? ''));
    expect(a?.AvailabilityZone).toBe('us-east-1a');
    expect(b?.AvailabilityZone).toBe('us-east-1b');

    for (const subnet of [a, b]) {
      const out = await ec2.send(
        new RunInstancesCommand({
          ImageId: DEMO_AMI_ID,
          InstanceType: 'g5.xlarge',
          MinCount: 2,
          MaxCount: 2,
          SubnetId: subnet?.SubnetId,
          KeyName: 'artist-key',
          UserData: Buffer.from('#!/bin/bash\necho hi').toString('base64'),
          IamInstanceProfile: { Name: 'stagedoor-workstation' },
          TagSpecifications: [
            { ResourceType: 'instance', Tags: [{ Key: 'stagedoor:pool', Value: 'edit' }, { Key: 'Name', Value: 'ws' }] },
            { ResourceType: 'volume', Tags: [{ Key: 'stagedoor:pool', Value: 'edit' }] },
          ],
        }),
      );
      expect(out.ReservationId).toMatch(/^r-[0-9a-f]{17}$/);
      expect(out.OwnerId).toBe('123456789012');
      expect(out.Instances).toHaveLength(2);
      for (const instance of out.Instances ?? []) {
        expect(instance.InstanceId).toMatch(/^i-[0-9a-f]{17}$/);
        expect(instance.State).toEqual({ Code: 0, Name: 'pending' });
        expect(instance.SubnetId).toBe(subnet?.SubnetId);
        expect(instance.VpcId).toBe(subnet?.VpcId);
        expect(instance.Placement?.AvailabilityZone).toBe(subnet?.AvailabilityZone);
        expect(instance.InstanceType).toBe('g5.xlarge');
        expect(instance.ImageId).toBe(DEMO_AMI_ID);
        expect(instance.KeyName).toBe('artist-key');
        expect(instance.LaunchTime).toBeInstanceOf(Date);
        expect(instance.IamInstanceProfile?.Arn).toBe('arn:aws:iam::123456789012:instance-profile/stagedoor-workstation');
        expect(instance.SecurityGroups?.[0]?.GroupName).toBe('default');
        expect(instance.Tags).toEqual(expect.arrayContaining([{ Key: 'stagedoor:pool', Value: 'edit' }]));
        expect(instance.ClientToken).toBeTruthy();
      }
    }
    const launched = await allInstances([{ Name: 'tag:stagedoor:pool', Values: ['edit'] }]);
    expect(launched).toHaveLength(4);
    const inA = launched.filter((i) => i.Placement?.AvailabilityZone === 'us-east-1a');
    const inB = launched.filter((i) => i.Placement?.AvailabilityZone === 'us-east-1b');
    expect(inA.map((i) => i.PrivateIpAddress)).toEqual(['172.31.0.4', '172.31.0.5']);
    expect(inB.every((i) => i.PrivateIpAddress?.startsWith('172.31.16.'))).toBe(true);
    const byAz = await allInstances([{ Name: 'availability-zone', Values: ['us-east-1b'] }, { Name: 'instance-type', Values: ['g5.*'] }]);
    expect(byAz.map((i) => i.InstanceId).sort()).toEqual(inB.map((i) => i.InstanceId).sort());
  });

  it('returns the same reservation for a repeated ClientToken and refuses changed parameters', async () => {
    const request: RunInstancesCommandInput = { ImageId: DEMO_AMI_ID, InstanceType: 't3.large', MinCount: 3, MaxCount: 3, ClientToken: 'pool-edit-42' };
    const first = await ec2.send(new RunInstancesCommand(request));
    const again = await ec2.send(new RunInstancesCommand(request));
    expect(again.ReservationId).toBe(first.ReservationId);
    expect(again.Instances?.map((i) => i.InstanceId)).toEqual(first.Instances?.map((i) => i.InstanceId));
    expect(await allInstances()).toHaveLength(3);

    const error = await expectEc2Error(
      ec2.send(new RunInstancesCommand({ ...request, InstanceType: 't3.xlarge' })),
      'IdempotentParameterMismatch',
      400,
    );
    expect(error.message).toMatch(/inconsistent with arguments used in previous request/);
    expect(await allInstances()).toHaveLength(3);
  });

  it('reports unknown and malformed AMIs and subnets with EC2 codes', async () => {
    const base: RunInstancesCommandInput = { InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 };
    await expectEc2Error(ec2.send(new RunInstancesCommand({ ...base, ImageId: 'ami-0fffffffffffffff0' })), 'InvalidAMIID.NotFound', 400);
    await expectEc2Error(ec2.send(new RunInstancesCommand({ ...base, ImageId: 'ami-demo' })), 'InvalidAMIID.Malformed', 400);
    await expectEc2Error(
      ec2.send(new RunInstancesCommand({ ...base, ImageId: DEMO_AMI_ID, SubnetId: 'subnet-0123456789abcdef0' })),
      'InvalidSubnetID.NotFound',
      400,
    );
    await expectEc2Error(
      ec2.send(new RunInstancesCommand({ ...base, ImageId: DEMO_AMI_ID, MinCount: undefined } as never)),
      'MissingParameter',
      400,
    );
    await expectEc2Error(
      ec2.send(new RunInstancesCommand({ ...base, ImageId: DEMO_AMI_ID, SecurityGroupIds: ['sg-0123456789abcdef0'] })),
      'InvalidGroup.NotFound',
      400,
    );
    expect(await allInstances()).toHaveLength(0);
  });

  it('launches from a seeded launch template, request values winning', async () => {
    const [template] = emulator.control.seedLaunchTemplates([
      {
        launchTemplateName: 'edit-bay',
        versions: [
          { imageId: DEMO_AMI_ID, instanceType: 't3.large' },
          { imageId: DEMO_AMI_ID, instanceType: 'g5.2xlarge', tagSpecifications: [{ resourceType: 'instance', tags: [{ key: 'bay', value: 'b' }] }] },
        ],
      },
    ]);
    const out = await ec2.send(
      new RunInstancesCommand({ MinCount: 1, MaxCount: 1, LaunchTemplate: { LaunchTemplateName: 'edit-bay', Version: '$Latest' } }),
    );
    const instance = out.Instances?.[0];
    expect(instance?.InstanceType).toBe('g5.2xlarge');
    expect(instance?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'bay', Value: 'b' },
        { Key: 'aws:ec2launchtemplate:id', Value: template?.launchTemplateId },
        { Key: 'aws:ec2launchtemplate:version', Value: '2' },
      ]),
    );
    const byDefault = await ec2.send(
      new RunInstancesCommand({ MinCount: 1, MaxCount: 1, InstanceType: 'm6i.large', LaunchTemplate: { LaunchTemplateId: template?.launchTemplateId } }),
    );
    expect(byDefault.Instances?.[0]?.InstanceType).toBe('m6i.large');
    await expectEc2Error(
      ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, LaunchTemplate: { LaunchTemplateName: 'nope' } })),
      'InvalidLaunchTemplateName.NotFoundException',
    );
  });
});

describe('DescribeInstances', () => {
  it('pages a tag filter with MaxResults and NextToken', async () => {
    for (let i = 0; i < 5; i++) {
      await ec2.send(
        new RunInstancesCommand({
          ImageId: DEMO_AMI_ID,
          MinCount: 5,
          MaxCount: 5,
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'pool', Value: 'render' }] }],
        }),
      );
      await ec2.send(new RunInstancesCommand({ ImageId: DEMO_AMI_ID, MinCount: 1, MaxCount: 1 }));
    }
    const filters = [{ Name: 'tag:pool', Values: ['render'] }];
    const pageSizes: number[] = [];
    const seen = new Set<string>();
    let token: string | undefined;
    do {
      const page = await ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 10, NextToken: token }));
      const ids = (page.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId ?? '');
      for (const r of page.Reservations ?? []) expect(r.OwnerId).toBe('123456789012');
      pageSizes.push(ids.length);
      for (const id of ids) seen.add(id);
      token = page.NextToken;
    } while (token);
    expect(pageSizes).toEqual([10, 10, 5]);
    expect(seen.size).toBe(25);

    let viaPaginator = 0;
    for await (const page of paginateDescribeInstances({ client: ec2, pageSize: 7 }, { Filters: filters })) {
      viaPaginator += (page.Reservations ?? []).flatMap((r) => r.Instances ?? []).length;
    }
    expect(viaPaginator).toBe(25);
    expect(await allInstances([{ Name: 'tag-key', Values: ['pool'] }])).toHaveLength(25);
    expect(await allInstances()).toHaveLength(30);
  });

  it('validates ids, MaxResults and filters like EC2', async () => {
    const out = await ec2.send(new RunInstancesCommand({ ImageId: DEMO_AMI_ID, MinCount: 1, MaxCount: 1 }));
    const id = out.Instances?.[0]?.InstanceId ?? '';
    const found = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    expect(found.Reservations?.[0]?.ReservationId).toBe(out.ReservationId);

    await expectEc2Error(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-123'] })), 'InvalidInstanceID.Malformed', 400);
    const missing = await expectEc2Error(
      ec2.send(new DescribeInstancesCommand({ InstanceIds: [id, 'i-0123456789abcdef0'] })),
      'InvalidInstanceID.NotFound',
      400,
    );
    expect(missing.message).toBe("The instance ID 'i-0123456789abcdef0' does not exist");
    await expectEc2Error(ec2.send(new DescribeInstancesCommand({ InstanceIds: [id], MaxResults: 10 })), 'InvalidParameterCombination', 400);
    await expectEc2Error(ec2.send(new DescribeInstancesCommand({ MaxResults: 4 })), 'InvalidParameterValue', 400);
    await expectEc2Error(ec2.send(new DescribeInstancesCommand({ MaxResults: 1001 })), 'InvalidParameterValue', 400);
    await expectEc2Error(ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'no-such-filter', Values: ['x'] }] })), 'InvalidParameterValue');
    await expectEc2Error(ec2.send(new DescribeInstancesCommand({ MaxResults: 5, NextToken: 'garbage' })), 'InvalidPaginationToken');
  });
});
