// Records the emulator keeps, shaped after EC2's own resources. They are plain data so
// that the whole state can be written to JSON and read back unchanged.

export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

export interface Tag {
  key: string;
  value: string;
}

export interface StateReason {
  code: string;
  message: string;
}

export interface GroupRef {
  groupId: string;
  groupName: string;
}

export interface InstanceRecord {
  /** Launch order; paging tokens point at it so pages stay stable while instances come and go. */
  seq: number;
  instanceId: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  subnetId: string;
  vpcId: string;
  availabilityZone: string;
  privateIpAddress: string;
  keyName?: string;
  userData?: string;
  clientToken?: string;
  iamInstanceProfile?: { arn: string; id: string };
  securityGroups: GroupRef[];
  tags: Tag[];
  state: InstanceStateName;
  /** Emulated ms at which the instance entered `state`; transitions are computed from it lazily. */
  stateSince: number;
  launchTime: number;
  amiLaunchIndex: number;
  stateReason?: StateReason;
  stateTransitionReason: string;
  /** EC2 refuses to stop an instance that never reached `running`. */
  hasRun: boolean;
  disableApiTermination: boolean;
  hibernationConfigured: boolean;
  /**
   * Set by StopInstances with Hibernate=true: the stop takes `hibernatingMs` (RAM written to the root
   * volume) and the next start resumes in `resumeMs` instead of booting. Cleared once it runs again.
   */
  hibernated?: boolean;
  architecture: string;
  platform?: string;
  platformDetails: string;
  rootDeviceName: string;
  /** Size and encryption are absent in state saved by older emulators (read as 8 GiB, unencrypted). */
  rootVolume: { volumeId: string; tags: Tag[]; sizeGiB?: number; encrypted?: boolean };
  networkInterface: { networkInterfaceId: string; macAddress: string; tags: Tag[] };
}

export interface ReservationRecord {
  reservationId: string;
  ownerId: string;
  instanceIds: string[];
}

export interface VpcRecord {
  vpcId: string;
  cidrBlock: string;
  isDefault: boolean;
  dhcpOptionsId: string;
  tags: Tag[];
}

export interface SubnetRecord {
  subnetId: string;
  vpcId: string;
  availabilityZone: string;
  cidrBlock: string;
  defaultForAz: boolean;
  mapPublicIpOnLaunch: boolean;
  tags: Tag[];
}

export interface SecurityGroupRecord {
  groupId: string;
  groupName: string;
  description: string;
  vpcId: string;
  tags: Tag[];
}

export interface ImageRecord {
  imageId: string;
  name: string;
  description: string;
  ownerId: string;
  ownerAlias?: string;
  public: boolean;
  architecture: string;
  /** Only Windows AMIs carry a platform in EC2's output. */
  platform?: 'windows';
  platformDetails: string;
  rootDeviceName: string;
  /** Size of the root snapshot (default 8 GiB): a launch's root volume may not be smaller. */
  rootVolumeSizeGiB?: number;
  /** An encrypted root snapshot makes every instance's root volume encrypted (hibernation needs it). */
  rootEncrypted?: boolean;
  creationDate: string;
  tags: Tag[];
}

export interface LaunchTemplateData {
  imageId?: string;
  instanceType?: string;
  subnetId?: string;
  securityGroupIds?: string[];
  keyName?: string;
  iamInstanceProfile?: { name?: string; arn?: string };
  userData?: string;
  disableApiTermination?: boolean;
  hibernationConfigured?: boolean;
  tagSpecifications?: Array<{ resourceType: string; tags: Tag[] }>;
}

export interface LaunchTemplateRecord {
  launchTemplateId: string;
  launchTemplateName: string;
  defaultVersion: number;
  versions: Array<{ versionNumber: number; data: LaunchTemplateData }>;
}

export interface ClientTokenRecord {
  reservationId: string;
  fingerprint: string;
}

export interface Delays {
  /** pending → running */
  pendingMs: number;
  /**
   * Extra boot time, 0..pendingJitterMs, drawn per boot from a hash of the instance id and the time
   * the boot began: boots differ (a studio's 60–120 s) yet a run repeats exactly. Default 0.
   */
  pendingJitterMs?: number;
  /** stopping → stopped */
  stoppingMs: number;
  /** stopping → stopped when hibernating: the RAM is written to the root volume (default 20 000). */
  hibernatingMs?: number;
  /** pending → running when resuming from hibernation: no boot, the RAM is read back (default 2 000; no jitter). */
  resumeMs?: number;
  /** shutting-down → terminated */
  shuttingDownMs: number;
  /** How long a terminated instance stays visible (EC2: about an hour). */
  terminatedRetentionMs: number;
  /** How long a running instance reports status checks as `initializing`. */
  statusInitializingMs: number;
}

export interface CapacityLimit {
  availabilityZone: string;
  /** When set, the limit counts only instances of this type. */
  instanceType?: string;
  /** Instances that may hold capacity (pending, running, stopping, shutting-down) at once. */
  max: number;
}

export interface FaultSpec {
  /** An EC2 action name, or '*' for every action. */
  action?: string;
  /** e.g. RequestLimitExceeded, Unavailable, InternalError, InsufficientInstanceCapacity. */
  code: string;
  message?: string;
  status?: number;
  /** Fail exactly the next `count` matching calls. */
  count?: number;
  /** Or fail each matching call with this probability (0..1), from a seeded generator. */
  rate?: number;
}

export interface CallCounters {
  total: number;
  byAction: Record<string, number>;
  errorsByCode: Record<string, number>;
}

export interface ImageSeed {
  imageId?: string;
  name: string;
  description?: string;
  ownerId?: string;
  ownerAlias?: string;
  public?: boolean;
  architecture?: string;
  platform?: 'windows';
  rootVolumeSizeGiB?: number;
  rootEncrypted?: boolean;
  tags?: Tag[];
}

export interface SubnetSeed {
  subnetId?: string;
  vpcId?: string;
  /** CIDR of the VPC created when `vpcId` does not exist yet (default: the subnet's /16). */
  vpcCidrBlock?: string;
  availabilityZone: string;
  cidrBlock: string;
  mapPublicIpOnLaunch?: boolean;
  tags?: Tag[];
}

export interface SecurityGroupSeed {
  groupId?: string;
  groupName: string;
  description?: string;
  vpcId?: string;
  tags?: Tag[];
}

export interface LaunchTemplateSeed {
  launchTemplateId?: string;
  launchTemplateName: string;
  versions: LaunchTemplateData[];
  defaultVersion?: number;
}
