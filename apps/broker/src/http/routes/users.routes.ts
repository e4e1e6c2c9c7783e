import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CreateUser, ErrorBody, IdParams, ListUsersQuery, SetPassword, UpdateUser, User, pageOf } from '@stagedoor/contract';
import type { Services } from '../../services.ts';
import { userDto } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export function usersRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { users } = deps.services;
  const tags = ['users'];

  r.get('/api/v1/users', { config: { access: 'users:read' }, schema: { tags, summary: 'List users', querystring: ListUsersQuery, response: { 200: pageOf(User), ...errors } } }, async (request) => {
    const { limit, offset, q, role, groupId } = request.query;
    const page = await users.list({ q, role, groupId }, limit, offset);
    return { items: page.items.map(userDto), total: page.total, limit, offset };
  });

  r.post('/api/v1/users', { config: { access: 'users:write' }, schema: { tags, summary: 'Create a user', body: CreateUser, response: { 201: User, ...errors } } }, async (request, reply) => {
    return reply.code(201).send(userDto(await users.create(actorOf(request), request.body)));
  });

  r.get('/api/v1/users/:id', { config: { access: 'users:read' }, schema: { tags, summary: 'One user', params: IdParams, response: { 200: User, ...errors } } }, async (request) =>
    userDto(await users.get(request.params.id)),
  );

  r.patch(
    '/api/v1/users/:id',
    { config: { access: 'users:write' }, schema: { tags, summary: 'Change a user (role, groups, disabled …)', params: IdParams, body: UpdateUser, response: { 200: User, ...errors } } },
    async (request) => userDto(await users.update(actorOf(request), request.params.id, request.body)),
  );

  r.delete('/api/v1/users/:id', { config: { access: 'users:write' }, schema: { tags, summary: 'Delete a user', params: IdParams, response: { 204: z.null(), ...errors } } }, async (request, reply) => {
    await users.delete(actorOf(request), request.params.id);
    return reply.code(204).send(null);
  });

  r.post(
    '/api/v1/users/:id/password',
    { config: { access: 'users:write' }, schema: { tags, summary: "Reset a user's password (ends their sessions)", params: IdParams, body: SetPassword, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await users.setPassword(actorOf(request), request.params.id, request.body.password);
      return reply.code(204).send(null);
    },
  );
}
