import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CreateProvider, ErrorBody, IdParams, ImportHosts, ImportHostsResult, Page, Provider, ProviderTestResult, RegisterHost, SyncCounts, UpdateProvider, Workstation, pageOf } from '@stagedoor/contract';
import type { Services } from '../../services.ts';
import { providerDto } from '../dto.ts';
import { workstationDtos } from './workstations.routes.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 502: ErrorBody };

export function providersRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { providers, staticHosts } = deps.services;
  const tags = ['providers'];

  r.get('/api/v1/providers', { config: { access: 'providers:read' }, schema: { tags, summary: 'List providers with their last sync outcome', querystring: Page, response: { 200: pageOf(Provider), ...errors } } }, async (request) => {
    const { limit, offset } = request.query;
    const page = await providers.list(limit, offset);
    return { items: page.items.map(providerDto), total: page.total, limit, offset };
  });

  r.post(
    '/api/v1/providers',
    { config: { access: 'providers:write' }, schema: { tags, summary: 'Add a provider (aws-ec2 or static); an access key secret is stored encrypted', body: CreateProvider, response: { 201: Provider, ...errors } } },
    async (request, reply) => reply.code(201).send(providerDto(await providers.create(actorOf(request), request.body))),
  );

  r.get('/api/v1/providers/:id', { config: { access: 'providers:read' }, schema: { tags, summary: 'One provider', params: IdParams, response: { 200: Provider, ...errors } } }, async (request) =>
    providerDto(await providers.get(request.params.id)),
  );

  r.patch(
    '/api/v1/providers/:id',
    { config: { access: 'providers:write' }, schema: { tags, summary: 'Change a provider (credentials replace the stored ones)', params: IdParams, body: UpdateProvider, response: { 200: Provider, ...errors } } },
    async (request) => providerDto(await providers.update(actorOf(request), request.params.id, request.body)),
  );

  r.delete('/api/v1/providers/:id', { config: { access: 'providers:write' }, schema: { tags, summary: 'Delete a provider that has no workstations', params: IdParams, response: { 204: z.null(), ...errors } } }, async (request, reply) => {
    await providers.delete(actorOf(request), request.params.id);
    return reply.code(204).send(null);
  });

  r.post(
    '/api/v1/providers/:id/test',
    { config: { access: 'providers:write' }, schema: { tags, summary: 'Test the connection with the stored credentials', params: IdParams, response: { 200: ProviderTestResult, ...errors } } },
    async (request) => ({ ok: true as const, ...(await providers.test(actorOf(request), request.params.id)) }),
  );

  r.post(
    '/api/v1/providers/:id/sync',
    {
      config: { access: 'workstations:write' },
      schema: { tags, summary: 'Run inventory sync now; answers with its outcome (also recorded on the provider)', params: IdParams, response: { 200: z.object({ status: z.enum(['ok', 'error']), message: z.string().nullable(), counts: SyncCounts }), ...errors } },
    },
    async (request) => providers.syncNow(actorOf(request), request.params.id),
  );

  r.post(
    '/api/v1/providers/:id/hosts',
    { config: { access: 'workstations:write' }, schema: { tags, summary: 'Register a host (IP address or DNS name) with a static provider; a name it has already is 409 (edit with PATCH /api/v1/workstations/{id})', params: IdParams, body: RegisterHost, response: { 201: Workstation, ...errors } } },
    async (request, reply) => {
      const row = await staticHosts.register(actorOf(request), request.params.id, request.body);
      return reply.code(201).send((await workstationDtos(deps.services, [row]))[0]!);
    },
  );

  r.post(
    '/api/v1/providers/:id/hosts/import',
    { config: { access: 'workstations:write' }, schema: { tags, summary: 'Import static hosts from CSV (all or nothing; known names refused, or updated with onExisting=update; the answer names what was created, updated, unchanged)', params: IdParams, body: ImportHosts, response: { 200: ImportHostsResult, ...errors } } },
    async (request) => staticHosts.import(actorOf(request), request.params.id, request.body.csv, request.body.onExisting),
  );
}
