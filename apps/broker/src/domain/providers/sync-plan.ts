import type { PowerState } from '../../db/schema/providers.ts';
import type { CloudInstance } from '../../providers/cloud/cloud-provider.ts';

/** What the broker knows of one of the provider's machines (the fields sync may change). */
export interface KnownWorkstation {
  id: string;
  externalId: string | null;
  launchToken: string | null;
  name: string;
  powerState: PowerState;
  privateAddress: string | null;
  instanceType: string | null;
  availabilityZone: string | null;
  subnetId: string | null;
  imageId: string | null;
  tags: Record<string, string>;
}

export type SyncFields = Omit<KnownWorkstation, 'id' | 'launchToken'> & { externalId: string };

export interface SyncPlan {
  create: SyncFields[];
  /** Only rows where something changed; `powerChanged` says whether a history interval turns over. */
  update: { id: string; fields: SyncFields; powerChanged: boolean; adopted: boolean }[];
  /** Known, not terminated, and gone from the provider's answer. */
  vanished: string[];
}

/**
 * Inventory sync as a pure function: the broker's rows and the provider's answer in, the changes
 * out. Never creates a second row for an instance (matched by instance id, or by the launch token
 * of a row written just before a launch whose answer was lost); never imports an instance that is
 * already terminated; marks vanished machines terminated rather than deleting their history.
 */
export function planSync(known: KnownWorkstation[], observed: CloudInstance[]): SyncPlan {
  const byExternal = new Map<string, KnownWorkstation>();
  const byToken = new Map<string, KnownWorkstation>();
  for (const k of known) {
    if (k.externalId) byExternal.set(k.externalId, k);
    else if (k.launchToken) byToken.set(k.launchToken, k);
  }
  const plan: SyncPlan = { create: [], update: [], vanished: [] };
  const seen = new Set<string>();
  for (const inst of observed) {
    seen.add(inst.id);
    const fields = fieldsOf(inst);
    const existing = byExternal.get(inst.id);
    if (existing) {
      if (differs(existing, fields)) plan.update.push({ id: existing.id, fields, powerChanged: existing.powerState !== fields.powerState, adopted: false });
      continue;
    }
    const pending = inst.clientToken ? byToken.get(inst.clientToken) : undefined;
    if (pending) {
      byToken.delete(inst.clientToken!);
      plan.update.push({ id: pending.id, fields, powerChanged: pending.powerState !== fields.powerState, adopted: true });
      continue;
    }
    if (fields.powerState !== 'terminated') plan.create.push(fields);
  }
  for (const k of known) {
    if (k.externalId && !seen.has(k.externalId) && k.powerState !== 'terminated') plan.vanished.push(k.id);
  }
  return plan;
}

function fieldsOf(i: CloudInstance): SyncFields {
  return {
    externalId: i.id,
    name: i.name ?? i.id,
    powerState: i.state,
    privateAddress: i.privateAddress,
    instanceType: i.instanceType,
    availabilityZone: i.availabilityZone,
    subnetId: i.subnetId,
    imageId: i.imageId,
    tags: i.tags,
  };
}

function differs(k: KnownWorkstation, f: SyncFields): boolean {
  return (
    k.name !== f.name ||
    k.powerState !== f.powerState ||
    k.privateAddress !== f.privateAddress ||
    k.instanceType !== f.instanceType ||
    k.availabilityZone !== f.availabilityZone ||
    k.subnetId !== f.subnetId ||
    k.imageId !== f.imageId ||
    !sameTags(k.tags, f.tags)
  );
}

function sameTags(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}
