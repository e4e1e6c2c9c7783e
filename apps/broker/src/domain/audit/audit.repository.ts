import { and, asc, count, desc, eq, getTableColumns, gte, inArray, like, lt, lte, sql, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { auditEvents, auditRefusalCounts } from '../../db/schema/index.ts';

export type AuditRow = typeof auditEvents.$inferSelect;
export type NewAuditRow = typeof auditEvents.$inferInsert;
export type RefusalCountRow = typeof auditRefusalCounts.$inferSelect;
/** A row as listed: with the target's name. */
export type AuditListRow = AuditRow & { targetName: string | null; subjectName: string | null };

/** Target types whose id names a row of a table with a name: the table and its name column. */
const NAMED_TARGETS: Record<string, [table: string, column: string]> = {
  user: ['users', 'username'],
  group: ['groups', 'name'],
  pool: ['pools', 'name'],
  policy: ['policies', 'name'],
  provider: ['providers', 'name'],
  workstation: ['workstations', 'name'],
  gateway: ['gateways', 'name'],
  auth_server: ['auth_servers', 'name'],
};

const UUID_RE = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/** The user a row is about when that is not its target (`details.userId`: the member added to a group). */
const SUBJECT_NAME = sql<string | null>`case when "audit_events"."details" ->> 'userId' ~* ${sql.raw(`'${UUID_RE}'`)}
  then (select u."username" from "users" u where u.id = ("audit_events"."details" ->> 'userId')::uuid) end`;

/**
 * The target's name, joined when the page is read (a renamed pool shows its name of today); a
 * deleted target falls back to the name its audit row recorded, if any. Ids stored as text are
 * checked to be UUIDs before the cast, so an odd target id (an address, a token prefix) is no error.
 */
const TARGET_NAME = sql<string | null>`coalesce(case when "audit_events"."target_id" ~* ${sql.raw(`'${UUID_RE}'`)} then case "audit_events"."target_type" ${sql.join(
  Object.entries(NAMED_TARGETS).map(([type, [table, column]]) => sql.raw(`when '${type}' then (select t."${column}" from "${table}" t where t.id = "audit_events"."target_id"::uuid)`)),
  sql.raw(' '),
)} end end, "audit_events"."details" ->> 'name', "audit_events"."details" ->> 'username')`;

export interface AuditFilter {
  action?: string;
  actor?: string;
  outcome?: 'success' | 'failure' | 'denied';
  targetId?: string;
  from?: Date;
  to?: Date;
}

export class AuditRepository {
  constructor(private readonly db: DbOrTx) {}

  async insert(row: NewAuditRow, db: DbOrTx = this.db): Promise<void> {
    await db.insert(auditEvents).values(row);
  }

  /**
   * Count one refusal from `sourceKey` in `minute`; true when it is within `cap` and should be
   * written. One upsert: the row lock makes the answer exact across broker nodes.
   */
  async countRefusal(sourceKey: string, minute: Date, action: string, cap: number, db: DbOrTx = this.db): Promise<boolean> {
    const t = auditRefusalCounts;
    const under = sql`${t.written} < ${cap}`;
    const [row] = await db
      .insert(t)
      .values({ sourceKey, minute, written: cap > 0 ? 1 : 0, suppressed: cap > 0 ? 0 : 1, suppressedActions: cap > 0 ? {} : { [action]: 1 }, lastWritten: cap > 0 })
      .onConflictDoUpdate({
        target: [t.sourceKey, t.minute],
        set: {
          written: sql`case when ${under} then ${t.written} + 1 else ${t.written} end`,
          suppressed: sql`case when ${under} then ${t.suppressed} else ${t.suppressed} + 1 end`,
          suppressedActions: sql`case when ${under} then ${t.suppressedActions}
            else jsonb_set(${t.suppressedActions}, array[${action}::text], to_jsonb(coalesce((${t.suppressedActions} ->> ${action}::text)::int, 0) + 1)) end`,
          lastWritten: under,
        },
      })
      .returning({ lastWritten: t.lastWritten });
    return row!.lastWritten;
  }

  /** Remove and return the counters of minutes before `before` (the caller writes their summaries in the same transaction). */
  takeRefusalCounts(before: Date, db: DbOrTx = this.db): Promise<RefusalCountRow[]> {
    return db.delete(auditRefusalCounts).where(lt(auditRefusalCounts.minute, before)).returning();
  }

  /** Delete up to `limit` of the oldest rows before `cutoff`; returns how many went. */
  async deleteBefore(cutoff: Date, limit: number, db: DbOrTx = this.db): Promise<number> {
    const oldest = db.select({ id: auditEvents.id }).from(auditEvents).where(lt(auditEvents.at, cutoff)).orderBy(asc(auditEvents.at)).limit(limit);
    const gone = await db.delete(auditEvents).where(inArray(auditEvents.id, oldest)).returning({ id: auditEvents.id });
    return gone.length;
  }

  async list(filter: AuditFilter, limit: number, offset: number): Promise<{ items: AuditListRow[]; total: number }> {
    const where = and(...conditions(filter));
    const items = await this.db
      .select({ ...getTableColumns(auditEvents), targetName: TARGET_NAME, subjectName: SUBJECT_NAME })
      .from(auditEvents)
      .where(where)
      .orderBy(desc(auditEvents.id))
      .limit(limit)
      .offset(offset);
    const [row] = await this.db.select({ n: count() }).from(auditEvents).where(where);
    return { items, total: row?.n ?? 0 };
  }
}

function conditions(f: AuditFilter): SQL[] {
  const out: SQL[] = [];
  if (f.action) {
    out.push(f.action.endsWith('*') ? like(auditEvents.action, `${escapeLike(f.action.slice(0, -1))}%`) : eq(auditEvents.action, f.action));
  }
  if (f.actor) out.push(eq(auditEvents.actorName, f.actor));
  if (f.outcome) out.push(eq(auditEvents.outcome, f.outcome));
  if (f.targetId) out.push(eq(auditEvents.targetId, f.targetId));
  if (f.from) out.push(gte(auditEvents.at, f.from));
  if (f.to) out.push(lte(auditEvents.at, f.to));
  return out;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}
