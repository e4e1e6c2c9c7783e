import { GatewayReport as GatewayReportSchema, type GatewayReport } from '@stagedoor/contract';
import { z } from 'zod';
import { InvalidInputError, pgErrorCode } from '../errors.ts';

/**
 * What the broker does with reports a gateway sends (one, or a batch). A report that can never be
 * applied — it does not validate, or applying it fails the same way every time — is acknowledged and
 * kept in the audit log ("dead-lettered"): refusing it by closing the channel would make the gateway
 * send it again after every reconnect, forever, and hold back every report behind it. A transient
 * failure (the database away, a serialisation failure, a lost race) is not acknowledged: the channel
 * closes and the gateway sends the report again.
 */

/** A report as the gateway sent it, when it does not validate. */
export interface RejectedReport {
  seq: number | null;
  raw: unknown;
  why: string;
}

const Envelope = z.union([
  z.object({ type: z.literal('batch'), reports: z.array(z.unknown()).min(1).max(10_000) }),
  z.object({ type: z.enum(['session-started', 'session-ended', 'refused']) }),
]);

/**
 * Split a message into the reports to apply and the ones to dead-letter, each report judged on its
 * own (one bad report in a batch does not take the others with it). Null when the message is not a
 * report at all (hello, heartbeat, garbage): the caller judges it as before.
 */
export function splitReports(raw: unknown): { valid: GatewayReport[]; rejected: RejectedReport[] } | null {
  const envelope = Envelope.safeParse(raw);
  if (!envelope.success) return null;
  const items = 'reports' in envelope.data ? envelope.data.reports : [raw];
  const valid: GatewayReport[] = [];
  const rejected: RejectedReport[] = [];
  for (const item of items) {
    const parsed = GatewayReportSchema.safeParse(item);
    if (parsed.success) valid.push(parsed.data);
    else rejected.push({ seq: seqOf(item), raw: item, why: describe(parsed.error) });
  }
  return { valid, rejected };
}

/** True when applying the report again would fail the same way: dead-letter it instead of retrying. */
export function failsEveryTime(err: unknown): boolean {
  if (err instanceof z.ZodError || err instanceof InvalidInputError) return true;
  const code = pgErrorCode(err);
  // 22xxx: data exceptions (a bad date, a number out of range); 23502/23514: not-null and check
  // constraints. Not 23505 (unique) or 23503 (foreign key): those can be races that a retry resolves.
  return code !== undefined && (code.startsWith('22') || code === '23502' || code === '23514');
}

/** The audit row of a dead-lettered report: the raw report, truncated. */
export function deadLetter(report: unknown, why: string): { reason: string; details: Record<string, unknown> } {
  let raw: string;
  try {
    raw = JSON.stringify(report) ?? String(report);
  } catch {
    raw = String(report);
  }
  return { reason: why.slice(0, 200), details: { seq: seqOf(report), raw: raw.length > RAW_MAX ? `${raw.slice(0, RAW_MAX)}…` : raw, rawLength: raw.length } };
}

const RAW_MAX = 2000;

export function seqOf(item: unknown): number | null {
  const seq = (item as { seq?: unknown } | null)?.seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1 ? seq : null;
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `invalid report: ${issue.path.join('.') || '(report)'}: ${issue.message}` : 'invalid report';
}
