import type { SQL } from 'drizzle-orm';
import type { PgDialect, PgSession } from 'drizzle-orm/pg-core';
import type { DbOrTx } from './database.ts';

/**
 * `db.execute(query)` as a named prepared statement, so PostgreSQL parses and plans it once per
 * connection instead of on every call (the connect fast path spent 0.3–0.4 ms planning its `WITH`
 * each time). Drizzle names only its query builders' statements; this is its `execute` with a name.
 * The text must be the same on every call under one name — only the parameters change.
 */
export async function executeNamed(db: DbOrTx, name: string, query: SQL): Promise<{ rows: unknown[] }> {
  const { dialect, session } = db as unknown as { dialect: PgDialect; session: PgSession };
  const built = dialect.sqlToQuery(query);
  return (await session.prepareQuery(built, undefined, name, false).execute()) as { rows: unknown[] };
}
