import client from 'prom-client';
import type { PoolStats } from '../db/database.ts';

/**
 * One registry per broker instance (not the global default), so two apps in one test process do
 * not collide. Metric names follow Prometheus conventions: base units, `_total` for counters.
 */
export class Metrics {
  readonly registry = new client.Registry();
  readonly httpDuration = new client.Histogram({
    name: 'stagedoor_http_request_duration_seconds',
    help: 'HTTP request latency by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly jobRuns = new client.Counter({
    name: 'stagedoor_job_runs_total',
    help: 'Background job passes by job and outcome (ok, error, skipped when another node holds the lock)',
    labelNames: ['job', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly jobDuration = new client.Histogram({
    name: 'stagedoor_job_duration_seconds',
    help: 'Duration of background job passes that ran',
    labelNames: ['job'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly timersFired = new client.Counter({
    name: 'stagedoor_timers_fired_total',
    help: 'Durable timers fired by kind and outcome (done, retry, failed)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor(poolStats: () => PoolStats) {
    const gauge = (name: string, help: string, pick: (s: PoolStats) => number) =>
      new client.Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(pick(poolStats()));
        },
      });
    gauge('stagedoor_db_pool_connections', 'Database connections open in this node\'s pool', (s) => s.total);
    gauge('stagedoor_db_pool_idle_connections', 'Idle database connections in this node\'s pool', (s) => s.idle);
    gauge('stagedoor_db_pool_waiting_requests', 'Queries waiting for a database connection', (s) => s.waiting);
    client.collectDefaultMetrics({ register: this.registry, prefix: 'stagedoor_process_' });
  }
}
