// DescribeInstanceTypes, as far as hibernation needs it: per named type, whether it supports
// hibernation, its memory and vCPUs (modelled, see hibernation.ts), and whether it is bare metal.

import { invalidParameterValue } from '../errors.ts';
import { hibernationSupported, memoryGiB } from '../hibernation.ts';
import { el, items, text } from '../xml.ts';
import type { ActionDefinition } from './context.ts';

const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
/** Listed when no type is named (EC2 lists its whole catalogue; a few common ones stand for it). */
const COMMON = ['t3.medium', 'm5.large', 'm5.xlarge', 'm5.2xlarge', 'c5.xlarge', 'r5.xlarge', 'g4dn.xlarge', 'g5.xlarge', 'g5.2xlarge', 'g6.xlarge'];

function typeXml(type: string): string {
  const size = type.split('.')[1] ?? '';
  const gib = memoryGiB(type);
  return (
    text('instanceType', type) +
    text('currentGeneration', true) +
    text('bareMetal', size.startsWith('metal')) +
    text('hibernationSupported', hibernationSupported(type)) +
    el('vCpuInfo', text('defaultVCpus', Math.max(1, Math.round(gib / (type.startsWith('r') ? 8 : type.startsWith('c') ? 2 : 4))))) +
    el('memoryInfo', text('sizeInMiB', Math.round(gib * 1024)))
  );
}

export const describeInstanceTypes: ActionDefinition = {
  mutates: false,
  handle({ params }) {
    const named = params.list('InstanceType');
    for (const t of named) if (!INSTANCE_TYPE.test(t)) throw invalidParameterValue(`The following supplied instance types do not exist: [${t}]`);
    const filters = params.filters();
    const hibernation = filters.find((f) => f.name === 'hibernation-supported');
    let types = named.length ? named : COMMON;
    if (hibernation) types = types.filter((t) => hibernation.values.includes(String(hibernationSupported(t))));
    return items('instanceTypeSet', types, typeXml);
  },
};
