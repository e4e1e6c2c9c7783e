/**
 * The EC2 emulator at scale: N instances (default 10,000) launched 1,000 at a time into one /17
 * subnet, half tagged pool=even, then DescribeInstances with three filters paged 1,000 at a time.
 * Prints the wall time of the launches and of the paging; exits 1 if the pages do not hold exactly
 * the even half, each instance once. (This was a test; it is a benchmark because on a loaded 2-core
 * machine it takes longer than a test should. packages/ec2-emulator/test/scale.test.ts keeps the same
 * shape at 1,000 instances.) Run: npm run bench:ec2 [-- N]
 */
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { DEMO_AMI_ID, startEc2Emulator } from '../packages/ec2-emulator/src/index.ts';

const N = Number(process.argv[2] ?? 10_000);
const BATCH = 1000;

async function main() {
  const emulator = await startEc2Emulator({ clock: () => Date.UTC(2025, 0, 6, 9), delays: { pendingMs: 0 }, onError: () => undefined });
  const ec2 = new EC2Client({ region: 'us-east-1', endpoint: emulator.url, credentials: { accessKeyId: 'AKIABENCH00000000000', secretAccessKey: 'x' }, maxAttempts: 1 });
  try {
    const [subnet] = emulator.control.seedSubnets([{ availabilityZone: 'us-east-1a', cidrBlock: '10.0.0.0/17' }]);
    let t0 = performance.now();
    let batches = 0;
    for (let launched = 0; launched < N; launched += BATCH, batches++) {
      const count = Math.min(BATCH, N - launched);
      const tags = [{ Key: 'pool', Value: batches % 2 === 0 ? 'even' : 'odd' }];
      const out = await ec2.send(new RunInstancesCommand({ ImageId: DEMO_AMI_ID, InstanceType: 'g5.xlarge', MinCount: count, MaxCount: count, SubnetId: subnet!.subnetId, TagSpecifications: [{ ResourceType: 'instance', Tags: tags }] }));
      if (out.Instances?.length !== count) throw new Error(`RunInstances returned ${out.Instances?.length} instances, not ${count}`);
    }
    const launchSeconds = (performance.now() - t0) / 1000;
    const expected = Array.from({ length: batches }, (_, b) => (b % 2 === 0 ? Math.min(BATCH, N - b * BATCH) : 0)).reduce((a, b) => a + b, 0);

    const filters = [
      { Name: 'tag:pool', Values: ['even'] },
      { Name: 'instance-state-name', Values: ['running'] },
      { Name: 'subnet-id', Values: [subnet!.subnetId] },
    ];
    t0 = performance.now();
    const seen = new Set<string>();
    let listed = 0;
    let pages = 0;
    let token: string | undefined;
    do {
      const page = await ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: BATCH, NextToken: token }));
      for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        seen.add(instance.InstanceId ?? '');
        listed++;
      }
      token = page.NextToken;
      pages++;
    } while (token);
    const pageSeconds = (performance.now() - t0) / 1000;

    console.log(`EC2 emulator: ${N} instances in a /17, ${batches} launches of up to ${BATCH}\n`);
    console.log('step                               | seconds | calls');
    console.log('-----------------------------------|---------|------');
    console.log(`launch (RunInstances)              | ${launchSeconds.toFixed(2).padStart(7)} | ${String(batches).padStart(5)}`);
    console.log(`page the even half, three filters  | ${pageSeconds.toFixed(2).padStart(7)} | ${String(pages).padStart(5)}`);
    if (seen.size !== expected || listed !== expected) {
      console.error(`\nwrong: listed ${listed} instances (${seen.size} distinct), expected ${expected}`);
      process.exitCode = 1;
    }
  } finally {
    ec2.destroy();
    await emulator.close();
  }
}

await main();
