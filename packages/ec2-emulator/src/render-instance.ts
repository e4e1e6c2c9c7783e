// Instance and reservation XML, shared by RunInstances and DescribeInstances. Element
// names follow EC2's wire format (e.g. `instanceState`, `groupSet`, `dnsName`), which is
// what the AWS SDK's deserializer maps onto Instance fields.

import { STATE_CODES } from './lifecycle.ts';
import type { InstanceRecord, InstanceStateName } from './types.ts';
import { el, isoTime, items, tagSet, text } from './xml.ts';

export function stateXml(name: string, state: InstanceStateName): string {
  return el(name, text('code', STATE_CODES[state]), text('name', state));
}

function privateDnsName(instance: InstanceRecord, region: string): string {
  const host = `ip-${instance.privateIpAddress.replace(/\./g, '-')}`;
  return region === 'us-east-1' ? `${host}.ec2.internal` : `${host}.${region}.compute.internal`;
}

function groupsXml(instance: InstanceRecord): string {
  return items('groupSet', instance.securityGroups, (g) => text('groupId', g.groupId) + text('groupName', g.groupName));
}

function networkInterfaceXml(instance: InstanceRecord, region: string, ownerId: string): string {
  const eni = instance.networkInterface;
  const dns = privateDnsName(instance, region);
  const attached = instance.state !== 'terminated';
  const body =
    text('networkInterfaceId', eni.networkInterfaceId) +
    text('subnetId', instance.subnetId) +
    text('vpcId', instance.vpcId) +
    text('description', '') +
    text('ownerId', ownerId) +
    text('status', attached ? 'in-use' : 'available') +
    text('macAddress', eni.macAddress) +
    text('privateIpAddress', instance.privateIpAddress) +
    text('privateDnsName', dns) +
    text('sourceDestCheck', true) +
    groupsXml(instance) +
    el(
      'attachment',
      text('attachmentId', eni.networkInterfaceId.replace('eni-', 'eni-attach-')),
      text('deviceIndex', 0),
      text('status', attached ? 'attached' : 'detached'),
      text('attachTime', isoTime(instance.launchTime)),
      text('deleteOnTermination', true),
      text('networkCardIndex', 0),
    ) +
    items('privateIpAddressesSet', [instance.privateIpAddress], (ip) =>
      text('privateIpAddress', ip) + text('privateDnsName', dns) + text('primary', true),
    ) +
    text('interfaceType', 'interface');
  return `<networkInterfaceSet><item>${body}</item></networkInterfaceSet>`;
}

function blockDevicesXml(instance: InstanceRecord): string {
  // A terminated instance's root volume has been deleted with it.
  if (instance.state === 'terminated') return '<blockDeviceMapping/>';
  const volume = el(
    'ebs',
    text('volumeId', instance.rootVolume.volumeId),
    text('status', 'attached'),
    text('attachTime', isoTime(instance.launchTime)),
    text('deleteOnTermination', true),
  );
  return `<blockDeviceMapping><item>${text('deviceName', instance.rootDeviceName)}${volume}</item></blockDeviceMapping>`;
}

export function instanceXml(instance: InstanceRecord, region: string, ownerId: string): string {
  const live = instance.state !== 'terminated';
  return (
    text('instanceId', instance.instanceId) +
    text('imageId', instance.imageId) +
    stateXml('instanceState', instance.state) +
    text('privateDnsName', live ? privateDnsName(instance, region) : '') +
    text('dnsName', '') +
    text('reason', instance.stateTransitionReason) +
    text('keyName', instance.keyName) +
    text('amiLaunchIndex', instance.amiLaunchIndex) +
    '<productCodes/>' +
    text('instanceType', instance.instanceType) +
    text('launchTime', isoTime(instance.launchTime)) +
    el(
      'placement',
      text('availabilityZone', instance.availabilityZone),
      text('groupName', ''),
      text('tenancy', 'default'),
    ) +
    text('platform', instance.platform) +
    el('monitoring', text('state', 'disabled')) +
    text('subnetId', instance.subnetId) +
    text('vpcId', instance.vpcId) +
    text('privateIpAddress', live ? instance.privateIpAddress : undefined) +
    text('sourceDestCheck', true) +
    groupsXml(instance) +
    (instance.stateReason
      ? el('stateReason', text('code', instance.stateReason.code), text('message', instance.stateReason.message))
      : '') +
    text('architecture', instance.architecture) +
    text('rootDeviceType', 'ebs') +
    text('rootDeviceName', instance.rootDeviceName) +
    blockDevicesXml(instance) +
    text('virtualizationType', 'hvm') +
    text('clientToken', instance.clientToken ?? '') +
    tagSet(instance.tags) +
    text('hypervisor', 'xen') +
    (live ? networkInterfaceXml(instance, region, ownerId) : '<networkInterfaceSet/>') +
    (instance.iamInstanceProfile
      ? el('iamInstanceProfile', text('arn', instance.iamInstanceProfile.arn), text('id', instance.iamInstanceProfile.id))
      : '') +
    text('ebsOptimized', false) +
    text('enaSupport', true) +
    el('hibernationOptions', text('configured', instance.hibernationConfigured)) +
    text('platformDetails', instance.platformDetails) +
    text('usageOperation', instance.platform === 'windows' ? 'RunInstances:0002' : 'RunInstances') +
    text('bootMode', 'uefi-preferred') +
    text('currentInstanceBootMode', 'legacy-bios')
  );
}

/** Reservation body fields (without the surrounding `<item>`), as in RunInstances' response. */
export function reservationFields(
  reservationId: string,
  ownerId: string,
  instances: readonly InstanceRecord[],
  region: string,
): string {
  return (
    text('reservationId', reservationId) +
    text('ownerId', ownerId) +
    '<groupSet/>' +
    items('instancesSet', instances, (i) => instanceXml(i, region, ownerId))
  );
}
