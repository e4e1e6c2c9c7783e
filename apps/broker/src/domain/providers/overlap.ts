import type { TagMatch } from '../../db/schema/providers.ts';

/**
 * Overlapping providers (issue 16 point 1, ADR 0018). Two providers overlap when one instance could
 * be listed by both: the inventory would hold it twice and the cost report would bill it twice.
 * Pure: no I/O, table-tested.
 */

/** The provider fields that decide what it can see. */
export interface ProviderReach {
  id: string;
  name: string;
  kind: string;
  enabled: boolean;
  region: string | null;
  endpoint: string | null;
  credentialsMode: string;
  accessKeyId: string | null;
  tagFilter: TagMatch;
}

/**
 * Where a provider's instance ids live: one EC2 endpoint and region (`aws` = AWS's own endpoint),
 * or a static provider's own namespace. The database computes the same string
 * (`stagedoor_instance_scope`, migration 0010) and keeps `(instance_scope, external_id)` unique,
 * so an instance has one owner whatever any broker node does.
 */
export function instanceScope(p: Pick<ProviderReach, 'id' | 'kind' | 'endpoint' | 'region'>): string {
  if (p.kind !== 'aws-ec2') return `${p.kind} ${p.id}`;
  return `ec2 ${p.endpoint ? p.endpoint.toLowerCase().replace(/\/+$/, '') : 'aws'} ${p.region ?? ''}`;
}

/**
 * Can one instance match both tag filters? Each filter requires every key it names (with one of its
 * values; an empty list: any value). Keys only one filter names constrain nothing for the other, so
 * the filters are disjoint only if some key named by both lists values on both sides with none in
 * common. `{}` matches every instance, so it overlaps every filter.
 */
export function tagFiltersOverlap(a: TagMatch, b: TagMatch): boolean {
  for (const [key, av] of Object.entries(a)) {
    const bv = b[key];
    if (bv === undefined || av.length === 0 || bv.length === 0) continue;
    if (!av.some((v) => bv.includes(v))) return false;
  }
  return true;
}

/**
 * Do these two providers overlap? Both enabled aws-ec2 providers, the same instance scope, and tag
 * filters an instance can match together. On AWS's own endpoint (no `endpoint`), providers with
 * different credentials may be different accounts, which see different instances; Stagedoor cannot
 * tell without asking AWS, so only the same credentials (the same access key, or both the broker's
 * default chain) count as the same account here. The database constraint still gives any instance
 * one owner, and inventory sync names the owner of each instance it skips.
 */
export function providersOverlap(a: ProviderReach, b: ProviderReach): boolean {
  if (a.id === b.id || a.kind !== 'aws-ec2' || b.kind !== 'aws-ec2' || !a.enabled || !b.enabled) return false;
  if (instanceScope(a) !== instanceScope(b)) return false;
  if (!a.endpoint && !sameCredentials(a, b)) return false;
  return tagFiltersOverlap(a.tagFilter, b.tagFilter);
}

function sameCredentials(a: ProviderReach, b: ProviderReach): boolean {
  if (a.credentialsMode !== b.credentialsMode) return false;
  return a.credentialsMode !== 'access-key' || a.accessKeyId === b.accessKeyId;
}

/** The message of the 409: both names, where, both filters, and what to do. */
export function overlapMessage(candidate: ProviderReach, owner: ProviderReach): string {
  const where = candidate.endpoint ? `${candidate.endpoint} (${candidate.region})` : `AWS ${candidate.region} with the same credentials`;
  return (
    `provider "${candidate.name}" would see instances that provider "${owner.name}" already owns: both list EC2 instances at ${where}, ` +
    `and their tag filters ${JSON.stringify(candidate.tagFilter)} and ${JSON.stringify(owner.tagFilter)} can match the same instance. ` +
    `Give both a tag key with different values (e.g. site: [studio] and site: [sandbox]), or disable one of them`
  );
}

/**
 * The tags a filter pins to one value (`site: [sandbox]` → `site=sandbox`), except Stagedoor's own
 * and `Name`, which the provider sets. A hand launch carries them unless it names them itself, so
 * the machine is one its provider's sync sees (and not one a neighbouring provider would).
 */
export function pinnedTags(filter: TagMatch): Record<string, string> {
  return Object.fromEntries(Object.entries(filter).flatMap(([k, v]) => (v.length === 1 && k !== 'Name' && !k.startsWith('stagedoor:') ? [[k, v[0]!]] : [])));
}
