import type { Logger } from 'pino';
import type { Database } from '../../db/database.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import type { PowerFollower } from '../providers/power-follow.ts';
import type { ProviderRegistry } from '../providers/provider-registry.ts';
import type { ProvidersRepository } from '../providers/providers.repository.ts';
import type { WorkstationsRepository } from '../workstations/workstations.repository.ts';
import { PoolDemand } from './demand.ts';
import { PlanExecutor } from './executor.ts';
import { PoolLauncher } from './launcher.ts';
import { poolsToPoke } from './plan.ts';
import { PoolReconciler } from './reconciler.ts';
import { PoolsRepository } from './pools.repository.ts';
import { PoolLaunchesRepository } from './pool-launches.repository.ts';
import { PoolsService } from './pools.service.ts';

/** The pools service with its launcher and reconciler (one per broker node; tests build two to race them). */
export function createPoolsService(deps: {
  database: Database;
  providers: ProvidersRepository;
  workstations: WorkstationsRepository;
  registry: ProviderRegistry;
  audit: AuditService;
  clock: Clock;
  log: Logger;
  follower: PowerFollower;
}): PoolsService {
  const { database, clock } = deps;
  const db = database.db;
  const log = deps.log.child({ area: 'pools' });
  const repo = new PoolsRepository(db);
  const { follower } = deps;
  const launcher = new PoolLauncher({ db, pools: repo, launches: new PoolLaunchesRepository(db), workstations: deps.workstations, providers: deps.providers, registry: deps.registry, audit: deps.audit, clock, log, follower });
  const executor = new PlanExecutor({ db, pools: repo, workstations: deps.workstations, launcher, audit: deps.audit, clock, log, follower });
  const demand = new PoolDemand({ db, clock });
  const reconciler = new PoolReconciler({ database, pools: repo, providers: deps.providers, registry: deps.registry, executor, demand, clock, log, follower });
  // A followed member that left the warm standby (stopped, terminated) may leave its pool short: reconcile it now.
  follower.onPowerChange((changes) => {
    for (const poolId of poolsToPoke(changes)) reconciler.poke(poolId);
  });
  return new PoolsService({ db, repo, providers: deps.providers, registry: deps.registry, launcher, reconciler, demand, audit: deps.audit, clock });
}
