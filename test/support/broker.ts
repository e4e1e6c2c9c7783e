import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { loadConfig } from '../../apps/broker/src/config/config.ts';
import type { Clock } from '../../apps/broker/src/domain/clock.ts';
import { assembleBroker, type Broker } from '../../apps/broker/src/main.ts';
import { REDACTED_PATHS } from '../../apps/broker/src/observability/logger.ts';
import { createTestDatabase, type Driver, type TestDatabase } from './database.ts';

export const ADMIN_PASSWORD = 'correct horse battery staple';

export interface TestBroker extends Broker {
  testDb: TestDatabase;
  /** Every log line the broker wrote, for tests that prove a secret never reaches the log. */
  logLines: string[];
}

/** An in-process broker on a fresh database, with `admin` / ADMIN_PASSWORD. Jobs do not run. */
export async function createTestBroker(driver: Driver, opts: { clock?: Clock; env?: Record<string, string> } = {}): Promise<TestBroker> {
  const testDb = await createTestDatabase(driver);
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  const log = pino({ level: 'debug', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink);
  const config = loadConfig({}, { STAGEDOOR_ADMIN_PASSWORD: ADMIN_PASSWORD, STAGEDOOR_JOBS: 'off', STAGEDOOR_NODE_ID: 'test-node', ...opts.env });
  const broker = await assembleBroker(config, testDb.database, { log, clock: opts.clock });
  return { ...broker, testDb, logLines };
}

import type { Session } from './session.ts';
export { as, type Session } from './session.ts';

export async function login(app: FastifyInstance, username: string, password: string): Promise<Session> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password } });
  if (res.statusCode !== 200) throw new Error(`login as ${username} failed: ${res.statusCode} ${res.body}`);
  return { cookie: sessionCookie(res), csrf: res.json().csrfToken, userId: res.json().user.id };
}

export function sessionCookie(res: LightMyRequestResponse): string {
  const c = res.cookies.find((x) => x.name === 'stagedoor_session');
  if (!c) throw new Error('no session cookie in the response');
  return `stagedoor_session=${c.value}`;
}
