import type { z } from 'zod';
import type { ApplyResult, SiteChange, SiteFile } from '@stagedoor/contract';
import type { Db, Tx } from '../../db/database.ts';
import { InvalidInputError, type FieldProblem } from '../errors.ts';
import type { Actor } from '../identity/actor.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { AccessEnded, AccessReview } from '../connections/access-review.ts';
import { SITE_KINDS, type ApplyContext } from './site-kinds.ts';

export type SiteDocument = z.output<typeof SiteFile>;
type Result = z.infer<typeof ApplyResult>;
type Change = z.infer<typeof SiteChange>;

class DryRunRollback extends Error {}

/**
 * `stagedoor apply`: make the studio's objects match a site file, all in one transaction. Kinds are
 * applied in dependency order (groups, auth servers, providers, plans, pools, policies), each object through its
 * own service — the same operations, validation and audit as the API. Any problem anywhere rolls
 * everything back and is reported with the path of each bad field. A dry run does the same work
 * and rolls back at the end, so what it prints is exactly what a real run would change.
 * Objects missing from the file are left alone: apply never deletes.
 */
export class SiteApplyService {
  constructor(private readonly deps: { db: Db; audit: AuditService; access: Pick<AccessReview, 'enforce' | 'finish'>; context: Omit<ApplyContext, 'tx' | 'actor' | 'problems'> }) {}

  async apply(actor: Actor, doc: SiteDocument, opts: { dryRun: boolean }): Promise<Result> {
    const changes: Change[] = [];
    let ended: AccessEnded | null = null;
    try {
      await this.deps.db.transaction(async (tx) => {
        const problems: FieldProblem[] = [];
        const ctx: ApplyContext = { ...this.deps.context, tx: tx as Tx, actor, problems };
        for (const kind of SITE_KINDS) {
          const entries = (doc as unknown as Record<string, never[]>)[kind.key] ?? [];
          for (const index of kind.order?.(entries) ?? entries.keys()) {
            const before = problems.length;
            const change = await kind.apply(ctx, entries[index]!, `${kind.key}[${index}]`);
            if (problems.length === before && change) changes.push(change);
          }
        }
        if (problems.length) {
          throw new InvalidInputError(`the site file has ${problems.length} problem(s); nothing was changed: ${problems.slice(0, 5).map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
        }
        // Access is reviewed once, against the file's final state (not after each policy of it).
        ended = await this.deps.access.enforce(actor, 'policy-changed', null, tx);
        const counted = summarize(changes);
        await this.deps.audit.record(actor, { action: 'site.apply', outcome: 'success', details: { dryRun: opts.dryRun, ...counted } }, tx);
        if (opts.dryRun) throw new DryRunRollback();
      });
    } catch (err) {
      if (!(err instanceof DryRunRollback)) throw err;
    }
    if (!opts.dryRun) {
      if (ended) this.deps.access.finish(ended, 'policy-changed');
      for (const c of changes.filter((x) => x.kind === 'pool' && x.action !== 'unchanged')) {
        const pool = await this.deps.context.pools.findByName(c.name);
        if (pool) this.deps.context.pools.poke(pool.id);
      }
    }
    const summary = summarize(changes);
    return { dryRun: opts.dryRun, applied: !opts.dryRun && summary.create + summary.update > 0, changes, summary };
  }
}

function summarize(changes: Change[]) {
  const s = { create: 0, update: 0, delete: 0, unchanged: 0 };
  for (const c of changes) s[c.action]++;
  return s;
}
