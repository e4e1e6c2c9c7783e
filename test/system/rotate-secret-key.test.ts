import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../apps/broker/src/config/config.ts';
import { rowsOf, runMigrations } from '../../apps/broker/src/db/migrate.ts';
import { openPostgres } from '../../apps/broker/src/db/postgres.ts';
import type { Database } from '../../apps/broker/src/db/database.ts';
import { cliActor } from '../../apps/broker/src/domain/identity/actor.ts';
import { secretKeyId } from '../../apps/broker/src/domain/secrets/secret-box.ts';
import { Metrics } from '../../apps/broker/src/observability/metrics.ts';
import { createServices } from '../../apps/broker/src/services.ts';
import { createPostgresDatabase, silentLog } from '../support/database.ts';
import { spawnStagedoor } from '../support/processes.ts';

const OLD_KEY = randomBytes(32).toString('hex');
const NEW_KEY = randomBytes(32).toString('hex');

/** The documented key rotation, as an operator runs it: `stagedoor admin rotate-secret-key`, twice. */
describe('stagedoor admin rotate-secret-key', { timeout: 120_000 }, () => {
  let url: string;
  let database: Database;

  beforeAll(async () => {
    url = await createPostgresDatabase();
    database = await openPostgres({ url, poolSize: 2, log: silentLog });
    await runMigrations(database);
    const services = createServices({ config: loadConfig({}, { STAGEDOOR_SECRET_KEY: OLD_KEY }), database, clock: { now: () => new Date() }, log: silentLog, metrics: new Metrics(() => database.poolStats()) });
    for (const name of ['mfa-a', 'mfa-b', 'mfa-c']) {
      await services.authServers.create(cliActor('test'), { kind: 'radius', name, enabled: false, purpose: 'second-factor', config: { servers: [{ host: '10.0.0.5' }] }, sharedSecret: `secret-of-${name}` } as never);
    }
  }, 60_000);
  afterAll(async () => database?.close());

  const run = async (env: Record<string, string | undefined>, args: string[] = []) => {
    const p = spawnStagedoor(['admin', 'rotate-secret-key', ...args], { DATABASE_URL: url, STAGEDOOR_SECRET_KEY: NEW_KEY, STAGEDOOR_SECRET_KEY_PREVIOUS: OLD_KEY, ...env });
    const code = await p.exited;
    return { code, out: p.stdout.join('\n'), err: p.stderr.join('\n') };
  };
  const keyIds = async () => rowsOf<{ k: string }>(await database.db.execute(sql`select split_part(secret_ciphertext, ':', 2) as k from auth_servers order by name`)).map((r) => r.k);

  it('without the old key it opens nothing, changes nothing, and says which key is missing', async () => {
    const r = await run({ STAGEDOOR_SECRET_KEY_PREVIOUS: undefined });
    expect(r.code).toBe(1);
    expect(r.err).toContain(secretKeyId(Buffer.from(OLD_KEY, 'hex')));
    expect(await keyIds()).toEqual(Array(3).fill(secretKeyId(Buffer.from(OLD_KEY, 'hex'))));
  });

  it('re-seals every secret under the new key in batches, and a second run finds nothing to do', async () => {
    const first = await run({}, ['--batch-size', '2']);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain(`re-sealed 3 secrets under key ${secretKeyId(Buffer.from(NEW_KEY, 'hex'))}`);
    expect(first.out).toContain('STAGEDOOR_SECRET_KEY_PREVIOUS can be removed');
    expect(await keyIds()).toEqual(Array(3).fill(secretKeyId(Buffer.from(NEW_KEY, 'hex'))));
    const again = await run({});
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('re-sealed 0 secrets');
    expect(again.out).toContain('3 were already under it');
  });

  it('refuses a bad batch size before touching anything', async () => {
    const r = await run({}, ['--batch-size', '0']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('--batch-size');
  });
});
