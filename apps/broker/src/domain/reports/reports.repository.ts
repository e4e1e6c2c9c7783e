import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { rowsOf } from '../../db/migrate.ts';
import type { AssignmentSpan, PowerInterval } from './cost.ts';

const date = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const dateOrNull = (v: unknown): Date | null => (v === null || v === undefined ? null : date(v));
const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

export interface RunningRow {
  id: string;
  name: string;
  powerState: string;
  powerStateChangedAt: Date;
  poolId: string | null;
  poolName: string | null;
  instanceType: string | null;
  agentSessionState: string;
  lastActivityAt: Date | null;
  assignment: { userId: string | null; username: string | null; mode: string; since: Date } | null;
  sessions: { connectionId: string; userId: string | null; username: string | null; state: string; protocol: string; requestedAt: Date; connectedAt: Date | null }[];
  timers: { id: string; kind: string; dueAt: Date; reason: string | null }[];
}

/** Kinds of the timers that act on a running machine (power and release plans). */
const PLAN_TIMER = sql`(t.kind like 'power.%' or t.kind like 'release.%')`;
const LIVE = sql`('starting', 'ready', 'connected')`;

export class ReportsRepository {
  constructor(private readonly db: DbOrTx) {}

  /**
   * Power-history intervals overlapping [from, to), with the region of the machine's provider. One
   * JSON array in one row, times as epoch milliseconds: a week of 10,000 machines is 140,000
   * intervals, and decoding them as one JSON document is about 3× faster than as rows.
   */
  async intervals(from: Date, to: Date): Promise<PowerInterval[]> {
    const result = await this.db.execute(sql`
      select coalesce(json_agg(json_build_array(h.workstation_id, h.state, h.instance_type, h.pool_id, p.region,
          (extract(epoch from h.from_at) * 1000)::bigint, (extract(epoch from h.to_at) * 1000)::bigint)), '[]') as rows
      from workstation_power_history h
      join workstations w on w.id = h.workstation_id
      join providers p on p.id = w.provider_id
      where h.from_at < ${to}::timestamptz and (h.to_at is null or h.to_at > ${from}::timestamptz)
        -- A cloud row without a scope is a second copy of an instance another provider owns (ADR 0018): never billed twice.
        and not (p.kind = 'aws-ec2' and w.instance_scope is null)`);
    type Tuple = [string, string, string | null, string | null, string | null, number, number | null];
    const rows = json<Tuple[]>(rowsOf<{ rows: unknown }>(result)[0]?.rows ?? []);
    return rows.map(([workstationId, state, instanceType, poolId, region, fromMs, toMs]) => ({
      workstationId,
      state,
      instanceType,
      poolId,
      region,
      fromAt: new Date(Number(fromMs)),
      toAt: toMs === null ? null : new Date(Number(toMs)),
    }));
  }

  /** Assignments overlapping [from, to). */
  async assignments(from: Date, to: Date): Promise<AssignmentSpan[]> {
    const result = await this.db.execute(sql`
      select workstation_id, user_id, since, released_at from assignments
      where workstation_id is not null and since < ${to}::timestamptz and (released_at is null or released_at > ${from}::timestamptz)`);
    return rowsOf<Record<string, unknown>>(result).map((r) => ({
      workstationId: String(r.workstation_id),
      userId: (r.user_id as string | null) ?? null,
      since: date(r.since),
      releasedAt: dateOrNull(r.released_at),
    }));
  }

  async prices(): Promise<{ instanceType: string; region: string; hourlyPrice: string; currency: string }[]> {
    const result = await this.db.execute(sql`select instance_type, region, hourly_price::text as hourly_price, currency from price_table`);
    return rowsOf<Record<string, string>>(result).map((r) => ({ instanceType: r.instance_type!, region: r.region!, hourlyPrice: r.hourly_price!, currency: r.currency! }));
  }

  async names(kind: 'pools' | 'users', ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const result =
      kind === 'pools'
        ? await this.db.execute(sql`select id, name from pools where id in ${ids}`)
        : await this.db.execute(sql`select id, username as name from users where id in ${ids}`);
    return new Map(rowsOf<{ id: string; name: string }>(result).map((r) => [r.id, r.name]));
  }

  /**
   * Running (and booting) machines with their live sessions and pending plan timers, in one
   * statement. The page of machines is taken first (name order); then, per machine of the page,
   * its live sessions (partial index of live connections by machine) and its pending plan timers
   * (partial index of pending timers on payload->>'workstationId'). The cost follows the page, not
   * the fleet — and not the planner's guesses: no join between aggregates that a missing statistic
   * could turn into a nested loop.
   */
  async running(filter: { poolId?: string; id?: string }, limit: number, offset: number): Promise<{ items: RunningRow[]; total: number }> {
    const where = sql.join(
      [
        sql`w.power_state in ('running', 'pending')`,
        ...(filter.poolId ? [sql`w.pool_id = ${filter.poolId}`] : []),
        ...(filter.id ? [sql`w.id = ${filter.id}`] : []),
      ],
      sql` and `,
    );
    const result = await this.db.execute(sql`
      with page as materialized (
        select w.id, w.name, w.power_state, w.power_state_changed_at, w.pool_id, w.instance_type, w.agent_session_state, w.last_activity_at
        from workstations w
        where ${where}
        order by w.name, w.id
        limit ${limit} offset ${offset}
      )
      select page.*, p.name as pool_name, a.user_id as a_user_id, au.username as a_username, a.mode as a_mode, a.since as a_since,
        (select json_agg(json_build_object('connectionId', c.id, 'userId', c.user_id, 'username', u.username, 'state', c.state,
            'protocol', c.protocol, 'requestedAt', c.requested_at, 'connectedAt', c.connected_at) order by c.requested_at)
          from connections c left join users u on u.id = c.user_id
          where c.workstation_id = page.id and c.state in ${LIVE}) as sessions,
        (select json_agg(json_build_object('id', t.id, 'kind', t.kind, 'dueAt', t.due_at, 'reason', t.payload->>'reason') order by t.due_at)
          from timers t
          where t.state = 'pending' and t.payload->>'workstationId' = page.id::text and ${PLAN_TIMER}) as timers
      from page
      left join pools p on p.id = page.pool_id
      left join assignments a on a.workstation_id = page.id and a.state = 'active'
      left join users au on au.id = a.user_id
      order by page.name, page.id`);
    const rows = rowsOf<Record<string, unknown>>(result);
    const items = rows.map((r): RunningRow => {
      const sessions = json<RunningRow['sessions'] | null>(r.sessions) ?? [];
      const timers = json<RunningRow['timers'] | null>(r.timers) ?? [];
      return {
        id: String(r.id),
        name: String(r.name),
        powerState: String(r.power_state),
        powerStateChangedAt: date(r.power_state_changed_at),
        poolId: (r.pool_id as string | null) ?? null,
        poolName: (r.pool_name as string | null) ?? null,
        instanceType: (r.instance_type as string | null) ?? null,
        agentSessionState: String(r.agent_session_state),
        lastActivityAt: dateOrNull(r.last_activity_at),
        assignment: r.a_mode ? { userId: (r.a_user_id as string | null) ?? null, username: (r.a_username as string | null) ?? null, mode: String(r.a_mode), since: date(r.a_since) } : null,
        sessions: sessions.map((s) => ({ ...s, requestedAt: date(s.requestedAt), connectedAt: dateOrNull(s.connectedAt) })),
        timers: timers.map((t) => ({ ...t, dueAt: date(t.dueAt) })),
      };
    });
    if (filter.id || (offset === 0 && rows.length < limit)) return { items, total: rows.length };
    const [c] = rowsOf<{ n: string | number }>(await this.db.execute(sql`select count(*) as n from workstations w where ${where}`));
    return { items, total: Number(c?.n ?? 0) };
  }
}
