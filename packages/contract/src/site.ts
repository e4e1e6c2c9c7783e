import { z } from 'zod';
import { SiteAuthServer } from './auth-servers.ts';
import { CreateProvider, RegisterHost } from './providers.ts';
import { PolicyBody, PowerPlanBody, ProtocolPlanBody, ReleasePlanBody } from './policies.ts';
import { CreatePool } from './pools.ts';
import { ClusterName, GatewayName, RoutedPorts, SniDomain } from './gateway.ts';

const Name = z.string().trim().min(1).max(128);

/** Names must be unique within each list of the file. */
const uniqueNames = <T extends z.ZodType<{ name: string }>>(item: T) =>
  z.array(item).superRefine((items, ctx) => {
    const seen = new Map<string, number>();
    items.forEach((it, i) => {
      const key = it.name.toLowerCase();
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${it.name}" appears twice (also at [${seen.get(key)}])` });
      else seen.set(key, i);
    });
  });

export const SiteGroup = z.strictObject({ name: Name, description: z.string().max(2000).nullable().optional() });

/** A policy in the file names its groups, pools and plans by name. */
export const SitePolicy = PolicyBody.omit({ groupIds: true, pools: true, protocolPlanId: true, powerPlanId: true, releasePlanId: true }).extend({
  groups: z.array(Name).min(1, 'a policy must name at least one group'),
  pools: z.array(z.strictObject({ pool: Name, desktops: z.number().int().min(1).max(20).default(1) })).min(1, 'a policy must offer at least one pool'),
  protocolPlan: Name.nullable().default(null),
  powerPlan: Name.nullable().default(null),
  releasePlan: Name.nullable().default(null),
});

/** A pool in the file names its provider by name. */
export const SitePool = CreatePool.omit({ providerId: true }).extend({ provider: Name });

/**
 * A static host in the file names its (static) provider. `maintenance` is applied only when the file
 * says it: left out, the console's switch is not undone by the next apply.
 */
export const SiteHost = RegisterHost.omit({ maintenance: true }).extend({ provider: Name, maintenance: z.boolean().optional() });

/** A host name is unique within its provider (two providers may each have an `edit-01`). */
const uniqueHosts = z.array(SiteHost).superRefine((items, ctx) => {
  const seen = new Map<string, number>();
  items.forEach((it, i) => {
    const key = `${it.provider.toLowerCase()}/${it.name}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${it.name}" of provider "${it.provider}" appears twice (also at [${seen.get(key)}])` });
    else seen.set(key, i);
  });
});

/**
 * Routed settings of enrolled gateways (ADR 0031): every gateway of a `cluster`, or one by `name`.
 * Gateways join by enrolment, never by apply; their status (drain, disable) is an operation, not
 * configuration, and PROXY v2 sources are the gateway's own environment (it judges a header before
 * it can reach a broker): neither is here.
 */
export const SiteGateway = z
  .strictObject({
    cluster: ClusterName.optional().describe('every gateway enrolled in this cluster'),
    name: GatewayName.optional().describe('one gateway, by name'),
    routedPorts: RoutedPorts.partial().optional().describe("the public ports clients dial (the balancer's listeners); the ones left out stay as clients dial them now"),
    sniDomain: SniDomain.nullable().optional().describe('the wildcard domain of TLS SNI routing (null: none)'),
  })
  .refine((g) => (g.cluster === undefined) !== (g.name === undefined), { message: 'name either a cluster or a gateway (name), not both', path: ['cluster'] });

/** A gateway or cluster appears once (two entries for one would fight over its settings). */
const uniqueGateways = z.array(SiteGateway).superRefine((items, ctx) => {
  const seen = new Map<string, number>();
  items.forEach((it, i) => {
    const key = it.cluster !== undefined ? `cluster ${it.cluster}` : `gateway ${String(it.name).toLowerCase()}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i, it.cluster !== undefined ? 'cluster' : 'name'], message: `${key} appears twice (also at [${seen.get(key)}])` });
    else seen.set(key, i);
  });
});

/**
 * `stagedoor apply -f site.yaml`: the studio as code. Every list is optional; objects are matched
 * by name (case-insensitive). Pools reference their provider, policies their groups, pools and
 * plans, by name — in the same file or already in the database.
 */
export const SiteFile = z.strictObject({
  version: z.literal(1).default(1),
  groups: uniqueNames(SiteGroup).default([]),
  authServers: uniqueNames(SiteAuthServer).default([]),
  providers: uniqueNames(CreateProvider).default([]),
  hosts: uniqueHosts.default([]),
  protocolPlans: uniqueNames(ProtocolPlanBody).default([]),
  powerPlans: uniqueNames(PowerPlanBody).default([]),
  releasePlans: uniqueNames(ReleasePlanBody).default([]),
  pools: uniqueNames(SitePool).default([]),
  policies: uniqueNames(SitePolicy).default([]),
  gateways: uniqueGateways.default([]),
});

export const SiteChange = z.object({
  kind: z.string(),
  name: z.string(),
  action: z.enum(['create', 'update', 'delete', 'unchanged']),
  fields: z.array(z.string()).describe('what changes, for updates'),
});
export const ApplyResult = z.object({
  dryRun: z.boolean(),
  applied: z.boolean(),
  changes: z.array(SiteChange),
  summary: z.object({ create: z.number().int(), update: z.number().int(), delete: z.number().int(), unchanged: z.number().int() }),
});
