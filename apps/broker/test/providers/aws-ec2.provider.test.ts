import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { AwsEc2Provider } from '../../src/providers/cloud/aws-ec2.ts';
import { ProviderError } from '../../src/providers/cloud/cloud-provider.ts';
import { frozenClock, providerFor, startTestEmulator, TEST_ACCESS_KEY } from '../../../../test/support/ec2.ts';

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('aws-ec2 provider, real AWS SDK against the EC2 emulator', () => {
  let emu: Ec2Emulator;
  let ec2: AwsEc2Provider;
  let subnets: { subnetId: string; availabilityZone: string }[];
  beforeAll(async () => {
    emu = await startTestEmulator({ clock: frozenClock() }); // time moves by advanceTime only
    subnets = emu.control.defaultNetwork().subnets;
  });
  afterAll(async () => emu?.close());
  beforeEach(() => {
    emu.control.reset();
    subnets = emu.control.defaultNetwork().subnets;
    ec2 = providerFor(emu, { pageSize: 5 });
  });

  it('launches with tags into two subnets in two AZs, with private addresses from each subnet', async () => {
    const [a, b] = subnets as [(typeof subnets)[0], (typeof subnets)[0]];
    const one = await ec2.launch({ imageId: DEMO_AMI_ID, instanceType: 'g5.2xlarge', subnetId: a.subnetId, name: 'edit-001', tags: { 'stagedoor:pool': 'edit' }, clientToken: 'tok-1' });
    const two = await ec2.launch({ imageId: DEMO_AMI_ID, instanceType: 'g5.2xlarge', subnetId: b.subnetId, name: 'edit-002', tags: { 'stagedoor:pool': 'edit' }, clientToken: 'tok-2' });
    expect(one[0]).toMatchObject({ state: 'pending', subnetId: a.subnetId, availabilityZone: a.availabilityZone, instanceType: 'g5.2xlarge', name: 'edit-001' });
    expect(two[0]).toMatchObject({ subnetId: b.subnetId, availabilityZone: b.availabilityZone });
    expect(a.availabilityZone).not.toBe(b.availabilityZone);
    expect(one[0]!.privateAddress).toMatch(/^172\.31\.([0-9]|1[0-5])\./);
    expect(two[0]!.privateAddress).toMatch(/^172\.31\.(1[6-9]|2[0-9]|3[01])\./);
    expect(one[0]!.tags).toMatchObject({ Name: 'edit-001', 'stagedoor:managed': 'true', 'stagedoor:pool': 'edit' });
    expect(one[0]!.clientToken).toBe('tok-1');
  });

  it('the same ClientToken twice launches one set of instances', async () => {
    const spec = { imageId: DEMO_AMI_ID, instanceType: 't3.large', name: 'once', tags: {}, clientToken: 'same-token', count: 2 };
    const first = await ec2.launch(spec);
    const again = await ec2.launch(spec);
    expect(again.map((i) => i.id).sort()).toEqual(first.map((i) => i.id).sort());
    expect(emu.control.instances()).toHaveLength(2);
  });

  it('lists by tag across several pages', async () => {
    for (let i = 0; i < 3; i++) await ec2.launch({ imageId: DEMO_AMI_ID, name: `x-${i}`, tags: { team: 'other' }, clientToken: `o-${i}`, count: 4 });
    await ec2.launch({ imageId: DEMO_AMI_ID, name: 'edit', tags: { team: 'edit' }, clientToken: 'e', count: 12 });
    const calls = ec2.apiCalls;
    const edit = await ec2.listInstances({ tags: { team: ['edit'] } });
    expect(edit).toHaveLength(12);
    expect(ec2.apiCalls - calls).toBeGreaterThanOrEqual(3); // 12 at 5 a page
    expect(edit.every((i) => i.tags.team === 'edit')).toBe(true);
    expect(await ec2.listInstances({ tags: { team: [] } })).toHaveLength(24);
  });

  it('stop → stopping → stopped; start; reboot; terminate', async () => {
    const [inst] = await ec2.launch({ imageId: DEMO_AMI_ID, name: 'p', tags: {}, clientToken: 'p' });
    emu.control.advanceTime(10_000);
    expect((await ec2.listInstances({ ids: [inst!.id] }))[0]!.state).toBe('running');
    expect(await ec2.stop([inst!.id])).toEqual([{ id: inst!.id, previous: 'running', current: 'stopping' }]);
    emu.control.advanceTime(10_000);
    expect((await ec2.listInstances({ ids: [inst!.id] }))[0]!.state).toBe('stopped');
    expect((await ec2.start([inst!.id]))[0]).toMatchObject({ previous: 'stopped', current: 'pending' });
    emu.control.advanceTime(10_000);
    await ec2.reboot([inst!.id]);
    expect((await ec2.terminate([inst!.id]))[0]).toMatchObject({ previous: 'running', current: 'terminated' });
  });

  it('an instance id EC2 does not know (yet) is left out of a describe by id, instead of failing the others with it', async () => {
    // EC2's reads are eventually consistent: right after RunInstances, describing the new id may say NotFound.
    const [inst] = await ec2.launch({ imageId: DEMO_AMI_ID, name: 'known', tags: {}, clientToken: 'known' });
    const found = await ec2.listInstances({ ids: [inst!.id, 'i-0123456789abcdef0'] });
    expect(found.map((i) => i.id)).toEqual([inst!.id]);
    expect(await ec2.listInstances({ ids: ['i-0123456789abcdef0'] })).toEqual([]);
  });

  it('retries throttling until it succeeds', async () => {
    emu.control.injectFault({ action: 'DescribeInstances', code: 'RequestLimitExceeded', count: 3 });
    const before = emu.control.callCounts().total;
    await expect(ec2.listInstances({})).resolves.toEqual([]);
    expect(emu.control.callCounts().total - before).toBe(4);
  });

  it('gives up on endless throttling with kind "throttled"', async () => {
    emu.control.injectFault({ action: 'DescribeInstances', code: 'RequestLimitExceeded', count: 50 });
    const err = await failure(providerFor(emu, { maxAttempts: 3 }).listInstances({}));
    expect(err.kind).toBe('throttled');
  });

  it('surfaces a capacity error as "capacity", without retrying it', async () => {
    emu.control.setCapacity([{ availabilityZone: subnets[0]!.availabilityZone, max: 0 }]);
    const before = emu.control.callCounts().total;
    const err = await failure(ec2.launch({ imageId: DEMO_AMI_ID, subnetId: subnets[0]!.subnetId, name: 'c', tags: {}, clientToken: 'c' }));
    expect(err.kind).toBe('capacity');
    expect(err.providerCode).toBe('InsufficientInstanceCapacity');
    expect(emu.control.callCounts().total - before).toBe(1);
  });

  it('a refused credential surfaces as "auth"', async () => {
    emu.control.refuseAccessKey(TEST_ACCESS_KEY);
    const err = await failure(ec2.listInstances({}));
    expect(err.kind).toBe('auth');
    expect(err.message).toContain('AuthFailure');
  });

  it('an unsigned request surfaces as "auth"', async () => {
    // Without credentials the SDK cannot sign; the metadata service must not be asked (no traffic off this machine).
    const saved = process.env.AWS_EC2_METADATA_DISABLED;
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    try {
      const err = await failure(new AwsEc2Provider({ region: emu.region, endpoint: emu.url, backoffBaseMs: 1 }).listInstances({}));
      expect(err.kind).toBe('auth');
    } finally {
      if (saved === undefined) delete process.env.AWS_EC2_METADATA_DISABLED;
      else process.env.AWS_EC2_METADATA_DISABLED = saved;
    }
    // And a raw request without a signature is refused by the emulator as EC2 refuses it.
    const raw = await fetch(emu.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=DescribeInstances&Version=2016-11-15' });
    expect(raw.status).toBe(400);
    expect(await raw.text()).toContain('AWSAccessKeyId');
  });

  it('names bad ids: malformed AMI, unknown subnet', async () => {
    expect(await ec2.validateLaunch({ imageId: 'ami-xyz' })).toEqual([{ path: 'imageId', message: expect.stringContaining('not an AMI id') }]);
    expect(await ec2.validateLaunch({ imageId: DEMO_AMI_ID, subnetId: 'subnet-0123456789abcdef0' })).toEqual([{ path: 'subnetId', message: expect.stringContaining('does not exist') }]);
    expect(await ec2.validateLaunch({ imageId: 'ami-0000000000000000f' })).toEqual([{ path: 'imageId', message: expect.stringContaining('does not exist') }]);
    expect(await ec2.validateLaunch({ imageId: DEMO_AMI_ID, subnetId: subnets[0]!.subnetId })).toEqual([]);
  });

  it('tests the connection: zones and subnets', async () => {
    const r = await ec2.testConnection();
    expect(r.message).toContain('3 availability zones');
  });
});
