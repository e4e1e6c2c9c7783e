import type { z } from 'zod';
import type { RoutedPorts, SiteGateway } from '@stagedoor/contract';
import type { DbOrTx } from '../../db/database.ts';
import type { Actor } from '../identity/actor.ts';
import { clientPorts } from '../gateways/types.ts';
import type { GatewayRow } from '../gateways/gateways.repository.ts';
import type { SiteKind } from './site-kinds.ts';
import { attempt } from './site-kinds.ts';

/** What apply needs of the gateways service. */
export interface GatewaysApplyApi {
  findByName(name: string, tx?: DbOrTx): Promise<GatewayRow | undefined>;
  inCluster(cluster: string, tx?: DbOrTx): Promise<GatewayRow[]>;
  update(actor: Actor, id: string, input: { routedPorts?: Partial<RoutedPorts>; sniDomain?: string | null }, tx?: DbOrTx): Promise<unknown>;
}

type Entry = z.output<typeof SiteGateway>;

/**
 * The routed settings of enrolled gateways (ADR 0031): a cluster entry sets every gateway enrolled
 * in it, a name entry one gateway. Apply never enrols (a gateway joins with its own token) and never
 * deletes; an entry that matches no gateway is a problem, not a silent no-op, since instructions
 * would go on naming the wrong ports. Ports left out keep what clients dial now.
 */
export const gatewaysKind: SiteKind<Entry> = {
  key: 'gateways',
  async apply(ctx, e, path) {
    const targets = e.cluster !== undefined ? await ctx.gateways.inCluster(e.cluster, ctx.tx) : [await ctx.gateways.findByName(e.name!, ctx.tx)].filter((g): g is GatewayRow => g !== undefined);
    const label = e.cluster !== undefined ? `cluster ${e.cluster}` : e.name!;
    if (targets.length === 0) {
      ctx.problems.push(
        e.cluster !== undefined
          ? { path: `${path}.cluster`, message: `no gateway is enrolled in cluster "${e.cluster}": enrol one (stagedoor gateway --enroll), then apply` }
          : { path: `${path}.name`, message: `no gateway named "${e.name}": enrol it (stagedoor gateway --enroll), then apply` },
      );
      return undefined;
    }
    const fields = new Set<string>();
    for (const g of [...targets].sort((a, b) => a.name.localeCompare(b.name))) {
      const patch = changes(g, e);
      if (!patch) continue;
      for (const k of Object.keys(patch)) fields.add(k);
      if ((await attempt(ctx, path, () => ctx.gateways.update(ctx.actor, g.id, patch, ctx.tx))) === undefined) return undefined;
    }
    return { kind: e.cluster !== undefined ? 'gateway-cluster' : 'gateway', name: label, action: fields.size ? 'update' : 'unchanged', fields: [...fields] };
  },
};

/** What differs between a gateway and the entry (null: nothing). Ports become the admin's once applied. */
function changes(g: GatewayRow, e: Entry): { routedPorts?: Partial<RoutedPorts>; sniDomain?: string | null } | null {
  const patch: { routedPorts?: Partial<RoutedPorts>; sniDomain?: string | null } = {};
  if (e.routedPorts !== undefined) {
    const now = clientPorts(g);
    const want = { ...now, ...e.routedPorts };
    const same = (Object.keys(want) as (keyof RoutedPorts)[]).every((k) => want[k] === g.routedPorts[k]);
    if (!g.routedPortsSet || !same) patch.routedPorts = e.routedPorts;
  }
  if (e.sniDomain !== undefined && e.sniDomain !== g.sniDomain) patch.sniDomain = e.sniDomain;
  return Object.keys(patch).length ? patch : null;
}
