// StopInstances with Hibernate=true, as EC2 does it: the prerequisites are checked at launch
// (UnsupportedHibernationConfiguration), hibernating takes longer than a stop, and the next start
// resumes faster than a boot — all on the emulated clock, through the real SDK.

import { DescribeImagesCommand, DescribeInstanceTypesCommand, DescribeInstancesCommand, RunInstancesCommand, StartInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import type { RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID } from '../src/index.ts';
import type { Ec2Emulator } from '../src/index.ts';
import { ec2Client, expectEc2Error, startTestEmulator } from './support.ts';

let emulator: Ec2Emulator;
let ec2: ReturnType<typeof ec2Client>;

// Boot 1 s and stop 2 s (support.ts); hibernating 6 s, resuming 0.4 s.
beforeEach(async () => {
  emulator = await startTestEmulator({ delays: { pendingMs: 1_000, stoppingMs: 2_000, shuttingDownMs: 3_000, hibernatingMs: 6_000, resumeMs: 400 } });
  ec2 = ec2Client(emulator);
});

afterEach(async () => {
  ec2.destroy();
  await emulator.close();
});

/** An encrypted root of `sizeGiB` on the demo AMI's root device (/dev/xvda, an 8 GiB snapshot). */
const encryptedRoot = (sizeGiB: number) => [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: sizeGiB, Encrypted: true } }];

async function launch(input: Partial<RunInstancesCommandInput> = {}): Promise<string> {
  const out = await ec2.send(new RunInstancesCommand({ ImageId: DEMO_AMI_ID, InstanceType: 'm5.large', MinCount: 1, MaxCount: 1, ...input }));
  return out.Instances?.[0]?.InstanceId ?? '';
}

async function describe1(id: string) {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations?.[0]?.Instances?.[0];
}

/** Emulated ms until the instance reaches `state`, in 100 ms steps. */
async function msUntil(id: string, state: string): Promise<number> {
  for (let ms = 0; ms <= 60_000; ms += 100) {
    if ((await describe1(id))?.State?.Name === state) return ms;
    emulator.control.advanceTime(100);
  }
  throw new Error(`${id} never reached ${state}`);
}

describe('hibernation prerequisites at launch', () => {
  it.each<[string, Partial<RunInstancesCommandInput>, RegExp]>([
    ['an instance family without hibernation (GPU g5)', { InstanceType: 'g5.xlarge', BlockDeviceMappings: encryptedRoot(40) }, /g5\.xlarge.*does not support hibernation/],
    ['bare metal', { InstanceType: 'm5.metal', BlockDeviceMappings: encryptedRoot(600) }, /does not support hibernation/],
    ['150 GiB of RAM or more (Linux)', { InstanceType: 'r5.12xlarge', BlockDeviceMappings: encryptedRoot(600) }, /384 GiB of memory/],
    ['an unencrypted root volume', { BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 40 } }] }, /must be encrypted/],
    ['no block device mapping: the AMI snapshot is not encrypted', {}, /must be encrypted/],
    ['a root volume too small for the RAM', { BlockDeviceMappings: encryptedRoot(12) }, /at least 16 GiB/],
  ])('refuses %s with UnsupportedHibernationConfiguration, launching nothing', async (_name, input, message) => {
    const error = await expectEc2Error(launch({ HibernationOptions: { Configured: true }, ...input }), 'UnsupportedHibernationConfiguration', 400);
    expect(error.message).toMatch(message);
    expect(emulator.control.instances()).toHaveLength(0);
  });

  it('refuses more than 16 GiB of RAM on Windows, accepts a hibernation-ready launch and reports it', async () => {
    const windows = { ImageId: 'ami-0f1e2d3c4b5a69788', BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 100, Encrypted: true } }] };
    await expectEc2Error(launch({ ...windows, InstanceType: 'm5.2xlarge', HibernationOptions: { Configured: true } }), 'UnsupportedHibernationConfiguration');
    const id = await launch({ ...windows, InstanceType: 'm5.xlarge', HibernationOptions: { Configured: true } });
    expect((await describe1(id))?.HibernationOptions).toEqual({ Configured: true });
    const filtered = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'hibernation-options.configured', Values: ['true'] }] }));
    expect(filtered.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId)).toEqual([id]);
  });

  it('takes an encrypted AMI snapshot as an encrypted root, and refuses a root smaller than the snapshot', async () => {
    const [image] = emulator.control.seedImages([{ name: 'encrypted-ws', rootEncrypted: true, rootVolumeSizeGiB: 30 }]);
    const images = await ec2.send(new DescribeImagesCommand({ ImageIds: [image!.imageId] }));
    expect(images.Images?.[0]?.BlockDeviceMappings?.[0]?.Ebs).toMatchObject({ VolumeSize: 30, Encrypted: true });
    await expectEc2Error(launch({ ImageId: image!.imageId, BlockDeviceMappings: encryptedRoot(20) }), 'InvalidBlockDeviceMapping');
    // 30 GiB of image + 8 GiB of RAM does not fit in the 30 GiB snapshot size; 38 does.
    await expectEc2Error(launch({ ImageId: image!.imageId, HibernationOptions: { Configured: true } }), 'UnsupportedHibernationConfiguration');
    expect(await launch({ ImageId: image!.imageId, HibernationOptions: { Configured: true }, BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 38 } }] })).toMatch(/^i-/);
  });
});

describe('DescribeInstanceTypes', () => {
  it('says which types support hibernation, with their memory, and filters on hibernation-supported', async () => {
    const out = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['m5.xlarge', 'g5.xlarge', 'm5.metal'] }));
    expect(out.InstanceTypes?.map((t) => [t.InstanceType, t.HibernationSupported, t.MemoryInfo?.SizeInMiB])).toEqual([
      ['m5.xlarge', true, 16_384],
      ['g5.xlarge', false, 16_384],
      ['m5.metal', false, expect.any(Number)],
    ]);
    const able = await ec2.send(new DescribeInstanceTypesCommand({ Filters: [{ Name: 'hibernation-supported', Values: ['true'] }] }));
    expect(able.InstanceTypes?.length).toBeGreaterThan(0);
    expect(able.InstanceTypes?.every((t) => t.HibernationSupported)).toBe(true);
  });
});

describe('hibernate and resume on the emulated clock', () => {
  it('hibernating takes hibernatingMs, the resume takes resumeMs; a cold stop/start takes stoppingMs/pendingMs', async () => {
    const hib = await launch({ HibernationOptions: { Configured: true }, BlockDeviceMappings: encryptedRoot(30) });
    const cold = await launch({ HibernationOptions: { Configured: true }, BlockDeviceMappings: encryptedRoot(30) });
    emulator.control.advanceTime(1_000);

    const stop = await ec2.send(new StopInstancesCommand({ InstanceIds: [hib], Hibernate: true }));
    expect(stop.StoppingInstances?.[0]?.CurrentState?.Name).toBe('stopping');
    await ec2.send(new StopInstancesCommand({ InstanceIds: [cold] }));
    const stoppedAfter = { hib: 0, cold: 0 };
    for (let ms = 0; ms <= 10_000 && !(stoppedAfter.hib && stoppedAfter.cold); ms += 100) {
      if (!stoppedAfter.cold && (await describe1(cold))?.State?.Name === 'stopped') stoppedAfter.cold = ms;
      if (!stoppedAfter.hib && (await describe1(hib))?.State?.Name === 'stopped') stoppedAfter.hib = ms;
      emulator.control.advanceTime(100);
    }
    expect(stoppedAfter).toEqual({ hib: 6_000, cold: 2_000 });
    expect((await describe1(hib))?.StateReason?.Code).toBe('Client.UserInitiatedHibernate');
    expect((await describe1(cold))?.StateReason?.Code).toBe('Client.UserInitiatedShutdown');

    await ec2.send(new StartInstancesCommand({ InstanceIds: [hib] }));
    expect(await msUntil(hib, 'running')).toBe(400);
    await ec2.send(new StartInstancesCommand({ InstanceIds: [cold] }));
    expect(await msUntil(cold, 'running')).toBe(1_000);

    // Resumed, it is an ordinary running instance: the next plain stop and start are cold again.
    await ec2.send(new StopInstancesCommand({ InstanceIds: [hib] }));
    expect(await msUntil(hib, 'stopped')).toBe(2_000);
    await ec2.send(new StartInstancesCommand({ InstanceIds: [hib] }));
    expect(await msUntil(hib, 'running')).toBe(1_000);
  });

  it('refuses Hibernate=true for an instance launched without hibernation, stopping none of the request', async () => {
    const plain = await launch();
    const able = await launch({ HibernationOptions: { Configured: true }, BlockDeviceMappings: encryptedRoot(30) });
    emulator.control.advanceTime(1_000);
    const error = await expectEc2Error(ec2.send(new StopInstancesCommand({ InstanceIds: [able, plain], Hibernate: true })), 'UnsupportedHibernationConfiguration', 400);
    expect(error.message).toContain(plain);
    expect((await describe1(able))?.State?.Name).toBe('running');
    expect((await describe1(plain))?.State?.Name).toBe('running');
  });

  it('a forced stop abandons the hibernation: stopped at once, the next start boots', async () => {
    const id = await launch({ HibernationOptions: { Configured: true }, BlockDeviceMappings: encryptedRoot(30) });
    emulator.control.advanceTime(1_000);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [id], Hibernate: true }));
    emulator.control.advanceTime(1_000);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [id], Force: true }));
    expect((await describe1(id))?.State?.Name).toBe('stopped');
    await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
    expect(await msUntil(id, 'running')).toBe(1_000);
  });
});
