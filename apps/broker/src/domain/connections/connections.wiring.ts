import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import type { PlansService } from '../plans/plans.service.ts';
import type { PoliciesService } from '../policies/policies.service.ts';
import type { WorkstationsRepository } from '../workstations/workstations.repository.ts';
import type { WorkstationsService } from '../workstations/workstations.service.ts';
import { AccessRepository } from './access.repository.ts';
import { AccessReview } from './access-review.ts';
import { ConnectionReaper } from './connection-reaper.ts';
import { ConnectionStatus } from './connection-status.ts';
import { ConnectionsRepository } from './connections.repository.ts';
import { ConnectionsService } from './connections.service.ts';
import { DesktopOffers } from './desktops.ts';
import type { GrantIssuer, PoolLaunches } from './ports.ts';

/** The connect flow's three parts over one repository: connect/release, status, "my desktops". */
export function createConnectServices(deps: {
  db: Db;
  policies: PoliciesService;
  plans: PlansService;
  pools: PoolLaunches;
  workstations: WorkstationsService;
  workstationsRepo: WorkstationsRepository;
  gateways: GrantIssuer;
  audit: AuditService;
  clock: Clock;
  log: Logger;
  /** STAGEDOOR_GRANT_CONNECT_BY_SECONDS, in ms. */
  connectByMs: number;
}) {
  const repo = new ConnectionsRepository(deps.db);
  const log = deps.log.child({ area: 'connections' });
  const connections = new ConnectionsService({ db: deps.db, repo, policies: deps.policies, plans: deps.plans, pools: deps.pools, workstations: deps.workstations, gateways: deps.gateways, audit: deps.audit, clock: deps.clock, log });
  const connectionStatus = new ConnectionStatus({
    repo,
    workstations: deps.workstationsRepo,
    gateways: deps.gateways,
    pools: deps.pools,
    clock: deps.clock,
    protocolsOf: (policy) => connections.protocolsOf(policy),
    policyOf: async (id) => (id ? deps.policies.get(id).catch(() => undefined) : undefined),
    connectByMs: deps.connectByMs,
  });
  const desktops = new DesktopOffers({ repo, connections, pools: deps.pools, clock: deps.clock });
  return { connections, connectionStatus, desktops };
}

/**
 * The access review (what a user may no longer hold ends with the change that took it away) and the
 * reaper of stale connections. Built before the identity and policy services, which call the review.
 */
export function createAccessServices(deps: {
  db: Db;
  audit: AuditService;
  clock: Clock;
  log: Logger;
  gateways: Pick<GrantIssuer, 'announceRevoked'>;
  pools: Pick<PoolLaunches, 'poke'>;
  connectByMs: number;
}) {
  const access = new AccessRepository(deps.db);
  const connections = new ConnectionsRepository(deps.db);
  const log = deps.log.child({ area: 'access' });
  const review = new AccessReview({ db: deps.db, access, connections, audit: deps.audit, clock: deps.clock, log, gateways: deps.gateways, pools: deps.pools });
  const reaper = new ConnectionReaper({ db: deps.db, access, connections, audit: deps.audit, clock: deps.clock, log, gateways: deps.gateways, connectByMs: deps.connectByMs });
  return { review, reaper };
}
