import {
  CreateTagsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstanceTypesCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  EC2Client,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type _InstanceType,
  type BlockDeviceMapping,
  type Filter,
  type Instance,
  type InstanceStateChange,
} from '@aws-sdk/client-ec2';
import type { PowerState } from '../../db/schema/providers.ts';
import type { CloudInstance, CloudProvider, LaunchSpec, ListFilter, PowerChange, StatusChecks } from './cloud-provider.ts';
import { toProviderError } from './ec2-errors.ts';
import { EC2_ID } from '@stagedoor/contract';

export interface AwsEc2Options {
  region: string;
  endpoint?: string | null;
  /** Omitted: the SDK's default chain (environment, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Attempts per call when EC2 throttles or is briefly unavailable (default 6). */
  maxAttempts?: number;
  /** First backoff step in ms (default 200); doubles per attempt, with full jitter, capped at 10 s. */
  backoffBaseMs?: number;
  /** DescribeInstances page size (5–1000; default 1000). */
  pageSize?: number;
}

/** Ids per call: a small batch, so one bad id fails only its batch; and EC2's limit of 200 values in one filter (describe by id). */
const BATCH = 200;
const PAGE = 1000;
/** Tag on every instance Stagedoor launches; the IAM policy in docs/ conditions power actions on it. */
export const MANAGED_TAG = 'stagedoor:managed';

/**
 * The `aws-ec2` provider: the real AWS SDK, unchanged, pointed at AWS or at any endpoint that
 * speaks the EC2 Query API (the emulator, a VPC endpoint).
 *
 * Retries are ours, not the SDK's, because they must depend on the error: throttling and brief
 * unavailability are retried with exponential backoff and full jitter, and a throttle slows every
 * call of this provider for a while (adaptive: a reconciler burst backs off together); capacity
 * errors are NOT retried here — the caller moves the launch to another subnet or instance type.
 */
export class AwsEc2Provider implements CloudProvider {
  readonly kind = 'aws-ec2' as const;
  #calls = 0;
  #quietUntil = 0;
  readonly #client: EC2Client;
  readonly #maxAttempts: number;
  readonly #backoffBaseMs: number;
  readonly #pageSize: number;
  readonly #rootDevices = new Map<string, string>();

  constructor(opts: AwsEc2Options) {
    this.#maxAttempts = opts.maxAttempts ?? 6;
    this.#backoffBaseMs = opts.backoffBaseMs ?? 200;
    this.#pageSize = opts.pageSize ?? PAGE;
    this.#client = new EC2Client({
      region: opts.region,
      endpoint: opts.endpoint ?? undefined,
      credentials: opts.credentials,
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
    });
    // Count every HTTP attempt (retries included): the deserialize step runs once per attempt.
    this.#client.middlewareStack.add(
      (next) => async (args) => {
        this.#calls++;
        return next(args);
      },
      { step: 'deserialize', name: 'stagedoorCallCounter' },
    );
  }

  get apiCalls(): number {
    return this.#calls;
  }

  async listInstances(filter: ListFilter): Promise<CloudInstance[]> {
    if (filter.ids) {
      // By the `instance-id` filter, not InstanceIds: an id EC2 does not know (yet — its reads are
      // eventually consistent right after a launch — or any more) is simply not in the answer,
      // instead of failing the whole call with InvalidInstanceID.NotFound.
      const out: CloudInstance[] = [];
      for (const ids of chunks(filter.ids, BATCH)) out.push(...(await this.#describe([{ Name: 'instance-id', Values: ids }])));
      return out;
    }
    return this.#describe(tagFilters(filter.tags ?? {}));
  }

  /** DescribeInstanceStatus across all pages: running instances only (AWS's default), both checks each. */
  async statusChecks(): Promise<Map<string, StatusChecks>> {
    const out = new Map<string, StatusChecks>();
    let NextToken: string | undefined;
    do {
      const r = await this.#call('DescribeInstanceStatus', () => this.#client.send(new DescribeInstanceStatusCommand({ MaxResults: this.#pageSize, NextToken })));
      for (const s of r.InstanceStatuses ?? []) {
        if (s.InstanceId) out.set(s.InstanceId, { system: s.SystemStatus?.Status ?? 'insufficient-data', instance: s.InstanceStatus?.Status ?? 'insufficient-data' });
      }
      NextToken = r.NextToken || undefined;
    } while (NextToken);
    return out;
  }

  /** DescribeInstances across all pages. */
  async #describe(Filters: Filter[]): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    let NextToken: string | undefined;
    do {
      const r = await this.#call('DescribeInstances', () => this.#client.send(new DescribeInstancesCommand({ Filters: Filters.length ? Filters : undefined, MaxResults: this.#pageSize, NextToken })));
      for (const res of r.Reservations ?? []) for (const i of res.Instances ?? []) out.push(toCloudInstance(i));
      NextToken = r.NextToken || undefined;
    } while (NextToken);
    return out;
  }

  async launch(spec: LaunchSpec): Promise<CloudInstance[]> {
    const BlockDeviceMappings = await this.#rootMapping(spec);
    const tags = [{ Key: 'Name', Value: spec.name }, { Key: MANAGED_TAG, Value: 'true' }, ...Object.entries(spec.tags).map(([Key, Value]) => ({ Key, Value }))];
    const profile = spec.iamInstanceProfile;
    const r = await this.#call(
      'RunInstances', () => this.#client.send(new RunInstancesCommand({
        ImageId: spec.imageId,
        LaunchTemplate: spec.launchTemplate
          ? { LaunchTemplateId: spec.launchTemplate.id, LaunchTemplateName: spec.launchTemplate.name, Version: spec.launchTemplate.version }
          : undefined,
        InstanceType: spec.instanceType as _InstanceType | undefined,
        SubnetId: spec.subnetId,
        SecurityGroupIds: spec.securityGroupIds?.length ? spec.securityGroupIds : undefined,
        IamInstanceProfile: profile ? (profile.startsWith('arn:') ? { Arn: profile } : { Name: profile }) : undefined,
        KeyName: spec.keyName,
        UserData: spec.userData ? Buffer.from(spec.userData, 'utf8').toString('base64') : undefined,
        MinCount: spec.count ?? 1,
        MaxCount: spec.count ?? 1,
        ClientToken: spec.clientToken,
        HibernationOptions: spec.hibernation ? { Configured: true } : undefined,
        BlockDeviceMappings,
        TagSpecifications: [
          { ResourceType: 'instance', Tags: tags },
          { ResourceType: 'volume', Tags: tags },
        ],
      }),));
    return (r.Instances ?? []).map(toCloudInstance);
  }

  /**
   * The root volume's mapping when the launch resizes it or enables hibernation, which EC2 allows
   * only on an encrypted root: "single-step" encryption of the image's root device, whose name comes
   * from DescribeImages (cached: an AMI never changes). A launch template without an imageId must
   * carry its own encrypted root; nothing is added then.
   */
  async #rootMapping(spec: LaunchSpec): Promise<BlockDeviceMapping[] | undefined> {
    if ((!spec.hibernation && !spec.rootVolumeGiB) || !spec.imageId) return undefined;
    const imageId = spec.imageId;
    let device = this.#rootDevices.get(imageId);
    if (!device) {
      const images = await this.#call('DescribeImages', () => this.#client.send(new DescribeImagesCommand({ ImageIds: [imageId] })));
      device = images.Images?.[0]?.RootDeviceName;
      if (!device) return undefined;
      this.#rootDevices.set(imageId, device);
    }
    return [{ DeviceName: device, Ebs: { VolumeSize: spec.rootVolumeGiB, Encrypted: spec.hibernation ? true : undefined } }];
  }

  async cannotHibernate(instanceTypes: string[]): Promise<Map<string, string>> {
    const r = await this.#call('DescribeInstanceTypes', () => this.#client.send(new DescribeInstanceTypesCommand({ InstanceTypes: instanceTypes as _InstanceType[] })));
    const out = new Map<string, string>();
    for (const t of instanceTypes) {
      const info = r.InstanceTypes?.find((x) => x.InstanceType === t);
      if (!info) out.set(t, 'EC2 does not list this type here');
      else if (!info.HibernationSupported) out.set(t, 'EC2 says this type does not support hibernation');
    }
    return out;
  }

  async start(ids: string[]): Promise<PowerChange[]> {
    return this.#batched(ids, async (InstanceIds) => (await this.#call('StartInstances', () => this.#client.send(new StartInstancesCommand({ InstanceIds })))).StartingInstances);
  }

  async stop(ids: string[], opts: { hibernate?: boolean } = {}): Promise<PowerChange[]> {
    return this.#batched(ids, async (InstanceIds) => (await this.#call('StopInstances', () => this.#client.send(new StopInstancesCommand({ InstanceIds, Hibernate: opts.hibernate || undefined })))).StoppingInstances);
  }

  async reboot(ids: string[]): Promise<void> {
    for (const InstanceIds of chunks(ids, BATCH)) await this.#call('RebootInstances', () => this.#client.send(new RebootInstancesCommand({ InstanceIds })));
  }

  async terminate(ids: string[]): Promise<PowerChange[]> {
    return this.#batched(ids, async (InstanceIds) => (await this.#call('TerminateInstances', () => this.#client.send(new TerminateInstancesCommand({ InstanceIds })))).TerminatingInstances);
  }

  async tag(ids: string[], tags: Record<string, string>): Promise<void> {
    const Tags = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    for (const Resources of chunks(ids, BATCH)) await this.#call('CreateTags', () => this.#client.send(new CreateTagsCommand({ Resources, Tags })));
  }

  async testConnection(): Promise<{ message: string; details: Record<string, unknown> }> {
    const zones = await this.#call('DescribeAvailabilityZones', () => this.#client.send(new DescribeAvailabilityZonesCommand({})));
    const names = (zones.AvailabilityZones ?? []).map((z) => z.ZoneName).filter(Boolean);
    const subnets = await this.#call('DescribeSubnets', () => this.#client.send(new DescribeSubnetsCommand({})));
    return {
      message: `EC2 answered: ${names.length} availability zones, ${subnets.Subnets?.length ?? 0} subnets visible`,
      details: { availabilityZones: names, subnets: (subnets.Subnets ?? []).map((s) => ({ id: s.SubnetId, availabilityZone: s.AvailabilityZone, cidr: s.CidrBlock })) },
    };
  }

  /** Check the ids a launch names, before anything is created: shape first, then existence. */
  async validateLaunch(spec: Omit<LaunchSpec, 'clientToken' | 'name' | 'tags'>): Promise<{ path: string; message: string }[]> {
    const problems: { path: string; message: string }[] = [];
    if (!spec.imageId && !spec.launchTemplate) problems.push({ path: 'imageId', message: 'name an AMI (imageId) or a launch template' });
    if (spec.imageId && !EC2_ID.image.test(spec.imageId)) problems.push({ path: 'imageId', message: `"${spec.imageId}" is not an AMI id (ami- and 8 or 17 hex digits)` });
    if (spec.subnetId && !EC2_ID.subnet.test(spec.subnetId)) problems.push({ path: 'subnetId', message: `"${spec.subnetId}" is not a subnet id` });
    spec.securityGroupIds?.forEach((g, i) => {
      if (!EC2_ID.securityGroup.test(g)) problems.push({ path: `securityGroupIds[${i}]`, message: `"${g}" is not a security group id` });
    });
    if (problems.length) return problems;
    const exists = async (path: string, what: string, probe: () => Promise<unknown[] | undefined>) => {
      try {
        if (!(await probe())?.length) problems.push({ path, message: `${what} does not exist in this region` });
      } catch (err) {
        const pe = toProviderError(err, `checking ${path}`);
        if (pe.kind === 'notFound' || pe.kind === 'invalid') problems.push({ path, message: `${what} does not exist in this region (${pe.providerCode})` });
        else throw pe;
      }
    };
    if (spec.imageId) await exists('imageId', `AMI ${spec.imageId}`, async () => (await this.#client.send(new DescribeImagesCommand({ ImageIds: [spec.imageId!] }))).Images);
    if (spec.subnetId) await exists('subnetId', `subnet ${spec.subnetId}`, async () => (await this.#client.send(new DescribeSubnetsCommand({ SubnetIds: [spec.subnetId!] }))).Subnets);
    if (spec.securityGroupIds?.length) {
      await exists('securityGroupIds', `security groups ${spec.securityGroupIds.join(', ')}`, async () => (await this.#client.send(new DescribeSecurityGroupsCommand({ GroupIds: spec.securityGroupIds }))).SecurityGroups);
    }
    return problems;
  }

  async #batched(ids: string[], call: (ids: string[]) => Promise<InstanceStateChange[] | undefined>): Promise<PowerChange[]> {
    const out: PowerChange[] = [];
    for (const batch of chunks(ids, BATCH)) {
      for (const c of (await call(batch)) ?? []) {
        out.push({ id: c.InstanceId!, previous: powerState(c.PreviousState?.Name), current: powerState(c.CurrentState?.Name) });
      }
    }
    return out;
  }

  async #call<T>(what: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const wait = this.#quietUntil - Date.now();
      if (wait > 0) await sleep(wait);
      try {
        return await call();
      } catch (err) {
        const pe = toProviderError(err, what);
        const retryable = pe.kind === 'throttled' || (pe.kind === 'unavailable' && attempt < 3);
        if (!retryable || attempt >= this.#maxAttempts) throw pe;
        const delay = Math.random() * Math.min(10_000, this.#backoffBaseMs * 2 ** (attempt - 1));
        if (pe.kind === 'throttled') this.#quietUntil = Math.max(this.#quietUntil, Date.now() + delay);
        else await sleep(delay);
      }
    }
  }
}

function tagFilters(tags: Record<string, string[]>): Filter[] {
  return Object.entries(tags).map(([key, values]) => (values.length ? { Name: `tag:${key}`, Values: values } : { Name: 'tag-key', Values: [key] }));
}

export function powerState(ec2State: string | undefined): PowerState {
  switch (ec2State) {
    case 'pending':
    case 'running':
    case 'stopping':
    case 'stopped':
    case 'terminated':
      return ec2State;
    case 'shutting-down':
      return 'terminated'; // on its way out, no longer billed, never coming back
    default:
      return 'unknown';
  }
}

function toCloudInstance(i: Instance): CloudInstance {
  const tags = Object.fromEntries((i.Tags ?? []).filter((t) => t.Key).map((t) => [t.Key!, t.Value ?? '']));
  return {
    id: i.InstanceId!,
    name: tags.Name ?? null,
    state: powerState(i.State?.Name),
    privateAddress: i.PrivateIpAddress ?? null,
    instanceType: i.InstanceType ?? null,
    availabilityZone: i.Placement?.AvailabilityZone ?? null,
    subnetId: i.SubnetId ?? null,
    imageId: i.ImageId ?? null,
    tags,
    launchTime: i.LaunchTime ?? null,
    clientToken: i.ClientToken || null,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
