import { getTableColumns, type InferSelectModel, type Table } from 'drizzle-orm';

const columnsOf = new WeakMap<Table, [string, ReturnType<typeof getTableColumns>[string]][]>();

/**
 * A row that came back as `to_jsonb(t)` from a hand-written statement, mapped to the shape Drizzle
 * gives for a `select()` of the same table: property names, Dates, numbers — each column's own
 * driver mapping. Used where one statement returns rows of several tables (the connect fast path).
 */
export function rowFromJson<T extends Table>(table: T, value: unknown): InferSelectModel<T> {
  // Drivers hand jsonb over parsed; a text form is accepted too.
  const json = (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, unknown>;
  let columns = columnsOf.get(table);
  if (!columns) columnsOf.set(table, (columns = Object.entries(getTableColumns(table))));
  const row: Record<string, unknown> = {};
  for (const [key, column] of columns) {
    const value = json[column.name];
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return row as InferSelectModel<T>;
}
