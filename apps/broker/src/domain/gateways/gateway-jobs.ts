import type { Config } from '../../config/config.ts';
import type { JobDefinition } from '../../jobs/job-runner.ts';
import type { GatewaysService } from './gateways.service.ts';

/**
 * `gateway-reconcile`: gateways not heard from turn unhealthy, unused grants past their connect-by
 * time expire, and sessions the broker believes live that no gateway reports are closed. One node
 * at a time (the job runner's advisory lock); the pass is idempotent.
 */
export function gatewayJobs(gateways: GatewaysService, config: Pick<Config, 'gateway'>): JobDefinition[] {
  return [{ name: 'gateway-reconcile', intervalMs: config.gateway.reconcileIntervalMs, run: async () => gateways.reports.reconcile() }];
}
