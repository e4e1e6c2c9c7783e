import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordLeftover } from './leftovers.ts';
import { freePort } from './ports.ts';

/** The zone the test servers run in: not UTC, and not a whole-hour offset, to flush out zone bugs. */
export const TEST_DB_TIME_ZONE = 'Asia/Kolkata';

export interface PostgresServer {
  url: string;
  port: number;
  dir: string;
  /** Stop at once and delete the data directory. */
  stop(): void;
  /** Crash: stop at once (`pg_ctl stop -m immediate`, every backend killed), keeping the data. */
  halt(): void;
  /** Start again, on the same port, from the same data (after `halt`). */
  start(): void;
  /** A streaming standby of this server, on a port of its own (see `startReplica`). */
  replicate(): Promise<PostgresServer>;
  /** A standby becomes a primary that accepts writes (`pg_ctl promote`, waiting until it does). */
  promote(): void;
}

const asRoot = () => process.getuid?.() === 0;

/**
 * Start a throwaway PostgreSQL server from Debian's binaries: `initdb` in a temp dir, `pg_ctl`
 * on a free loopback port. PostgreSQL refuses to run as root, so as root it runs as `postgres`.
 * `settings` are appended to the defaults, so a later one overrides a default (`synchronous_commit=on`).
 */
export async function startPostgres(opts: { maxConnections?: number; settings?: string[] } = {}): Promise<PostgresServer> {
  const dir = makeDir();
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { mode: 0o700 });
  if (asRoot()) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  pgRun(dir, 'initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-locale', '--no-sync']);
  return launch(dir, data, await freePort(), opts);
}

function makeDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-pg-'));
  if (asRoot()) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  return dir;
}

function pgRun(dir: string, cmd: string, args: string[]): void {
  const bin = findPostgresBin();
  const [file, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]] : [path.join(bin, cmd), args];
  const r = spawnSync(file, argv, { encoding: 'utf8', cwd: dir });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
}

function launch(dir: string, data: string, port: number, opts: { maxConnections?: number; settings?: string[] }): PostgresServer {
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    `-c max_connections=${opts.maxConnections ?? 300}`,
    `-c timezone=${TEST_DB_TIME_ZONE}`,
    // A test server: durability is not the point, speed is.
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    ...(opts.settings ?? []).map((kv) => `-c ${kv}`),
  ].join(' ');
  const start = () => pgRun(dir, 'pg_ctl', ['-D', data, '-o', settings, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const halt = () => {
    try {
      pgRun(dir, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
  };
  start();
  // pg_ctl daemonizes the server: a test process that dies before its clean-up (a hook timing out)
  // must not leave it running.
  // A test process killed outright runs no exit hook: the run's clean-up stops the server then (leftovers.ts).
  const forget = recordLeftover({ kind: 'postgres', dir, data });
  const onExit = () => {
    halt();
    fs.rmSync(dir, { recursive: true, force: true });
    forget();
  };
  process.on('exit', onExit);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    halt,
    start,
    stop: () => {
      process.off('exit', onExit);
      onExit();
    },
    promote: () => pgRun(dir, 'pg_ctl', ['-D', data, '-w', '-t', '60', 'promote']),
    replicate: async () => {
      const replicaDir = makeDir();
      const replicaData = path.join(replicaDir, 'data');
      // -R writes primary_conninfo and standby.signal: the copy starts as a streaming standby.
      pgRun(replicaDir, 'pg_basebackup', ['-h', dir, '-p', String(port), '-U', 'postgres', '-D', replicaData, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
      return launch(replicaDir, replicaData, await freePort(), opts);
    },
  };
}

/**
 * A primary with a synchronous streaming standby: every commit the primary acknowledges is on the
 * standby too (`synchronous_commit=on`, `synchronous_standby_names='*'`), as Aurora's shared
 * storage guarantees, so promoting the standby loses nothing a client was told succeeded.
 */
export async function startReplicatedPostgres(opts: { maxConnections?: number } = {}): Promise<{ primary: PostgresServer; standby: PostgresServer }> {
  const primary = await startPostgres({ ...opts, settings: ['synchronous_commit=on'] });
  let standby: PostgresServer | undefined;
  try {
    standby = await primary.replicate();
    // Only now that a standby exists: with the setting on and no standby, commits would wait forever.
    psql(primary, "alter system set synchronous_standby_names = '*'");
    psql(primary, 'select pg_reload_conf()');
    const deadline = Date.now() + 60_000;
    while (psql(primary, "select count(*) from pg_stat_replication where sync_state = 'sync' and state = 'streaming'").trim() !== '1') {
      if (Date.now() > deadline) throw new Error('the standby did not start streaming synchronously within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { primary, standby };
  } catch (err) {
    standby?.stop();
    primary.stop();
    throw err;
  }
}

function psql(server: PostgresServer, sql: string): string {
  const bin = findPostgresBin();
  const args = ['-h', server.dir, '-p', String(server.port), '-U', 'postgres', '-d', 'postgres', '-At', '-c', sql];
  const [file, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', path.join(bin, 'psql'), ...args]] : [path.join(bin, 'psql'), args];
  const r = spawnSync(file, argv, { encoding: 'utf8', cwd: server.dir });
  if (r.status !== 0) throw new Error(`psql failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

let postgresBin: string | undefined;

function findPostgresBin(): string {
  if (postgresBin) return postgresBin;
  const candidates: string[] = [];
  const which = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) candidates.push(path.dirname(fs.realpathSync(which.stdout.trim())));
  const debian = '/usr/lib/postgresql';
  if (fs.existsSync(debian)) {
    for (const v of fs.readdirSync(debian).sort((a, b) => Number(b) - Number(a))) candidates.push(path.join(debian, v, 'bin'));
  }
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'initdb')) && fs.existsSync(path.join(d, 'pg_ctl')));
  if (!found) throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql');
  return (postgresBin = found);
}
