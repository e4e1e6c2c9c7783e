// MaxResults / NextToken. Tokens are opaque to clients; here they carry the position
// after the last item returned, so resuming a page never rescans earlier results.

import { invalidParameterValue, invalidPaginationToken } from './errors.ts';
import type { QueryParams } from './query.ts';

export interface PageRequest {
  maxResults?: number;
  /** Position to continue after; undefined for the first page. */
  after?: number;
}

export function encodeToken(position: number): string {
  return Buffer.from(`sd1:${position}`, 'utf8').toString('base64url');
}

export function decodeToken(token: string): number {
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  const match = /^sd1:(-?\d+)$/.exec(decoded);
  if (!match?.[1]) throw invalidPaginationToken();
  return Number(match[1]);
}

/** Reads MaxResults (checked against the action's documented range) and NextToken. */
export function readPageRequest(params: QueryParams, min: number, max: number): PageRequest {
  const maxResults = params.int('MaxResults');
  if (maxResults !== undefined && (maxResults < min || maxResults > max)) {
    throw invalidParameterValue(
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between ${min} and ${max}.`,
    );
  }
  const token = params.get('NextToken');
  return { maxResults, after: token ? decodeToken(token) : undefined };
}

/** Pages a small, already-filtered list by index (subnets, images, groups). */
export function pageByIndex<T>(all: readonly T[], page: PageRequest): { items: T[]; nextToken?: string } {
  const start = page.after === undefined ? 0 : page.after + 1;
  if (page.maxResults === undefined) return { items: all.slice(start) };
  const end = start + page.maxResults;
  const pageItems = all.slice(start, end);
  return { items: pageItems, nextToken: end < all.length ? encodeToken(end - 1) : undefined };
}
