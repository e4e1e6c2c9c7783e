import type { z } from 'zod';
import type { CreatePool, SitePool, UpdatePool } from '@stagedoor/contract';
import type { DbOrTx } from '../../db/database.ts';
import type { Actor } from '../identity/actor.ts';
import type { SiteKind } from './site-kinds.ts';
import { attempt, differing } from './site-kinds.ts';

/** What apply needs of the pools service. */
export interface PoolsApplyApi {
  findByName(name: string, tx?: DbOrTx): Promise<({ id: string } & Record<string, unknown>) | undefined>;
  create(actor: Actor, input: z.output<typeof CreatePool>, tx?: DbOrTx): Promise<unknown>;
  update(actor: Actor, id: string, input: z.output<typeof UpdatePool>, tx?: DbOrTx): Promise<unknown>;
  /** After the commit: a pool pass run inside the open transaction could not see the change. */
  poke(poolId: string): void;
}

export const poolKind: SiteKind<z.output<typeof SitePool>> = {
  key: 'pools',
  async apply(ctx, e, path) {
    const provider = await ctx.providers.findByName(e.provider, ctx.tx);
    if (!provider) {
      ctx.problems.push({ path: `${path}.provider`, message: `no provider named "${e.provider}" in the file or the database` });
      return undefined;
    }
    const { provider: _name, ...rest } = e;
    const body = { ...rest, providerId: provider.id };
    const current = await ctx.pools.findByName(e.name, ctx.tx);
    if (!current) {
      const created = await attempt(ctx, path, () => ctx.pools.create(ctx.actor, body, ctx.tx));
      return created === undefined ? undefined : { kind: 'pool', name: e.name, action: 'create' as const, fields: [] };
    }
    const { name: _n, ...compared } = body;
    const fields = differing(current, compared);
    if (!fields.length) return { kind: 'pool', name: e.name, action: 'unchanged' as const, fields: [] };
    const updated = await attempt(ctx, path, () => ctx.pools.update(ctx.actor, current.id, compared, ctx.tx));
    return updated === undefined ? undefined : { kind: 'pool', name: e.name, action: 'update' as const, fields };
  },
};
