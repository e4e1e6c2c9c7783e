import { DescribeInstancesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID } from '../src/index.ts';
import type { Ec2Emulator } from '../src/index.ts';
import { ec2Client, startTestEmulator } from './support.ts';

let emulator: Ec2Emulator;
let ec2: ReturnType<typeof ec2Client>;

beforeAll(async () => {
  emulator = await startTestEmulator({ delays: { pendingMs: 0 } });
  ec2 = ec2Client(emulator);
});

afterAll(async () => {
  ec2.destroy();
  await emulator.close();
});

// The same shape at 10,000 instances (1,000 a launch, pages of 1,000) is a benchmark, not a test:
// `npm run bench:ec2` (bench/ec2-emulator.ts). Here: enough instances to fill more than a /24 and
// to need several pages, which is what the paging and the filters must get right.
describe('1,000 instances', () => {
  it('launches them in a large subnet and pages through them with filters', async () => {
    const [subnet] = emulator.control.seedSubnets([{ availabilityZone: 'us-east-1a', cidrBlock: '10.0.0.0/17' }]);
    for (let batch = 0; batch < 10; batch++) {
      const out = await ec2.send(
        new RunInstancesCommand({
          ImageId: DEMO_AMI_ID,
          InstanceType: 'g5.xlarge',
          MinCount: 100,
          MaxCount: 100,
          SubnetId: subnet?.subnetId,
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'pool', Value: batch % 2 === 0 ? 'even' : 'odd' }] }],
        }),
      );
      expect(out.Instances).toHaveLength(100);
    }
    const filters = [
      { Name: 'tag:pool', Values: ['even'] },
      { Name: 'instance-state-name', Values: ['running'] },
      { Name: 'subnet-id', Values: [subnet?.subnetId ?? ''] },
    ];
    const seen = new Set<string>();
    const addresses = new Set<string>();
    let pages = 0;
    let token: string | undefined;
    do {
      const page = await ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 100, NextToken: token }));
      for (const reservation of page.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          seen.add(instance.InstanceId ?? '');
          addresses.add(instance.PrivateIpAddress ?? '');
        }
      }
      token = page.NextToken;
      pages++;
    } while (token);
    expect(seen.size).toBe(500);
    expect(addresses.size).toBe(500); // no address handed out twice, past the first /24 of the subnet
    expect(pages).toBe(5);
    expect(emulator.control.callCounts().byAction.DescribeInstances).toBe(5);
  });
});
