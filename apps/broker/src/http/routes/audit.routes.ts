import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { AuditEvent, ErrorBody, ListAuditQuery, pageOf } from '@stagedoor/contract';
import type { Services } from '../../services.ts';
import { auditDto } from '../dto.ts';

export function auditRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/api/v1/audit',
    {
      config: { access: 'audit:read' },
      schema: { tags: ['audit'], summary: 'The audit trail, newest first', querystring: ListAuditQuery, response: { 200: pageOf(AuditEvent), 400: ErrorBody, 401: ErrorBody, 403: ErrorBody } },
    },
    async (request) => {
      const { limit, offset, from, to, ...rest } = request.query;
      const page = await deps.services.audit.list({ ...rest, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined }, limit, offset);
      return { items: page.items.map(auditDto), total: page.total, limit, offset };
    },
  );
}
