import { asc, eq, sql } from 'drizzle-orm';
import type { z } from 'zod';
import { DEFAULT_PORTS, type PowerPlanBody, type ProtocolPlanBody, type ReleasePlanBody } from '@stagedoor/contract';
import type { Db, DbOrTx } from '../../db/database.ts';
import { powerPlans, protocolPlans, releasePlans } from '../../db/schema/index.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, NotFoundError, isForeignKeyViolation, isUniqueViolation } from '../errors.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Actor } from '../identity/actor.ts';

export type ProtocolPlanRow = typeof protocolPlans.$inferSelect;
export type PowerPlanRow = typeof powerPlans.$inferSelect;
export type ReleasePlanRow = typeof releasePlans.$inferSelect;

export const PLAN_KINDS = {
  protocol: { table: protocolPlans, label: 'protocol plan', path: 'protocol-plans' },
  power: { table: powerPlans, label: 'power plan', path: 'power-plans' },
  release: { table: releasePlans, label: 'release plan', path: 'release-plans' },
} as const;
export type PlanKind = keyof typeof PLAN_KINDS;

type Bodies = { protocol: z.output<typeof ProtocolPlanBody>; power: z.output<typeof PowerPlanBody>; release: z.output<typeof ReleasePlanBody> };
type Rows = { protocol: ProtocolPlanRow; power: PowerPlanRow; release: ReleasePlanRow };

/** Map an API body to table columns (power plans flatten their three triggers). */
export function planColumns<K extends PlanKind>(kind: K, body: Bodies[K]): Record<string, unknown> {
  if (kind === 'power') {
    const b = body as Bodies['power'];
    return {
      name: b.name,
      description: b.description ?? null,
      onDisconnectAction: b.onDisconnect.action,
      onDisconnectDelaySeconds: b.onDisconnect.delaySeconds,
      onLogoutAction: b.onLogout.action,
      onLogoutDelaySeconds: b.onLogout.delaySeconds,
      onIdleAction: b.onIdle.action,
      onIdleDelaySeconds: b.onIdle.delaySeconds,
      scheduleRules: b.scheduleRules,
      timeZone: b.timeZone,
    };
  }
  if (kind === 'protocol') {
    const b = body as Bodies['protocol'];
    // Ports are stored resolved, so every reader sees the port in use.
    return { name: b.name, description: b.description ?? null, protocols: b.protocols.map((p) => ({ ...p, port: p.port ?? DEFAULT_PORTS[p.protocol] })) };
  }
  const b = body as Bodies['release'];
  return { ...b, description: b.description ?? null, warnMessage: b.warnMessage ?? null };
}

/** Protocol, power and release plans: named, reusable settings that policies point to. */
export class PlansService {
  constructor(private readonly deps: { db: Db; audit: AuditService; clock: Clock }) {}

  async list<K extends PlanKind>(kind: K, db: DbOrTx = this.deps.db): Promise<Rows[K][]> {
    const t = PLAN_KINDS[kind].table;
    return (await db.select().from(t).orderBy(asc(t.name))) as Rows[K][];
  }

  async get<K extends PlanKind>(kind: K, id: string, db: DbOrTx = this.deps.db): Promise<Rows[K]> {
    const t = PLAN_KINDS[kind].table;
    const [row] = await db.select().from(t).where(eq(t.id, id));
    if (!row) throw new NotFoundError(PLAN_KINDS[kind].label, id);
    return row as Rows[K];
  }

  async findByName<K extends PlanKind>(kind: K, name: string, db: DbOrTx = this.deps.db): Promise<Rows[K] | undefined> {
    const t = PLAN_KINDS[kind].table;
    const [row] = await db.select().from(t).where(sql`lower(${t.name}) = lower(${name})`);
    return row as Rows[K] | undefined;
  }

  async create<K extends PlanKind>(actor: Actor, kind: K, body: Bodies[K], tx?: DbOrTx): Promise<Rows[K]> {
    const t = PLAN_KINDS[kind].table;
    const now = this.deps.clock.now();
    return this.#guard(kind, body.name, () =>
      (tx ?? this.deps.db).transaction(async (db) => {
        const [row] = await db.insert(t).values({ ...planColumns(kind, body), createdAt: now, updatedAt: now } as never).returning();
        await this.deps.audit.record(actor, { action: `${kind}_plan.create`, outcome: 'success', targetType: `${kind}_plan`, targetId: row!.id, details: { name: body.name } }, db);
        return row as Rows[K];
      }),
    );
  }

  /** Replace a plan's settings (PUT semantics: the body is the whole plan). */
  async replace<K extends PlanKind>(actor: Actor, kind: K, id: string, body: Bodies[K], tx?: DbOrTx): Promise<Rows[K]> {
    const t = PLAN_KINDS[kind].table;
    return this.#guard(kind, body.name, () =>
      (tx ?? this.deps.db).transaction(async (db) => {
        const [row] = await db.update(t).set({ ...planColumns(kind, body), updatedAt: this.deps.clock.now() } as never).where(eq(t.id, id)).returning();
        if (!row) throw new NotFoundError(PLAN_KINDS[kind].label, id);
        await this.deps.audit.record(actor, { action: `${kind}_plan.update`, outcome: 'success', targetType: `${kind}_plan`, targetId: id, details: { name: body.name } }, db);
        return row as Rows[K];
      }),
    );
  }

  async delete(actor: Actor, kind: PlanKind, id: string, tx?: DbOrTx): Promise<void> {
    const t = PLAN_KINDS[kind].table;
    await this.#guard(kind, '', () =>
      (tx ?? this.deps.db).transaction(async (db) => {
        const rows = await db.delete(t).where(eq(t.id, id)).returning({ id: t.id });
        if (!rows.length) throw new NotFoundError(PLAN_KINDS[kind].label, id);
        await this.deps.audit.record(actor, { action: `${kind}_plan.delete`, outcome: 'success', targetType: `${kind}_plan`, targetId: id }, db);
      }),
    );
  }

  async #guard<T>(kind: PlanKind, name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a ${PLAN_KINDS[kind].label} named "${name}" already exists`);
      if (isForeignKeyViolation(err)) throw new ConflictError(`this ${PLAN_KINDS[kind].label} is used by a policy: change the policy first`);
      throw err;
    }
  }
}
