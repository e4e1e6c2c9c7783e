import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import type { Logger } from 'pino';
import { ensurePrivateDir, restrictTree } from './private-files.ts';
import * as schema from './schema/index.ts';
import { checkChannel, type Database, type Db } from './database.ts';

export class DataDirInUseError extends Error {
  constructor(dir: string, pid: number) {
    super(
      `the embedded database in ${dir} is in use by process ${pid}; stop that process, use another STAGEDOOR_DATA_DIR, or set DATABASE_URL to share a PostgreSQL server`,
    );
    this.name = 'DataDirInUseError';
  }
}

/**
 * The embedded default: PostgreSQL compiled to WASM, in this process, stored under the data
 * directory (or in memory when `dataDir` is undefined, for tests).
 *
 * PGlite is one connection owned by one process, so a lock file keeps a second process off the
 * same directory (two writers would corrupt it), and advisory locks become an in-process mutex:
 * with the database exclusive to this process, that is the same guarantee a cluster lock gives.
 *
 * The directory is this user's alone (0700; an existing one is tightened, with a log line), and
 * the files PGlite wrote lose their group and other bits at each open: PGlite creates them 0666
 * less the umask, where PostgreSQL itself would use 0600.
 */
export async function openPglite(opts: { dataDir?: string; timeZone?: string; log?: Pick<Logger, 'warn'> }): Promise<Database> {
  let releaseLock = () => {};
  if (opts.dataDir) {
    ensurePrivateDir(opts.dataDir, opts.log);
    releaseLock = lockDataDir(opts.dataDir);
    restrictTree(opts.dataDir, opts.log);
  }
  let client: PGlite;
  try {
    client = await PGlite.create(opts.dataDir ?? 'memory://');
    // A first start has just written the whole cluster (initdb) with PGlite's modes.
    if (opts.dataDir) restrictTree(opts.dataDir);
    if (opts.timeZone) await client.exec(`set time zone '${opts.timeZone.replace(/'/g, "''")}'`);
  } catch (err) {
    releaseLock();
    throw err;
  }
  const db = drizzle(client, { schema }) as unknown as Db;
  const held = new Map<string, Promise<unknown>>();

  async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    while (held.has(key)) await held.get(key)!.catch(() => undefined);
    const run = fn();
    held.set(key, run);
    try {
      return await run;
    } finally {
      held.delete(key);
    }
  }

  return {
    kind: 'pglite',
    db,
    tryWithAdvisoryLock: async (key, fn) => {
      if (held.has(key)) return { acquired: false };
      return { acquired: true, value: await withLock(key, fn) };
    },
    withAdvisoryLock: (key, fn) => withLock(key, () => fn(db)),
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    notify: async (channel, payload) => {
      await client.query('select pg_notify($1, $2)', [checkChannel(channel), payload]);
    },
    listen: async (channel, onMessage) => {
      const unlisten = await client.listen(checkChannel(channel), onMessage);
      return async () => {
        if (!client.closed) await unlisten();
      };
    },
    close: async () => {
      try {
        await client.close();
      } finally {
        releaseLock();
      }
    },
  };
}

function lockDataDir(dir: string): () => void {
  const file = path.join(dir, 'stagedoor.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(file, 'utf8'));
      if (pid && pid !== process.pid && isAlive(pid)) throw new DataDirInUseError(dir, pid);
      fs.rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`could not lock ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
