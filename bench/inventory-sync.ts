/**
 * Inventory sync at scale: N instances in the EC2 emulator (default 10,000), one provider, one
 * sync — on the embedded database and on a real PostgreSQL server — and the second (no-change)
 * sync. Prints wall time and the number of EC2 calls. Run: npm run bench:sync [-- N]
 */
import pino from 'pino';
import { DEMO_AMI_ID, startEc2Emulator } from '../packages/ec2-emulator/src/index.ts';
import { loadConfig } from '../apps/broker/src/config/config.ts';
import { runMigrations } from '../apps/broker/src/db/migrate.ts';
import { openPglite } from '../apps/broker/src/db/pglite.ts';
import { openPostgres } from '../apps/broker/src/db/postgres.ts';
import type { Database } from '../apps/broker/src/db/database.ts';
import { systemActor } from '../apps/broker/src/domain/identity/actor.ts';
import { systemClock } from '../apps/broker/src/domain/clock.ts';
import { Metrics } from '../apps/broker/src/observability/metrics.ts';
import { createServices } from '../apps/broker/src/services.ts';
import { AwsEc2Provider } from '../apps/broker/src/providers/cloud/aws-ec2.ts';
import { startPostgres } from '../test/support/postgres-server.ts';

const N = Number(process.argv[2] ?? 10_000);
const log = pino({ level: 'silent' });

async function main() {
  const emu = await startEc2Emulator({ onError: () => undefined });
  const [subnet] = emu.control.seedSubnets([{ cidrBlock: '10.0.0.0/16', availabilityZone: 'us-east-1a' }]);
  const seed = new AwsEc2Provider({ region: emu.region, endpoint: emu.url, credentials: { accessKeyId: 'AKIABENCH00000000000', secretAccessKey: 'bench-secret-bench-secret' } });
  for (let launched = 0; launched < N; launched += 1000) {
    await seed.launch({ imageId: DEMO_AMI_ID, subnetId: subnet!.subnetId, name: 'bench', tags: { studio: 'bench' }, clientToken: `bench-${launched}`, count: Math.min(1000, N - launched) });
  }
  emu.control.advanceTime(60_000);
  console.log(`EC2 emulator: ${N} instances\n`);
  console.log('database  | pass           | seconds | EC2 calls | created | updated');
  console.log('----------|----------------|---------|-----------|---------|--------');

  const pg = await startPostgres();
  try {
    for (const kind of ['pglite', 'postgres'] as const) {
      const database: Database = kind === 'pglite' ? await openPglite({}) : await openPostgres({ url: pg.url, poolSize: 10, log });
      await runMigrations(database);
      const config = loadConfig({}, { STAGEDOOR_SECRET_KEY: 'cd'.repeat(32) });
      const services = createServices({ config, database, clock: systemClock, log, metrics: new Metrics(() => database.poolStats()) });
      const provider = await services.providers.create(systemActor, {
        kind: 'aws-ec2', name: 'bench', region: 'us-east-1', endpoint: emu.url, tagFilter: { studio: ['bench'] }, syncIntervalSeconds: 300, enabled: true,
        credentials: { mode: 'access-key', accessKeyId: 'AKIABENCH00000000000', secretAccessKey: 'bench-secret-bench-secret' },
      });
      for (const pass of ['first (import)', 'second (none)']) {
        const t0 = performance.now();
        const r = await services.inventory.syncNow(provider.id);
        const s = (performance.now() - t0) / 1000;
        if (r.status !== 'ok') throw new Error(r.message ?? 'sync failed');
        console.log(`${kind.padEnd(9)} | ${pass.padEnd(14)} | ${s.toFixed(2).padStart(7)} | ${String(r.counts.apiCalls).padStart(9)} | ${String(r.counts.created).padStart(7)} | ${String(r.counts.updated).padStart(7)}`);
      }
      await database.close();
    }
  } finally {
    pg.stop();
    await emu.close();
  }
}

await main();
