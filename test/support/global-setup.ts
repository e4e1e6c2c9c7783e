import type { TestProject } from 'vitest/node';
import { RUN_DIR_ENV, runDirFor, stopOrphanedRuns, stopRun } from './leftovers.ts';
import { startPostgres } from './postgres-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

/**
 * One PostgreSQL server for the whole run; each test file makes its own database in it. This process
 * owns the run's record of servers started (leftovers.ts): the workers inherit its directory, and the
 * teardown stops whatever a worker that died outright left running.
 */
export default async function setup(project: TestProject) {
  report('an earlier run, killed before its clean-up, left running', stopOrphanedRuns());
  const runDir = runDirFor();
  process.env[RUN_DIR_ENV] = runDir;
  const server = await startPostgres();
  project.provide('postgresUrl', server.url);
  console.log(`[test harness] PostgreSQL server on port ${server.port} (time zone ${(await import('./postgres-server.ts')).TEST_DB_TIME_ZONE})`);
  const onExit = () => server.stop();
  process.once('exit', onExit);
  return () => {
    process.off('exit', onExit);
    server.stop();
    report('test processes that died without their clean-up left running', stopRun(runDir));
  };
}

function report(what: string, stopped: string[]): void {
  if (stopped.length) console.warn(`[test harness] ${what} (now stopped): ${stopped.join('; ')}`);
}
