import { cliActor, createLogger, createServices, DataDirInUseError, generatePassword, loadConfig, Metrics, openDatabase, runMigrations } from '@stagedoor/broker';
import { ROLES, type Role } from '@stagedoor/contract';
import { CliError } from '../cli-error.ts';
import { privateFilesOnly } from './server.ts';
import './broker-errors.ts';

/**
 * `stagedoor admin create-user`: on the database directly (break-glass, no server needed). When a
 * running `stagedoor dev` holds the embedded database (one process at a time), the same user is
 * created through that broker's API with the admin session of `stagedoor login` instead, so the
 * README's steps work while `npm start` runs.
 */
export async function createUser(username: string, opts: { role: string; group?: string[]; passwordStdin?: boolean; url?: string }): Promise<void> {
  if (!(ROLES as readonly string[]).includes(opts.role)) throw new CliError(`--role must be one of ${ROLES.join(', ')} (got "${opts.role}")`);
  const { password, generated } = await passwordFrom(opts.passwordStdin, generatePassword);
  const groupNames = opts.group ?? [];
  const created = await withServices(async (services) => {
    const groupIds = groupIdsByName(groupNames, (await services.groups.list(500, 0)).items);
    return services.users.create(cliActor('admin create-user'), { username, password, role: opts.role as Role, disabled: false, groupIds });
  }).catch(async (err: unknown) => {
    if (!(err instanceof DataDirInUseError)) throw err;
    return createThroughApi(err, { username, password, role: opts.role, groupNames, url: opts.url });
  });
  console.log(`created user ${created.username} (${created.role}, id ${created.id})${groupNames.length ? ` in ${groupNames.join(', ')}` : ''}`);
  if (generated) console.log(`password: ${password}`);
}

async function createThroughApi(held: DataDirInUseError, u: { username: string; password: string; role: string; groupNames: string[]; url?: string }) {
  const { ApiClient, readSession } = await import('../api-client.ts');
  if (!readSession() && !process.env.STAGEDOOR_TOKEN) {
    throw new CliError(`${held.message}.\nWhile it runs, create users through it: sign in as an admin first (stagedoor login --url http://127.0.0.1:8080 --username admin), then run this again`);
  }
  const api = ApiClient.fromOptions({ url: u.url, token: process.env.STAGEDOOR_TOKEN });
  const groups = u.groupNames.length ? (await api.request<{ items: { id: string; name: string }[] }>('GET', '/api/v1/groups?limit=500')).items : [];
  console.error(`the embedded database is held by the running broker: creating the user through ${api.url}`);
  return api.request<{ id: string; username: string; role: string }>('POST', '/api/v1/users', { username: u.username, password: u.password, role: u.role, groupIds: groupIdsByName(u.groupNames, groups) });
}

function groupIdsByName(names: string[], groups: { id: string; name: string }[]): string[] {
  return names.map((n) => {
    const g = groups.find((x) => x.name.toLowerCase() === n.toLowerCase());
    if (!g) throw new CliError(`no group named "${n}"; there are: ${groups.map((x) => x.name).join(', ') || 'none'}`);
    return g.id;
  });
}

export async function resetPassword(username: string, opts: { passwordStdin?: boolean }): Promise<void> {
  await withServices(async (services) => {
    const { password, generated } = await passwordFrom(opts.passwordStdin, generatePassword);
    const reset = await services.users.setPasswordByUsername(cliActor('admin reset-password'), username, password);
    console.log(`password of ${username} reset; ${reset.sessionsEnded} session(s) ended and ${reset.apiTokensRevoked} API token(s) revoked`);
    if (generated) console.log(`password: ${password}`);
  });
}

export async function rotateSecretKey(opts: { batchSize: string }): Promise<void> {
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
}

type Services = ReturnType<typeof createServices>;

async function withServices<T>(fn: (services: Services) => Promise<T>): Promise<T> {
  privateFilesOnly();
  const config = loadConfig();
  const log = createLogger({ level: 'warn', nodeId: `${config.nodeId}-cli` });
  const database = await openDatabase(config, log);
  try {
    await runMigrations(database);
    const services = createServices({ config, database, clock: { now: () => new Date() }, log, metrics: new Metrics(() => database.poolStats()) });
    return await fn(services);
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
