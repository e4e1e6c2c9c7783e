import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { rowsOf } from '../../db/migrate.ts';

/** An active assignment whose user may no longer hold it, with whether anything is live on it. */
export interface Unentitled {
  assignmentId: string;
  mode: 'floating' | 'persistent';
  userId: string | null;
  poolId: string | null;
  /** The user is disabled or gone; otherwise their first matching policy no longer offers the pool. */
  userDisabled: boolean;
  liveConnections: number;
}

/** A live connection the reaper closes, and why. */
export interface Stale {
  connectionId: string;
  reason: 'assignment-ended' | 'unused' | 'superseded';
}

const LIVE = sql`('starting', 'ready', 'connected')`;

/**
 * Read side of the access review and the connection reaper: which assignments and connections
 * outlived what allowed them. Both are plain SQL over the same rules the connect flow uses (the first
 * enabled policy, by position, naming one of the user's groups, must offer the assignment's pool).
 */
export class AccessRepository {
  constructor(private readonly db: DbOrTx) {}

  /**
   * Active assignments of these users (all users when `userIds` is null) that the users may no longer
   * hold — disabled or deleted users, users whose policy no longer offers the pool — and that have
   * something to end: floating ones, and persistent ones with a live connection. With `everything`,
   * every active assignment of the users (a user being deleted keeps nothing).
   */
  async unentitled(userIds: readonly string[] | null, opts: { everything?: boolean; limit: number }, db: DbOrTx = this.db): Promise<Unentitled[]> {
    const scope = userIds === null ? sql`true` : sql`a.user_id = any(${`{${userIds.join(',')}}`}::uuid[])`;
    const rule = opts.everything
      ? sql`true`
      : sql`(u.id is null or u.disabled or not exists (
          select 1 from policy_pools pp
          where pp.pool_id = a.pool_id and pp.policy_id = (
            select p.id from policies p
            where p.enabled and exists (
              select 1 from policy_groups pg join group_members gm on gm.group_id = pg.group_id
              where pg.policy_id = p.id and gm.user_id = a.user_id)
            order by p.position limit 1)))`;
    const result = await db.execute(sql`
      select a.id as "assignmentId", a.mode, a.user_id as "userId", a.pool_id as "poolId",
        (u.id is null or u.disabled) as "userDisabled",
        (select count(*)::int from connections c where c.assignment_id = a.id and c.state in ${LIVE}) as "liveConnections"
      from assignments a left join users u on u.id = a.user_id
      where a.state = 'active' and ${scope} and ${rule}
        -- only what there is something to end: a persistent desktop kept is left alone once nothing is live on it
        and (${!!opts.everything} or a.mode = 'floating'
             or exists (select 1 from connections c where c.assignment_id = a.id and c.state in ${LIVE}))
      order by a.since
      limit ${opts.limit}`);
    return rowsOf<Unentitled>(result).map((r) => ({ ...r, liveConnections: Number(r.liveConnections), userDisabled: Boolean(r.userDisabled) }));
  }

  /**
   * Live connections nothing will ever move on (see docs/connect-flow.md, "Stale connections"):
   * - on an assignment that is no longer active (a safety net: a release closes them in its statement);
   * - `ready` through a gateway with no live grant for longer than the connect-by window (the grant
   *   could not be issued, or the client never came back for it);
   * - `starting` whose machine has been running for longer than that window (nobody collected it);
   * - a direct `ready` connection superseded by a newer one of the same user on the same desktop
   *   and protocol, older than the window (a retry's ghost).
   */
  async stale(now: Date, windowMs: number, limit: number, db: DbOrTx = this.db): Promise<Stale[]> {
    const before = new Date(now.getTime() - windowMs).toISOString();
    const result = await db.execute(sql`
      select c.id as "connectionId",
        case
          when a.id is null or a.state <> 'active' then 'assignment-ended'
          when c.state = 'ready' and not c.via_gateway then 'superseded'
          else 'unused'
        end as reason
      from connections c
      left join assignments a on a.id = c.assignment_id
      left join workstations w on w.id = c.workstation_id
      where c.state in ${LIVE} and (
        a.id is null or a.state <> 'active'
        or (c.state = 'ready' and c.via_gateway and coalesce(c.ready_at, c.requested_at) < ${before}::timestamptz
            and not exists (select 1 from grants g where g.connection_id = c.id and g.state in ('issued', 'used')))
        or (c.state = 'starting' and w.power_state = 'running' and w.power_state_changed_at < ${before}::timestamptz)
        or (c.state = 'ready' and not c.via_gateway and coalesce(c.ready_at, c.requested_at) < ${before}::timestamptz
            and exists (select 1 from connections n where n.assignment_id = c.assignment_id and n.protocol = c.protocol
                        and n.state in ${LIVE} and n.requested_at > c.requested_at))
      )
      limit ${limit}`);
    return rowsOf<Stale>(result);
  }
}
