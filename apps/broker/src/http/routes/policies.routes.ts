import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, IdParams, Policy, PolicyBody, PowerPlan, PowerPlanBody, ProtocolPlan, ProtocolPlanBody, ReleasePlan, ReleasePlanBody, ReorderPolicies, UpdatePolicy } from '@stagedoor/contract';
import { PLAN_KINDS, type PlanKind } from '../../domain/plans/plans.service.ts';
import type { Services } from '../../services.ts';
import { planDto, policyDto } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };
const PLAN_SCHEMAS = {
  protocol: { body: ProtocolPlanBody, row: ProtocolPlan },
  power: { body: PowerPlanBody, row: PowerPlan },
  release: { body: ReleasePlanBody, row: ReleasePlan },
} as const;

export function policiesRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { policies, plans } = deps.services;
  const tags = ['policies'];

  r.get('/api/v1/policies', { config: { access: 'policies:read' }, schema: { tags, summary: 'Policies in evaluation order (first match wins)', response: { 200: z.object({ items: z.array(Policy) }), ...errors } } }, async () => ({
    items: (await policies.list()).map(policyDto),
  }));
  r.post('/api/v1/policies', { config: { access: 'policies:write' }, schema: { tags, summary: 'Create a policy', body: PolicyBody, response: { 201: Policy, ...errors } } }, async (request, reply) =>
    reply.code(201).send(policyDto(await policies.create(actorOf(request), request.body))),
  );
  r.get('/api/v1/policies/:id', { config: { access: 'policies:read' }, schema: { tags, summary: 'One policy', params: IdParams, response: { 200: Policy, ...errors } } }, async (request) =>
    policyDto(await policies.get(request.params.id)),
  );
  r.patch('/api/v1/policies/:id', { config: { access: 'policies:write' }, schema: { tags, summary: 'Change a policy', params: IdParams, body: UpdatePolicy, response: { 200: Policy, ...errors } } }, async (request) =>
    policyDto(await policies.update(actorOf(request), request.params.id, request.body)),
  );
  r.delete('/api/v1/policies/:id', { config: { access: 'policies:write' }, schema: { tags, summary: 'Delete a policy', params: IdParams, response: { 204: z.null(), ...errors } } }, async (request, reply) => {
    await policies.delete(actorOf(request), request.params.id);
    return reply.code(204).send(null);
  });
  r.post(
    '/api/v1/policies/reorder',
    { config: { access: 'policies:write' }, schema: { tags, summary: 'Set the evaluation order of all policies', body: ReorderPolicies, response: { 200: z.object({ items: z.array(Policy) }), ...errors } } },
    async (request) => ({ items: (await policies.reorder(actorOf(request), request.body.ids)).map(policyDto) }),
  );

  for (const kind of Object.keys(PLAN_KINDS) as PlanKind[]) {
    const { path, label } = PLAN_KINDS[kind];
    const { body, row } = PLAN_SCHEMAS[kind];
    const t = ['plans'];
    r.get(`/api/v1/${path}`, { config: { access: 'policies:read' }, schema: { tags: t, summary: `List ${label}s`, response: { 200: z.object({ items: z.array(row) }), ...errors } } }, async () => ({
      items: (await plans.list(kind)).map((p) => planDto(kind, p)) as never,
    }));
    r.post(`/api/v1/${path}`, { config: { access: 'policies:write' }, schema: { tags: t, summary: `Create a ${label}`, body, response: { 201: row, ...errors } } }, async (request, reply) =>
      reply.code(201).send(planDto(kind, await plans.create(actorOf(request), kind, request.body as never)) as never),
    );
    r.get(`/api/v1/${path}/:id`, { config: { access: 'policies:read' }, schema: { tags: t, summary: `One ${label}`, params: IdParams, response: { 200: row, ...errors } } }, async (request) =>
      planDto(kind, await plans.get(kind, request.params.id)) as never,
    );
    r.put(`/api/v1/${path}/:id`, { config: { access: 'policies:write' }, schema: { tags: t, summary: `Replace a ${label}`, params: IdParams, body, response: { 200: row, ...errors } } }, async (request) =>
      planDto(kind, await plans.replace(actorOf(request), kind, request.params.id, request.body as never)) as never,
    );
    r.delete(`/api/v1/${path}/:id`, { config: { access: 'policies:write' }, schema: { tags: t, summary: `Delete a ${label} no policy uses`, params: IdParams, response: { 204: z.null(), ...errors } } }, async (request, reply) => {
      await plans.delete(actorOf(request), kind, request.params.id);
      return reply.code(204).send(null);
    });
  }
}
