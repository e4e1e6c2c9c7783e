import type { TestProject } from 'vitest/node';
import { startPostgres } from './postgres-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}

/** One PostgreSQL server for the whole run; each test file makes its own database in it. */
export default async function setup(project: TestProject) {
  const server = await startPostgres();
  project.provide('postgresUrl', server.url);
  console.log(`[test harness] PostgreSQL server on port ${server.port} (time zone ${(await import('./postgres-server.ts')).TEST_DB_TIME_ZONE})`);
  const onExit = () => server.stop();
  process.once('exit', onExit);
  return () => {
    process.off('exit', onExit);
    server.stop();
  };
}
