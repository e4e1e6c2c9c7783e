// The emulator's state: every resource plus the indexes that keep the hot paths cheap
// (launch order for paging, free addresses per subnet, capacity counts). All instance
// state changes go through `setState`, so the indexes cannot drift from the records.

import { CapacityIndex } from './capacity.ts';
import { IpPool, parseCidr } from './cidr.ts';
import { HOLDS_CAPACITY, delaysFor, hibernationDelays, pendingSteps } from './lifecycle.ts';
import type {
  ClientTokenRecord,
  Delays,
  ImageRecord,
  InstanceRecord,
  InstanceStateName,
  LaunchTemplateRecord,
  ReservationRecord,
  SecurityGroupRecord,
  StateReason,
  SubnetRecord,
  VpcRecord,
} from './types.ts';

export interface StoreSettings {
  region: string;
  accountId: string;
  delays: Delays;
}

export class Ec2Store {
  readonly instances = new Map<string, InstanceRecord>();
  readonly reservations = new Map<string, ReservationRecord>();
  readonly vpcs = new Map<string, VpcRecord>();
  readonly subnets = new Map<string, SubnetRecord>();
  readonly securityGroups = new Map<string, SecurityGroupRecord>();
  readonly images = new Map<string, ImageRecord>();
  readonly launchTemplates = new Map<string, LaunchTemplateRecord>();
  readonly clientTokens = new Map<string, ClientTokenRecord>();
  readonly capacity = new CapacityIndex();
  /** Failed status checks set by tests (`control.impairInstance`): the instance reads `impaired` while running. */
  readonly impaired = new Map<string, { system: boolean; instance: boolean }>();
  private readonly ipPools = new Map<string, IpPool>();
  private readonly volumes = new Map<string, string>();
  private readonly networkInterfaces = new Map<string, string>();
  /** Instances in launch order; entries of purged instances are skipped and compacted away. */
  private order: InstanceRecord[] = [];
  private purgedInOrder = 0;
  private nextSeq = 1;

  constructor(readonly settings: StoreSettings) {}

  get region(): string {
    return this.settings.region;
  }

  get accountId(): string {
    return this.settings.accountId;
  }

  get delays(): Delays {
    return this.settings.delays;
  }

  clear(): void {
    for (const map of [this.instances, this.reservations, this.vpcs, this.subnets, this.securityGroups, this.images]) {
      map.clear();
    }
    this.launchTemplates.clear();
    this.clientTokens.clear();
    this.capacity.clear();
    this.impaired.clear();
    this.ipPools.clear();
    this.volumes.clear();
    this.networkInterfaces.clear();
    this.order = [];
    this.purgedInOrder = 0;
    this.nextSeq = 1;
  }

  addVpc(vpc: VpcRecord): void {
    this.vpcs.set(vpc.vpcId, vpc);
  }

  addSubnet(subnet: SubnetRecord): void {
    const cidr = parseCidr(subnet.cidrBlock);
    if (!cidr) throw new Error(`invalid subnet CIDR ${subnet.cidrBlock}`);
    this.subnets.set(subnet.subnetId, subnet);
    this.ipPools.set(subnet.subnetId, new IpPool(cidr));
  }

  addSecurityGroup(group: SecurityGroupRecord): void {
    this.securityGroups.set(group.groupId, group);
  }

  addImage(image: ImageRecord): void {
    this.images.set(image.imageId, image);
  }

  addLaunchTemplate(template: LaunchTemplateRecord): void {
    this.launchTemplates.set(template.launchTemplateId, template);
  }

  ipPool(subnetId: string): IpPool | undefined {
    return this.ipPools.get(subnetId);
  }

  defaultSecurityGroup(vpcId: string): SecurityGroupRecord | undefined {
    for (const group of this.securityGroups.values()) {
      if (group.vpcId === vpcId && group.groupName === 'default') return group;
    }
    return undefined;
  }

  allocateSeq(): number {
    return this.nextSeq++;
  }

  /** Adds a new or restored instance and registers it in every index. */
  addInstance(instance: InstanceRecord): void {
    this.instances.set(instance.instanceId, instance);
    const last = this.order[this.order.length - 1];
    this.order.push(instance);
    if (last && last.seq > instance.seq) this.order.sort((a, b) => a.seq - b.seq);
    this.nextSeq = Math.max(this.nextSeq, instance.seq + 1);
    if (instance.state !== 'terminated') this.ipPools.get(instance.subnetId)?.claim(instance.privateIpAddress);
    this.volumes.set(instance.rootVolume.volumeId, instance.instanceId);
    this.networkInterfaces.set(instance.networkInterface.networkInterfaceId, instance.instanceId);
    if (HOLDS_CAPACITY.has(instance.state)) this.capacity.add(instance);
    if (instance.state === 'stopping' || instance.state === 'shutting-down') this.capacity.releasing.add(instance);
  }

  addReservation(reservation: ReservationRecord): void {
    this.reservations.set(reservation.reservationId, reservation);
  }

  setState(instance: InstanceRecord, to: InstanceStateName, at: number, reason?: StateReason): void {
    const from = instance.state;
    if (HOLDS_CAPACITY.has(from) && !HOLDS_CAPACITY.has(to)) this.capacity.remove(instance);
    if (!HOLDS_CAPACITY.has(from) && HOLDS_CAPACITY.has(to)) this.capacity.add(instance);
    if (to === 'stopping' || to === 'shutting-down') this.capacity.releasing.add(instance);
    else this.capacity.releasing.delete(instance);
    // A terminated instance gives its private address back to the subnet.
    if (to === 'terminated' && from !== 'terminated') {
      this.ipPools.get(instance.subnetId)?.release(instance.privateIpAddress);
    }
    instance.state = to;
    instance.stateSince = at;
    if (to === 'running') {
      instance.hasRun = true;
      instance.hibernated = undefined;
      instance.stateReason = undefined;
      instance.stateTransitionReason = '';
    } else if (reason) {
      instance.stateReason = reason;
    }
  }

  /**
   * Applies the transitions that have happened by `now` and drops the instance once its
   * terminated retention is over. Returns false when the instance no longer exists.
   */
  settle(instance: InstanceRecord, now: number): boolean {
    const delays = instance.hibernated ? hibernationDelays(this.delays) : delaysFor(this.delays, instance.seq, instance.stateSince);
    for (const step of pendingSteps(instance.state, instance.stateSince, now, delays)) {
      this.setState(instance, step.to, step.at);
    }
    if (instance.state === 'terminated' && now >= instance.stateSince + this.delays.terminatedRetentionMs) {
      this.purge(instance);
      return false;
    }
    return true;
  }

  /** The instance as it is at `now`, or undefined when unknown or gone. */
  instance(instanceId: string, now: number): InstanceRecord | undefined {
    const instance = this.instances.get(instanceId);
    if (!instance) return undefined;
    return this.settle(instance, now) ? instance : undefined;
  }

  instanceIdByVolume(volumeId: string): string | undefined {
    return this.volumes.get(volumeId);
  }

  instanceIdByNetworkInterface(networkInterfaceId: string): string | undefined {
    return this.networkInterfaces.get(networkInterfaceId);
  }

  /** Live instances launched after `afterSeq`, settled at `now`, in launch order. */
  *scan(now: number, afterSeq = 0): Generator<InstanceRecord> {
    this.compactIfNeeded();
    const order = this.order;
    for (let i = this.firstAfter(afterSeq); i < order.length; i++) {
      const instance = order[i];
      if (!instance || this.instances.get(instance.instanceId) !== instance) continue;
      if (this.settle(instance, now)) yield instance;
    }
  }

  /** Settles every instance; used before saving so expired ones are not written out. */
  sweep(now: number): void {
    for (const instance of [...this.instances.values()]) this.settle(instance, now);
  }

  /** Settles the instances on their way out of capacity, so the capacity counts are current. */
  settleReleasing(now: number): void {
    for (const instance of [...this.capacity.releasing]) this.settle(instance, now);
  }

  private purge(instance: InstanceRecord): void {
    if (this.instances.get(instance.instanceId) !== instance) return;
    this.instances.delete(instance.instanceId);
    this.volumes.delete(instance.rootVolume.volumeId);
    this.networkInterfaces.delete(instance.networkInterface.networkInterfaceId);
    this.capacity.releasing.delete(instance);
    const reservation = this.reservations.get(instance.reservationId);
    if (reservation) {
      reservation.instanceIds = reservation.instanceIds.filter((id) => id !== instance.instanceId);
      if (reservation.instanceIds.length === 0) this.reservations.delete(reservation.reservationId);
    }
    this.purgedInOrder++;
  }

  private firstAfter(seq: number): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.order[mid]?.seq ?? 0) <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private compactIfNeeded(): void {
    if (this.purgedInOrder < 1024 || this.purgedInOrder * 2 < this.order.length) return;
    // A new array, so a scan still walking the old one is not disturbed.
    this.order = this.order.filter((i) => this.instances.get(i.instanceId) === i);
    this.purgedInOrder = 0;
  }
}
