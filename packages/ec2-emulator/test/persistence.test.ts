import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTagsCommand, DescribeInstancesCommand, RunInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, runEc2Emulator, startEc2Emulator } from '../src/index.ts';
import { BASE_TIME, ec2Client, startTestEmulator } from './support.ts';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ec2-emulator-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('statePath persistence', () => {
  it('keeps instances, tags, seeded resources, tokens and emulated time across a restart', async () => {
    const statePath = join(dir, 'nested', 'ec2.json');
    const first = await startTestEmulator({ statePath });
    const ec2 = ec2Client(first);
    const [subnet] = first.control.seedSubnets([{ availabilityZone: 'us-east-1b', cidrBlock: '10.1.0.0/24' }]);
    const request = { ImageId: DEMO_AMI_ID, MinCount: 2, MaxCount: 2, SubnetId: subnet?.subnetId, ClientToken: 'sandbox-1' };
    const launched = await ec2.send(new RunInstancesCommand(request));
    const ids = launched.Instances?.map((i) => i.InstanceId ?? '') ?? [];
    await ec2.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: 'owner', Value: 'sam' }] }));
    first.control.advanceTime(5_000);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [ids[0] ?? ''] }));
    first.control.refuseAccessKey('AKIDOLD');
    ec2.destroy();
    await first.close();

    const saved = JSON.parse(await readFile(statePath, 'utf8')) as { format: string; instances: unknown[] };
    expect(saved.format).toBe('stagedoor-ec2-emulator/1');
    expect(saved.instances).toHaveLength(2);

    const second = await startTestEmulator({ statePath });
    const again = ec2Client(second);
    expect(second.control.now()).toBe(BASE_TIME + 5_000);
    second.control.advanceTime(2_000);
    const described = await again.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:owner', Values: ['sam'] }] }));
    const instances = described.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(new Map(instances.map((i) => [i.InstanceId, i.State?.Name]))).toEqual(
      new Map([
        [ids[0], 'stopped'],
        [ids[1], 'running'],
      ]),
    );
    // The same ClientToken still answers with the original reservation.
    const replay = await again.send(new RunInstancesCommand(request));
    expect(replay.ReservationId).toBe(launched.ReservationId);
    // Addresses in use stay in use: the next launch gets a fresh one.
    const next = await again.send(new RunInstancesCommand({ ...request, ClientToken: 'sandbox-2', MinCount: 1, MaxCount: 1 }));
    expect(next.Instances?.[0]?.PrivateIpAddress).toBe('10.1.0.6');
    expect(second.control.refusedAccessKeys()).toEqual(['AKIDOLD']);
    again.destroy();
    await second.close();
  });

  it('writes a new state file shortly after start and refuses a corrupt one', async () => {
    const statePath = join(dir, 'fresh.json');
    const emulator = await startEc2Emulator({ statePath, persistDebounceMs: 5 });
    await emulator.control.flush();
    const saved = JSON.parse(await readFile(statePath, 'utf8')) as { subnets: unknown[] };
    expect(saved.subnets).toHaveLength(3);
    await emulator.close();

    const corrupt = join(dir, 'corrupt.json');
    await writeFile(corrupt, '{ not json');
    await expect(startEc2Emulator({ statePath: corrupt })).rejects.toThrow(/not valid JSON/);
  });

  it('runs as the dev sandbox, logging one line with its URL', async () => {
    const lines: string[] = [];
    const statePath = join(dir, 'sandbox.json');
    const emulator = await runEc2Emulator({ port: 0, statePath, log: (line) => lines.push(line) });
    expect(lines).toEqual([expect.stringContaining(`EC2 emulator listening on ${emulator.url}`)]);
    expect(lines[0]).toContain(statePath);
    const health = await fetch(`${emulator.url}/_emulator/health`);
    expect(health.status).toBe(200);
    await emulator.close();
    expect(JSON.parse(await readFile(statePath, 'utf8'))).toMatchObject({ region: 'us-east-1' });
  });
});
