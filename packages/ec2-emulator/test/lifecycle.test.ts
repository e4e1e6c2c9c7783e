import {
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID } from '../src/index.ts';
import type { Ec2Emulator } from '../src/index.ts';
import { ec2Client, expectEc2Error, startTestEmulator } from './support.ts';

let emulator: Ec2Emulator;
let ec2: ReturnType<typeof ec2Client>;

beforeEach(async () => {
  // pending 1 s, stopping 2 s, shutting-down 3 s (see support.ts); terminated kept an hour.
  emulator = await startTestEmulator();
  ec2 = ec2Client(emulator);
});

afterEach(async () => {
  ec2.destroy();
  await emulator.close();
});

async function launch(extra: Record<string, unknown> = {}): Promise<string> {
  const out = await ec2.send(new RunInstancesCommand({ ImageId: DEMO_AMI_ID, InstanceType: 't3.medium', MinCount: 1, MaxCount: 1, ...extra }));
  return out.Instances?.[0]?.InstanceId ?? '';
}

async function stateOf(id: string): Promise<string | undefined> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

describe('instance lifecycle on the emulated clock', () => {
  it('goes pending → running → stopping → stopped → pending → running → shutting-down → terminated → gone', async () => {
    const id = await launch();
    expect(await stateOf(id)).toBe('pending');
    emulator.control.advanceTime(999);
    expect(await stateOf(id)).toBe('pending');
    emulator.control.advanceTime(1);
    expect(await stateOf(id)).toBe('running');

    const stop = await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    expect(stop.StoppingInstances).toEqual([
      { InstanceId: id, CurrentState: { Code: 64, Name: 'stopping' }, PreviousState: { Code: 16, Name: 'running' } },
    ]);
    expect(await stateOf(id)).toBe('stopping');
    emulator.control.advanceTime(2_000);
    const stopped = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]?.Instances?.[0];
    expect(stopped?.State).toEqual({ Code: 80, Name: 'stopped' });
    expect(stopped?.StateReason?.Code).toBe('Client.UserInitiatedShutdown');
    expect(stopped?.StateTransitionReason).toBe('User initiated (2025-01-06 09:00:01 GMT)');

    // Stopping a stopped instance is accepted and changes nothing.
    const again = await ec2.send(new StopInstancesCommand({ InstanceIds: [id], Force: true }));
    expect(again.StoppingInstances?.[0]?.CurrentState?.Name).toBe('stopped');

    const start = await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
    expect(start.StartingInstances).toEqual([
      { InstanceId: id, CurrentState: { Code: 0, Name: 'pending' }, PreviousState: { Code: 80, Name: 'stopped' } },
    ]);
    emulator.control.advanceTime(1_000);
    expect(await stateOf(id)).toBe('running');

    const reboot = await ec2.send(new RebootInstancesCommand({ InstanceIds: [id] }));
    expect(reboot.$metadata.httpStatusCode).toBe(200);
    expect(await stateOf(id)).toBe('running');

    const terminate = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(terminate.TerminatingInstances?.[0]?.CurrentState).toEqual({ Code: 32, Name: 'shutting-down' });
    expect(terminate.TerminatingInstances?.[0]?.PreviousState).toEqual({ Code: 16, Name: 'running' });
    emulator.control.advanceTime(3_000);
    expect(await stateOf(id)).toBe('terminated');
    // Terminating again is idempotent.
    const twice = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(twice.TerminatingInstances?.[0]?.CurrentState?.Name).toBe('terminated');
    // Still listed for about an hour, then gone.
    emulator.control.advanceTime(59 * 60_000);
    expect((await ec2.send(new DescribeInstancesCommand({}))).Reservations).toHaveLength(1);
    emulator.control.advanceTime(60_000);
    expect((await ec2.send(new DescribeInstancesCommand({}))).Reservations).toHaveLength(0);
    await expectEc2Error(ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })), 'InvalidInstanceID.NotFound');
  });

  it('treats a large fast-forward as all the transitions in between', async () => {
    const id = await launch();
    emulator.control.advanceTime(10_000);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    emulator.control.advanceTime(10 * 60_000);
    const instance = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations?.[0]?.Instances?.[0];
    expect(instance?.State?.Name).toBe('terminated');
    expect(instance?.PrivateIpAddress).toBeUndefined();
  });

  it('refuses state changes EC2 refuses, and accepts the no-ops it accepts', async () => {
    const id = await launch();
    await expectEc2Error(ec2.send(new StopInstancesCommand({ InstanceIds: [id] })), 'IncorrectInstanceState', 400);
    emulator.control.advanceTime(1_000);
    // Starting a running instance succeeds without a change.
    const start = await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
    expect(start.StartingInstances?.[0]?.CurrentState?.Name).toBe('running');
    expect(start.StartingInstances?.[0]?.PreviousState?.Name).toBe('running');

    await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    const notYet = await expectEc2Error(ec2.send(new StartInstancesCommand({ InstanceIds: [id] })), 'IncorrectInstanceState');
    expect(notYet.message).toContain('is not in a state from which it can be started');
    emulator.control.advanceTime(2_000);
    await expectEc2Error(ec2.send(new RebootInstancesCommand({ InstanceIds: [id] })), 'IncorrectInstanceState');

    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    emulator.control.advanceTime(3_000);
    const stopTerminated = await expectEc2Error(ec2.send(new StopInstancesCommand({ InstanceIds: [id] })), 'IncorrectInstanceState', 400);
    expect(stopTerminated.message).toBe(`This instance '${id}' is not in a state from which it can be stopped.`);
    await expectEc2Error(ec2.send(new StartInstancesCommand({ InstanceIds: [id] })), 'IncorrectInstanceState');
    // Rebooting a terminated instance is ignored.
    await ec2.send(new RebootInstancesCommand({ InstanceIds: [id] }));
  });

  it('changes nothing when one instance of a request is unknown or protected', async () => {
    const id = await launch();
    const protectedId = await launch({ DisableApiTermination: true });
    await expectEc2Error(
      ec2.send(new TerminateInstancesCommand({ InstanceIds: [id, 'i-0123456789abcdef0'] })),
      'InvalidInstanceID.NotFound',
    );
    await expectEc2Error(ec2.send(new TerminateInstancesCommand({ InstanceIds: [id, protectedId] })), 'OperationNotPermitted');
    expect(await stateOf(id)).toBe('pending');
    await expectEc2Error(ec2.send(new StopInstancesCommand({ InstanceIds: ['i-bad'] })), 'InvalidInstanceID.Malformed');
    await expectEc2Error(ec2.send(new TerminateInstancesCommand({ InstanceIds: [] })), 'InvalidParameterCombination');
  });
  // Hibernation: test/hibernation.test.ts.
});

describe('boot-time jitter', () => {
  it('pendingJitterMs draws a fixed extra boot time per instance and boot: boots differ, every look agrees', async () => {
    emulator.control.setDelays({ pendingMs: 60_000, pendingJitterMs: 60_000 });
    const out = await ec2.send(new RunInstancesCommand({ ImageId: DEMO_AMI_ID, InstanceType: 't3.medium', MinCount: 20, MaxCount: 20 }));
    const ids = (out.Instances ?? []).map((i) => i.InstanceId!);
    const runningAfter = new Map<string, number>();
    for (let s = 0; s <= 121; s++) {
      for (const i of emulator.control.instances()) if (i.state === 'running' && !runningAfter.has(i.instanceId)) runningAfter.set(i.instanceId, s);
      emulator.control.advanceTime(1_000);
    }
    const boots = ids.map((id) => runningAfter.get(id)!);
    expect(Math.min(...boots)).toBeGreaterThanOrEqual(60);
    expect(Math.max(...boots)).toBeLessThanOrEqual(121);
    expect(new Set(boots).size).toBeGreaterThan(5);
  });
});

describe('DescribeInstanceStatus', () => {
  it('describes running instances, or every instance with IncludeAllInstances', async () => {
    emulator.control.setDelays({ statusInitializingMs: 60_000 });
    const running = await launch();
    const stopped = await launch();
    emulator.control.advanceTime(1_000);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [stopped] }));
    emulator.control.advanceTime(2_000);

    const onlyRunning = await ec2.send(new DescribeInstanceStatusCommand({}));
    expect(onlyRunning.InstanceStatuses?.map((s) => s.InstanceId)).toEqual([running]);
    expect(onlyRunning.InstanceStatuses?.[0]?.InstanceStatus?.Status).toBe('initializing');
    expect(onlyRunning.InstanceStatuses?.[0]?.AvailabilityZone).toBe('us-east-1a');

    emulator.control.advanceTime(60_000);
    const all = await ec2.send(new DescribeInstanceStatusCommand({ IncludeAllInstances: true }));
    const byId = new Map(all.InstanceStatuses?.map((s) => [s.InstanceId, s]));
    expect(byId.get(running)?.InstanceStatus?.Status).toBe('ok');
    expect(byId.get(running)?.SystemStatus?.Details?.[0]).toEqual({ Name: 'reachability', Status: 'passed' });
    expect(byId.get(stopped)?.InstanceState).toEqual({ Code: 80, Name: 'stopped' });
    expect(byId.get(stopped)?.InstanceStatus?.Status).toBe('not-applicable');

    const byIdOnly = await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [stopped], IncludeAllInstances: true }));
    expect(byIdOnly.InstanceStatuses).toHaveLength(1);
  });

  it('reports a failed check as impaired (details failed), filters on it, and passes again when cleared', async () => {
    emulator.control.setDelays({ statusInitializingMs: 0 });
    const sick = await launch();
    const well = await launch();
    emulator.control.advanceTime(1_000);
    emulator.control.impairInstance(sick, { system: true });
    const out = await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [sick, well] }));
    const byId = new Map(out.InstanceStatuses?.map((s) => [s.InstanceId, s]));
    expect(byId.get(sick)?.SystemStatus).toEqual({ Status: 'impaired', Details: [{ Name: 'reachability', Status: 'failed' }] });
    expect(byId.get(sick)?.InstanceStatus?.Status).toBe('ok');
    expect(byId.get(well)?.SystemStatus?.Status).toBe('ok');
    const filtered = await ec2.send(new DescribeInstanceStatusCommand({ Filters: [{ Name: 'system-status.status', Values: ['impaired'] }] }));
    expect(filtered.InstanceStatuses?.map((s) => s.InstanceId)).toEqual([sick]);
    emulator.control.impairInstance(sick, null);
    const healed = await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [sick] }));
    expect(healed.InstanceStatuses?.[0]?.SystemStatus?.Status).toBe('ok');
  });
});
