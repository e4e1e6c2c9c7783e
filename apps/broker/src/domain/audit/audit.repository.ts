import { and, count, desc, eq, gte, like, lte, type SQL } from 'drizzle-orm';
import type { DbOrTx } from '../../db/database.ts';
import { auditEvents } from '../../db/schema/index.ts';

export type AuditRow = typeof auditEvents.$inferSelect;
export type NewAuditRow = typeof auditEvents.$inferInsert;

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

  async list(filter: AuditFilter, limit: number, offset: number): Promise<{ items: AuditRow[]; total: number }> {
    const where = and(...conditions(filter));
    const items = await this.db.select().from(auditEvents).where(where).orderBy(desc(auditEvents.id)).limit(limit).offset(offset);
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
