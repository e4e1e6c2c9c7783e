// Resource ids in EC2's long format (prefix + 17 hex digits). Default resources get ids
// derived from the region, so a fresh emulator always has the same default VPC and subnets.

import { createHash, randomBytes, randomUUID } from 'node:crypto';

const LONG_ID = /^[0-9a-f]{17}$/;
const SHORT_ID = /^[0-9a-f]{8}$/;

// Random bytes come from a pooled buffer: one crypto call per few hundred ids keeps
// launching thousands of instances cheap.
const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let poolOffset = 0;

function randomHex(digits: number): string {
  const bytes = Math.ceil(digits / 2);
  if (poolOffset + bytes > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex.slice(0, digits);
}

export function randomId(prefix: string): string {
  return `${prefix}-${randomHex(17)}`;
}

export function stableId(prefix: string, ...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('/')).digest('hex');
  return `${prefix}-0${digest.slice(0, 16)}`;
}

/** Whether `id` has EC2's shape for `prefix` (8 or 17 lowercase hex digits). */
export function isWellFormedId(prefix: string, id: string): boolean {
  if (!id.startsWith(`${prefix}-`)) return false;
  const body = id.slice(prefix.length + 1);
  return LONG_ID.test(body) || SHORT_ID.test(body);
}

export function requestId(): string {
  return randomUUID();
}

export function macAddress(): string {
  const hex = randomHex(10);
  return `0a:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}:${hex.slice(8, 10)}`;
}

/** IAM unique ids look like `AIPA` + 17 upper-case alphanumerics. */
export function instanceProfileId(arn: string): string {
  const digest = createHash('sha256').update(arn).digest('hex').toUpperCase();
  return `AIPA${digest.slice(0, 17)}`;
}
