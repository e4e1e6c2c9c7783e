import type { Logger } from 'pino';
import type { Config } from './config/config.ts';
import type { Database } from './db/database.ts';
import type { Clock } from './domain/clock.ts';
import { AuditRepository } from './domain/audit/audit.repository.ts';
import { AuditService } from './domain/audit/audit.service.ts';
import { AuthService } from './domain/identity/auth.service.ts';
import { GroupsRepository } from './domain/identity/groups.repository.ts';
import { GroupsService } from './domain/identity/groups.service.ts';
import { SessionsRepository } from './domain/identity/sessions.repository.ts';
import { UsersRepository } from './domain/identity/users.repository.ts';
import { UsersService } from './domain/identity/users.service.ts';
import { TimersRepository } from './jobs/timers.repository.ts';
import { TimerService } from './jobs/timers.service.ts';
import type { Metrics } from './observability/metrics.ts';
import { SecretBox } from './domain/secrets/secret-box.ts';

export interface ServiceDeps {
  config: Pick<Config, 'session' | 'nodeId' | 'secretKey'>;
  database: Database;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}

/** Build every repository and service once; routes, jobs and the CLI share these instances. */
export function createServices(deps: ServiceDeps) {
  const { database, clock, log, metrics } = deps;
  const db = database.db;
  const usersRepo = new UsersRepository(db);
  const groupsRepo = new GroupsRepository(db);
  const sessionsRepo = new SessionsRepository(db);
  const audit = new AuditService({ repo: new AuditRepository(db), clock, log: log.child({ area: 'audit' }) });
  const timers = new TimerService({ repo: new TimersRepository(db), clock, log: log.child({ area: 'timers' }), metrics, nodeId: deps.config.nodeId });
  const secrets = new SecretBox(deps.config.secretKey);
  return {
    secrets,
    audit,
    timers,
    sessionsRepo,
    users: new UsersService({ db, users: usersRepo, groups: groupsRepo, sessions: sessionsRepo, audit, clock }),
    groups: new GroupsService({ db, groups: groupsRepo, audit, clock }),
    auth: new AuthService({ db, users: usersRepo, sessions: sessionsRepo, audit, clock, log: log.child({ area: 'auth' }), policy: deps.config.session }),
  };
}

export type Services = ReturnType<typeof createServices>;
