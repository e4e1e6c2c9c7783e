import { describe, expect, it } from 'vitest';
import { planSync, type KnownWorkstation } from '../../src/domain/providers/sync-plan.ts';
import type { CloudInstance } from '../../src/providers/cloud/cloud-provider.ts';

const inst = (id: string, over: Partial<CloudInstance> = {}): CloudInstance => ({
  id,
  name: `ws-${id}`,
  state: 'running',
  privateAddress: '10.0.0.1',
  instanceType: 'g5.xlarge',
  availabilityZone: 'us-east-1a',
  subnetId: 'subnet-1',
  imageId: 'ami-1',
  tags: { Name: `ws-${id}` },
  launchTime: null,
  clientToken: null,
  ...over,
});
const known = (id: string, externalId: string | null, over: Partial<KnownWorkstation> = {}): KnownWorkstation => ({
  id,
  externalId,
  launchToken: null,
  name: `ws-${externalId}`,
  powerState: 'running',
  privateAddress: '10.0.0.1',
  instanceType: 'g5.xlarge',
  availabilityZone: 'us-east-1a',
  subnetId: 'subnet-1',
  imageId: 'ami-1',
  tags: { Name: `ws-${externalId}` },
  ...over,
});

describe('planSync (pure)', () => {
  const cases: { name: string; known: KnownWorkstation[]; observed: CloudInstance[]; create: string[]; update: [string, boolean][]; vanished: string[] }[] = [
    { name: 'new instances are created', known: [], observed: [inst('i-1'), inst('i-2')], create: ['i-1', 'i-2'], update: [], vanished: [] },
    { name: 'an unchanged instance changes nothing', known: [known('w1', 'i-1')], observed: [inst('i-1')], create: [], update: [], vanished: [] },
    { name: 'a power change is an update that turns history over', known: [known('w1', 'i-1')], observed: [inst('i-1', { state: 'stopped' })], create: [], update: [['w1', true]], vanished: [] },
    { name: 'a tag or address change is an update without a power change', known: [known('w1', 'i-1')], observed: [inst('i-1', { tags: { Name: 'ws-i-1', team: 'edit' } })], create: [], update: [['w1', false]], vanished: [] },
    { name: 'a vanished machine is marked terminated', known: [known('w1', 'i-1'), known('w2', 'i-2')], observed: [inst('i-1')], create: [], update: [], vanished: ['w2'] },
    { name: 'an already-terminated vanished machine is left alone', known: [known('w1', 'i-1', { powerState: 'terminated' })], observed: [], create: [], update: [], vanished: [] },
    { name: 'a terminated instance never seen before is not imported', known: [], observed: [inst('i-9', { state: 'terminated' })], create: [], update: [], vanished: [] },
    { name: 'a terminated instance we know is updated to terminated', known: [known('w1', 'i-1')], observed: [inst('i-1', { state: 'terminated' })], create: [], update: [['w1', true]], vanished: [] },
    {
      name: 'an instance launched with our token before a crash is adopted, not duplicated',
      known: [known('w1', null, { launchToken: 'tok-1', powerState: 'pending' })],
      observed: [inst('i-1', { clientToken: 'tok-1' })],
      create: [],
      update: [['w1', true]],
      vanished: [],
    },
  ];
  it.each(cases)('$name', (c) => {
    const plan = planSync(c.known, c.observed);
    expect(plan.create.map((f) => f.externalId)).toEqual(c.create);
    expect(plan.update.map((u) => [u.id, u.powerChanged])).toEqual(c.update);
    expect(plan.vanished).toEqual(c.vanished);
  });

  it('uses the Name tag, or the instance id when there is none', () => {
    const plan = planSync([], [inst('i-1', { name: null, tags: {} })]);
    expect(plan.create[0]!.name).toBe('i-1');
  });
});
