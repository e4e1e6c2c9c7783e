import { z } from 'zod';
import { EC2_ID } from './aws.ts';
import { Page, Timestamp, Uuid } from './common.ts';
import { TagFilter, Tags } from './providers.ts';

export const Weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
export const PoolProvisioning = z.enum(['running', 'paused']);
export const ReconcileOutcome = z.enum(['ok', 'partial', 'error']);

const Name = z.string().trim().min(1).max(128).regex(/^[^\n\r\t]+$/, 'must be one line');
const HhMm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM, 24-hour (e.g. 08:30)');
const Count = z.number().int().min(0).max(100_000);
const InstanceType = z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, 'must be an instance type like g5.2xlarge');

/** An IANA zone name the runtime knows (`Europe/London`, `America/Los_Angeles`, `UTC`). */
export function isTimeZone(zone: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
export const TimeZone = z.string().max(64).refine(isTimeZone, { message: 'is not an IANA time zone (e.g. Europe/London, America/Los_Angeles, UTC)' });

/** `{seq}` or `{seq:03}` (zero-padded to that width): the pool's counter, one per launch. */
export const NAME_PATTERN_PLACEHOLDER = /\{seq(?::0?(\d{1,2}))?\}/g;
export const NamePattern = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[^\n\r\t]+$/, 'must be one line')
  .refine((p) => p.replace(NAME_PATTERN_PLACEHOLDER, '').indexOf('{') === -1, 'the only placeholder is {seq} or {seq:03}')
  .refine((p) => new RegExp(NAME_PATTERN_PLACEHOLDER.source).test(p), 'must contain {seq} (e.g. edit-{seq:03}) so that names differ');

/** Variables user data may use; each launch fills them in. `agent.token` exists only in the user data. */
export const USER_DATA_VARIABLES = ['workstation.name', 'workstation.id', 'pool.name', 'pool.id', 'agent.token'] as const;
export const USER_DATA_VARIABLE = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
export const UserDataTemplate = z
  .string()
  .max(16 * 1024)
  .superRefine((text, ctx) => {
    for (const m of text.matchAll(USER_DATA_VARIABLE)) {
      if (!(USER_DATA_VARIABLES as readonly string[]).includes(m[1]!)) {
        ctx.addIssue({ code: 'custom', message: `unknown variable {{${m[1]}}}; known: ${USER_DATA_VARIABLES.map((v) => `{{${v}}}`).join(', ')}` });
      }
    }
  });

export const PoolMembership = z
  .strictObject({
    tags: TagFilter.optional().describe('machines of the provider carrying these tags (every key must match; a value from the list, or any value for [])'),
    externalIds: z.array(z.string().min(1).max(128)).max(10_000).optional().describe('explicit members by the provider\'s id (EC2 instance id, static host name)'),
  })
  .describe('Which of the provider\'s machines belong to the pool; a machine matching either part is a member. Machines the pool launched are always members.');

const unique = (items: string[]) => new Set(items).size === items.length;

export const PoolTemplate = z
  .strictObject({
    imageId: z.string().regex(EC2_ID.image, 'must be an AMI id (ami- and 8 or 17 hex digits)').optional(),
    launchTemplate: z
      .strictObject({
        id: z.string().regex(EC2_ID.launchTemplate, 'must be a launch template id').optional(),
        name: z.string().min(3).max(128).optional(),
        version: z.string().max(32).optional(),
      })
      .refine((t) => !!t.id !== !!t.name, 'name the launch template by id or by name (one of them)')
      .optional(),
    instanceTypes: z.array(InstanceType).min(1).max(10).refine(unique, 'each instance type at most once').describe('preferred first; on a capacity error the next one is tried'),
    subnetIds: z
      .array(z.string().regex(EC2_ID.subnet, 'must be a subnet id (subnet- and 8 or 17 hex digits)'))
      .min(1)
      .max(16)
      .refine(unique, 'each subnet at most once')
      .describe('launches spread over these (fewest machines first); on a capacity error the next subnet is tried'),
    securityGroupIds: z.array(z.string().regex(EC2_ID.securityGroup, 'must be a security group id')).max(5).optional(),
    iamInstanceProfile: z.string().min(1).max(2048).optional().describe('instance profile name or ARN'),
    keyName: z.string().min(1).max(255).optional(),
    tags: Tags.refine((t) => !Object.keys(t).some((k) => k === 'Name' || k.toLowerCase().startsWith('aws:')), 'Name comes from the name pattern, and aws: tags are reserved')
      .optional()
      .describe('added to every launch; Stagedoor\'s own stagedoor:* tags always win'),
    namePattern: NamePattern.optional().describe('e.g. edit-{seq:03}; default "<pool name>-{seq:03}"'),
    userData: UserDataTemplate.optional().describe('variables: {{workstation.name}}, {{workstation.id}}, {{pool.name}}, {{pool.id}}, {{agent.token}}'),
    hibernation: z.boolean().optional().describe('launch with EC2 hibernation enabled (HibernationOptions.Configured) and an encrypted root volume, so power plans can hibernate these machines; EC2 refuses families without it (GPU g*/p*)'),
    rootVolumeGiB: z.number().int().min(1).max(16384).optional().describe('root volume size in GiB; with hibernation it must hold the image plus the RAM'),
  })
  .refine((t) => !!t.imageId !== !!t.launchTemplate, { message: 'name exactly one of imageId and launchTemplate', path: ['imageId'] });

export const ScheduleWindow = z
  .strictObject({
    days: z.array(Weekday).min(1).max(7).refine((d) => unique(d), 'each day at most once'),
    start: HhMm,
    end: HhMm.describe('before start = the window runs past midnight; equal to start = the whole day'),
    minAvailable: Count.optional(),
    maxAvailable: Count.nullable().optional(),
    maxTotal: Count.nullable().optional(),
  })
  .describe('While open (in the pool\'s time zone), these thresholds replace the pool\'s own; the first open window wins.');

export const StandbySetting = z
  .strictObject({
    mode: z.enum(['windows', 'predictive']).describe('windows: the thresholds in force; predictive: from the pool\'s demand forecast, bounded by them'),
    quantile: z.number().min(0.5).max(0.99).default(0.9).describe('quantile of the past weeks\' arrivals to plan for'),
    bootSeconds: z.number().int().min(10).max(3600).default(120).describe('boot-to-ready time: the warm standby covers the arrivals expected within it'),
    reserveMinutes: z.number().int().min(0).max(240).default(0).describe('minutes of further expected arrivals covered by stopped machines (EBS-backed only); 0 = none'),
    holdMinutes: z
      .number()
      .int()
      .min(0)
      .max(240)
      .default(15)
      .describe('running standby is stopped only above the arrivals expected over this many minutes ahead; 0 = stop surplus at once'),
    leadMinutes: z
      .number()
      .int()
      .min(0)
      .max(120)
      .default(5)
      .describe('machines are started for the arrivals expected over this many minutes ahead (at least one boot); 0 = one boot ahead'),
  })
  .describe('How the pool sizes its standby (docs/pools.md, "Predictive standby").');

export const StandbyDecision = z.object({ mode: z.enum(['windows', 'predictive']), warm: z.number().int(), available: z.number().int(), hold: z.number().int().optional(), reason: z.string() });

export const CreatePool = z.strictObject({
  name: Name,
  description: z.string().max(1000).nullable().default(null),
  providerId: Uuid,
  membership: PoolMembership.default({}),
  template: PoolTemplate.nullable().default(null).describe('how the pool launches machines; null = the pool never launches'),
  minAvailable: Count.default(0).describe('standby: available machines to keep ready'),
  maxTotal: Count.nullable().default(null).describe('cap on the pool\'s machines (null = no cap)'),
  maxAvailable: Count.nullable().default(null).describe('above this many available machines the surplus the pool launched is terminated (null = never)'),
  scheduleWindows: z.array(ScheduleWindow).max(50).default([]),
  standby: StandbySetting.default({ mode: 'windows', quantile: 0.9, bootSeconds: 120, reserveMinutes: 0, holdMinutes: 15, leadMinutes: 5 }),
  timeZone: TimeZone.default('UTC'),
  launchRatePerMinute: z.number().int().min(1).max(10_000).default(10),
  provisioning: PoolProvisioning.default('running'),
  gatewayCluster: z.string().min(1).max(128).nullable().default(null),
});

export const UpdatePool = z.strictObject({
  name: Name.optional(),
  description: z.string().max(1000).nullable().optional(),
  providerId: Uuid.optional(),
  membership: PoolMembership.optional(),
  template: PoolTemplate.nullable().optional(),
  minAvailable: Count.optional(),
  maxTotal: Count.nullable().optional(),
  maxAvailable: Count.nullable().optional(),
  scheduleWindows: z.array(ScheduleWindow).max(50).optional(),
  standby: StandbySetting.optional(),
  timeZone: TimeZone.optional(),
  launchRatePerMinute: z.number().int().min(1).max(10_000).optional(),
  provisioning: PoolProvisioning.optional(),
  gatewayCluster: z.string().min(1).max(128).nullable().optional(),
});

export const PoolAvailability = z
  .object({
    total: z.number().int().describe('members that are not terminated, launches in flight included'),
    available: z.number().int().describe('unassigned, not in maintenance, not unhealthy, and running or startable (pending, stopping, stopped)'),
    assigned: z.number().int(),
    starting: z.number().int().describe('pending: booting, or a launch not yet answered by the cloud'),
    failed: z.number().int().describe('unhealthy, or in a power state the provider could not name'),
  })
  .describe('PoolAvailability');

export const CapacityFailure = z.object({ subnetId: z.string(), instanceType: z.string(), at: Timestamp });

export const ReconcileSummary = z.object({
  desired: z.number().int().optional(),
  available: z.number().int().optional(),
  total: z.number().int().optional(),
  launched: z.number().int().optional(),
  started: z.number().int().optional(),
  stopped: z.number().int().optional(),
  terminated: z.number().int().optional(),
  adopted: z.number().int().optional(),
  capacityFailures: z.array(CapacityFailure).optional().describe('recent capacity errors; these subnets are tried last for a while'),
  notes: z.array(z.string()).optional().describe('why the pool is short of its thresholds, in words'),
  standby: StandbyDecision.optional().describe('the standby the pass aimed at, and why'),
});

export const Pool = z.object({
  id: Uuid,
  name: z.string(),
  description: z.string().nullable(),
  providerId: Uuid,
  membership: PoolMembership,
  template: PoolTemplate.nullable(),
  nameSequence: z.number().int(),
  minAvailable: z.number().int(),
  maxTotal: z.number().int().nullable(),
  maxAvailable: z.number().int().nullable(),
  scheduleWindows: z.array(ScheduleWindow),
  standby: StandbySetting,
  timeZone: z.string(),
  launchRatePerMinute: z.number().int(),
  provisioning: PoolProvisioning,
  gatewayCluster: z.string().nullable(),
  thresholdsNow: z
    .object({ minAvailable: z.number().int(), maxAvailable: z.number().int().nullable(), maxTotal: z.number().int().nullable(), window: z.number().int().nullable() })
    .describe('the thresholds in force now: the pool\'s own, or those of the open schedule window (its index)'),
  availability: PoolAvailability,
  lastReconcileAt: Timestamp.nullable(),
  lastReconcileOutcome: ReconcileOutcome.nullable(),
  lastReconcileError: z.string().nullable(),
  lastReconcileSummary: ReconcileSummary.nullable(),
  backoffUntil: Timestamp.nullable().describe('the reconciler launches nothing for this pool until then, after repeated failures'),
  consecutiveFailures: z.number().int(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const PoolForecast = z
  .object({
    poolId: Uuid,
    at: Timestamp,
    timeZone: z.string(),
    standby: StandbySetting,
    target: StandbyDecision.nullable().describe('the standby a predictive pool aims at now, and why; null when sized by windows'),
    today: z.array(
      z.object({
        at: Timestamp,
        local: z.string().describe('HH:MM in the pool\'s time zone'),
        forecast: z.number().nullable().describe('arrivals expected in the slot (at the pool\'s quantile); null: no history for it'),
        actual: z.number().int().nullable().describe('arrivals so far; null for slots still ahead'),
      }),
    ),
  })
  .describe('PoolForecast: today, 15-minute slot by slot, in the pool\'s time zone');

export const ListPoolsQuery = Page.extend({ providerId: Uuid.optional() });

export const ReconcileResult = z.object({
  outcome: ReconcileOutcome,
  error: z.string().nullable(),
  summary: ReconcileSummary,
  pool: Pool,
});
