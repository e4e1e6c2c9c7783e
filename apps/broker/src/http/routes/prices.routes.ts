import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, ListPricesQuery, Price, PriceKeyParams, PutPrice, RefreshPrices, RefreshPricesResult } from '@stagedoor/contract';
import type { PriceRow } from '../../domain/prices/prices.repository.ts';
import type { Services } from '../../services.ts';
import { iso } from '../dto.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 502: ErrorBody };

export const priceDto = (p: PriceRow) => ({ instanceType: p.instanceType, region: p.region, hourlyPrice: p.hourlyPrice, currency: p.currency, source: p.source as 'default' | 'admin' | 'aws', updatedAt: iso(p.updatedAt) });

/** The price table of the cost report: `GET` for admins, operators and auditors; changes for admins (audited). */
export function pricesRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { prices } = deps.services;
  const tags = ['reports'];

  r.get(
    '/api/v1/prices',
    { config: { access: 'prices:read' }, schema: { tags, summary: 'The price table (per instance type and region), shipped defaults and admin prices', querystring: ListPricesQuery, response: { 200: z.object({ items: z.array(Price) }), ...errors } } },
    async (request) => ({ items: (await prices.list(request.query)).map(priceDto) }),
  );
  r.get(
    '/api/v1/prices/:region/:instanceType',
    { config: { access: 'prices:read' }, schema: { tags, summary: 'One price', params: PriceKeyParams, response: { 200: Price, ...errors } } },
    async (request) => priceDto(await prices.get(request.params.region, request.params.instanceType)),
  );
  r.post(
    '/api/v1/prices/refresh',
    {
      config: { access: 'prices:write' },
      schema: {
        tags,
        summary: 'Fetch the on-demand prices of the instance types in use from the AWS Price List API (source "aws"); admin prices are never changed (audited)',
        body: RefreshPrices.nullish(),
        response: { 200: RefreshPricesResult, ...errors },
      },
    },
    async (request) => prices.refresh(actorOf(request), request.body ?? {}),
  );
  r.put(
    '/api/v1/prices/:region/:instanceType',
    { config: { access: 'prices:write' }, schema: { tags, summary: 'Set the hourly price of an instance type in a region (replaces a shipped default; audited)', params: PriceKeyParams, body: PutPrice, response: { 200: Price, ...errors } } },
    async (request) => priceDto(await prices.put(actorOf(request), request.params, request.body)),
  );
  r.delete(
    '/api/v1/prices/:region/:instanceType',
    {
      config: { access: 'prices:write' },
      schema: { tags, summary: 'Remove an admin price; the shipped default for the pair, if any, comes back (audited)', params: PriceKeyParams, response: { 200: z.object({ restored: Price.nullable() }), ...errors } },
    },
    async (request) => {
      const left = await prices.delete(actorOf(request), request.params);
      return { restored: left ? priceDto(left) : null };
    },
  );
}
