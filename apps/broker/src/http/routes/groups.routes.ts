import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CreateGroup, ErrorBody, Group, GroupMemberParams, IdParams, Page, UpdateGroup, pageOf } from '@stagedoor/contract';
import type { Services } from '../../services.ts';
import { groupDto } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export function groupsRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { groups } = deps.services;
  const tags = ['groups'];

  r.get('/api/v1/groups', { config: { access: 'groups:read' }, schema: { tags, summary: 'List groups', querystring: Page, response: { 200: pageOf(Group), ...errors } } }, async (request) => {
    const { limit, offset } = request.query;
    const page = await groups.list(limit, offset);
    return { items: page.items.map(groupDto), total: page.total, limit, offset };
  });

  r.post('/api/v1/groups', { config: { access: 'groups:write' }, schema: { tags, summary: 'Create a group', body: CreateGroup, response: { 201: Group, ...errors } } }, async (request, reply) =>
    reply.code(201).send(groupDto(await groups.create(actorOf(request), request.body))),
  );

  r.get('/api/v1/groups/:id', { config: { access: 'groups:read' }, schema: { tags, summary: 'One group', params: IdParams, response: { 200: Group, ...errors } } }, async (request) =>
    groupDto(await groups.get(request.params.id)),
  );

  r.patch('/api/v1/groups/:id', { config: { access: 'groups:write' }, schema: { tags, summary: 'Rename or describe a group', params: IdParams, body: UpdateGroup, response: { 200: Group, ...errors } } }, async (request) =>
    groupDto(await groups.update(actorOf(request), request.params.id, request.body)),
  );

  r.delete('/api/v1/groups/:id', { config: { access: 'groups:write' }, schema: { tags, summary: 'Delete a group', params: IdParams, response: { 204: z.null(), ...errors } } }, async (request, reply) => {
    await groups.delete(actorOf(request), request.params.id);
    return reply.code(204).send(null);
  });

  r.put(
    '/api/v1/groups/:id/members/:userId',
    { config: { access: 'groups:write' }, schema: { tags, summary: 'Add a user to a group (idempotent)', params: GroupMemberParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await groups.addMember(actorOf(request), request.params.id, request.params.userId);
      return reply.code(204).send(null);
    },
  );

  r.delete(
    '/api/v1/groups/:id/members/:userId',
    { config: { access: 'groups:write' }, schema: { tags, summary: 'Remove a user from a group', params: GroupMemberParams, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await groups.removeMember(actorOf(request), request.params.id, request.params.userId);
      return reply.code(204).send(null);
    },
  );
}
