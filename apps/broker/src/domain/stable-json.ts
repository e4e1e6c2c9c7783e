import { configure } from 'safe-stable-stringify';

const stringify = configure({ deterministic: true, bigint: false });

/** JSON with object keys sorted and undefined members dropped: equal values give equal strings. */
export function stableJson(v: unknown): string {
  return stringify(v) ?? 'null';
}
