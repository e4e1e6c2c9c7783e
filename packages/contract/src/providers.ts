import { z } from 'zod';
import { EC2_ID, isKnownRegion } from './aws.ts';
import { Page, Timestamp, Uuid } from './common.ts';

export const ProviderKind = z.enum(['aws-ec2', 'static']);
export const PowerState = z.enum(['pending', 'running', 'stopping', 'stopped', 'terminated', 'unknown']);
export const Protocol = z.enum(['rdp', 'dcv', 'vnc', 'ssh', 'pcoip']);

const Name = z.string().trim().min(1).max(128).regex(/^[^\n\r\t]+$/, 'must be one line');
const Region = z.string().refine(isKnownRegion, { message: 'is not an AWS region (e.g. us-east-1, eu-west-2)' });
const TagKey = z.string().min(1).max(128);
/** Every key must match; the value one of the listed values, or any value when the list is empty. */
export const TagFilter = z.record(TagKey, z.array(z.string().max(256)).max(50)).refine((r) => Object.keys(r).length <= 20, 'at most 20 tag keys');
export const Tags = z.record(TagKey, z.string().max(256)).refine((r) => Object.keys(r).length <= 50, 'at most 50 tags');

export const Credentials = z.discriminatedUnion('mode', [
  z.strictObject({
    mode: z.literal('access-key'),
    accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/, 'must be an AWS access key id (e.g. AKIA…)'),
    secretAccessKey: z.string().min(16).max(256),
  }),
  z.strictObject({ mode: z.literal('default-chain').describe('the instance role, or the environment of the broker') }),
]);

export const CreateProvider = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('aws-ec2'),
    name: Name,
    region: Region,
    endpoint: z.url({ protocol: /^https?$/ }).optional().describe('the EC2 emulator, or a VPC endpoint'),
    credentials: Credentials,
    tagFilter: TagFilter.default({}),
    syncIntervalSeconds: z.number().int().min(10).max(86400).default(300),
    enabled: z.boolean().default(true),
  }),
  z.strictObject({ kind: z.literal('static'), name: Name, enabled: z.boolean().default(true) }),
]);
export const UpdateProvider = z.strictObject({
  name: Name.optional(),
  region: Region.optional(),
  endpoint: z.url({ protocol: /^https?$/ }).nullable().optional(),
  credentials: Credentials.optional(),
  tagFilter: TagFilter.optional(),
  syncIntervalSeconds: z.number().int().min(10).max(86400).optional(),
  enabled: z.boolean().optional(),
});

export const SyncCounts = z.object({
  seen: z.number(),
  created: z.number(),
  updated: z.number(),
  terminated: z.number(),
  skipped: z.number().optional().describe('instances the provider lists that another provider already owns (named in the message); never imported twice'),
  apiCalls: z.number().optional(),
  durationMs: z.number().optional(),
});
export const SyncOutcome = z.object({ at: Timestamp, status: z.enum(['ok', 'error']), message: z.string().nullable(), counts: SyncCounts.nullable() });

export const Provider = z.object({
  id: Uuid,
  name: z.string(),
  kind: ProviderKind,
  region: z.string().nullable(),
  endpoint: z.string().nullable(),
  credentials: z.object({ mode: z.enum(['access-key', 'default-chain', 'none']), accessKeyId: z.string().nullable(), hasSecret: z.boolean() }),
  tagFilter: z.record(z.string(), z.array(z.string())),
  syncIntervalSeconds: z.number().int(),
  enabled: z.boolean(),
  lastSync: SyncOutcome.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const ProviderTestResult = z.object({ ok: z.literal(true), message: z.string(), details: z.record(z.string(), z.unknown()) });

/**
 * What an admin can do to one machine: power actions the provider supports in the machine's state,
 * `edit` (a static host's name, address, protocols, tags), `remove` (a static host, or a terminated
 * machine) and `maintenance` (every machine).
 */
export const WorkstationAction = z.enum(['start', 'stop', 'reboot', 'terminate', 'edit', 'remove', 'maintenance']);
export type WorkstationAction = z.infer<typeof WorkstationAction>;

export const WorkstationProtocol = z.strictObject({ protocol: Protocol, port: z.number().int().min(1).max(65535).optional() });

export const Workstation = z.object({
  id: Uuid,
  providerId: Uuid,
  externalId: z.string().nullable(),
  name: z.string(),
  privateAddress: z.string().nullable().describe('the IP address; for a static host with a DNS name, the one it resolved to at the last connect'),
  dnsName: z.string().nullable().describe('a static host registered by DNS name: resolved at each connect'),
  instanceType: z.string().nullable(),
  availabilityZone: z.string().nullable(),
  subnetId: z.string().nullable(),
  imageId: z.string().nullable(),
  tags: z.record(z.string(), z.string()),
  powerState: PowerState,
  powerStateChangedAt: Timestamp,
  health: z.enum(['unknown', 'healthy', 'unhealthy']),
  healthSource: z.enum(['status-checks', 'agent']).nullable().describe('what decided `health`: the cloud\'s instance and system status checks, or the agent\'s reports (docs/health.md)'),
  healthCheckedAt: Timestamp.nullable(),
  protocols: z.array(WorkstationProtocol).nullable(),
  poolId: Uuid.nullable(),
  maintenance: z.boolean().describe('not assigned to new users while on'),
  launchedByPoolId: Uuid.nullable(),
  agentLastSeenAt: Timestamp.nullable(),
  lastActivityAt: Timestamp.nullable(),
  /** The user session as the agent last reported it (`unknown` when no agent reports). */
  agentSessionState: z.enum(['unknown', 'none', 'active', 'locked', 'idle', 'disconnected']).optional(),
  agentSessionUser: z.string().nullable().optional(),
  agentVersion: z.string().nullable().optional(),
  /** In lists: the provider it belongs to and the user it is assigned to now (one query for the page). */
  provider: z.object({ id: Uuid, name: z.string(), kind: z.string() }).optional(),
  assignedUser: z.object({ id: Uuid, username: z.string(), displayName: z.string().nullable() }).nullable().optional(),
  availableActions: z.array(WorkstationAction).describe('what can be done to this machine now, given its provider and state (the console offers only these)'),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const ListWorkstationsQuery = Page.extend({
  providerId: Uuid.optional(),
  poolId: Uuid.optional(),
  powerState: PowerState.optional(),
  q: z.string().max(256).optional().describe('substring of the name, instance id or address'),
  tag: z.string().regex(/^[^=]+(=.*)?$/, 'must be KEY or KEY=VALUE').optional(),
  sort: z.enum(['name', '-name', 'createdAt', '-createdAt', 'powerState', '-powerState']).default('name'),
});

/**
 * A DNS host name (RFC 1123 labels; `localhost` and single labels allowed). The last label may not be
 * all digits, so a mistyped IPv4 address ("10.0.0") is refused instead of being taken for a name.
 */
export function isHostName(v: string): boolean {
  if (v.length === 0 || v.length > 253) return false;
  const labels = v.replace(/\.$/, '').split('.');
  if (labels.some((l) => !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(l))) return false;
  return !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

/**
 * A static host's address: an IP literal, or a DNS name that the broker resolves at connect time
 * (machines on DHCP). Names are kept lower-case, without a trailing dot.
 */
export const HostAddress = z
  .string()
  .trim()
  .min(1)
  .max(253)
  .transform((v) => (z.ipv4().safeParse(v).success || z.ipv6().safeParse(v).success ? v : v.toLowerCase().replace(/\.$/, '')))
  .refine((v) => z.ipv4().safeParse(v).success || z.ipv6().safeParse(v).success || isHostName(v), 'must be an IPv4 or IPv6 address or a DNS host name (e.g. avid-01.studio.lan)');

export const RegisterHost = z.strictObject({
  name: Name,
  address: HostAddress,
  protocols: z.array(WorkstationProtocol).min(1).max(10).default([{ protocol: 'rdp' }]),
  tags: Tags.default({}),
  maintenance: z.boolean().default(false),
});
/**
 * Change a workstation. Every machine takes `maintenance` (not assigned to new users while on);
 * name, address, protocols and tags are a static host's own (a cloud machine's come from its provider).
 */
export const UpdateWorkstation = z.strictObject({
  name: Name.optional(),
  address: HostAddress.optional(),
  protocols: z.array(WorkstationProtocol).min(1).max(10).optional(),
  tags: Tags.optional(),
  maintenance: z.boolean().optional(),
});
export const ImportHosts = z.strictObject({
  csv: z.string().min(1).max(5 * 1024 * 1024).describe('CSV with a header: name,address,protocols,tags — protocols like "rdp;ssh:2222", tags like "team=edit;site=lon"; address an IP or a DNS name'),
  onExisting: z
    .enum(['fail', 'update'])
    .default('fail')
    .describe('a name the provider has already: `fail` (the default) imports nothing and lists them; `update` changes their address, protocols and tags'),
});
export const ImportHostsResult = z.object({
  created: z.number().int(),
  updated: z.number().int(),
  unchanged: z.number().int(),
  names: z.object({ created: z.array(z.string()), updated: z.array(z.string()), unchanged: z.array(z.string()) }).describe('which hosts, by name'),
});

export const LaunchWorkstation = z.strictObject({
  providerId: Uuid,
  name: Name,
  imageId: z.string().regex(EC2_ID.image, 'must be an AMI id (ami- and 8 or 17 hex digits)').optional(),
  launchTemplate: z
    .strictObject({ id: z.string().regex(EC2_ID.launchTemplate, 'must be a launch template id').optional(), name: z.string().min(3).max(128).optional(), version: z.string().max(32).optional() })
    .optional(),
  instanceType: z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, 'must be an instance type like g5.2xlarge').optional(),
  subnetId: z.string().regex(EC2_ID.subnet, 'must be a subnet id (subnet- and 8 or 17 hex digits)').optional(),
  securityGroupIds: z.array(z.string().regex(EC2_ID.securityGroup, 'must be a security group id')).max(5).optional(),
  iamInstanceProfile: z.string().max(2048).optional(),
  keyName: z.string().max(255).optional(),
  tags: Tags.default({}),
  userData: z.string().max(16 * 1024).optional(),
  hibernation: z.boolean().optional().describe('enable EC2 hibernation at launch (encrypted root volume); needed before the machine can hibernate'),
  rootVolumeGiB: z.number().int().min(1).max(16384).optional(),
});

export const StopOptions = z.strictObject({ hibernate: z.boolean().default(false) });
export const PowerActionResult = z.object({ workstation: Workstation, previous: PowerState, current: PowerState });
