import contentDisposition from 'content-disposition';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BrowserSession, ConnectHeaders, ConnectRequest, Connection, ConnectionFileQuery, Desktops, ErrorBody, IdParams, type Role } from '@stagedoor/contract';
import { browserSessionOf } from '../../domain/connections/browser-session.ts';
import { FILE_TYPES, tigervncFile } from '../../domain/connections/connection-files.ts';
import type { Requester } from '../../domain/connections/connections.service.ts';
import { ConflictError, InvalidInputError } from '../../domain/errors.ts';
import { roleHas } from '../../domain/identity/permissions.ts';
import type { Services } from '../../services.ts';
import { connectionDto } from '../dto.ts';
import { signedInActor } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 502: ErrorBody, 503: ErrorBody };

function requester(request: FastifyRequest): Requester & { groupNames: string[] } {
  const user = request.auth!.user;
  return { actor: signedInActor(request), groupIds: user.groups.map((g) => g.id), groupNames: user.groups.map((g) => g.name), clientAddress: request.ip };
}

/** The artist's side: what they may use, connect, the connection file, release. */
export function connectionsRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { connections, connectionStatus, desktops } = deps.services;
  const tags = ['connect'];
  const canSeeAll = (request: FastifyRequest, perm: 'connections:read' | 'connections:write') => roleHas(request.auth!.user.role as Role, perm);

  r.get('/api/v1/desktops', { config: { access: 'user' }, schema: { tags, summary: 'My desktops: what my policy offers and the machines I hold', response: { 200: Desktops, ...errors } } }, async (request) =>
    desktops.list(requester(request)),
  );

  r.post(
    '/api/v1/connections',
    {
      config: { access: 'user' },
      schema: {
        tags,
        summary: 'Connect to a desktop: assigns a machine (starting or launching it if needed) and answers with its progress',
        description:
          'Send an `Idempotency-Key` (any unique string of 1–255 visible characters, e.g. a UUID per click) so that a retry after a lost answer gets the same connection back (200, `Idempotent-Replayed: true`) instead of a second one; keys are kept for a day. A repeated connect to a desktop you hold, from the same address and protocol, also answers with your live connection (200).',
        headers: ConnectHeaders,
        body: ConnectRequest,
        response: { 200: Connection, 201: Connection, ...errors },
      },
    },
    async (request, reply) => {
      const req = requester(request);
      const { connection, known, outcome } = await connections.connect(req, request.body, request.headers['idempotency-key']);
      // A replayed or repeated connect answers with the connection it already made, not a new one.
      if (outcome !== 'new') reply.header('idempotent-replayed', outcome === 'replayed' ? 'true' : 'existing');
      return reply.code(outcome === 'new' ? 201 : 200).send(connectionDto(await connectionStatus.describe(connection, req.actor.username, known)));
    },
  );

  r.get('/api/v1/connections/:id', { config: { access: 'user' }, schema: { tags, summary: 'Progress of a connection, and its instructions once ready', params: IdParams, response: { 200: Connection, ...errors } } }, async (request) => {
    const actor = signedInActor(request);
    const conn = await connections.getOwned(actor, request.params.id, canSeeAll(request, 'connections:read'));
    // Someone else's connection (an admin or auditor looking) is shown as it is: nothing moves, no grant is issued.
    return connectionDto(await connectionStatus.describe(conn, actor.username, undefined, { readOnly: conn.userId !== actor.userId }));
  });

  r.post(
    '/api/v1/connections/:id/browser',
    {
      config: { access: 'user' },
      schema: {
        tags,
        summary: 'Open a ready connection in a browser tab: the gateway tunnel\'s URL and the grant token (in this body, never a URL) for the session page',
        description: 'The connection\'s owner only; its protocol plan must say `browser: true`. The grant is the connection\'s (bound to the address the connection was made from), so the tab must run where the portal does. docs/web.md',
        params: IdParams,
        response: { 200: BrowserSession, ...errors },
      },
    },
    async (request) => {
      const actor = signedInActor(request);
      const conn = await connections.getOwned(actor, request.params.id, false);
      const s = browserSessionOf(await connectionStatus.describe(conn, actor.username));
      return { ...s, connectBy: s.connectBy ? s.connectBy.toISOString() : null };
    },
  );

  r.get(
    '/api/v1/connections/:id/file',
    {
      config: { access: 'user' },
      schema: { tags, summary: 'The .rdp, .dcv or .vnc file of a ready connection', params: IdParams, querystring: ConnectionFileQuery, response: { 200: z.string().describe('the file'), ...errors } },
    },
    async (request, reply) => {
      const actor = signedInActor(request);
      const conn = await connections.getOwned(actor, request.params.id, false);
      const view = await connectionStatus.describe(conn, actor.username);
      const i = view.instructions;
      if (!i) throw new ConflictError(`the connection is not ready yet (${view.progress.message})`);
      const protocol = request.query.protocol ?? i.protocol;
      if (protocol !== i.protocol) throw new ConflictError(`this connection is ${i.protocol}; connect again with protocol ${protocol} for a ${protocol} file`);
      // The file as the instructions have it (a routed vnc or pcoip grant has none: the tunnel command).
      if (!(protocol in FILE_TYPES) || !i.file) throw new ConflictError(`${protocol} has no connection file here: use the command (${i.command})`);
      if (request.query.format && protocol !== 'vnc') throw new InvalidInputError(`format is for VNC files only (this connection is ${protocol})`, [{ path: 'querystring.format', message: 'VNC only' }]);
      if (request.query.format === 'tigervnc') {
        return reply
          .type('application/x-tigervnc')
          .header('content-disposition', contentDisposition((i.fileName ?? 'connection.vnc').replace(/\.vnc$/, '.tigervnc')))
          .send(tigervncFile(i.host, i.port));
      }
      return reply
        .type(FILE_TYPES[protocol as keyof typeof FILE_TYPES])
        .header('content-disposition', contentDisposition(i.fileName ?? `connection.${protocol}`))
        .send(i.file);
    },
  );

  r.delete(
    '/api/v1/connections/:id',
    {
      config: { access: 'user' },
      schema: {
        tags,
        summary: 'Disconnect; a floating desktop goes back to its pool (admins: ?release=true also releases a persistent one)',
        params: IdParams,
        querystring: z.strictObject({ release: z.enum(['true', 'false']).optional() }),
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      const actor = signedInActor(request);
      const admin = canSeeAll(request, 'connections:write');
      const conn = await connections.getOwned(actor, request.params.id, admin);
      await connections.release(actor, conn, { releaseAssignment: admin && request.query.release === 'true', reason: conn.userId === actor.userId ? 'user' : 'admin' });
      return reply.code(204).send(null);
    },
  );
}
