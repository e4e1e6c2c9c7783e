import { DescribeInstancesCommand, RunInstancesCommand, StartInstancesCommand, StopInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID } from '../src/index.ts';
import type { Ec2Emulator } from '../src/index.ts';
import { ec2Client, expectEc2Error, fakeSigV4, rawQuery, startTestEmulator } from './support.ts';

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

const launch = (extra: Record<string, unknown> = {}) =>
  new RunInstancesCommand({ ImageId: DEMO_AMI_ID, InstanceType: 'g5.xlarge', MinCount: 1, MaxCount: 1, ...extra });

describe('injected faults', () => {
  it('throttles the next two RunInstances; the SDK retries and succeeds on the third attempt', async () => {
    emulator.control.injectFault({ action: 'RunInstances', code: 'RequestLimitExceeded', count: 2 });
    const retrying = ec2Client(emulator, { maxAttempts: 3 });
    const out = await retrying.send(launch());
    retrying.destroy();
    expect(out.Instances).toHaveLength(1);
    expect(out.$metadata.attempts).toBe(3);
    const counts = emulator.control.callCounts();
    expect(counts.byAction.RunInstances).toBe(3);
    expect(counts.errorsByCode.RequestLimitExceeded).toBe(2);
    expect(emulator.control.instances()).toHaveLength(1);
  });

  it('surfaces throttling and unavailability as 503 without retries', async () => {
    emulator.control.injectFault({ action: 'DescribeInstances', code: 'RequestLimitExceeded' });
    emulator.control.injectFault({ action: 'DescribeInstances', code: 'Unavailable' });
    const throttled = await expectEc2Error(ec2.send(new DescribeInstancesCommand({})), 'RequestLimitExceeded', 503);
    expect(throttled.message).toBe('Request limit exceeded.');
    await expectEc2Error(ec2.send(new DescribeInstancesCommand({})), 'Unavailable', 503);
    // Used up: the next call passes, and other actions were never affected.
    await ec2.send(new DescribeInstancesCommand({}));
    expect(emulator.control.listFaults()).toEqual([]);
  });

  it('draws probabilistic faults from a seeded generator, so runs repeat exactly', async () => {
    const pattern = async (): Promise<string> => {
      emulator.control.clearFaults();
      emulator.control.setFaultSeed(42);
      emulator.control.injectFault({ code: 'Unavailable', rate: 0.5 });
      let outcomes = '';
      for (let i = 0; i < 20; i++) {
        outcomes += await ec2.send(new DescribeInstancesCommand({})).then(
          () => '.',
          () => 'x',
        );
      }
      return outcomes;
    };
    const first = await pattern();
    expect(first).toContain('x');
    expect(first).toContain('.');
    expect(await pattern()).toBe(first);
  });
});

describe('capacity limits', () => {
  it('fails a launch that cannot reach MinCount with InsufficientInstanceCapacity and launches what fits', async () => {
    emulator.control.setCapacity([
      { availabilityZone: 'us-east-1a', instanceType: 'g5.xlarge', max: 2 },
      { availabilityZone: 'us-east-1b', max: 0 },
    ]);
    const subnets = emulator.control.defaultNetwork().subnets;
    const subnetA = subnets.find((s) => s.availabilityZone === 'us-east-1a')?.subnetId;
    const subnetB = subnets.find((s) => s.availabilityZone === 'us-east-1b')?.subnetId;

    const error = await expectEc2Error(ec2.send(launch({ SubnetId: subnetA, MinCount: 3, MaxCount: 3 })), 'InsufficientInstanceCapacity', 500);
    expect(error.message).toContain('We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested (us-east-1a)');
    expect(error.message).toContain('choosing us-east-1c');
    await expectEc2Error(ec2.send(launch({ SubnetId: subnetB })), 'InsufficientInstanceCapacity', 500);

    const partial = await ec2.send(launch({ SubnetId: subnetA, MinCount: 1, MaxCount: 5 }));
    expect(partial.Instances).toHaveLength(2);
    // Other types are not limited in us-east-1a.
    await ec2.send(launch({ SubnetId: subnetA, InstanceType: 't3.micro' }));

    // Stopped instances release capacity; starting them needs it again.
    const ids = partial.Instances?.map((i) => i.InstanceId ?? '') ?? [];
    emulator.control.advanceTime(1_000);
    await ec2.send(new StopInstancesCommand({ InstanceIds: ids }));
    await expectEc2Error(ec2.send(launch({ SubnetId: subnetA })), 'InsufficientInstanceCapacity');
    emulator.control.advanceTime(2_000);
    await ec2.send(launch({ SubnetId: subnetA }));
    await expectEc2Error(ec2.send(new StartInstancesCommand({ InstanceIds: ids })), 'InsufficientInstanceCapacity', 500);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
  });

  it('picks a default subnet with capacity when no subnet is given', async () => {
    emulator.control.setCapacity([{ availabilityZone: 'us-east-1a', max: 0 }]);
    const out = await ec2.send(launch());
    expect(out.Instances?.[0]?.Placement?.AvailabilityZone).toBe('us-east-1b');
  });
});

describe('authentication and protocol errors', () => {
  it('refuses an unsigned request the way EC2 does', async () => {
    const response = await rawQuery(emulator, 'Action=DescribeInstances&Version=2016-11-15');
    expect(response.status).toBe(400);
    expect(response.text).toContain('<Response><Errors><Error><Code>MissingParameter</Code>');
    expect(response.text).toContain('The request must contain the parameter AWSAccessKeyId');
    expect(response.text).toMatch(/<RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>/);
  });

  it('refuses an access key marked as refused with AuthFailure', async () => {
    emulator.control.refuseAccessKey('AKIDREVOKED');
    const revoked = ec2Client(emulator, { credentials: { accessKeyId: 'AKIDREVOKED', secretAccessKey: 'y' } });
    const error = await expectEc2Error(revoked.send(new DescribeInstancesCommand({})), 'AuthFailure', 401);
    expect(error.message).toBe('AWS was not able to validate the provided access credentials');
    emulator.control.allowAccessKey('AKIDREVOKED');
    await revoked.send(new DescribeInstancesCommand({}));
    revoked.destroy();
  });

  it('answers unknown actions with InvalidAction and accepts query-string signing', async () => {
    const unknown = await rawQuery(emulator, 'Action=DescribeUnicorns&Version=2016-11-15', { authorization: fakeSigV4() });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('<Code>InvalidAction</Code>');

    const query = new URLSearchParams({
      Action: 'DescribeAvailabilityZones',
      Version: '2016-11-15',
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': 'AKIDEXAMPLE/20250106/us-east-1/ec2/aws4_request',
      'X-Amz-Signature': 'abc123',
    });
    const signedByQuery = await fetch(`${emulator.url}/?${query.toString()}`);
    const text = await signedByQuery.text();
    expect(signedByQuery.status).toBe(200);
    expect(text).toContain('<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">');
    expect(text).toMatch(/<requestId>[0-9a-f-]{36}<\/requestId>/);
    expect(signedByQuery.headers.get('content-type')).toBe('text/xml;charset=UTF-8');
  });

  it('answers DryRun with DryRunOperation and changes nothing', async () => {
    await expectEc2Error(ec2.send(launch({ DryRun: true })), 'DryRunOperation', 412);
    expect(emulator.control.instances()).toHaveLength(0);
  });
});

describe('control API over HTTP', () => {
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const response = await fetch(`${emulator.url}/_emulator/${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, json: await response.json() };
  };

  it('sets delays and faults, moves time, seeds subnets and reads call counters', async () => {
    expect((await call('PUT', 'delays', { pendingMs: 30_000 })).json).toMatchObject({ pendingMs: 30_000 });
    await call('POST', 'faults', { action: 'TerminateInstances', code: 'Unavailable', count: 1 });
    const seeded = await call('POST', 'subnets', { subnets: [{ availabilityZone: 'us-east-1a', cidrBlock: '10.9.0.0/24' }] });
    const subnetId = (seeded.json as Array<{ subnetId: string }>)[0]?.subnetId;

    const out = await ec2.send(launch({ SubnetId: subnetId }));
    const id = out.Instances?.[0]?.InstanceId ?? '';
    await call('POST', 'time/advance', { seconds: 30 });
    const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    expect(described.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('running');
    await expectEc2Error(ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })), 'Unavailable');

    const calls = (await call('GET', 'calls')).json as { total: number; byAction: Record<string, number> };
    expect(calls.byAction).toEqual({ RunInstances: 1, DescribeInstances: 1, TerminateInstances: 1 });
    expect(calls.total).toBe(3);
    await call('DELETE', 'calls');
    expect(((await call('GET', 'calls')).json as { total: number }).total).toBe(0);

    await call('PUT', 'capacity', { limits: [{ availabilityZone: 'us-east-1a', max: 0 }] });
    await expectEc2Error(ec2.send(launch({ SubnetId: subnetId })), 'InsufficientInstanceCapacity');
    await call('POST', 'refused-keys', { accessKeyId: 'AKIDEXAMPLE' });
    await expectEc2Error(ec2.send(new DescribeInstancesCommand({})), 'AuthFailure');
    await call('DELETE', 'refused-keys/AKIDEXAMPLE');

    expect((await call('POST', 'reset')).status).toBe(200);
    expect((await ec2.send(new DescribeInstancesCommand({}))).Reservations).toEqual([]);
    expect((await call('GET', 'capacity')).json).toEqual([]);
    expect(await call('POST', 'subnets', { availabilityZone: 'nowhere', cidrBlock: '10.0.0.0/24' })).toMatchObject({ status: 400 });
    expect((await call('GET', 'nothing-here')).status).toBe(404);
  });
});
