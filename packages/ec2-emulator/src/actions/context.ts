// What every action handler receives. Handlers return the body of the XML response
// (without the envelope and requestId) or throw an Ec2Error.

import type { QueryParams } from '../query.ts';
import type { Ec2Store } from '../store.ts';
import type { CapacityLimit } from '../types.ts';

export interface ActionContext {
  store: Ec2Store;
  params: QueryParams;
  /** Emulated time of this request. */
  now: number;
  capacityLimits: readonly CapacityLimit[];
}

export interface ActionDefinition {
  handle(ctx: ActionContext): string;
  /** Whether a successful call changes state (and so must be persisted). */
  mutates: boolean;
}
