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
  /**
   * Signal every node that LISTENs on `channel` (PostgreSQL NOTIFY; inside a transaction it is
   * delivered at commit). The pool reconciler uses it to react to an assignment on another node.
   */
  notify(channel: string, payload: string): Promise<void>;
  /**
   * Call `onMessage` for each NOTIFY on `channel` (from any node) until the returned function is
   * called. The LISTEN connection is re-established whenever it is lost (a database restart or
   * failover), until it works; signals sent while it is down are lost, so every listener has an
   * interval job behind it.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** LISTEN takes an identifier, not a parameter: channel names are restricted to a safe shape. */
export function checkChannel(channel: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`invalid notification channel name: ${channel}`);
  return channel;
}

/** Advisory lock ids are 64-bit integers; derive a stable one from a readable name. */
export async function lockId(name: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  const digest = createHash('sha256').update(`stagedoor:${name}`).digest();
  return digest.readBigInt64BE(0).toString();
}
