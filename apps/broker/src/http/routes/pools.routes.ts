import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CreatePool, ErrorBody, IdParams, ListPoolsQuery, Pool, PoolForecast, ReconcileResult, UpdatePool, pageOf } from '@stagedoor/contract';
import type { PoolView } from '../../domain/pools/pools.service.ts';
import { holdMinutesOf, leadMinutesOf } from '../../domain/pools/standby.ts';
import type { Services } from '../../services.ts';
import { iso, isoOrNull } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 502: ErrorBody };

export function poolsRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { pools } = deps.services;
  const tags = ['pools'];

  r.get(
    '/api/v1/pools',
    { config: { access: 'pools:read' }, schema: { tags, summary: 'List pools with their availability and last reconciler outcome', querystring: ListPoolsQuery, response: { 200: pageOf(Pool), ...errors } } },
    async (request) => {
      const { limit, offset, providerId } = request.query;
      const page = await pools.list({ providerId }, limit, offset);
      return { items: page.items.map(poolDto), total: page.total, limit, offset };
    },
  );

  r.post(
    '/api/v1/pools',
    { config: { access: 'pools:write' }, schema: { tags, summary: 'Create a pool (a template is checked against its provider first)', body: CreatePool, response: { 201: Pool, ...errors } } },
    async (request, reply) => {
      const pool = await pools.create(actorOf(request), request.body);
      return reply.code(201).send(poolDto(await pools.view(pool.id)));
    },
  );

  r.get('/api/v1/pools/:id', { config: { access: 'pools:read' }, schema: { tags, summary: 'One pool', params: IdParams, response: { 200: Pool, ...errors } } }, async (request) =>
    poolDto(await pools.view(request.params.id)),
  );

  r.get(
    '/api/v1/pools/:id/forecast',
    { config: { access: 'pools:read' }, schema: { tags, summary: 'The pool\'s demand forecast for today against what happened, and why its standby is what it is', params: IdParams, response: { 200: PoolForecast, ...errors } } },
    async (request) => {
      const f = await pools.forecast(request.params.id);
      return {
        poolId: f.pool.id,
        at: iso(f.now),
        timeZone: f.pool.timeZone,
        standby: standbyDto(f.pool.standby),
        target: f.target && { mode: f.target.mode, warm: f.target.warm, available: f.target.available, hold: f.target.hold, reason: f.target.reason },
        today: f.today.map((s) => ({ at: iso(s.at), local: s.local, forecast: s.forecast, actual: s.actual })),
      };
    },
  );

  r.patch(
    '/api/v1/pools/:id',
    { config: { access: 'pools:write' }, schema: { tags, summary: 'Change a pool (membership is resolved again at once)', params: IdParams, body: UpdatePool, response: { 200: Pool, ...errors } } },
    async (request) => {
      await pools.update(actorOf(request), request.params.id, request.body);
      return poolDto(await pools.view(request.params.id));
    },
  );

  r.delete(
    '/api/v1/pools/:id',
    { config: { access: 'pools:write' }, schema: { tags, summary: 'Delete a pool nobody holds a machine of and no policy offers; its machines stay in the inventory', params: IdParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await pools.delete(actorOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  r.post(
    '/api/v1/pools/:id/reconcile',
    { config: { access: 'pools:write' }, schema: { tags, summary: 'Run a reconciler pass of the pool now (ignores the back-off); answers with its outcome', params: IdParams, response: { 200: ReconcileResult, ...errors } } },
    async (request) => {
      const { result, view } = await pools.reconcileNow(actorOf(request), request.params.id);
      return { outcome: result.outcome, error: result.error, summary: result.summary, pool: poolDto(view) };
    },
  );
}

/** Row → API shape (the DTOs of other areas live in dto.ts; this one is kept with its routes). */
export function poolDto({ pool: p, availability, thresholds }: PoolView) {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    providerId: p.providerId,
    membership: p.membership,
    template: p.template,
    nameSequence: p.nameSequence,
    minAvailable: p.minAvailable,
    maxTotal: p.maxTotal,
    maxAvailable: p.maxAvailable,
    scheduleWindows: p.scheduleWindows,
    standby: standbyDto(p.standby),
    timeZone: p.timeZone,
    launchRatePerMinute: p.launchRatePerMinute,
    provisioning: p.provisioning as 'running' | 'paused',
    gatewayCluster: p.gatewayCluster,
    thresholdsNow: thresholds,
    availability,
    lastReconcileAt: isoOrNull(p.lastReconcileAt),
    lastReconcileOutcome: p.lastReconcileOutcome as 'ok' | 'partial' | 'error' | null,
    lastReconcileError: p.lastReconcileError,
    lastReconcileSummary: p.lastReconcileSummary,
    backoffUntil: isoOrNull(p.backoffUntil),
    consecutiveFailures: p.consecutiveFailures,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
  };
}

/** A pool's standby setting as the API shows it: rows from before the hold window or the start lead read their defaults. */
function standbyDto(s: PoolView['pool']['standby']) {
  return { ...s, holdMinutes: holdMinutesOf(s), leadMinutes: leadMinutesOf(s) };
}
