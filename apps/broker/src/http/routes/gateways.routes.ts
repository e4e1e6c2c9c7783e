import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  CreatedGatewayEnrollment,
  CreateGatewayEnrollment,
  CreateGatewayReenrollment,
  EnrolledGateway,
  EnrollGateway,
  ErrorBody,
  Gateway,
  GatewayEnrollment,
  GatewayGrant,
  IdParams,
  ListGatewayEnrollmentsQuery,
  ListGatewayGrantsQuery,
  ListGatewaysQuery,
  RevokeGatewayGrant,
  UpdateGateway,
  pageOf,
} from '@stagedoor/contract';
import type { EnrollmentRow, GatewayWithLive, GrantRow } from '../../domain/gateways/gateways.repository.ts';
import type { Services } from '../../services.ts';
import { iso, isoOrNull } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/** The gateway registry: list with health, load and last seen; disable, drain, delete; enrolments and re-enrolments; grants. */
export function gatewaysRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { gateways } = deps.services;
  const tags = ['gateways'];

  r.get('/api/v1/gateways', { config: { access: 'gateways:read' }, schema: { tags, summary: 'List gateways with health, load and last seen', querystring: ListGatewaysQuery, response: { 200: pageOf(Gateway), ...errors } } }, async (request) => {
    const { limit, offset, cluster, status } = request.query;
    const page = await gateways.list({ cluster, status }, limit, offset);
    return { items: page.items.map(gatewayDto), total: page.total, limit, offset };
  });

  r.post(
    '/api/v1/gateways/enrollments',
    {
      config: { access: 'gateways:write' },
      schema: { tags, summary: 'Create a one-time enrolment token for a new gateway, with the address clients will dial (shown once)', body: CreateGatewayEnrollment, response: { 201: CreatedGatewayEnrollment, ...errors } },
    },
    async (request, reply) => {
      const { enrollment, token } = await gateways.createEnrollment(actorOf(request), request.body);
      return reply.code(201).send({ ...enrollmentDto(enrollment), token });
    },
  );

  r.get(
    '/api/v1/gateways/enrollments',
    { config: { access: 'gateways:read' }, schema: { tags, summary: 'List enrolment tokens (never the tokens themselves)', querystring: ListGatewayEnrollmentsQuery, response: { 200: pageOf(GatewayEnrollment), ...errors } } },
    async (request) => {
      const { limit, offset, pending } = request.query;
      const page = await gateways.listEnrollments(pending, limit, offset);
      return { items: page.items.map(enrollmentDto), total: page.total, limit, offset };
    },
  );

  r.post(
    '/api/v1/gateways/enroll',
    {
      // The one-time token is the credential; the attempt rate per address is limited like sign-in.
      config: { access: 'public', rateLimit: { max: 30, timeWindow: 60_000 } },
      schema: { tags, summary: 'A gateway trades its enrolment token for a control-channel credential', security: [], body: EnrollGateway, response: { 201: EnrolledGateway, ...errors } },
    },
    async (request, reply) => {
      const { gateway, credential } = await gateways.enroll(request.body, request.ip ?? null);
      return reply.code(201).send({ gatewayId: gateway.id, name: gateway.name, cluster: gateway.cluster, publicAddress: gateway.publicAddress, credential });
    },
  );

  r.post(
    '/api/v1/gateways/:id/reenrollments',
    {
      config: { access: 'gateways:write' },
      schema: {
        tags,
        summary: "Create a one-time token that re-enrols this gateway (rotates its credential; optionally moves its public address, audited) — shown once",
        params: IdParams,
        body: CreateGatewayReenrollment,
        response: { 201: CreatedGatewayEnrollment, ...errors },
      },
    },
    async (request, reply) => {
      const { enrollment, token } = await gateways.createReenrollment(actorOf(request), request.params.id, request.body);
      return reply.code(201).send({ ...enrollmentDto(enrollment), token });
    },
  );

  r.get('/api/v1/gateways/grants', { config: { access: 'gateways:read' }, schema: { tags, summary: 'List grants (live=true: issued or in use)', querystring: ListGatewayGrantsQuery, response: { 200: pageOf(GatewayGrant), ...errors } } }, async (request) => {
    const { limit, offset, live } = request.query;
    const page = await gateways.listGrants(live, limit, offset);
    return { items: page.items.map(grantDto), total: page.total, limit, offset };
  });

  r.post(
    '/api/v1/gateways/grants/:id/revoke',
    { config: { access: 'gateways:write' }, schema: { tags, summary: 'Revoke a grant; its live session is closed at once', params: IdParams, body: RevokeGatewayGrant, response: { 204: z.null(), ...errors } } },
    async (request, reply) => {
      await gateways.revokeGrant(request.params.id, request.body.reason, actorOf(request));
      return reply.code(204).send(null);
    },
  );

  r.get('/api/v1/gateways/:id', { config: { access: 'gateways:read' }, schema: { tags, summary: 'One gateway', params: IdParams, response: { 200: Gateway, ...errors } } }, async (request) =>
    gatewayDto(await gateways.get(request.params.id)),
  );

  r.patch(
    '/api/v1/gateways/:id',
    { config: { access: 'gateways:write' }, schema: { tags, summary: 'Disable, drain or re-activate a gateway, or rename it', params: IdParams, body: UpdateGateway, response: { 200: Gateway, ...errors } } },
    async (request) => gatewayDto(await gateways.update(actorOf(request), request.params.id, request.body)),
  );

  r.delete('/api/v1/gateways/:id', { config: { access: 'gateways:write' }, schema: { tags, summary: 'Delete a gateway with no live grant', params: IdParams, response: { 204: z.null(), ...errors } } }, async (request, reply) => {
    await gateways.delete(actorOf(request), request.params.id);
    return reply.code(204).send(null);
  });
}

function gatewayDto(g: GatewayWithLive) {
  return {
    id: g.id,
    name: g.name,
    cluster: g.cluster,
    publicAddress: g.publicAddress,
    previousPublicAddress: g.previousPublicAddress,
    publicAddressChangedAt: isoOrNull(g.publicAddressChangedAt),
    portRangeStart: g.portRangeStart,
    portRangeEnd: g.portRangeEnd,
    status: g.status as 'active',
    health: g.health as 'healthy',
    load: g.load,
    version: g.version,
    lastSeenAt: isoOrNull(g.lastSeenAt),
    brokerNode: g.brokerNode,
    liveGrants: g.liveGrants,
    sshHostKey: g.sshHostKey,
    tlsCertificateSha256: g.tlsCertificateSha256,
    routedPorts: g.routedPorts,
    routedPortsSet: g.routedPortsSet,
    listenerPorts: g.listenerPorts,
    sniDomain: g.sniDomain,
    createdAt: iso(g.createdAt),
    updatedAt: iso(g.updatedAt),
  };
}

function enrollmentDto(e: EnrollmentRow) {
  return {
    id: e.id,
    purpose: e.purpose as 'new' | 'reenroll',
    cluster: e.cluster,
    name: e.name,
    publicAddress: e.publicAddress,
    expiresAt: iso(e.expiresAt),
    usedAt: isoOrNull(e.usedAt),
    gatewayId: e.gatewayId,
    createdAt: iso(e.createdAt),
  };
}

function grantDto(g: GrantRow) {
  return {
    id: g.id,
    connectionId: g.connectionId,
    gatewayId: g.gatewayId,
    cluster: g.gatewayCluster,
    clientAddress: g.clientAddress,
    targetAddress: g.targetAddress,
    targetPort: g.targetPort,
    mode: g.mode as 'routed',
    gatewayPort: g.gatewayPort,
    validUntil: iso(g.validUntil),
    state: g.state as 'issued',
    usedAt: isoOrNull(g.usedAt),
    revokedAt: isoOrNull(g.revokedAt),
    closedAt: isoOrNull(g.closedAt),
    createdAt: iso(g.createdAt),
  };
}
