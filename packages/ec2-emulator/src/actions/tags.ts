// CreateTags / DeleteTags on instances, volumes, network interfaces, subnets, VPCs,
// security groups and images. All resources are resolved first, so one bad id leaves
// every resource untouched.

import { Ec2Error, instancesNotFound, malformedId, missingParameter } from '../errors.ts';
import { isWellFormedId } from '../ids.ts';
import type { Ec2Store } from '../store.ts';
import { mergeTags, removeTags, validateTags } from '../tag-rules.ts';
import type { Tag } from '../types.ts';
import { text } from '../xml.ts';
import type { ActionDefinition } from './context.ts';

interface Tagged {
  tags: Tag[];
}

function notFound(code: string, message: string): Ec2Error {
  return new Ec2Error(code, message);
}

function resolve(store: Ec2Store, id: string, now: number): Tagged {
  const prefix = id.slice(0, id.indexOf('-'));
  switch (prefix) {
    case 'i': {
      if (!isWellFormedId('i', id)) throw malformedId('InvalidInstanceID.Malformed', id);
      const instance = store.instance(id, now);
      if (!instance) throw instancesNotFound([id]);
      return instance;
    }
    case 'vol': {
      const owner = store.instanceIdByVolume(id);
      const instance = owner === undefined ? undefined : store.instance(owner, now);
      if (!instance || instance.state === 'terminated') throw notFound('InvalidVolume.NotFound', `The volume '${id}' does not exist.`);
      return instance.rootVolume;
    }
    case 'eni': {
      const owner = store.instanceIdByNetworkInterface(id);
      const instance = owner === undefined ? undefined : store.instance(owner, now);
      if (!instance || instance.state === 'terminated') {
        throw notFound('InvalidNetworkInterfaceID.NotFound', `The networkInterface ID '${id}' does not exist`);
      }
      return instance.networkInterface;
    }
    case 'subnet':
      return store.subnets.get(id) ?? throwIt(notFound('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`));
    case 'vpc':
      return store.vpcs.get(id) ?? throwIt(notFound('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`));
    case 'sg':
      return store.securityGroups.get(id) ?? throwIt(notFound('InvalidGroup.NotFound', `The security group '${id}' does not exist`));
    case 'ami':
      return store.images.get(id) ?? throwIt(notFound('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`));
    default:
      throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`);
  }
}

function throwIt(error: Ec2Error): never {
  throw error;
}

function resources(store: Ec2Store, ids: readonly string[], now: number): Tagged[] {
  if (ids.length === 0) throw missingParameter('ResourceId');
  return [...new Set(ids)].map((id) => resolve(store, id, now));
}

export const createTags: ActionDefinition = {
  mutates: true,
  handle({ store, params, now }) {
    const targets = resources(store, params.list('ResourceId'), now);
    const tags = params.tags();
    if (tags.length === 0) throw missingParameter('Tag');
    validateTags(tags);
    const merged = targets.map((t) => mergeTags(t.tags, tags));
    targets.forEach((target, i) => {
      target.tags = merged[i] ?? target.tags;
    });
    return text('return', true);
  },
};

export const deleteTags: ActionDefinition = {
  mutates: true,
  handle({ store, params, now }) {
    const targets = resources(store, params.list('ResourceId'), now);
    const patterns = params.tagPatterns();
    for (const target of targets) target.tags = removeTags(target.tags, patterns);
    return text('return', true);
  },
};
