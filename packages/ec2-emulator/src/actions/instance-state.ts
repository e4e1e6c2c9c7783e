// Start / Stop / Reboot / Terminate. Every named instance is checked before any changes,
// so a request with one bad instance changes nothing, as EC2 documents.

import { freeSlots, hasLimitsFor } from '../capacity.ts';
import { Ec2Error, incorrectInstanceState } from '../errors.ts';
import { notConfigured } from '../hibernation.ts';
import { HIBERNATE_REASON, SHUTDOWN_REASON, userInitiatedReason } from '../lifecycle.ts';
import { stateXml } from '../render-instance.ts';
import type { InstanceRecord, InstanceStateName } from '../types.ts';
import { items, text } from '../xml.ts';
import type { ActionContext, ActionDefinition } from './context.ts';
import { requireInstances } from './instance-lookup.ts';

interface StateChange {
  instanceId: string;
  previous: InstanceStateName;
  current: InstanceStateName;
}

function changesXml(changes: readonly StateChange[]): string {
  return items(
    'instancesSet',
    changes,
    (c) => text('instanceId', c.instanceId) + stateXml('currentState', c.current) + stateXml('previousState', c.previous),
  );
}

function apply(instances: readonly InstanceRecord[], change: (i: InstanceRecord) => void): StateChange[] {
  return instances.map((instance) => {
    const previous = instance.state;
    change(instance);
    return { instanceId: instance.instanceId, previous, current: instance.state };
  });
}

/** Starting stopped instances needs capacity again, like launching them. */
function checkStartCapacity(ctx: ActionContext, starting: readonly InstanceRecord[]): void {
  const wanted = new Map<string, { zone: string; type: string; count: number }>();
  for (const i of starting) {
    if (!hasLimitsFor(ctx.capacityLimits, i.availabilityZone)) continue;
    const key = `${i.availabilityZone}|${i.instanceType}`;
    const entry = wanted.get(key) ?? { zone: i.availabilityZone, type: i.instanceType, count: 0 };
    entry.count++;
    wanted.set(key, entry);
  }
  if (wanted.size === 0) return;
  ctx.store.settleReleasing(ctx.now);
  for (const { zone, type, count } of wanted.values()) {
    if (freeSlots(ctx.capacityLimits, ctx.store.capacity, zone, type) < count) {
      throw new Ec2Error('InsufficientInstanceCapacity', 'Insufficient capacity.', 500);
    }
  }
}

export const startInstances: ActionDefinition = {
  mutates: true,
  handle(ctx) {
    const { store, params, now } = ctx;
    const instances = requireInstances(store, params, now);
    for (const i of instances) {
      if (i.state === 'stopping' || i.state === 'shutting-down' || i.state === 'terminated') {
        throw incorrectInstanceState(`The instance '${i.instanceId}' is not in a state from which it can be started.`);
      }
    }
    checkStartCapacity(ctx, instances.filter((i) => i.state === 'stopped'));
    // Starting a pending or running instance is accepted and changes nothing.
    return changesXml(
      apply(instances, (i) => {
        if (i.state !== 'stopped') return;
        store.setState(i, 'pending', now);
        i.stateReason = undefined;
        i.stateTransitionReason = '';
      }),
    );
  },
};

export const stopInstances: ActionDefinition = {
  mutates: true,
  handle({ store, params, now }) {
    const instances = requireInstances(store, params, now);
    const hibernate = params.bool('Hibernate') ?? false;
    const force = params.bool('Force') ?? false;
    for (const i of instances) {
      if (i.state === 'pending' && !i.hasRun) {
        throw incorrectInstanceState(`Instance '${i.instanceId}' cannot be stopped as it has never reached the 'running' state.`);
      }
      if (i.state === 'pending' || i.state === 'shutting-down' || i.state === 'terminated') {
        throw incorrectInstanceState(`This instance '${i.instanceId}' is not in a state from which it can be stopped.`);
      }
      // Hibernation is decided at launch; asking a machine launched without it fails the request
      // (nothing is stopped) rather than quietly stopping it: the caller chooses what to do.
      if (hibernate && !i.hibernationConfigured && i.state === 'running') throw notConfigured(i.instanceId);
    }
    return changesXml(
      apply(instances, (i) => {
        if (i.state === 'running') {
          i.hibernated = hibernate || undefined;
          store.setState(i, 'stopping', now, hibernate ? HIBERNATE_REASON : SHUTDOWN_REASON);
          i.stateTransitionReason = userInitiatedReason(now);
        } else if (i.state === 'stopping' && force) {
          // A forced stop abandons a hibernation under way: the next start boots.
          i.hibernated = undefined;
          store.setState(i, 'stopped', now);
        }
      }),
    );
  },
};

export const rebootInstances: ActionDefinition = {
  mutates: false,
  handle({ store, params, now }) {
    const instances = requireInstances(store, params, now);
    for (const i of instances) {
      if (i.state === 'stopped' || i.state === 'stopping') {
        throw incorrectInstanceState(`The instance '${i.instanceId}' is not in a state from which it can be rebooted.`);
      }
    }
    // A reboot keeps the instance running; requests for terminated instances are ignored.
    return text('return', true);
  },
};

export const terminateInstances: ActionDefinition = {
  mutates: true,
  handle({ store, params, now }) {
    const instances = requireInstances(store, params, now);
    const protectedOne = instances.find((i) => i.disableApiTermination && i.state !== 'terminated');
    if (protectedOne) {
      throw new Ec2Error(
        'OperationNotPermitted',
        `The instance '${protectedOne.instanceId}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.`,
      );
    }
    return changesXml(
      apply(instances, (i) => {
        if (i.state === 'terminated' || i.state === 'shutting-down') return;
        store.setState(i, 'shutting-down', now, SHUTDOWN_REASON);
        i.stateTransitionReason = userInitiatedReason(now);
      }),
    );
  },
};
