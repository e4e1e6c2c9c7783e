import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApplyResult, ErrorBody, SiteFile } from '@stagedoor/contract';
import type { Services } from '../../services.ts';
import { actorOf } from '../request-context.ts';

export function applyRoutes(app: FastifyInstance, deps: { services: Services }): void {
  app.withTypeProvider<ZodTypeProvider>().post(
    '/api/v1/apply',
    {
      config: { access: 'policies:write' },
      // Site files can be large studios; allow more than the default body limit.
      bodyLimit: 8 * 1024 * 1024,
      schema: {
        tags: ['apply'],
        summary: 'Make groups, providers, plans, pools and policies match a site document, in one transaction (what `stagedoor apply` calls)',
        body: z.strictObject({ document: SiteFile, dryRun: z.boolean().default(false) }),
        response: { 200: ApplyResult, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody },
      },
    },
    async (request) => deps.services.siteApply.apply(actorOf(request), request.body.document, { dryRun: request.body.dryRun }),
  );
}
