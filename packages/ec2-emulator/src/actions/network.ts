// DescribeVpcs, DescribeSubnets, DescribeSecurityGroups and DescribeAvailabilityZones:
// small collections, filtered and paged in memory.

import { zoneId } from '../defaults.ts';
import { Ec2Error, invalidParameterValue, malformedId } from '../errors.ts';
import { compileFilters } from '../filters.ts';
import type { FieldMap } from '../filters.ts';
import { isWellFormedId } from '../ids.ts';
import { pageByIndex, readPageRequest } from '../paging.ts';
import type { Ec2Store } from '../store.ts';
import type { SecurityGroupRecord, SubnetRecord, VpcRecord } from '../types.ts';
import { el, items, tagSet, text } from '../xml.ts';
import type { ActionDefinition } from './context.ts';

interface IdCodes {
  malformed: string;
  notFound: string;
  message: (ids: string) => string;
}

/** The records named by `ids`, or undefined when no ids were given (meaning: all). */
function byIds<T>(ids: readonly string[], map: ReadonlyMap<string, T>, prefix: string, codes: IdCodes): T[] | undefined {
  if (ids.length === 0) return undefined;
  for (const id of ids) if (!isWellFormedId(prefix, id)) throw malformedId(codes.malformed, id);
  const missing = ids.filter((id) => !map.has(id));
  if (missing.length > 0) throw new Ec2Error(codes.notFound, codes.message(missing.join(', ')));
  return [...new Set(ids)].map((id) => map.get(id)).filter((v): v is T => v !== undefined);
}

export const describeVpcs: ActionDefinition = {
  mutates: false,
  handle({ store, params }) {
    const fields: FieldMap<VpcRecord> = {
      'vpc-id': (v) => v.vpcId,
      'cidr': (v) => v.cidrBlock,
      'cidr-block-association.cidr-block': (v) => v.cidrBlock,
      'is-default': (v) => String(v.isDefault),
      state: () => 'available',
      'owner-id': () => store.accountId,
      'dhcp-options-id': (v) => v.dhcpOptionsId,
    };
    const listed = byIds(params.list('VpcId'), store.vpcs, 'vpc', {
      malformed: 'InvalidVpcID.Malformed',
      notFound: 'InvalidVpcID.NotFound',
      message: (id) => `The vpc ID '${id}' does not exist`,
    });
    const matches = compileFilters(params.filters(), fields, (v: VpcRecord) => v.tags);
    const page = pageByIndex((listed ?? [...store.vpcs.values()]).filter(matches), readPageRequest(params, 5, 1000));
    const body = items('vpcSet', page.items, (v) =>
      text('vpcId', v.vpcId) +
      text('ownerId', store.accountId) +
      text('state', 'available') +
      text('cidrBlock', v.cidrBlock) +
      items('cidrBlockAssociationSet', [v], (a) =>
        text('cidrBlock', a.cidrBlock) +
        text('associationId', a.vpcId.replace('vpc-', 'vpc-cidr-assoc-')) +
        el('cidrBlockState', text('state', 'associated')),
      ) +
      text('dhcpOptionsId', v.dhcpOptionsId) +
      tagSet(v.tags) +
      text('instanceTenancy', 'default') +
      text('isDefault', v.isDefault),
    );
    return body + text('nextToken', page.nextToken);
  },
};

function subnetXml(store: Ec2Store, s: SubnetRecord): string {
  return (
    text('subnetId', s.subnetId) +
    text('subnetArn', `arn:aws:ec2:${store.region}:${store.accountId}:subnet/${s.subnetId}`) +
    text('state', 'available') +
    text('ownerId', store.accountId) +
    text('vpcId', s.vpcId) +
    text('cidrBlock', s.cidrBlock) +
    '<ipv6CidrBlockAssociationSet/>' +
    text('availableIpAddressCount', store.ipPool(s.subnetId)?.available ?? 0) +
    text('availabilityZone', s.availabilityZone) +
    text('availabilityZoneId', zoneId(s.availabilityZone)) +
    text('defaultForAz', s.defaultForAz) +
    text('mapPublicIpOnLaunch', s.mapPublicIpOnLaunch) +
    text('assignIpv6AddressOnCreation', false) +
    tagSet(s.tags) +
    text('enableDns64', false) +
    text('ipv6Native', false)
  );
}

export const describeSubnets: ActionDefinition = {
  mutates: false,
  handle({ store, params }) {
    const fields: FieldMap<SubnetRecord> = {
      'subnet-id': (s) => s.subnetId,
      'vpc-id': (s) => s.vpcId,
      'availability-zone': (s) => s.availabilityZone,
      'availability-zone-id': (s) => zoneId(s.availabilityZone),
      'cidr-block': (s) => s.cidrBlock,
      cidr: (s) => s.cidrBlock,
      cidrBlock: (s) => s.cidrBlock,
      'default-for-az': (s) => String(s.defaultForAz),
      defaultForAz: (s) => String(s.defaultForAz),
      'map-public-ip-on-launch': (s) => String(s.mapPublicIpOnLaunch),
      state: () => 'available',
      'owner-id': () => store.accountId,
      'available-ip-address-count': (s) => String(store.ipPool(s.subnetId)?.available ?? 0),
    };
    const listed = byIds(params.list('SubnetId'), store.subnets, 'subnet', {
      malformed: 'InvalidSubnetID.Malformed',
      notFound: 'InvalidSubnetID.NotFound',
      message: (id) => `The subnet ID '${id}' does not exist`,
    });
    const matches = compileFilters(params.filters(), fields, (s: SubnetRecord) => s.tags);
    const page = pageByIndex((listed ?? [...store.subnets.values()]).filter(matches), readPageRequest(params, 5, 1000));
    return items('subnetSet', page.items, (s) => subnetXml(store, s)) + text('nextToken', page.nextToken);
  },
};

function securityGroupXml(store: Ec2Store, g: SecurityGroupRecord): string {
  const allTraffic = (inner: string): string => `<item>${text('ipProtocol', '-1')}${inner}</item>`;
  // A VPC's default group admits traffic from its own members; every group allows all egress.
  const ingress =
    g.groupName === 'default'
      ? allTraffic(items('groups', [g], (self) => text('userId', store.accountId) + text('groupId', self.groupId)) + '<ipRanges/><ipv6Ranges/><prefixListIds/>')
      : '';
  const egress = allTraffic(
    '<groups/>' + items('ipRanges', ['0.0.0.0/0'], (cidr) => text('cidrIp', cidr)) + '<ipv6Ranges/><prefixListIds/>',
  );
  return (
    text('ownerId', store.accountId) +
    text('groupId', g.groupId) +
    text('groupName', g.groupName) +
    text('groupDescription', g.description) +
    text('vpcId', g.vpcId) +
    `<ipPermissions>${ingress}</ipPermissions>` +
    `<ipPermissionsEgress>${egress}</ipPermissionsEgress>` +
    tagSet(g.tags) +
    text('securityGroupArn', `arn:aws:ec2:${store.region}:${store.accountId}:security-group/${g.groupId}`)
  );
}

export const describeSecurityGroups: ActionDefinition = {
  mutates: false,
  handle({ store, params }) {
    const fields: FieldMap<SecurityGroupRecord> = {
      'group-id': (g) => g.groupId,
      'group-name': (g) => g.groupName,
      'vpc-id': (g) => g.vpcId,
      description: (g) => g.description,
      'owner-id': () => store.accountId,
    };
    const byId = byIds(params.list('GroupId'), store.securityGroups, 'sg', {
      malformed: 'InvalidGroupId.Malformed',
      notFound: 'InvalidGroup.NotFound',
      message: (id) => `The security group '${id}' does not exist`,
    });
    const names = params.list('GroupName');
    let listed = byId;
    if (names.length > 0) {
      const defaultVpc = [...store.vpcs.values()].find((v) => v.isDefault);
      const found = names.map((name) => {
        const group = [...store.securityGroups.values()].find((g) => g.groupName === name && g.vpcId === defaultVpc?.vpcId);
        if (!group) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${name}' does not exist in default VPC '${defaultVpc?.vpcId ?? 'none'}'`);
        return group;
      });
      listed = [...(listed ?? []), ...found];
    }
    const matches = compileFilters(params.filters(), fields, (g: SecurityGroupRecord) => g.tags);
    const page = pageByIndex((listed ?? [...store.securityGroups.values()]).filter(matches), readPageRequest(params, 5, 1000));
    return items('securityGroupInfo', page.items, (g) => securityGroupXml(store, g)) + text('nextToken', page.nextToken);
  },
};

interface Zone {
  zoneName: string;
  zoneId: string;
}

export const describeAvailabilityZones: ActionDefinition = {
  mutates: false,
  handle({ store, params }) {
    const zones: Zone[] = [...new Set([...store.subnets.values()].map((s) => s.availabilityZone))]
      .sort()
      .map((zoneName) => ({ zoneName, zoneId: zoneId(zoneName) }));
    const names = params.list('ZoneName');
    const ids = params.list('ZoneId');
    for (const name of names) if (!zones.some((z) => z.zoneName === name)) throw invalidParameterValue(`Invalid availability zone: [${name}]`);
    for (const id of ids) if (!zones.some((z) => z.zoneId === id)) throw invalidParameterValue(`Invalid availability zone: [${id}]`);
    const fields: FieldMap<Zone> = {
      'zone-name': (z) => z.zoneName,
      'zone-id': (z) => z.zoneId,
      state: () => 'available',
      'region-name': () => store.region,
      'group-name': () => store.region,
      'group-long-name': () => store.region,
      'network-border-group': () => store.region,
      'opt-in-status': () => 'opt-in-not-required',
      'zone-type': () => 'availability-zone',
    };
    const matches = compileFilters(params.filters(), fields, () => []);
    const selected = zones.filter(
      (z) => (names.length === 0 || names.includes(z.zoneName)) && (ids.length === 0 || ids.includes(z.zoneId)) && matches(z),
    );
    return items('availabilityZoneInfo', selected, (z) =>
      text('zoneName', z.zoneName) +
      text('zoneState', 'available') +
      text('regionName', store.region) +
      text('zoneId', z.zoneId) +
      text('groupName', store.region) +
      text('networkBorderGroup', store.region) +
      text('optInStatus', 'opt-in-not-required') +
      text('zoneType', 'availability-zone') +
      '<messageSet/>',
    );
  },
};
