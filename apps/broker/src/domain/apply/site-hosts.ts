import type { z } from 'zod';
import type { SiteHost, UpdateWorkstation } from '@stagedoor/contract';
import type { DbOrTx } from '../../db/database.ts';
import type { Actor } from '../identity/actor.ts';
import { changedFields } from '../workstations/static-hosts.service.ts';
import type { HostInput } from '../workstations/static-hosts.ts';
import type { WorkstationRow } from '../workstations/workstations.repository.ts';
import type { SiteKind } from './site-kinds.ts';
import { attempt } from './site-kinds.ts';

/** What apply needs of the static hosts and workstations services. */
export interface HostsApplyApi {
  find(providerId: string, name: string, tx?: DbOrTx): Promise<WorkstationRow | undefined>;
  register(actor: Actor, providerId: string, host: HostInput & { maintenance?: boolean }, tx?: DbOrTx): Promise<unknown>;
  update(actor: Actor, id: string, patch: z.output<typeof UpdateWorkstation>, tx?: DbOrTx): Promise<unknown>;
}

/**
 * Static hosts, after providers (they name theirs) and before pools (whose tag rules pick them up).
 * Matched by provider and name; an existing host's address, protocols and tags are set to the
 * file's, and its maintenance switch only when the file names it. Hosts the file leaves out stay.
 */
export const hostsKind: SiteKind<z.output<typeof SiteHost>> = {
  key: 'hosts',
  async apply(ctx, e, path) {
    const label = `${e.provider}/${e.name}`;
    const provider = await ctx.providers.findByName(e.provider, ctx.tx);
    if (!provider || provider.kind !== 'static') {
      ctx.problems.push({ path: `${path}.provider`, message: provider ? `provider "${e.provider}" is ${provider.kind}: only static providers take hosts` : `no provider named "${e.provider}" in the file or the database` });
      return undefined;
    }
    const { provider: _p, maintenance, ...host } = e;
    const current = await ctx.hosts.find(provider.id, e.name, ctx.tx);
    if (!current) {
      const created = await attempt(ctx, path, () => ctx.hosts.register(ctx.actor, provider.id, { ...host, maintenance }, ctx.tx));
      return created === undefined ? undefined : { kind: 'host', name: label, action: 'create' as const, fields: [] };
    }
    const fields = changedFields(current, host);
    if (maintenance !== undefined && maintenance !== current.maintenance) fields.push('maintenance');
    if (!fields.length) return { kind: 'host', name: label, action: 'unchanged' as const, fields: [] };
    const patch = { address: host.address, protocols: host.protocols, tags: host.tags, ...(maintenance === undefined ? {} : { maintenance }) };
    const updated = await attempt(ctx, path, () => ctx.hosts.update(ctx.actor, current.id, patch, ctx.tx));
    return updated === undefined ? undefined : { kind: 'host', name: label, action: 'update' as const, fields };
  },
};
