import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrorBody, GATEWAY_CHANNEL_PATH } from '@stagedoor/contract';
import { z } from 'zod';
import { UnauthenticatedError } from '../../domain/errors.ts';
import type { GatewayRow } from '../../domain/gateways/gateways.repository.ts';
import type { Services } from '../../services.ts';

/** Largest message a gateway may send: a heartbeat listing ~10,000 sessions fits. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * The gateway control channel: a WebSocket authenticated by the gateway's credential
 * (`Authorization: Bearer sdg_…`), refused with 401 before the upgrade when it is wrong. The
 * channel hub of this node does the rest.
 */
export function gatewayChannelRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const { gateways } = deps.services;
  const authenticated = new WeakMap<FastifyRequest, GatewayRow>();
  // @fastify/websocket hides WebSocket routes from the OpenAPI document; this one is part of the API.
  app.addHook('onRoute', (route) => {
    if (route.url === GATEWAY_CHANNEL_PATH && route.method === 'GET' && route.schema) route.schema.hide = false;
  });

  app.get(
    GATEWAY_CHANNEL_PATH,
    {
      websocket: true,
      config: { access: 'public', stream: true },
      schema: {
        tags: ['gateways'],
        summary: 'Gateway control channel (WebSocket upgrade; Authorization: Bearer <gateway credential>)',
        security: [],
        response: { 101: z.null().describe('switching to the WebSocket protocol'), 401: ErrorBody },
      },
      preValidation: async (request) => {
        const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
        const gateway = match ? await gateways.authenticateChannel(match[1]!) : null;
        if (!gateway) throw new UnauthenticatedError('the gateway credential is missing, unknown or rotated: enrol the gateway again');
        authenticated.set(request, gateway);
      },
    },
    (socket, request) => {
      const gateway = authenticated.get(request);
      if (!gateway) return socket.close(4401, 'unauthenticated');
      socket.binaryType = 'nodebuffer';
      const channel = gateways.channels.attach(gateway, socket, request.ip ?? null);
      socket.on('message', (data, isBinary) => {
        const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : (data as Buffer).byteLength;
        if (isBinary || size > MAX_MESSAGE_BYTES) return socket.close(4400, isBinary ? 'text frames only' : 'message too large');
        void channel.message(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8'));
      });
      socket.on('close', (code, reason) => channel.closed(code, reason.toString('utf8')));
      socket.on('error', (err) => request.log.warn({ err, gateway: gateway.id }, 'gateway channel error'));
    },
  );
}
