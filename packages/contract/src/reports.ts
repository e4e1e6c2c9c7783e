import { z } from 'zod';
import { Timestamp, Uuid } from './common.ts';

/** EC2-style instance type: family (with generation and options) `.` size — `g5.2xlarge`, `m7i-flex.large`, `u-6tb1.metal`. */
export const PriceInstanceType = z
  .string()
  .max(64)
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9-]+$/, 'must be an instance type like g5.2xlarge');
/** AWS region name: `us-east-1`, `eu-central-1`, `us-gov-west-1`, `ap-southeast-2`. */
export const PriceRegion = z
  .string()
  .max(32)
  .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d{1,2}$/, 'must be a region like us-east-1');
/** ISO 4217 code, upper case. */
export const Currency = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code like USD or EUR');

export const PRICE_SOURCES = ['default', 'admin', 'aws'] as const;

export const Price = z
  .object({
    instanceType: z.string(),
    region: z.string(),
    hourlyPrice: z.string().describe('per instance-hour, as a decimal string (numeric(12,6): money never passes through floating point in storage)'),
    currency: z.string(),
    source: z.enum(PRICE_SOURCES).describe('`default`: shipped list price (see docs/cost.md); `admin`: set through the API; `aws`: fetched from the AWS Price List API by a refresh'),
    updatedAt: Timestamp,
  })
  .describe('Price');

export const RefreshPrices = z
  .strictObject({
    providerId: z.string().uuid().optional().describe('only this aws-ec2 provider\'s region; default: every aws-ec2 provider'),
    region: PriceRegion.optional(),
    instanceTypes: z.array(PriceInstanceType).min(1).max(200).optional().describe('default: the types in use (machines, pool templates) and the region\'s non-admin price rows'),
    operatingSystem: z.enum(['Linux', 'Windows']).default('Linux').describe('the price table has one price per type and region: Linux unless the studio runs Windows'),
  })
  .describe('RefreshPrices');

export const RefreshPricesResult = z.object({
  operatingSystem: z.enum(['Linux', 'Windows']),
  regions: z.array(
    z.object({
      region: z.string(),
      provider: z.string(),
      updated: z.array(z.object({ instanceType: z.string(), hourlyPrice: z.number(), previous: z.object({ hourlyPrice: z.number(), source: z.string() }).nullable() })),
      keptAdmin: z.array(z.string()).describe('types with an admin price: not looked up, not changed'),
      missing: z.array(z.object({ instanceType: z.string(), why: z.string() })),
    }),
  ),
});

export const PriceKeyParams = z.strictObject({ region: PriceRegion, instanceType: PriceInstanceType });

export const ListPricesQuery = z.strictObject({
  region: PriceRegion.optional(),
  instanceType: PriceInstanceType.optional(),
  source: z.enum(PRICE_SOURCES).optional(),
});

export const PutPrice = z.strictObject({
  hourlyPrice: z
    .number()
    .min(0)
    .max(100_000)
    .refine((n) => Number(n.toFixed(6)) === n, 'at most 6 decimal places')
    .describe('per instance-hour'),
  currency: Currency.default('USD'),
});

export const REPORT_GROUP_BY = ['pool', 'user', 'instanceType'] as const;
/** The longest window one cost report covers. */
export const MAX_REPORT_DAYS = 366;

export const CostReportQuery = z
  .strictObject({
    from: Timestamp.describe('start of the window (inclusive), e.g. 2026-11-23T00:00:00Z'),
    to: Timestamp.describe('end of the window (exclusive)'),
    groupBy: z.enum(REPORT_GROUP_BY).default('pool'),
  })
  .superRefine((q, ctx) => {
    const from = Date.parse(q.from);
    const to = Date.parse(q.to);
    if (!(to > from)) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
    else if (to - from > MAX_REPORT_DAYS * 86_400_000) ctx.addIssue({ code: 'custom', path: ['to'], message: `the window may span at most ${MAX_REPORT_DAYS} days` });
  });

export const CostAmount = z.object({ currency: z.string(), amount: z.number().describe('rounded to cents') });

export const CostRow = z.object({
  key: z.string().nullable().describe('pool id, user id or instance type; null for "(no pool)", "(unassigned)", "(unknown type)"'),
  label: z.string(),
  machines: z.number().int().describe('workstations with any time in this group in the window'),
  runningHours: z.number(),
  stoppedHours: z.number(),
  otherHours: z.number().describe('pending (booting), stopping, unknown'),
  alwaysOnHours: z.number().describe('hours the machines existed and were not terminated = running + stopped + other'),
  savedHours: z.number().describe('alwaysOnHours − runningHours: instance-hours not billed thanks to stopping'),
  cost: z.array(CostAmount).describe('hourly price × running hours, per currency; empty when no running hour has a price'),
  unpricedRunningHours: z.number().describe('running hours with no price for their instance type and region: their cost is unknown, not 0'),
});

export const CostReport = z
  .object({
    from: Timestamp,
    to: Timestamp,
    /** Open intervals end here when the window reaches past now. */
    generatedAt: Timestamp,
    groupBy: z.enum(REPORT_GROUP_BY),
    groups: z.array(CostRow),
    total: CostRow,
  })
  .describe('CostReport');

/** "Why is it still running?" */
export const RunningSession = z.object({
  connectionId: Uuid,
  userId: Uuid.nullable(),
  username: z.string().nullable(),
  state: z.string(),
  protocol: z.string(),
  requestedAt: Timestamp,
  connectedAt: Timestamp.nullable(),
});
export const PendingTimer = z.object({
  id: Uuid,
  kind: z.string(),
  dueAt: Timestamp,
  reason: z.string().nullable(),
});
export const RUNNING_VERDICTS = ['in-use', 'action-pending', 'standby', 'no-plan'] as const;
export const RunningWorkstation = z
  .object({
    id: Uuid,
    name: z.string(),
    powerState: z.string(),
    runningSince: Timestamp,
    poolId: Uuid.nullable(),
    poolName: z.string().nullable(),
    instanceType: z.string().nullable(),
    assignedTo: z.object({ userId: Uuid.nullable(), username: z.string().nullable(), mode: z.string(), since: Timestamp }).nullable(),
    agentSessionState: z.string(),
    lastActivityAt: Timestamp.nullable(),
    sessions: z.array(RunningSession),
    timers: z.array(PendingTimer).describe('pending power.* and release.* timers about this machine, soonest first'),
    verdict: z.enum(RUNNING_VERDICTS).describe('in-use: a live session; action-pending: a plan will act at the first timer; standby: unassigned pool member kept warm; no-plan: nothing will stop it'),
    why: z.string().describe('the verdict in words'),
  })
  .describe('RunningWorkstation');

export const RunningQuery = z.strictObject({
  poolId: Uuid.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});
