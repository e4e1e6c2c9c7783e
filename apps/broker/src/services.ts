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
import { createSignInServices } from './domain/identity/sign-in.wiring.ts';
import { TimersRepository } from './jobs/timers.repository.ts';
import { TimerService } from './jobs/timers.service.ts';
import type { Metrics } from './observability/metrics.ts';
import { SecretBox } from './domain/secrets/secret-box.ts';
import { SealedSecretsRepository } from './domain/secrets/sealed-secrets.repository.ts';
import { SecretRotationService } from './domain/secrets/secret-rotation.service.ts';
import { InventorySync } from './domain/providers/inventory-sync.ts';
import { PowerFollower } from './domain/providers/power-follow.ts';
import { ProviderRegistry } from './domain/providers/provider-registry.ts';
import { ProvidersRepository } from './domain/providers/providers.repository.ts';
import { ProvidersService } from './domain/providers/providers.service.ts';
import { WorkstationsRepository } from './domain/workstations/workstations.repository.ts';
import { WorkstationsService } from './domain/workstations/workstations.service.ts';
import { StaticHostsService } from './domain/workstations/static-hosts.service.ts';
import { GatewaysRepository } from './domain/gateways/gateways.repository.ts';
import { GatewaysService } from './domain/gateways/gateways.service.ts';
import { PlansService } from './domain/plans/plans.service.ts';
import { PoliciesRepository } from './domain/policies/policies.repository.ts';
import { PoliciesService } from './domain/policies/policies.service.ts';
import { createPoolsService } from './domain/pools/pools.wiring.ts';
import { createAccessServices, createConnectServices } from './domain/connections/connections.wiring.ts';
import { LiveSessionsRepository } from './domain/connections/live-sessions.repository.ts';
import { SiteApplyService } from './domain/apply/site-apply.service.ts';
import { createPowerServices } from './domain/power/power.wiring.ts';
import { PricesRepository } from './domain/prices/prices.repository.ts';
import { PricesService } from './domain/prices/prices.service.ts';
import { ReportsRepository } from './domain/reports/reports.repository.ts';
import { ReportsService } from './domain/reports/reports.service.ts';

export interface ServiceDeps {
  config: Pick<Config, 'session' | 'apiTokens' | 'nodeId' | 'secretKey' | 'previousSecretKeys' | 'audit' | 'gateway' | 'signIn'>;
  database: Database;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** Tests shorten cloud retry backoff; production leaves it unset. */
  cloud?: { backoffBaseMs?: number; maxAttempts?: number };
}

/** Build every repository and service once; routes, jobs and the CLI share these instances. */
export function createServices(deps: ServiceDeps) {
  const { database, clock, log, metrics } = deps;
  const db = database.db;
  const usersRepo = new UsersRepository(db);
  const groupsRepo = new GroupsRepository(db);
  const sessionsRepo = new SessionsRepository(db);
  const audit = new AuditService({ db, repo: new AuditRepository(db), clock, log: log.child({ area: 'audit' }), policy: deps.config.audit });
  const timers = new TimerService({ repo: new TimersRepository(db), clock, log: log.child({ area: 'timers' }), metrics, nodeId: deps.config.nodeId });
  const secrets = new SecretBox(deps.config.secretKey, deps.config.previousSecretKeys);
  const registry = new ProviderRegistry(secrets, deps.cloud);
  const providersRepo = new ProvidersRepository(db);
  const workstationsRepo = new WorkstationsRepository(db);
  const inventory = new InventorySync({ database, providers: providersRepo, workstations: workstationsRepo, registry, clock, log: log.child({ area: 'inventory' }) });
  // Follows every power operation and launch until the cloud says the machine settled (this node only).
  const follower = new PowerFollower({ database, providers: providersRepo, workstations: workstationsRepo, registry, clock, log: log.child({ area: 'power-follow' }) });
  const pools = createPoolsService({ database, providers: providersRepo, workstations: workstationsRepo, registry, audit, clock, log, follower });
  const gateways = new GatewaysService({ db, timers, repo: new GatewaysRepository(db), audit, clock, log: log.child({ area: 'gateways' }), policy: deps.config.gateway, nodeId: deps.config.nodeId, signals: database, secrets });
  // Built before the identity and policy services: their changes end the access they took away.
  const access = createAccessServices({ db, audit, clock, log, gateways, pools, connectByMs: deps.config.gateway.connectBySeconds * 1000 });
  const groups = new GroupsService({ db, groups: groupsRepo, audit, clock, access: access.review });
  const auth = new AuthService({ db, users: usersRepo, sessions: sessionsRepo, audit, clock, log: log.child({ area: 'auth' }), policy: deps.config.session, tokenPolicy: deps.config.apiTokens });
  const signIn = createSignInServices({ db, clock, log, config: deps.config, secrets, audit, users: usersRepo, groups, auth, access: access.review });
  const plans = new PlansService({ db, audit, clock });
  const policies = new PoliciesService({ db, repo: new PoliciesRepository(db), audit, clock, access: access.review });
  const providers = new ProvidersService({ db, repo: providersRepo, workstations: workstationsRepo, registry, sync: inventory, secrets, audit, clock });
  const workstations = new WorkstationsService({ db, repo: workstationsRepo, providers: providersRepo, registry, audit, clock, follower });
  const staticHosts = new StaticHostsService({ db, repo: workstationsRepo, providers: providersRepo, audit, clock });
  const connect = createConnectServices({ db, policies, plans, pools, workstations, workstationsRepo, gateways, audit, clock, log, connectByMs: deps.config.gateway.connectBySeconds * 1000 });
  const power = createPowerServices({ db, timers, workstations, connections: connect.connections, gateways, audit, clock, log });
  const siteApply = new SiteApplyService({
    db,
    audit,
    access: access.review,
    context: {
      groups,
      authServers: signIn.authServers,
      providers,
      plans,
      policies,
      pools,
      hosts: { find: (p, n, tx) => staticHosts.find(p, n, tx), register: (a, p, h, tx) => staticHosts.register(a, p, h, tx), update: (a, id, patch, tx) => workstations.update(a, id, patch, tx) },
      gateways: { findByName: (n, tx) => gateways.findByName(n, tx), inCluster: (c, tx) => gateways.inCluster(c, tx), update: (a, id, input, tx) => gateways.update(a, id, input, tx) },
      secrets,
    },
  });
  const prices = new PricesService({ db, repo: new PricesRepository(db), audit, clock, providers: { all: () => providersRepo.all(), priceList: (row) => registry.priceList(row) } });
  const reports = new ReportsService({ repo: new ReportsRepository(db), clock });
  return {
    ...connect,
    ...power,
    prices,
    reports,
    liveSessions: new LiveSessionsRepository(db),
    siteApply,
    pools,
    plans,
    policies,
    registry,
    inventory,
    follower,
    providers,
    workstations,
    staticHosts,
    secrets,
    secretRotation: new SecretRotationService({ db, repo: new SealedSecretsRepository(db), secrets, audit }),
    audit,
    timers,
    sessionsRepo,
    users: new UsersService({ db, users: usersRepo, groups: groupsRepo, sessions: sessionsRepo, audit, clock, access: access.review }),
    accessReview: access.review,
    connectionReaper: access.reaper,
    groups,
    auth,
    ...signIn,
    gateways,
  };
}

export type Services = ReturnType<typeof createServices>;
