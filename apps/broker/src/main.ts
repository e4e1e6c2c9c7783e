import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config/config.ts';
import type { Database } from './db/database.ts';
import { runMigrations } from './db/migrate.ts';
import { openDatabase } from './db/open.ts';
import { ensurePrivateDir } from './db/private-files.ts';
import { type Clock, systemClock } from './domain/clock.ts';
import { systemActor } from './domain/identity/actor.ts';
import { buildApp } from './http/app.ts';
import { assertPortFree, isAddressInUse, PortInUseError } from './http/port-check.ts';
import { builtinJobs } from './jobs/builtin-jobs.ts';
import { gatewayJobs } from './domain/gateways/gateway-jobs.ts';
import { JobRunner } from './jobs/job-runner.ts';
import { TimersRepository } from './jobs/timers.repository.ts';
import { Metrics } from './observability/metrics.ts';
import { startMetricsListener } from './observability/metrics-access.ts';
import { createServices, type Services } from './services.ts';
import { VERSION } from './version.ts';
import { watchTlsFiles } from './http/tls.ts';
import type https from 'node:https';

export interface Broker {
  app: FastifyInstance;
  services: Services;
  database: Database;
  jobs: JobRunner;
  metrics: Metrics;
  url: string | null;
  /** STAGEDOOR_METRICS_LISTEN: where `/metrics` is served instead of on `url`. */
  metricsUrl?: string;
  close(): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  clock?: Clock;
  listen?: boolean;
  /** Called once when the first start created the admin, with the password to show once. */
  onAdminCreated?: (info: { password: string; generated: boolean }) => void;
  /** Tests shorten cloud retry backoff. */
  cloud?: { backoffBaseMs?: number; maxAttempts?: number };
}

/** Open the database, migrate, assemble, start the jobs and (optionally) listen. */
export async function startBroker(config: Config, opts: StartOptions): Promise<Broker> {
  const { log } = opts;
  // Before the database: a first start creates the admin (and its one-time password) on it.
  if (opts.listen !== false) await assertPortFree(config.host, config.port);
  if (config.database.kind === 'pglite') ensurePrivateDir(config.dataDir, log);
  const database = await openDatabase(config, log.child({ area: 'db' }));
  try {
    const status = await runMigrations(database);
    log.info({ driver: database.kind, migrations: status }, 'database ready');
    const broker = await assembleBroker(config, database, opts);
    if (opts.listen !== false) {
      await broker.app.listen({ port: config.port, host: config.host }).catch(async (err: unknown) => {
        await broker.close().catch(() => undefined);
        throw isAddressInUse(err) ? new PortInUseError(config.host, config.port) : err;
      });
      broker.url = `${config.tls ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
      if (config.tls) {
        const stopWatching = watchTlsFiles(broker.app.server as unknown as https.Server, config.tls, log.child({ area: 'tls' }));
        const close = broker.close;
        broker.close = async () => {
          stopWatching();
          await close();
        };
      }
      const { listen } = config.metrics;
      if (listen) {
        const metricsListener = await startMetricsListener(broker.metrics, { ...config.metrics, listen }, log.child({ area: 'metrics' })).catch(async (err: unknown) => {
          await broker.close().catch(() => undefined);
          throw new Error(`STAGEDOOR_METRICS_LISTEN: cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`, { cause: err });
        });
        broker.metricsUrl = metricsListener.url;
        const close = broker.close;
        broker.close = async () => {
          await metricsListener.close();
          await close();
        };
      }
    }
    if (config.jobs.enabled) broker.jobs.start();
    return broker;
  } catch (err) {
    await database.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Wire services, jobs and the HTTP app onto an open, migrated database. Tests call this directly
 * with their own database and clock; nothing listens and no job starts until the caller says so.
 */
export async function assembleBroker(config: Config, database: Database, opts: StartOptions): Promise<Broker> {
  const { log } = opts;
  const clock = opts.clock ?? systemClock;
  const metrics = new Metrics(() => database.poolStats());
  const services = createServices({ config, database, clock, log, metrics, cloud: opts.cloud });
  const admin = await services.users.bootstrapAdmin(systemActor, config.adminPassword);
  if (admin.created) opts.onAdminCreated?.(admin);
  // Shipped list prices for the cost report; idempotent, never overwrites an admin's price.
  await services.prices.installDefaults();

  const jobs = new JobRunner({ database, clock, log: log.child({ area: 'jobs' }), metrics });
  for (const job of builtinJobs(services, new TimersRepository(database.db), config)) jobs.register(job);
  for (const job of gatewayJobs(services.gateways, config)) jobs.register(job);

  const app = await buildApp({ config, database, services, metrics, log, version: VERSION });
  return {
    app,
    services,
    database,
    jobs,
    metrics,
    url: null,
    close: async () => {
      await jobs.stop();
      services.gateways.channels.close(); // gateways reconnect to another node; nothing to record here
      await app.close();
      // Running pool passes finish (and the LISTEN connection is released) before the pool closes.
      await services.pools.stop();
      await services.follower.stop();
      await database.close();
    },
  };
}
