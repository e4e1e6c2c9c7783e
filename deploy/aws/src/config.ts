/**
 * The shape of a deployment that CloudFormation parameters cannot change after synthesis: how many
 * Availability Zones, a new or an existing VPC, the size of the broker group, and the directory.
 * Everything a studio changes per deployment without re-synthesizing (domains, certificate, instance
 * types, the release artifact) is a CloudFormation parameter instead (parameters.ts), so the one
 * template published with each release (dist/stagedoor-aws.template.json) fits most studios.
 */
export interface ExistingVpc {
  vpcId: string;
  /** The AZs of the subnets below, in the same order as each subnet list. */
  availabilityZones: string[];
  /** Public subnets: load balancers, gateways, NAT gateways. */
  publicSubnetIds: string[];
  /** Their CIDR blocks: the gateways accept PROXY v2 headers only from these (the NLB's addresses). */
  publicSubnetCidrs: string[];
  brokerSubnetIds: string[];
  workstationSubnetIds: string[];
  databaseSubnetIds: string[];
}

export type DirectoryConfig =
  | { kind: 'none' }
  /** AWS Managed Microsoft AD, created by the stack in the workstation subnets. */
  | { kind: 'managed-ad'; domainName: string; edition: 'Standard' | 'Enterprise' }
  /** An existing Active Directory the workstations and the broker reach by address. */
  | { kind: 'existing-ad'; domainName: string; dnsAddresses: string[] };

export interface DeploymentConfig {
  /** 2 or 3; ignored with an existing VPC (its subnet lists decide). */
  azCount: 2 | 3;
  /** One NAT gateway (cheaper, one AZ's outage cuts workstation egress) or one per AZ. */
  natGateways: 1 | 2 | 3;
  existingVpc?: ExistingVpc;
  brokers: { min: number; max: number };
  gateways: { min: number; max: number };
  database: { minCapacity: number; maxCapacity: number; backupRetentionDays: number };
  directory: DirectoryConfig;
}

export const DEFAULT_CONFIG: DeploymentConfig = {
  azCount: 2,
  natGateways: 2,
  brokers: { min: 2, max: 4 },
  gateways: { min: 2, max: 6 },
  database: { minCapacity: 0.5, maxCapacity: 4, backupRetentionDays: 14 },
  directory: { kind: 'none' },
};

export class DeploymentConfigError extends Error {}

/** Checks what the types cannot: the Figure 1/2 guarantees (≥ 2 brokers over ≥ 2 AZs) are not optional. */
export function checkConfig(config: DeploymentConfig): DeploymentConfig {
  const problems: string[] = [];
  if (config.azCount !== 2 && config.azCount !== 3) problems.push('azCount must be 2 or 3');
  if (config.natGateways < 1 || config.natGateways > config.azCount) problems.push('natGateways must be between 1 and azCount');
  if (config.brokers.min < 2) problems.push('brokers.min must be at least 2 (one per AZ survives an AZ outage)');
  // The rolling update keeps brokers.min in service, so it needs room for one more.
  if (config.brokers.max <= config.brokers.min) problems.push('brokers.max must be above brokers.min (a rolling update adds one before it removes one)');
  if (config.gateways.min < 2) problems.push('gateways.min must be at least 2');
  if (config.gateways.max <= config.gateways.min) problems.push('gateways.max must be above gateways.min (a rolling update adds one before it removes one)');
  if (config.database.minCapacity < 0 || config.database.maxCapacity < Math.max(config.database.minCapacity, 1)) problems.push('database capacity: 0 ≤ min ≤ max, max ≥ 1 ACU');
  if (config.database.backupRetentionDays < 1 || config.database.backupRetentionDays > 35) problems.push('database.backupRetentionDays must be 1 to 35');
  const vpc = config.existingVpc;
  if (vpc) {
    const n = vpc.availabilityZones.length;
    if (n < 2) problems.push('existingVpc.availabilityZones must list at least 2 AZs');
    for (const key of ['publicSubnetIds', 'publicSubnetCidrs', 'brokerSubnetIds', 'workstationSubnetIds', 'databaseSubnetIds'] as const) {
      if (vpc[key].length !== n) problems.push(`existingVpc.${key} must list one entry per AZ (${n})`);
    }
  }
  if (config.directory.kind === 'existing-ad' && config.directory.dnsAddresses.length === 0) problems.push('directory.dnsAddresses must list the domain controllers');
  if (problems.length > 0) throw new DeploymentConfigError(`invalid deployment config: ${problems.join('; ')}`);
  return config;
}

/**
 * Reads the config from CDK context (`cdk synth -c stagedoor='{"azCount":3}'`), merged over the
 * defaults. Only plain JSON: no context lookups, so synthesis needs no AWS account.
 */
export function configFromContext(value: unknown): DeploymentConfig {
  if (value === undefined) return checkConfig(DEFAULT_CONFIG);
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  if (typeof parsed !== 'object' || parsed === null) throw new DeploymentConfigError('context "stagedoor" must be a JSON object');
  const given = parsed as Partial<DeploymentConfig>;
  return checkConfig({
    ...DEFAULT_CONFIG,
    ...given,
    brokers: { ...DEFAULT_CONFIG.brokers, ...given.brokers },
    gateways: { ...DEFAULT_CONFIG.gateways, ...given.gateways },
    database: { ...DEFAULT_CONFIG.database, ...given.database },
  });
}
