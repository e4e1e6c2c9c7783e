import type { z } from 'zod';
import type { CreateProvider, PowerPlanBody, ProtocolPlanBody, ReleasePlanBody, SiteChange, SiteGroup, SitePolicy } from '@stagedoor/contract';
import type { Tx } from '../../db/database.ts';
import { DomainError, type FieldProblem } from '../errors.ts';
import { stableJson } from '../stable-json.ts';
import type { Actor } from '../identity/actor.ts';
import type { GroupsService } from '../identity/groups.service.ts';
import { planColumns, type PlanKind, type PlansService } from '../plans/plans.service.ts';
import type { PoliciesService } from '../policies/policies.service.ts';
import type { ProvidersService } from '../providers/providers.service.ts';
import type { AuthServersService } from '../auth-servers/auth-servers.service.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import { authServersKind } from './site-auth-servers.ts';
import { gatewaysKind, type GatewaysApplyApi } from './site-gateways.ts';
import { hostsKind, type HostsApplyApi } from './site-hosts.ts';
import { poolKind, type PoolsApplyApi } from './site-pools.ts';

type Change = z.infer<typeof SiteChange>;

export interface ApplyContext {
  tx: Tx;
  actor: Actor;
  problems: FieldProblem[];
  groups: GroupsService;
  authServers: AuthServersService;
  providers: ProvidersService;
  plans: PlansService;
  policies: PoliciesService;
  pools: PoolsApplyApi;
  hosts: HostsApplyApi;
  gateways: GatewaysApplyApi;
  secrets: SecretBox;
}

export interface SiteKind<E> {
  key: string;
  /** The order to apply the entries in, as indices into the file's list; file order when absent. */
  order?(entries: E[]): number[];
  apply(ctx: ApplyContext, entry: E, path: string): Promise<Change | undefined>;
}

/** Which of `keys` differ between what is stored and what the file wants (deep, order-sensitive). */
export function differing(current: Record<string, unknown>, desired: Record<string, unknown>): string[] {
  return Object.keys(desired).filter((k) => stableJson(current[k]) !== stableJson(desired[k]));
}

/** Run one service call; a domain error becomes a problem at `path` (the savepoint keeps the transaction usable). */
export async function attempt<T>(ctx: ApplyContext, path: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const fields = (err.details as { fields?: FieldProblem[] } | undefined)?.fields;
    if (fields?.length) for (const f of fields) ctx.problems.push({ path: `${path}.${f.path.replace(/^body\./, '')}`, message: f.message });
    else ctx.problems.push({ path, message: err.message });
    return undefined;
  }
}

const change = (kind: string, name: string, action: Change['action'], fields: string[] = []): Change => ({ kind, name, action, fields });

const groupsKind: SiteKind<z.output<typeof SiteGroup>> = {
  key: 'groups',
  async apply(ctx, e, path) {
    const current = await ctx.groups.findByName(e.name, ctx.tx);
    if (!current) return (await attempt(ctx, path, () => ctx.groups.create(ctx.actor, { name: e.name, description: e.description ?? undefined, memberIds: [] }, ctx.tx))) && change('group', e.name, 'create');
    const fields = e.description === undefined ? [] : differing({ description: current.description }, { description: e.description });
    if (!fields.length) return change('group', e.name, 'unchanged');
    return (await attempt(ctx, path, () => ctx.groups.update(ctx.actor, current.id, { description: e.description }, ctx.tx))) && change('group', e.name, 'update', fields);
  },
};

const providersKind: SiteKind<z.output<typeof CreateProvider>> = {
  key: 'providers',
  async apply(ctx, e, path) {
    const current = await ctx.providers.findByName(e.name, ctx.tx);
    if (!current) return (await attempt(ctx, path, () => ctx.providers.create(ctx.actor, e, ctx.tx))) && change('provider', e.name, 'create');
    if (current.kind !== e.kind) {
      ctx.problems.push({ path: `${path}.kind`, message: `provider "${e.name}" exists as ${current.kind}; the kind of a provider cannot change` });
      return undefined;
    }
    if (e.kind === 'static') {
      const fields = differing({ enabled: current.enabled }, { enabled: e.enabled });
      if (!fields.length) return change('provider', e.name, 'unchanged');
      return (await attempt(ctx, path, () => ctx.providers.update(ctx.actor, current.id, { enabled: e.enabled }, ctx.tx))) && change('provider', e.name, 'update', fields);
    }
    const sameSecret =
      e.credentials.mode !== 'access-key' ||
      (current.secretCiphertext !== null && ctx.secrets.available && ctx.secrets.open(current.secretCiphertext, `providers:${current.id}`) === e.credentials.secretAccessKey);
    const now = { region: current.region, endpoint: current.endpoint, tagFilter: current.tagFilter, syncIntervalSeconds: current.syncIntervalSeconds, enabled: current.enabled, credentials: { mode: current.credentialsMode, accessKeyId: current.accessKeyId, same: true } };
    const want = { region: e.region, endpoint: e.endpoint ?? null, tagFilter: e.tagFilter, syncIntervalSeconds: e.syncIntervalSeconds, enabled: e.enabled, credentials: { mode: e.credentials.mode, accessKeyId: e.credentials.mode === 'access-key' ? e.credentials.accessKeyId : null, same: sameSecret } };
    const fields = differing(now, want);
    if (!fields.length) return change('provider', e.name, 'unchanged');
    const patch = { region: e.region, endpoint: e.endpoint ?? null, tagFilter: e.tagFilter, syncIntervalSeconds: e.syncIntervalSeconds, enabled: e.enabled, ...(fields.includes('credentials') ? { credentials: e.credentials } : {}) };
    return (await attempt(ctx, path, () => ctx.providers.update(ctx.actor, current.id, patch, ctx.tx))) && change('provider', e.name, 'update', fields);
  },
};

function planKind<K extends PlanKind>(kind: K, key: string): SiteKind<z.output<typeof ProtocolPlanBody> | z.output<typeof PowerPlanBody> | z.output<typeof ReleasePlanBody>> {
  return {
    key,
    async apply(ctx, e, path) {
      const label = `${kind}-plan`;
      const current = await ctx.plans.findByName(kind, e.name, ctx.tx);
      if (!current) return (await attempt(ctx, path, () => ctx.plans.create(ctx.actor, kind, e as never, ctx.tx))) && change(label, e.name, 'create');
      const want = planColumns(kind, e as never);
      const fields = differing(current as unknown as Record<string, unknown>, want);
      if (!fields.length) return change(label, e.name, 'unchanged');
      return (await attempt(ctx, path, () => ctx.plans.replace(ctx.actor, kind, current.id, e as never, ctx.tx))) && change(label, e.name, 'update', fields);
    },
  };
}

const policiesKind: SiteKind<z.output<typeof SitePolicy> & { __index?: number }> = {
  key: 'policies',
  async apply(ctx, e, path) {
    const refs = await resolvePolicyRefs(ctx, e, path);
    if (!refs) return undefined;
    const { groups, pools, protocol, power, release } = refs;
    const body = {
      name: e.name,
      description: e.description ?? null,
      enabled: e.enabled,
      groupIds: groups,
      pools,
      assignmentMode: e.assignmentMode,
      startStoppedOnLogin: e.startStoppedOnLogin,
      launchOnLogin: e.launchOnLogin,
      prestartPersistent: e.prestartPersistent,
      allowRestart: e.allowRestart,
      maxSessionMinutes: e.maxSessionMinutes,
      protocolPlanId: protocol,
      powerPlanId: power,
      releasePlanId: release,
      ...(e.position === undefined ? {} : { position: e.position }),
    };
    const current = await ctx.policies.findByName(e.name, ctx.tx);
    if (!current) return (await attempt(ctx, path, () => ctx.policies.create(ctx.actor, body, ctx.tx))) && change('policy', e.name, 'create');
    const now = { ...current, groupIds: [...current.groupIds].sort() } as unknown as Record<string, unknown>;
    const fields = differing(now, { ...body, groupIds: [...groups].sort() });
    if (!fields.length) return change('policy', e.name, 'unchanged');
    return (await attempt(ctx, path, () => ctx.policies.update(ctx.actor, current.id, body, ctx.tx))) && change('policy', e.name, 'update', fields);
  },
};

async function resolvePolicyRefs(ctx: ApplyContext, e: z.output<typeof SitePolicy>, path: string) {
  const before = ctx.problems.length;
  const missing = (field: string, what: string, name: string) => ctx.problems.push({ path: `${path}.${field}`, message: `no ${what} named "${name}" in the file or the database` });
  const groups: string[] = [];
  for (const [i, name] of e.groups.entries()) {
    const g = await ctx.groups.findByName(name, ctx.tx);
    if (g) groups.push(g.id);
    else missing(`groups[${i}]`, 'group', name);
  }
  const pools: { poolId: string; desktops: number }[] = [];
  for (const [i, p] of e.pools.entries()) {
    const pool = await ctx.pools.findByName(p.pool, ctx.tx);
    if (pool) pools.push({ poolId: pool.id, desktops: p.desktops });
    else missing(`pools[${i}].pool`, 'pool', p.pool);
  }
  const plan = async (kind: PlanKind, field: string, name: string | null) => {
    if (!name) return null;
    const row = await ctx.plans.findByName(kind, name, ctx.tx);
    if (!row) missing(field, `${kind} plan`, name);
    return row?.id ?? null;
  };
  const protocol = await plan('protocol', 'protocolPlan', e.protocolPlan);
  const power = await plan('power', 'powerPlan', e.powerPlan);
  const release = await plan('release', 'releasePlan', e.releasePlan);
  return ctx.problems.length === before ? { groups, pools, protocol, power, release } : undefined;
}

/** Dependency order: what a later kind refers to is created first. */
export const SITE_KINDS: SiteKind<never>[] = [
  groupsKind,
  authServersKind,
  providersKind,
  hostsKind,
  planKind('protocol', 'protocolPlans'),
  planKind('power', 'powerPlans'),
  planKind('release', 'releasePlans'),
  poolKind,
  policiesKind,
  gatewaysKind,
] as SiteKind<never>[];
