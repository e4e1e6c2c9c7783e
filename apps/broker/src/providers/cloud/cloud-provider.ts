import type { PowerState, TagMatch } from '../../db/schema/providers.ts';
import { DomainError } from '../../domain/errors.ts';

/** What every cloud tells us about one machine, in our words. */
export interface CloudInstance {
  id: string;
  name: string | null;
  state: PowerState;
  privateAddress: string | null;
  instanceType: string | null;
  availabilityZone: string | null;
  subnetId: string | null;
  imageId: string | null;
  tags: Record<string, string>;
  launchTime: Date | null;
  /** The idempotency token the instance was launched with: adoption after a crash matches on it. */
  clientToken: string | null;
}

/** Everything a launch may carry. Either `imageId` or `launchTemplate` names what to boot. */
export interface LaunchSpec {
  imageId?: string;
  launchTemplate?: { id?: string; name?: string; version?: string };
  instanceType?: string;
  subnetId?: string;
  securityGroupIds?: string[];
  /** An instance profile name, or its ARN. */
  iamInstanceProfile?: string;
  keyName?: string;
  name: string;
  tags: Record<string, string>;
  userData?: string;
  /** Idempotency: the same token launches once, however often the call is repeated. */
  clientToken: string;
  count?: number;
  /** Enable hibernation at launch (EC2: HibernationOptions.Configured, root volume encrypted). */
  hibernation?: boolean;
  /** Root volume size in GiB; unset keeps the image's. */
  rootVolumeGiB?: number;
}

export interface ListFilter {
  tags?: TagMatch;
  ids?: string[];
}

export interface PowerChange {
  id: string;
  previous: PowerState;
  current: PowerState;
}

/** EC2's two status checks of a running instance: `ok`, `impaired`, `initializing`, `insufficient-data`. */
export interface StatusChecks {
  system: string;
  instance: string;
}

/** The seam between Stagedoor and a cloud (STYLE habit 4). Implementations: aws-ec2, static. */
export interface CloudProvider {
  readonly kind: 'aws-ec2' | 'static';
  /** Every instance matching the filter, across all pages. */
  listInstances(filter: ListFilter): Promise<CloudInstance[]>;
  launch(spec: LaunchSpec): Promise<CloudInstance[]>;
  start(ids: string[]): Promise<PowerChange[]>;
  stop(ids: string[], opts?: { hibernate?: boolean }): Promise<PowerChange[]>;
  reboot(ids: string[]): Promise<void>;
  terminate(ids: string[]): Promise<PowerChange[]>;
  tag(ids: string[], tags: Record<string, string>): Promise<void>;
  /** Check that the provider answers with these credentials; what it found, for people. */
  testConnection(): Promise<{ message: string; details: Record<string, unknown> }>;
  /** Does this exist? For validation that names the bad field before anything is created. */
  validateLaunch?(spec: Omit<LaunchSpec, 'clientToken' | 'name' | 'tags'>): Promise<{ path: string; message: string }[]>;
  /** For a template that asks for hibernation: each type that cannot hibernate, with why. */
  cannotHibernate?(instanceTypes: string[]): Promise<Map<string, string>>;
  /** Status checks of every running instance the credentials see, by instance id (clouds that have them). */
  statusChecks?(): Promise<Map<string, StatusChecks>>;
  /** API calls made so far (benchmarks and sync outcomes report it). */
  readonly apiCalls: number;
}

export const PROVIDER_ERROR_KINDS = ['capacity', 'throttled', 'auth', 'invalid', 'notFound', 'unavailable', 'unsupported'] as const;
export type ProviderErrorKind = (typeof PROVIDER_ERROR_KINDS)[number];

/**
 * A cloud said no. `kind` is what callers act on (the reconciler moves to the next subnet on
 * `capacity`); `providerCode` and the message are the cloud's own words, passed on to people.
 */
export class ProviderError extends DomainError {
  readonly code: string;
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
    readonly providerCode?: string,
    options?: { cause?: unknown; field?: string },
  ) {
    super(message, providerCode || options?.field ? { providerCode, ...(options?.field ? { fields: [{ path: options.field, message }] } : {}) } : undefined, options);
    this.code = `provider_${kind === 'notFound' ? 'not_found' : kind}`;
  }
}
