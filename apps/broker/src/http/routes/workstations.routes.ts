import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, IdParams, LaunchWorkstation, ListWorkstationsQuery, PowerActionResult, StopOptions, UpdateWorkstation, Workstation, pageOf } from '@stagedoor/contract';
import type { PowerAction } from '../../domain/workstations/workstations.service.ts';
import type { WorkstationRow } from '../../domain/workstations/workstations.repository.ts';
import type { Services } from '../../services.ts';
import { workstationDto } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 502: ErrorBody };

/** Machines as the API shows them: each with the actions its provider can do (one look-up for the page). */
export async function workstationDtos(services: Pick<Services, 'workstations'>, rows: WorkstationRow[]) {
  const kinds = await services.workstations.providerKinds(rows);
  return rows.map((w) => workstationDto(w, kinds.get(w.providerId) ?? 'unknown'));
}

export function workstationsRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { workstations } = deps.services;
  const tags = ['workstations'];
  const one = async (row: WorkstationRow) => (await workstationDtos(deps.services, [row]))[0]!;

  r.get(
    '/api/v1/workstations',
    { config: { access: 'workstations:read' }, schema: { tags, summary: 'List workstations (filter, sort, page)', querystring: ListWorkstationsQuery, response: { 200: pageOf(Workstation), ...errors } } },
    async (request) => {
      const { limit, offset, sort, tag, ...filter } = request.query;
      const [key, ...rest] = tag?.split('=') ?? [];
      const page = await workstations.list({ ...filter, tag: key ? { key, value: rest.length ? rest.join('=') : undefined } : undefined }, sort, limit, offset);
      // The page's context (one query) already names each provider's kind: no second lookup for it.
      const items = page.items.map((w) => ({ ...workstationDto(w, w.context?.provider.kind ?? 'unknown'), provider: w.context?.provider, assignedUser: w.context?.assignedUser ?? null }));
      return { items, total: page.total, limit, offset };
    },
  );

  r.post(
    '/api/v1/workstations',
    { config: { access: 'workstations:write' }, schema: { tags, summary: 'Launch one workstation from an AMI or launch template (pools launch on their own)', body: LaunchWorkstation, response: { 201: Workstation, ...errors } } },
    async (request, reply) => reply.code(201).send(await one(await workstations.launch(actorOf(request), request.body))),
  );

  r.get('/api/v1/workstations/:id', { config: { access: 'workstations:read' }, schema: { tags, summary: 'One workstation', params: IdParams, response: { 200: Workstation, ...errors } } }, async (request) =>
    one(await workstations.get(request.params.id)),
  );

  r.patch(
    '/api/v1/workstations/:id',
    {
      config: { access: 'workstations:write' },
      schema: { tags, summary: "Change a workstation: maintenance (any machine), a static host's name, address (IP or DNS name), protocols and tags (audited)", params: IdParams, body: UpdateWorkstation, response: { 200: Workstation, ...errors } },
    },
    async (request) => one(await workstations.update(actorOf(request), request.params.id, request.body)),
  );

  r.delete(
    '/api/v1/workstations/:id',
    { config: { access: 'workstations:write' }, schema: { tags, summary: 'Remove a static host, or forget a terminated machine', params: IdParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await workstations.remove(actorOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  for (const action of ['start', 'reboot', 'terminate'] as const satisfies readonly PowerAction[]) {
    r.post(
      `/api/v1/workstations/:id/${action}`,
      { config: { access: 'workstations:write' }, schema: { tags, summary: `${action[0]!.toUpperCase()}${action.slice(1)} the workstation (audited)`, params: IdParams, response: { 200: PowerActionResult, ...errors } } },
      async (request) => {
        const result = await workstations.power(actorOf(request), request.params.id, action);
        return { ...result, workstation: await one(result.workstation) };
      },
    );
  }

  r.post(
    '/api/v1/workstations/:id/stop',
    { config: { access: 'workstations:write' }, schema: { tags, summary: 'Stop the workstation, optionally hibernating it (audited)', params: IdParams, body: StopOptions.nullish(), response: { 200: PowerActionResult, ...errors } } },
    async (request) => {
      const result = await workstations.power(actorOf(request), request.params.id, 'stop', { hibernate: request.body?.hibernate });
      return { ...result, workstation: await one(result.workstation) };
    },
  );
}
