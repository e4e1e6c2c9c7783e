import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type * as schema from './schema/index.ts';

export type Schema = typeof schema;
/** The query builder every repository uses; the same type over PGlite and node-postgres. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
/** A transaction handle; repositories accept `Db | Tx` so services choose the transaction boundary. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export type DriverKind = 'pglite' | 'postgres';

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

/**
 * The storage seam: one interface over the embedded PGlite and a real PostgreSQL server.
 * Everything above this file is driver-agnostic.
 */
export interface Database {
  readonly kind: DriverKind;
  readonly db: Db;
  /**
   * Run `fn` while holding the session-level advisory lock `key`, or return `{ acquired: false }`
   * at once when another session (another broker node) holds it.
   */
  tryWithAdvisoryLock<T>(key: string, fn: () => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }>;
  /** Run `fn` with a query builder on one connection holding the advisory lock `key` (waits for it). */
  withAdvisoryLock<T>(key: string, fn: (db: Db) => Promise<T>): Promise<T>;
  poolStats(): PoolStats;
  close(): Promise<void>;
}

/** Advisory lock ids are 64-bit integers; derive a stable one from a readable name. */
export async function lockId(name: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  const digest = createHash('sha256').update(`stagedoor:${name}`).digest();
  return digest.readBigInt64BE(0).toString();
}
