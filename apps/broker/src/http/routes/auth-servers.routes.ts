import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AuthServer, AuthServerTestResult, CreateAuthServer, ErrorBody, IdParams, ReorderAuthServers, TestAuthServer, UpdateAuthServer, type AuthServerKind } from '@stagedoor/contract';
import type { AuthServerView } from '../../domain/auth-servers/auth-servers.service.ts';
import type { Services } from '../../services.ts';
import { iso } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/** Rows → API: settings and whether a secret is stored; never the secret (`secret_ciphertext` is not even read here). */
export function authServerDto(v: AuthServerView) {
  const { row } = v;
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as AuthServerKind,
    purpose: row.purpose as 'primary' | 'second-factor',
    position: row.position,
    enabled: row.enabled,
    config: row.config as Record<string, unknown>,
    secretSet: row.secretCiphertext !== null,
    mfaServerId: row.mfaServerId,
    groupMappings: v.mappings.map((m) => ({ externalGroup: m.externalGroup, groupId: m.groupId, groupName: m.groupName })),
    requiredForGroups: v.requiredForGroups,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

export function authServersRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { authServers } = deps.services;
  const tags = ['auth-servers'];
  const list = z.object({ items: z.array(AuthServer) });

  r.get('/api/v1/auth-servers', { config: { access: 'auth-servers:read' }, schema: { tags, summary: 'Auth servers in lookup order', response: { 200: list, ...errors } } }, async () => ({
    items: (await authServers.list()).map(authServerDto),
  }));

  r.post(
    '/api/v1/auth-servers',
    { config: { access: 'auth-servers:write' }, schema: { tags, summary: 'Add an auth server (local, ldap, radius or totp); secrets are write-only', body: CreateAuthServer, response: { 201: AuthServer, ...errors } } },
    async (request, reply) => reply.code(201).send(authServerDto(await authServers.create(actorOf(request), request.body))),
  );

  r.put(
    '/api/v1/auth-servers/order',
    { config: { access: 'auth-servers:write' }, schema: { tags, summary: 'Set the lookup order: every auth server id, first to last', body: ReorderAuthServers, response: { 200: list, ...errors } } },
    async (request) => ({ items: (await authServers.reorder(actorOf(request), request.body.ids)).map(authServerDto) }),
  );

  r.get('/api/v1/auth-servers/:id', { config: { access: 'auth-servers:read' }, schema: { tags, summary: 'One auth server', params: IdParams, response: { 200: AuthServer, ...errors } } }, async (request) =>
    authServerDto(await authServers.get(request.params.id)),
  );

  r.patch(
    '/api/v1/auth-servers/:id',
    {
      config: { access: 'auth-servers:write' },
      schema: { tags, summary: 'Change an auth server; `config` replaces the settings as a whole; omitted secrets are kept', params: IdParams, body: UpdateAuthServer, response: { 200: AuthServer, ...errors } },
    },
    async (request) => authServerDto(await authServers.update(actorOf(request), request.params.id, request.body)),
  );

  r.delete('/api/v1/auth-servers/:id', { config: { access: 'auth-servers:write' }, schema: { tags, summary: 'Remove an auth server', params: IdParams, response: { 204: z.null(), ...errors } } }, async (request, reply) => {
    await authServers.delete(actorOf(request), request.params.id);
    return reply.code(204).send(null);
  });

  r.post(
    '/api/v1/auth-servers/:id/test',
    {
      config: { access: 'auth-servers:write' },
      schema: { tags, summary: 'Reach the server with its stored settings (and look a user up); answers ok or what failed', params: IdParams, body: TestAuthServer, response: { 200: AuthServerTestResult, ...errors } },
    },
    async (request) => authServers.test(actorOf(request), request.params.id, request.body.username),
  );
}
