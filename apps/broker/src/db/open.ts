import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { Database } from './database.ts';
import { openPglite } from './pglite.ts';
import { openPostgres } from './postgres.ts';

/** Open the database the config names: PGlite under the data directory, or PostgreSQL at DATABASE_URL. */
export async function openDatabase(config: Pick<Config, 'database' | 'nodeId'>, log: Logger): Promise<Database> {
  if (config.database.kind === 'postgres') {
    return openPostgres({ url: config.database.url, poolSize: config.database.poolSize, log, applicationName: `stagedoor ${config.nodeId}` });
  }
  return openPglite({ dataDir: config.database.dataDir, log });
}
