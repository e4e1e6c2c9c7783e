import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { ErrorBody, IdParams, ListLiveSessionsQuery, LiveSession, RestartResult, pageOf } from '@stagedoor/contract';
import { ConflictError, ForbiddenError } from '../../domain/errors.ts';
import type { LiveSessionRow } from '../../domain/connections/live-sessions.repository.ts';
import type { Services } from '../../services.ts';
import { iso, isoOrNull } from '../dto.ts';
import { signedInActor } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 502: ErrorBody };

/** Live sessions for the console, and "restart my machine" for the portal. */
export function sessionsRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { audit, connections, connectionStatus, liveSessions, workstations } = deps.services;
  const tags = ['connect'];

  r.get(
    '/api/v1/connections',
    { config: { access: 'connections:read' }, schema: { tags, summary: 'Live connections (starting, ready or connected), newest first', querystring: ListLiveSessionsQuery, response: { 200: pageOf(LiveSession), ...errors } } },
    async (request) => {
      const { limit, offset, ...filter } = request.query;
      const page = await liveSessions.list(filter, limit, offset);
      return { items: page.items.map(liveSessionDto), total: page.total, limit, offset };
    },
  );

  r.post(
    '/api/v1/connections/:id/restart',
    {
      config: { access: 'user' },
      schema: { tags, summary: 'Restart the machine of my connection, when my policy allows it (the same reboot operation as the console; audited)', params: IdParams, response: { 200: RestartResult, ...errors } },
    },
    async (request) => {
      const actor = signedInActor(request);
      const user = request.auth!.user;
      const conn = await connections.getOwned(actor, request.params.id, false);
      const view = await connectionStatus.describe(conn, actor.username);
      if (!view.workstation || !view.poolId || !['starting', 'ready', 'connected'].includes(view.connection.state)) throw new ConflictError('this connection has no machine to restart');
      // The policy that offers the pool now decides, as for connecting; offerFor audits a refusal.
      const { policy } = await connections.offerFor({ actor, groupIds: user.groups.map((g) => g.id), clientAddress: request.ip }, view.poolId);
      if (!policy.allowRestart) {
        const reason = `policy "${policy.name}" does not let you restart your machine; ask your administrator`;
        await audit.record(actor, { action: 'workstation.reboot', outcome: 'denied', targetType: 'workstation', targetId: view.workstation.id, reason });
        throw new ForbiddenError(reason);
      }
      const result = await workstations.power(actor, view.workstation.id, 'reboot');
      return { workstationId: result.workstation.id, previous: result.previous, current: result.current };
    },
  );
}

function liveSessionDto(s: LiveSessionRow) {
  return {
    id: s.id,
    state: s.state as 'starting',
    userId: s.userId ?? '00000000-0000-0000-0000-000000000000',
    username: s.username ?? '(deleted user)',
    workstationId: s.workstationId,
    workstationName: s.workstationName,
    poolId: s.poolId,
    poolName: s.poolName,
    protocol: s.protocol as 'rdp',
    clientAddress: s.clientAddress,
    requestedAt: iso(s.requestedAt),
    readyAt: isoOrNull(s.readyAt),
  };
}
