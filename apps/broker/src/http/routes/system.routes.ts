import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, Health, Readiness } from '@stagedoor/contract';
import type { Config } from '../../config/config.ts';
import { ForbiddenError, UnauthenticatedError } from '../../domain/errors.ts';
import { metricsAccess } from '../../observability/metrics-access.ts';
import type { Database } from '../../db/database.ts';
import { migrationStatus } from '../../db/migrate.ts';
import type { Metrics } from '../../observability/metrics.ts';

export function systemRoutes(app: FastifyInstance, deps: { database: Database; metrics: Metrics; metricsConfig: Config['metrics']; nodeId: string }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/healthz', { config: { access: 'public' }, schema: { tags: ['system'], summary: 'The process is up', response: { 200: Health } } }, async () => ({ status: 'ok' as const }));

  r.get(
    '/readyz',
    {
      config: { access: 'public' },
      schema: { tags: ['system'], summary: 'The database is reachable and fully migrated (else 503)', response: { 200: Readiness, 503: Readiness } },
    },
    async (_req, reply) => {
      const base = { driver: deps.database.kind, node: deps.nodeId };
      try {
        const migrations = await migrationStatus(deps.database.db);
        const ready = migrations.upToDate;
        return reply.code(ready ? 200 : 503).send({
          status: ready ? 'ready' : 'not_ready',
          database: { driver: base.driver, reachable: true, migrations, ...(ready ? {} : { error: 'migrations pending: run `stagedoor migrate`' }) },
          node: base.node,
        });
      } catch (err) {
        return reply.code(503).send({
          status: 'not_ready',
          database: { driver: base.driver, reachable: false, migrations: null, error: err instanceof Error ? err.message : String(err) },
          node: base.node,
        });
      }
    },
  );

  r.get(
    '/metrics',
    {
      config: { access: 'public' },
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics (text exposition format); needs the bearer STAGEDOOR_METRICS_TOKEN, and is not served here without one or with STAGEDOOR_METRICS_LISTEN',
        response: { 200: z.string(), 401: ErrorBody, 403: ErrorBody },
      },
    },
    async (request, reply) => {
      const verdict = metricsAccess(deps.metricsConfig, 'main', request.headers.authorization);
      if (!verdict.ok) throw verdict.status === 401 ? new UnauthenticatedError(verdict.message) : new ForbiddenError(verdict.message);
      reply.type(deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    },
  );

  r.get(
    '/api/v1/openapi.json',
    { config: { access: 'public' }, schema: { tags: ['system'], summary: 'This API, as OpenAPI 3', response: { 200: z.looseObject({ openapi: z.string() }) } } },
    async () => app.swagger() as { openapi: string },
  );
}
