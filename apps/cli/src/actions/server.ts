import { createLogger, loadConfig, openDatabase, runMigrations, startBroker, type Config } from '@stagedoor/broker';
import { devSecretKey, sandboxBanner, startSandbox } from './sandbox.ts';
import { startDevGateway } from './dev-gateway.ts';
import './broker-errors.ts';

/** `stagedoor dev [--sandbox]`: what `npm start` runs. */
export async function runDev(opts: { sandbox?: boolean }): Promise<void> {
  await runServer('dev', opts);
}

/** `stagedoor broker`: a production broker node. */
export async function runBrokerRole(): Promise<void> {
  await runServer('broker');
}

/** `stagedoor migrate`. */
export async function runMigrate(): Promise<void> {
  privateFilesOnly();
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, nodeId: config.nodeId });
  const database = await openDatabase(config, log);
  try {
    const status = await runMigrations(database);
    console.log(`migrations: ${status.applied} applied of ${status.expected} shipped on ${database.kind}${status.upToDate ? ' — up to date' : ''}`);
  } finally {
    await database.close();
  }
}

async function runServer(role: 'dev' | 'broker', opts: { sandbox?: boolean } = {}): Promise<void> {
  privateFilesOnly();
  let config = loadConfig();
  // Production serves browsers over HTTPS (usually through a load balancer): the session cookie is
  // Secure whether or not the proxy's X-Forwarded-Proto is trusted. `dev` keeps plain http working.
  if (role === 'broker') config = { ...config, session: { ...config.session, secureCookie: 'always' } };
  const log = createLogger({ level: config.logLevel, nodeId: config.nodeId });
  if (role === 'dev' && !config.secretKey) config = { ...config, secretKey: devSecretKey(config.dataDir, log) };
  if (role === 'broker' && config.database.kind === 'pglite') {
    log.warn('no DATABASE_URL: using the embedded database, which serves one broker node only');
  }
  let createdAdmin: { password: string; generated: boolean } | undefined;
  // The generated password is shown once: if anything after its creation fails (the port taken in
  // the instant after startBroker's check, the sandbox's port), it is shown with the error, not lost.
  const keepPassword = (err: unknown) => {
    if (createdAdmin?.generated && !closing) console.error(`  First start: created user "admin" with password  ${createdAdmin.password}  (shown once; the start failed below)`);
    throw err;
  };
  let closing = false;
  const broker = await startBroker(config, { log, onAdminCreated: (info) => (createdAdmin = info) }).catch(keepPassword);
  // Signals are handled from here on, before the sandbox and the dev gateway start (the gateway's
  // first start makes its certificate and binds its listeners): a Ctrl-C or SIGTERM during that still
  // shuts the broker down cleanly and releases the data directory.
  const running: { sandbox?: Awaited<ReturnType<typeof startSandbox>>; gateway?: Awaited<ReturnType<typeof startDevGateway>> } = {};
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    running.gateway?.stop();
    await running.sandbox?.close();
    await broker.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  const sandbox = (running.sandbox = opts.sandbox
    ? await startSandbox(broker, config, log).catch(async (err: unknown) => {
        await broker.close().catch(() => undefined);
        return keepPassword(err);
      })
    : undefined);
  printBanner(role, config, broker.url!, createdAdmin);
  if (sandbox) console.error(sandboxBanner(sandbox.url).map((l) => `  ${l}`).join('\n'));
  // A start cut short by a shutdown may fail on the closing database: the shutdown exits the process.
  const gateway = (running.gateway = role === 'dev' ? await startDevGateway(broker, config).catch((err: unknown) => (closing ? null : Promise.reject(err))) : null);
  if (closing) gateway?.stop();
  else if (gateway) console.error(`  ${gateway.banner}`);
}

function printBanner(role: string, config: Config, url: string, createdAdmin?: { password: string; generated: boolean }): void {
  const db = config.database.kind === 'pglite' ? `embedded PostgreSQL in ${config.database.dataDir}` : 'PostgreSQL at DATABASE_URL';
  const lines = [`Stagedoor ${role} is up at ${url}  (${db})`];
  if (createdAdmin?.generated) {
    lines.push(`First start: created user "admin" with password  ${createdAdmin.password}`, 'This is shown once. Change it with: npx stagedoor admin reset-password admin');
  } else if (createdAdmin) {
    lines.push('First start: created user "admin" with the password in STAGEDOOR_ADMIN_PASSWORD.');
  } else {
    lines.push('Sign in as "admin" (or any user) with the password set earlier; lost it? npx stagedoor admin reset-password admin');
  }
  lines.push(`Open ${url} in a browser, or: curl -c cookies -H 'content-type: application/json' -d '{"username":"admin","password":"…"}' ${url}/api/v1/auth/login`);
  // stderr, so that stdout stays a clean stream of JSON log lines.
  console.error(lines.map((l) => `  ${l}`).join('\n'));
}

/**
 * Files this process creates (the embedded database, the dev key, the sandbox state) are its user's
 * alone, whatever umask it was started with: PGlite creates its files 0666 less the umask.
 */
export function privateFilesOnly(): void {
  process.umask(0o077);
}
