import type { Command } from 'commander';
import { cliActor, createLogger, createServices, generatePassword, loadConfig, Metrics, openDatabase, runMigrations } from '@stagedoor/broker';
import { ROLES, type Role } from '@stagedoor/contract';
import { CliError } from '../cli-error.ts';
import { privateFilesOnly } from './server.ts';

/**
 * Break-glass administration on the server itself, straight on the database (no HTTP, no
 * session): create a user, reset a password, re-seal stored secrets under a new key. Every change is
 * audited as `cli:<command>`.
 */
export function adminCommands(program: Command): void {
  const admin = program.command('admin').description('manage users and stored secrets directly on the database (break-glass, key rotation)');

  admin
    .command('create-user <username>')
    .description('create a local user; prints a generated password unless one is given')
    .option('--role <role>', `one of ${ROLES.join(', ')}`, 'user')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (username: string, opts: { role: string; passwordStdin?: boolean }) => {
      if (!(ROLES as readonly string[]).includes(opts.role)) throw new CliError(`--role must be one of ${ROLES.join(', ')} (got "${opts.role}")`);
      await withServices(async (services, generate) => {
        const { password, generated } = await passwordFrom(opts.passwordStdin, generate);
        const user = await services.users.create(cliActor('admin create-user'), { username, password, role: opts.role as Role, disabled: false, groupIds: [] });
        console.log(`created user ${user.username} (${user.role}, id ${user.id})`);
        if (generated) console.log(`password: ${password}`);
      });
    });

  admin
    .command('reset-password <username>')
    .description("set a user's password and end their sessions and API tokens; prints a generated password unless one is given")
    .option('--password-stdin', 'read the password from standard input')
    .action(async (username: string, opts: { passwordStdin?: boolean }) => {
      await withServices(async (services, generate) => {
        const { password, generated } = await passwordFrom(opts.passwordStdin, generate);
        const reset = await services.users.setPasswordByUsername(cliActor('admin reset-password'), username, password);
        console.log(`password of ${username} reset; ${reset.sessionsEnded} session(s) ended and ${reset.apiTokensRevoked} API token(s) revoked`);
        if (generated) console.log(`password: ${password}`);
      });
    });

  admin
    .command('rotate-secret-key')
    .description(
      're-seal every stored secret under STAGEDOOR_SECRET_KEY; secrets sealed under an older key open with STAGEDOOR_SECRET_KEY_PREVIOUS. In batches, safe to rerun (see docs/decisions/0015)',
    )
    .option('--batch-size <n>', 'secrets per transaction', '100')
    .action(async (opts: { batchSize: string }) => {
      const batchSize = Number(opts.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new CliError(`--batch-size must be a whole number from 1 to 10000 (got "${opts.batchSize}")`);
      await withServices(async (services) => {
        const r = await services.secretRotation.rotate(cliActor('admin rotate-secret-key'), { batchSize });
        const total = Object.values(r.resealed).reduce((a, b) => a + b, 0);
        const per = Object.entries(r.resealed).map(([table, n]) => `${table} ${n}`).join(', ');
        console.log(`re-sealed ${total} secrets under key ${r.keyId} (${per}); ${r.current} were already under it`);
        if (r.busy) console.log(`${r.busy} secrets were being changed meanwhile and were skipped: run the command again`);
        for (const f of r.failed) console.error(`cannot open ${f.table} ${f.id}: ${f.error}`);
        if (r.failed.length) throw new CliError(`${r.failed.length} secrets could not be opened with STAGEDOOR_SECRET_KEY or STAGEDOOR_SECRET_KEY_PREVIOUS; they were left as they are`);
        if (!r.busy) console.log('every stored secret is now sealed under the current key: STAGEDOOR_SECRET_KEY_PREVIOUS can be removed from every broker node');
      });
    });
}

type Services = ReturnType<typeof createServices>;

async function withServices(fn: (services: Services, generate: () => string) => Promise<void>): Promise<void> {
  privateFilesOnly();
  const config = loadConfig();
  const log = createLogger({ level: 'warn', nodeId: `${config.nodeId}-cli` });
  const database = await openDatabase(config, log);
  try {
    await runMigrations(database);
    const services = createServices({ config, database, clock: { now: () => new Date() }, log, metrics: new Metrics(() => database.poolStats()) });
    await fn(services, generatePassword);
  } finally {
    await database.close();
  }
}

async function passwordFrom(stdin: boolean | undefined, generate: () => string): Promise<{ password: string; generated: boolean }> {
  if (!stdin) return { password: generate(), generated: true };
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password.length < 8) throw new CliError('the password must be at least 8 characters');
  return { password, generated: false };
}
