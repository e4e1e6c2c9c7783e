import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Database } from '../../apps/broker/src/db/database.ts';
import { rowsOf } from '../../apps/broker/src/db/migrate.ts';
import type { MintedUser } from './studio.ts';

/** One artist's connect as a client sees it: the answer, or why there was none. */
export interface ConnectAnswer {
  user: MintedUser;
  status: number | 'network-error';
  connectionId?: string;
  workstationId?: string;
  replayed: boolean;
  attempts: number;
}

/**
 * POST /connections with an Idempotency-Key, on `bases[0]`; a network error or a 5xx is retried
 * once on `bases[1]` with the same key, as a client behind a load balancer would (after
 * `beforeRetry`: its backoff).
 */
export async function connectWithRetry(user: MintedUser, poolId: string, bases: [string, string], opts: { key?: string; beforeRetry?: () => Promise<void> } = {}): Promise<ConnectAnswer> {
  const key = opts.key ?? randomUUID();
  let last: ConnectAnswer = { user, status: 'network-error', replayed: false, attempts: 0 };
  for (const [i, base] of bases.entries()) {
    if (i > 0) await opts.beforeRetry?.();
    try {
      const res = await fetch(`${base}/api/v1/connections`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ poolId }),
      });
      const body = (await res.json()) as { id?: string; workstation?: { id: string } };
      last = { user, status: res.status, connectionId: body.id, workstationId: body.workstation?.id, replayed: res.headers.get('idempotent-replayed') === 'true', attempts: i + 1 };
      if (res.status < 500) return last;
    } catch {
      last = { user, status: 'network-error', replayed: false, attempts: i + 1 };
    }
  }
  return last;
}

/** Run `task` over `items` with at most `concurrency` at a time. */
export async function withConcurrency<T, R>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await task(items[i]!, i);
    }),
  );
  return out;
}

/** What the database holds now, per invariant of docs/connect-flow.md. */
export async function invariantCounts(database: Database, poolId: string) {
  const [row] = rowsOf<{ users_doubled: number; machines_doubled: number; active: number; live_on_released: number }>(
    await database.db.execute(sql`
      select
        (select count(*)::int from (select user_id from assignments where state = 'active' and pool_id = ${poolId} group by user_id having count(*) > 1) d) as users_doubled,
        (select count(*)::int from (select workstation_id from assignments where state = 'active' group by workstation_id having count(*) > 1) d) as machines_doubled,
        (select count(*)::int from assignments where state = 'active' and pool_id = ${poolId}) as active,
        (select count(*)::int from connections c join assignments a on a.id = c.assignment_id
          where a.state = 'released' and c.state in ('starting', 'ready', 'connected')) as live_on_released`),
  );
  return { usersDoubled: row!.users_doubled, machinesDoubled: row!.machines_doubled, active: row!.active, liveOnReleased: row!.live_on_released };
}

/** The machine each user holds in the pool now. */
export async function heldMachines(database: Database, poolId: string): Promise<Map<string, string>> {
  const rows = rowsOf<{ user_id: string; workstation_id: string }>(await database.db.execute(sql`select user_id, workstation_id from assignments where state = 'active' and pool_id = ${poolId}`));
  return new Map(rows.map((r) => [r.user_id, r.workstation_id]));
}
