// The AWS Price List Query API (JSON 1.1, `X-Amz-Target: AWSPriceListService.<Action>`), as far as
// a price refresh needs it: GetProducts with filters and paging, DescribeServices for AmazonEC2.
// Errors are JSON 1.1 errors: `{"__type": …, "message": …}` and the x-amzn-ErrorType header.

import type { PriceCatalogue } from './catalogue.ts';

export const PRICING_TARGET_PREFIX = 'AWSPriceListService.';

export class PricingError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

interface Filter {
  Type?: string;
  Field?: string;
  Value?: string;
}

const FILTER_TYPES = new Set(['TERM_MATCH', 'EQUALS', 'CONTAINS', 'ANY_OF', 'NONE_OF']);

function matches(attributes: Record<string, string>, filter: Filter): boolean {
  const actual = attributes[filter.Field ?? '']?.toLowerCase();
  const wanted = (filter.Value ?? '').toLowerCase();
  switch (filter.Type) {
    case 'CONTAINS':
      return actual !== undefined && actual.includes(wanted);
    case 'ANY_OF':
      return actual !== undefined && wanted.split(',').map((v) => v.trim()).includes(actual);
    case 'NONE_OF':
      return actual === undefined || !wanted.split(',').map((v) => v.trim()).includes(actual);
    default:
      // TERM_MATCH and EQUALS: the whole value, ignoring case.
      return actual === wanted;
  }
}

function readFilters(body: Record<string, unknown>): Filter[] {
  const filters = body.Filters ?? [];
  if (!Array.isArray(filters)) throw new PricingError('InvalidParameterException', 'Filters must be a list.');
  if (filters.length > 50) throw new PricingError('InvalidParameterException', 'Too many filters: at most 50.');
  for (const f of filters as Filter[]) {
    if (!f || typeof f.Field !== 'string' || typeof f.Value !== 'string' || !FILTER_TYPES.has(f.Type ?? '')) {
      throw new PricingError('InvalidParameterException', `Invalid filter ${JSON.stringify(f)}: Type (${[...FILTER_TYPES].join(' | ')}), Field and Value are required.`);
    }
  }
  return filters as Filter[];
}

function getProducts(catalogue: PriceCatalogue, body: Record<string, unknown>): unknown {
  if (body.ServiceCode !== 'AmazonEC2') {
    if (typeof body.ServiceCode !== 'string' || !body.ServiceCode) throw new PricingError('InvalidParameterException', 'ServiceCode is required.');
    throw new PricingError('NotFoundException', `The service code ${body.ServiceCode} is not served by this emulator (only AmazonEC2).`);
  }
  const format = body.FormatVersion ?? 'aws_v1';
  if (format !== 'aws_v1') throw new PricingError('InvalidParameterException', `Unsupported FormatVersion ${String(format)}: aws_v1 only.`);
  const max = body.MaxResults ?? 100;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 100) throw new PricingError('InvalidParameterException', 'MaxResults must be an integer from 1 to 100.');
  const filters = readFilters(body);
  let start = 0;
  if (body.NextToken !== undefined) {
    const token = typeof body.NextToken === 'string' ? /^p(\d+)$/.exec(body.NextToken) : null;
    if (!token) throw new PricingError('InvalidNextTokenException', 'The pagination token is invalid.');
    start = Number(token[1]);
  }
  const hits = catalogue.products.filter((p) => filters.every((f) => matches(p.attributes, f)));
  const page = hits.slice(start, start + max);
  const next = start + max < hits.length ? `p${start + max}` : undefined;
  return { FormatVersion: 'aws_v1', PriceList: page.map((p) => p.document()), ...(next ? { NextToken: next } : {}) };
}

function describeServices(body: Record<string, unknown>): unknown {
  const ec2 = { ServiceCode: 'AmazonEC2', AttributeNames: ['instanceType', 'location', 'regionCode', 'operatingSystem', 'tenancy', 'capacitystatus', 'preInstalledSw', 'licenseModel'] };
  if (body.ServiceCode !== undefined && body.ServiceCode !== 'AmazonEC2') return { Services: [], FormatVersion: 'aws_v1' };
  return { Services: [ec2], FormatVersion: 'aws_v1' };
}

/** Runs one Price List action; returns the JSON answer or throws PricingError. */
export function executePricing(catalogue: PriceCatalogue, action: string, rawBody: string): unknown {
  let body: Record<string, unknown>;
  try {
    body = rawBody.trim() ? (JSON.parse(rawBody) as Record<string, unknown>) : {};
  } catch {
    throw new PricingError('SerializationException', 'The request body is not valid JSON.');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new PricingError('SerializationException', 'The request body must be a JSON object.');
  if (action === 'GetProducts') return getProducts(catalogue, body);
  if (action === 'DescribeServices') return describeServices(body);
  throw new PricingError('UnknownOperationException', `The operation ${action} is not served by this emulator (GetProducts, DescribeServices).`);
}
