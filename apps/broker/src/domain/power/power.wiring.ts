import type { Logger } from 'pino';
import type { Db } from '../../db/database.ts';
import type { TimerService } from '../../jobs/timers.service.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import type { ConnectionsService } from '../connections/connections.service.ts';
import type { GatewaysService } from '../gateways/gateways.service.ts';
import type { WorkstationsService } from '../workstations/workstations.service.ts';
import { ActivityService } from './activity.service.ts';
import { PowerTimers } from './power-timers.ts';
import { PowerRepository } from './power.repository.ts';
import { PrestartRepository } from './prestart.repository.ts';
import { PrestartService } from './prestart.service.ts';

/** How often an agent reports when nothing changes (told to it in every answer). */
export const AGENT_HEARTBEAT_SECONDS = 60;

/**
 * The power domain: activity (agent reports, gateway sessions) → timers → power and release
 * actions. Subscribes to the gateways' session events and registers the timer handlers.
 */
export function createPowerServices(deps: {
  db: Db;
  timers: TimerService;
  workstations: WorkstationsService;
  connections: ConnectionsService;
  gateways: GatewaysService;
  audit: AuditService;
  clock: Clock;
  log: Logger;
}) {
  const repo = new PowerRepository(deps.db);
  const log = deps.log.child({ area: 'power' });
  const activity = new ActivityService({ db: deps.db, repo, timers: deps.timers, audit: deps.audit, clock: deps.clock, log, heartbeatSeconds: AGENT_HEARTBEAT_SECONDS });
  const powerTimers = new PowerTimers({ db: deps.db, repo, timers: deps.timers, workstations: deps.workstations, connections: deps.connections, audit: deps.audit, clock: deps.clock, log });
  powerTimers.register();
  deps.gateways.onSessionEvent((event) => activity.sessionEvent(event));
  const prestart = new PrestartService({ repo: new PrestartRepository(deps.db), workstations: deps.workstations, clock: deps.clock, log: log.child({ part: 'prestart' }) });
  return { activity, powerTimers, prestart };
}
