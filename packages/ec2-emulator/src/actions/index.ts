// The EC2 actions the emulator answers, by Query API `Action` name.

import type { ActionDefinition } from './context.ts';
import { describeInstances } from './describe-instances.ts';
import { describeImages } from './images.ts';
import { describeInstanceStatus } from './instance-status.ts';
import { describeInstanceTypes } from './instance-types.ts';
import { rebootInstances, startInstances, stopInstances, terminateInstances } from './instance-state.ts';
import { describeAvailabilityZones, describeSecurityGroups, describeSubnets, describeVpcs } from './network.ts';
import { runInstances } from './run-instances.ts';
import { createTags, deleteTags } from './tags.ts';

export const ACTIONS: Readonly<Record<string, ActionDefinition>> = {
  RunInstances: runInstances,
  DescribeInstances: describeInstances,
  DescribeInstanceStatus: describeInstanceStatus,
  DescribeInstanceTypes: describeInstanceTypes,
  StartInstances: startInstances,
  StopInstances: stopInstances,
  RebootInstances: rebootInstances,
  TerminateInstances: terminateInstances,
  CreateTags: createTags,
  DeleteTags: deleteTags,
  DescribeImages: describeImages,
  DescribeSubnets: describeSubnets,
  DescribeSecurityGroups: describeSecurityGroups,
  DescribeVpcs: describeVpcs,
  DescribeAvailabilityZones: describeAvailabilityZones,
};

export type { ActionContext, ActionDefinition } from './context.ts';
