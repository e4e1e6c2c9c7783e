import { sql, type SQL } from 'drizzle-orm';
import { timestamp, uuid } from 'drizzle-orm/pg-core';

/** Shared column builders so every table spells ids and times the same way. */
export const id = () => uuid('id').primaryKey().defaultRandom();
export const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
export const createdAt = () => ts('created_at').notNull().defaultNow();
export const updatedAt = () => ts('updated_at').notNull().defaultNow();

/** `column IN ('a','b')` for state check constraints; text + check evolves more easily than pg enums. */
export function oneOf(column: SQL | string, values: readonly string[]): SQL {
  const list = values.map((v) => `'${v.replace(/'/g, "''")}'`).join(', ');
  const col = typeof column === 'string' ? sql.identifier(column) : column;
  return sql`${col} in (${sql.raw(list)})`;
}
